// Summary of a pitch track over its voiced frames.
//
// Variability is the standard deviation of each voiced f0 in semitones from the median,
// 12·log2(f0 / median): a scale on which a man's and a woman's intonation of the same range
// compare equally. The monotone flag is set when that variability is below
// MONOTONE_SEMITONES = 2: read English speech typically moves 3–5 semitones (SD) and speech
// heard as flat under 2.
// Standard deviations are population SDs (divided by n): the frames are the whole utterance,
// not a sample of it.
// The 5th and 95th percentiles give the speaking range without the few stray frames that set the
// minimum and maximum (a voicing edge, a creaky frame, one wrong period); they interpolate linearly
// between order statistics (numpy's default): p = values[(n − 1) · q] for q = 0.05, 0.95.

/** Variability (SD, semitones) under which speech is called monotone. */
export const MONOTONE_SEMITONES = 2;

export interface PitchStats {
  voicedFrames: number;
  /** The remaining fields are null when no frame is voiced. */
  meanHz: number | null;
  sdHz: number | null;
  minHz: number | null;
  maxHz: number | null;
  medianHz: number | null;
  /** 5th and 95th percentiles of voiced f0, Hz. */
  p5Hz: number | null;
  p95Hz: number | null;
  variabilitySemitones: number | null;
  monotone: boolean | null;
}

export interface PitchStatsOptions {
  /** Monotone when variability is below this many semitones (default MONOTONE_SEMITONES). */
  monotoneSemitones?: number;
  /** Only frames [from, to) count (default: all). */
  from?: number;
  to?: number;
}

/** Percentile q (0..1) of ascending `sorted` (non-empty), linear between order statistics. */
function percentile(sorted: Float64Array, q: number): number {
  const x = q * (sorted.length - 1);
  const i = Math.floor(x);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i] + (sorted[j] - sorted[i]) * (x - i);
}

/**
 * Statistics of f0Hz over the frames where voiced[i] is 1 and f0Hz[i] > 0.
 * Allocates one Float64Array of the voiced count (for the median).
 */
export function pitchStats(f0Hz: Float32Array, voiced: Uint8Array, opts: PitchStatsOptions = {}): PitchStats {
  const from = opts.from ?? 0;
  const to = Math.min(opts.to ?? f0Hz.length, f0Hz.length, voiced.length);
  let count = 0;
  for (let i = from; i < to; i++) if (voiced[i] === 1 && f0Hz[i] > 0) count++;
  if (count === 0) {
    return {
      voicedFrames: 0,
      meanHz: null,
      sdHz: null,
      minHz: null,
      maxHz: null,
      medianHz: null,
      p5Hz: null,
      p95Hz: null,
      variabilitySemitones: null,
      monotone: null,
    };
  }
  const values = new Float64Array(count);
  let k = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = from; i < to; i++) {
    if (voiced[i] !== 1 || !(f0Hz[i] > 0)) continue;
    const f = f0Hz[i];
    values[k++] = f;
    sum += f;
    if (f < min) min = f;
    if (f > max) max = f;
  }
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < count; i++) squares += (values[i] - mean) ** 2;
  values.sort();
  const mid = count >> 1;
  const median = count % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  let semitoneSum = 0;
  let semitoneSquares = 0;
  for (let i = 0; i < count; i++) {
    const st = 12 * Math.log2(values[i] / median);
    semitoneSum += st;
    semitoneSquares += st * st;
  }
  const semitoneMean = semitoneSum / count;
  const variability = Math.sqrt(Math.max(0, semitoneSquares / count - semitoneMean * semitoneMean));
  return {
    voicedFrames: count,
    meanHz: mean,
    sdHz: Math.sqrt(squares / count),
    minHz: min,
    maxHz: max,
    medianHz: median,
    p5Hz: percentile(values, 0.05),
    p95Hz: percentile(values, 0.95),
    variabilitySemitones: variability,
    monotone: variability < (opts.monotoneSemitones ?? MONOTONE_SEMITONES),
  };
}
