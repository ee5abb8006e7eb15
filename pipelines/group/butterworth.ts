// Zero-phase Butterworth band-pass: the design of scipy.signal.butter(order, [low, high],
// btype='bandpass', fs=fs) and the forward-backward filtering of scipy.signal.filtfilt(b, a, x)
// with its defaults (odd extension of 3 · max(len(a), len(b)) samples at each end, initial
// conditions from lfilter_zi scaled by the first sample of each pass), written out so that
// scripts/reference/group_phase_reference.py can check the two agree to rounding error.
//
// Design (as scipy): analog prototype poles p_k = −exp(iπ(2k − N + 1)/(2N)), k < N; the band
// edges pre-warped, ω = 4 tan(π f / fs) (bilinear transform at an internal rate of 2), centre
// ω0 = √(ω_lo ω_hi), width B = ω_hi − ω_lo; low-pass to band-pass, p → p B/2 ± √((p B/2)² − ω0²)
// with N zeros at 0 and gain B^N; bilinear transform z = (4 + s)/(4 − s), the N zeros at s = ∞
// going to z = −1; then the transfer function's coefficients (b, a), 2N + 1 of each.
// Reference: Oppenheim & Schafer, Discrete-Time Signal Processing (3rd ed.), §7.1 (bilinear
// transformation); Gustafsson (1996), "Determining the initial states in forward-backward
// filtering", IEEE Trans. Signal Processing 44(4), for the filtfilt initial conditions.
//
// Pure: typed arrays in, typed arrays out, no allocation after the plan.
import { AttuneError } from '../../lib/errors.js';

export interface BandPassCoefficients {
  /** Numerator, 2 · order + 1 coefficients. */
  b: Float64Array;
  /** Denominator, a[0] = 1. */
  a: Float64Array;
  /** Steady-state initial conditions for a unit step (scipy.signal.lfilter_zi), 2 · order values. */
  zi: Float64Array;
}

// Complex numbers as [re, im] pairs: the design runs once per plan, so clarity over speed.
type C = [number, number];
const cadd = (x: C, y: C): C => [x[0] + y[0], x[1] + y[1]];
const csub = (x: C, y: C): C => [x[0] - y[0], x[1] - y[1]];
const cmul = (x: C, y: C): C => [x[0] * y[0] - x[1] * y[1], x[0] * y[1] + x[1] * y[0]];
const cdiv = (x: C, y: C): C => {
  const d = y[0] * y[0] + y[1] * y[1];
  return [(x[0] * y[0] + x[1] * y[1]) / d, (x[1] * y[0] - x[0] * y[1]) / d];
};
/** Principal square root, as numpy's. */
function csqrt(x: C): C {
  const r = Math.hypot(x[0], x[1]);
  const re = Math.sqrt((r + x[0]) / 2);
  const im = Math.sqrt(Math.max(0, (r - x[0]) / 2));
  return [re, x[1] < 0 ? -im : im];
}

/** Coefficients of Π (z − root_k), highest power first (numpy.poly), real parts. */
function poly(roots: readonly C[]): Float64Array {
  let c: C[] = [[1, 0]];
  for (const r of roots) {
    const next: C[] = c.map(() => [0, 0] as C).concat([[0, 0]]);
    for (let i = 0; i < c.length; i++) {
      next[i] = cadd(next[i], c[i]);
      next[i + 1] = csub(next[i + 1], cmul(c[i], r));
    }
    c = next;
  }
  return Float64Array.from(c, (v) => v[0]);
}

/** Solves A x = y in place (Gaussian elimination, partial pivoting); A is n×n row-major. */
function solve(A: Float64Array, y: Float64Array, n: number): Float64Array {
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r * n + col]) > Math.abs(A[pivot * n + col])) pivot = r;
    if (pivot !== col) {
      for (let k = 0; k < n; k++) [A[col * n + k], A[pivot * n + k]] = [A[pivot * n + k], A[col * n + k]];
      [y[col], y[pivot]] = [y[pivot], y[col]];
    }
    for (let r = col + 1; r < n; r++) {
      const f = A[r * n + col] / A[col * n + col];
      for (let k = col; k < n; k++) A[r * n + k] -= f * A[col * n + k];
      y[r] -= f * y[col];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = y[r];
    for (let k = r + 1; k < n; k++) s -= A[r * n + k] * y[k];
    y[r] = s / A[r * n + r];
  }
  return y;
}

/** scipy.signal.lfilter_zi(b, a): the state after an infinitely long unit step. */
export function lfilterZi(b: Float64Array, a: Float64Array): Float64Array {
  const n = a.length;
  const m = n - 1;
  // I − companion(a)ᵀ: column 0 holds a[1..], the superdiagonal −1.
  const A = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    A[i * m + i] += 1;
    A[i * m] += a[i + 1];
    if (i + 1 < m) A[i * m + i + 1] -= 1;
  }
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) y[i] = b[i + 1] - a[i + 1] * b[0];
  return solve(A, y, m);
}

