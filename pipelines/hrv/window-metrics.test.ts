import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeWindowMetrics, createWindowPlan, measureIrregularity, windowCoverage, type WindowMetrics } from './window-metrics.js';
import { AttuneError } from '../../lib/errors.js';
import { beatTimesFromRr, createRandom, gaussian, injectEctopicBeats, synthesizeRr } from './synthetic-rr.js';
import { realisticSeries, sinusoidalRsaSeries } from './artifact-free-series.test-util.js';
import { loadRrRecording, rrDataDir } from './rr-recordings.test-util.js';
import { readdirSync } from 'node:fs';

const WINDOW = 64000;
const BIN = 4 / 512;
const START = 10000; // windows start after the series does, so the spline has beats at both edges

function window(beatTimesMs: Float64Array, rrMs: Float64Array, plan = createWindowPlan()): WindowMetrics {
  return computeWindowMetrics(beatTimesMs, rrMs, rrMs.length, START, START + WINDOW, plan);
}

function rsa(frequencyHz: number, seed: number, amplitudeMs = 80) {
  return synthesizeRr({ durationMs: 90000, rsaAmplitudeMs: amplitudeMs, rsaFrequencyHz: frequencyHz, noiseMs: 8, seed });
}

test('0.1 Hz RSA: peak at 0.1 Hz within one bin, CR > 3, score > 0.7, 6 breaths/min', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const s = rsa(0.1, seed);
    const m = window(s.beatTimesMs, s.rrMs);
    assert.equal(m.valid, true);
    assert.ok(Math.abs(m.peakFrequencyHz! - 0.1) < BIN, `seed ${seed}: peak ${m.peakFrequencyHz}`);
    assert.ok(m.coherenceRatio! > 3, `seed ${seed}: CR ${m.coherenceRatio}`);
    assert.ok(m.coherence! > 0.7, `seed ${seed}: score ${m.coherence}`);
    assert.ok(Math.abs(m.breathingRateBpm! - 6) < 60 * BIN);
    assert.ok(Math.abs(m.coherence! - m.coherenceRatio! / (1 + m.coherenceRatio!)) < 1e-12);
    assert.ok(Math.abs(m.meanHrBpm! - 60) < 1.5, `HR ${m.meanHrBpm}`);
    assert.equal(m.artifactRatio, 0);
    assert.equal(m.invalidReason, null);
  }
});

test('white-noise RR: CR < 1 and a low score', () => {
  for (let seed = 1; seed <= 8; seed++) {
    const random = createRandom(100 + seed);
    const rr = new Float64Array(95);
    for (let i = 0; i < rr.length; i++) rr[i] = 950 + 40 * gaussian(random);
    const m = window(beatTimesFromRr(rr), rr);
    assert.equal(m.valid, true, `seed ${seed}: ${m.invalidReason}`);
    assert.ok(m.coherenceRatio! < 1, `seed ${seed}: CR ${m.coherenceRatio}`);
    assert.ok(m.coherence! < 0.5, `seed ${seed}: score ${m.coherence}`);
  }
});

test('0.25 Hz RSA: breathing rate 15/min', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const s = rsa(0.25, seed, 50);
    const m = window(s.beatTimesMs, s.rrMs);
    assert.equal(m.valid, true);
    assert.ok(Math.abs(m.breathingRateBpm! - 15) < 0.5, `seed ${seed}: ${m.breathingRateBpm}/min`);
  }
});

test('injected ectopic, missed and extra beats are corrected: RMSSD within 3 %, coherence within 0.03', () => {
  for (let seed = 1; seed <= 4; seed++) {
    const s = rsa(0.1, seed);
    const clean = window(s.beatTimesMs, s.rrMs);
    const list = Array.from(s.rrMs);
    // Indices well inside the window [10 s, 74 s) of a ~1 s rhythm.
    list[25] -= 320; // premature beat …
    list[26] += 320; // … and its compensatory pause
    list.splice(45, 2, list[45] + list[46]); // missed beat
    list.splice(60, 1, list[60] * 0.4, list[60] * 0.6); // extra beat
    const rr = Float64Array.from(list);
    const t = beatTimesFromRr(rr);
    const dirty = window(t, rr);
    assert.equal(dirty.valid, true);
    assert.equal(dirty.beatCount, clean.beatCount);
    assert.ok(dirty.artifactRatio > 0 && dirty.artifactRatio < 0.06, `artifact ratio ${dirty.artifactRatio}`);
    assert.ok(Math.abs(dirty.rmssdMs! - clean.rmssdMs!) / clean.rmssdMs! < 0.03, `seed ${seed}: RMSSD ${dirty.rmssdMs} vs ${clean.rmssdMs}`);
    assert.ok(Math.abs(dirty.coherence! - clean.coherence!) < 0.03, `seed ${seed}: coherence ${dirty.coherence} vs ${clean.coherence}`);
    assert.ok(Math.abs(dirty.peakFrequencyHz! - clean.peakFrequencyHz!) < BIN / 2);
  }
});

