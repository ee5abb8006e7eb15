// Power spectral density of one evenly sampled window: linear detrend, Hann taper, zero-padded
// real FFT (fft.js), one-sided density.
//
// Scaling (the same as scipy.signal.periodogram(..., window='hann', scaling='density') with
// nfft = fftSize): with x[k] the detrended, tapered samples (k < sampleCount, zeros after),
// X = FFT(x) of length fftSize, w the taper and fs the sample rate,
//   psd[0] = |X[0]|² / (fs Σw²),  psd[fftSize/2] = |X[fftSize/2]|² / (fs Σw²),
//   psd[i] = 2 |X[i]|² / (fs Σw²) otherwise,
// so that Σ psd[i] · binHz ≈ the variance of the tapered signal. Samples in ms give ms²/Hz.
// Bin i is centred on i · binHz, binHz = fs / fftSize (4 Hz / 512 = 0.0078125 Hz).
//
// The taper is the periodic Hann window w[k] = 0.5 − 0.5 cos(2πk / sampleCount), as scipy's
// get_window('hann', n) gives for spectral analysis.
import FFT from 'fft.js';
import { AttuneError } from '../../lib/errors.js';

export interface SpectrumPlanOptions {
  /** Samples per window, e.g. 256 for 64 s at 4 Hz. */
  sampleCount: number;
  /** FFT length, a power of two ≥ sampleCount; the tail is zero padding. */
  fftSize: number;
  sampleRateHz: number;
}

/**
 * FFT plan, taper and scratch for one window shape. Made once by the caller and reused for every
 * window; `psd` is overwritten by each `powerSpectralDensity` call.
 */
export interface SpectrumPlan {
  readonly sampleCount: number;
  readonly fftSize: number;
  readonly sampleRateHz: number;
  /** Width of one frequency bin, Hz. */
  readonly binHz: number;
  readonly fft: FFT;
  readonly taper: Float64Array;
  /** 1 / (fs · Σ taper²): the density scale for a two-sided bin. */
  readonly densityScale: number;
  /** FFT input: the tapered window then zeros (the zeros are never written). */
  readonly fftInput: Float64Array;
  /** FFT output, interleaved re/im, 2 · fftSize values. */
  readonly fftOutput: Float64Array;
  /** One-sided PSD, fftSize / 2 + 1 bins. */
  readonly psd: Float64Array;
}

export function createSpectrumPlan(opts: SpectrumPlanOptions): SpectrumPlan {
  const { sampleCount, fftSize, sampleRateHz } = opts;
  if (!Number.isInteger(fftSize) || fftSize < 4 || (fftSize & (fftSize - 1)) !== 0) {
    throw new AttuneError('validation_error', 'fftSize must be a power of two of at least 4', [
      { field: 'fftSize', reason: `got ${fftSize}` },
    ]);
  }
  if (!Number.isInteger(sampleCount) || sampleCount < 4 || sampleCount > fftSize) {
    throw new AttuneError('validation_error', 'sampleCount must be an integer in [4, fftSize]', [
      { field: 'sampleCount', reason: `got ${sampleCount} with fftSize ${fftSize}` },
    ]);
  }
  if (!(sampleRateHz > 0)) {
    throw new AttuneError('validation_error', 'sampleRateHz must be positive', [
      { field: 'sampleRateHz', reason: `got ${sampleRateHz}` },
    ]);
  }
  const taper = new Float64Array(sampleCount);
  let taperPower = 0;
  for (let k = 0; k < sampleCount; k++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * k) / sampleCount);
    taper[k] = w;
    taperPower += w * w;
  }
  return {
    sampleCount,
    fftSize,
    sampleRateHz,
    binHz: sampleRateHz / fftSize,
    fft: new FFT(fftSize),
    taper,
    densityScale: 1 / (sampleRateHz * taperPower),
    fftInput: new Float64Array(fftSize),
    fftOutput: new Float64Array(2 * fftSize),
    psd: new Float64Array(fftSize / 2 + 1),
  };
}

/**
 * Least-squares line through (k, samples[k]), k < n, subtracted in place into `out`
 * (`out` may be `samples`).
 */
export function detrendLinear(samples: Float64Array, n: number, out: Float64Array): void {
  // Centred abscissa u = k − (n−1)/2: then the intercept is the mean and the slope Σu·y / Σu².
  const centre = (n - 1) / 2;
  let sum = 0;
  let sumUY = 0;
  for (let k = 0; k < n; k++) {
    const y = samples[k];
    sum += y;
    sumUY += (k - centre) * y;
  }
  const sumUU = (n * (n * n - 1)) / 12;
  const mean = sum / n;
  const slope = sumUU > 0 ? sumUY / sumUU : 0;
  for (let k = 0; k < n; k++) out[k] = samples[k] - mean - slope * (k - centre);
}

/**
 * One-sided PSD of `samples[0 .. plan.sampleCount)`, detrended and tapered. Returns `plan.psd`
 * (bins 0 .. fftSize/2), which the next call overwrites. Allocates nothing.
 */
export function powerSpectralDensity(samples: Float64Array, plan: SpectrumPlan): Float64Array {
  const { sampleCount, fftSize, taper, fftInput, fftOutput, psd, densityScale } = plan;
  detrendLinear(samples, sampleCount, fftInput);
  for (let k = 0; k < sampleCount; k++) fftInput[k] *= taper[k];
  plan.fft.realTransform(fftOutput, fftInput);
  const half = fftSize >> 1;
  const twice = 2 * densityScale;
  for (let i = 1; i < half; i++) {
    const re = fftOutput[2 * i];
    const im = fftOutput[2 * i + 1];
    psd[i] = (re * re + im * im) * twice;
  }
  const dc = fftOutput[0];
  psd[0] = dc * dc * densityScale;
  const ny = fftOutput[2 * half];
  const nyIm = fftOutput[2 * half + 1];
  psd[half] = (ny * ny + nyIm * nyIm) * densityScale;
  return psd;
}
