// The group pacer (issue 11 item 3, sync_pulse): where in its breath the pacer is at instant
// t, a pure function of the protocol's breathing rate and the session's start, so every API
// process (and every client) computes the same pulse for the same instant. One breath lasts
// 60 / breathing_rate_bpm seconds: inhale for the first half, exhale for the second (the
// 1:1 ratio of resonance breathing, e.g. 5 s in, 5 s out at 6 breaths a minute).

export type PacerPhase = 'inhale' | 'exhale';

export interface PacerState {
  phase: PacerPhase;
  /** 0 at the start of the phase, towards 1 at its end. */
  progress: number;
  /** Breaths completed since the session's start (0 in the first breath). */
  cycle: number;
  /** Length of one breath, seconds. */
  period_s: number;
}

/** The pacer at `t` (epoch ms) for a session started at `startMs`; null before the start. */
export function pacerAt(startMs: number, breathingRateBpm: number, t: number): PacerState | null {
  if (!(breathingRateBpm > 0) || !Number.isFinite(startMs) || !Number.isFinite(t)) throw new RangeError('pacerAt: a positive breathing rate and finite times');
  if (t < startMs) return null;
  const periodMs = 60_000 / breathingRateBpm;
  const elapsed = t - startMs;
  const cycle = Math.floor(elapsed / periodMs);
  // Time into the breath and into its half, ms (exact for integer ms and periods).
  const inBreath = elapsed - cycle * periodMs;
  const half = periodMs / 2;
  const inhale = inBreath < half;
  const progress = inhale ? inBreath / half : (inBreath - half) / half;
  return { phase: inhale ? 'inhale' : 'exhale', progress: Math.min(1, Math.max(0, progress)), cycle, period_s: periodMs / 1000 };
}
