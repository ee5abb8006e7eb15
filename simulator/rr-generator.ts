// RR intervals of one simulated person, beat by beat in event time.
//
// Model: a sinus rhythm whose instantaneous interval is
//   rr(t) = 60000 / (baseHr + drift(t))  +  rsa(t)  +  noise(t)
// evaluated at each beat time t (the simple alternative to integral pulse frequency
// modulation; for heart rates well above twice the breathing rate the two agree).
//   - drift: an Ornstein–Uhlenbeck (bounded random-walk) heart rate offset that moves
//     over minutes;
//   - rsa: respiratory sinus arrhythmia, a sinusoid at the breathing frequency;
//   - noise: broadband, roughly 1/f (a sum of OU processes with time constants a
//     decade apart, each contributing a Lorentzian) plus white.
// `coherence` c in [0, 1] splits the variability power: the sinusoid gets c of it, the
// noise 1 - c, and the breathing phase wanders by an amount proportional to 1 - c (an
// irregular breather). So at high c the 0.04–0.26 Hz spectrum of a 64 s window is
// dominated by one narrow peak at the breathing rate, at low c it is spread out.
// On top of the sinus rhythm: ectopic beats (a premature beat followed by a full
// compensatory pause, so the sinus timeline is undisturbed) and gaps (the strap loses
// contact: beats inside the gap are never reported; the first beat after it carries the
// interval to its unseen predecessor, as a real device would).
import { AttuneError } from '../lib/errors.js';
import { exponential, gaussian, type Prng } from '../lib/prng.js';

export interface RrProfile {
  /** Mean heart rate, beats per minute. */
  baseHrBpm: number;
  /** Breathing rate, breaths per minute; the RSA peak sits at this frequency / 60 Hz. */
  breathingRatePerMin: number;
  /** 0..1: the share of the variability power that is clean RSA at the breathing rate. */
  coherence: number;
  /** Amplitude (ms) of the RSA sinusoid at coherence 1; also sets the noise scale. Default 60. */
  rsaAmplitudeMs?: number;
  /** Standard deviation (bpm) of the slow heart-rate drift. Default 2. */
  driftBpm?: number;
  /** Time constant (s) of the drift: how many seconds it takes to wander. Default 120. */
  driftTimeConstantS?: number;
  /** Probability per sinus beat of a premature (ectopic) beat. Default 0.003. */
  ectopicRate?: number;
  /** Expected number of contact losses per minute. Default 0.1. */
  gapsPerMinute?: number;
  /** Length of a contact loss, drawn uniformly from [min, max] ms. Default [2000, 8000]. */
  gapDurationMs?: readonly [number, number];
  /**
   * Breathing that follows a clock (a group session's pacer) instead of a free-running phase:
   * the breathing phase is θ(t) = 2π·f·(t − referenceMs)/1000 + offsetRad + w(t), f the
   * breathing rate, w a bounded wander (an Ornstein–Uhlenbeck process, sd `wanderRad`, time
   * constant `wanderTimeConstantS`, default 20 s) in place of the free phase's random walk.
   * θ mod 2π in [0, π) is the inhalation, as api/mesh-pacer.ts has it, and the interval
   * shortens while breathing in (RSA): the sinusoid is −A·sin θ. With f the pacer's rate and
   * offsetRad 0 the person breathes with the pacer.
   */
  breathingClock?: { referenceMs: number; offsetRad: number; wanderRad: number; wanderTimeConstantS?: number };
}

export type BeatKind = 'normal' | 'premature' | 'compensatory';

export interface Beat {
  /** Event time of the beat, ms (integer), in the generator's time base. */
  timeMs: number;
  /** Interval from the previous heartbeat to this one, ms (integer). */
  rrMs: number;
  kind: BeatKind;
  /** True for the first beat reported after a contact loss: timeMs − rrMs is not the previous reported beat. */
  afterGap: boolean;
}

/** Physiological limits: intervals outside them are clamped (200 bpm and 30 bpm). */
const minRrMs = 300;
const maxRrMs = 2000;
/** Time constants (s) of the 1/f-ish noise components, and the white share of the noise power. */
const pinkTimeConstantsS = [1.5, 5, 15, 50];
const whiteShare = 0.2;
/** Breathing-phase diffusion (rad/√s) at coherence 0. */
const phaseDiffusion = 0.35;

interface Resolved {
  baseHrBpm: number;
  breathingHz: number;
  coherence: number;
  rsaAmplitudeMs: number;
  driftBpm: number;
  driftTimeConstantS: number;
  ectopicRate: number;
  gapsPerMinute: number;
  gapDurationMs: readonly [number, number];
  breathingClock: { referenceMs: number; offsetRad: number; wanderRad: number; wanderTimeConstantS: number } | null;
}

