// Artifact cleaning of an RR series, after Lipponen & Tarvainen 2019, "A robust algorithm for
// heart rate variability time series artefact correction using novel beat classification",
// J Med Eng Technol 43(3):173–181.
//
// Indexing: rr[j] is the interval closed by the beat at beatTimes[j].
//
// 1. dRR[j] = rr[j] − rr[j−1] (dRR[0] = 0: the first interval's predecessor is unknown).
//    Th1[j] = 5.2 · QD of |dRR| over the 91 beats centred on j (fewer at the ends of the series),
//    QD = (Q3 − Q1) / 2 with linearly interpolated quartiles. dRR is normalised by Th1.
// 2. medRR = 11-beat centred median of rr; mRR = rr − medRR, negative values doubled (a short
//    beat is more suspicious than a long one); Th2 = 5.2 · QD of |mRR| over 91 beats; mRR is
//    normalised by Th2.
// 3. Both thresholds are bounded (our addition, not the paper's), with med = the median of the
//    same |values| over the same window:
//      Th = max(min(5.2 · QD, 6 · med), 2.5 · med, 10 ms).
//    The cap: QD tolerates outliers only up to a quarter of the window, and every ectopic beat
//    puts three outliers into dRR, so from about one ectopic beat in ten the upper quartile is
//    made of artifacts, Th balloons and nothing is detected (an RMSSD of 300 ms is reported as
//    clean). The median breaks down only at half. For half-normal, Laplace-like or sinusoidal
//    |dRR| (5.2 · QD = 2.2σ, 2.9b, 1.4A) the cap (4σ, 4.2b, 4.2A) is far above and inactive.
//    The floor:
//    The quartile deviation measures the spread of |dRR|, not its level, and collapses when
//    |dRR| is nearly constant: a regular RSA at 0.25 Hz and 60 bpm (4 beats per breath) gives
//    |dRR| ≈ 80 ms at every beat, QD ≈ noise, and every beat would be flagged. For the usual
//    half-normal or Laplace-like |dRR| the floor (1.7σ, 1.7b) stays below the paper's threshold
//    and changes nothing. The 10 ms keeps 128 Hz-quantised or
//    very regular series from a zero threshold.
// 4. Classification, beat by beat (normalised units; c1 = 0.13, c2 = 0.17):
//    - normal when |dRR| ≤ 1 and |mRR| ≤ 3;
//    - ectopic (NPN/PNP pattern) when dRR > 1 and S12 < −c1·dRR − c2, or dRR < −1 and
//      S12 > −c1·dRR + c2, where S12 = max(dRR[j−1], dRR[j+1]) for dRR > 0, min(...) for dRR < 0.
//      The pattern is centred on the second interval of the disturbed pair, so when beat j is
//      the first abnormal one, j + 1 is tested for the ectopic pattern too;
//    - long: dRR > 1 and S22 < −1; short: dRR < −1 and S22 > 1, where S22 = min(dRR[j+1],
//      dRR[j+2]) for dRR ≥ 0, max(...) for dRR < 0; or |mRR| > 3 (long or short);
//    - missed: long with |rr/2 − medRR| < Th2; extra: short with |rr[j] + rr[j+1] − medRR| < Th2;
//    - otherwise long/short.
//    Neighbours beyond the ends of the series count as dRR = 0. After a detection the
//    intervals whose dRR it disturbed are not classified again.
// 5. Correction, keeping each interval equal to the step between its beat times:
//    - ectopic: the misplaced beat between rr[j−1] and rr[j] is moved to the midpoint of its
//      neighbours, so both intervals become (rr[j−1] + rr[j]) / 2 (interpolation);
//    - missed: rr[j] is split in two equal intervals (a beat inserted at the midpoint);
//    - extra: rr[j] and rr[j+1] are merged (the spurious beat deleted);
//    - long/short: if the next interval compensates it (their sum within Th2 of 2·medRR, one
//      above and one below medRR) the shared beat is re-centred as for an ectopic beat;
//      otherwise the interval is removed.
// 6. Finally intervals outside [300, 2000] ms are removed. This runs after the correction, so
//    that a missed beat at a slow rate (2 × 1100 ms) is split rather than dropped and an extra
//    beat (say 150 + 850 ms) is merged rather than leaving a lone 850; the thresholds are
//    quartile- and median-based, so a rare wild value does not move them.
// Each correction counts one corrected beat; each dropped interval one removed beat.
// artifactRatio = (removed + corrected) / input beats.
//
// Deviations from the paper: the thresholds are computed within the series given (for one 64 s
// window, about 60–90 beats, so the 91-beat window is mostly the whole series); the threshold
// floors (3.); the range check placed after the correction (6.); uncompensated long/short intervals are removed rather than replaced by an
// interpolated value, which would break the beat-time consistency.