test('RR outside 300–2000 ms is dropped and counted; the hole it leaves is a gap', () => {
  const s = rsa(0.1, 7);
  const list = Array.from(s.rrMs);
  // A 4 s dropout inside the window: four intervals arrive as one.
  list.splice(40, 4, list[40] + list[41] + list[42] + list[43]);
  const rr = Float64Array.from(list);
  const t = beatTimesFromRr(rr);
  const inWindow = rr.filter((_, i) => t[i] >= START && t[i] < START + WINDOW).length;
  const m = window(t, rr);
  assert.equal(m.beatCount, inWindow - 1);
  assert.ok(Math.abs(m.artifactRatio - 1 / inWindow) < 1e-12);
  // 4 s is 0.4 of a 10 s breath: more than the quarter breath a spline can bridge.
  assert.ok(Math.abs(m.longestGapMs - list[40]) < 1e-6, `gap ${m.longestGapMs}`);
  assert.deepEqual([m.valid, m.invalidReason, m.partial], [false, 'long_gap', false]);
});

test('windowCoverage: covered share, longest gap, and the stretches at both edges', () => {
  // Window [0, 10 000): intervals [−500, 500], [500, 1500], gap, [4000, 5000], [5000, 6000]; nothing after 6000.
  const t = [500, 1500, 5000, 6000];
  const rr = [1000, 1000, 1000, 1000];
  const c = windowCoverage(t, rr, 4, 0, 10_000);
  assert.equal(c.coverage, (500 + 1000 + 1000 + 1000) / 10_000);
  assert.deepEqual([c.leadingGapMs, c.longestInteriorGapMs, c.trailingGapMs, c.longestGapMs], [0, 2500, 4000, 4000]);
  // Data that starts late: the leading stretch.
  const late = windowCoverage([3000, 4000], [1000, 1000], 2, 0, 4500);
  assert.deepEqual([late.leadingGapMs, late.longestInteriorGapMs, late.trailingGapMs, late.coverage], [2000, 0, 500, 2000 / 4500]);
  // Overlapping intervals (RR longer than the step between beat times) are not counted twice.
  const overlap = windowCoverage([1000, 1500], [1000, 1000], 2, 0, 2000);
  assert.deepEqual([overlap.coverage, overlap.longestGapMs], [0.75, 500]);
  const empty = windowCoverage([], [], 0, 0, 64_000);
  assert.deepEqual([empty.coverage, empty.leadingGapMs, empty.trailingGapMs, empty.longestGapMs], [0, 64_000, 64_000, 64_000]);
});

/** The series without the beats whose time lies in [from, to): a sensor dropout (later beats keep their times). */
function dropout(t: Float64Array, rr: Float64Array, from: number, to: number) {
  const keep = (_: number, i: number) => t[i] < from || t[i] >= to;
  return { t: t.filter(keep), rr: rr.filter(keep) };
}

test('a window missing 30 % of its span is invalid (low_coverage), and says how much it covers', () => {
  // Was valid, with CR 0.51 instead of 8.4 and the peak at 0.062 Hz instead of 0.1.
  const s = synthesizeRr({ durationMs: 200_000, rsaAmplitudeMs: 50, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 7 });
  const hole = dropout(s.beatTimesMs, s.rrMs, 100_000 - 9_600, 100_000 + 9_600);
  const m = computeWindowMetrics(hole.t, hole.rr, hole.rr.length, 68_000, 132_000, createWindowPlan());
  assert.deepEqual([m.valid, m.invalidReason, m.partial, m.coherenceRatio], [false, 'low_coverage', false, null]);
  assert.ok(m.coverage > 0.65 && m.coverage < 0.72, `coverage ${m.coverage}`);
  assert.ok(m.longestGapMs > 18_000 && m.longestGapMs < 20_000, `gap ${m.longestGapMs}`);
});

test('no window that holds 5 s or more of a 20 s dropout is valid', () => {
  // Was: windows holding 5–19 s of it valid, CR 45–87 % off (0.05–0.25 Hz).
  const plan = createWindowPlan();
  for (const hz of [0.05, 0.1, 0.25]) {
    const s = synthesizeRr({ durationMs: 400_000, rsaAmplitudeMs: 50, rsaFrequencyHz: hz, noiseMs: 8, seed: 3 });
    const g = dropout(s.beatTimesMs, s.rrMs, 200_000, 220_000);
    for (let end = 205_000; end <= 280_000; end += 5000) {
      const held = Math.min(end, 220_000) - Math.max(end - WINDOW, 200_000);
      const m = computeWindowMetrics(g.t, g.rr, g.rr.length, end - WINDOW, end, plan);
      if (held >= 5000) {
        assert.equal(m.valid, false, `${hz} Hz, window ending ${end}: ${held} ms of the gap, CR ${m.coherenceRatio}`);
        assert.equal(m.coherence, null);
      }
      // Where the gap is cut by the window's edge it is partial; inside, a long gap or low coverage.
      const atEdge = end - WINDOW > 200_000 - 1000 || end < 220_000 + 1000;
      if (!m.valid) assert.equal(m.invalidReason, atEdge ? 'partial' : m.coverage < 0.9 ? 'low_coverage' : 'long_gap', `window ending ${end}`);
      assert.equal(m.partial, m.invalidReason === 'partial');
    }
  }
});

