import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanRr, cleanRrInto, createArtifactScratch, createCleanedRr, LOOKAHEAD_BEATS, LOOKAHEAD_MS, type CleanedRr } from './artifacts.js';
import { computeTimeDomain } from './time-domain.js';
import { beatTimesFromRr, injectEctopicBeats, synthesizeRr } from './synthetic-rr.js';
import { realisticSeries, sinusoidalRsaSeries, type LabelledSeries } from './artifact-free-series.test-util.js';

/** Each kept interval equals the step between its beat time and the previous one. */
function assertBeatTimesConsistent(c: CleanedRr): void {
  for (let i = 1; i < c.count; i++) {
    const step = c.beatTimesMs[i] - c.beatTimesMs[i - 1];
    assert.ok(Math.abs(step - c.rrMs[i]) < 1e-6, `beat ${i}: step ${step} vs RR ${c.rrMs[i]}`);
  }
}

const rmssd = (rr: Float64Array, t: Float64Array | null = null) => computeTimeDomain(rr, rr.length, t).rmssdMs;

function rsaSeries(seed: number, meanMs = 1000, frequency = 0.1) {
  return synthesizeRr({ durationMs: 300000, meanMs, rsaAmplitudeMs: 80, rsaFrequencyHz: frequency, noiseMs: 10, seed });
}

test('clean RSA series (0.1 and 0.25 Hz, several seeds) pass through untouched', () => {
  for (const frequency of [0.1, 0.25]) {
    for (let seed = 1; seed <= 5; seed++) {
      const s = rsaSeries(seed, 1000, frequency);
      const c = cleanRr(s.beatTimesMs, s.rrMs);
      assert.equal(c.removed + c.corrected, 0, `f ${frequency} seed ${seed}: ${JSON.stringify({ ...c, beatTimesMs: 0, rrMs: 0 })}`);
      assert.deepEqual(Array.from(c.rrMs), Array.from(s.rrMs));
      assert.equal(c.artifactRatio, 0);
    }
  }
});

test('an ectopic beat (short RR then compensatory long) is corrected by interpolation', () => {
  const s = rsaSeries(11);
  const rr = Float64Array.from(s.rrMs);
  const k = 120;
  rr[k] -= 330; // premature beat
  rr[k + 1] += 330; // compensatory pause: the beat after it is on time
  const c = cleanRr(beatTimesFromRr(rr), rr);
  assert.equal(c.ectopic, 1);
  assert.equal(c.corrected, 1);
  assert.equal(c.removed, 0);
  assert.equal(c.count, rr.length);
  assert.ok(Math.abs(c.rrMs[k] - c.rrMs[k + 1]) < 1e-9);
  assert.ok(Math.abs(c.rrMs[k] - (s.rrMs[k] + s.rrMs[k + 1]) / 2) < 1e-9);
  assertBeatTimesConsistent(c);
  const clean = rmssd(s.rrMs);
  assert.ok(rmssd(rr) > 1.3 * clean, 'the injected beat should disturb RMSSD');
  assert.ok(Math.abs(rmssd(c.rrMs) - clean) / clean < 0.03, `RMSSD ${rmssd(c.rrMs)} vs ${clean}`);
});

test('a late beat (long then short, PNP) is detected as ectopic too', () => {
  const s = rsaSeries(12);
  const rr = Float64Array.from(s.rrMs);
  rr[200] += 300;
  rr[201] -= 300;
  const c = cleanRr(beatTimesFromRr(rr), rr);
  assert.equal(c.ectopic, 1);
  assert.equal(c.removed + c.corrected, 1);
});