export const RR_MIN_MS = 300;
export const RR_MAX_MS = 2000;
const ALPHA = 5.2;
const THRESHOLD_HALF_WIDTH = 45; // 91-beat window
const MEDIAN_HALF_WIDTH = 5; // 11-beat window
const C1 = 0.13;
const C2 = 0.17;
const MIN_THRESHOLD_MS = 10;
const LEVEL_FLOOR = 2.5;
const LEVEL_CAP = 6;

const NORMAL = 0;
const ECTOPIC = 1;
const MISSED = 2;
const EXTRA = 3;
const LONG_SHORT = 4;

/** The cleaned series plus what was done to it. Caller-owned; arrays grow when needed. */
export interface CleanedRr {
  beatTimesMs: Float64Array;
  rrMs: Float64Array;
  /** Number of valid entries in beatTimesMs / rrMs. */
  count: number;
  inputCount: number;
  /** Intervals dropped: out of range (after correction), plus uncompensated long/short ones. */
  removed: number;
  /** Beats corrected: ectopic + missed + extra + compensated long/short. */
  corrected: number;
  outOfRange: number;
  ectopic: number;
  missed: number;
  extra: number;
  longShort: number;
  artifactRatio: number;
}

/** Reusable working arrays for `cleanRrInto`; grows when a call needs more. */
export interface ArtifactScratch {
  capacity: number;
  t: Float64Array;
  rr: Float64Array;
  drr: Float64Array;
  mrr: Float64Array;
  medRr: Float64Array;
  th2: Float64Array;
  work: Float64Array;
  sorted: Float64Array;
  action: Uint8Array;
}

export function createArtifactScratch(capacity = 256): ArtifactScratch {
  return {
    capacity,
    t: new Float64Array(capacity),
    rr: new Float64Array(capacity),
    drr: new Float64Array(capacity),
    mrr: new Float64Array(capacity),
    medRr: new Float64Array(capacity),
    th2: new Float64Array(capacity),
    work: new Float64Array(capacity),
    sorted: new Float64Array(capacity),
    action: new Uint8Array(capacity),
  };
}

export function createCleanedRr(capacity = 512): CleanedRr {
  return {
    beatTimesMs: new Float64Array(capacity),
    rrMs: new Float64Array(capacity),
    count: 0,
    inputCount: 0,
    removed: 0,
    corrected: 0,
    outOfRange: 0,
    ectopic: 0,
    missed: 0,
    extra: 0,
    longShort: 0,
    artifactRatio: 0,
  };
}

function ensureScratch(s: ArtifactScratch, n: number): void {
  if (n <= s.capacity) return;
  const fresh = createArtifactScratch(Math.max(n, s.capacity * 2));
  Object.assign(s, fresh);
}

function ensureOutput(out: CleanedRr, n: number): void {
  // A missed-beat split adds one interval per input interval at most.
  const need = 2 * n;
  if (out.rrMs.length >= need) return;
  const capacity = Math.max(need, out.rrMs.length * 2);
  out.beatTimesMs = new Float64Array(capacity);
  out.rrMs = new Float64Array(capacity);
}

/** Inserts v into sorted[0 .. m), keeping it sorted. */
function insertSorted(sorted: Float64Array, m: number, v: number): void {
  let lo = 0;
  let hi = m;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  if (lo < m) sorted.copyWithin(lo + 1, lo, m);
  sorted[lo] = v;
}

/** Removes one occurrence of v (which must be present) from sorted[0 .. m). */
function removeSorted(sorted: Float64Array, m: number, v: number): void {
  let lo = 0;
  let hi = m;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  if (lo < m - 1) sorted.copyWithin(lo, lo + 1, m);
}

