// Who counts in each group window: a pure state machine in event time (no clock), like
// pipelines/coherence/threshold.ts.
//
// The group worker feeds each participant's coherence windows (aligned ends, 5 s apart) as
// observations and closes group windows in increasing end order. For group window end E, a
// participant is
//   - `waiting`     until they have had a valid window (end ≤ E): a late joiner counts only once
//                   their first valid window exists (a session's first minute is never valid);
//   - `inactive`    when their newest beat seen (in windows ending ≤ E) is ≥ inactiveAfterMs
//                   (15 s) before E, or they have no beat at all: excluded until they return;
//   - `left`        after leave() at or before E, until join() again (readings a device keeps
//                   sending after its user left do not bring them back); join(id, atMs) dates
//                   the return in event time (left in [leave, atMs), back from atMs), so the
//                   windows do not depend on when the return was learnt before their close;
//   - `active`      otherwise.
// A participant *contributes* to window E (its maths: R, PLV, coherence) when active and their
// own window ending at E is valid. An active participant whose window at E is invalid (a burst
// of artifacts) is counted as active but does not contribute.
//
// Observations may come in any order across participants; close(E) uses exactly those with
// window end ≤ E, so the result depends only on the observations, not on when they arrived
// before the close. An observation for a window at or before the last closed end is late: it is
// counted and ignored (the window was final).
import { AttuneError } from '../../lib/errors.js';

export const DEFAULT_INACTIVE_AFTER_MS = 15_000;

export type MemberStatus = 'waiting' | 'active' | 'inactive' | 'left';

export interface ParticipantObservation {
  participantId: string;
  /** End of the participant's coherence window (aligned, like the group's). */
  windowEndMs: number;
  valid: boolean;
  /** Time of the newest beat in that window; null when it has none. */
  lastBeatMs: number | null;
}

export interface StatusChange {
  participantId: string;
  /** Null for a participant first seen in this window. */
  from: MemberStatus | null;
  to: MemberStatus;
}

export interface MembershipWindow {
  windowEndMs: number;
  /** Participants whose valid window at E goes into the maths, sorted by id. */
  contributing: string[];
  counts: Record<MemberStatus, number> & { contributing: number };
  /** Status of every known participant at E, sorted by id. */
  statuses: { participantId: string; status: MemberStatus }[];
  /** Changes since the previous close (e.g. for participant_joined / participant_left). */
  changes: StatusChange[];
}

interface Member {
  pending: ParticipantObservation[];
  lastBeatMs: number | null;
  everValid: boolean;
  leftAtMs: number | null;
  /** A return after leftAtMs, in event time (join(id, atMs)); applied by the first close at or after it. */
  backAtMs: number | null;
  status: MemberStatus | null;
}

export class GroupMembership {
  readonly inactiveAfterMs: number;
  #members = new Map<string, Member>();
  #closedThroughMs = -Infinity;
  #lateObservations = 0;

  constructor(opts: { inactiveAfterMs?: number } = {}) {
    const ms = opts.inactiveAfterMs ?? DEFAULT_INACTIVE_AFTER_MS;
    if (!(ms > 0) || !Number.isFinite(ms)) {
      throw new AttuneError('validation_error', 'inactiveAfterMs must be > 0', [{ field: 'inactiveAfterMs', reason: 'invalid_argument', message: `got ${ms}` }]);
    }
    this.inactiveAfterMs = ms;
  }

  get lateObservations(): number {
    return this.#lateObservations;
  }

  get closedThroughMs(): number {
    return this.#closedThroughMs;
  }

  #member(id: string): Member {
    let m = this.#members.get(id);
    if (!m) {
      m = { pending: [], lastBeatMs: null, everValid: false, leftAtMs: null, backAtMs: null, status: null };
      this.#members.set(id, m);
    }
    return m;
  }

  /** A participant's coherence window. Returns false when late (ignored). */
  observe(o: ParticipantObservation): boolean {
    if (o.windowEndMs <= this.#closedThroughMs) {
      this.#lateObservations++;
      return false;
    }
    const m = this.#member(o.participantId);
    // Kept sorted by window end (in-order appends are O(1)).
    let i = m.pending.length;
    while (i > 0 && m.pending[i - 1].windowEndMs > o.windowEndMs) i--;
    m.pending.splice(i, 0, o);
    return true;
  }

  /** The participant left the session at `atMs` (event time): excluded from windows ending at or after it. */
  leave(participantId: string, atMs: number): void {
    const m = this.#member(participantId);
    m.leftAtMs = atMs;
    m.backAtMs = null;
  }

  /**
   * The participant joined (again). Without `atMs`: a participant who left counts again from
   * the next close. With `atMs` (event time): they are `left` in the windows ending in
   * [their leave, atMs) and back from atMs on, whatever windows are still open when this is
   * called (so the result does not depend on when the return was seen); a return at or before
   * the leave changes nothing. Subject to the rules above either way. Observations alone also
   * register a participant.
   */
  join(participantId: string, atMs?: number): void {
    const m = this.#member(participantId);
    if (atMs === undefined) {
      m.leftAtMs = null;
      m.backAtMs = null;
    } else if (m.leftAtMs !== null && atMs > m.leftAtMs && (m.backAtMs === null || atMs < m.backAtMs)) m.backAtMs = atMs;
  }

  /** The event time of the participant's leave not yet followed by a return, or null. */
  leftAt(participantId: string): number | null {
    const m = this.#members.get(participantId);
    return m && m.backAtMs === null ? m.leftAtMs : null;
  }

  /** Decides group window E (> the previous one). */
  close(windowEndMs: number): MembershipWindow {
    if (!(windowEndMs > this.#closedThroughMs)) {
      throw new AttuneError('validation_error', 'group windows close in increasing end order', [
        { field: 'windowEndMs', reason: 'invalid_argument', message: `${windowEndMs} after ${this.#closedThroughMs}` },
      ]);
    }
    const counts = { waiting: 0, active: 0, inactive: 0, left: 0, contributing: 0 };
    const contributing: string[] = [];
    const statuses: { participantId: string; status: MemberStatus }[] = [];
    const changes: StatusChange[] = [];
    for (const id of [...this.#members.keys()].sort()) {
      const m = this.#members.get(id)!;
      let validAtEnd = false;
      let used = 0;
      for (const o of m.pending) {
        if (o.windowEndMs > windowEndMs) break;
        used++;
        if (o.lastBeatMs !== null && (m.lastBeatMs === null || o.lastBeatMs > m.lastBeatMs)) m.lastBeatMs = o.lastBeatMs;
        if (o.valid) m.everValid = true;
        if (o.windowEndMs === windowEndMs && o.valid) validAtEnd = true;
      }
      if (used > 0) m.pending.splice(0, used);
      if (m.backAtMs !== null && m.backAtMs <= windowEndMs) {
        m.leftAtMs = null;
        m.backAtMs = null;
      }
      let status: MemberStatus;
      if (m.leftAtMs !== null && m.leftAtMs <= windowEndMs) status = 'left';
      else if (!m.everValid) status = 'waiting';
      else if (m.lastBeatMs === null || windowEndMs - m.lastBeatMs >= this.inactiveAfterMs) status = 'inactive';
      else status = 'active';
      counts[status]++;
      statuses.push({ participantId: id, status });
      if (status === 'active' && validAtEnd) {
        contributing.push(id);
        counts.contributing++;
      }
      if (status !== m.status) changes.push({ participantId: id, from: m.status, to: status });
      m.status = status;
    }
    this.#closedThroughMs = windowEndMs;
    return { windowEndMs, contributing, counts, statuses, changes };
  }
}