test('a premature beat without a compensatory pause (the next interval normal) is dropped; a misplaced beat is still re-timed', () => {
  for (const [seed, prematurity] of [[21, 0.3], [22, 0.4], [23, 0.25]] as const) {
    const s = rsaSeries(seed);
    const k = 120;
    // An atrial premature beat: interval k short, interval k + 1 as it was.
    const rr = Float64Array.from(s.rrMs);
    rr[k] = s.rrMs[k] * (1 - prematurity);
    const times = beatTimesFromRr(rr);
    const c = cleanRr(times, rr);
    assert.deepEqual([c.premature, c.removed, c.corrected], [1, 1, 0], `seed ${seed}`);
    assert.equal(c.count, rr.length - 1);
    assert.ok(!Array.from(c.beatTimesMs).includes(times[k]), 'the premature beat is gone');
    assert.ok(Array.from(c.rrMs).includes(rr[k + 1]), 'the interval after it is kept as it is');
    // No successive difference is taken across the drop: RMSSD is the sinus rhythm's.
    const clean = rmssd(s.rrMs);
    assert.ok(Math.abs(rmssd(c.rrMs, c.beatTimesMs) - clean) / clean < 0.05, `seed ${seed}: RMSSD ${rmssd(c.rrMs, c.beatTimesMs)} vs ${clean}`);
    assert.ok(rmssd(rr) > 1.1 * clean, 'left in, one beat in 300 inflates RMSSD by over 10 %');

    // A misplaced beat (detected 30 % of an interval early: the pair sums to two normal ones) is re-timed.
    const misplaced = Float64Array.from(s.rrMs);
    const shift = prematurity * s.rrMs[k];
    misplaced[k] -= shift;
    misplaced[k + 1] += shift;
    const m = cleanRr(beatTimesFromRr(misplaced), misplaced);
    assert.equal(m.premature, 0, `seed ${seed}: a misplaced beat is not dropped`);
    assert.equal(m.count, misplaced.length);
  }
});

test('deep, fast breathing (RSA 100–200 ms at 0.2–0.35 Hz, 50–90 bpm), clean and with compensated pairs: the premature reading keeps RMSSD within 10 % (issue 7\'s bar); drops printed', (t) => {
  // Beyond the artifact-free sets above (at most 150 ms at a quarter of the heart rate): here a
  // sinus trough, or a compensated pair in one, can fit the premature reading. isPremature's
  // steadiness test refuses almost all (the third round's review: 2,846 sinus beats dropped in
  // 720 such series without it).
  let series = 0;
  let sinusDrops = 0;
  let pairs = 0;
  let pairDrops = 0;
  let couplets = 0;
  let worst = 0;
  for (const bpm of [50, 60, 75, 90]) {
    for (const frequency of [0.2, 0.25, 0.3, 0.35]) {
      for (const amplitude of [100, 150, 200]) {
        for (const noiseMs of [5, 20]) {
          const s = synthesizeRr({ durationMs: 600000, meanMs: 60000 / bpm, rsaAmplitudeMs: amplitude, rsaFrequencyHz: frequency, noiseMs, seed: bpm + noiseMs });
          const sinus = rmssd(s.rrMs);
          const c = cleanRr(s.beatTimesMs, s.rrMs);
          series++;
          sinusDrops += c.premature;
          couplets += c.couplet;
          worst = Math.max(worst, Math.abs(rmssd(c.rrMs, c.beatTimesMs) / sinus - 1));
          for (let k = 60; k < s.rrMs.length - 60; k += 37) {
            const rr = injectEctopicBeats(s.rrMs, [k], [0.3]);
            const p = cleanRr(beatTimesFromRr(rr, s.beatTimesMs[0] - s.rrMs[0]), rr);
            pairs++;
            pairDrops += p.premature;
            worst = Math.max(worst, Math.abs(rmssd(p.rrMs, p.beatTimesMs) / sinus - 1));
          }
        }
      }
    }
  }
  t.diagnostic(`${series} sinus series of 10 min: ${sinusDrops} beats dropped as premature (an atrial couplet's two included), ${couplets} sinus beats re-timed as a compensated couplet; ${pairs} compensated pairs (30 % early): ${pairDrops} read as premature; worst RMSSD change ${(100 * worst).toFixed(1)} %`);
  assert.ok(worst < 0.1, `RMSSD off by ${(100 * worst).toFixed(1)} %`);
});

