// Physiological synchrony of one group window: Kuramoto order parameter R with its significance
// against circular-shift surrogates, pairwise phase locking, each participant's locking to the
// group, and (small groups) the lagged cross-correlation of the series. Definitions and
// references in pipelines/group/README.md.
//
// With u_j(t) = exp(iφ_j(t)) participant j's unit phasor at time t (phase.ts; one phasor per
// second of the window's kept central 48 s by default, L = 48) and N participants with a phase:
//   Z(t)  = Σ_j u_j(t)
//   R     = (1/L) Σ_t |Z(t)| / N                             O(N·L)
//   PPC   = (1/L) Σ_t (|Z(t)|² − N) / (N(N − 1))            O(N·L): = mean over pairs j<k and t
//           of cos(φ_j − φ_k), by |Z|² = N + 2 Σ_{j<k} cos(φ_j − φ_k)
//   PLV   = mean over pairs j<k of |(1/L) Σ_t u_j(t) conj u_k(t)|
//           exact, O(N²·L), for N ≤ plvExactMaxN; above, the mean over a seeded sample of
//           plvSampledPairs pairs (an unbiased estimate; the modulus inside the pair mean has
//           no O(N·L) identity: the one above gives the mean of the real part, PPC)
//   locking_j = |(1/L) Σ_t u_j(t) conj(ψ_j(t))|, ψ_j = (Z − u_j)/|Z − u_j|: j's phase-locking to
//           the mean phase of the others
//   surrogates: S sets of circular shifts, participant j's phasors read at (t + s_j) mod L,
//           s_0 = 0 and, for j ≥ 1, s_j uniform in [⌈L/4⌉, L − ⌈L/4⌉] (at least a quarter
//           window from participant 0 either way), R_s computed as R; z = (R − mean R_s)/sd R_s
//           (sd with S − 1), p = (1 + #{R_s ≥ R}) / (1 + S).
//
// Pure: numbers in, numbers out; every random draw comes from mulberry32 seeded by `seed`.
import FFT from 'fft.js';
import { AttuneError } from '../../lib/errors.js';
import { Mulberry32, deriveSeed } from '../../lib/prng.js';
import { createPhasePlan, phasorCount, phasorsInto, type PhasePlan, type PhasePlanOptions } from './phase.js';

export const DEFAULT_SURROGATES = 100;
export const DEFAULT_PHASE_STEP_MS = 1_000;
export const MIN_SURROGATES = 100;
export const DEFAULT_PLV_EXACT_MAX_N = 100;
export const DEFAULT_PLV_SAMPLED_PAIRS = 4_950; // the pair count of 100 participants
export const DEFAULT_CROSS_CORRELATION_MAX_N = 50;
export const DEFAULT_MAX_LAG_MS = 10_000;

export interface SynchronyPlanOptions extends PhasePlanOptions {
  /** Spacing of the phasors the group maths read, ms; default 1 000 (every 4th sample at 4 Hz). */
  phaseStepMs?: number;
  plvExactMaxN?: number;
  plvSampledPairs?: number;
  crossCorrelationMaxN?: number;
  maxLagMs?: number;
  /** Participants the scratch holds at first; it grows on demand. */
  initialCapacity?: number;
}

/** Scratch and settings for group windows of one shape; reuse it for every window (one thread). */
export interface SynchronyPlan {
  readonly phase: PhasePlan;
  /** Kept samples between two phasors read. */
  readonly stride: number;
  /** Phasors per participant: ⌈keptCount / stride⌉. */
  readonly phasorCount: number;
  readonly plvExactMaxN: number;
  readonly plvSampledPairs: number;
  readonly crossCorrelationMaxN: number;
  /** Largest lag searched, samples. */
  readonly maxLag: number;
  capacity: number;
  re: Float64Array;
  im: Float64Array;
  /** Input index of each phasor row. */
  rows: Int32Array;
  sumRe: Float64Array;
  sumIm: Float64Array;
  shifts: Int32Array;
  /** Cross-correlation scratch, made on first use. */
  xcorr: XcorrScratch | null;
}

