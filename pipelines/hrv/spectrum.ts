// Power spectral density of one evenly sampled window: linear detrend (the line fitted to the
// tapered signal, see detrendTapered), Hann taper, zero-padded real FFT (fft.js), one-sided
// density; and the same periodogram as a continuous function of frequency, for band integrals
// and the peak search.
//
// Scaling (the same as scipy.signal.periodogram(..., window='hann', scaling='density') with
// nfft = fftSize, given the detrended samples): with x[k] the detrended, tapered samples
// (k < sampleCount, zeros after),
// X = FFT(x) of length fftSize, w the taper and fs the sample rate,
//   psd[0] = |X[0]|² / (fs Σw²),  psd[fftSize/2] = |X[fftSize/2]|² / (fs Σw²),
//   psd[i] = 2 |X[i]|² / (fs Σw²) otherwise,
// so that Σ psd[i] · binHz ≈ the variance of the tapered signal. Samples in ms give ms²/Hz.
// Bin i is centred on i · binHz, binHz = fs / fftSize (4 Hz / 512 = 0.0078125 Hz).
//
// The taper is the periodic Hann window w[k] = 0.5 − 0.5 cos(2πk / sampleCount), as scipy's
// get_window('hann', n) gives for spectral analysis.
//
// The continuous periodogram. The grid above samples a function of frequency that exists between
// the bins too: with ρ(d) = Σ_k x[k] x[k+d] the autocorrelation of the tapered window,
//   P(f) = L[0] + 2 Σ_{d=1}^{N−1} L[d] cos(2π f d / fs),   L[d] = 2 ρ(d) / (fs Σw²),
// is the one-sided density at any f in (0, fs/2), and psd[i] = P(i · binHz) exactly. So a band
// power is an exact integral, not a sum of whole bins whose count depends on where the band
// edges fall between them:
//   ∫_{f1}^{f2} P(f) df = L[0] (f2 − f1) + Σ_{d≥1} L[d] (sin 2πf2d/fs − sin 2πf1d/fs) · fs / (π d),
// O(N) per band. L comes from the grid itself: |X|² on fftSize ≥ 2N − 1 points is the DFT of ρ
// without circular wrap-around, so one cosine transform of |X|² gives ρ (Wiener–Khinchin; a
// half-length real FFT, see autocorrelationFromPower). This is
// cheaper than a zero-padded FFT fine enough to put the ±0.015 Hz band's edges within 1 % of its
// width (8,192–16,384 points at 4 Hz, 16–32 times the present FFT) and has no grid at all.
import FFT from 'fft.js';
import { AttuneError } from '../../lib/errors.js';

export interface SpectrumPlanOptions {
  /** Samples per window, e.g. 256 for 64 s at 4 Hz. */
  sampleCount: number;
  /**
   * FFT length, a power of two ≥ 2 · sampleCount − 1; the tail is zero padding. The bound makes
   * the grid's |X|² hold the window's whole (linear, not circular) autocorrelation.
   */
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
  /** Inverse of the taper-weighted normal matrix of the detrend line: [i00, i01, i11]. */
  readonly trendNormal: Float64Array;
  /** 1 / (fs · Σ taper²): the density scale for a two-sided bin. */
  readonly densityScale: number;
  /** FFT input: the tapered window then zeros (the zeros are never written). */
  readonly fftInput: Float64Array;
  /** FFT output, interleaved re/im, 2 · fftSize values. */
  readonly fftOutput: Float64Array;
  /** One-sided PSD, fftSize / 2 + 1 bins. */
  readonly psd: Float64Array;
  /** |X[k]|², k = 0 .. fftSize/2: the input of the cosine transform that yields the lags. */
  readonly power: Float64Array;
  /** Half-length FFT, its input and output, and sin(πj / (fftSize/2)): for that transform. */
  readonly halfFft: FFT;
  readonly halfInput: Float64Array;
  readonly halfOutput: Float64Array;
  readonly halfSin: Float64Array;
  /**
   * Lag coefficients L[0 .. sampleCount) of the continuous periodogram (see the file comment):
   * P(f) = L[0] + 2 Σ L[d] cos(2π f d / fs). Overwritten with `psd` by each call.
   */
  readonly lags: Float64Array;
}