test('a missed beat (doubled RR) is split, even when the doubled RR exceeds 2000 ms', () => {
  for (const meanMs of [800, 1050]) {
    const s = rsaSeries(13, meanMs);
    const list = Array.from(s.rrMs);
    const k = 90;
    list.splice(k, 2, list[k] + list[k + 1]);
    const rr = Float64Array.from(list);
    const c = cleanRr(beatTimesFromRr(rr), rr);
    assert.equal(c.missed, 1, `mean ${meanMs}`);
    assert.equal(c.removed, 0);
    assert.equal(c.count, s.rrMs.length);
    assert.ok(Math.abs(c.rrMs[k] - rr[k] / 2) < 1e-9);
    assertBeatTimesConsistent(c);
    const clean = rmssd(s.rrMs);
    assert.ok(Math.abs(rmssd(c.rrMs) - clean) / clean < 0.03, `mean ${meanMs}: RMSSD ${rmssd(c.rrMs)} vs ${clean}`);
  }
});

test('an extra beat (split RR) is merged back', () => {
  const s = rsaSeries(14);
  for (const share of [0.5, 0.35, 0.7]) {
    const list = Array.from(s.rrMs);
    const k = 150;
    list.splice(k, 1, list[k] * share, list[k] * (1 - share));
    const rr = Float64Array.from(list);
    const c = cleanRr(beatTimesFromRr(rr), rr);
    assert.equal(c.extra, 1, `share ${share}`);
    assert.equal(c.removed + c.corrected, 1);
    assert.equal(c.count, s.rrMs.length);
    assert.ok(Math.abs(c.rrMs[k] - s.rrMs[k]) < 1e-9);
    assertBeatTimesConsistent(c);
  }
});

test('several artifacts in one series: all corrected, RMSSD within 3 % of the clean series', () => {
  const s = rsaSeries(15);
  const list = Array.from(s.rrMs);
  list[40] -= 300; // ectopic
  list[41] += 300;
  list.splice(100, 2, list[100] + list[101]); // missed
  list.splice(180, 1, list[180] * 0.45, list[180] * 0.55); // extra
  list[250] -= 280; // ectopic
  list[251] += 280;
  const rr = Float64Array.from(list);
  const c = cleanRr(beatTimesFromRr(rr), rr);
  assert.deepEqual([c.ectopic, c.missed, c.extra, c.removed], [2, 1, 1, 0]);
  assert.equal(c.count, s.rrMs.length);
  assert.ok(Math.abs(c.artifactRatio - 4 / rr.length) < 1e-12);
  const clean = rmssd(s.rrMs);
  assert.ok(Math.abs(rmssd(c.rrMs, c.beatTimesMs) - clean) / clean < 0.03);
});

test('the README\'s density limit: one premature beat in 7 (30 % early, compensatory pause) is corrected throughout, RMSSD within 10 % of the clean series', (t) => {
  // The README's "up to about one ectopic beat in 7 is corrected" (Known limitations). The same
  // series at one in 6 and one in 5 is reported, not asserted: that is where it stops.
  for (const every of [7, 6, 5]) {
    let injected = 0;
    let removed = 0;
    let worstRmssd = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 40 + seed });
      const positions: number[] = [];
      for (let k = 10; k + 2 < s.rrMs.length; k += every) positions.push(k);
      const rr = injectEctopicBeats(s.rrMs, positions, positions.map(() => 0.3));
      const times = beatTimesFromRr(rr);
      const c = cleanRr(times, rr);
      const kept = new Set(Array.from(c.beatTimesMs.subarray(0, c.count), (v) => Math.round(v * 1000)));
      injected += positions.length;
      // The premature beat closes interval k: corrected means it is no longer where it was.
      removed += positions.filter((k) => !kept.has(Math.round(times[k] * 1000))).length;
      const clean = rmssd(s.rrMs);
      worstRmssd = Math.max(worstRmssd, Math.abs(rmssd(c.rrMs, c.beatTimesMs) - clean) / clean);
    }
    t.diagnostic(`one in ${every}: ${removed} of ${injected} premature beats corrected; worst RMSSD error ${(100 * worstRmssd).toFixed(1)} %`);
    if (every === 7) {
      assert.equal(removed, injected);
      assert.ok(worstRmssd < 0.1, `RMSSD off by ${(100 * worstRmssd).toFixed(1)} %`);
    }
  }
});

