// HRV and coherence of one window, end to end:
//   select the beats whose time lies in [windowStartMs, windowEndMs)
//   → clean (artifacts.ts) → validity decision → time-domain metrics (time-domain.ts)
//   → 4 Hz cubic-spline tachogram (resample.ts) → PSD (spectrum.ts) → coherence (coherence.ts).
//
// Validity: a window is valid when, after cleaning,
//   - at least `minBeats` (default 30) beats remain: 64 s at 30 bpm, a floor no resting adult
//     goes below, and about the fewest that give a spectrum worth reading;
//   - the clean intervals cover at least `minCoverage` (default 70 %) of the window: each
//     interval covers [beat time − RR, beat time], clipped to the window; what removed intervals
//     and missing data leave uncovered is spline-bridged, and past ~30 % of a window the
//     bridging dominates the spectrum;
//   - at most `maxArtifactRatio` (default 25 %) of the input beats were removed or corrected:
//     beyond that the corrections, not the heart, shape the series.
// An invalid window reports beatCount and artifactRatio, and null for every metric.
import { AttuneError } from '../../lib/errors.js';
import { cleanRrInto, createArtifactScratch, createCleanedRr, type ArtifactScratch, type CleanedRr } from './artifacts.js';
import { computeCoherence, createCoherenceResult, type CoherenceResult } from './coherence.js';
import { createSplineScratch, resampleCubic, sampleCountFor, type SplineScratch } from './resample.js';
import { createSpectrumPlan, powerSpectralDensity, type SpectrumPlan } from './spectrum.js';
import { computeTimeDomain, createTimeDomainMetrics, type TimeDomainMetrics } from './time-domain.js';

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
  /** Why the window is invalid; null when valid. */
  invalidReason: 'too_few_beats' | 'low_coverage' | 'too_many_artifacts' | null;
}

export interface WindowPlanOptions {
  windowMs?: number;
  resampleHz?: number;
  fftSize?: number;
  minBeats?: number;
  minCoverage?: number;
  maxArtifactRatio?: number;
}

/** Everything one window computation needs, made once and reused; not shared between threads. */
export interface WindowPlan {
  readonly windowMs: number;
  readonly resampleHz: number;
  readonly fftSize: number;
  readonly sampleCount: number;
  readonly minBeats: number;
  readonly minCoverage: number;
  readonly maxArtifactRatio: number;
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
      { field: 'windowMs', reason: `windowMs ${windowMs}, resampleHz ${resampleHz}` },
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
    minCoverage: opts.minCoverage ?? 0.7,
    maxArtifactRatio: opts.maxArtifactRatio ?? 0.25,
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

/** Share of [startMs, endMs) covered by the intervals [t − rr, t] of the series. */
function coverage(cleaned: CleanedRr, startMs: number, endMs: number): number {
  const { beatTimesMs, rrMs, count } = cleaned;
  let covered = 0;
  for (let i = 0; i < count; i++) {
    const end = beatTimesMs[i];
    const from = Math.max(end - rrMs[i], startMs);
    const to = Math.min(end, endMs);
    if (to > from) covered += to - from;
  }
  return covered / (endMs - startMs);
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
      { field: 'windowEndMs', reason: `window is ${windowEndMs - windowStartMs} ms, plan is ${plan.windowMs} ms` },
    ]);
  }
  const from = lowerBound(beatTimesMs, count, windowStartMs);
  const to = lowerBound(beatTimesMs, count, windowEndMs);
  const cleaned = cleanRrInto(beatTimesMs, rrMs, from, to, plan.cleaned, plan.artifacts);
  const beatCount = cleaned.count;
  const artifactRatio = cleaned.artifactRatio;

  let invalidReason: WindowMetrics['invalidReason'] = null;
  if (beatCount < plan.minBeats) invalidReason = 'too_few_beats';
  else if (coverage(cleaned, windowStartMs, windowEndMs) < plan.minCoverage) invalidReason = 'low_coverage';
  else if (artifactRatio > plan.maxArtifactRatio) invalidReason = 'too_many_artifacts';
  if (invalidReason !== null) {
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
      beatCount,
      artifactRatio,
      invalidReason,
    };
  }

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
    beatCount,
    artifactRatio,
    invalidReason: null,
  };
}
