// Coherence ratio after McCraty et al. (HeartMath; McCraty, Atkinson, Tomasino & Bradley 2009,
// "The coherent heart", Integral Review 5(2)), from the one-sided periodogram of the tachogram
// (spectrum.ts), taken as the continuous function of frequency it is rather than as its bins:
//
//   1. Peak frequency: where the periodogram is largest within [0.04, 0.26] Hz, band edges
//      included, wherever its neighbours outside the band are ("the maximum peak in the
//      0.04–0.26 Hz range"). Found on the FFT grid, then refined on the continuous periodogram
//      (see findPeakFrequency), so it is exact to 1e-5 Hz rather than to a bin.
//   2. Peak power: ∫ P(f) df over [peak − 0.015, peak + 0.015] Hz, the published 0.030 Hz band.
//   3. Total power: ∫ P(f) df over [0.0033, 0.4] Hz.
//   4. Coherence ratio CR = peak / (total − peak).
//   5. Score = CR / (1 + CR), which equals peak / total: the share of the 0.0033–0.4 Hz power
//      that sits in the peak, in [0, 1].
//   6. Breathing rate (breaths/min) = peak frequency × 60: with slow, regular breathing the
//      dominant HRV oscillation is respiratory sinus arrhythmia at the breathing frequency.
//
// Both integrals are exact integrals of the periodogram (spectrum.ts, bandPower), not sums of
// whole bins. With 0.0078 Hz bins a ±0.015 Hz band held 3 or 4 bins depending on where the peak
// fell between them, and a pure sinusoid scored CR 4.3 on a bin centre and 12.4 just off it:
// the result was a property of the grid. It is now a property of the signal.
//
// A spectrum with no power in the total band gives CR = score = 0 and NaN frequencies.
import { bandPower, periodogramWithDerivatives, type PeriodogramPoint, type SpectrumPlan } from './spectrum.js';

export const PEAK_SEARCH_LOW_HZ = 0.04;
export const PEAK_SEARCH_HIGH_HZ = 0.26;
export const PEAK_HALF_WIDTH_HZ = 0.015;
export const TOTAL_LOW_HZ = 0.0033;
export const TOTAL_HIGH_HZ = 0.4;

/**
 * Grid maxima whose height is at least this share of the best refined peak are refined too.
 * The grid spacing is 1/(2T) for a window of T seconds (2× zero padding), so the top of a peak is
 * at most 1/(4T) from a grid point; for the narrowest peak a Hann window makes (a sinusoid's main
 * lobe) the sample there keeps ≥ 92 % of the top's height. 0.8 leaves a margin for peaks that
 * interference between neighbouring components makes a little sharper, at the cost of refining
 * a second candidate in the rare windows with two near-equal peaks.
 */
const CANDIDATE_SHARE = 0.8;
/**
 * Peak refinement stops when the bracket or the Newton step is below this, Hz: 0.03 % of the
 * 0.030 Hz band, and at the top of a peak the band power changes only to second order with its
 * centre. The reference's grid is 1.5e-5 Hz.
 */
const PEAK_TOLERANCE_HZ = 1e-5;
const MAX_REFINE_STEPS = 40;

export interface CoherenceResult {
  coherenceRatio: number;
  /** CR / (1 + CR) = peak power / total power, 0..1. */
  score: number;
  peakFrequencyHz: number;
  breathingRateBpm: number;
  /** Power in the peak band (PSD units × Hz, ms² for a PSD in ms²/Hz). */
  peakPower: number;
  /** Power in 0.0033–0.4 Hz. */
  totalPower: number;
}

export function createCoherenceResult(): CoherenceResult {
  return { coherenceRatio: 0, score: 0, peakFrequencyHz: NaN, breathingRateBpm: NaN, peakPower: 0, totalPower: 0 };
}

// Module-level scratch for the refinement: single-threaded JS runs one computeCoherence at a
// time, and nothing in it survives a call, so sharing it keeps the hot path allocation-free
// without widening the plan. (Per-plan constants live in tablesByPlan below.)
const point: PeriodogramPoint = { value: 0, slope: 0, curvature: 0 };

/**
 * Maximum of the continuous periodogram within [lo, hi], starting from `start` in it: Newton's
 * method on P′ kept inside a bracket that always holds the maximum (P′ > 0 at a point moves the
 * bracket's low end up to it, P′ < 0 moves the high end down), bisecting whenever a Newton step
 * would leave the bracket or P is not concave there. The bracket is at most one 1/T wide, well
 * inside a Hann main lobe (4/T), so it holds a single hump. A maximum at a band edge ends there.
 * Returns the frequency and leaves P there in `point.value`.
 */