export function createSpectrumPlan(opts: SpectrumPlanOptions): SpectrumPlan {
  const { sampleCount, fftSize, sampleRateHz } = opts;
  if (!Number.isInteger(fftSize) || fftSize < 8 || (fftSize & (fftSize - 1)) !== 0) {
    throw new AttuneError('validation_error', 'fftSize must be a power of two of at least 8', [
      { field: 'fftSize', reason: 'invalid_argument', message: `got ${fftSize}` },
    ]);
  }
  if (!Number.isInteger(sampleCount) || sampleCount < 4 || 2 * sampleCount - 1 > fftSize) {
    throw new AttuneError('validation_error', 'sampleCount must be an integer in [4, (fftSize + 1) / 2]', [
      { field: 'sampleCount', reason: 'invalid_argument', message: `got ${sampleCount} with fftSize ${fftSize}` },
    ]);
  }
  if (!(sampleRateHz > 0)) {
    throw new AttuneError('validation_error', 'sampleRateHz must be positive', [
      { field: 'sampleRateHz', reason: 'invalid_argument', message: `got ${sampleRateHz}` },
    ]);
  }
  const taper = new Float64Array(sampleCount);
  let taperPower = 0;
  let s1 = 0;
  let s2 = 0;
  for (let k = 0; k < sampleCount; k++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * k) / sampleCount);
    taper[k] = w;
    taperPower += w * w;
    const u = k - sampleCount / 2;
    s1 += w * w * u;
    s2 += w * w * u * u;
  }
  const det = taperPower * s2 - s1 * s1;
  return {
    sampleCount,
    fftSize,
    sampleRateHz,
    binHz: sampleRateHz / fftSize,
    fft: new FFT(fftSize),
    taper,
    trendNormal: Float64Array.of(s2 / det, -s1 / det, taperPower / det),
    densityScale: 1 / (sampleRateHz * taperPower),
    fftInput: new Float64Array(fftSize),
    fftOutput: new Float64Array(2 * fftSize),
    psd: new Float64Array(fftSize / 2 + 1),
    power: new Float64Array(fftSize / 2 + 1),
    halfFft: new FFT(fftSize / 2),
    halfInput: new Float64Array(fftSize / 2),
    halfOutput: new Float64Array(fftSize),
    halfSin: Float64Array.from({ length: fftSize / 2 }, (_, j) => Math.sin((2 * Math.PI * j) / fftSize)),
    lags: new Float64Array(sampleCount),
  };
}

/**
 * Least-squares line through (k, samples[k]), k < n, subtracted in place into `out`
 * (`out` may be `samples`). The plain (unweighted) detrend; powerSpectralDensity uses the
 * taper-weighted one below.
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
 * The taper-weighted linear detrend, tapered: writes taper[k] · (samples[k] − a − b·u_k),
 * u_k = k − n/2, into `out`, with (a, b) the least-squares line of the *tapered* signal
 * (minimising Σ taper[k]² (samples[k] − a − b·u_k)²).
 *
 * Why weighted: the spectrum only sees the tapered signal, and this is the line whose removal
 * leaves the least power in it. A plain fit weighs the window's ends, which the taper then
 * discards, as much as its middle: a slow oscillation (3–4 cycles in 64 s, 0.045–0.07 Hz) has a
 * sizeable unweighted mean and slope that depend on its phase, and removing them put a
 * phase-dependent ramp into 0.003–0.03 Hz that moved the coherence ratio of a pure sinusoid by
 * −8 % to +7 %. With the weighted fit the ratio of a sinusoid stays within −0.5 %/+1.6 % of its
 * median from 0.05 Hz up, whatever the phase (+4.7 % at 0.047 Hz, +8.7 % at 0.045 Hz, where
 * under 3 cycles fit in the window and any line fit takes part of the oscillation with it).
 * On real tachograms it also leaves less of the slow drift in the total band: the coherence ratio
 * is 7–28 % (median per record) higher than after a plain detrend (fixtures/README.md).
 */
