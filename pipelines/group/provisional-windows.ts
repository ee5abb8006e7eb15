// One group's provisional windows, for live display only: the participants' provisional
// coherence windows in (the coherence worker's read of a window before its allowed lateness
// has run out), provisional group windows out, about 15 s before the final ones.
//
// Why: a final group window waits for its participants' final windows (their 10 s lateness
// and 5 s lookahead) and then for the group's own lateness (10 s), so live it comes 25-30 s
// after its end. A dashboard showing a group's coherence wants it within seconds, as the
// coherence stream's provisional windows give one person's.
//
// Pure, like group-windows.ts: no I/O, no clock. What it gives depends on arrival timing, by
// design (provisional); nothing it computes is stored or drives an event, and every window it
// gives has a final one, computed by GroupWindows from the final participant windows, which
// is what the tables, the API's history and manifestation_event use.
//
// The rule: a window end E is computed once, when every participant who sent a provisional
// window within activeSpanMs of the group's newest one has sent one at or after E, or when
// the group's newest provisional end is allowedLatenessMs past E (someone stopped sending).
// In the group's first activeSpanMs, when who is in it is not known yet, E also waits for a
// window past it. A participant whose first window comes after E was given counts from the
// next end. What this cannot know, by design (the final windows know it):
//  - a participant with no provisional window at E (their device uploads less often than every
//    5 s, so the coherence worker reads only the newest window of each upload; or a round was
//    dropped under load) who has sent a later one is not waited for, and is not counted at E;
//  - when everyone stops within activeSpanMs of each other (the session's end), the ends the
//    last of them did not reach are never given here (their final windows are, on the end
//    markers); their state goes when the process's provisional input has moved 2 min on.
// Counted at E: everyone with a valid provisional window there (no warm-up, no membership
// history: GroupMembership's rules are the final windows'). The maths is computeGroupWindow's,
// with the final window's seed, so at a live device's pace (the same beats in both) the
// provisional figures are the final ones.
import { AttuneError } from '../../lib/errors.js';
import { DEFAULT_GROUP_LATENESS_MS, DEFAULT_RUN_GAP_MS, better, type ParticipantWindowInput } from './group-windows.js';
import type { SynchronyPlan } from './synchrony.js';
import { computeGroupWindow, groupWindowSeed, type GroupWindowResult } from './window.js';

export interface ProvisionalGroupWindowsOptions {
  groupId: string;
  plan: SynchronyPlan;
  pacerRateBpm: number | null;
  /** Default DEFAULT_GROUP_LATENESS_MS (10 s). */
  allowedLatenessMs?: number;
  /** Participants with a window this close to the group's newest are waited for. Default DEFAULT_RUN_GAP_MS (15 s). */
  activeSpanMs?: number;
  surrogates?: number;
}

/** The fields of a participant's provisional window this needs (ParticipantWindowInput without its bus position). */
export type ProvisionalParticipantWindow = Omit<ParticipantWindowInput, 'offset' | 'ends'>;

export interface ProvisionalGroupWindow {
  windowStartMs: number;
  windowEndMs: number;
  /** Participants with a provisional window at the end. */
  presentCount: number;
  result: GroupWindowResult;
}

export class ProvisionalGroupWindows {
  private readonly byEnd = new Map<number, Map<string, ProvisionalParticipantWindow>>();
  /** Newest provisional end per participant. */
  private readonly newest = new Map<string, number>();
  private maxEndMs = -Infinity;
  private firstEndMs = Infinity;
  /** Ends at or before this are given (or passed over): later windows for them are dropped. */
  private givenThroughMs = -Infinity;
  private readonly latenessMs: number;
  private readonly activeSpanMs: number;

