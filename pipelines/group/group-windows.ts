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
// - When a group window is final: by the event-time progress of every participant present, not
//   by the group's newest one. Each participant's session is a stream (participant and session
//   id: one session's windows are published in order by its coherence worker and keyed by the
//   group, so they reach this partition in order). E closes when
//     (a) every stream seen has got to E: it sent its window for E (valid or not), or a later
//         one (so it has none for E), or it ended (its session's last window, `ends`; its
//         participation end marker, endInput(): a leave or the group session's end), or it is
//         silent: not ended and its newest window ends silentAfterMs (120 s) or more before the
//         group's event time (see below); and
//     (b) the group's newest non-flushed window end, or its partition's (advance(): other groups
//         moving on), is allowedLatenessMs (10 s) past E (or early close's rule, below).
//   (a) makes the windows a function of the input: a participant whose windows come 30 s
//   behind the others' (a phone uploading in batches, a paused upload, the backlog after an
//   outage resent device by device) is waited for, and every window for E is in when E closes,
//   whatever the arrival order. (b) bounds only what (a) cannot see: a participant the group has
//   not heard from yet (a joiner, whose first window must come within the lateness of the
//   others' to count from its first end; after that they are waited for). Windows ending at or
//   before the last closed end are late: counted, ignored.
//   A stream that goes silent without ending (a phone switched off, an app killed) holds the
//   group's windows after its newest one until its session ends (the coherence worker's end
//   marker or its idle end reach here as the session's last window, `ends`) or until it is
//   silentAfterMs behind the group's (or partition's) event time. The coherence worker's idle
//   end alone does not bound it: it moves with its own partition's event time, and a session
//   alone on a quiet partition is never idle-ended. Past silentAfterMs the arrival decides again
//   (a stream that much behind is treated as gone; its windows, if they come, are late).
//   A restart must know every live stream again: retainedMinOffset() keeps the newest record of
//   each stream neither ended nor silent (with nothing open too), so the replay reads it.
//   A group whose input stops keeps its last windows open until its partition's event time moves
//   on (and its streams got there); a partition where nothing moves closes nothing (the
//   coherence worker's rule for idle sessions).
//   Except at the end: when every stream seen has ended (`ends`: the coherence worker marks a
//   session's last window when the session ended; or its end marker), all open ends close; each
//   stream's windows come before its end, so whatever the arrival order, every window is in by
//   then.
//   A session's end closes its last windows at once, not after the lateness (`flushed`: up to
//   the coherence lateness plus its 5 s look-ahead ahead of where the participant's windows
//   would be): taken as event time, one participant's end closed group windows whose other
//   participants' windows were still held by their own lateness, and those came late (two
//   participants in lockstep ending 3 s apart: the second dropped from two group windows; (a)
//   now holds those windows too). A flushed window is data but not event time: it never moves
//   the group's newest end.
//   Early close (`earlyClose`, off by default in the worker): (b) is also met as soon as every
//   participant who could still send a window counted at E has sent one ending at or after E
//   (or ended); (a) applies all the same. Who that is follows from the data alone, under the
//   lateness rule's arrival assumption for participants not yet heard of (a window at e is in
//   before any window ending at e + allowedLatenessMs or later):
//     - a participant's windows form runs: a window more than runGapMs (15 s) after their
//       previous one, or after their input ended, starts a new run. The first
//       allowedLatenessMs of a run (its warm-up: the windows ending before start + lateness) are
//       dropped, never counted nor observed, whether they came before E closed or not: those
//       are the only windows whose arrival the other participants' data cannot bound (a new or
//       returning participant's), which is why a plain "everyone active has passed E" rule
//       depended on the arrival order and this one does not;
//     - a participant in a run that started at or before E - lateness, not ended, whose newest
//       window ends before E but after E - lateness - runGapMs, may still send windows counted
//       at E: E waits for them (as (a) does for every stream, ended or silent aside);
//     - anyone else can only still send windows ending after E - lateness that start a new run
//       (dropped at E) or none.
//   So an early-closed E holds exactly the windows the lateness rule would give it. Live, a group
//   window is then out as soon as its last participant's window is (the coherence worker's
//   lateness), about 10 s sooner.
// - Input ends (endInput(): the coherence fan-out's marker when a participant left the group or
//   the group session ended, published after their last window for it): the participant counts
//   as ended (as their session's last window does) and, when they left, is `left` from their
//   leave's event time (with early close, from the marker's end plus the lateness when the
//   marker itself opens a run, so that it too cannot arrive after a window it changes closed),
//   until their first window after it (they joined again): back from that window's end.
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
/** A participant's window this long (or more) after their previous one starts a new run (early close). */
export const DEFAULT_RUN_GAP_MS = 15_000;
/**
 * A participant's stream whose newest window ends this long (or more) before the group's event
 * time no longer holds the group's windows (the bound on a participant gone silent without an
 * end; see the header).
 */
