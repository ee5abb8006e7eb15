import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSpectrumPlan, detrendLinear, powerSpectralDensity } from './spectrum.js';
import { AttuneError } from '../../lib/errors.js';
import { createRandom, gaussian } from './synthetic-rr.js';

const FS = 4;
const N = 256;
const NFFT = 512;

function sine(freqHz: number, amplitude: number, offset = 0, slope = 0): Float64Array {
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = offset + slope * k + amplitude * Math.sin((2 * Math.PI * freqHz * k) / FS);
  return x;
}

test('detrendLinear removes an offset and a slope exactly', () => {
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = 950 + 0.7 * k;
  const out = new Float64Array(N);
  detrendLinear(x, N, out);
  for (let k = 0; k < N; k++) assert.ok(Math.abs(out[k]) < 1e-9, `sample ${k} = ${out[k]}`);
});

test('plan documents its bins: 512-point FFT at 4 Hz gives 0.0078125 Hz bins and 257 PSD bins', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  assert.equal(plan.binHz, 0.0078125);
  assert.equal(plan.psd.length, 257);
  assert.equal(plan.taper[0], 0);
  assert.ok(Math.abs(plan.taper[N / 2] - 1) < 1e-12);
});

test('a sinusoid on a trend peaks at its own bin and its power is A²/2', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const f = 0.125; // exactly bin 16
  const psd = powerSpectralDensity(sine(f, 40, 1000, 0.3), plan);
  let best = 0;
  for (let i = 1; i < psd.length; i++) if (psd[i] > psd[best]) best = i;
  assert.equal(best, 16);
  let power = 0;
  for (let i = 0; i < psd.length; i++) power += psd[i] * plan.binHz;
  // Density scaling: Σ psd·Δf equals the taper-weighted mean square, ≈ A²/2 for a sinusoid.
  assert.ok(Math.abs(power - 800) / 800 < 0.02, `power ${power}`);
});

test('density scaling satisfies Parseval: Σ psd·Δf = Σ(x·w)² / Σw²', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const random = createRandom(7);
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = 30 * gaussian(random);
  const detrended = new Float64Array(N);
  detrendLinear(x, N, detrended);
  let num = 0;
  let den = 0;
  for (let k = 0; k < N; k++) {
    num += (detrended[k] * plan.taper[k]) ** 2;
    den += plan.taper[k] ** 2;
  }
  const psd = powerSpectralDensity(x, plan);
  let power = 0;
  for (let i = 0; i < psd.length; i++) power += psd[i] * plan.binHz;
  assert.ok(Math.abs(power - num / den) / (num / den) < 1e-9, `${power} vs ${num / den}`);
});

test('the PSD buffer is the plan’s own and is reused across calls', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const a = powerSpectralDensity(sine(0.1, 10), plan);
  const peakA = a[13];
  const b = powerSpectralDensity(sine(0.2, 10), plan);
  assert.equal(a, b);
  assert.notEqual(b[13], peakA);
  // The zero-padding tail of the FFT input stays zero.
  for (let k = N; k < NFFT; k++) assert.equal(plan.fftInput[k], 0);
});

test('bad plan shapes are refused with validation errors', () => {
  assert.throws(() => createSpectrumPlan({ sampleCount: N, fftSize: 500, sampleRateHz: FS }), (e) => e instanceof AttuneError && e.code === 'validation_error');
  assert.throws(() => createSpectrumPlan({ sampleCount: 600, fftSize: NFFT, sampleRateHz: FS }), AttuneError);
  assert.throws(() => createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: 0 }), AttuneError);
});