test('a gap inside a window may last a quarter breath at the window\'s breathing rate', () => {
  // 2 s is a fifth of a 10 s breath (bridged) but half of a 4 s breath (not).
  for (const [hz, gapMs, valid] of [[0.1, 2000, true], [0.1, 3000, false], [0.25, 2000, false], [0.05, 4000, true], [0.05, 6000, false]] as const) {
    const s = synthesizeRr({ durationMs: 200_000, rsaAmplitudeMs: 50, rsaFrequencyHz: hz, noiseMs: 8, seed: 11 });
    const g = dropout(s.beatTimesMs, s.rrMs, 100_000, 100_000 + gapMs);
    const m = computeWindowMetrics(g.t, g.rr, g.rr.length, 70_000, 134_000, createWindowPlan());
    assert.equal(m.valid, valid, `${hz} Hz, ${gapMs} ms gap (${m.longestGapMs} ms uncovered): ${m.invalidReason}`);
    assert.equal(m.invalidReason, valid ? null : 'long_gap');
    assert.ok(m.coverage > 0.9);
  }
});

test("a session's first windows are partial and invalid until the data reaches back to their start", () => {
  // Was: valid from 50 s of data on (coverage ≥ 70 %), and counted in the session's averages.
  const s = synthesizeRr({ durationMs: 200_000, rsaAmplitudeMs: 50, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 3 });
  const plan = createWindowPlan();
  for (let end = 5000; end <= 75_000; end += 5000) {
    const m = computeWindowMetrics(s.beatTimesMs, s.rrMs, s.rrMs.length, end - WINDOW, end, plan);
    const missingAtStart = WINDOW - end; // the series starts at 0
    if (missingAtStart > 4000) {
      assert.deepEqual([m.valid, m.partial, m.invalidReason], [false, true, 'partial'], `window ending ${end}`);
      assert.ok(Math.abs(m.coverage - Math.min(end, WINDOW) / WINDOW) < 0.03, `coverage ${m.coverage} at ${end}`);
    } else {
      assert.deepEqual([m.valid, m.partial], [true, false], `window ending ${end}: ${m.invalidReason}`);
    }
  }
  // And the last windows of a session that ended: data stops 10 s before the window's end.
  const m = computeWindowMetrics(s.beatTimesMs, s.rrMs, s.rrMs.length, 200_000 + 10_000 - WINDOW, 210_000, plan);
  assert.deepEqual([m.valid, m.partial, m.invalidReason], [false, true, 'partial']);
});

test('a window with too many artifacts is invalid', () => {
  const s = rsa(0.1, 9);
  const rr = Float64Array.from(s.rrMs);
  // A premature beat every 8 beats through the window: 8 corrections in ~63 beats.
  for (let i = 12; i < 76; i += 8) {
    rr[i] -= 300;
    rr[i + 1] += 300;
  }
  const t = beatTimesFromRr(rr);
  const lenient = window(t, rr);
  assert.equal(lenient.valid, true);
  assert.ok(lenient.artifactRatio > 0.1 && lenient.artifactRatio < 0.25, `ratio ${lenient.artifactRatio}`);
  assert.ok(lenient.rmssdMs! < 1.5 * window(s.beatTimesMs, s.rrMs).rmssdMs!);
  const strict = window(t, rr, createWindowPlan({ maxArtifactRatio: 0.1 }));
  assert.equal(strict.valid, false);
  assert.equal(strict.invalidReason, 'too_many_artifacts');
  assert.equal(strict.artifactRatio, lenient.artifactRatio);
});

/** Every 64 s window, 5 s apart, of a series (from its first beat on, so none is partial). */
function allWindows(t: Float64Array, rr: Float64Array, plan = createWindowPlan()): WindowMetrics[] {
  const out: WindowMetrics[] = [];
  for (let start = Math.ceil(t[0]); start + WINDOW <= t[t.length - 1]; start += 5000) out.push(computeWindowMetrics(t, rr, rr.length, start, start + WINDOW, plan));
  return out;
}

interface AgainstSinus {
  windows: number;
  valid: number;
  /** Valid windows whose RMSSD is off the sinus rhythm's by more than half. */
  wrong: number;
  /** The same under `without`, when given. */
  wrongWithout: number;
  /** Valid windows whose RMSSD is within 10 % of the sinus rhythm's. */
  within10: number;
}

/**
 * 5 min of 60 ms RSA at 0.1 Hz, 60 bpm (3 seeds), with `inject` applied to its RR, window by
 * window against the same windows of the sinus rhythm beneath (5 s apart from the first beat).
 */
