// Instantaneous phase of the HRV oscillation of one participant's window.
//
// Input: the evenly sampled RR series (tachogram, ms) the coherence worker already computes for
// each 64 s window: a natural cubic spline through the beats sampled at 4 Hz, 256 samples
// (pipelines/hrv/resample.ts, window-metrics.ts: resampleHz 4, windowMs 64,000).
//
//   1. subtract the mean (the band-pass rejects it anyway; this keeps the numbers small);
//   2. band-pass 0.04–0.26 Hz (the coherence ratio's peak search band) with a zero-phase
//      Butterworth filter: order 2 design (4 poles), run forward and backward (filtfilt), so the
//      magnitude response is |H|² (effectively order 4 each side) and the phase response zero
//      (butterworth.ts);
//   3. analytic signal z = x + i·H[x] by the FFT Hilbert transform (Marple 1999, "Computing the
//      discrete-time analytic signal via FFT", IEEE Trans. Signal Processing 47(9)): X = FFT(x),
//      Z[0] = X[0], Z[N/2] = X[N/2], Z[k] = 2X[k] for 0 < k < N/2, 0 above; z = IFFT(Z); the
//      FFT of pipelines/hrv/spectrum.ts (fft.js), length N = the window's samples (a power of
//      two: 256), as scipy.signal.hilbert(x);
//   4. phase φ(t) = arg z(t); the group maths use the unit phasor z/|z| = (cos φ, sin φ).
//
// Why a Butterworth filter and not an FFT-domain (brick-wall) band-pass: a rectangular band in
// the frequency domain rings in time over the whole window (a sinc), and with 64 s of data the
// 0.04 Hz edge is only 2.5 cycles; the Butterworth's gentle skirts keep its transient short and
// local to the window's edges, which are trimmed (below). It is the filter the physiological
// synchrony literature and scipy users apply (filtfilt + hilbert), so a reference check is
// exact (to rounding) rather than approximate. It costs O(N) per participant.
//
// Edges: the filter's start-up and the Hilbert transform's circular wrap disturb the phase near
// both ends of the window. Only the samples [trim, N − trim) are used (`keptCount` of them);
// trim = 8 s (32 samples at 4 Hz) by default, so the central 48 s of each 64 s window count.
// scripts/reference/group_phase_reference.py measures the phase error against the true phase of
// noisy sinusoids at 0.05–0.25 Hz by distance from the edge (pipelines/group/README.md).
import FFT from 'fft.js';
import { AttuneError } from '../../lib/errors.js';
import { butterworthBandPass, createFiltFiltScratch, filtfilt, type BandPassCoefficients, type FiltFiltScratch } from './butterworth.js';

export const DEFAULT_SAMPLE_RATE_HZ = 4;
export const DEFAULT_SAMPLE_COUNT = 256;
export const BAND_LOW_HZ = 0.04;
export const BAND_HIGH_HZ = 0.26;
export const DEFAULT_FILTER_ORDER = 2;
export const DEFAULT_EDGE_TRIM_MS = 8_000;

export interface PhasePlanOptions {
  /** Samples per window (a power of two), default 256 (64 s at 4 Hz). */
  sampleCount?: number;
  sampleRateHz?: number;
  lowHz?: number;
  highHz?: number;
  /** Butterworth design order (the band-pass has twice as many poles), default 2. */
  order?: number;
  /** Event time dropped at each end of the window, ms; default 8 000. */
  edgeTrimMs?: number;
}

export interface PhasePlan {
  readonly sampleCount: number;
  readonly sampleRateHz: number;
  readonly lowHz: number;
  readonly highHz: number;
  readonly filter: BandPassCoefficients;
  /** First kept sample. */
  readonly trim: number;
  /** Samples kept: sampleCount − 2 · trim. */
  readonly keptCount: number;
  readonly filtScratch: FiltFiltScratch;
  readonly fft: FFT;
  readonly centred: Float64Array;
  readonly filtered: Float64Array;
  readonly spectrum: Float64Array;
  /** The analytic signal of the last call, interleaved re/im, sampleCount complex values. */
  readonly analytic: Float64Array;
  /** For phasorsInto with a stride: the folded spectrum's smaller inverse FFT, made on first use. */
  folded: { stride: number; fft: FFT; spectrum: Float64Array; out: Float64Array } | null;
}

export function createPhasePlan(opts: PhasePlanOptions = {}): PhasePlan {
  const sampleCount = opts.sampleCount ?? DEFAULT_SAMPLE_COUNT;
  const sampleRateHz = opts.sampleRateHz ?? DEFAULT_SAMPLE_RATE_HZ;
  const lowHz = opts.lowHz ?? BAND_LOW_HZ;
  const highHz = opts.highHz ?? BAND_HIGH_HZ;
  const order = opts.order ?? DEFAULT_FILTER_ORDER;
  const edgeTrimMs = opts.edgeTrimMs ?? DEFAULT_EDGE_TRIM_MS;
  const trim = Math.round((edgeTrimMs * sampleRateHz) / 1000);
  if (!Number.isInteger(sampleCount) || sampleCount < 32 || (sampleCount & (sampleCount - 1)) !== 0 || !(trim >= 0) || sampleCount - 2 * trim < 8) {
    throw new AttuneError('validation_error', 'phase plan needs a power-of-two sampleCount ≥ 32 and at least 8 samples after the edge trim', [
      { field: 'sampleCount', reason: 'invalid_argument', message: `sampleCount ${sampleCount}, trim ${trim} samples` },
    ]);
  }
  const filter = butterworthBandPass(order, lowHz, highHz, sampleRateHz);
  return {
    sampleCount,
    sampleRateHz,
    lowHz,
    highHz,
    filter,
    trim,
    keptCount: sampleCount - 2 * trim,
    filtScratch: createFiltFiltScratch(filter, sampleCount),
    fft: new FFT(sampleCount),
    centred: new Float64Array(sampleCount),
    filtered: new Float64Array(sampleCount),
    spectrum: new Float64Array(2 * sampleCount),
    analytic: new Float64Array(2 * sampleCount),
    folded: null,
  };
}

