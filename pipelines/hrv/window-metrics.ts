// HRV and coherence of one window, end to end:
//   select the beats whose time lies in [windowStartMs, windowEndMs)
//   → clean (artifacts.ts) → validity decision → time-domain metrics (time-domain.ts)
//   → 4 Hz cubic-spline tachogram (resample.ts) → PSD (spectrum.ts) → coherence (coherence.ts).
//
// Validity: a window is valid (its metrics are reported, and counted in every average) when,
// after cleaning,
//   1. its data reaches both edges: at most `maxEdgeGapMs` (4 s) before the first clean
//      interval and after the last beat. Otherwise it is `partial`: it reaches back before the
//      session's first beat (the first windows of every session), past its last one (a session
//      that ended), or across the edge of a dropout;
//   2. at least `minBeats` (30) beats remain: 64 s at 30 bpm, a floor no resting adult goes
//      below, and about the fewest that give a spectrum worth reading;
//   3. the clean intervals cover at least `minCoverage` (90 %) of the window: each interval
//      covers [beat time − RR, beat time], clipped to the window;
//   4. at most `maxArtifactRatio` (25 %) of the input beats were removed or corrected: beyond
//      that the corrections, not the heart, shape the series;
//   5. the beats the cleaning corrected or removed (rule 4's share) and the clean intervals that
//      still differ by `irregularDeviation` (20 %) or more from the mean of the intervals on
//      either side of them (Karlsson, Hörnsten, Rydberg & Wiklund 2012, "Automatic filtering of
//      outliers in RR intervals before analysis of heart rate variability in Holter recordings",
//      BioMedical Engineering OnLine 11:2; the hrv-analysis package's "karlsson" method; counted
//      over the intervals whose neighbours are both successive) are together at most
//      `maxIrregularShare` (25 %, rule 4's bound) of the window, and no two intervals in a row
//      fail that criterion (`maxIrregularRun` 1: two in a row are an ectopic beat the cleaning
//      left, its short interval and its pause, and one such beat raises a window's RMSSD by half or more; a
//      single one is an irregular sinus beat, which the shared records have, never two in a
//      row; sinus rhythm makes two in a row only where its RSA departs 20 % from the
//      neighbours' mean, A(1 - cos 2 pi f RR) >= 0.2 RR: measured once on 12-04, not a test,
//      windows flagged at 50-90 bpm together, 150 ms of RSA at 0.3 and 0.35 Hz 7 and 65 %,
//      200 ms at 0.25, 0.3 and 0.35 Hz 7, 82 and 100 %, none at 100-125 ms up to 0.35 Hz). The cleaning (artifacts.ts)
//      corrects ectopic beats only where normal beats outnumber them: from about one premature
//      beat in 5, in bigeminy and in atrial fibrillation its thresholds, computed from the
//      spread of the beat-to-beat changes, widen until nothing is an outlier, nothing is
//      corrected, and RMSSD comes out 10-21 times the sinus rhythm's (window-metrics.test.ts) in
//      a window that passes rules 1-4; at one in 6 it corrects some windows' beats and not
//      others'. Those windows are 'irregular_rhythm'. Counting the corrected beats with the
//      irregular ones catches the half-corrected windows, where neither share alone passes
//      25 %. Why 20 %: sinus rhythm varies smoothly (respiratory sinus arrhythmia is a sinusoid
//      at the breathing rate), so an interval departs from its neighbours' mean by at most
//      A(1 - cos 2 pi f RR) of RR = 1 s: 15 % for the deepest RSA the artifact-free test sets
//      hold (A = 150 ms at f·RR = 0.25: 0.25 Hz at 60 bpm); a premature beat 20-40 % early with
//      its compensatory pause departs by 27-50 % (the short interval) and 33-75 % (the long
//      one). The runs also read the two cleaned intervals before the window (the context's
//      last), so its first interval is compared and a pair the cleaning left across or at the
//      window's start is two in a row; the first interval then counts as irregular only if it
//      also departs by 20 % from the next one, so that a short interval left just before the
//      window does not untrust a clean window (since 12-04, fixtures/ARTIFACT-SPLIT.md, ninth round:
//      before, one premature beat in 6 with its pause left 2 of 141 windows valid and off by
//      half, and the end of a bigeminy, which the cleaning cannot read from inside, 43 of 61
//      trusted windows in a synthetic grid; now none of either). Not the intervals after it: on
//      the pyHRV record the lookahead's cleaning split two real long intervals, and reading them
//      flagged two windows of that normal record. The share is over the window's own intervals.
//      Not caught (window-metrics.test.ts prints them): premature beats without a compensatory
//      pause (atrial premature beats, which the cleaning drops: artifacts.ts, isPremature) at
//      one in 4, nor ones only 15-20 % early that the cleaning leaves in (on a less steady
//      rhythm, or closer than 3 beats apart: artifacts.ts, eleventh round), which depart from
//      their neighbours' mean by less than the 20 % here. A bigeminy's onset is read as a run of pairs (artifacts.ts, extendEctopicRun):
//      windows holding up to 32 s of it pass rules 4 and 5, corrected;
//   6. no gap between covered stretches is longer than a quarter of a breath at the window's
//      peak frequency (`maxGapBreaths` 0.25: 2.5 s at 6 breaths/min, 1 s at 15/min), nor
//      longer than `maxGapMs` (5 s) whatever the peak.
// Why: uncovered stretches are bridged by the spline (held flat at the edges). Inside the
// window, a bridge longer than about a quarter breath flattens a half-wave of the breathing
// oscillation, which the spline cannot restore, while the peak barely moves, so the window
// looks plausible and is wrong. On synthetic RSA with known answers (0.05–0.25 Hz) the
// coherence score's 95th-percentile error is 0.02–0.055 for gaps up to a quarter breath and
// 0.40–0.49 beyond (the share of windows whose CR stays within 10 % of the same window
// without the gap: 86–94 %, then 65 % falling to 30 % at half a breath). At the edges the flat
// hold falls where the Hann taper is small: CR within 10 % in 99 % of windows up to 7 s, half
// of them from 9 s. 4 s is well inside that, and short enough that a session's first windows
// are named partial rather than failing the coverage rule (a 6.4 s edge stretch alone breaks
// 90 %). Real records with gaps cut out, not used to choose the limits, degrade the same way.
// Measured by scripts/measure/window-gaps.ts into pipelines/hrv/fixtures/window-gaps.json.
// Every window reports its coverage and longest gap, valid or not, so a user can see why. An
// invalid window reports null for every metric, and as invalidReason the first rule above it
// fails ('partial', 'too_few_beats', 'low_coverage', 'too_many_artifacts', 'irregular_rhythm',
// 'long_gap').
import { AttuneError } from '../../lib/errors.js';
import { cleanRrInto, createArtifactScratch, createCleanedRr, departure, KARLSSON_SHARE, LOOKAHEAD_MS, type ArtifactScratch, type CleanedRr } from './artifacts.js';
import { computeCoherence, createCoherenceResult, type CoherenceResult } from './coherence.js';
import { createSplineScratch, resampleCubic, sampleCountFor, type SplineScratch } from './resample.js';
import { createSpectrumPlan, powerSpectralDensity, type SpectrumPlan } from './spectrum.js';
import { computeTimeDomain, createTimeDomainMetrics, SUCCESSIVE_TOLERANCE_MS, type TimeDomainMetrics } from './time-domain.js';