export function createSynchronyPlan(opts: SynchronyPlanOptions = {}): SynchronyPlan {
  const phase = createPhasePlan(opts);
  const capacity = Math.max(2, opts.initialCapacity ?? 64);
  const stride = Math.round(((opts.phaseStepMs ?? DEFAULT_PHASE_STEP_MS) * phase.sampleRateHz) / 1000);
  if (!(stride >= 1) || phasorCount(phase, stride) < 8) {
    throw new AttuneError('validation_error', 'phaseStepMs must leave at least 8 phasors in the kept window', [
      { field: 'phaseStepMs', reason: 'invalid_argument', message: `stride ${stride} samples` },
    ]);
  }
  const L = phasorCount(phase, stride);
  const maxLag = Math.round(((opts.maxLagMs ?? DEFAULT_MAX_LAG_MS) * phase.sampleRateHz) / 1000);
  if (!(maxLag >= 0) || maxLag >= phase.sampleCount / 2) {
    throw new AttuneError('validation_error', 'maxLagMs must be below half the window', [{ field: 'maxLagMs', reason: 'invalid_argument', message: `${maxLag} samples` }]);
  }
  return {
    phase,
    stride,
    phasorCount: L,
    plvExactMaxN: opts.plvExactMaxN ?? DEFAULT_PLV_EXACT_MAX_N,
    plvSampledPairs: opts.plvSampledPairs ?? DEFAULT_PLV_SAMPLED_PAIRS,
    crossCorrelationMaxN: opts.crossCorrelationMaxN ?? DEFAULT_CROSS_CORRELATION_MAX_N,
    maxLag,
    capacity,
    re: new Float64Array(capacity * L),
    im: new Float64Array(capacity * L),
    rows: new Int32Array(capacity),
    sumRe: new Float64Array(DEFAULT_SURROGATES * L),
    sumIm: new Float64Array(DEFAULT_SURROGATES * L),
    shifts: new Int32Array(capacity * DEFAULT_SURROGATES),
    xcorr: null,
  };
}

function ensureCapacity(plan: SynchronyPlan, n: number, surrogates: number): void {
  const L = plan.phasorCount;
  if (n > plan.capacity) {
    const capacity = Math.max(n, plan.capacity * 2);
    plan.capacity = capacity;
    plan.re = new Float64Array(capacity * L);
    plan.im = new Float64Array(capacity * L);
    plan.rows = new Int32Array(capacity);
  }
  if (plan.sumRe.length < surrogates * L) {
    plan.sumRe = new Float64Array(surrogates * L);
    plan.sumIm = new Float64Array(surrogates * L);
  }
  if (plan.shifts.length < n * surrogates) plan.shifts = new Int32Array(Math.max(n * surrogates, plan.shifts.length * 2));
}

export interface SynchronyOptions {
  /** Seeds the surrogate shifts and the PLV pair sample: a replay passes the same seed. */
  seed: number;
  /** Surrogate count, ≥ 100; default 100. */
  surrogates?: number;
  /** Cross-correlation: default only for groups of at most crossCorrelationMaxN. */
  crossCorrelation?: boolean;
}

export interface PairCorrelation {
  /** Input indices, j < k. */
  j: number;
  k: number;
  /** Pearson r at the lag of largest |r| (signed). */
  r: number;
  /** Lag, s: positive when k follows j (x_k(t + lag) ~ x_j(t)). */
  lagS: number;
}

export interface SynchronyResult {
  /** Participants with a phase (the rest are listed in `excluded`). */
  participantCount: number;
  /** Input indices without a usable phase (non-finite or flat series). */
  excluded: number[];
  /** Kuramoto order parameter averaged over the kept samples; null below 2 participants. */
  r: number | null;
  surrogateCount: number;
  surrogateMean: number | null;
  surrogateSd: number | null;
  z: number | null;
  p: number | null;
  /** Mean over pairs and time of cos(φ_j − φ_k) (pairwise phase consistency). */
  phaseConsistency: number | null;
  /** Mean pairwise phase-locking value. */
  plv: number | null;
  plvExact: boolean;
  plvPairCount: number;
  /** Per input index: locking to the others' mean phase, 0..1; NaN when excluded. */
  locking: Float64Array;
  /** Lagged cross-correlation; null when not computed. */
  crossCorrelation: { meanAbsR: number; pairs: PairCorrelation[] } | null;
}

/** Mean over t of |Σ_j u_j(t)| / n for one set of sums. */
function meanModulus(sumRe: Float64Array, sumIm: Float64Array, offset: number, L: number, n: number): number {
  let acc = 0;
  for (let t = 0; t < L; t++) {
    const a = sumRe[offset + t];
    const b = sumIm[offset + t];
    acc += Math.sqrt(a * a + b * b);
  }
  return acc / (L * n);
}