export const DEFAULT_GROUP_SILENT_AFTER_MS = 120_000;

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
  /**
   * Closed by the participant's session end, not by its watermark (PARTICIPANT_FLUSHED_HEADER):
   * data, but not event time, so it does not move the group's watermark (see the header).
   */
  flushed?: boolean;
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
  /** Close a window as soon as everyone who could still count in it has passed it (see the header). Default false. */
  earlyClose?: boolean;
  /** Early close: a gap longer than this between a participant's windows starts a new run. Default 15,000 ms. */
  runGapMs?: number;
  /**
   * A participant's stream (one session's windows) that has not ended and whose newest window
   * ends this far or more behind the group's event time stops holding the group's windows.
   * Default 120,000 ms; taken as allowedLatenessMs when below it.
   */
  silentAfterMs?: number;
}

/** The end of a participant's input to the group (the coherence fan-out's marker record). */
export interface ParticipantInputEnd {
  participantId: string;
  /** The aligned end of the first window of theirs past the end (the marker's window_end). */
  windowEndMs: number;
  /** When the participation ended (left_at, or the group session's ended_at), ms. */
  atMs: number;
  /** True: they left the group (status `left`); false: the group session ended. */
  left: boolean;
  offset: bigint;
  /** Published with a window closed by the participant's session end: not event time. */
  flushed?: boolean;
  /** The session whose window carried the marker (its stream ends); absent: every stream of the participant. */
  sessionId?: string;
}

/**
 * One session's windows for the group (a participant streaming from one device): the coherence
 * worker publishes them in order, so its newest window end is how far it has got in event time.
 */
interface ParticipantStream {
  /** Newest window (or end marker) end seen. */
  newestEndMs: number;
  /** Its newest record ended it (the session's last window, or a participation end marker). */
  ended: boolean;
  /** The bus offset of its newest record (a restart replays from it to know the stream again). */
  offset: bigint;
}

interface ParticipantInput {
  /** Newest window (or end marker) end seen. */
  newestEndMs: number;
  /** Start of the run the newest window belongs to. */
  runStartMs: number;
  /** Their newest record ended their input. */
  ended: boolean;
  /** Recent windows' ends and offsets (early close: what a restart must replay to rebuild the runs). */
  recent: Array<{ endMs: number; offset: bigint }>;
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
export function better(a: Omit<ParticipantWindowInput, 'offset'>, b: Omit<ParticipantWindowInput, 'offset'>): boolean {
  if (a.valid !== b.valid) return a.valid;
  if (a.coverage !== b.coverage) return a.coverage > b.coverage;
  return a.sessionId < b.sessionId;
}

export class GroupWindows {
  readonly groupId: string;
  private readonly membership: GroupMembership;
  private readonly latenessMs: number;
  private readonly byEnd = new Map<number, Map<string, ParticipantWindowInput>>();
  /** The group's event time: the newest window end that is not flushed (the lateness rule's). */
  private maxEndMs = -Infinity;
  /** The newest window end of any kind (newestInputMs). */
  private newestSeenMs = -Infinity;
  /** Per participant seen: runs, and whether their newest window ended their input. */
  private readonly inputs = new Map<string, ParticipantInput>();
  /** Per participant and session seen (participantId NUL sessionId): how far it has got (the finality rule). */
  private readonly streams = new Map<string, ParticipantStream>();
  /** Streams not ended, by newest end (how many at each): what isFinal checks, without a pass over every stream. */
  private readonly pendingByEnd = new Map<number, number>();
  /** Streams not ended. */
  private notEnded = 0;
  private readonly silentAfterMs: number;
  private readonly earlyClose: boolean;
  private readonly runGapMs: number;
  /** The partition's event time (advance()). */
  private externalEndMs = -Infinity;
  private closed: ClosedGroupWindow[] = [];
  lateCount = 0;
  duplicateCount = 0;
  /** Early close: windows dropped as the warm-up of a run. */
  warmupCount = 0;

