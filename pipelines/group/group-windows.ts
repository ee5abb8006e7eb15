// One group's windows in event time: the participants' coherence windows in, group windows out.
// Pure, like pipelines/coherence/session-windows.ts: no I/O, no clock (every time comes from
// the data), no module-level state. The group worker (worker.ts) owns the bus and feeds each
// participant window of the group's partition here, in offset order.
//
// - Observations are kept per window end E (aligned to 5 s, so every participant's window ending
//   at E covers the same 64 s). Two windows of one participant for one E (a user streaming from
//   two devices into a group joined without a device, or a window published twice) keep one, by
//   a rule that does not depend on arrival order: valid before invalid, then the higher
//   coverage, then the smaller session id.
// - When a group window is final (its watermark): E closes when the group's newest window end,
//   or its partition's (advance(): other groups moving on), is allowedLatenessMs (10 s) past E.
//   Event time only, and the same for any arrival order in which no participant's window comes
//   after another's ending allowedLatenessMs or more later: each participant's windows arrive
//   in order (one session's windows are published in order and keyed by the group), so then
//   every window for E is in before E closes. Windows ending at or before the last closed end
//   are late: counted, ignored. A group whose input stops keeps its last windows open until its
//   partition's event time moves on; a partition where nothing moves closes nothing (the
//   coherence worker's rule for idle sessions).
//   Except at the end: when every participant seen has sent the last window of their session
//   (`ends`: the coherence worker marks a session's last window when the session ended), all
//   open ends close; each participant's windows come before their end, so whatever the arrival
//   order, every window is in by then.
//   (A shortcut closing E as soon as every recently active participant had passed it was
//   tried and dropped: whether a returning or new participant's first window made it in then
//   depended on the arrival order.)
// - Closing E: GroupMembership decides who counts (active with a valid window at E; late joiners
//   from their first valid window; inactive after 15 s of event time without a beat), and
//   computeGroupWindow computes coherence (weighted), R, PLV, z, p (surrogates seeded by
//   groupWindowSeed(group, E)), cross-correlation (<= 50) and breathing synchrony against the
//   pacer. Only ends someone sent a window for are closed: a stretch where nobody sends
//   produces no group windows, not empty ones.
import { AttuneError } from '../../lib/errors.js';
import { GroupMembership, type MembershipWindow } from './membership.js';
import { breathingSyncScore } from './group-coherence.js';
import type { SynchronyPlan } from './synchrony.js';
import { computeGroupWindow, groupWindowSeed, type GroupWindowResult } from './window.js';

export const DEFAULT_GROUP_LATENESS_MS = 10_000;

export interface ParticipantWindowInput {
  participantId: string;
  userId: string;
  sessionId: string;
  windowStartMs: number;
  windowEndMs: number;
  valid: boolean;
  coherence: number | null;
  coverage: number;
  artifactRatio: number;
  breathingRateBpm: number | null;
  lastBeatMs: number | null;
  /** The window's 4 Hz RR series (256 samples when valid; may be empty when invalid). */
  series: ArrayLike<number>;
  /** Position on the bus (for the commit offset). */
  offset: bigint;
  /** The participant's session ended with this window (their input ended). */
  ends?: boolean;
}

export interface GroupWindowsOptions {
  groupId: string;
  plan: SynchronyPlan;
  /** The session's pacer rate, breaths per minute (breathing_sync_score); null: none. */
  pacerRateBpm: number | null;
  allowedLatenessMs?: number;
  inactiveAfterMs?: number;
  /** At least 100. Default 100. */
  surrogates?: number;
}

export interface ClosedParticipant {
  participantId: string;
  userId: string;
  counted: boolean;
  coherence: number | null;
  weight: number;
  locking: number | null;
  breathingRateBpm: number | null;
  breathingSync: number | null;
  artifactRatio: number;
  coverage: number;
}

export interface ClosedGroupWindow {
  windowStartMs: number;
  windowEndMs: number;
  membership: MembershipWindow;
  /** Participants active or waiting for their first valid window at E (sending data). */
  presentCount: number;
  result: GroupWindowResult;
  /** Mean |lag| of the pairs' cross-correlation peaks, s; null when not computed. */
  crossCorrelationMeanAbsLagS: number | null;
  /** Every participant with a window ending at E, by id. */
  participants: ClosedParticipant[];
}

/** a replaces b as the one window of a participant at an end (order-free rule, see the header). */
function better(a: ParticipantWindowInput, b: ParticipantWindowInput): boolean {
  if (a.valid !== b.valid) return a.valid;
  if (a.coverage !== b.coverage) return a.coverage > b.coverage;
  return a.sessionId < b.sessionId;
}

export class GroupWindows {
  readonly groupId: string;
  private readonly membership: GroupMembership;
  private readonly latenessMs: number;
  private readonly byEnd = new Map<number, Map<string, ParticipantWindowInput>>();
  private maxEndMs = -Infinity;
  /** Per participant seen: whether their newest window ended their input. */
  private readonly ended = new Map<string, boolean>();
  /** The partition's event time (advance()). */
  private externalEndMs = -Infinity;
  private closed: ClosedGroupWindow[] = [];
  lateCount = 0;
  duplicateCount = 0;