function resolve(p: RrProfile): Resolved {
  const r: Resolved = {
    baseHrBpm: p.baseHrBpm,
    breathingHz: p.breathingRatePerMin / 60,
    coherence: p.coherence,
    rsaAmplitudeMs: p.rsaAmplitudeMs ?? 60,
    driftBpm: p.driftBpm ?? 2,
    driftTimeConstantS: p.driftTimeConstantS ?? 120,
    ectopicRate: p.ectopicRate ?? 0.003,
    gapsPerMinute: p.gapsPerMinute ?? 0.1,
    gapDurationMs: p.gapDurationMs ?? [2000, 8000],
    breathingClock: p.breathingClock ? { wanderTimeConstantS: 20, ...p.breathingClock } : null,
  };
  const problems: { field: string; reason: 'invalid_argument'; message: string }[] = [];
  const check = (field: string, ok: boolean, message: string) => {
    if (!ok) problems.push({ field, reason: 'invalid_argument', message });
  };
  const finite = Number.isFinite;
  check('baseHrBpm', finite(r.baseHrBpm) && r.baseHrBpm >= 30 && r.baseHrBpm <= 200, 'must be 30..200 bpm');
  check('breathingRatePerMin', finite(p.breathingRatePerMin) && p.breathingRatePerMin >= 2 && p.breathingRatePerMin <= 30, 'must be 2..30 per minute');
  check('coherence', finite(r.coherence) && r.coherence >= 0 && r.coherence <= 1, 'must be 0..1');
  check('rsaAmplitudeMs', finite(r.rsaAmplitudeMs) && r.rsaAmplitudeMs >= 0 && r.rsaAmplitudeMs <= 300, 'must be 0..300 ms');
  check('driftBpm', finite(r.driftBpm) && r.driftBpm >= 0, 'must be >= 0');
  check('driftTimeConstantS', finite(r.driftTimeConstantS) && r.driftTimeConstantS > 0, 'must be > 0');
  check('ectopicRate', finite(r.ectopicRate) && r.ectopicRate >= 0 && r.ectopicRate <= 0.2, 'must be 0..0.2');
  check('gapsPerMinute', finite(r.gapsPerMinute) && r.gapsPerMinute >= 0, 'must be >= 0');
  const [gapMin, gapMax] = r.gapDurationMs;
  check('gapDurationMs', finite(gapMin) && finite(gapMax) && gapMin > 0 && gapMax >= gapMin, 'must be [min, max] with 0 < min <= max');
  const clock = r.breathingClock;
  if (clock) {
    check('breathingClock', finite(clock.referenceMs) && finite(clock.offsetRad), 'referenceMs and offsetRad must be finite');
    check('breathingClock', finite(clock.wanderRad) && clock.wanderRad >= 0 && clock.wanderRad <= Math.PI, 'wanderRad must be 0..π');
    check('breathingClock', finite(clock.wanderTimeConstantS) && clock.wanderTimeConstantS > 0, 'wanderTimeConstantS must be > 0');
  }
  if (problems.length > 0) {
    throw new AttuneError('validation_error', 'invalid RR generator profile', problems);
  }
  return r;
}

/** An Ornstein–Uhlenbeck process with stationary standard deviation `sd`, stepped exactly for any dt. */
class OrnsteinUhlenbeck {
  value: number;
  constructor(
    private readonly sd: number,
    private readonly timeConstantS: number,
    rng: Prng,
  ) {
    this.value = sd * gaussian(rng); // start in the stationary distribution
  }
  step(dtS: number, rng: Prng): number {
    const decay = Math.exp(-dtS / this.timeConstantS);
    this.value = this.value * decay + this.sd * Math.sqrt(1 - decay * decay) * gaussian(rng);
    return this.value;
  }
}

export class RrGenerator {
  private readonly p: Resolved;
  private readonly rng: Prng;
  private readonly drift: OrnsteinUhlenbeck;
  private readonly pink: OrnsteinUhlenbeck[];
  private readonly whiteSd: number;
  private readonly rsaAmplitudeMs: number;
  private readonly phaseNoise: number;
  /** Time of the last sinus beat (reported or not), ms. */
  private sinusTimeMs: number;
  /** The last sinus interval, ms: the dt for stepping the noise processes. */
  private lastRrMs: number;
  private phase: number;
  /** The wander of a clocked breathing phase (null: free-running phase). */
  private readonly wander: OrnsteinUhlenbeck | null;
  private nextGapStartMs: number;
  private gapEndMs = -Infinity;
  private inGapSinceLastReported = false;
  private readonly queue: Beat[] = [];