export interface WindowMetrics {
  valid: boolean;
  /** Coherence score 0..1 = CR / (1 + CR) = peak power / total power. */
  coherence: number | null;
  coherenceRatio: number | null;
  peakFrequencyHz: number | null;
  breathingRateBpm: number | null;
  meanHrBpm: number | null;
  rmssdMs: number | null;
  sdnnMs: number | null;
  pnn50Pct: number | null;
  /** Beats in the window after cleaning. */
  beatCount: number;
  /** (removed + corrected) / beats in the window before cleaning; 0 for an empty window. */
  artifactRatio: number;
  /** Share of the window, 0..1, covered by the clean RR intervals. */
  coverage: number;
  /** Longest stretch of the window covered by no clean interval, ms (edges included). */
  longestGapMs: number;
  /**
   * The data does not reach one of the window's edges (more than maxEdgeGapMs at its start or
   * end has no beats): a session's first or last windows, or the edge of a dropout. Such a
   * window is invalid with reason 'partial'.
   */
  partial: boolean;
  /** Why the window is invalid; null when valid. */
  invalidReason: InvalidReason | null;
}

/** Why a window is invalid, in the order the rules are checked. */
export const INVALID_REASONS = ['partial', 'too_few_beats', 'low_coverage', 'too_many_artifacts', 'irregular_rhythm', 'long_gap'] as const;
export type InvalidReason = (typeof INVALID_REASONS)[number];