/** scipy.signal.butter(order, [lowHz, highHz], btype='bandpass', fs=sampleRateHz), with lfilter_zi. */
export function butterworthBandPass(order: number, lowHz: number, highHz: number, sampleRateHz: number): BandPassCoefficients {
  if (!Number.isInteger(order) || order < 1 || order > 8 || !(lowHz > 0) || !(highHz > lowHz) || !(highHz < sampleRateHz / 2)) {
    throw new AttuneError('validation_error', 'band-pass needs 1 ≤ order ≤ 8 and 0 < low < high < fs/2', [
      { field: 'band', reason: 'invalid_argument', message: `order ${order}, ${lowHz}–${highHz} Hz at ${sampleRateHz} Hz` },
    ]);
  }
  const fs2 = 4; // 2 · the internal rate 2 of scipy's design
  const wLo = fs2 * Math.tan((Math.PI * lowHz) / sampleRateHz);
  const wHi = fs2 * Math.tan((Math.PI * highHz) / sampleRateHz);
  const bw = wHi - wLo;
  const w0sq: C = [wLo * wHi, 0];
  const poles: C[] = [];
  for (let k = 0; k < order; k++) {
    const m = -order + 1 + 2 * k;
    const theta = (Math.PI * m) / (2 * order);
    poles.push([-Math.cos(theta), -Math.sin(theta)]);
  }
  const bp: C[] = [];
  const lp = poles.map((p): C => [(p[0] * bw) / 2, (p[1] * bw) / 2]);
  for (const p of lp) bp.push(cadd(p, csqrt(csub(cmul(p, p), w0sq))));
  for (const p of lp) bp.push(csub(p, csqrt(csub(cmul(p, p), w0sq))));
  // Analog zeros: `order` at s = 0; gain bw^order.
  let k = bw ** order;
  const zz: C[] = [];
  for (let i = 0; i < order; i++) zz.push([1, 0]); // (4 + 0)/(4 − 0)
  for (let i = 0; i < order; i++) zz.push([-1, 0]);
  const pz = bp.map((p) => cdiv(cadd([fs2, 0], p), csub([fs2, 0], p)));
  let num: C = [1, 0];
  for (let i = 0; i < order; i++) num = cmul(num, [fs2, 0]);
  let den: C = [1, 0];
  for (const p of bp) den = cmul(den, csub([fs2, 0], p));
  k *= cdiv(num, den)[0];
  const b = poly(zz).map((v) => v * k);
  const a = poly(pz);
  return { b, a, zi: lfilterZi(b, a) };
}

/** Scratch for filtfilt on series of up to `capacity` samples. */
export interface FiltFiltScratch {
  readonly padLen: number;
  ext: Float64Array;
  state: Float64Array;
}

export function createFiltFiltScratch(coefficients: BandPassCoefficients, capacity: number): FiltFiltScratch {
  const padLen = 3 * Math.max(coefficients.a.length, coefficients.b.length);
  return { padLen, ext: new Float64Array(capacity + 2 * padLen), state: new Float64Array(coefficients.a.length - 1) };
}

/** Direct form II transposed over data[0..len) in place, forward or backward, starting from zi · the first sample. */
function lfilterInPlace(c: BandPassCoefficients, data: Float64Array, len: number, forward: boolean, z: Float64Array): void {
  const { b, a, zi } = c;
  const m = z.length;
  const first = forward ? data[0] : data[len - 1];
  for (let i = 0; i < m; i++) z[i] = zi[i] * first;
  const b0 = b[0];
  const from = forward ? 0 : len - 1;
  const dir = forward ? 1 : -1;
  if (m === 4) {
    // Order 2 (the default), unrolled: the state lives in locals.
    const [, b1, b2, b3, b4] = b;
    const [, a1, a2, a3, a4] = a;
    let z0 = z[0];
    let z1 = z[1];
    let z2 = z[2];
    let z3 = z[3];
    for (let step = 0, n = from; step < len; step++, n += dir) {
      const x = data[n];
      const y = b0 * x + z0;
      z0 = b1 * x + z1 - a1 * y;
      z1 = b2 * x + z2 - a2 * y;
      z2 = b3 * x + z3 - a3 * y;
      z3 = b4 * x - a4 * y;
      data[n] = y;
    }
    return;
  }
  for (let step = 0, n = from; step < len; step++, n += dir) {
    const x = data[n];
    const y = b0 * x + z[0];
    for (let i = 0; i < m - 1; i++) z[i] = b[i + 1] * x + z[i + 1] - a[i + 1] * y;
    z[m - 1] = b[m] * x - a[m] * y;
    data[n] = y;
  }
}

/**
 * scipy.signal.filtfilt(b, a, x[0..n)) into out[0..n) (out may be x). n must exceed the padding,
 * 3 · (2 · order + 1) samples (15 for order 2).
 */
export function filtfilt(c: BandPassCoefficients, x: ArrayLike<number>, n: number, out: Float64Array, scratch: FiltFiltScratch): void {
  const p = scratch.padLen;
  if (n <= p) {
    throw new AttuneError('validation_error', 'series too short for filtfilt', [{ field: 'x', reason: 'invalid_argument', message: `${n} samples, needs more than ${p}` }]);
  }
  if (scratch.ext.length < n + 2 * p) scratch.ext = new Float64Array(n + 2 * p);
  const ext = scratch.ext;
  const x0 = x[0];
  const xn = x[n - 1];
  for (let i = 0; i < p; i++) ext[i] = 2 * x0 - x[p - i];
  for (let i = 0; i < n; i++) ext[p + i] = x[i];
  for (let i = 0; i < p; i++) ext[p + n + i] = 2 * xn - x[n - 2 - i];
  const len = n + 2 * p;
  lfilterInPlace(c, ext, len, true, scratch.state);
  lfilterInPlace(c, ext, len, false, scratch.state);
  for (let i = 0; i < n; i++) out[i] = ext[p + i];
}