function refineMaximum(spectrum: SpectrumPlan, start: number, lo: number, hi: number): number {
  let x = start;
  for (let step = 0; step < MAX_REFINE_STEPS; step++) {
    periodogramWithDerivatives(spectrum, x, point);
    if (point.slope > 0) lo = x;
    else if (point.slope < 0) hi = x;
    else return x;
    let next = point.curvature < 0 ? x - point.slope / point.curvature : NaN;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const moved = next - x;
    if (Math.abs(moved) < PEAK_TOLERANCE_HZ || hi - lo < PEAK_TOLERANCE_HZ) {
      // P at `next` from the local quadratic (exact to ~1e-10 relative over so short a step),
      // which spares one more pass over the lags.
      point.value += point.slope * moved + 0.5 * point.curvature * moved * moved;
      return next;
    }
    x = next;
  }
  periodogramWithDerivatives(spectrum, x, point);
  return x;
}

/**
 * Start for the refinement of grid candidate j: the vertex of the parabola through the log
 * powers of bins j − 1, j, j + 1 (for a Hann-tapered sinusoid the log main lobe is close to a
 * parabola), clamped to ±0.5 bin, so that Newton usually needs one or two steps.
 */
function gridVertex(psd: Float64Array, j: number, binHz: number): number {
  const floor = psd[j] * 1e-12 + Number.MIN_VALUE;
  const a = Math.log(psd[j - 1] + floor);
  const b = Math.log(psd[j] + floor);
  const c = Math.log(psd[j + 1] + floor);
  const curvature = a - 2 * b + c;
  let offset = curvature < 0 ? (0.5 * (a - c)) / curvature : 0;
  if (offset > 0.5) offset = 0.5;
  else if (offset < -0.5) offset = -0.5;
  return (j + offset) * binHz;
}

/**
 * Per-plan constants of the search, made once per SpectrumPlan and kept beside it (a WeakMap, so
 * they go when the plan goes): cos(2π f d / fs) at both search edges and the total band's
 * integration kernel, which turn P(edge) and the total power into dot products with the lags,
 * and scratch for the grid sequence.
 */
interface SearchTables {
  high: number;
  first: number;
  last: number;
  lowCos: Float64Array;
  highCos: Float64Array;
  totalHigh: number;
  /** (sin(ω·hi·d) − sin(ω·lo·d)) / (ω·d) for the total band, d ≥ 1. */
  totalKernel: Float64Array;
  /** The grid sequence: the low edge, the bins strictly inside the band, the high edge. */
  sequenceHz: Float64Array;
  sequenceValue: Float64Array;
}

const tablesByPlan = new WeakMap<SpectrumPlan, SearchTables>();

function tablesFor(spectrum: SpectrumPlan): SearchTables {
  let tables = tablesByPlan.get(spectrum);
  if (tables) return tables;
  const { sampleCount, sampleRateHz, binHz } = spectrum;
  const omega = (2 * Math.PI) / sampleRateHz;
  const high = Math.min(PEAK_SEARCH_HIGH_HZ, sampleRateHz / 2);
  const totalHigh = Math.min(TOTAL_HIGH_HZ, sampleRateHz / 2);
  const first = Math.floor(PEAK_SEARCH_LOW_HZ / binHz) + 1;
  const last = Math.ceil(high / binHz) - 1;
  const lowCos = new Float64Array(sampleCount);
  const highCos = new Float64Array(sampleCount);
  const totalKernel = new Float64Array(sampleCount);
  for (let d = 1; d < sampleCount; d++) {
    lowCos[d] = Math.cos(omega * PEAK_SEARCH_LOW_HZ * d);
    highCos[d] = Math.cos(omega * high * d);
    totalKernel[d] = (Math.sin(omega * totalHigh * d) - Math.sin(omega * TOTAL_LOW_HZ * d)) / (omega * d);
  }
  const length = Math.max(0, last - first + 1) + 2;
  tables = {
    high,
    first,
    last,
    lowCos,
    highCos,
    totalHigh,
    totalKernel,
    sequenceHz: new Float64Array(length),
    sequenceValue: new Float64Array(length),
  };
  tablesByPlan.set(spectrum, tables);
  return tables;
}

/** The window's P at both search edges and its total power (see lagSums). */
const edgesAndTotal = { low: 0, high: 0, total: 0 };

/**
 * P(low search edge), P(high search edge) and the total band power, each L[0] · width +
 * 2 Σ_{d≥1} L[d] · table[d] (a cosine table and width 1 for P, the kernel and the band width for
 * the total), into edgesAndTotal. One pass with three accumulators: each sum is added up in the
 * same order as by itself, so the numbers are the same as three passes, while the three
 * dependency chains overlap instead of running one after another.
 */
