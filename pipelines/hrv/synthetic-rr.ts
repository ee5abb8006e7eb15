// Synthetic RR series with known answers, for tests and the benchmark. Deterministic: every
// random draw comes from a seeded generator passed in or made from `seed`.

export { createRandom } from '../../lib/prng.js';
import { createRandom } from '../../lib/prng.js';

/** Standard normal draw (Box–Muller) from a uniform generator. */
export function gaussian(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface SyntheticRrOptions {
  durationMs: number;
  /** Mean RR, ms. */
  meanMs?: number;
  /** Respiratory sinus arrhythmia: sinusoid amplitude (ms) and frequency (Hz); 0 for none. */
  rsaAmplitudeMs?: number;
  rsaFrequencyHz?: number;
  /** Standard deviation of independent Gaussian noise added to each RR, ms. */
  noiseMs?: number;
  seed?: number;
  /** Time of the beat that opens the first interval, ms. */
  startMs?: number;
  /**
   * A slow, non-respiratory wander of the mean RR (a non-stationary rate): a sinusoid of this
   * amplitude (ms) and frequency (Hz), added to the mean. 0 for none.
   */
  driftAmplitudeMs?: number;
  driftFrequencyHz?: number;
  /**
   * Rate changes: from `atMs` the mean RR moves by `deltaMs` along a raised-cosine ramp lasting
   * `durationMs` (a steep climb of RR when short and large), and stays there.
   */
  steps?: readonly { atMs: number; deltaMs: number; durationMs: number }[];
}

export interface SyntheticRr {
  /** Time of the beat closing each interval. */
  beatTimesMs: Float64Array;
  rrMs: Float64Array;
}

/**
 * Beats t[k] = t[k−1] + RR[k], RR[k] = level(t[k−1]) + A sin(2π f t[k−1]) + noise: the heart
 * period modulated by a sinusoid sampled at each beat, as respiration modulates it, around a
 * level that is the mean plus the optional drift and rate steps.
 */
export function synthesizeRr(opts: SyntheticRrOptions): SyntheticRr {
  const meanMs = opts.meanMs ?? 1000;
  const amplitude = opts.rsaAmplitudeMs ?? 0;
  const frequency = opts.rsaFrequencyHz ?? 0.1;
  const noise = opts.noiseMs ?? 0;
  const driftAmplitude = opts.driftAmplitudeMs ?? 0;
  const driftFrequency = opts.driftFrequencyHz ?? 0;
  const steps = opts.steps ?? [];
  const level = (t: number): number => {
    let m = meanMs + driftAmplitude * Math.sin((2 * Math.PI * driftFrequency * t) / 1000);
    for (const s of steps) {
      const x = (t - s.atMs) / s.durationMs;
      if (x >= 1) m += s.deltaMs;
      else if (x > 0) m += (s.deltaMs * (1 - Math.cos(Math.PI * x))) / 2;
    }
    return m;
  };
  const random = createRandom(opts.seed ?? 1);
  const times: number[] = [];
  const rr: number[] = [];
  let t = opts.startMs ?? 0;
  const end = t + opts.durationMs;
  for (;;) {
    const r = level(t) + amplitude * Math.sin((2 * Math.PI * frequency * t) / 1000) + noise * gaussian(random);
    if (t + r > end) break;
    t += r;
    times.push(t);
    rr.push(r);
  }
  return { beatTimesMs: Float64Array.from(times), rrMs: Float64Array.from(rr) };
}

/** Beat times of an RR series starting at `startMs`: cumulative sums. */
export function beatTimesFromRr(rrMs: ArrayLike<number>, startMs = 0): Float64Array {
  const out = new Float64Array(rrMs.length);
  let t = startMs;
  for (let i = 0; i < rrMs.length; i++) {
    t += rrMs[i];
    out[i] = t;
  }
  return out;
}

/**
 * A copy of `rrMs` with a premature ectopic beat closing interval k for each k in `positions`:
 * the beat arrives `prematurity[i]` (0..1) of an interval early, RR'[k] = RR[k]·(1 − p), and is
 * followed by a full compensatory pause, RR'[k + 1] = RR[k + 1] + RR[k]·p, so the pair sums to
 * the two normal intervals and every other beat keeps its time. The same two floating-point
 * operations as scripts/reference/make_artifact_fixtures.py, so both sides build the same series.
 */
export function injectEctopicBeats(rrMs: ArrayLike<number>, positions: readonly number[], prematurity: readonly number[]): Float64Array {
  const out = Float64Array.from(rrMs);
  positions.forEach((k, i) => {
    const p = prematurity[i];
    out[k] = rrMs[k] * (1 - p);
    out[k + 1] = rrMs[k + 1] + rrMs[k] * p;
  });
  return out;
}

/**
 * The series with every interval longer than `maxMs` cut out and the rest joined, as the pyHRV
 * authors prepared the NSRDB segments of ../shared/data/rr (intervals > 1.2 s removed): the
 * intervals on either side of a cut become neighbours although they were not. Beat times are
 * rebuilt from the joined intervals (no gap in time is left).
 */
export function joinAfterRemovingLong(rrMs: ArrayLike<number>, maxMs: number, startMs = 0): SyntheticRr {
  const kept: number[] = [];
  for (let i = 0; i < rrMs.length; i++) if (rrMs[i] <= maxMs) kept.push(rrMs[i]);
  const rr = Float64Array.from(kept);
  return { beatTimesMs: beatTimesFromRr(rr, startMs), rrMs: rr };
}