/** |(1/L) Σ_t u_a(t) conj u_b(t)| for phasor rows a and b. */
function pairPlv(re: Float64Array, im: Float64Array, a: number, b: number, L: number): number {
  let sr = 0;
  let si = 0;
  const oa = a * L;
  const ob = b * L;
  for (let t = 0; t < L; t++) {
    const ar = re[oa + t];
    const ai = im[oa + t];
    const br = re[ob + t];
    const bi = im[ob + t];
    sr += ar * br + ai * bi;
    si += ai * br - ar * bi;
  }
  return Math.sqrt(sr * sr + si * si) / L;
}

/**
 * Synchrony of the participants' evenly sampled series (each at least plan.phase.sampleCount
 * samples, the same window). Participants whose series has no phase are excluded and listed.
 */
export function computeSynchrony(plan: SynchronyPlan, series: readonly ArrayLike<number>[], opts: SynchronyOptions): SynchronyResult {
  const S = opts.surrogates ?? DEFAULT_SURROGATES;
  if (!Number.isInteger(S) || S < MIN_SURROGATES) {
    throw new AttuneError('validation_error', `at least ${MIN_SURROGATES} surrogates`, [{ field: 'surrogates', reason: 'invalid_argument', message: `got ${S}` }]);
  }
  if (!Number.isInteger(opts.seed)) {
    throw new AttuneError('validation_error', 'seed must be an integer', [{ field: 'seed', reason: 'invalid_argument', message: `got ${opts.seed}` }]);
  }
  const L = plan.phasorCount;
  ensureCapacity(plan, series.length, S);
  const { re, im, rows } = plan;
  const excluded: number[] = [];
  let n = 0;
  for (let i = 0; i < series.length; i++) {
    if (phasorsInto(plan.phase, series[i], re, im, n * L, plan.stride)) rows[n++] = i;
    else excluded.push(i);
  }
  const locking = new Float64Array(series.length).fill(NaN);
  const result: SynchronyResult = {
    participantCount: n,
    excluded,
    r: null,
    surrogateCount: S,
    surrogateMean: null,
    surrogateSd: null,
    z: null,
    p: null,
    phaseConsistency: null,
    plv: null,
    plvExact: true,
    plvPairCount: 0,
    locking,
    crossCorrelation: null,
  };
  const wantXcorr = opts.crossCorrelation ?? series.length <= plan.crossCorrelationMaxN;
  if (wantXcorr && n >= 2) result.crossCorrelation = crossCorrelate(plan, series, rows, n);
  if (n < 2) return result;

  // Observed sums Z(t) in the first row of the sum buffers (overwritten by surrogate 0 later).
  const { sumRe, sumIm } = plan;
  sumRe.fill(0, 0, L);
  sumIm.fill(0, 0, L);
  for (let j = 0; j < n; j++) {
    const o = j * L;
    for (let t = 0; t < L; t++) {
      sumRe[t] += re[o + t];
      sumIm[t] += im[o + t];
    }
  }
  let rAcc = 0;
  let ppcAcc = 0;
  for (let t = 0; t < L; t++) {
    const m2 = sumRe[t] * sumRe[t] + sumIm[t] * sumIm[t];
    rAcc += Math.sqrt(m2);
    ppcAcc += (m2 - n) / (n * (n - 1));
  }
  const r = rAcc / (L * n);
  result.r = r;
  result.phaseConsistency = ppcAcc / L;

  // Each participant's locking to the others' mean phase.
  for (let j = 0; j < n; j++) {
    const o = j * L;
    let lr = 0;
    let li = 0;
    let used = 0;
    for (let t = 0; t < L; t++) {
      const gr = sumRe[t] - re[o + t];
      const gi = sumIm[t] - im[o + t];
      const gm = Math.sqrt(gr * gr + gi * gi);
      if (!(gm > 1e-12)) continue;
      // u_j · conj(ψ): (a + ib)(gr − i gi) / gm
      lr += (re[o + t] * gr + im[o + t] * gi) / gm;
      li += (im[o + t] * gr - re[o + t] * gi) / gm;
      used++;
    }
    locking[rows[j]] = used > 0 ? Math.sqrt(lr * lr + li * li) / used : NaN;
  }

  // Mean pairwise PLV: every pair, or a seeded sample of pairs.
  const pairs = (n * (n - 1)) / 2;
  let plvAcc = 0;
  if (n <= plan.plvExactMaxN || plan.plvSampledPairs >= pairs) {
    for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) plvAcc += pairPlv(re, im, a, b, L);
    result.plv = plvAcc / pairs;
    result.plvPairCount = pairs;
  } else {
    const rng = new Mulberry32(deriveSeed(opts.seed, 1));
    const m = plan.plvSampledPairs;
    for (let q = 0; q < m; q++) {
      const a = Math.floor(rng.next() * n);
      let b = Math.floor(rng.next() * (n - 1));
      if (b >= a) b++;
      plvAcc += pairPlv(re, im, a, b, L);
    }
    result.plv = plvAcc / m;
    result.plvExact = false;
    result.plvPairCount = m;
  }

  // Surrogates: shifts drawn surrogate by surrogate, participant by participant; then summed
  // participant by participant (its L phasors stay in cache while every surrogate reads them).
  const q = Math.ceil(L / 4);
  const span = L - 2 * q + 1;
  const shifts = plan.shifts;
  const rng = new Mulberry32(deriveSeed(opts.seed, 0));
  // Participant 0 stays put and the others move: only shifts relative to one another change R,
  // and independent shifts for everyone left two participants' relative shift at 0 (their
  // observed alignment) in 1 surrogate of `span`, so a pair in perfect lockstep read p 0.03-0.1
  // (a walkthrough, 2026-12-06). Now every other participant is at least a quarter window from
  // participant 0 in every surrogate.
  for (let s = 0; s < S; s++) {
    shifts[s] = 0;
    for (let j = 1; j < n; j++) shifts[j * S + s] = q + Math.floor(rng.next() * span);
  }
  sumRe.fill(0, 0, S * L);
  sumIm.fill(0, 0, S * L);
  for (let j = 0; j < n; j++) {
    const o = j * L;
    for (let s = 0; s < S; s++) {
      const shift = shifts[j * S + s];
      const acc = s * L;
      const head = L - shift;
      // t < head reads o + shift + t; t ≥ head wraps to o + t − head.
      for (let t = 0; t < head; t++) {
        sumRe[acc + t] += re[o + shift + t];
        sumIm[acc + t] += im[o + shift + t];
      }
      for (let t = head; t < L; t++) {
        sumRe[acc + t] += re[o + t - head];
        sumIm[acc + t] += im[o + t - head];
      }
    }
  }
  let mean = 0;
  let atLeast = 0;
  const rs = new Float64Array(S);
  for (let s = 0; s < S; s++) {
    rs[s] = meanModulus(sumRe, sumIm, s * L, L, n);
    mean += rs[s];
    if (rs[s] >= r) atLeast++;
  }
  mean /= S;
  let ss = 0;
  for (let s = 0; s < S; s++) ss += (rs[s] - mean) * (rs[s] - mean);
  const sd = Math.sqrt(ss / (S - 1));
  result.surrogateMean = mean;
  result.surrogateSd = sd;
  result.z = sd > 0 ? (r - mean) / sd : null;
  result.p = (1 + atLeast) / (1 + S);
  return result;
}

