// The simulated group's participants (group-profiles.ts with RrGenerator's breathingClock),
// measured from the beats they produce: deterministic for a seed; the locked share breathes
// in phase with the group pacer (api/mesh-pacer.ts), the rest do not; and the group maths of
// pipelines/group read the group as it was meant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupParticipants, lockedCount, pacerPhaseRad, type GroupParticipant } from './group-profiles.js';
import { RrGenerator, type Beat } from './rr-generator.js';
import { Mulberry32 } from '../lib/prng.js';
import { AttuneError } from '../lib/errors.js';
import { pacerAt } from '../api/mesh-pacer.js';
import { computeSynchrony, createSynchronyPlan } from '../pipelines/group/synchrony.js';
import { createSplineScratch, resampleCubic } from '../pipelines/hrv/resample.js';

const start = Date.UTC(2026, 11, 3, 9, 0, 0);
const minutes = (n: number) => n * 60_000;
const beatsOf = (p: GroupParticipant, durationMs: number): Beat[] => new RrGenerator(p.profile, new Mulberry32(p.seed), start).beatsUntil(start + durationMs);
const wrap = (x: number) => Math.atan2(Math.sin(x), Math.cos(x));

/**
 * The participant's breathing phase relative to the pacer over [fromMs, toMs), read from the
 * beats alone: the RSA makes RR ≈ mean − A·sin(θp + φ), so Σ (RR − mean)·e^{−iθp(t)} over the
 * beats ≈ (A/2)·i·e^{iφ}; φ = arg − π/2 (0: breathing in with the pacer). Independent of the
 * generator's internals.
 */
function phaseAgainstPacer(beats: Beat[], fromMs: number, toMs: number, rateBpm: number): number {
  const seg = beats.filter((b) => b.timeMs >= fromMs && b.timeMs < toMs);
  const mean = seg.reduce((s, b) => s + b.rrMs, 0) / seg.length;
  let re = 0;
  let im = 0;
  for (const b of seg) {
    const th = pacerPhaseRad(start, rateBpm, b.timeMs);
    re += (b.rrMs - mean) * Math.cos(th);
    im -= (b.rrMs - mean) * Math.sin(th);
  }
  return wrap(Math.atan2(im, re) - Math.PI / 2);
}

test('pacerPhaseRad is the group pacer of api/mesh-pacer.ts: inhaling in the first half of each breath', () => {
  for (const rate of [4, 6, 7.5, 12]) {
    for (let t = start; t < start + minutes(3); t += 777) {
      const pacer = pacerAt(start, rate, t)!;
      const theta = pacerPhaseRad(start, rate, t);
      const inBreath = theta / (2 * Math.PI) - Math.floor(theta / (2 * Math.PI));
      assert.equal(inBreath < 0.5 ? 'inhale' : 'exhale', pacer.phase, `rate ${rate} t ${t - start}`);
      assert.ok(Math.abs((inBreath < 0.5 ? inBreath * 2 : inBreath * 2 - 1) - pacer.progress) < 1e-9);
      assert.equal(Math.floor(theta / (2 * Math.PI) + 1e-12), pacer.cycle);
    }
  }
});

test('participants: ids, the locked share first, rates (locked at the pacer, the others 5–15 % off it), and the plan is checked', () => {
  const ps = groupParticipants({ participants: 8, lockedShare: 0.75, pacerRateBpm: 6, pacerStartMs: start, seed: 3 });
  assert.equal(lockedCount(8, 0.75), 6);
  assert.deepEqual(ps.map((p) => p.locked), [true, true, true, true, true, true, false, false]);
  assert.deepEqual(ps.map((p) => p.deviceId).slice(0, 2), ['sim-group-device-1', 'sim-group-device-2']);
  assert.ok(ps.every((p) => p.orgId === 'sim-org' && p.userId === `sim-group-user-${p.index}`));
  for (const p of ps) {
    const off = Math.abs(p.profile.breathingRatePerMin / 6 - 1);
    if (p.locked) assert.equal(off, 0);
    else assert.ok(off >= 0.05 && off <= 0.15, `participant ${p.index}: ${p.profile.breathingRatePerMin}`);
    assert.equal(p.profile.breathingClock?.referenceMs, start);
  }
  // At the fastest pacer, the others still breathe within the generator's 2..30 a minute.
  for (const p of groupParticipants({ participants: 20, lockedShare: 0, pacerRateBpm: 30, pacerStartMs: start, seed: 1 })) {
    assert.ok(p.profile.breathingRatePerMin < 30 && p.profile.breathingRatePerMin >= 30 * 0.85, `${p.profile.breathingRatePerMin}`);
  }
  for (const bad of [{ participants: 0 }, { participants: 2.5 }, { lockedShare: 1.1 }, { lockedShare: Number.NaN }, { pacerRateBpm: 1 }]) {
    assert.throws(() => groupParticipants({ participants: 4, lockedShare: 0.5, pacerRateBpm: 6, pacerStartMs: start, seed: 1, ...bad }), AttuneError, JSON.stringify(bad));
  }
});

