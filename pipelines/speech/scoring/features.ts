// The feature vector that delivery scores are computed from, built from the pipeline's
// results (rates, pauses, fillers, repetitions, pitch and volume). Pure: numbers in, numbers out.
//
// Per-minute rates divide by durationMs, which the pipeline gives as the span from the first to
// the last speech (pipelines/speech/stream/results.ts scoreInput), the time the API's speaking
// rate, filler rate and fluency divide by too, so that "fillers per minute" means the same
// everywhere and silence before and after the speaker dilutes nothing. Empty inputs give the neutral value the
// rubric documents (0, or -100 dBFS for a volume with no speech seconds) rather than NaN,
// because an ONNX graph would turn NaN into NaN scores.
import { AttuneError } from '../../../lib/errors.js';
import { pitchStats } from '../pitch-stats.js';

/** Feature names, in the order of the rubric's input columns (models/rubric/speech_rubric_v1.json). */
export const FEATURE_NAMES = [
  'speaking_rate_wpm',
  'articulation_rate_wpm',
  'pause_ratio',
  'long_pauses_per_min',
  'mean_pause_s',
  'filler_rate_per_min',
  'repetition_rate_per_min',
  'pitch_variability_st',
  'pitch_range_st',
  'volume_variability_db',
  'mean_volume_dbfs',
  'speech_ratio',
] as const;

export type FeatureName = (typeof FEATURE_NAMES)[number];

export interface ScoreFeatures {
  /** Words per minute over durationMs (first to last speech), pauses included. */
  speaking_rate_wpm: number;
  /** Words per minute over speaking time (speechMs: phonation time). */
  articulation_rate_wpm: number;
  /** Pause time over durationMs, 0..1. */
  pause_ratio: number;
  /** Long pauses per minute of durationMs. */
  long_pauses_per_min: number;
  /** Mean pause duration in seconds; 0 without pauses. */
  mean_pause_s: number;
  /** Filler words per minute of durationMs. */
  filler_rate_per_min: number;
  /** Repetitions per minute of durationMs. */
  repetition_rate_per_min: number;
  /** Population SD of voiced f0 in semitones from the median (as pitchStats); 0 without voiced frames. */
  pitch_variability_st: number;
  /** 5th to 95th percentile of voiced f0 in semitones; 0 with fewer than two voiced values. */
  pitch_range_st: number;
  /** Population SD of the per-second dBFS of seconds with speech; 0 with fewer than two. */
  volume_variability_db: number;
  /** Mean of the per-second dBFS of seconds with speech; NO_SPEECH_DBFS when there are none. */
  mean_volume_dbfs: number;
  /** Speaking time (speechMs: phonation time) over durationMs, 0..1. */
  speech_ratio: number;
}

/** mean_volume_dbfs when no second has speech: quieter than any band the rubric accepts. */
export const NO_SPEECH_DBFS = -100;

const PITCH_RANGE_LOW_PERCENTILE = 0.05;
const PITCH_RANGE_HIGH_PERCENTILE = 0.95;
const MS_PER_MINUTE = 60_000;

export interface ScoreFeatureInput {
  /** Total time of the session, ms (> 0). */
  durationMs: number;
  /** Speaking time (union of voice-activity segments), ms. */
  speechMs: number;
  /** Words said, fillers included (as speechRates().wordCount). */
  wordCount: number;
  pauses: readonly { durationMs: number; kind: 'natural' | 'long' }[];
  fillerCount: number;
  repetitionCount: number;
  /** f0 of voiced frames, Hz; values that are not positive and finite are ignored. */
  pitchHz: Float32Array | readonly number[];
  /** dBFS of each second that has speech. */
  secondVolumesDbfs: readonly number[];
}

/** Linear interpolation between closest ranks (sorted ascending, p in 0..1). */
function percentile(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function pitchFeatures(pitchHz: Float32Array | readonly number[]): { variability: number; range: number } {
  const voiced = Float32Array.from(Array.from(pitchHz).filter((f) => Number.isFinite(f) && f > 0));
  const stats = pitchStats(voiced, new Uint8Array(voiced.length).fill(1));
  if (stats.medianHz === null || stats.variabilitySemitones === null) return { variability: 0, range: 0 };
  const median = stats.medianHz;
  // The semitone values are computed from the same float32 values pitchStats saw.
  const semitones = Float64Array.from(voiced, (f) => 12 * Math.log2(f / median)).sort();
  const range = semitones.length < 2 ? 0 : percentile(semitones, PITCH_RANGE_HIGH_PERCENTILE) - percentile(semitones, PITCH_RANGE_LOW_PERCENTILE);
  return { variability: stats.variabilitySemitones, range };
}

function volumeFeatures(dbfs: readonly number[]): { mean: number; sd: number } {
  if (dbfs.length === 0) return { mean: NO_SPEECH_DBFS, sd: 0 };
  const mean = dbfs.reduce((a, b) => a + b, 0) / dbfs.length;
  if (dbfs.length < 2) return { mean, sd: 0 };
  const variance = dbfs.reduce((a, b) => a + (b - mean) ** 2, 0) / dbfs.length;
  return { mean, sd: Math.sqrt(variance) };
}

function requireNumber(name: string, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new AttuneError('validation_error', `scoreFeatures: ${name} must be a finite number >= ${min}, got ${value}`, [{ field: name, reason: 'out_of_range' }]);
  }
}

/** Builds the feature vector from pipeline results (pure). */
export function scoreFeatures(input: ScoreFeatureInput): ScoreFeatures {
  requireNumber('durationMs', input.durationMs, Number.MIN_VALUE);
  requireNumber('speechMs', input.speechMs, 0);
  requireNumber('wordCount', input.wordCount, 0);
  requireNumber('fillerCount', input.fillerCount, 0);
  requireNumber('repetitionCount', input.repetitionCount, 0);
  input.pauses.forEach((p, i) => requireNumber(`pauses[${i}].durationMs`, p.durationMs, 0));
  input.secondVolumesDbfs.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new AttuneError('validation_error', `scoreFeatures: secondVolumesDbfs[${i}] is ${v}`, [{ field: `secondVolumesDbfs[${i}]`, reason: 'invalid_argument', message: 'not finite' }]);
  });

  const minutes = input.durationMs / MS_PER_MINUTE;
  const pauseMs = input.pauses.reduce((sum, p) => sum + p.durationMs, 0);
  const longPauses = input.pauses.filter((p) => p.kind === 'long').length;
  const pitch = pitchFeatures(input.pitchHz);
  const volume = volumeFeatures(input.secondVolumesDbfs);
  return {
    speaking_rate_wpm: input.wordCount / minutes,
    articulation_rate_wpm: input.speechMs > 0 ? input.wordCount / (input.speechMs / MS_PER_MINUTE) : 0,
    pause_ratio: pauseMs / input.durationMs,
    long_pauses_per_min: longPauses / minutes,
    mean_pause_s: input.pauses.length > 0 ? pauseMs / input.pauses.length / 1000 : 0,
    filler_rate_per_min: input.fillerCount / minutes,
    repetition_rate_per_min: input.repetitionCount / minutes,
    pitch_variability_st: pitch.variability,
    pitch_range_st: pitch.range,
    volume_variability_db: volume.sd,
    mean_volume_dbfs: volume.mean,
    speech_ratio: input.speechMs / input.durationMs,
  };
}
