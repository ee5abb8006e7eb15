// Evenly spaced RR series (the tachogram) from irregular (beat time, RR) pairs.
//
// Sample k of a window [startMs, endMs) at rate fs sits at t_k = startMs + k · 1000 / fs,
// k < round((endMs − startMs) · fs / 1000) (256 samples for 64 s at 4 Hz). Each RR is placed at
// the time of the beat that closes it. Between the first and the last beat the value is a
// natural cubic spline through the beats (second derivative zero at both ends), as Kubios and
// NeuroKit2 interpolate; before the first and after the last beat it is held at the edge value
// rather than extrapolated, because a cubic's extrapolation runs away within a few hundred ms.
// Beats whose time does not increase on the previous one are skipped (a spline needs strictly
// increasing abscissae).
import { AttuneError } from '../../lib/errors.js';

/** Reusable scratch for the spline solve: holds `capacity` knots; grows when a call needs more. */
export interface SplineScratch {
  capacity: number;
  x: Float64Array;
  y: Float64Array;
  /** Second derivatives at the knots. */
  m: Float64Array;
  /** Thomas-algorithm forward-sweep coefficients. */
  c: Float64Array;
}

export function createSplineScratch(capacity = 256): SplineScratch {
  return {
    capacity,
    x: new Float64Array(capacity),
    y: new Float64Array(capacity),
    m: new Float64Array(capacity),
    c: new Float64Array(capacity),
  };
}

function ensureCapacity(scratch: SplineScratch, n: number): void {
  if (n <= scratch.capacity) return;
  const capacity = Math.max(n, scratch.capacity * 2);
  scratch.capacity = capacity;
  scratch.x = new Float64Array(capacity);
  scratch.y = new Float64Array(capacity);
  scratch.m = new Float64Array(capacity);
  scratch.c = new Float64Array(capacity);
}

/** Number of samples in [startMs, endMs) at `sampleRateHz`. */
export function sampleCountFor(startMs: number, endMs: number, sampleRateHz: number): number {
  return Math.round(((endMs - startMs) * sampleRateHz) / 1000);
}

function checkWindow(startMs: number, endMs: number, sampleRateHz: number, out: Float64Array): number {
  const n = sampleCountFor(startMs, endMs, sampleRateHz);
  if (!(sampleRateHz > 0) || !(n > 0)) {
    throw new AttuneError('validation_error', 'resampling window must be non-empty with a positive rate', [
      { field: 'sampleRateHz', reason: 'invalid_argument', message: `window [${startMs}, ${endMs}) ms at ${sampleRateHz} Hz` },
    ]);
  }
  if (out.length < n) {
    throw new AttuneError('validation_error', 'output buffer too small for the resampling window', [
      { field: 'out', reason: 'invalid_argument', message: `needs ${n} samples, has ${out.length}` },
    ]);
  }
  return n;
}

/** Copies the strictly increasing beats into scratch.x/y; returns how many were kept. */
function collectKnots(beatTimesMs: Float64Array, rrMs: Float64Array, count: number, scratch: SplineScratch): number {
  ensureCapacity(scratch, count);
  const { x, y } = scratch;
  let n = 0;
  for (let i = 0; i < count; i++) {
    const t = beatTimesMs[i];
    if (n > 0 && !(t > x[n - 1])) continue;
    x[n] = t;
    y[n] = rrMs[i];
    n++;
  }
  return n;
}

/** Fills `out` with every sample equal to `value`; used when fewer than two knots exist. */
function fillConstant(out: Float64Array, n: number, value: number): void {
  for (let k = 0; k < n; k++) out[k] = value;
}

/**
 * Natural cubic spline of RR over beat times, sampled on the window grid into `out`.
 * Returns the number of samples written. With no beats the samples are NaN.
 */
export function resampleCubic(
  beatTimesMs: Float64Array,
  rrMs: Float64Array,
  count: number,
  startMs: number,
  endMs: number,
  sampleRateHz: number,
  out: Float64Array,
  scratch: SplineScratch,
): number {
  const samples = checkWindow(startMs, endMs, sampleRateHz, out);
  const n = collectKnots(beatTimesMs, rrMs, count, scratch);
  const { x, y, m, c } = scratch;
  if (n < 2) {
    fillConstant(out, samples, n === 1 ? y[0] : NaN);
    return samples;
  }
  // Tridiagonal system for the interior second derivatives m[1..n-2], m[0] = m[n-1] = 0:
  //   h[i-1] m[i-1] + 2 (h[i-1] + h[i]) m[i] + h[i] m[i+1] = 6 (s[i] − s[i-1]),
  // with h[i] = x[i+1] − x[i] and s[i] the slope of segment i. Solved by the Thomas algorithm;
  // `c` holds the normalised super-diagonal, `m` the forward-swept right-hand side.
  m[0] = 0;
  c[0] = 0;
  let hPrev = x[1] - x[0];
  let sPrev = (y[1] - y[0]) / hPrev;
  for (let i = 1; i < n - 1; i++) {
    const h = x[i + 1] - x[i];
    const s = (y[i + 1] - y[i]) / h;
    const diag = 2 * (hPrev + h) - hPrev * c[i - 1];
    c[i] = h / diag;
    m[i] = (6 * (s - sPrev) - hPrev * m[i - 1]) / diag;
    hPrev = h;
    sPrev = s;
  }
  m[n - 1] = 0;
  for (let i = n - 2; i >= 1; i--) m[i] -= c[i] * m[i + 1];

  const stepMs = 1000 / sampleRateHz;
  const first = x[0];
  const last = x[n - 1];
  let seg = 0;
  for (let k = 0; k < samples; k++) {
    const t = startMs + k * stepMs;
    if (t <= first) {
      out[k] = y[0];
      continue;
    }
    if (t >= last) {
      out[k] = y[n - 1];
      continue;
    }
    while (x[seg + 1] < t) seg++;
    const x0 = x[seg];
    const h = x[seg + 1] - x0;
    const a = (x[seg + 1] - t) / h;
    const b = 1 - a;
    // Standard form: a·y0 + b·y1 + ((a³ − a) m0 + (b³ − b) m1) h² / 6.
    out[k] = a * y[seg] + b * y[seg + 1] + ((a * a * a - a) * m[seg] + (b * b * b - b) * m[seg + 1]) * (h * h) / 6;
  }
  return samples;
}

/**
 * Linear interpolation of RR over beat times on the same grid and edge rule as
 * `resampleCubic`; a cheaper alternative, used as a cross-check in tests.
 */
export function resampleLinear(
  beatTimesMs: Float64Array,
  rrMs: Float64Array,
  count: number,
  startMs: number,
  endMs: number,
  sampleRateHz: number,
  out: Float64Array,
  scratch: SplineScratch,
): number {
  const samples = checkWindow(startMs, endMs, sampleRateHz, out);
  const n = collectKnots(beatTimesMs, rrMs, count, scratch);
  const { x, y } = scratch;
  if (n < 2) {
    fillConstant(out, samples, n === 1 ? y[0] : NaN);
    return samples;
  }
  const stepMs = 1000 / sampleRateHz;
  let seg = 0;
  for (let k = 0; k < samples; k++) {
    const t = startMs + k * stepMs;
    if (t <= x[0]) out[k] = y[0];
    else if (t >= x[n - 1]) out[k] = y[n - 1];
    else {
      while (x[seg + 1] < t) seg++;
      const b = (t - x[seg]) / (x[seg + 1] - x[seg]);
      out[k] = y[seg] + b * (y[seg + 1] - y[seg]);
    }
  }
  return samples;
}
