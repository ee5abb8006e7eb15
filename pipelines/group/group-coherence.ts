// Group coherence and breathing synchrony of one group window, from the participants' own
// coherence windows (pipelines/hrv/window-metrics.ts). Definitions in pipelines/group/README.md.
//
//   quality_j = coverage_j · (1 − artifactRatio_j)           (both 0..1, from the window's metrics)
//   weight_j  = quality_j / Σ_k quality_k                      (sums to 1 over contributing j)
//   group coherence = Σ_j weight_j · coherence_j
//   breathing_sync_score_j = max(0, 1 − |f_breath,j − f_pacer| / 0.03 Hz)
//
// Only valid windows contribute (an invalid window has no coherence); a participant whose
// quality is 0 gets weight 0. Pure.
import { AttuneError } from '../../lib/errors.js';

/** Breathing frequency difference (Hz) at which breathing_sync_score reaches 0: the 0.030 Hz
 * width of the coherence peak band (1.8 breaths/min). Half of it, the band's half width, scores 0.5. */
export const BREATHING_SYNC_FULL_SCALE_HZ = 0.03;

export interface ParticipantWindowQuality {
  /** Coherence score 0..1 of the participant's window; null when the window is invalid. */
  coherence: number | null;
  /** Share of the window covered by clean RR, 0..1. */
  coverage: number;
  /** (removed + corrected) / beats, 0..1. */
  artifactRatio: number;
}

export interface GroupCoherence {
  /** Weighted mean coherence; null when no participant contributes with a positive weight. */
  coherence: number | null;
  /** Per input index: weight 0..1 (summing to 1 over the contributors), 0 for a non-contributor. */
  weights: Float64Array;
  /** Participants with a valid window and positive weight. */
  contributorCount: number;
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Signal quality weight before normalisation: coverage · (1 − artifact ratio), clamped to 0..1. */
export function signalQuality(p: ParticipantWindowQuality): number {
  if (!Number.isFinite(p.coverage) || !Number.isFinite(p.artifactRatio)) return 0;
  return clamp01(p.coverage) * (1 - clamp01(p.artifactRatio));
}

export function groupCoherence(participants: readonly ParticipantWindowQuality[]): GroupCoherence {
  const weights = new Float64Array(participants.length);
  let total = 0;
  let count = 0;
  participants.forEach((p, i) => {
    if (p.coherence === null || !Number.isFinite(p.coherence)) return;
    const q = signalQuality(p);
    if (q > 0) {
      weights[i] = q;
      total += q;
      count++;
    }
  });
  if (total === 0) return { coherence: null, weights, contributorCount: 0 };
  let c = 0;
  participants.forEach((p, i) => {
    if (weights[i] > 0) {
      weights[i] /= total;
      c += weights[i] * (p.coherence as number);
    }
  });
  return { coherence: c, weights, contributorCount: count };
}

/**
 * breathing_sync_score ∈ [0, 1]: 1 when the participant breathes at the pacer's rate, falling
 * linearly to 0 at 0.03 Hz (1.8 breaths/min) away. Breathing rate is the coherence window's
 * peak frequency × 60 (pipelines/hrv/coherence.ts). Null when the breathing rate is unknown.
 */
export function breathingSyncScore(breathingRateBpm: number | null, pacerRateBpm: number): number | null {
  if (!(pacerRateBpm > 0) || !Number.isFinite(pacerRateBpm)) {
    throw new AttuneError('validation_error', 'pacer rate must be a positive number of breaths/min', [
      { field: 'pacerRateBpm', reason: 'invalid_argument', message: `got ${pacerRateBpm}` },
    ]);
  }
  if (breathingRateBpm === null || !Number.isFinite(breathingRateBpm)) return null;
  const dHz = Math.abs(breathingRateBpm - pacerRateBpm) / 60;
  return Math.max(0, 1 - dHz / BREATHING_SYNC_FULL_SCALE_HZ);
}
