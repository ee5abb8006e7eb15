// The speech-coaching document's derived figures that are not stored as such: the trend of
// pitch and volume over a session, and the overall fluency. Pure: numbers in, numbers out.

export type Trend = 'increasing' | 'decreasing' | 'stable';

/** A pitch change over the session of at least this many semitones is a trend. */
export const PITCH_TREND_SEMITONES = 1;
/** A loudness change over the session of at least this many dB is a trend. */
export const VOLUME_TREND_DB = 3;
/** Fewer points than this: stable (a line through two seconds says nothing). */
export const MIN_TREND_POINTS = 3;

/**
 * Trend of a series by least squares: the fitted line's change from the first to the last
 * point's time; `increasing` when it is at least +threshold, `decreasing` at most -threshold,
 * else (or with fewer than MIN_TREND_POINTS points) `stable`.
 */
export function linearTrend(points: ReadonlyArray<{ t: number; v: number }>, threshold: number): Trend {
  const p = points.filter((x) => Number.isFinite(x.t) && Number.isFinite(x.v));
  if (p.length < MIN_TREND_POINTS) return 'stable';
  const n = p.length;
  const mt = p.reduce((a, x) => a + x.t, 0) / n;
  const mv = p.reduce((a, x) => a + x.v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const x of p) {
    sxx += (x.t - mt) ** 2;
    sxy += (x.t - mt) * (x.v - mv);
  }
  if (sxx === 0) return 'stable';
  const span = Math.max(...p.map((x) => x.t)) - Math.min(...p.map((x) => x.t));
  const change = (sxy / sxx) * span;
  if (change >= threshold) return 'increasing';
  if (change <= -threshold) return 'decreasing';
  return 'stable';
}

/** Pitch trend from per-second mean f0 (Hz, null when unvoiced): the series in semitones re 100 Hz, 1 semitone. */
export function pitchTrend(seconds: ReadonlyArray<{ t: number; hz: number | null }>): Trend {
  const pts = seconds.filter((s) => s.hz !== null && s.hz > 0).map((s) => ({ t: s.t, v: 12 * Math.log2((s.hz as number) / 100) }));
  return linearTrend(pts, PITCH_TREND_SEMITONES);
}

/** Volume trend from the per-second dBFS of seconds with speech: 3 dB. */
export function volumeTrend(seconds: ReadonlyArray<{ t: number; dbfs: number }>): Trend {
  return linearTrend(seconds.map((s) => ({ t: s.t, v: s.dbfs })), VOLUME_TREND_DB);
}

/**
 * 1 up to `ideal`, falling linearly to 0 at `zero` (a rate where less is better): the rubric's
 * one-sided bands (models/rubric/speech_rubric_v1.json).
 */
export function lessIsBetter(value: number, ideal: number, zero: number): number {
  if (!(value > ideal)) return 1;
  if (value >= zero) return 0;
  return (zero - value) / (zero - ideal);
}

/** The rubric's bands of the three disfluency rates, per minute from the first to the last speech: [ideal up to, zero at]. */
export const FLUENCY_BANDS = {
  fillersPerMin: [2, 12],
  repetitionsPerMin: [1, 6],
  longPausesPerMin: [2, 8],
} as const;

/**
 * overallFluency, 0..100: 100 × the mean of three sub-scores, one per disfluency (fillers,
 * repetitions, long pauses), each 1 at or below its band's ideal rate per minute and falling
 * linearly to 0 at its zero rate (FLUENCY_BANDS: the scoring rubric's bands for the same rates).
 * Null without any audio (no rate can be computed).
 */
export function overallFluency(input: { durationS: number; fillerCount: number; repetitionCount: number; longPauseCount: number }): number | null {
  if (!(input.durationS > 0)) return null;
  const minutes = input.durationS / 60;
  const subs = [
    lessIsBetter(input.fillerCount / minutes, ...FLUENCY_BANDS.fillersPerMin),
    lessIsBetter(input.repetitionCount / minutes, ...FLUENCY_BANDS.repetitionsPerMin),
    lessIsBetter(input.longPauseCount / minutes, ...FLUENCY_BANDS.longPausesPerMin),
  ];
  return Math.round((1000 * subs.reduce((a, b) => a + b, 0)) / subs.length) / 10;
}