export function detrendTapered(samples: Float64Array, plan: SpectrumPlan, out: Float64Array): void {
  const { sampleCount: n, taper, trendNormal } = plan;
  const centre = n / 2;
  let sumY = 0;
  let sumUY = 0;
  for (let k = 0; k < n; k++) {
    const ww = taper[k] * taper[k] * samples[k];
    sumY += ww;
    sumUY += (k - centre) * ww;
  }
  // Normal equations [s0 s1; s1 s2] (a, b) = (Σw²y, Σw²uy), their inverse precomputed.
  const a = trendNormal[0] * sumY + trendNormal[1] * sumUY;
  const b = trendNormal[1] * sumY + trendNormal[2] * sumUY;
  for (let k = 0; k < n; k++) out[k] = taper[k] * (samples[k] - a - b * (k - centre));
}

/**
 * One-sided PSD of `samples[0 .. plan.sampleCount)`, detrended and tapered. Returns `plan.psd`
 * (bins 0 .. fftSize/2) and fills `plan.lags`; the next call overwrites both. Allocates nothing.
 */
export function powerSpectralDensity(samples: Float64Array, plan: SpectrumPlan): Float64Array {
  const { sampleCount, fftSize, fftInput, fftOutput, psd, densityScale, power } = plan;
  detrendTapered(samples, plan, fftInput);
  plan.fft.realTransform(fftOutput, fftInput);
  const half = fftSize >> 1;
  const twice = 2 * densityScale;
  for (let i = 0; i <= half; i++) {
    const re = fftOutput[2 * i];
    const im = fftOutput[2 * i + 1];
    const p = re * re + im * im;
    power[i] = p;
    psd[i] = p * twice;
  }
  psd[0] = power[0] * densityScale;
  psd[half] = power[half] * densityScale;
  autocorrelationFromPower(plan, twice / fftSize);
  return psd;
}

/**
 * lags[d] = scale · Σ_{k<fftSize} |X[k]|² cos(2πkd / fftSize), d < sampleCount: the inverse DFT of
 * the (real, even) power spectrum, i.e. the autocorrelation ρ(d) scaled. Computed as a DCT-I of
 * the L + 1 = fftSize/2 + 1 one-sided values through one real FFT of length L (Numerical Recipes'
 * cosft1), which costs about half of a full-length real FFT of the mirrored spectrum:
 *   y[j] = ½ (S[j] + S[L−j]) − sin(πj/L) (S[j] − S[L−j]),  Y = FFT_L(y),
 *   F(2m) = Re Y[m],  F(2m+1) = F(2m−1) − Im Y[m]  (fft.js' e^{−i…} convention),
 *   F(1) = ½ (S[0] − S[L]) + Σ_{0<k<L} S[k] cos(πk/L),
 * where F(d) = ½ S[0] + ½ (−1)^d S[L] + Σ_{0<k<L} S[k] cos(πkd/L) and the full sum is 2 F(d).
 */
function autocorrelationFromPower(plan: SpectrumPlan, scale: number): void {
  const { power, halfInput, halfOutput, halfSin, lags, sampleCount } = plan;
  const L = plan.fftSize >> 1;
  halfInput[0] = 0.5 * (power[0] + power[L]);
  let f1 = 0.5 * (power[0] - power[L]);
  for (let j = 1; j < L; j++) {
    const a = power[j];
    const b = power[L - j];
    halfInput[j] = 0.5 * (a + b) - halfSin[j] * (a - b);
    // cos(πj/L) = sin(π(L/2 − j)/L) for j ≤ L/2, and −sin(π(j − L/2)/L) above.
    f1 += a * (j <= L / 2 ? halfSin[L / 2 - j] : -halfSin[j - L / 2]);
  }
  plan.halfFft.realTransform(halfOutput, halfInput);
  const twiceScale = 2 * scale;
  lags[0] = halfOutput[0] * twiceScale;
  let odd = f1;
  if (sampleCount > 1) lags[1] = odd * twiceScale;
  for (let m = 1; 2 * m < sampleCount; m++) {
    lags[2 * m] = halfOutput[2 * m] * twiceScale;
    odd -= halfOutput[2 * m + 1];
    if (2 * m + 1 < sampleCount) lags[2 * m + 1] = odd * twiceScale;
  }
}