  constructor(private readonly opts: GroupWindowsOptions) {
    this.groupId = opts.groupId;
    this.membership = new GroupMembership({ inactiveAfterMs: opts.inactiveAfterMs });
    this.latenessMs = opts.allowedLatenessMs ?? DEFAULT_GROUP_LATENESS_MS;
    if (!(this.latenessMs >= 0)) {
      throw new AttuneError('validation_error', 'allowedLatenessMs must be >= 0', [{ field: 'allowedLatenessMs', reason: 'invalid_argument', message: `got ${this.latenessMs}` }]);
    }
  }

  get closedThroughMs(): number {
    return this.membership.closedThroughMs;
  }

  get pacerRateBpm(): number | null {
    return this.opts.pacerRateBpm;
  }

  /** Windows still open (ends not yet closed). */
  get openEndCount(): number {
    return this.byEnd.size;
  }

  /** Adds one participant window; closes what it makes final. False when late (ignored). */
  add(w: ParticipantWindowInput): boolean {
    this.ended.set(w.participantId, w.ends === true);
    if (w.windowEndMs <= this.membership.closedThroughMs) {
      this.lateCount++;
      return false;
    }
    let at = this.byEnd.get(w.windowEndMs);
    if (!at) {
      at = new Map();
      this.byEnd.set(w.windowEndMs, at);
    }
    const had = at.get(w.participantId);
    if (had) {
      this.duplicateCount++;
      if (better(w, had)) at.set(w.participantId, { ...w, offset: had.offset < w.offset ? had.offset : w.offset });
    } else at.set(w.participantId, w);
    if (w.windowEndMs > this.maxEndMs) this.maxEndMs = w.windowEndMs;
    this.closeWhatIsFinal(this.allEnded());
    return true;
  }

  /**
   * The event time of the partition the group lives on moved to `eventTimeMs` (the newest window
   * end of any group there): ends allowedLatenessMs behind it close even when this group's own
   * input stopped (its last participants' final windows). Returns whether anything closed.
   */
  advance(eventTimeMs: number): boolean {
    if (!(eventTimeMs > this.externalEndMs)) return false;
    this.externalEndMs = eventTimeMs;
    const before = this.closed.length;
    this.closeWhatIsFinal(false);
    return this.closed.length > before;
  }

  /** Closes every open end (the group's input ended: its session ended, say). */
  closeAll(): ClosedGroupWindow[] {
    this.closeWhatIsFinal(true);
    return this.closeReady();
  }

  /** Group windows closed since the last call, ascending end. */
  closeReady(): ClosedGroupWindow[] {
    const out = this.closed;
    this.closed = [];
    return out;
  }

  /** Oldest bus offset an open window still needs; null when none. */
  retainedMinOffset(): bigint | null {
    let min: bigint | null = null;
    for (const at of this.byEnd.values()) for (const w of at.values()) if (min === null || w.offset < min) min = w.offset;
    return min;
  }

  /** Every participant seen has ended their input: nothing more will come for the open ends. */
  private allEnded(): boolean {
    if (this.ended.size === 0) return false;
    for (const e of this.ended.values()) if (!e) return false;
    return true;
  }

  private isFinal(end: number): boolean {
    return Math.max(this.maxEndMs, this.externalEndMs) - end >= this.latenessMs;
  }

  private closeWhatIsFinal(all: boolean): void {
    if (this.byEnd.size === 0) return;
    const ends = [...this.byEnd.keys()].sort((a, b) => a - b);
    for (const end of ends) {
      if (!all && !this.isFinal(end)) break;
      this.closed.push(this.close(end));
    }
  }

  private close(end: number): ClosedGroupWindow {
    const at = this.byEnd.get(end)!;
    this.byEnd.delete(end);
    const ids = [...at.keys()].sort();
    let windowStartMs = end;
    for (const id of ids) {
      const w = at.get(id)!;
      windowStartMs = Math.min(windowStartMs, w.windowStartMs);
      this.membership.observe({ participantId: id, windowEndMs: end, valid: w.valid, lastBeatMs: w.lastBeatMs });
    }
    const m = this.membership.close(end);
    const inputs = m.contributing.map((id) => {
      const w = at.get(id)!;
      return { participantId: id, series: w.series, coherence: w.coherence, coverage: w.coverage, artifactRatio: w.artifactRatio, breathingRateBpm: w.breathingRateBpm };
    });
    const result = computeGroupWindow(this.opts.plan, inputs, {
      seed: groupWindowSeed(this.groupId, end),
      surrogates: this.opts.surrogates,
      pacerRateBpm: this.opts.pacerRateBpm,
    });
    const byId = new Map(result.participants.map((p) => [p.participantId, p]));
    const pacer = this.opts.pacerRateBpm;
    const participants: ClosedParticipant[] = ids.map((id) => {
      const w = at.get(id)!;
      const r = byId.get(id);
      return {
        participantId: id,
        userId: w.userId,
        counted: r !== undefined,
        coherence: w.coherence,
        weight: r?.weight ?? 0,
        locking: r?.locking ?? null,
        breathingRateBpm: w.breathingRateBpm,
        breathingSync: r ? r.breathingSyncScore : pacer === null ? null : breathingSyncScore(w.breathingRateBpm, pacer),
        artifactRatio: w.artifactRatio,
        coverage: w.coverage,
      };
    });
    const pairs = result.crossCorrelationPairs;
    const lag = pairs && pairs.length > 0 ? pairs.reduce((s, p) => s + Math.abs(p.lagS), 0) / pairs.length : null;
    return {
      windowStartMs,
      windowEndMs: end,
      membership: m,
      presentCount: m.counts.active + m.counts.waiting,
      result,
      crossCorrelationMeanAbsLagS: lag,
      participants,
    };
  }
}
