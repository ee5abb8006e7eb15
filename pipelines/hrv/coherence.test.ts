import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeCoherence, createCoherenceResult } from './coherence.js';

const BIN = 4 / 512;
const BINS = 257;

test('flat spectrum: 3-bin peak band over 51 total bins gives CR = 3/48', () => {
  const psd = new Float64Array(BINS).fill(2);
  const r = computeCoherence({ psd, binHz: BIN });
  // Total band 0.0033–0.4 Hz holds bins 1..51; with no peak the first search bin (6, 0.047 Hz)
  // is taken and ±0.015 Hz around it holds bins 5, 6, 7.
  assert.ok(Math.abs(r.totalPower - 51 * 2 * BIN) < 1e-12);
  assert.ok(Math.abs(r.peakPower - 3 * 2 * BIN) < 1e-12);
  assert.ok(Math.abs(r.coherenceRatio - 3 / 48) < 1e-12);
  assert.ok(Math.abs(r.score - 3 / 51) < 1e-12);
  assert.ok(Math.abs(r.peakFrequencyHz - 6 * BIN) < 1e-12);
});

test('log-parabolic refinement recovers the centre of a Gaussian-shaped peak exactly', () => {
  // ln psd is an exact parabola around bin 12.8 (0.1 Hz), so the vertex is found exactly.
  const centre = 0.1 / BIN;
  const psd = new Float64Array(BINS);
  for (let i = 0; i < BINS; i++) psd[i] = 1e-3 + 1000 * Math.exp(-((i - centre) ** 2) / (2 * 1.2 ** 2));
  // Around the peak drop the floor, so that the three bins used for the fit are exactly Gaussian.
  for (let i = 10; i <= 15; i++) psd[i] = 1000 * Math.exp(-((i - centre) ** 2) / (2 * 1.2 ** 2));
  const r = computeCoherence({ psd, binHz: BIN });
  assert.ok(Math.abs(r.peakFrequencyHz - 0.1) < 1e-9, `peak ${r.peakFrequencyHz}`);
  assert.ok(Math.abs(r.breathingRateBpm - 6) < 1e-7);
  // ±0.015 Hz around 0.1 Hz: bin centres 0.0859..0.1141 → bins 11..14 (4 bins).
  let expectedPeak = 0;
  for (let i = 11; i <= 14; i++) expectedPeak += psd[i] * BIN;
  assert.ok(Math.abs(r.peakPower - expectedPeak) < 1e-9 * expectedPeak);
  assert.ok(r.coherenceRatio > 3 && r.score > 0.75, `CR ${r.coherenceRatio}`);
  assert.ok(Math.abs(r.score - r.peakPower / r.totalPower) < 1e-12);
  assert.ok(Math.abs(r.score - r.coherenceRatio / (1 + r.coherenceRatio)) < 1e-12);
});

test('the peak is the largest local maximum in 0.04–0.26 Hz, not the rising edge of a 1/f slope', () => {
  const psd = new Float64Array(BINS);
  for (let i = 1; i < BINS; i++) psd[i] = 500 / i; // falls through the whole search band
  psd[26] += 5; // a small bump at 0.203 Hz
  const r = computeCoherence({ psd, binHz: BIN });
  assert.ok(Math.abs(r.peakFrequencyHz - 26 * BIN) < 0.5 * BIN, `peak ${r.peakFrequencyHz}`);
  assert.ok(r.coherenceRatio < 0.3);
});

test('a monotonic band without a local maximum falls back to the largest bin', () => {
  const psd = new Float64Array(BINS);
  for (let i = 0; i < BINS; i++) psd[i] = i * i; // rises through and past the band
  const r = computeCoherence({ psd, binHz: BIN });
  assert.ok(Math.abs(r.peakFrequencyHz / BIN - 33) <= 0.5, `peak bin ${r.peakFrequencyHz / BIN}`);
});

test('no power gives CR = score = 0 and NaN frequencies; `out` is reused', () => {
  const out = createCoherenceResult();
  const r = computeCoherence({ psd: new Float64Array(BINS), binHz: BIN }, out);
  assert.equal(r, out);
  assert.equal(r.coherenceRatio, 0);
  assert.equal(r.score, 0);
  assert.ok(Number.isNaN(r.peakFrequencyHz) && Number.isNaN(r.breathingRateBpm));
});

test('all power in the peak band gives a large finite CR', () => {
  const psd = new Float64Array(BINS);
  psd[13] = 1;
  const r = computeCoherence({ psd, binHz: BIN });
  assert.ok(Number.isFinite(r.coherenceRatio) && r.coherenceRatio > 1e9);
  assert.ok(r.score > 0.999 && r.score <= 1);
});