function againstSinus(inject: (rr: Float64Array) => Float64Array, without?: ReturnType<typeof createWindowPlan>): AgainstSinus {
  const a: AgainstSinus = { windows: 0, valid: 0, wrong: 0, wrongWithout: 0, within10: 0 };
  const off = (m: WindowMetrics, sinus: WindowMetrics, share: number) => Math.abs(m.rmssdMs! / sinus.rmssdMs! - 1) > share;
  for (let seed = 1; seed <= 3; seed++) {
    const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 40 + seed });
    const sinus = allWindows(s.beatTimesMs, s.rrMs);
    const rr = inject(s.rrMs);
    const times = beatTimesFromRr(rr, s.beatTimesMs[0] - s.rrMs[0]);
    const after = allWindows(times, rr);
    const before = without ? allWindows(times, rr, without) : [];
    for (let i = 0; i < Math.min(sinus.length, after.length); i++) {
      a.windows++;
      if (without && before[i].valid && off(before[i], sinus[i], 0.5)) a.wrongWithout++;
      if (!after[i].valid) continue;
      a.valid++;
      if (off(after[i], sinus[i], 0.5)) a.wrong++;
      if (!off(after[i], sinus[i], 0.1)) a.within10++;
    }
  }
  return a;
}

test('measureIrregularity\'s share: Karlsson\'s 20 % from the neighbours\' mean, only across successive intervals', () => {
  // 1000 900 1000 1300 1000: 900 is 10 % under 1000 (kept); 1300 is 30 % over 1000 (irregular).
  const rr = Float64Array.of(1000, 900, 1000, 1300, 1000);
  assert.equal(measureIrregularity(beatTimesFromRr(rr), rr, rr.length, 0.2).share, 1 / 3);
  // Exactly 20 % off counts (Karlsson keeps an interval only strictly within).
  const edge = Float64Array.of(1000, 1200, 1000);
  assert.equal(measureIrregularity(beatTimesFromRr(edge), edge, 3, 0.2).share, 1);
  // An interval removed before 1300 (its beat time jumps): 1300 has no successive neighbour before it.
  const t = beatTimesFromRr(rr);
  const gapped = Float64Array.from(t);
  for (let i = 3; i < gapped.length; i++) gapped[i] += 700;
  assert.equal(measureIrregularity(gapped, rr, rr.length, 0.2).share, 0);
  assert.equal(measureIrregularity(t, rr, 2, 0.2).share, 0, 'no interval with two neighbours');
});

test('measureIrregularity: the longest run of irregular intervals; a removed interval ends a run, and the edges are never compared', () => {
  const run = (rr: Float64Array, times = beatTimesFromRr(rr)) => measureIrregularity(times, rr, rr.length, 0.2).longestRun;
  // An ectopic pair inside (700 short, 1300 its pause): two in a row.
  assert.equal(run(Float64Array.of(1000, 1000, 700, 1300, 1000, 1000)), 2);
  // One irregular sinus beat: a run of one.
  assert.equal(run(Float64Array.of(1000, 1000, 1300, 1000, 1000)), 1);
  // The pair at the last intervals: the last one has no neighbour after it, so one.
  assert.equal(run(Float64Array.of(1000, 1000, 1000, 700, 1300)), 1);
  // Two irregular intervals with a removed one between them: two runs of one.
  const rr = Float64Array.of(1000, 1000, 1300, 1000, 1000, 700, 1000, 1000);
  const times = beatTimesFromRr(rr);
  for (let i = 4; i < times.length; i++) times[i] += 800; // an interval of 800 ms dropped before rr[4]
  assert.equal(run(rr, times), 1);
  // Bigeminy: every interval irregular.
  assert.equal(run(Float64Array.of(1000, 700, 1300, 700, 1300, 700, 1300, 1000)), 6);
});

test('measureIrregularity with neighbours before the measured intervals: they extend runs, not the share', () => {
  // 1000 1000 700 | 1300 1000 1000 1000: the pair 700 / 1300 across the edge (the bar).
  const rr = Float64Array.of(1000, 1000, 700, 1300, 1000, 1000, 1000);
  const times = beatTimesFromRr(rr);
  const alone = measureIrregularity(times.subarray(3), rr.subarray(3), 4, 0.2);
  assert.deepEqual(alone, { share: 0, longestRun: 0 }, 'the pause opens the window: never compared');
  const withBefore = measureIrregularity(times, rr, rr.length, 0.2, undefined, 3, rr.length);
  assert.equal(withBefore.longestRun, 2, '700 (before) and 1300 (the first measured): two in a row');
  assert.equal(withBefore.share, 0, 'the share is over the measured intervals with both neighbours among them, as alone');
  // A run wholly before the measured intervals is not theirs.
  const rr2 = Float64Array.of(1000, 700, 1300, 1000, 1000, 1000, 1000);
  assert.equal(measureIrregularity(beatTimesFromRr(rr2), rr2, rr2.length, 0.2, undefined, 4, rr2.length).longestRun, 0);
  // A short interval left just before the window pulls the mean of the first one's neighbours
  // down (the review's case, 0.3 Hz RSA: 1249 is 24.7 % over the mean of 839 and 1165), but the
  // first interval is 7 % from the next: not irregular, no run.
  const rr3 = Float64Array.of(1229, 1170, 839, 1249, 1165, 1220, 1200);
  assert.equal(measureIrregularity(beatTimesFromRr(rr3), rr3, rr3.length, 0.2, undefined, 3, rr3.length).longestRun, 0);
});