/** Validity limits (see the header), measured by scripts/measure/window-gaps.ts. */
export const DEFAULT_MIN_COVERAGE = 0.9;
export const DEFAULT_MAX_EDGE_GAP_MS = 4000;
export const DEFAULT_MAX_GAP_BREATHS = 0.25;
export const DEFAULT_MAX_GAP_MS = 5000;
/** Karlsson's criterion: an interval this share or more away from its neighbours' mean (rule 5). */
export const DEFAULT_IRREGULAR_DEVIATION = KARLSSON_SHARE;
/** Largest share of a window's beats that the cleaning changed or that still fail Karlsson's criterion, together (rule 5). */
export const DEFAULT_MAX_IRREGULAR_SHARE = 0.25;
/**
 * Most consecutive clean intervals that may fail Karlsson's criterion (rule 5). Two in a row are
 * an ectopic beat the cleaning left (its short interval and its pause), or the start of a run of
 * them, and one such beat left in a 64 s window raises its RMSSD by half or more; a single one
 * is an irregular sinus beat (the shared records have those, never two in a row).
 */
export const DEFAULT_MAX_IRREGULAR_RUN = 1;

export interface WindowPlanOptions {
  windowMs?: number;
  resampleHz?: number;
  fftSize?: number;
  minBeats?: number;
  minCoverage?: number;
  maxEdgeGapMs?: number;
  maxGapBreaths?: number;
  maxGapMs?: number;
  maxArtifactRatio?: number;
  irregularDeviation?: number;
  maxIrregularShare?: number;
  maxIrregularRun?: number;
}

/** Everything one window computation needs, made once and reused; not shared between threads. */
export interface WindowPlan {
  readonly windowMs: number;
  readonly resampleHz: number;
  readonly fftSize: number;
  readonly sampleCount: number;
  readonly minBeats: number;
  readonly minCoverage: number;
  readonly maxEdgeGapMs: number;
  readonly maxGapBreaths: number;
  readonly maxGapMs: number;
  readonly maxArtifactRatio: number;
  readonly irregularDeviation: number;
  readonly maxIrregularShare: number;
  readonly maxIrregularRun: number;
  readonly irregularity: Irregularity;
  /** The window's cleaned intervals with the ones before them, for rule 5 (isIrregularRhythm); grows when needed. */
  readonly edges: { beatTimesMs: Float64Array; rrMs: Float64Array };
  readonly spectrum: SpectrumPlan;
  readonly artifacts: ArtifactScratch;
  readonly cleaned: CleanedRr;
  readonly spline: SplineScratch;
  readonly tachogram: Float64Array;
  readonly timeDomain: TimeDomainMetrics;
  readonly coherence: CoherenceResult;
}

export function createWindowPlan(opts: WindowPlanOptions = {}): WindowPlan {
  const windowMs = opts.windowMs ?? 64000;
  const resampleHz = opts.resampleHz ?? 4;
  const fftSize = opts.fftSize ?? 512;
  if (!(windowMs > 0) || !(resampleHz > 0)) {
    throw new AttuneError('validation_error', 'windowMs and resampleHz must be positive', [
      { field: 'windowMs', reason: 'invalid_argument', message: `windowMs ${windowMs}, resampleHz ${resampleHz}` },
    ]);
  }
  const sampleCount = sampleCountFor(0, windowMs, resampleHz);
  // Room for a window at the fastest plausible rate (RR 300 ms) plus margin; grows if exceeded.
  const beatCapacity = Math.ceil(windowMs / 300) + 16;
  return {
    windowMs,
    resampleHz,
    fftSize,
    sampleCount,
    minBeats: opts.minBeats ?? 30,
    minCoverage: opts.minCoverage ?? DEFAULT_MIN_COVERAGE,
    maxEdgeGapMs: opts.maxEdgeGapMs ?? DEFAULT_MAX_EDGE_GAP_MS,
    maxGapBreaths: opts.maxGapBreaths ?? DEFAULT_MAX_GAP_BREATHS,
    maxGapMs: opts.maxGapMs ?? DEFAULT_MAX_GAP_MS,
    maxArtifactRatio: opts.maxArtifactRatio ?? 0.25,
    irregularDeviation: opts.irregularDeviation ?? DEFAULT_IRREGULAR_DEVIATION,
    maxIrregularShare: opts.maxIrregularShare ?? DEFAULT_MAX_IRREGULAR_SHARE,
    maxIrregularRun: opts.maxIrregularRun ?? DEFAULT_MAX_IRREGULAR_RUN,
    irregularity: createIrregularity(),
    edges: { beatTimesMs: new Float64Array(2 * beatCapacity + 8), rrMs: new Float64Array(2 * beatCapacity + 8) },
    spectrum: createSpectrumPlan({ sampleCount, fftSize, sampleRateHz: resampleHz }),
    artifacts: createArtifactScratch(beatCapacity),
    cleaned: createCleanedRr(2 * beatCapacity),
    spline: createSplineScratch(2 * beatCapacity),
    tachogram: new Float64Array(sampleCount),
    timeDomain: createTimeDomainMetrics(),
    coherence: createCoherenceResult(),
  };
}

