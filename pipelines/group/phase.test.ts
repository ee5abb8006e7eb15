// Phase extraction against scipy (scripts/reference/group_phase_reference.py: butter + filtfilt +
// hilbert) on real RR windows from ../shared/data/rr, resampled by the pipeline's own spline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadRrRecording } from '../hrv/rr-recordings.test-util.js';
import { createSplineScratch, resampleCubic } from '../hrv/resample.js';
import { beatTimesFromRr } from '../hrv/synthetic-rr.js';
import { butterworthBandPass } from './butterworth.js';
import { createPhasePlan, instantaneousPhase, phasorsInto } from './phase.js';

interface Fixture {
  b: number[];
  a: number[];
  windows: { recording: string; startMs: number; x: number[]; phase: number[] }[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/reference-phase.json', import.meta.url), 'utf8')) as Fixture;

/** Wrapped difference of two angles, in [0, π]. */
const angleDiff = (p: number, q: number) => Math.abs(Math.atan2(Math.sin(p - q), Math.cos(p - q)));

test('Butterworth band-pass coefficients are scipy.signal.butter(2, [0.04, 0.26], "bandpass", fs=4)', () => {
  const c = butterworthBandPass(2, 0.04, 0.26, 4);
  assert.equal(c.b.length, fixture.b.length);
  for (let i = 0; i < c.b.length; i++) {
    assert.ok(Math.abs(c.b[i] - fixture.b[i]) <= 1e-12 * Math.max(1, Math.abs(fixture.b[i])), `b[${i}] ${c.b[i]} vs ${fixture.b[i]}`);
    assert.ok(Math.abs(c.a[i] - fixture.a[i]) <= 1e-12 * Math.max(1, Math.abs(fixture.a[i])), `a[${i}] ${c.a[i]} vs ${fixture.a[i]}`);
  }
});

test('instantaneous phase of real RR windows matches scipy filtfilt + hilbert within 1e-6 rad away from the edges', () => {
  const plan = createPhasePlan();
  const spline = createSplineScratch();
  const x = new Float64Array(plan.sampleCount);
  const phase = new Float64Array(plan.sampleCount);
  const re = new Float64Array(plan.keptCount);
  const im = new Float64Array(plan.keptCount);
  assert.ok(fixture.windows.length >= 12);
  let worstKept = 0;
  let worstAll = 0;
  for (const w of fixture.windows) {
    const rr = loadRrRecording(w.recording);
    const t = beatTimesFromRr(rr);
    const knotsT: number[] = [];
    const knotsRr: number[] = [];
    for (let i = 0; i < t.length; i++) {
      if (t[i] >= w.startMs - 10_000 && t[i] < w.startMs + 74_000) {
        knotsT.push(t[i]);
        knotsRr.push(rr[i]);
      }
    }
    resampleCubic(Float64Array.from(knotsT), Float64Array.from(knotsRr), knotsT.length, w.startMs, w.startMs + 64_000, 4, x, spline);
    // Same input first (the spline is not under test, but a difference there would hide here).
    for (let i = 0; i < plan.sampleCount; i++) assert.ok(Math.abs(x[i] - w.x[i]) < 1e-6 * Math.abs(w.x[i]), `${w.recording}@${w.startMs} x[${i}]`);
    assert.ok(instantaneousPhase(plan, x, phase));
    assert.ok(phasorsInto(plan, x, re, im, 0));
    for (let i = 0; i < plan.sampleCount; i++) {
      const d = angleDiff(phase[i], w.phase[i]);
      worstAll = Math.max(worstAll, d);
      if (i >= plan.trim && i < plan.sampleCount - plan.trim) {
        worstKept = Math.max(worstKept, d);
        const k = i - plan.trim;
        assert.ok(Math.abs(Math.hypot(re[k], im[k]) - 1) < 1e-12);
        assert.ok(angleDiff(Math.atan2(im[k], re[k]), w.phase[i]) < 1e-6);
      }
    }
  }
  console.log(`phase vs scipy: worst ${worstKept.toExponential(2)} rad kept, ${worstAll.toExponential(2)} rad anywhere`);
  assert.ok(worstKept < 1e-6, `worst kept-sample phase difference ${worstKept} rad`);
  // The edges are the same algorithm too, only worse conditioned (small amplitudes): looser.
  assert.ok(worstAll < 1e-3, `worst phase difference anywhere ${worstAll} rad`);
});

test('phasors every 4th sample (the folded spectrum) are the full-rate phasors at those samples', () => {
  const plan = createPhasePlan();
  const spline = createSplineScratch();
  const rr = loadRrRecording('nsrdb_16272_seg116_5min.rr_ms.txt');
  const t = beatTimesFromRr(rr);
  const x = new Float64Array(plan.sampleCount);
  const fullRe = new Float64Array(plan.keptCount);
  const fullIm = new Float64Array(plan.keptCount);
  const re = new Float64Array(plan.keptCount / 4);
  const im = new Float64Array(plan.keptCount / 4);
  for (const start of [20_000, 100_000, 200_000]) {
    resampleCubic(t, rr, t.length, start, start + 64_000, 4, x, spline);
    assert.ok(phasorsInto(plan, x, fullRe, fullIm, 0, 1));
    assert.ok(phasorsInto(plan, x, re, im, 0, 4));
    for (let k = 0; k < re.length; k++) {
      assert.ok(Math.abs(re[k] - fullRe[4 * k]) < 1e-9 && Math.abs(im[k] - fullIm[4 * k]) < 1e-9, `${start} k=${k}`);
    }
  }
});

test('a series with no oscillation in the band has no phase', () => {
  const plan = createPhasePlan();
  const flat = new Float64Array(plan.sampleCount).fill(900);
  const re = new Float64Array(plan.keptCount);
  const im = new Float64Array(plan.keptCount);
  assert.equal(phasorsInto(plan, flat, re, im, 0), false);
  assert.equal(phasorsInto(plan, flat, re, im, 0, 4), false);
  const bad = new Float64Array(plan.sampleCount).fill(900);
  bad[10] = NaN;
  assert.equal(phasorsInto(plan, bad, re, im, 0), false);
});