test('RR outside 300–2000 ms is dropped, with beat times kept for the rest', () => {
  // A 5 s signal dropout: five intervals arrive as one (beat times stay true).
  const s = rsaSeries(16);
  const list = Array.from(s.rrMs);
  const k = 60;
  list.splice(k, 5, list[k] + list[k + 1] + list[k + 2] + list[k + 3] + list[k + 4]);
  const rr = Float64Array.from(list);
  const t = beatTimesFromRr(rr);
  const c = cleanRr(t, rr);
  assert.equal(c.removed, 1);
  assert.equal(c.corrected, 0);
  assert.equal(c.count, rr.length - 1);
  for (let i = 0; i < c.count; i++) assert.ok(c.rrMs[i] >= 300 && c.rrMs[i] <= 2000);
  assert.ok(!Array.from(c.beatTimesMs).includes(t[k]));
  assert.ok(Math.abs(c.artifactRatio - 1 / rr.length) < 1e-12);
  // The gap leaves one pair of intervals non-successive for RMSSD.
  assert.equal(computeTimeDomain(c.rrMs, c.count, c.beatTimesMs).differenceCount, c.count - 2);

  // Too short a series to classify: only the range rule applies.
  const tiny = cleanRr(Float64Array.of(250, 1150), Float64Array.of(250, 900));
  assert.deepEqual([tiny.count, tiny.removed, tiny.outOfRange], [1, 1, 1]);
  assert.equal(tiny.rrMs[0], 900);
});

test('correction runs before the range rule: a 250 ms premature beat with its pause is interpolated', () => {
  const s = rsaSeries(18);
  const rr = Float64Array.from(s.rrMs);
  const k = 70;
  const sum = rr[k] + rr[k + 1];
  rr[k] = 250;
  rr[k + 1] = sum - 250;
  const c = cleanRr(beatTimesFromRr(rr), rr);
  assert.equal(c.ectopic, 1);
  assert.equal(c.removed, 0);
  assert.ok(Math.abs(c.rrMs[k] - sum / 2) < 1e-9);
  assertBeatTimesConsistent(c);
});

test('cleanRrInto works on a slice, reuses its buffers and grows them when needed', () => {
  const s = rsaSeries(17);
  const rr = Float64Array.from(s.rrMs);
  rr[30] -= 300;
  rr[31] += 300;
  const t = beatTimesFromRr(rr);
  const out = createCleanedRr(4);
  const scratch = createArtifactScratch(4);
  cleanRrInto(t, rr, 10, 130, out, scratch);
  assert.equal(out.inputCount, 120);
  assert.equal(out.count, 120);
  assert.equal(out.ectopic, 1);
  assert.equal(out.beatTimesMs[0], t[10]);
  assert.ok(scratch.capacity >= 120);
  const buffer = out.rrMs;
  // 45 beats before `from` are read as context, so this call handles 60 + 45 beats.
  cleanRrInto(t, rr, 100, 160, out, scratch);
  assert.equal(out.rrMs, buffer, 'a smaller call reuses the buffer');
  assert.equal(out.ectopic, 0);
  assert.equal(out.removed + out.corrected, 0);
  cleanRrInto(t, rr, 5, 5, out, scratch);
  assert.equal(out.count, 0);
  assert.equal(out.artifactRatio, 0);
});

/** 64 s windows every 5 s over the series, cleaned one by one as window-metrics.ts cleans them (context and lookahead). */
function forEachWindow(t: Float64Array, rr: Float64Array, visit: (c: CleanedRr, from: number, to: number) => void): void {
  const out = createCleanedRr();
  const scratch = createArtifactScratch();
  let from = 0;
  let to = 0;
  let ahead = 0;
  for (let start = 0; start + 64000 <= t[t.length - 1]; start += 5000) {
    while (from < t.length && t[from] < start) from++;
    while (to < t.length && t[to] < start + 64000) to++;
    while (ahead < t.length && t[ahead] < start + 64000 + LOOKAHEAD_MS) ahead++;
    visit(cleanRrInto(t, rr, from, to, out, scratch, ahead), from, to);
  }
}