/** First index in [0, count) with beatTimesMs[index] ≥ t (count when none). */
function lowerBound(beatTimesMs: Float64Array, count: number, t: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (beatTimesMs[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface CoverageResult {
  /** Share of [startMs, endMs) covered by the intervals [t − rr, t] of the series. */
  coverage: number;
  /** Longest stretch covered by no interval, ms, including the stretches at both edges. */
  longestGapMs: number;
  /** Longest uncovered stretch between two covered ones, ms (0 when there is none). */
  longestInteriorGapMs: number;
  /** Uncovered stretch from startMs to the first interval, ms. */
  leadingGapMs: number;
  /** Uncovered stretch from the last covered instant to endMs, ms. */
  trailingGapMs: number;
}

/**
 * How much of [startMs, endMs) the intervals [t − rr, t] of a time-ordered series cover, and
 * its longest uncovered stretch. One pass: intervals may overlap (RR values that do not match
 * the beat-time steps exactly), so the covered frontier only moves forward.
 */
export function windowCoverage(
  beatTimesMs: ArrayLike<number>,
  rrMs: ArrayLike<number>,
  count: number,
  startMs: number,
  endMs: number,
): CoverageResult {
  let covered = 0;
  let frontier = startMs; // everything in [startMs, frontier) is covered or counted as a gap
  let interior = 0;
  let leading = -1;
  for (let i = 0; i < count; i++) {
    const from = Math.max(beatTimesMs[i] - rrMs[i], startMs);
    const to = Math.min(beatTimesMs[i], endMs);
    if (to <= frontier) continue;
    if (from > frontier) {
      const gap = from - frontier;
      if (leading < 0) leading = frontier === startMs ? gap : 0;
      else if (gap > interior) interior = gap;
      covered += to - from;
    } else {
      if (leading < 0) leading = 0;
      covered += to - frontier;
    }
    frontier = to;
  }
  const trailing = endMs - frontier;
  if (leading < 0) leading = trailing; // nothing covered: the whole window is one gap
  return {
    coverage: covered / (endMs - startMs),
    longestGapMs: Math.max(leading, interior, trailing),
    longestInteriorGapMs: interior,
    leadingGapMs: leading,
    trailingGapMs: trailing,
  };
}

export interface Irregularity {
  /** Share of the compared intervals that fail Karlsson's criterion. */
  share: number;
  /** Most consecutive intervals that fail it (a non-successive interval ends a run). */
  longestRun: number;
}

export function createIrregularity(): Irregularity {
  return { share: 0, longestRun: 0 };
}

/**
 * The intervals of a time-ordered series that differ by `deviation` or more from the mean of the
 * intervals before and after them (Karlsson's criterion): their share and their longest run,
 * over the intervals whose neighbours are both successive to them (time-domain.ts' test: a
 * beat-time step matching the RR within SUCCESSIVE_TOLERANCE_MS), so that a removed interval's
 * neighbours are not compared across it. Share 0 when no interval has two successive neighbours.
 */
export function measureIrregularity(
  beatTimesMs: Float64Array,
  rrMs: Float64Array,
  count: number,
  deviation: number,
  out: Irregularity = createIrregularity(),
  ownFrom = 0,
  ownTo = count,
): Irregularity {
  // [ownFrom, ownTo) are the intervals measured (the window's); the others, beside them, are
  // neighbours only: compared too, so that a run may start or end among them, but counted in
  // neither the share nor a run that holds none of the measured ones.
  let compared = 0;
  let irregular = 0;
  let run = 0;
  let runHoldsOwn = false;
  let longestRun = 0;
  // Whether interval i follows interval i − 1 with no removed one between, carried along.
  let joinedBefore = count > 1 && Math.abs(beatTimesMs[1] - beatTimesMs[0] - rrMs[1]) <= SUCCESSIVE_TOLERANCE_MS;
  for (let i = 1; i + 1 < count; i++) {
    const joinedAfter = Math.abs(beatTimesMs[i + 1] - beatTimesMs[i] - rrMs[i + 1]) <= SUCCESSIVE_TOLERANCE_MS;
    // ≥, as Karlsson's filter keeps an interval only when it is strictly within the share. An
    // interval not compared (a removed one beside it) ends a run.
    let compares = joinedBefore && joinedAfter;
    const own = i >= ownFrom && i < ownTo;
    // The first measured interval, compared across the edge, counts as irregular only when it
    // also departs by `deviation` from the measured interval after it: a short interval the
    // cleaning left just before the window pulls its neighbours' mean down and made a normal
    // first interval fail (a review of 12-04: 173 of 253 windows newly untrusted by the edge
    // were within 10 % of the sinus rhythm's RMSSD); a pause, or a short interval, opening the
    // window departs from the next one too.
    if (compares && i === ownFrom && ownFrom > 0 && i + 1 < count && !(Math.abs(rrMs[i] - rrMs[i + 1]) >= deviation * rrMs[i + 1])) compares = false;
    // The share is over the measured intervals with both neighbours among them, as without
    // neighbours beside them (those only extend runs).
    const counted = i > ownFrom && i + 1 < ownTo;
    if (compares && counted) compared++;
    if (compares && departure(rrMs, count, i) >= deviation) {
      if (counted) irregular++;
      run++;
      if (own) runHoldsOwn = true;
      if (runHoldsOwn && run > longestRun) longestRun = run;
    } else {
      run = 0;
      runHoldsOwn = false;
    }
    joinedBefore = joinedAfter;
  }
  out.share = compared > 0 ? irregular / compared : 0;
  out.longestRun = longestRun;
  return out;
}

/**
 * Rule 5 (see the header). Its runs also read the cleaned intervals just before the window
 * (CleanedRr.edgeBefore, where successive), so the window's first interval is compared and a
 * run may start before it: a pair the cleaning left across or at the window's start (the
 * context's last interval short and the window's first its pause, or both opening the window)
 * is then two irregular intervals in a row, not one, which the rule allows (an irregular sinus
 * beat). The share is over the window's own intervals as before. Not the intervals after it: on
 * the pyHRV record (development) the lookahead's cleaning split two real long intervals, and
 * reading them flagged two windows of that normal record (fixtures/ARTIFACT-SPLIT.md, ninth
 * round).
 */
function isIrregularRhythm(cleaned: CleanedRr, artifactRatio: number, plan: WindowPlan): boolean {
  const before = cleaned.edgeBefore;
  const n = before.count + cleaned.count;
  if (plan.edges.rrMs.length < n) {
    plan.edges.rrMs = new Float64Array(2 * n);
    plan.edges.beatTimesMs = new Float64Array(2 * n);
  }
  const { rrMs, beatTimesMs } = plan.edges;
  // Plain loops, not set(subarray(...)): four subarray views a window showed in bench:coherence.
  for (let i = 0; i < before.count; i++) {
    rrMs[i] = before.rrMs[i];
    beatTimesMs[i] = before.beatTimesMs[i];
  }
  for (let i = 0, o = before.count; i < cleaned.count; i++, o++) {
    rrMs[o] = cleaned.rrMs[i];
    beatTimesMs[o] = cleaned.beatTimesMs[i];
  }
  const irregular = measureIrregularity(beatTimesMs, rrMs, n, plan.irregularDeviation, plan.irregularity, before.count, n);
  return artifactRatio + irregular.share > plan.maxIrregularShare || irregular.longestRun > plan.maxIrregularRun;
}

function invalidWindow(
  shape: Pick<WindowMetrics, 'beatCount' | 'artifactRatio' | 'coverage' | 'longestGapMs' | 'partial'>,
  invalidReason: InvalidReason,
): WindowMetrics {
  return {
    valid: false,
    coherence: null,
    coherenceRatio: null,
    peakFrequencyHz: null,
    breathingRateBpm: null,
    meanHrBpm: null,
    rmssdMs: null,
    sdnnMs: null,
    pnn50Pct: null,
    ...shape,
    invalidReason,
  };
}

function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/**
 * HRV and coherence of the beats in [windowStartMs, windowEndMs). `beatTimesMs[i]` is the time of
 * the beat closing `rrMs[i]` (ms, increasing); only the first `count` entries are read, so the
 * arrays may be a larger, partly filled buffer holding beats outside the window too.
 * `windowEndMs − windowStartMs` must equal `plan.windowMs`.
 */
export function computeWindowMetrics(
  beatTimesMs: Float64Array,
  rrMs: Float64Array,
  count: number,
  windowStartMs: number,
  windowEndMs: number,
  plan: WindowPlan,
): WindowMetrics {
  if (windowEndMs - windowStartMs !== plan.windowMs) {
    throw new AttuneError('validation_error', 'window length does not match the plan', [
      { field: 'windowEndMs', reason: 'invalid_argument', message: `window is ${windowEndMs - windowStartMs} ms, plan is ${plan.windowMs} ms` },
    ]);
  }
  const from = lowerBound(beatTimesMs, count, windowStartMs);
  const to = lowerBound(beatTimesMs, count, windowEndMs);
  // Beats after the window (up to LOOKAHEAD_BEATS within LOOKAHEAD_MS of its end, when the caller
  // has them) are read by the cleaning, never written: the worker hands them over with the
  // window (artifacts.ts, 0.).
  const readTo = lowerBound(beatTimesMs, count, windowEndMs + LOOKAHEAD_MS);
  const cleaned = cleanRrInto(beatTimesMs, rrMs, from, to, plan.cleaned, plan.artifacts, readTo);
  const beatCount = cleaned.count;
  const artifactRatio = cleaned.artifactRatio;

  const cov = windowCoverage(cleaned.beatTimesMs, cleaned.rrMs, beatCount, windowStartMs, windowEndMs);
  const partial = cov.leadingGapMs > plan.maxEdgeGapMs || cov.trailingGapMs > plan.maxEdgeGapMs;
  const shape = { beatCount, artifactRatio, coverage: cov.coverage, longestGapMs: cov.longestGapMs, partial };
  let invalidReason: InvalidReason | null = null;
  if (partial) invalidReason = 'partial';
  else if (beatCount < plan.minBeats) invalidReason = 'too_few_beats';
  else if (cov.coverage < plan.minCoverage) invalidReason = 'low_coverage';
  else if (artifactRatio > plan.maxArtifactRatio) invalidReason = 'too_many_artifacts';
  else if (isIrregularRhythm(cleaned, artifactRatio, plan)) invalidReason = 'irregular_rhythm';
  else if (cov.longestInteriorGapMs > plan.maxGapMs) invalidReason = 'long_gap';
  if (invalidReason !== null) return invalidWindow(shape, invalidReason);

  const td = computeTimeDomain(cleaned.rrMs, beatCount, cleaned.beatTimesMs, plan.timeDomain);
  resampleCubic(
    cleaned.beatTimesMs,
    cleaned.rrMs,
    beatCount,
    windowStartMs,
    windowEndMs,
    plan.resampleHz,
    plan.tachogram,
    plan.spline,
  );
  // The spectrum plan then holds the window's periodogram (grid and lags) that coherence reads.
  powerSpectralDensity(plan.tachogram, plan.spectrum);
  const co = computeCoherence(plan.spectrum, plan.coherence);
  // Rule 6 needs the breathing rate, so it is checked once the spectrum is known.
  if (Number.isFinite(co.peakFrequencyHz) && (cov.longestInteriorGapMs / 1000) * co.peakFrequencyHz > plan.maxGapBreaths) {
    return invalidWindow(shape, 'long_gap');
  }
  return {
    valid: true,
    coherence: co.score,
    coherenceRatio: co.coherenceRatio,
    peakFrequencyHz: finiteOrNull(co.peakFrequencyHz),
    breathingRateBpm: finiteOrNull(co.breathingRateBpm),
    meanHrBpm: finiteOrNull(td.meanHrBpm),
    rmssdMs: finiteOrNull(td.rmssdMs),
    sdnnMs: finiteOrNull(td.sdnnMs),
    pnn50Pct: finiteOrNull(td.pnn50Pct),
    ...shape,
    invalidReason: null,
  };
}