/** The continuous one-sided periodogram of the last window at `hz` (0 < hz < fs/2). */
export function periodogramAt(plan: SpectrumPlan, hz: number): number {
  const { lags, sampleCount } = plan;
  const theta = (2 * Math.PI * hz) / plan.sampleRateHz;
  const cosStep = Math.cos(theta);
  const sinStep = Math.sin(theta);
  // cos(dθ), sin(dθ) by rotation: error grows only linearly in d, ~1e-13 at d = 255.
  let c = cosStep;
  let s = sinStep;
  let sum = 0;
  for (let d = 1; d < sampleCount; d++) {
    sum += lags[d] * c;
    const next = c * cosStep - s * sinStep;
    s = s * cosStep + c * sinStep;
    c = next;
  }
  return lags[0] + 2 * sum;
}

/** Value, first and second derivative (per Hz) of the continuous periodogram at one frequency. */
export interface PeriodogramPoint {
  value: number;
  slope: number;
  curvature: number;
}

/** P(hz), P′(hz), P″(hz) in one pass over the lags; writes into and returns `out`. */
export function periodogramWithDerivatives(plan: SpectrumPlan, hz: number, out: PeriodogramPoint): PeriodogramPoint {
  const { lags, sampleCount } = plan;
  const omega = (2 * Math.PI) / plan.sampleRateHz;
  const theta = omega * hz;
  const cosStep = Math.cos(theta);
  const sinStep = Math.sin(theta);
  let c = cosStep;
  let s = sinStep;
  let value = 0;
  let slope = 0;
  let curvature = 0;
  for (let d = 1; d < sampleCount; d++) {
    const l = lags[d];
    value += l * c;
    slope += l * d * s;
    curvature += l * d * d * c;
    const next = c * cosStep - s * sinStep;
    s = s * cosStep + c * sinStep;
    c = next;
  }
  out.value = lags[0] + 2 * value;
  out.slope = -2 * omega * slope;
  out.curvature = -2 * omega * omega * curvature;
  return out;
}

/**
 * ∫ P(f) df over [loHz, hiHz] (0 ≤ loHz ≤ hiHz ≤ fs/2) of the last window's continuous
 * periodogram, exactly (see the file comment). PSD units × Hz, ms² for a tachogram in ms.
 */
export function bandPower(plan: SpectrumPlan, loHz: number, hiHz: number): number {
  const { lags, sampleCount, sampleRateHz } = plan;
  const omega = (2 * Math.PI) / sampleRateHz;
  const loCos = Math.cos(omega * loHz);
  const loSin = Math.sin(omega * loHz);
  const hiCos = Math.cos(omega * hiHz);
  const hiSin = Math.sin(omega * hiHz);
  let cLo = loCos;
  let sLo = loSin;
  let cHi = hiCos;
  let sHi = hiSin;
  let sum = 0;
  for (let d = 1; d < sampleCount; d++) {
    sum += (lags[d] * (sHi - sLo)) / d;
    const nextLo = cLo * loCos - sLo * loSin;
    sLo = sLo * loCos + cLo * loSin;
    cLo = nextLo;
    const nextHi = cHi * hiCos - sHi * hiSin;
    sHi = sHi * hiCos + cHi * hiSin;
    cHi = nextHi;
  }
  // ∫ 2 L[d] cos(ω f d) df = 2 L[d] sin(ω f d) / (ω d).
  return lags[0] * (hiHz - loHz) + (2 * sum) / omega;
}
