import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BREATHING_SYNC_FULL_SCALE_HZ, breathingSyncScore, groupCoherence, signalQuality } from './group-coherence.js';
import { createSynchronyPlan } from './synchrony.js';
import { syntheticGroup } from './synthetic-group.js';
import { computeGroupWindow, groupWindowSeed } from './window.js';
import { GroupMembership } from './membership.js';

test('group coherence is the quality-weighted mean; weights sum to 1 and skip invalid windows', () => {
  const g = groupCoherence([
    { coherence: 0.8, coverage: 1, artifactRatio: 0 }, // quality 1
    { coherence: 0.2, coverage: 0.9, artifactRatio: 0.5 }, // quality 0.45
    { coherence: null, coverage: 0.95, artifactRatio: 0 }, // invalid window
    { coherence: 0.5, coverage: 0, artifactRatio: 0 }, // no coverage
  ]);
  assert.equal(g.contributorCount, 2);
  assert.ok(Math.abs(g.weights[0] - 1 / 1.45) < 1e-12 && Math.abs(g.weights[1] - 0.45 / 1.45) < 1e-12);
  assert.equal(g.weights[2], 0);
  assert.equal(g.weights[3], 0);
  assert.ok(Math.abs(g.coherence! - (0.8 + 0.45 * 0.2) / 1.45) < 1e-12);
  assert.equal(groupCoherence([{ coherence: null, coverage: 1, artifactRatio: 0 }]).coherence, null);
  assert.equal(signalQuality({ coherence: 1, coverage: 1.2, artifactRatio: -1 }), 1); // clamped
});

test('breathing_sync_score: 1 at the pacer rate, 0.5 at the peak band half width, 0 beyond 1.8 breaths/min', () => {
  assert.equal(breathingSyncScore(6, 6), 1);
  assert.ok(Math.abs(breathingSyncScore(6 + 60 * (BREATHING_SYNC_FULL_SCALE_HZ / 2), 6)! - 0.5) < 1e-12);
  assert.equal(breathingSyncScore(8, 6), 0);
  assert.equal(breathingSyncScore(null, 6), null);
  assert.throws(() => breathingSyncScore(6, 0));
});

test('a group window: weights, R, z, p and breathing synchrony, the same on replay with the same seed', () => {
  const { series, participants } = syntheticGroup({ n: 8, lockedShare: 1, seed: 3, sharedHz: 0.1 });
  const input = series.map((s, i) => ({
    participantId: `p${i}`,
    series: s,
    coherence: 0.5 + 0.05 * i,
    coverage: 1,
    artifactRatio: i === 0 ? 0.5 : 0,
    breathingRateBpm: participants[i].breathingHz * 60,
  }));
  const plan = createSynchronyPlan();
  const seed = groupWindowSeed('group-1', 1_700_000_065_000);
  const a = computeGroupWindow(plan, input, { seed, pacerRateBpm: 6 });
  assert.equal(a.participantCount, 8);
  assert.ok(a.syncR! > 0.9 && a.syncP! < 0.01, `${a.syncR} ${a.syncP}`);
  assert.equal(a.breathingSync, 1);
  const wSum = a.participants.reduce((s, p) => s + p.weight, 0);
  assert.ok(Math.abs(wSum - 1) < 1e-12);
  assert.ok(Math.abs(a.participants[0].weight - 0.5 / 7.5) < 1e-12);
  assert.equal(a.crossCorrelationPairs!.length, 28);
  assert.deepEqual(computeGroupWindow(createSynchronyPlan(), input, { seed, pacerRateBpm: 6 }), a);
  assert.notEqual(groupWindowSeed('group-1', 1_700_000_070_000), seed);
  assert.notEqual(groupWindowSeed('group-2', 1_700_000_065_000), seed);
});

test('windows over a session: membership decides who goes into the maths, and a replay gives the same windows', () => {
  const { series, participants } = syntheticGroup({ n: 6, lockedShare: 1, seed: 8 });
  const T0 = 1_700_000_000_000;
  // p0..p3 from the start; p4 joins 60 s late; p5 stops sending at 120 s.
  const joinMs = [0, 0, 0, 0, 60_000, 0].map((d) => T0 + d);
  const stopMs = [Infinity, Infinity, Infinity, Infinity, Infinity, T0 + 120_000];
  const ends = Array.from({ length: 30 }, (_, i) => T0 + 65_000 + i * 5_000);
  const runSession = () => {
    const plan = createSynchronyPlan();
    const m = new GroupMembership();
    return ends.map((end) => {
      for (let j = 0; j < 6; j++) {
        const last = Math.min(end - 500, stopMs[j] - 500);
        if (last < joinMs[j]) continue;
        const valid = end - 64_000 >= joinMs[j] && end <= stopMs[j];
        m.observe({ participantId: `p${j}`, windowEndMs: end, valid, lastBeatMs: last });
      }
      const who = m.close(end);
      const input = who.contributing.map((id) => {
        const j = Number(id.slice(1));
        return { participantId: id, series: series[j], coherence: 0.6, coverage: 1, artifactRatio: 0, breathingRateBpm: participants[j].breathingHz * 60 };
      });
      const r = computeGroupWindow(plan, input, { seed: groupWindowSeed('g', end), pacerRateBpm: 6 });
      return { end, counts: who.counts, result: r };
    });
  };
  const a = runSession();
  const expected = (end: number) => 4 + (end >= T0 + 125_000 ? 1 : 0) + (end <= T0 + 120_000 ? 1 : 0);
  for (const w of a) {
    assert.equal(w.result.participantCount, expected(w.end), `window ${w.end - T0}`);
    assert.equal(w.counts.contributing, expected(w.end));
  }
  assert.equal(a.find((w) => w.end === T0 + 130_000)!.counts.inactive, 0); // 10.5 s since p5's last beat…
  assert.equal(a.find((w) => w.end === T0 + 135_000)!.counts.inactive, 1); // …15.5 s: inactive
  assert.deepEqual(runSession(), a);
});