test('a rhythm the cleaning cannot read is invalid (irregular_rhythm): one premature beat in 5, bigeminy, an irregularly irregular rhythm', (t) => {
  // Without rule 5 each of these windows passes rules 1-4 with nothing corrected, and reports an
  // RMSSD several times the sinus rhythm's beneath it (10x at one in 5 in artifacts.test.ts).
  const without = createWindowPlan({ maxIrregularShare: Infinity, maxIrregularRun: Infinity });
  const cases: Array<{ label: string; t: Float64Array; rr: Float64Array; sinusRmssd?: number }> = [];
  for (let seed = 1; seed <= 3; seed++) {
    const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 40 + seed });
    const sinusRmssd = allWindows(s.beatTimesMs, s.rrMs)[0].rmssdMs!;
    for (const [label, every] of [['one in 5', 5], ['bigeminy', 2]] as const) {
      const positions: number[] = [];
      for (let k = 10; k + 2 < s.rrMs.length; k += every) positions.push(k);
      const rr = injectEctopicBeats(s.rrMs, positions, positions.map(() => 0.3));
      cases.push({ label: `${label}, seed ${seed}`, t: beatTimesFromRr(rr), rr, sinusRmssd });
    }
    // Atrial fibrillation's RR: independent intervals, 450–1150 ms.
    const random = createRandom(700 + seed);
    const rr = new Float64Array(400);
    for (let i = 0; i < rr.length; i++) rr[i] = 450 + 700 * random();
    cases.push({ label: `irregularly irregular, seed ${seed}`, t: beatTimesFromRr(rr), rr });
  }
  for (const c of cases) {
    const before = allWindows(c.t, c.rr, without);
    const after = allWindows(c.t, c.rr);
    assert.ok(before.length > 20);
    assert.equal(before.filter((m) => m.valid).length, before.length, `${c.label}: valid without rule 5`);
    assert.deepEqual([...new Set(after.map((m) => m.invalidReason))], ['irregular_rhythm'], c.label);
    assert.ok(after.every((m) => m.rmssdMs === null && m.coherence === null), c.label);
    if (c.sinusRmssd !== undefined) t.diagnostic(`${c.label}: RMSSD without rule 5 ${before[0].rmssdMs!.toFixed(0)} ms, the sinus rhythm's ${c.sinusRmssd.toFixed(0)} ms`);
  }
  // One premature beat in 7 is corrected by the cleaning (artifacts.test.ts): valid.
  const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 41 });
  const positions: number[] = [];
  for (let k = 10; k + 2 < s.rrMs.length; k += 7) positions.push(k);
  const rr = injectEctopicBeats(s.rrMs, positions, positions.map(() => 0.3));
  assert.ok(allWindows(beatTimesFromRr(rr), rr).every((m) => m.valid));
});