  constructor(private readonly opts: GroupWindowsOptions) {
    this.groupId = opts.groupId;
    this.membership = new GroupMembership({ inactiveAfterMs: opts.inactiveAfterMs });
    this.latenessMs = opts.allowedLatenessMs ?? DEFAULT_GROUP_LATENESS_MS;
    this.earlyClose = opts.earlyClose === true;
    this.runGapMs = opts.runGapMs ?? DEFAULT_RUN_GAP_MS;
    // Never below the lateness: a stream that far behind would not have held the window before either.
    this.silentAfterMs = Math.max(opts.silentAfterMs ?? DEFAULT_GROUP_SILENT_AFTER_MS, this.latenessMs);
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

  /**
   * Newest window (or end marker) end added, warm-ups and flushed windows included (whether
   * the group is still being fed: its worker lets go of a group idle for an hour of event
   * time); -Infinity before any. Not the watermark, which flushed windows do not move.
   */
  get newestInputMs(): number {
    return this.newestSeenMs;
  }

  /** Windows still open (ends not yet closed). */
  get openEndCount(): number {
    return this.byEnd.size;
  }

  /** Adds one participant window; closes what it makes final. False when late (ignored). */
  add(w: ParticipantWindowInput): boolean {
    if (w.windowEndMs > this.newestSeenMs) this.newestSeenMs = w.windowEndMs;
    this.trackStream(w.participantId, w.sessionId, w.windowEndMs, w.offset, w.ends === true);
    const p = this.track(w.participantId, w.windowEndMs, w.offset);
    p.ended = w.ends === true;
    if (this.earlyClose && w.windowEndMs < p.runStartMs + this.latenessMs) {
      // The warm-up of a run: dropped whenever it comes (see the header).
      this.warmupCount++;
      if (!w.flushed && w.windowEndMs > this.maxEndMs) this.maxEndMs = w.windowEndMs;
      this.closeWhatIsFinal(this.allEnded());
      return true;
    }
    if (w.windowEndMs <= this.membership.closedThroughMs) {
      this.lateCount++;
      return false;
    }
    // A window after the participant's leave: the coherence fan-out publishes a participant's
    // windows only while they belong to the group (joined_at <= E <= left_at), so this one comes
    // from their joining again. Without this they stayed `left` for good (GroupMembership's
    // leave has no end but a join, which nothing called): someone who left and came back was
    // never counted again. Dated at the window's end, so open windows before it stay `left`
    // whatever the arrival order.
    const leftAt = this.membership.leftAt(w.participantId);
    if (leftAt !== null && w.windowEndMs > leftAt) this.membership.join(w.participantId, w.windowEndMs);
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
    if (!w.flushed && w.windowEndMs > this.maxEndMs) this.maxEndMs = w.windowEndMs;
    this.closeWhatIsFinal(this.allEnded());
    return true;
  }

  /**
   * The participant's input to the group ended (they left, or the group session ended): the
   * coherence fan-out's marker, which comes after their last window for the group. Closes what
   * that makes final (every participant ended: all open ends).
   */
  endInput(e: ParticipantInputEnd): void {
    if (e.windowEndMs > this.newestSeenMs) this.newestSeenMs = e.windowEndMs;
    const prev = this.inputs.get(e.participantId);
    const inRun = prev !== undefined && !prev.ended && e.windowEndMs - prev.newestEndMs <= this.runGapMs;
    const p = this.track(e.participantId, e.windowEndMs, e.offset);
    p.ended = true;
    if (e.sessionId !== undefined) this.trackStream(e.participantId, e.sessionId, e.windowEndMs, e.offset, true);
    else {
      const prefix = `${e.participantId}\u0000`;
      for (const [key, st] of this.streams) {
        if (!key.startsWith(prefix) || e.windowEndMs < st.newestEndMs) continue;
        this.unpend(st);
        st.ended = true;
      }
      this.trackStream(e.participantId, '', e.windowEndMs, e.offset, true);
    }
    if (e.left) this.membership.leave(e.participantId, this.earlyClose && !inRun ? Math.max(e.atMs, e.windowEndMs + this.latenessMs) : e.atMs);
    if (!e.flushed && e.windowEndMs > this.maxEndMs) this.maxEndMs = e.windowEndMs;
    this.closeWhatIsFinal(this.allEnded());
  }

  /**
   * Records a session's window (or end marker) at `endMs` in its stream: its newest record says
   * how far it has got and whether it ended (an older one, a record published again, changes
   * neither).
   */
  private trackStream(participantId: string, sessionId: string, endMs: number, offset: bigint, ended: boolean): void {
    const key = `${participantId}\u0000${sessionId}`;
    let s = this.streams.get(key);
    if (!s) {
      s = { newestEndMs: endMs, ended, offset };
      this.streams.set(key, s);
      this.pend(s);
      return;
    }
    if (endMs < s.newestEndMs) return;
    this.unpend(s);
    // A record at the same end as the one that ended it (published again) does not reopen it.
    s.ended = ended || (endMs === s.newestEndMs && s.ended);
    s.newestEndMs = endMs;
    s.offset = offset;
    this.pend(s);
  }

  private pend(s: ParticipantStream): void {
    if (s.ended) return;
    this.notEnded++;
    this.pendingByEnd.set(s.newestEndMs, (this.pendingByEnd.get(s.newestEndMs) ?? 0) + 1);
  }

  private unpend(s: ParticipantStream): void {
    if (s.ended) return;
    this.notEnded--;
    // An end isFinal let go of (silent: it never holds again) may be gone already.
    const n = this.pendingByEnd.get(s.newestEndMs);
    if (n === undefined) return;
    if (n <= 1) this.pendingByEnd.delete(s.newestEndMs);
    else this.pendingByEnd.set(s.newestEndMs, n - 1);
  }

  /** The group's event time: its newest window end that is not flushed, or its partition's. */
  private eventTimeMs(): number {
    return Math.max(this.maxEndMs, this.externalEndMs);
  }

  /** A stream that may still send windows the group must wait for: not ended, not silent. */
  private live(s: ParticipantStream, now: number): boolean {
    return !s.ended && now - s.newestEndMs < this.silentAfterMs;
  }

  /** Records a participant's window (or end marker) at `endMs` in their runs. */
  private track(id: string, endMs: number, offset: bigint): ParticipantInput {
    let p = this.inputs.get(id);
    if (!p) {
      p = { newestEndMs: -Infinity, runStartMs: endMs, ended: false, recent: [] };
      this.inputs.set(id, p);
    }
    if (endMs > p.newestEndMs) {
      if (p.ended || endMs - p.newestEndMs > this.runGapMs) p.runStartMs = endMs;
      p.newestEndMs = endMs;
    }
    if (this.earlyClose) {
      p.recent.push({ endMs, offset });
      // Open ends are after the last closed one: older entries are never retained.
      const horizon = this.membership.closedThroughMs - this.replayHorizonMs();
      while (p.recent.length > 0 && p.recent[0].endMs < horizon) p.recent.shift();
    }
    return p;
  }

  /**
   * Early close: how far before the first open end a restart must replay each participant's
   * windows to rebuild their runs (a run's warm-up ends within a gap plus the lateness of its
   * first replayed window).
   */
  private replayHorizonMs(): number {
    return this.runGapMs + this.latenessMs + 5000;
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

  /**
   * Oldest bus offset the group still needs: its open windows' records, and the newest record
   * of every stream that has neither ended nor gone silent (a restart must know the stream again
   * to wait for it, even with nothing open); null when none.
   */
  retainedMinOffset(): bigint | null {
    let min: bigint | null = null;
    let firstOpen = Infinity;
    for (const [end, at] of this.byEnd) {
      if (end < firstOpen) firstOpen = end;
      for (const w of at.values()) if (min === null || w.offset < min) min = w.offset;
    }
    if (min !== null && this.earlyClose) {
      // Early close: also what rebuilds every participant's run at the open ends.
      const horizon = firstOpen - this.replayHorizonMs();
      for (const p of this.inputs.values()) for (const r of p.recent) if (r.endMs >= horizon && r.offset < min) min = r.offset;
    }
    const now = this.eventTimeMs();
    for (const s of this.streams.values()) if (this.live(s, now) && (min === null || s.offset < min)) min = s.offset;
    return min;
  }

  /** Every stream seen has ended: nothing more will come for the open ends. */
  private allEnded(): boolean {
    return this.streams.size > 0 && this.notEnded === 0;
  }

  private isFinal(end: number): boolean {
    const now = this.eventTimeMs();
    // Every stream present at E has got to E (sent its window there, valid or not, or a later
    // one: its windows come in order), or ended, or gone silent (see the header).
    for (const e of this.pendingByEnd.keys()) {
      if (now - e >= this.silentAfterMs) {
        // Silent from here on (the group's event time never goes back): let it go.
        this.pendingByEnd.delete(e);
        continue;
      }
      if (e < end) return false;
    }
    if (now - end >= this.latenessMs) return true;
    if (!this.earlyClose) return false;
    // Early close (see the header): nobody who could still send a window counted at E.
    for (const p of this.inputs.values()) {
      if (p.ended || p.newestEndMs >= end) continue;
      if (p.runStartMs > end - this.latenessMs) continue; // in warm-up at E: dropped there
      if (p.newestEndMs > end - this.latenessMs - this.runGapMs) return false;
    }
    return true;
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