/** The series the cleaning changed, whole or one window at a time, with how many beats. */
function touchedSeries(all: readonly LabelledSeries[]): string[] {
  const touched: string[] = [];
  for (const { label, s } of all) {
    const whole = cleanRr(s.beatTimesMs, s.rrMs);
    let windowBeats = 0;
    forEachWindow(s.beatTimesMs, s.rrMs, (c) => {
      windowBeats += c.removed + c.corrected;
    });
    if (whole.removed + whole.corrected + windowBeats > 0) touched.push(`${label}: whole ${whole.removed + whole.corrected}, windows ${windowBeats}`);
  }
  return touched;
}

test('artifact-free RSA at 0.04–0.25 Hz, 50–150 ms amplitude, 60 and 75 bpm: no beat changed or removed, whole series or per window', () => {
  const all = sinusoidalRsaSeries();
  const touched = touchedSeries(all);
  assert.equal(all.length, 516);
  assert.deepEqual(touched, [], `${touched.length} of ${all.length} series touched`);
});

test('realistic artifact-free series (wandering rate, steep climbs and falls, joins, steady rhythm): no beat changed or removed, whole series or per window', () => {
  // Before issue 7's second artifact round (Th1 floor at 20 % of RR, pair rules): 76 of the 297
  // touched (drift 6 of 72, climbs 4, joins 1, steady 65 of 81), the very series the shared
  // records resemble (NSRDB 16272 is a steady rhythm; the NSRDB segments are joined).
  const all = realisticSeries();
  const touched = touchedSeries(all);
  assert.ok(all.length > 200);
  const byKind = (kind: string) => `${touched.filter((x) => x.startsWith(kind)).length} of ${all.filter((x) => x.label.startsWith(kind)).length} ${kind}`;
  assert.deepEqual(touched, [], `${touched.length} of ${all.length} series touched: ${['drift', 'climbs', 'joins', 'steady'].map(byKind).join(', ')}`);
});

test('an ectopic beat on the steep flank of slow deep RSA is corrected as a pair (reported for 120–200 ms, asserted at 120 ms below)', (t) => {
  // The steep-climb case of the real records (Y3 meditation 781 / 707.8 / 1151.6 / 875 ms; pyHRV
  // 664 / 528.9 / 846.1 / 812 ms): a development set for the pair rules, reported here.
  // Measured on this grid: 77 of 3810 wrong before issue 7's second artifact round, 7 after.
  let wrong = 0;
  let total = 0;
  const examples: string[] = [];
  for (const meanMs of [750, 1000]) {
    for (const amplitude of [120, 150, 200]) {
      for (const frequency of [0.05, 0.1]) {
        const s = synthesizeRr({ durationMs: 300000, meanMs, rsaAmplitudeMs: amplitude, rsaFrequencyHz: frequency, noiseMs: 3, seed: 7 });
        for (let k = 20; k < s.rrMs.length - 20; k += 3) {
          for (const p of [0.2, 0.3, 0.4]) {
            const rr = Float64Array.from(s.rrMs);
            rr[k] = s.rrMs[k] * (1 - p);
            rr[k + 1] = s.rrMs[k + 1] + s.rrMs[k] * p;
            const times = beatTimesFromRr(rr);
            const c = cleanRr(times, rr);
            const pair = (s.rrMs[k] + s.rrMs[k + 1]) / 2;
            let i = 0;
            while (i < c.count && Math.abs(c.beatTimesMs[i] - times[k - 1]) > 1e-6) i++;
            const ok = i + 2 < c.count && Math.abs(c.rrMs[i + 1] - pair) < 1e-6 && Math.abs(c.rrMs[i + 2] - pair) < 1e-6 && c.corrected === 1;
            total++;
            if (!ok) {
              wrong++;
              if (examples.length < 5) examples.push(`${meanMs} ms ${amplitude} ms ${frequency} Hz p ${p}: ${Array.from(rr.subarray(k - 2, k + 3), (x) => x.toFixed(0)).join(' / ')}`);
            }
          }
        }
      }
    }
  }
  t.diagnostic(`${wrong} of ${total} not corrected as a pair${examples.length ? `, e.g. ${examples.join('; ')}` : ''}`);
  assert.ok(total > 3000);
});

