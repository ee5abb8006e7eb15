import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeWindowMetrics, createWindowPlan, type WindowMetrics } from './window-metrics.js';
import { AttuneError } from '../../lib/errors.js';
import { beatTimesFromRr, createRandom, gaussian, synthesizeRr } from './synthetic-rr.js';

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

test('RR outside 300–2000 ms is dropped and counted', () => {
  const s = rsa(0.1, 7);
  const list = Array.from(s.rrMs);
  // A 4 s dropout inside the window: four intervals arrive as one.
  list.splice(40, 4, list[40] + list[41] + list[42] + list[43]);
  const rr = Float64Array.from(list);
  const t = beatTimesFromRr(rr);
  const inWindow = rr.filter((_, i) => t[i] >= START && t[i] < START + WINDOW).length;
  const m = window(t, rr);
  assert.equal(m.valid, true);
  assert.equal(m.beatCount, inWindow - 1);
  assert.ok(Math.abs(m.artifactRatio - 1 / inWindow) < 1e-12);
});

test('a window where most beats are missing is invalid, with null metrics', () => {
  const s = rsa(0.1, 8);
  // Keep only every third beat (each still with its true RR and time): ~33 % coverage.
  const keep = (_: number, i: number) => i % 3 === 0;
  const t = s.beatTimesMs.filter(keep);
  const rr = s.rrMs.filter(keep);
  const m = window(t, rr);
  assert.equal(m.valid, false);
  assert.equal(m.invalidReason, 'too_few_beats'); // ~21 beats
  for (const key of ['coherence', 'coherenceRatio', 'peakFrequencyHz', 'breathingRateBpm', 'meanHrBpm', 'rmssdMs', 'sdnnMs', 'pnn50Pct'] as const) {
    assert.equal(m[key], null, key);
  }
  assert.ok(m.beatCount > 15 && m.beatCount < 25);

  // Enough beats but a 30 s hole: low coverage.
  const hole = (_: number, i: number) => s.beatTimesMs[i] < 30000 || s.beatTimesMs[i] >= 60000;
  const holed = window(s.beatTimesMs.filter(hole), s.rrMs.filter(hole), createWindowPlan({ minBeats: 20 }));
  assert.equal(holed.valid, false);
  assert.equal(holed.invalidReason, 'low_coverage');

  const empty = window(new Float64Array(0), new Float64Array(0));
  assert.deepEqual([empty.valid, empty.beatCount, empty.artifactRatio, empty.invalidReason], [false, 0, 0, 'too_few_beats']);
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