/**
 * The analytic signal's spectrum of x[0..sampleCount) into plan.spectrum (interleaved re/im,
 * bins 0..N/2 set, the rest zero). Returns false when x holds a non-finite value.
 */
function analyticSpectrum(plan: PhasePlan, x: ArrayLike<number>): boolean {
  const n = plan.sampleCount;
  if (x.length < n) {
    throw new AttuneError('validation_error', 'series shorter than the phase plan', [{ field: 'series', reason: 'invalid_argument', message: `${x.length} < ${n}` }]);
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i];
  if (!Number.isFinite(sum)) return false;
  const mean = sum / n;
  const centred = plan.centred;
  for (let i = 0; i < n; i++) centred[i] = x[i] - mean;
  filtfilt(plan.filter, centred, n, plan.filtered, plan.filtScratch);
  const spec = plan.spectrum;
  plan.fft.realTransform(spec, plan.filtered);
  // realTransform fills bins 0..N/2; the analytic signal keeps DC and Nyquist once, doubles
  // the positive frequencies and zeroes the negative ones.
  for (let k = 1; k < n / 2; k++) {
    spec[2 * k] *= 2;
    spec[2 * k + 1] *= 2;
  }
  spec.fill(0, n + 2);
  return true;
}

/**
 * Band-passed analytic signal of x[0..sampleCount) into plan.analytic (interleaved re/im).
 * Returns false when x holds a non-finite value (nothing is written then).
 */
export function analyticSignal(plan: PhasePlan, x: ArrayLike<number>): boolean {
  if (!analyticSpectrum(plan, x)) return false;
  plan.fft.inverseTransform(plan.analytic, plan.spectrum);
  return true;
}

/**
 * The analytic signal at every `stride`-th sample only (z[stride·m], m < N/stride), into
 * `out`: sampling the time domain every stride-th sample folds the spectrum, so
 * z[stride·m] = (1/stride) · IFFT_{N/stride}(F)[m] with F[k] = Σ_q Z[k + q·N/stride]; one
 * inverse FFT of N/stride points instead of N. Exact, not an approximation.
 */
function analyticEveryStride(plan: PhasePlan, stride: number): Float64Array {
  const n = plan.sampleCount;
  const m = n / stride;
  let f = plan.folded;
  if (!f || f.stride !== stride) {
    f = { stride, fft: new FFT(m), spectrum: new Float64Array(2 * m), out: new Float64Array(2 * m) };
    plan.folded = f;
  }
  const spec = plan.spectrum;
  const folded = f.spectrum;
  folded.fill(0);
  for (let k = 0; k <= n / 2; k++) {
    const i = 2 * (k % m);
    folded[i] += spec[2 * k];
    folded[i + 1] += spec[2 * k + 1];
  }
  f.fft.inverseTransform(f.out, folded);
  return f.out;
}

/** Instantaneous phase (radians, (−π, π]) of the whole window into out[0..sampleCount); false as analyticSignal. */
export function instantaneousPhase(plan: PhasePlan, x: ArrayLike<number>, out: Float64Array): boolean {
  if (!analyticSignal(plan, x)) return false;
  const z = plan.analytic;
  for (let i = 0; i < plan.sampleCount; i++) out[i] = Math.atan2(z[2 * i + 1], z[2 * i]);
  return true;
}

/** Phasors phasorsInto writes for a stride: ⌈keptCount / stride⌉. */
export function phasorCount(plan: PhasePlan, stride = 1): number {
  return Math.ceil(plan.keptCount / stride);
}

/**
 * Unit phasors (cos φ, sin φ) of every `stride`-th kept sample (trim, trim + stride, … below
 * sampleCount − trim) into re/im[offset .. offset + phasorCount(plan, stride)). Returns false
 * (nothing usable written) when the series is not finite or has no oscillation in the band (the
 * analytic signal vanishes at a kept sample, so its phase is undefined there).
 */
export function phasorsInto(
  plan: PhasePlan,
  x: ArrayLike<number>,
  re: Float64Array | Float32Array,
  im: Float64Array | Float32Array,
  offset: number,
  stride = 1,
): boolean {
  const { trim, keptCount, sampleCount } = plan;
  if (stride > 1 && sampleCount % stride === 0 && trim % stride === 0 && sampleCount / stride >= 2) {
    // Only every stride-th sample is needed: the folded spectrum's smaller inverse FFT.
    if (!analyticSpectrum(plan, x)) return false;
    const z = analyticEveryStride(plan, stride);
    const first = trim / stride;
    for (let i = 0, k = 0; i < keptCount; i += stride, k++) {
      const a = z[2 * (first + k)];
      const b = z[2 * (first + k) + 1];
      const mod = Math.sqrt(a * a + b * b);
      if (!(mod > 1e-12)) return false;
      re[offset + k] = a / mod;
      im[offset + k] = b / mod;
    }
    return true;
  }
  if (!analyticSignal(plan, x)) return false;
  const z = plan.analytic;
  for (let i = 0, k = 0; i < keptCount; i += stride, k++) {
    const a = z[2 * (trim + i)];
    const b = z[2 * (trim + i) + 1];
    const m = Math.sqrt(a * a + b * b);
    if (!(m > 1e-12)) return false;
    re[offset + k] = a / m;
    im[offset + k] = b / m;
  }
  return true;
}