/** Quantile q of sorted[0 .. m) with linear interpolation (numpy / pandas 'linear'). */
function quantileSorted(sorted: Float64Array, m: number, q: number): number {
  const pos = q * (m - 1);
  const lo = Math.floor(pos);
  const frac = pos - lo;
  return frac === 0 ? sorted[lo] : sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

/**
 * Centred rolling statistic of values[0 .. n) over [j − halfWidth, j + halfWidth] (clipped to
 * the series): the median when `quartileDeviation` is false, else the threshold
 * max(min(ALPHA · QD, LEVEL_CAP · median), LEVEL_FLOOR · median, MIN_THRESHOLD_MS). Keeps the window sorted incrementally:
 * O(n · window) moves, no allocation.
 */
function rollingStatistic(
  values: Float64Array,
  n: number,
  halfWidth: number,
  quartileDeviation: boolean,
  out: Float64Array,
  sorted: Float64Array,
): void {
  // The first window, [0, halfWidth], is insertion-sorted in one go; later ones move by one
  // value in and/or one out. While neither happens (the middle of a series shorter than the
  // window, where every window is the whole series) the statistic is unchanged.
  let hi = Math.min(n - 1, halfWidth);
  let lo = 0;
  let m = hi + 1;
  for (let i = 0; i < m; i++) {
    const v = values[i];
    let k = i;
    while (k > 0 && sorted[k - 1] > v) {
      sorted[k] = sorted[k - 1];
      k--;
    }
    sorted[k] = v;
  }
  let changed = true;
  for (let j = 0; j < n; j++) {
    const wantHi = Math.min(n - 1, j + halfWidth);
    const wantLo = Math.max(0, j - halfWidth);
    while (hi < wantHi) {
      hi++;
      insertSorted(sorted, m, values[hi]);
      m++;
      changed = true;
    }
    while (lo < wantLo) {
      removeSorted(sorted, m, values[lo]);
      m--;
      lo++;
      changed = true;
    }
    if (!changed) {
      out[j] = out[j - 1];
      continue;
    }
    changed = false;
    const median = quantileSorted(sorted, m, 0.5);
    if (quartileDeviation) {
      const qd = (quantileSorted(sorted, m, 0.75) - quantileSorted(sorted, m, 0.25)) / 2;
      out[j] = Math.max(Math.min(ALPHA * qd, LEVEL_CAP * median), LEVEL_FLOOR * median, MIN_THRESHOLD_MS);
    } else {
      out[j] = median;
    }
  }
}

function drrAt(drr: Float64Array, n: number, i: number): number {
  return i >= 0 && i < n ? drr[i] : 0;
}

function isEctopic(drr: Float64Array, n: number, j: number): boolean {
  if (j < 1 || j >= n) return false;
  const d = drr[j];
  if (d > 1) return Math.max(drrAt(drr, n, j - 1), drrAt(drr, n, j + 1)) < -C1 * d - C2;
  if (d < -1) return Math.min(drrAt(drr, n, j - 1), drrAt(drr, n, j + 1)) > -C1 * d + C2;
  return false;
}

/** Classifies every beat of scratch.rr[0 .. n) into scratch.action. */
function classify(s: ArtifactScratch, n: number): void {
  const { rr, drr, mrr, medRr, th2, action } = s;
  action.fill(NORMAL, 0, n);
  let j = 0;
  while (j < n) {
    const d = drr[j];
    const mj = mrr[j];
    if (d <= 1 && d >= -1 && mj <= 3 && mj >= -3) {
      j++;
      continue;
    }
    if (isEctopic(drr, n, j)) {
      action[j] = ECTOPIC;
      j += 2;
      continue;
    }
    if (isEctopic(drr, n, j + 1)) {
      action[j + 1] = ECTOPIC;
      j += 3;
      continue;
    }
    const next1 = drrAt(drr, n, j + 1);
    const next2 = drrAt(drr, n, j + 2);
    const s22 = d >= 0 ? Math.min(next1, next2) : Math.max(next1, next2);
    const long = d > 1 && s22 < -1;
    const short = d < -1 && s22 > 1;
    if (!long && !short && mj <= 3 && mj >= -3) {
      j++;
      continue;
    }
    if (short && j + 1 < n && Math.abs(rr[j] + rr[j + 1] - medRr[j]) < th2[j]) {
      action[j] = EXTRA;
      j += 3;
      continue;
    }
    if (long && Math.abs(rr[j] / 2 - medRr[j]) < th2[j]) {
      action[j] = MISSED;
      j += 2;
      continue;
    }
    action[j] = LONG_SHORT;
    j += 2;
  }
}

/**
 * Cleans beats [from, to) of (beatTimesMs, rrMs) into `out`. beatTimesMs[i] is the time of the
 * beat closing rrMs[i]; times must increase. Allocates only when `out` or `scratch` must grow.
 */
export function cleanRrInto(
  beatTimesMs: Float64Array,
  rrMs: Float64Array,
  from: number,
  to: number,
  out: CleanedRr,
  scratch: ArtifactScratch,
): CleanedRr {
  const inputCount = Math.max(0, to - from);
  ensureScratch(scratch, inputCount);
  ensureOutput(out, inputCount);
  const { t, rr, drr, mrr, medRr, th2, work, sorted, action } = scratch;

  const n = inputCount;
  for (let j = 0; j < n; j++) {
    t[j] = beatTimesMs[from + j];
    rr[j] = rrMs[from + j];
  }
  out.inputCount = inputCount;
  out.ectopic = out.missed = out.extra = out.longShort = 0;
  let removed = 0;
  let corrected = 0;

  if (n >= 3) {
    drr[0] = 0;
    for (let j = 1; j < n; j++) drr[j] = rr[j] - rr[j - 1];
    for (let j = 0; j < n; j++) work[j] = Math.abs(drr[j]);
    rollingStatistic(work, n, THRESHOLD_HALF_WIDTH, true, th2, sorted); // Th1, parked in th2
    for (let j = 0; j < n; j++) drr[j] /= th2[j];

    rollingStatistic(rr, n, MEDIAN_HALF_WIDTH, false, medRr, sorted);
    for (let j = 0; j < n; j++) {
      const dev = rr[j] - medRr[j];
      mrr[j] = dev < 0 ? 2 * dev : dev;
      work[j] = Math.abs(mrr[j]);
    }
    rollingStatistic(work, n, THRESHOLD_HALF_WIDTH, true, th2, sorted); // Th2 (ms)
    for (let j = 0; j < n; j++) mrr[j] /= th2[j];
    classify(scratch, n);
  } else {
    action.fill(NORMAL, 0, n);
  }

  const ot = out.beatTimesMs;
  const or = out.rrMs;
  let o = 0;
  for (let j = 0; j < n; j++) {
    switch (action[j]) {
      case NORMAL:
        ot[o] = t[j];
        or[o] = rr[j];
        o++;
        break;
      case ECTOPIC: {
        // classify() leaves beat j − 1 unclassified, so the last interval written ends at
        // t[j − 1] (possibly already re-centred by a long/short correction: use its value).
        const mean = (or[o - 1] + rr[j]) / 2;
        or[o - 1] = mean;
        ot[o - 1] = t[j] - mean;
        ot[o] = t[j];
        or[o] = mean;
        o++;
        corrected++;
        out.ectopic++;
        break;
      }
      case MISSED: {
        const half = rr[j] / 2;
        ot[o] = t[j] - half;
        or[o] = half;
        ot[o + 1] = t[j];
        or[o + 1] = half;
        o += 2;
        corrected++;
        out.missed++;
        break;
      }
      case EXTRA:
        ot[o] = t[j + 1];
        or[o] = rr[j] + rr[j + 1];
        o++;
        j++;
        corrected++;
        out.extra++;
        break;
      case LONG_SHORT: {
        out.longShort++;
        const med = medRr[j];
        if (j + 1 < n) {
          const next = rr[j + 1];
          const compensated = Math.abs(rr[j] + next - 2 * med) < th2[j] && (rr[j] - med) * (next - med) < 0;
          if (compensated) {
            const mean = (rr[j] + next) / 2;
            ot[o] = t[j + 1] - mean;
            or[o] = mean;
            ot[o + 1] = t[j + 1];
            or[o + 1] = mean;
            o += 2;
            j++;
            corrected++;
            break;
          }
        }
        removed++;
        break;
      }
    }
  }
  // Range check last (see 6. above), compacting in place.
  let kept = 0;
  for (let i = 0; i < o; i++) {
    const r = or[i];
    if (r >= RR_MIN_MS && r <= RR_MAX_MS) {
      ot[kept] = ot[i];
      or[kept] = r;
      kept++;
    }
  }
  out.outOfRange = o - kept;
  removed += o - kept;
  out.count = kept;
  out.removed = removed;
  out.corrected = corrected;
  out.artifactRatio = inputCount > 0 ? (removed + corrected) / inputCount : 0;
  return out;
}

/** Convenience form of `cleanRrInto` for whole series: allocates its own buffers. */
export function cleanRr(beatTimesMs: Float64Array, rrMs: Float64Array): CleanedRr {
  const n = Math.min(beatTimesMs.length, rrMs.length);
  const out = createCleanedRr(2 * n);
  cleanRrInto(beatTimesMs, rrMs, 0, n, out, createArtifactScratch(Math.max(n, 1)));
  out.beatTimesMs = out.beatTimesMs.subarray(0, out.count);
  out.rrMs = out.rrMs.subarray(0, out.count);
  return out;
}