test('a minute of bigeminy: every trusted window that holds some of it, at its onset or its end, reports the sinus rhythm\'s RMSSD; those holding more than 32 s of it are not trusted', (t) => {
  // 5 min of 60 ms RSA at 0.1 Hz, 60 bpm (the seeds of againstSinus), every other beat 30 %
  // early with its compensatory pause from 120 s to 180 s; every window holding some of it,
  // against the same windows of the sinus rhythm. Until 12-04 (fixtures/ARTIFACT-SPLIT.md,
  // seventh and ninth rounds) the cleaning corrected the first pair and inverted the phase of
  // the next ones (a pause read with the following short interval as a misplaced beat), so
  // windows ending 3-30 s in were trusted with RMSSD up to several times the sinus rhythm's;
  // and inside the episode nothing is examined (the 91-beat thresholds wide), so a window
  // holding only its last pairs, left uncorrected, was trusted: rule 5 never compared a
  // window's first interval (it now reads the intervals before it too).
  // More than 32 s of it is more than rule 4's 25 % of a window's intervals corrected (a pair,
  // corrected once, every two intervals: H / 128 s of them).
  const counts = { onset: { windows: 0, valid: 0, within10: 0 }, end: { windows: 0, valid: 0, within10: 0 } };
  const wrong: string[] = [];
  for (let seed = 41; seed <= 43; seed++) {
    const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed });
    const t0 = s.beatTimesMs[0] - s.rrMs[0];
    const onsetMs = t0 + 120_000;
    const positions: number[] = [];
    let k = 0;
    while (s.beatTimesMs[k] < onsetMs) k++;
    for (; k + 2 < s.rrMs.length && s.beatTimesMs[k] < onsetMs + 60_000; k += 2) positions.push(k);
    const rr = injectEctopicBeats(s.rrMs, positions, positions.map(() => 0.3));
    const times = beatTimesFromRr(rr, t0);
    const plan = createWindowPlan();
    for (let endIn = 1000; endIn < 124_000; endIn += 1000) {
      const end = Math.round(onsetMs + endIn);
      const held = Math.min(endIn, 60_000) - Math.max(endIn - WINDOW, 0);
      const sinus = computeWindowMetrics(s.beatTimesMs, s.rrMs, s.rrMs.length, end - WINDOW, end, plan);
      const m = computeWindowMetrics(times, rr, rr.length, end - WINDOW, end, plan);
      const c = endIn <= 60_000 ? counts.onset : counts.end;
      c.windows++;
      if (held > 32_000) assert.equal(m.valid, false, `seed ${seed}, window ending ${endIn / 1000} s after the onset holds ${held / 1000} s`);
      if (!m.valid) continue;
      c.valid++;
      const ratio = m.rmssdMs! / sinus.rmssdMs!;
      if (Math.abs(ratio - 1) <= 0.1) c.within10++;
      if (Math.abs(ratio - 1) > 0.5) wrong.push(`seed ${seed}, ending ${endIn / 1000} s after the onset: ${m.rmssdMs!.toFixed(0)} against ${sinus.rmssdMs!.toFixed(0)} ms`);
    }
  }
  for (const [label, c] of Object.entries(counts)) {
    t.diagnostic(`windows ending in the episode (onset) or after it (end) holding some of it, ${label}: ${c.valid} of ${c.windows} trusted, RMSSD within 10 % of the sinus rhythm's in ${c.within10}`);
  }
  // The onset's pairs are corrected (trusted windows); the end's are not (the cleaning cannot
  // read them there), and its windows are untrusted.
  assert.ok(counts.onset.valid > 0);
  t.diagnostic(`trusted with RMSSD off by half: ${wrong.length}`);
  assert.deepEqual(wrong, []);
});

test('premature beats at every density: no valid window reports an RMSSD off by half where the cleaning or rule 5 reaches; the rest printed', (t) => {
  // What neither reaches (printed, in the README's Known limitations): without a compensatory
  // pause (an atrial premature beat), one in 4 (below). With one, one in 6 left 2 of 141 windows
  // valid and off by half until rule 5 read the intervals before a window (12-04,
  // fixtures/ARTIFACT-SPLIT.md, ninth round): a pair the window-by-window cleaning left at a
  // window's start. Before the cleaning read the 5 beats after a
  // window (fixtures/ARTIFACT-SPLIT.md, fourth round), one in 7 with a pause (20 windows, a pair
  // cut by the window's edge) and one in 7 and 10 without (9 and 1, the premature beat in the
  // window's last interval) were not reached either.
  // A valid window's RMSSD against the same window of the sinus rhythm beneath (windows 5 s
  // apart from the first beat). Premature by 30 %: with a compensatory pause (the pair sums to
  // two normal intervals: a ventricular premature beat) or without (the beat after is a normal
  // interval: an atrial one, which resets the sinus node).
  const without = createWindowPlan({ maxIrregularShare: Infinity, maxIrregularRun: Infinity });
  const lines: string[] = [];
  for (const compensatory of [true, false]) {
    for (const every of [2, 3, 4, 5, 6, 7, 10, 20]) {
      const { windows, valid, wrong: wrongAfter, wrongWithout: wrongBefore } = againstSinus((sinusRr) => {
        const positions: number[] = [];
        for (let k = 10; k + 2 < sinusRr.length; k += every) positions.push(k);
        return compensatory ? injectEctopicBeats(sinusRr, positions, positions.map(() => 0.3)) : Float64Array.from(sinusRr, (v, i) => (positions.includes(i) ? v * 0.7 : v));
      }, without);
      const label = `${compensatory ? 'with' : 'without'} a compensatory pause, one in ${every}`;
      lines.push(`${label}: ${valid} of ${windows} windows valid, RMSSD off by half in ${wrongAfter} valid (${wrongBefore} without rule 5)`);
      // Reached: with a pause, up to one in 5 by rule 5 (the cleaning corrects none of them),
      // one in 6 by the two together, one in 7 and beyond by the cleaning; without one, at one in 2 and 3 by rule 5, from one
      // in 5 by the cleaning (it drops them). Not at one in 4: there every normal interval is
      // next to a premature beat, so the rhythm around none is steady enough for the cleaning to
      // drop it (isPremature), and each fails Karlsson's criterion once: 25 %, rule 5's bound itself.
      if (compensatory || every !== 4) assert.equal(wrongAfter, 0, label);
      if (compensatory && every <= 5) assert.ok(wrongBefore > 0, `${label}: wrong without rule 5`);
    }
  }
  for (const line of lines) t.diagnostic(line);
});