function lagSums(lags: Float64Array, tables: SearchTables): void {
  const { lowCos, highCos, totalKernel } = tables;
  let low = 0;
  let high = 0;
  let total = 0;
  for (let d = 1; d < lags.length; d++) {
    const l = lags[d];
    low += l * lowCos[d];
    high += l * highCos[d];
    total += l * totalKernel[d];
  }
  edgesAndTotal.low = lags[0] + 2 * low;
  edgesAndTotal.high = lags[0] + 2 * high;
  edgesAndTotal.total = lags[0] * (tables.totalHigh - TOTAL_LOW_HZ) + 2 * total;
}

/**
 * Frequency of the largest value of the last window's continuous periodogram within
 * [PEAK_SEARCH_LOW_HZ, PEAK_SEARCH_HIGH_HZ] (band edges included).
 *
 * The grid sequence (P at the low edge, the bins of spectrum.psd strictly inside the band, P at
 * the high edge) finds the candidate humps: points at least as high as their neighbours in it.
 * The highest candidate is refined first on the continuous periodogram between its neighbours;
 * then every other candidate whose grid height is within CANDIDATE_SHARE of the best refined
 * height. The highest refined point wins.
 */
export function findPeakFrequency(spectrum: SpectrumPlan): number {
  const tables = tablesFor(spectrum);
  lagSums(spectrum.lags, tables);
  return peakFrequencyFrom(spectrum, tables, edgesAndTotal.low, edgesAndTotal.high);
}

/** findPeakFrequency, given P at the low and the high search edge. */
function peakFrequencyFrom(spectrum: SpectrumPlan, tables: SearchTables, lowEdgeValue: number, highEdgeValue: number): number {
  const { psd, binHz } = spectrum;
  const { first, last, sequenceHz: hz, sequenceValue: value } = tables;
  const n = hz.length;
  hz[0] = PEAK_SEARCH_LOW_HZ;
  value[0] = lowEdgeValue;
  for (let j = first; j <= last; j++) {
    hz[j - first + 1] = j * binHz;
    value[j - first + 1] = psd[j];
  }
  hz[n - 1] = tables.high;
  value[n - 1] = highEdgeValue;

  let highest = 0;
  for (let i = 1; i < n; i++) if (value[i] > value[highest]) highest = i;
  let bestHz = refineCandidate(spectrum, tables, highest);
  let bestValue = point.value;
  for (let i = 0; i < n; i++) {
    if (i === highest || !(value[i] >= CANDIDATE_SHARE * bestValue)) continue;
    if (i > 0 && value[i] < value[i - 1]) continue;
    if (i < n - 1 && value[i] < value[i + 1]) continue;
    const candidateHz = refineCandidate(spectrum, tables, i);
    if (point.value > bestValue) {
      bestValue = point.value;
      bestHz = candidateHz;
    }
  }
  return bestHz;
}

/** Refines the grid sequence's point i between its neighbours; `point.value` holds P there. */
function refineCandidate(spectrum: SpectrumPlan, tables: SearchTables, i: number): number {
  const { sequenceHz: hz } = tables;
  const n = hz.length;
  const lo = hz[Math.max(i - 1, 0)];
  const hi = hz[Math.min(i + 1, n - 1)];
  // Interior bins with grid neighbours on both sides start at the log-parabolic vertex.
  const start = i > 1 && i < n - 2 ? gridVertex(spectrum.psd, tables.first + i - 1, spectrum.binHz) : hz[i];
  return refineMaximum(spectrum, start, lo, hi);
}

/**
 * Coherence of the window whose periodogram `spectrum` holds (powerSpectralDensity was last
 * called with this plan). Writes into and returns `out` when given. Allocates nothing after the
 * first call with a plan (which makes the plan's search tables).
 */
export function computeCoherence(spectrum: SpectrumPlan, out: CoherenceResult = createCoherenceResult()): CoherenceResult {
  const tables = tablesFor(spectrum);
  lagSums(spectrum.lags, tables);
  const total = edgesAndTotal.total;
  out.totalPower = total;
  if (!(total > 0)) {
    out.coherenceRatio = 0;
    out.score = 0;
    out.peakFrequencyHz = NaN;
    out.breathingRateBpm = NaN;
    out.peakPower = 0;
    return out;
  }
  const peakHz = peakFrequencyFrom(spectrum, tables, edgesAndTotal.low, edgesAndTotal.high);
  const peak = bandPower(spectrum, peakHz - PEAK_HALF_WIDTH_HZ, peakHz + PEAK_HALF_WIDTH_HZ);
  // Guards a spectrum whose every bit of power sits in the peak band (CR would be infinite);
  // real tachograms always leak some power outside ±0.015 Hz.
  const rest = Math.max(total - peak, total * 1e-12);

  out.peakPower = peak;
  out.coherenceRatio = peak / rest;
  out.score = out.coherenceRatio / (1 + out.coherenceRatio);
  out.peakFrequencyHz = peakHz;
  out.breathingRateBpm = peakHz * 60;
  return out;
}