  /**
   * @param profile  the simulated person
   * @param rng      the only source of randomness: the same seed gives the same stream
   * @param startTimeMs  event time of the (unreported) beat before the first one
   */
  constructor(profile: RrProfile, rng: Prng, startTimeMs = 0) {
    this.p = resolve(profile);
    this.rng = rng;
    const { coherence, rsaAmplitudeMs } = this.p;
    // Power split: sinusoid A²c/2, noise A²(1−c)/2.
    this.rsaAmplitudeMs = rsaAmplitudeMs * Math.sqrt(coherence);
    const noiseSd = rsaAmplitudeMs * Math.sqrt((1 - coherence) / 2);
    const pinkSd = noiseSd * Math.sqrt((1 - whiteShare) / pinkTimeConstantsS.length);
    this.whiteSd = noiseSd * Math.sqrt(whiteShare);
    this.pink = pinkTimeConstantsS.map((tau) => new OrnsteinUhlenbeck(pinkSd, tau, rng));
    this.drift = new OrnsteinUhlenbeck(this.p.driftBpm, this.p.driftTimeConstantS, rng);
    this.phaseNoise = phaseDiffusion * (1 - coherence);
    this.phase = 2 * Math.PI * rng.next();
    this.sinusTimeMs = startTimeMs;
    this.lastRrMs = 60000 / this.p.baseHrBpm;
    this.nextGapStartMs = this.scheduleGap(startTimeMs);
    // Drawn last, and only for clocked breathing: a free-running profile's stream is the same as before.
    const clock = this.p.breathingClock;
    this.wander = clock ? new OrnsteinUhlenbeck(clock.wanderRad, clock.wanderTimeConstantS, rng) : null;
  }

  /** The next reported beat. The stream never ends. */
  next(): Beat {
    while (this.queue.length === 0) this.advanceSinus();
    return this.queue.shift()!;
  }

  /** Event time of the beat `next()` would return, without consuming it. */
  peekTimeMs(): number {
    while (this.queue.length === 0) this.advanceSinus();
    return this.queue[0].timeMs;
  }

  /** All reported beats with timeMs <= endTimeMs that have not been returned yet. */
  beatsUntil(endTimeMs: number): Beat[] {
    const out: Beat[] = [];
    while (this.peekTimeMs() <= endTimeMs) out.push(this.next());
    return out;
  }

  private scheduleGap(afterMs: number): number {
    if (this.p.gapsPerMinute === 0) return Infinity;
    return afterMs + exponential(this.rng, 60000 / this.p.gapsPerMinute);
  }

  /** The sinus interval that ends the beat after the one at sinusTimeMs, and steps the state. */
  private sinusInterval(): number {
    const dtS = this.lastRrMs / 1000;
    const { baseHrBpm, breathingHz } = this.p;
    const hr = Math.max(30, baseHrBpm + this.drift.step(dtS, this.rng));
    let rsa: number;
    const clock = this.p.breathingClock;
    if (clock && this.wander) {
      // The phase at (about) the end of this interval, as the free-running phase below is.
      const atMs = this.sinusTimeMs + this.lastRrMs;
      const theta = (2 * Math.PI * breathingHz * (atMs - clock.referenceMs)) / 1000 + clock.offsetRad + this.wander.step(dtS, this.rng);
      rsa = -this.rsaAmplitudeMs * Math.sin(theta);
    } else {
      this.phase += 2 * Math.PI * breathingHz * dtS + this.phaseNoise * Math.sqrt(dtS) * gaussian(this.rng);
      rsa = this.rsaAmplitudeMs * Math.sin(this.phase);
    }
    let noise = this.whiteSd * gaussian(this.rng);
    for (const component of this.pink) noise += component.step(dtS, this.rng);
    const rr = 60000 / hr + rsa + noise;
    const rounded = Math.round(Math.min(maxRrMs, Math.max(minRrMs, rr)));
    this.lastRrMs = rounded;
    return rounded;
  }

  /** Generates one sinus beat (or an ectopic pair spanning two) and queues what the device reports. */
  private advanceSinus(): void {
    const previous = this.sinusTimeMs;
    const rr1 = this.sinusInterval();
    if (this.rng.next() < this.p.ectopicRate) {
      // Premature beat at 55–75 % of the interval; the sinus beat it pre-empts is not
      // conducted, and the next one ends the compensatory pause: premature + pause = rr1 + rr2.
      const rr2 = this.sinusInterval();
      const prematureRr = Math.max(minRrMs, Math.round(rr1 * (0.55 + 0.2 * this.rng.next())));
      this.report(previous + prematureRr, prematureRr, 'premature');
      this.report(previous + rr1 + rr2, rr1 + rr2 - prematureRr, 'compensatory');
      this.sinusTimeMs = previous + rr1 + rr2;
    } else {
      this.report(previous + rr1, rr1, 'normal');
      this.sinusTimeMs = previous + rr1;
    }
  }

  private report(timeMs: number, rrMs: number, kind: BeatKind): void {
    if (timeMs >= this.nextGapStartMs) {
      const [min, max] = this.p.gapDurationMs;
      this.gapEndMs = this.nextGapStartMs + min + (max - min) * this.rng.next();
      this.nextGapStartMs = this.scheduleGap(this.gapEndMs);
    }
    if (timeMs < this.gapEndMs) {
      this.inGapSinceLastReported = true;
      return;
    }
    this.queue.push({ timeMs, rrMs, kind, afterGap: this.inGapSinceLastReported });
    this.inGapSinceLastReported = false;
  }
}
