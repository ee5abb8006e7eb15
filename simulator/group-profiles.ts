// Who takes part in a simulated group session and how each one breathes. Pure and
// deterministic: the same plan (and seed) gives the same participants, and with
// RrGenerator the same beats.
//
// The pacer of a group session (api/mesh-pacer.ts) starts a breath at the session's start
// and every 60 / breathing_rate_bpm s after it, inhaling for the first half. Its phase is
// θp(t) = 2π · rate/60 · (t − start): inhalation while θp mod 2π < π. A participant's
// breathing phase is θ(t) = 2π · f · (t − start) + offset + wander(t) (RrGenerator's
// breathingClock):
//  - the locked share (the first round(lockedShare · N) participants, as
//    pipelines/group/synthetic-group.ts orders them) breathe at the pacer's rate with a
//    small offset of their own (sd 0.25 rad, a 25th of a breath) and a bounded wander
//    (sd 0.3 rad): they follow the pacer;
//  - the others breathe 5–15 % faster or slower than the pacer, from a random phase, with a
//    larger wander (sd 0.5 rad): regular breathers who do not follow it, so their phase
//    against the pacer goes round the circle within minutes.
// RR = 60000 / (HR + drift) − A·sin θ + noise (RSA: the interval shortens while breathing
// in), with RrGenerator's drift, 1/f noise, ectopic beats and contact losses. Locked
// participants are coherent (a narrow peak, coherence 0.75–0.95) with the larger RSA of slow
// paced breathing; the others less so (0.35–0.75).
import { AttuneError } from '../lib/errors.js';
import { Mulberry32, deriveSeed, gaussian } from '../lib/prng.js';
import { simulatedOrgId } from './profiles.js';
import type { RrProfile } from './rr-generator.js';

export interface GroupPlan {
  /** Number of participants, 1..10,000. */
  participants: number;
  /** Share of participants breathing in phase with the pacer, 0..1. */
  lockedShare: number;
  /** The pacer's breathing rate (the session's breathing_rate_bpm), 2..30 per minute. */
  pacerRateBpm: number;
  /** The pacer's start: the group session's start, epoch ms. */
  pacerStartMs: number;
  seed: number;
}

export interface GroupParticipant {
  /** 1-based; participant 1 hosts the session. */
  index: number;
  userId: string;
  orgId: string;
  deviceId: string;
  displayName: string;
  /** Breathes in phase with the pacer. */
  locked: boolean;
  profile: RrProfile;
  /** Seed of this participant's RR stream. */
  seed: number;
  batteryStartPct: number;
}

/** Offsets of the participants' random streams, apart from the device simulator's. */
const profileStream = 3_000_000;
const beatStream = 4_000_000;

export const groupUserId = (index: number) => `sim-group-user-${index}`;
export const groupDeviceId = (index: number) => `sim-group-device-${index}`;

/** The pacer's phase at `t`, rad (not wrapped): inhalation while it is in [0, π) mod 2π, as api/mesh-pacer.ts. */
export function pacerPhaseRad(pacerStartMs: number, pacerRateBpm: number, t: number): number {
  return (2 * Math.PI * pacerRateBpm * (t - pacerStartMs)) / 60_000;
}

/** How many of `participants` are locked to the pacer. */
export const lockedCount = (participants: number, lockedShare: number) => Math.round(lockedShare * participants);

export function validateGroupPlan(plan: GroupPlan): void {
  const problems: { field: string; reason: 'invalid_argument'; message: string }[] = [];
  const check = (field: string, ok: boolean, message: string) => {
    if (!ok) problems.push({ field, reason: 'invalid_argument', message });
  };
  check('participants', Number.isInteger(plan.participants) && plan.participants >= 1 && plan.participants <= 10_000, 'must be an integer 1..10000');
  check('lockedShare', Number.isFinite(plan.lockedShare) && plan.lockedShare >= 0 && plan.lockedShare <= 1, 'must be 0..1');
  check('pacerRateBpm', Number.isFinite(plan.pacerRateBpm) && plan.pacerRateBpm >= 2 && plan.pacerRateBpm <= 30, 'must be 2..30 breaths per minute');
  check('pacerStartMs', Number.isFinite(plan.pacerStartMs), 'must be a finite time');
  if (problems.length > 0) throw new AttuneError('validation_error', 'invalid group plan', problems);
}

export function groupParticipant(index: number, plan: GroupPlan): GroupParticipant {
  const rng = new Mulberry32(deriveSeed(plan.seed, profileStream + index));
  const locked = index <= lockedCount(plan.participants, plan.lockedShare);
  const baseHrBpm = round1(55 + 30 * rng.next());
  let profile: RrProfile;
  if (locked) {
    profile = {
      baseHrBpm,
      breathingRatePerMin: plan.pacerRateBpm,
      coherence: round2(0.75 + 0.2 * rng.next()),
      rsaAmplitudeMs: Math.round(50 + 30 * rng.next()),
      breathingClock: { referenceMs: plan.pacerStartMs, offsetRad: 0.25 * gaussian(rng), wanderRad: 0.3 },
    };
  } else {
    const off = 0.05 + 0.1 * rng.next();
    let sign = rng.next() < 0.5 ? -1 : 1;
    // Stay within the generator's 2..30 breaths a minute.
    if (plan.pacerRateBpm * (1 + sign * off) > 30 || plan.pacerRateBpm * (1 + sign * off) < 2) sign = -sign;
    profile = {
      baseHrBpm,
      breathingRatePerMin: plan.pacerRateBpm * (1 + sign * off),
      coherence: round2(0.35 + 0.4 * rng.next()),
      rsaAmplitudeMs: Math.round(30 + 30 * rng.next()),
      breathingClock: { referenceMs: plan.pacerStartMs, offsetRad: 2 * Math.PI * rng.next(), wanderRad: 0.5 },
    };
  }
  return {
    index,
    userId: groupUserId(index),
    orgId: simulatedOrgId,
    deviceId: groupDeviceId(index),
    displayName: `Sim participant ${index}`,
    locked,
    profile,
    seed: deriveSeed(plan.seed, beatStream + index),
    batteryStartPct: round1(80 + 20 * rng.next()),
  };
}

/** Every participant of the plan, in order (participant 1 first). */
export function groupParticipants(plan: GroupPlan): GroupParticipant[] {
  validateGroupPlan(plan);
  return Array.from({ length: plan.participants }, (_, i) => groupParticipant(i + 1, plan));
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