/**
 * Artifacts injected by `inject` (on a copy of the clean intervals, at interval k) spaced around
 * one in `every` (half to one and a half of it, so they do not all fall at one phase of the
 * breathing: at a fixed 10 beats they would, with 0.1 Hz RSA at 60 bpm, and the differences
 * dropped with them would always be the steepest), on 60 ms of RSA at 0.1 Hz, 60 bpm, 8 ms of
 * noise, 3 seeds: windows whose RMSSD is within 10 % of the sinus rhythm's, and trusted windows
 * off by more than half.
 */
function sparseArtifactAgreement(
  every: number,
  seeds: { series: number; spacing: number },
  inject: (rr: Float64Array, k: number) => void,
): { within: number; windows: number; offByHalf: number } {
  let within = 0;
  let windows = 0;
  let offByHalf = 0;
  for (let seed = 1; seed <= 3; seed++) {
    const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed: seeds.series + seed });
    const sinus = allWindows(s.beatTimesMs, s.rrMs);
    const random = createRandom(seeds.spacing + seed);
    const rr = Float64Array.from(s.rrMs);
    for (let k = 10; k + 2 < rr.length; k += Math.round(every * (0.5 + random()))) inject(rr, k);
    const after = allWindows(beatTimesFromRr(rr, s.beatTimesMs[0] - s.rrMs[0]), rr);
    for (let i = 0; i < Math.min(sinus.length, after.length); i++) {
      windows++;
      if (!after[i].valid) continue;
      const off = Math.abs(after[i].rmssdMs! / sinus[i].rmssdMs! - 1);
      if (off <= 0.1) within++;
      if (off > 0.5) offByHalf++;
    }
  }
  return { within, windows, offByHalf };
}

/** Premature beats without a compensatory pause (interval k shortened by `prematurity`), as sparseArtifactAgreement. */
const sparsePrematureAgreement = (prematurity: number, every: number) =>
  sparseArtifactAgreement(every, { series: 40, spacing: 900 }, (rr, k) => {
    rr[k] *= 1 - prematurity;
  });

test('sparse premature beats without a compensatory pause (one in 10 or 20, 30 or 40 % early) are dropped: RMSSD within 10 % of the sinus rhythm\'s in at least 90 % of windows (issue 7\'s bar for injected pairs)', (t) => {
  for (const prematurity of [0.3, 0.4]) {
    for (const every of [10, 20]) {
      const { within, windows } = sparsePrematureAgreement(prematurity, every);
      t.diagnostic(`${100 * prematurity} % early, one in ${every}: RMSSD within 10 % in ${within} of ${windows} windows`);
      assert.ok(within >= 0.9 * windows, `${100 * prematurity} % early, one in ${every}: ${within} of ${windows}`);
    }
  }
});

test('atrial premature beats only 15 or 20 % early, one in 20 or 40, on a steady rhythm: none trusted off by half (within 10 % printed)', (t) => {
  // Under Karlsson's 20 % they were left in, and on a rhythm this steady one of them raised a
  // window's RMSSD by half: all 141 windows at 15 % one in 20 (fixtures/ARTIFACT-SPLIT.md,
  // eleventh round). The premature reading now takes a dip of 10–20 % where it is 7 times the
  // rhythm's typical departure.
  for (const prematurity of [0.15, 0.2]) {
    for (const every of [20, 40]) {
      const { within, windows, offByHalf } = sparsePrematureAgreement(prematurity, every);
      const line = `${100 * prematurity} % early, one in ${every}: RMSSD within 10 % in ${within} of ${windows} windows, ${offByHalf} trusted off by half`;
      t.diagnostic(line);
      assert.equal(offByHalf, 0, line);
    }
  }
});

test('sparse misplaced beats (detected 15–25 % of an interval late or early, one in 10 or 20) are re-timed: RMSSD within 10 % of the sinus rhythm\'s in at least 90 % of windows, none trusted off by half', (t) => {
  // A beat detected late (long, then short) had its short interval dropped as a premature beat
  // and the long one left in (fixtures/ARTIFACT-SPLIT.md, tenth round): 15 % late, one in 10,
  // left most windows off by more than 10 %.
  for (const direction of ['late', 'early'] as const) {
    for (const shift of [0.15, 0.2, 0.25]) {
      for (const every of [10, 20]) {
        const { within, windows, offByHalf } = sparseArtifactAgreement(every, { series: 60, spacing: 950 }, (rr, k) => {
          const d = shift * rr[k] * (direction === 'late' ? 1 : -1);
          rr[k] += d;
          rr[k + 1] -= d;
        });
        const line = `${100 * shift} % ${direction}, one in ${every}: RMSSD within 10 % in ${within} of ${windows} windows, ${offByHalf} trusted off by half`;
        t.diagnostic(line);
        assert.ok(within >= 0.9 * windows && offByHalf === 0, line);
      }
    }
  }
});