test('an ectopic beat at any phase of slow deep RSA (rising, falling, peak, trough) is corrected with its own compensatory pause', () => {
  // RR rising when the premature beat comes is the case that was corrected against the wrong
  // neighbour (929.7 / 656.3 / 1218.8 ms became 793 / 793 / 1218.8).
  const wrong: string[] = [];
  for (const frequency of [0.05, 0.1]) {
    const s = synthesizeRr({ durationMs: 300000, meanMs: 1000, rsaAmplitudeMs: 120, rsaFrequencyHz: frequency, noiseMs: 3, seed: 7 });
    for (let k = 20; k < s.rrMs.length - 20; k += 3) {
      for (const p of [0.2, 0.3, 0.4]) {
        const rr = Float64Array.from(s.rrMs);
        rr[k] = s.rrMs[k] * (1 - p);
        rr[k + 1] = s.rrMs[k + 1] + s.rrMs[k] * p;
        const c = cleanRr(beatTimesFromRr(rr), rr);
        const pair = (s.rrMs[k] + s.rrMs[k + 1]) / 2;
        // Only the pair is judged here (found by beat time); whether the RSA itself is left
        // alone is the test above.
        const t = beatTimesFromRr(rr);
        let i = 0;
        while (i < c.count && Math.abs(c.beatTimesMs[i] - t[k - 1]) > 1e-6) i++;
        const ok =
          i + 2 < c.count &&
          Math.abs(c.rrMs[i] - s.rrMs[k - 1]) < 1e-6 &&
          Math.abs(c.rrMs[i + 1] - pair) < 1e-6 &&
          Math.abs(c.rrMs[i + 2] - pair) < 1e-6 &&
          Math.abs(c.beatTimesMs[i + 2] - t[k + 1]) < 1e-6;
        if (!ok) {
          wrong.push(
            `${frequency} Hz k ${k} p ${p}: ${rr[k - 1].toFixed(1)} / ${rr[k].toFixed(1)} / ${rr[k + 1].toFixed(1)} → ` +
              `${Array.from(c.rrMs.subarray(i, i + 3), (x) => x.toFixed(1)).join(' / ')}`,
          );
        }
      }
    }
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} ectopic beats miscorrected`);
});

test('a misplaced beat at any phase of slow RSA (0.05 and 0.1 Hz, 50–120 ms), detected 15–25 % late or early, is re-timed to the middle of its pair; faster breathing printed', (t) => {
  // Detected late (long, then short), it had its short interval dropped as a premature beat, or
  // was left, in 88–127 of 261 cases a cell (fixtures/ARTIFACT-SPLIT.md, tenth round).
  const wrong: string[] = [];
  for (const direction of ['late', 'early'] as const) {
    for (const amplitude of [50, 80, 120]) {
      for (const frequency of [0.05, 0.1, 0.15, 0.25]) {
        const s = synthesizeRr({ durationMs: 300000, meanMs: 1000, rsaAmplitudeMs: amplitude, rsaFrequencyHz: frequency, noiseMs: 3, seed: 7 });
        let cases = 0;
        let missed = 0;
        for (let k = 20; k < s.rrMs.length - 20; k += 3) {
          for (const shift of [0.15, 0.2, 0.25]) {
            const rr = Float64Array.from(s.rrMs);
            const d = shift * s.rrMs[k] * (direction === 'late' ? 1 : -1);
            rr[k] += d;
            rr[k + 1] -= d;
            const times = beatTimesFromRr(rr);
            const c = cleanRr(times, rr);
            const pair = (s.rrMs[k] + s.rrMs[k + 1]) / 2;
            let i = 0;
            while (i < c.count && Math.abs(c.beatTimesMs[i] - times[k - 1]) > 1e-6) i++;
            const ok =
              i + 2 < c.count &&
              Math.abs(c.rrMs[i + 1] - pair) < 1e-6 &&
              Math.abs(c.rrMs[i + 2] - pair) < 1e-6 &&
              Math.abs(c.beatTimesMs[i + 2] - times[k + 1]) < 1e-6;
            cases++;
            if (ok) continue;
            missed++;
            if (frequency <= 0.1) wrong.push(`${direction} ${amplitude} ms ${frequency} Hz k ${k} ${100 * shift} %: ${rr[k - 1].toFixed(1)} / ${rr[k].toFixed(1)} / ${rr[k + 1].toFixed(1)}`);
          }
        }
        t.diagnostic(`${direction}, ${amplitude} ms at ${frequency} Hz: ${cases - missed} of ${cases} re-timed`);
      }
    }
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} misplaced beats at slow breathing not re-timed`);
});