/**
 * For every pair of participants with a phase: Pearson r of x_j(t) and x_k(t + lag) over the
 * samples both cover, for |lag| ≤ maxLag samples; the lag of the largest |r| (the smallest |lag|
 * on ties). Uses the whole window (not the trimmed part): no filter edge to avoid.
 * Σ_t x_j(t) x_k(t + lag) for every lag comes from one inverse FFT of the cross-spectrum
 * conj(X_j)·X_k (zero-padded to ≥ T + maxLag, so no lag wraps), two pairs per inverse FFT (the
 * real and imaginary parts of IFFT(C1 + i·C2) are the two real correlations); the overlap's
 * sums of x and x² come from prefix sums.
 */
function crossCorrelate(plan: SynchronyPlan, series: readonly ArrayLike<number>[], rows: Int32Array, n: number): { meanAbsR: number; pairs: PairCorrelation[] } {
  const T = plan.phase.sampleCount;
  const M = plan.maxLag;
  const fs = plan.phase.sampleRateHz;
  const xc = xcorrScratch(plan, n);
  const { fft, nfft, spectra, p1, p2, padded, packed, out } = xc;
  for (let j = 0; j < n; j++) {
    const src = series[rows[j]];
    let mean = 0;
    for (let t = 0; t < T; t++) mean += src[t];
    mean /= T;
    const o = j * (T + 1);
    p1[o] = 0;
    p2[o] = 0;
    for (let t = 0; t < T; t++) {
      const v = src[t] - mean; // centred: keeps the sums well conditioned
      padded[t] = v;
      p1[o + t + 1] = p1[o + t] + v;
      p2[o + t + 1] = p2[o + t] + v * v;
    }
    const spec = spectra[j];
    fft.realTransform(spec, padded);
    fft.completeSpectrum(spec);
  }
  const pairList: [number, number][] = [];
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) pairList.push([a, b]);
  const pairs: PairCorrelation[] = [];
  let absSum = 0;
  const best = (a: number, b: number, c: Float64Array, part: 0 | 1) => {
    let bestR = 0;
    let bestLag = 0;
    let bestAbs = -1;
    const oa = a * (T + 1);
    const ob = b * (T + 1);
    for (let step = 0; step <= 2 * M; step++) {
      // 0, 1, −1, 2, −2, …: the smaller |lag| wins ties.
      const lag = step === 0 ? 0 : step % 2 === 1 ? (step + 1) / 2 : -step / 2;
      const t0 = lag < 0 ? -lag : 0;
      const t1 = lag > 0 ? T - lag : T; // x_a[t] with x_b[t + lag], t in [t0, t1)
      const m = t1 - t0;
      const sxy = c[2 * (lag < 0 ? nfft + lag : lag) + part];
      const sx = p1[oa + t1] - p1[oa + t0];
      const sxx = p2[oa + t1] - p2[oa + t0];
      const sy = p1[ob + t1 + lag] - p1[ob + t0 + lag];
      const syy = p2[ob + t1 + lag] - p2[ob + t0 + lag];
      const cov = sxy - (sx * sy) / m;
      const vx = sxx - (sx * sx) / m;
      const vy = syy - (sy * sy) / m;
      const r = vx > 0 && vy > 0 ? cov / Math.sqrt(vx * vy) : 0;
      const ar = Math.abs(r);
      if (ar > bestAbs) {
        bestAbs = ar;
        bestR = r;
        bestLag = lag;
      }
    }
    pairs.push({ j: rows[a], k: rows[b], r: bestR, lagS: bestLag / fs });
    absSum += Math.abs(bestR);
  };
  for (let q = 0; q < pairList.length; q += 2) {
    const [a1, b1] = pairList[q];
    const second = q + 1 < pairList.length ? pairList[q + 1] : null;
    const A1 = spectra[a1];
    const B1 = spectra[b1];
    if (second) {
      const A2 = spectra[second[0]];
      const B2 = spectra[second[1]];
      for (let i = 0; i < 2 * nfft; i += 2) {
        // C1 = conj(A1)·B1, C2 = conj(A2)·B2; packed = C1 + i·C2.
        const c1r = A1[i] * B1[i] + A1[i + 1] * B1[i + 1];
        const c1i = A1[i] * B1[i + 1] - A1[i + 1] * B1[i];
        const c2r = A2[i] * B2[i] + A2[i + 1] * B2[i + 1];
        const c2i = A2[i] * B2[i + 1] - A2[i + 1] * B2[i];
        packed[i] = c1r - c2i;
        packed[i + 1] = c1i + c2r;
      }
    } else {
      for (let i = 0; i < 2 * nfft; i += 2) {
        packed[i] = A1[i] * B1[i] + A1[i + 1] * B1[i + 1];
        packed[i + 1] = A1[i] * B1[i + 1] - A1[i + 1] * B1[i];
      }
    }
    fft.inverseTransform(out, packed);
    best(a1, b1, out, 0);
    if (second) best(second[0], second[1], out, 1);
  }
  return { meanAbsR: pairs.length > 0 ? absSum / pairs.length : NaN, pairs };
}

interface XcorrScratch {
  nfft: number;
  fft: FFT;
  spectra: Float64Array[];
  p1: Float64Array;
  p2: Float64Array;
  padded: Float64Array;
  packed: Float64Array;
  out: Float64Array;
}
function xcorrScratch(plan: SynchronyPlan, n: number): XcorrScratch {
  const T = plan.phase.sampleCount;
  let x = plan.xcorr;
  if (!x) {
    let nfft = 8;
    while (nfft < T + plan.maxLag) nfft *= 2;
    x = {
      nfft,
      fft: new FFT(nfft),
      spectra: [],
      p1: new Float64Array(0),
      p2: new Float64Array(0),
      padded: new Float64Array(nfft),
      packed: new Float64Array(2 * nfft),
      out: new Float64Array(2 * nfft),
    };
    plan.xcorr = x;
  }
  while (x.spectra.length < n) x.spectra.push(new Float64Array(2 * x.nfft));
  if (x.p1.length < n * (T + 1)) {
    x.p1 = new Float64Array(n * (T + 1));
    x.p2 = new Float64Array(n * (T + 1));
  }
  return x;
}
