// Synthetic group members with known synchrony, for tests and bench:group. Deterministic: every
// draw comes from mulberry32 seeded by the caller.
//
// A participant's RR series is RR[k] = mean + A sin(2π f t_{k−1} + φ) + noise (ms), beats
// t_k = t_{k−1} + RR[k]: respiratory sinus arrhythmia at breathing frequency f with phase φ, as
// pipelines/hrv/synthetic-rr.ts makes it but with a phase of its own; then the 4 Hz natural cubic
// spline of the coherence worker (pipelines/hrv/resample.ts) over the window. Beats start 10 s
// before the window so the spline has no edge inside it.
import { Mulberry32, deriveSeed, gaussian, type Prng } from '../../lib/prng.js';
import { createSplineScratch, resampleCubic, type SplineScratch } from '../hrv/resample.js';

export interface SyntheticParticipant {
  meanMs: number;
  rsaAmplitudeMs: number;
  breathingHz: number;
  phaseRad: number;
  noiseMs: number;
}

/** The window's 4 Hz tachogram of one participant (windowMs · 4 / 1000 samples). */
export function participantSeries(p: SyntheticParticipant, windowStartMs: number, windowMs: number, rng: Prng, scratch: SplineScratch = createSplineScratch()): Float64Array {
  const times: number[] = [];
  const rr: number[] = [];
  let t = windowStartMs - 10_000;
  const end = windowStartMs + windowMs + 5_000;
  while (t < end) {
    const r = p.meanMs + p.rsaAmplitudeMs * Math.sin(2 * Math.PI * p.breathingHz * (t / 1000) + p.phaseRad) + p.noiseMs * gaussian(rng);
    t += r;
    times.push(t);
    rr.push(r);
  }
  const out = new Float64Array(Math.round((windowMs * 4) / 1000));
  resampleCubic(Float64Array.from(times), Float64Array.from(rr), times.length, windowStartMs, windowStartMs + windowMs, 4, out, scratch);
  return out;
}

export interface SyntheticGroupOptions {
  n: number;
  /** Share of participants (the first round(share · n)) breathing at the shared rate and phase. */
  lockedShare: number;
  seed: number;
  windowStartMs?: number;
  windowMs?: number;
  /** The shared (pacer) breathing frequency, Hz; default 0.1 (6 breaths/min). */
  sharedHz?: number;
  /** Spread of the locked participants' phases around the shared one, rad (sd); default 0.3. */
  lockedPhaseSdRad?: number;
}

/**
 * A group: the locked share breathes at `sharedHz` with phase φ0 + N(0, lockedPhaseSdRad); the
 * rest at their own frequency (uniform 0.06–0.22 Hz) and phase (uniform). Each participant has
 * its own mean RR (750–1,100 ms), RSA amplitude (20–60 ms) and beat noise (8–20 ms sd).
 */
export function syntheticGroup(opts: SyntheticGroupOptions): { series: Float64Array[]; participants: SyntheticParticipant[] } {
  const rng = new Mulberry32(deriveSeed(opts.seed, 0x67));
  const sharedHz = opts.sharedHz ?? 0.1;
  const phase0 = rng.next() * 2 * Math.PI;
  const locked = Math.round(opts.lockedShare * opts.n);
  const scratch = createSplineScratch();
  const series: Float64Array[] = [];
  const participants: SyntheticParticipant[] = [];
  for (let j = 0; j < opts.n; j++) {
    const isLocked = j < locked;
    const p: SyntheticParticipant = {
      meanMs: 750 + 350 * rng.next(),
      rsaAmplitudeMs: 20 + 40 * rng.next(),
      breathingHz: isLocked ? sharedHz : 0.06 + 0.16 * rng.next(),
      phaseRad: isLocked ? phase0 + (opts.lockedPhaseSdRad ?? 0.3) * gaussian(rng) : rng.next() * 2 * Math.PI,
      noiseMs: 8 + 12 * rng.next(),
    };
    participants.push(p);
    series.push(participantSeries(p, opts.windowStartMs ?? 600_000, opts.windowMs ?? 64_000, new Mulberry32(deriveSeed(opts.seed, j + 1)), scratch));
  }
  return { series, participants };
}
