// One group window end to end: the contributing participants' coherence windows in, the group's
// coherence (weighted), synchrony (R, z, p, PLV, cross-correlation) and breathing synchrony out.
// Pure: the caller (the group worker) passes the participants that GroupMembership says
// contribute, each with the 4 Hz tachogram of its window and that window's metrics, and a seed
// derived from the group and the window (groupWindowSeed), so a replay gives the same answers.
import { deriveSeed } from '../../lib/prng.js';
import { breathingSyncScore, groupCoherence } from './group-coherence.js';
import { computeSynchrony, type PairCorrelation, type SynchronyPlan } from './synchrony.js';

export interface GroupParticipantWindow {
  participantId: string;
  /** The window's evenly sampled RR series (4 Hz, 256 samples for 64 s). */
  series: ArrayLike<number>;
  /** The participant's coherence score for the window, 0..1; null when invalid. */
  coherence: number | null;
  coverage: number;
  artifactRatio: number;
  /** Peak frequency × 60; null when unknown. */
  breathingRateBpm: number | null;
}

export interface GroupWindowOptions {
  seed: number;
  surrogates?: number;
  /** The session's pacer rate (breathing_rate_bpm); without it no breathing_sync_score. */
  pacerRateBpm?: number | null;
  /** Default: for groups of at most the plan's crossCorrelationMaxN (50). */
  crossCorrelation?: boolean;
}

export interface GroupParticipantResult {
  participantId: string;
  /** your_contribution_weight: share of the group coherence, 0..1, summing to 1. */
  weight: number;
  /** Phase-locking to the others' mean phase, 0..1; null without a phase. */
  locking: number | null;
  breathingSyncScore: number | null;
}

export interface GroupWindowResult {
  participantCount: number;
  coherence: number | null;
  syncR: number | null;
  syncZ: number | null;
  syncP: number | null;
  surrogateCount: number;
  plv: number | null;
  plvExact: boolean;
  phaseConsistency: number | null;
  /** Mean over pairs of the largest |r| within ±10 s; null when not computed. */
  crossCorrelationMeanAbsR: number | null;
  crossCorrelationPairs: (Omit<PairCorrelation, 'j' | 'k'> & { a: string; b: string })[] | null;
  /** Mean breathing_sync_score of the participants with one; null without a pacer. */
  breathingSync: number | null;
  participants: GroupParticipantResult[];
}

/** FNV-1a of the group id, mixed with the window end: the surrogate seed of one group window. */
export function groupWindowSeed(groupId: string, windowEndMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < groupId.length; i++) {
    h ^= groupId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const steps = Math.floor(windowEndMs / 1000);
  return deriveSeed(deriveSeed(h, steps >>> 0), Math.floor(steps / 2 ** 32)) | 0;
}

export function computeGroupWindow(plan: SynchronyPlan, participants: readonly GroupParticipantWindow[], opts: GroupWindowOptions): GroupWindowResult {
  const gc = groupCoherence(participants);
  const sync = computeSynchrony(
    plan,
    participants.map((p) => p.series),
    { seed: opts.seed, surrogates: opts.surrogates, crossCorrelation: opts.crossCorrelation },
  );
  const pacer = opts.pacerRateBpm ?? null;
  let bSum = 0;
  let bCount = 0;
  const out: GroupParticipantResult[] = participants.map((p, i) => {
    const b = pacer === null ? null : breathingSyncScore(p.breathingRateBpm, pacer);
    if (b !== null) {
      bSum += b;
      bCount++;
    }
    const l = sync.locking[i];
    return { participantId: p.participantId, weight: gc.weights[i], locking: Number.isNaN(l) ? null : l, breathingSyncScore: b };
  });
  return {
    participantCount: participants.length,
    coherence: gc.coherence,
    syncR: sync.r,
    syncZ: sync.z,
    syncP: sync.p,
    surrogateCount: sync.surrogateCount,
    plv: sync.plv,
    plvExact: sync.plvExact,
    phaseConsistency: sync.phaseConsistency,
    crossCorrelationMeanAbsR: sync.crossCorrelation?.meanAbsR ?? null,
    crossCorrelationPairs:
      sync.crossCorrelation?.pairs.map((c) => ({ a: participants[c.j].participantId, b: participants[c.k].participantId, r: c.r, lagS: c.lagS })) ?? null,
    breathingSync: bCount > 0 ? bSum / bCount : null,
    participants: out,
  };
}