test('deterministic: the same seed gives the same beats; another seed other beats', () => {
  const plan = { participants: 5, lockedShare: 0.6, pacerRateBpm: 6, pacerStartMs: start, seed: 42 };
  const a = groupParticipants(plan).map((p) => beatsOf(p, minutes(3)));
  const b = groupParticipants(plan).map((p) => beatsOf(p, minutes(3)));
  assert.deepEqual(a, b);
  assert.ok(a.every((beats) => beats.length > 150));
  const c = groupParticipants({ ...plan, seed: 43 }).map((p) => beatsOf(p, minutes(3)));
  for (let i = 0; i < a.length; i++) assert.notDeepEqual(a[i].slice(0, 20), c[i].slice(0, 20), `participant ${i + 1}`);
  // Each participant's stream is its own: participant 2's beats do not depend on the group's size.
  const bigger = groupParticipants({ ...plan, participants: 9, lockedShare: 0.6 * 5 / 9 });
  assert.deepEqual(beatsOf(bigger[1], minutes(1)), a[1].filter((x) => x.timeMs <= start + minutes(1)));
});

test('locked participants breathe in phase with the pacer (within an eighth of a breath), the others do not', () => {
  // 20 participants, half locked, 10 minutes, the phase against the pacer every two breaths
  // (20 s: the others' phase turns by at most 0.3 of a cycle in one, so it is not aliased), 3 seeds.
  const bound = Math.PI / 4;
  const segmentMs = 20_000;
  let lockedWithin = 0;
  let lockedSegments = 0;
  let otherWithin = 0;
  let otherSegments = 0;
  for (const seed of [1, 2, 3]) {
    for (const p of groupParticipants({ participants: 20, lockedShare: 0.5, pacerRateBpm: 6, pacerStartMs: start, seed })) {
      const beats = beatsOf(p, minutes(10));
      const phases = Array.from({ length: minutes(10) / segmentMs }, (_, k) => phaseAgainstPacer(beats, start + k * segmentMs, start + (k + 1) * segmentMs, 6));
      const within = phases.filter((x) => Math.abs(x) < bound).length;
      // The phase's mean direction, and how steady it is over the ten minutes (1: the same in every segment, ~0: all round the circle).
      const c = phases.reduce((sum, x) => sum + Math.cos(x), 0);
      const s = phases.reduce((sum, x) => sum + Math.sin(x), 0);
      const steadiness = Math.hypot(c, s) / phases.length;
      const label = `seed ${seed} participant ${p.index} (${p.profile.breathingRatePerMin.toFixed(2)}/min)`;
      if (p.locked) {
        lockedWithin += within;
        lockedSegments += phases.length;
        assert.ok(steadiness > 0.8, `${label} does not hold a phase: ${steadiness.toFixed(2)}`);
        assert.ok(Math.abs(Math.atan2(s, c)) < bound, `${label} breathes off the pacer: mean phase ${Math.atan2(s, c).toFixed(2)} rad`);
      } else {
        otherWithin += within;
        otherSegments += phases.length;
        // 5–15 % off the pacer for 10 minutes: the phase goes round at least three times.
        assert.ok(steadiness < 0.5, `${label} kept a phase: ${steadiness.toFixed(2)}`);
      }
    }
  }
  assert.ok(lockedWithin / lockedSegments >= 0.9, `locked: ${lockedWithin} of ${lockedSegments} segments within π/4`);
  // A phase going round the circle is within ±π/4 a quarter of the time.
  assert.ok(otherWithin / otherSegments < 0.4, `others: ${otherWithin} of ${otherSegments} segments within π/4`);
});

test('pipelines/group reads the simulated group as meant: the locked share synchronised (p < 0.05), the others near chance, a mixed group below the locked share', () => {
  const plan = createSynchronyPlan();
  const scratch = createSplineScratch();
  const windows = 6;
  const seriesOf = (beats: Beat[], w: number) => {
    const from = start + minutes(2) + w * 60_000;
    const out = new Float64Array(256);
    resampleCubic(Float64Array.from(beats, (b) => b.timeMs), Float64Array.from(beats, (b) => b.rrMs), beats.length, from, from + 64_000, 4, out, scratch);
    return out;
  };
  const syncOf = (beats: Beat[][], w: number, seed: number) => computeSynchrony(plan, beats.map((b) => seriesOf(b, w)), { seed, crossCorrelation: false });
  /** E[R] for N independent uniform phases: √π/(2√N). */
  const nullR = Math.sqrt(Math.PI) / (2 * Math.sqrt(10));
  const othersR: number[] = [];
  for (const seed of [1, 2, 3]) {
    const ps = groupParticipants({ participants: 20, lockedShare: 0.5, pacerRateBpm: 6, pacerStartMs: start, seed });
    const beats = ps.map((p) => beatsOf(p, minutes(10)));
    const locked = beats.filter((_, i) => ps[i].locked);
    const others = beats.filter((_, i) => !ps[i].locked);
    for (let w = 0; w < windows; w++) {
      const l = syncOf(locked, w, seed * 100 + w);
      const o = syncOf(others, w, seed * 100 + w);
      const all = syncOf(beats, w, seed * 100 + w);
      // Phases with sd ≈ 0.4 rad (own offset 0.25, wander 0.3): E[cos] ≈ e^(−0.4²/2) ≈ 0.92, less the phase estimate's own error.
      assert.ok(l.r! > 0.75 && l.p! < 0.05, `seed ${seed} window ${w}: locked R ${l.r} p ${l.p}`);
      assert.ok(o.r! < l.r! && all.r! < l.r!, `seed ${seed} window ${w}: locked R ${l.r}, others ${o.r}, all ${all.r}`);
      othersR.push(o.r!);
    }
  }
  // The others' R averaged over 18 windows (sd of one window's R about 0.09 under independence, so of the mean about 0.02).
  const meanOthers = othersR.reduce((a, b) => a + b, 0) / othersR.length;
  assert.ok(Math.abs(meanOthers - nullR) < 0.1, `others' mean R ${meanOthers.toFixed(3)} vs ${nullR.toFixed(3)} for independent phases`);
});