  constructor(private readonly opts: ProvisionalGroupWindowsOptions) {
    this.latenessMs = opts.allowedLatenessMs ?? DEFAULT_GROUP_LATENESS_MS;
    this.activeSpanMs = opts.activeSpanMs ?? DEFAULT_RUN_GAP_MS;
    if (!(this.latenessMs >= 0) || !(this.activeSpanMs >= 0)) {
      throw new AttuneError('validation_error', 'allowedLatenessMs and activeSpanMs must be >= 0', [
        { field: 'allowedLatenessMs', reason: 'invalid_argument', message: `got ${this.latenessMs} and ${this.activeSpanMs}` },
      ]);
    }
  }

  /** Ends whose final group window is out: provisional ones for them are pointless. */
  finalThrough(endMs: number): void {
    if (endMs <= this.givenThroughMs) return;
    this.givenThroughMs = endMs;
    for (const e of [...this.byEnd.keys()]) if (e <= endMs) this.byEnd.delete(e);
  }

  /** Open ends (memory bound: at most (lateness + activeSpan) / 5 s + 1 at a live pace). */
  get openEndCount(): number {
    return this.byEnd.size;
  }

  /** Adds one participant's provisional window; returns the group windows it completes, ascending end. */
  add(w: ProvisionalParticipantWindow): ProvisionalGroupWindow[] {
    // Even a window for an end already given says who is sending.
    if (w.windowEndMs > (this.newest.get(w.participantId) ?? -Infinity)) this.newest.set(w.participantId, w.windowEndMs);
    if (w.windowEndMs > this.maxEndMs) this.maxEndMs = w.windowEndMs;
    if (w.windowEndMs < this.firstEndMs) this.firstEndMs = w.windowEndMs;
    if (w.windowEndMs <= this.givenThroughMs) return [];
    let at = this.byEnd.get(w.windowEndMs);
    if (!at) this.byEnd.set(w.windowEndMs, (at = new Map()));
    // A newer read of the same session's window (more beats in) replaces the older; of two
    // sessions of one participant (streaming from two devices), the final windows' rule picks.
    const had = at.get(w.participantId);
    if (!had || had.sessionId === w.sessionId || better(w, had)) at.set(w.participantId, w);
    // Participants silent for longer than the span are no longer waited for (nor remembered).
    for (const [id, end] of this.newest) if (end < this.maxEndMs - this.activeSpanMs) this.newest.delete(id);
    const out: ProvisionalGroupWindow[] = [];
    for (const end of [...this.byEnd.keys()].sort((a, b) => a - b)) {
      if (!this.isReady(end)) break;
      out.push(this.compute(end));
    }
    return out;
  }

  private isReady(end: number): boolean {
    if (this.maxEndMs - end >= this.latenessMs) return true;
    // A young group does not know its participants yet: its first ends also wait for a window
    // past them, so that participants whose windows came a little later count.
    if (end < this.firstEndMs + this.activeSpanMs && this.maxEndMs <= end) return false;
    for (const e of this.newest.values()) if (e < end) return false;
    return true;
  }

  private compute(end: number): ProvisionalGroupWindow {
    const at = this.byEnd.get(end)!;
    this.byEnd.delete(end);
    this.givenThroughMs = end;
    const ids = [...at.keys()].sort();
    let windowStartMs = end;
    for (const id of ids) windowStartMs = Math.min(windowStartMs, at.get(id)!.windowStartMs);
    const counted = ids.map((id) => at.get(id)!).filter((w) => w.valid && w.series.length > 0);
    const result = computeGroupWindow(
      this.opts.plan,
      counted.map((w) => ({ participantId: w.participantId, series: w.series, coherence: w.coherence, coverage: w.coverage, artifactRatio: w.artifactRatio, breathingRateBpm: w.breathingRateBpm })),
      { seed: groupWindowSeed(this.opts.groupId, end), surrogates: this.opts.surrogates, pacerRateBpm: this.opts.pacerRateBpm },
    );
    return { windowStartMs, windowEndMs: end, presentCount: ids.length, result };
  }
}
