import { test } from 'node:test';
import assert from 'node:assert/strict';
import FFT from 'fft.js';
import {
  bandPower,
  createSpectrumPlan,
  detrendLinear,
  detrendTapered,
  periodogramAt,
  periodogramWithDerivatives,
  powerSpectralDensity,
} from './spectrum.js';
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

test('density scaling satisfies Parseval: Σ psd·Δf = Σ(x·w)² / Σw² for the taper-weighted detrend', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const random = createRandom(7);
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = 900 + 0.2 * k + 30 * gaussian(random);
  const tapered = new Float64Array(N);
  detrendTapered(x, plan, tapered);
  let num = 0;
  let den = 0;
  for (let k = 0; k < N; k++) {
    num += tapered[k] ** 2;
    den += plan.taper[k] ** 2;
  }
  const psd = powerSpectralDensity(x, plan);
  let power = 0;
  for (let i = 0; i < psd.length; i++) power += psd[i] * plan.binHz;
  assert.ok(Math.abs(power - num / den) / (num / den) < 1e-9, `${power} vs ${num / den}`);
  // The whole continuous band holds the same power as the grid (both are Parseval sums).
  assert.ok(Math.abs(bandPower(plan, 0, FS / 2) - power) < 1e-9 * power);
});

test('detrendTapered removes any line exactly and is the least-squares line of the tapered signal', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const line = new Float64Array(N);
  for (let k = 0; k < N; k++) line[k] = 950 - 0.4 * k;
  const out = new Float64Array(N);
  detrendTapered(line, plan, out);
  for (let k = 0; k < N; k++) assert.ok(Math.abs(out[k]) < 1e-9, `sample ${k} = ${out[k]}`);
  // Least squares in the tapered domain: the tapered residual is orthogonal to w and w·u.
  const random = createRandom(3);
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = 1000 + 20 * gaussian(random) + 0.3 * k;
  detrendTapered(x, plan, out);
  let dotW = 0;
  let dotWU = 0;
  let scale = 0;
  for (let k = 0; k < N; k++) {
    dotW += out[k] * plan.taper[k];
    dotWU += out[k] * plan.taper[k] * (k - N / 2);
    scale += Math.abs(out[k] * plan.taper[k] * (k - N / 2));
  }
  assert.ok(Math.abs(dotW) < 1e-9 * scale && Math.abs(dotWU) < 1e-9 * scale, `${dotW}, ${dotWU}`);
});

test('the continuous periodogram passes through every grid bin, and its derivatives match finite differences', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const random = createRandom(11);
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = 40 * Math.sin(2 * Math.PI * 0.11 * (k / FS)) + 25 * gaussian(random);
  const psd = powerSpectralDensity(x, plan);
  let largest = 0;
  for (let i = 0; i < psd.length; i++) largest = Math.max(largest, psd[i]);
  for (let i = 1; i < psd.length - 1; i++) {
    assert.ok(Math.abs(periodogramAt(plan, i * plan.binHz) - psd[i]) < 1e-9 * largest, `bin ${i}`);
  }
  const point = { value: 0, slope: 0, curvature: 0 };
  for (const hz of [0.03, 0.1071, 0.2]) {
    const h = 1e-5;
    periodogramWithDerivatives(plan, hz, point);
    const up = periodogramAt(plan, hz + h);
    const down = periodogramAt(plan, hz - h);
    assert.ok(Math.abs(point.value - periodogramAt(plan, hz)) < 1e-9 * largest);
    assert.ok(Math.abs(point.slope - (up - down) / (2 * h)) < 1e-4 * Math.abs(point.slope) + 1e-6 * largest);
    assert.ok(Math.abs(point.curvature - (up - 2 * point.value + down) / (h * h)) < 1e-3 * Math.abs(point.curvature) + 1e-2 * largest);
  }
});

test('bandPower equals a brute-force integral of a 65,536-point zero-padded periodogram over the same band', () => {
  const plan = createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: FS });
  const random = createRandom(5);
  const x = new Float64Array(N);
  for (let k = 0; k < N; k++) x[k] = 1000 + 45 * Math.sin(2 * Math.PI * 0.093 * (k / FS)) + 20 * gaussian(random) + 0.1 * k;
  powerSpectralDensity(x, plan);
  // Independent path: the tapered window zero-padded to 2^16 points and its bins summed.
  const big = 1 << 16;
  const input = new Float64Array(big);
  detrendTapered(x, plan, input);
  const output = new Float64Array(2 * big);
  new FFT(big).realTransform(output, input);
  const df = FS / big;
  const fine = (lo: number, hi: number) => {
    let sum = 0;
    for (let i = Math.ceil(lo / df); i * df <= hi; i++) sum += 2 * (output[2 * i] ** 2 + output[2 * i + 1] ** 2) * plan.densityScale * df;
    return sum;
  };
  for (const [lo, hi] of [
    [0.0033, 0.4],
    [0.078, 0.108],
    [0.0831, 0.1131],
    [0.19, 0.22],
  ]) {
    const exact = bandPower(plan, lo, hi);
    const brute = fine(lo, hi);
    // The brute-force sum's edges are off by at most one 6e-5 Hz bin each: 0.4 % of 0.03 Hz.
    assert.ok(Math.abs(exact - brute) <= 0.005 * brute, `[${lo}, ${hi}]: ${exact} vs ${brute}`);
  }
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
  // The lags need the grid to hold the whole linear autocorrelation: fftSize ≥ 2 · sampleCount − 1.
  assert.throws(() => createSpectrumPlan({ sampleCount: 257, fftSize: NFFT, sampleRateHz: FS }), AttuneError);
  assert.throws(() => createSpectrumPlan({ sampleCount: N, fftSize: NFFT, sampleRateHz: 0 }), AttuneError);
});