test('an extra beat on deep slow RSA (80–150 ms at 0.06 and 0.1 Hz) is merged back, not read as a late beat before it', () => {
  // The late-beat reading first took the normal interval before an extra beat's halves for a
  // long one (858.2 / 903.4 / 490.2 / 490.2 / 1069.8 ms became 858.2 / 696.8 / 696.8 / 780 / 780).
  const wrong: string[] = [];
  for (const amplitude of [80, 150]) {
    for (const frequency of [0.06, 0.1]) {
      const s = synthesizeRr({ durationMs: 300000, meanMs: 1000, rsaAmplitudeMs: amplitude, rsaFrequencyHz: frequency, noiseMs: 0, seed: 5 });
      for (let k = 20; k < s.rrMs.length - 20; k += 7) {
        for (const a of [0.3, 0.4, 0.5]) {
          const rr = Float64Array.from([...s.rrMs.subarray(0, k), a * s.rrMs[k], (1 - a) * s.rrMs[k], ...s.rrMs.subarray(k + 1)]);
          const c = cleanRr(beatTimesFromRr(rr), rr);
          const merged = c.count === s.rrMs.length && c.extra === 1 && Array.from(c.rrMs.subarray(0, c.count)).every((v, i) => Math.abs(v - s.rrMs[i]) < 1e-6);
          if (!merged) wrong.push(`${amplitude} ms ${frequency} Hz k ${k} split ${a}: ${Array.from(rr.subarray(k - 2, k + 3), (x) => x.toFixed(1)).join(' / ')}`);
        }
      }
    }
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} extra beats not merged`);
});

test('the reported rising-RR triple 929.7 / 656.3 / 1218.8 ms is corrected as a pair', () => {
  // Slow RSA climbing through the premature beat: 656.3 + 1218.8 = 1875.1 ms is two beats of
  // ~937.5 ms, the next step of the climb from 929.7 ms.
  const s = synthesizeRr({ durationMs: 120000, meanMs: 900, rsaAmplitudeMs: 150, rsaFrequencyHz: 0.1, noiseMs: 0, seed: 1 });
  const rr = Float64Array.from(s.rrMs);
  // The steep flank of deep RSA: the first k where RR climbs by > 65 ms a beat, the series
  // shifted so that RR[k] is the reported 929.7 ms.
  let k = 5;
  while (k < rr.length - 3 && !(rr[k] - rr[k - 1] > 65 && rr[k + 1] > rr[k])) k++;
  assert.ok(k < rr.length - 3, 'no steep rising stretch');
  const shift = 929.7 - rr[k];
  for (let i = 0; i < rr.length; i++) rr[i] += shift;
  rr[k] = 929.7;
  rr[k + 1] = 656.3;
  rr[k + 2] = 1218.8;
  const c = cleanRr(beatTimesFromRr(rr), rr);
  assert.equal(c.count, rr.length);
  assert.ok(Math.abs(c.rrMs[k] - 929.7) < 1e-9, `the normal 929.7 ms became ${c.rrMs[k]}`);
  assert.ok(Math.abs(c.rrMs[k + 1] - 937.55) < 1e-9 && Math.abs(c.rrMs[k + 2] - 937.55) < 1e-9, `pair became ${c.rrMs[k + 1]} / ${c.rrMs[k + 2]}`);
});

test('an ectopic beat just before a window is re-timed with the context before it', () => {
  const s = rsaSeries(21);
  const inject = (p: number) => {
    const rr = Float64Array.from(s.rrMs);
    rr[k] = s.rrMs[k] * (1 - p);
    rr[k + 1] = s.rrMs[k + 1] + s.rrMs[k] * p;
    return { rr, t: beatTimesFromRr(rr) };
  };
  const k = 100;
  const from = k + 1; // the window opens with the compensatory pause
  const to = from + 64;

  // The beats before `from` are in the buffer: the pair is seen whole and its first beat re-timed.
  for (const p of [0.2, 0.3, 0.4]) {
    const { rr, t } = inject(p);
    const c = cleanRrInto(t, rr, from, to, createCleanedRr(), createArtifactScratch());
    assert.equal(c.count, 64, `p ${p}`);
    assert.equal(c.ectopic, 1, `p ${p}`);
    assert.ok(Math.abs(c.rrMs[0] - (s.rrMs[k] + s.rrMs[k + 1]) / 2) < 1e-9, `p ${p}: first interval ${c.rrMs[0]}`);
  }
});

test('lookahead: the beats after a window are read, never written: a pair or a premature beat at its end is judged whole', () => {
  const s = rsaSeries(23);
  const from = 40;
  const to = from + 64;
  const k = to - 1; // the window's last interval
  const window = (rr: Float64Array, t: Float64Array, readTo: number) => cleanRrInto(t, rr, from, to, createCleanedRr(), createArtifactScratch(), readTo);
  for (const p of [0.2, 0.3, 0.4]) {
    // A compensated pair whose pause is the first interval after the window: with the lookahead
    // the premature beat (the window's last) is re-timed as the pair's and counted for the window.
    const pair = Float64Array.from(s.rrMs);
    pair[k] = s.rrMs[k] * (1 - p);
    pair[k + 1] = s.rrMs[k + 1] + s.rrMs[k] * p;
    const pt = beatTimesFromRr(pair);
    const seen = window(pair, pt, pt.length);
    assert.equal(seen.count, 64, `pair p ${p}`);
    assert.equal(seen.ectopic, 1, `pair p ${p}`);
    assert.ok(Math.abs(seen.rrMs[63] - (s.rrMs[k] + s.rrMs[k + 1]) / 2) < 1e-9, `pair p ${p}: last interval ${seen.rrMs[63]}`);
    // Nothing of the lookahead is written out.
    assert.ok(seen.beatTimesMs.subarray(0, seen.count).every((time) => time < pt[to]));
    // A premature beat without a compensatory pause in the last interval: dropped with the
    // lookahead (the next interval is normal); without it, it cannot be told from a pair. (At
    // 20 % early on this RSA it is 19 % under its neighbours' mean, short of Karlsson's 20 %.)
    if (p < 0.3) continue;
    const atrial = Float64Array.from(s.rrMs);
    atrial[k] = s.rrMs[k] * (1 - p);
    const at = beatTimesFromRr(atrial);
    const dropped = window(atrial, at, at.length);
    assert.equal(dropped.premature, 1, `atrial p ${p}`);
    assert.equal(dropped.count, 63, `atrial p ${p}`);
    assert.equal(dropped.inputCount, 64);
    const blind = window(atrial, at, to);
    assert.equal(blind.premature, 0, `atrial p ${p}, no lookahead`);
  }
  // The lookahead stops at a gap: beats after one are not read. The series cut at the window's
  // end and resumed 60 s later reads like the series ending with the window.
  const atrial = Float64Array.from(s.rrMs);
  atrial[k] = s.rrMs[k] * 0.7;
  const gt = Float64Array.from(beatTimesFromRr(atrial), (time, i) => (i >= to ? time + 60_000 : time));
  const acrossGap = window(atrial, gt, gt.length);
  const none = window(atrial, gt, to);
  assert.deepEqual(Array.from(acrossGap.rrMs.subarray(0, acrossGap.count)), Array.from(none.rrMs.subarray(0, none.count)));
  assert.equal(acrossGap.premature, 0);
  // At most LOOKAHEAD_BEATS are read: what lies further on changes nothing.
  const far = Float64Array.from(s.rrMs);
  for (let i = to + LOOKAHEAD_BEATS; i < far.length; i++) far[i] = 400 + (i % 2) * 900;
  const ft = beatTimesFromRr(far);
  const ref = window(Float64Array.from(s.rrMs), beatTimesFromRr(s.rrMs), s.rrMs.length);
  const got = window(far, ft, ft.length);
  assert.deepEqual(Array.from(got.rrMs.subarray(0, got.count)), Array.from(ref.rrMs.subarray(0, ref.count)));
});