test('sinus rhythm is never an irregular rhythm: every artifact-free synthetic series and every window of every shared record', (t) => {
  const flagged: string[] = [];
  let windows = 0;
  let highest = 0;
  const check = (label: string, times: Float64Array, rr: Float64Array) => {
    for (const m of allWindows(times, rr)) {
      windows++;
      if (m.invalidReason === 'irregular_rhythm') flagged.push(label);
    }
    highest = Math.max(highest, measureIrregularity(times, rr, rr.length, 0.2).share);
  };
  const synthetic = [...sinusoidalRsaSeries(), ...realisticSeries()];
  for (const { label, s } of synthetic) check(label, s.beatTimesMs, s.rrMs);
  const records = readdirSync(rrDataDir).filter((f) => f.endsWith('.rr_ms.txt'));
  assert.equal(records.length, 8);
  for (const name of records) {
    const rr = loadRrRecording(name);
    check(name, beatTimesFromRr(rr), rr);
  }
  t.diagnostic(`${synthetic.length} synthetic series and ${records.length} records, ${windows} windows; the highest share of a whole uncleaned series: ${(100 * highest).toFixed(1)} %`);
  assert.deepEqual([...new Set(flagged)], []);
});

test('only the beats in [start, end) of a larger, partly filled buffer are used', () => {
  const s = synthesizeRr({ durationMs: 300000, rsaAmplitudeMs: 80, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 10 });
  const n = s.rrMs.length;
  const buffer = new Float64Array(n + 50).fill(Number.MAX_VALUE); // tail must never be read
  const rrBuffer = new Float64Array(n + 50).fill(-1);
  buffer.set(s.beatTimesMs);
  rrBuffer.set(s.rrMs);
  const plan = createWindowPlan();
  const fromBuffer = computeWindowMetrics(buffer, rrBuffer, n, 120000, 184000, plan);
  const lo = s.beatTimesMs.findIndex((t) => t >= 120000);
  const hi = s.beatTimesMs.findIndex((t) => t >= 184000);
  const sliced = computeWindowMetrics(s.beatTimesMs.slice(lo, hi), s.rrMs.slice(lo, hi), hi - lo, 120000, 184000, createWindowPlan());
  assert.deepEqual(fromBuffer, sliced);
  assert.equal(fromBuffer.beatCount, hi - lo);
});

test('a reused plan gives the same answers as a fresh one (no state carried between windows)', () => {
  const plan = createWindowPlan();
  const a = rsa(0.1, 21);
  const b = rsa(0.25, 22, 50);
  const first = window(a.beatTimesMs, a.rrMs, plan);
  window(b.beatTimesMs, b.rrMs, plan);
  const again = window(a.beatTimesMs, a.rrMs, plan);
  assert.deepEqual(again, first);
  assert.deepEqual(window(b.beatTimesMs, b.rrMs, plan), window(b.beatTimesMs, b.rrMs, createWindowPlan()));
});

test('the window length must match the plan', () => {
  const s = rsa(0.1, 1);
  assert.throws(
    () => computeWindowMetrics(s.beatTimesMs, s.rrMs, s.rrMs.length, 0, 60000, createWindowPlan()),
    (e) => e instanceof AttuneError && e.code === 'validation_error',
  );
  const plan = createWindowPlan({ windowMs: 32000, fftSize: 256 });
  assert.equal(plan.sampleCount, 128);
  const m = computeWindowMetrics(s.beatTimesMs, s.rrMs, s.rrMs.length, 20000, 52000, { ...plan, minBeats: 20 });
  assert.equal(m.valid, true);
  assert.ok(Math.abs(m.peakFrequencyHz! - 0.1) < 4 / 256);
});

test('two premature beats in a row (couplets, 30 % early), atrial or compensated, one every 20, 40 or 80 beats: no valid window reports an RMSSD off by half', (t) => {
  // Before the couplet reading (fixtures/ARTIFACT-SPLIT.md, sixth round) 77–138 of 107–138 valid
  // windows were off by half: an atrial couplet departs 17.6 % from its neighbours' means, under
  // rule 5's 20 %, and a compensated one was half-corrected by the pair readings.
  for (const compensated of [false, true]) {
    for (const every of [20, 40, 80]) {
      const { windows, valid, wrong, within10 } = againstSinus((sinusRr) => {
        const rr = Float64Array.from(sinusRr);
        for (let k = 10; k + 3 < rr.length; k += every) {
          const [a, b] = [rr[k], rr[k + 1]];
          rr[k] = 0.7 * a;
          rr[k + 1] = 0.7 * b;
          if (compensated) rr[k + 2] += 0.3 * (a + b);
        }
        return rr;
      });
      const label = `${compensated ? 'compensated' : 'atrial'} couplet, one every ${every} beats`;
      t.diagnostic(`${label}: ${valid} of ${windows} windows valid, RMSSD off by half in ${wrong}, within 10 % in ${within10}`);
      assert.equal(wrong, 0, label);
      // Issue 7's bar for injected ectopy: RMSSD within 10 % in at least 90 % of windows (all
      // windows, invalid ones counting as misses).
      assert.ok(within10 >= 0.9 * windows, `${label}: RMSSD within 10 % in ${within10} of ${windows} windows`);
    }
  }
});
