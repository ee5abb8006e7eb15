// The session clock guard: no single outlying reading moves a session's event-time clock.
//
// SessionWindows' watermark is the newest beat minus the allowed lateness; one beat dated
// minutes ahead would close every open window at once and make every later beat "late"
// (issue 9: one reading at +290 s cost 21 of 40 valid windows). So before a reading reaches
// the windows the guard looks at where it starts: the start of its first RR interval,
// recorded_at − sum(rr), which for a device streaming without a gap is its previous beat.
//
//  - A reading that starts no later than clock + horizon (the horizon defaults to the allowed
//    lateness, what the windowing can absorb) continues the session: it goes through.
//  - A reading that starts beyond it is held, not applied. Held readings form candidates:
//    readings within the horizon of each other are one candidate (a later timeline, or a
//    reading that only came early), and a held reading far from every candidate starts one of
//    its own; none is judged by another candidate's arrival. The readings that follow decide:
//    one that continues the old clock releases the held ones it brings within the horizon
//    (they had only come ahead of it, as readings within the allowed lateness may) and means
//    the others were outliers, which are quarantined (dead-lettered as future_beat); once
//    `confirmReadings` readings of one candidate agree, the clock jumps to it (a device resuming
//    after a real gap): they are released in order, with any other held reading then within
//    the horizon, so the first beats after a gap are kept and cut into the same windows as if
//    they had never been held. Why candidates: with one held set, an outlier arriving while a
//    reading that only came early was held quarantined that reading, which in order would
//    have gone through (the decision depended on arrival order; README, Known limitations
//    until 12-04). At most `maxHeldReadings` (64) are held: past it every candidate but the
//    newest reading's is quarantined, so a flood of outliers cannot grow memory. That is the one
//    case left where arrival order, and a restart, can change a decision: the eviction depends
//    on every reading then held, and a replay from the oldest held offset does not see those
//    before it (a review of 12-04 found 53-333 of 77,139 restart points diverging with the bound
//    at 9 and clustered floods of up to 16; none with the bound above the flood).
//  - A late reading (ending at or before the clock, a re-upload say) goes through and
//    decides nothing: only a reading that moves the old clock on refutes the held ones.
//  - A held reading still undecided when its session is let go is quarantined too.
//
// Pure: decisions depend only on the session's sequence of readings (no clock), so a replay
// makes the same ones. The held readings' offsets are retained (heldMinOffset) so a commit
// never passes a reading that is neither applied nor dead-lettered.

export interface ClockGuardOptions {
  /** How far past the clock a reading may start and still continue the session, ms. */
  horizonMs: number;
  /** Readings (the suspicious one included) that must agree before the clock jumps. 1 turns the guard off. Default 3. */
  confirmReadings?: number;
  /** The clock before any reading (the session's start), ms; -Infinity lets the first reading set it. */
  startMs?: number;
  /** Readings held at most, all candidates together (default DEFAULT_MAX_HELD_READINGS, at least confirmReadings). */
  maxHeldReadings?: number;
}

export interface GuardDecision<T> {
  /** Readings to apply now, in their original order. */
  release: T[];
  /** Readings to dead-letter (future_beat). */
  quarantine: T[];
  /** True when the held readings were confirmed as a jump of the clock (a gap), not just released. */
  jumped?: boolean;
}

interface Held<T> {
  startMs: number;
  endMs: number;
  offset: bigint;
  item: T;
  /** The candidate timeline it belongs to (readings within the horizon of each other share one). */
  candidate: number;
}

export const defaultConfirmReadings = 3;

/**
 * Readings a session's guard holds at most (see the header). Large enough that only a long flood
 * of readings that neither continue the clock nor confirm a jump reaches it (a review's floods of
 * up to 16 never did), small enough that a session's held readings stay a few kilobytes.
 */
export const DEFAULT_MAX_HELD_READINGS = 64;

export class SessionClockGuard<T> {
  readonly horizonMs: number;
  readonly confirmReadings: number;
  readonly maxHeldReadings: number;
  #clockMs: number;
  /** Held readings in arrival (offset) order. */
  #held: Held<T>[] = [];
  #nextCandidate = 0;

  constructor(opts: ClockGuardOptions) {
    if (!(opts.horizonMs >= 0)) throw new RangeError(`horizonMs must be ≥ 0, got ${opts.horizonMs}`);
    const confirm = opts.confirmReadings ?? defaultConfirmReadings;
    if (!Number.isInteger(confirm) || confirm < 1) throw new RangeError(`confirmReadings must be a positive integer, got ${confirm}`);
    this.horizonMs = opts.horizonMs;
    this.confirmReadings = confirm;
    const maxHeld = opts.maxHeldReadings ?? Math.max(DEFAULT_MAX_HELD_READINGS, confirm);
    if (!Number.isInteger(maxHeld) || maxHeld < confirm) throw new RangeError(`maxHeldReadings must be an integer ≥ confirmReadings, got ${maxHeld}`);
    this.maxHeldReadings = maxHeld;
    this.#clockMs = opts.startMs ?? -Infinity;
  }

  /** Newest beat time let through (or the start given), ms. */
  get clockMs(): number {
    return this.#clockMs;
  }

  get heldCount(): number {
    return this.#held.length;
  }

  /** Oldest offset among the held readings, or null. */
  heldMinOffset(): bigint | null {
    return this.#held.length === 0 ? null : this.oldestHeld()!.offset;
  }

  /** The held reading with the oldest offset (the first of them), or null. */
  oldestHeld(): { offset: bigint; item: T } | null {
    let min: Held<T> | null = null;
    for (const h of this.#held) if (min === null || h.offset < min.offset) min = h;
    return min === null ? null : { offset: min.offset, item: min.item };
  }

  /**
   * The common case of offer() without its allocations: when nothing is held and the reading
   * continues the clock, it goes through (the clock moves on) and this returns true, exactly as
   * offer() would have released it alone with nothing quarantined. Otherwise nothing changes
   * and it returns false: the caller offers the reading with offer(). Per reading on the hot
   * path (the coherence worker and the readings sink), where offer()'s decision object and
   * arrays for every reading showed as garbage-collection work in bench:kafka.
   */
  passes(startMs: number, endMs: number): boolean {
    if (this.#held.length !== 0) return false;
    if (!(this.#clockMs === -Infinity || startMs <= this.#clockMs + this.horizonMs)) return false;
    if (endMs > this.#clockMs) this.#clockMs = endMs;
    return true;
  }

  /**
   * One reading of the session, in offset order: `startMs` where its first RR interval
   * begins, `endMs` its last beat (recorded_at).
   */
  offer(startMs: number, endMs: number, offset: bigint, item: T): GuardDecision<T> {
    const continuesClock = this.#clockMs === -Infinity || startMs <= this.#clockMs + this.horizonMs;
    if (this.#held.length === 0) {
      if (continuesClock) return this.#pass(endMs, item, []);
      return this.#hold(startMs, endMs, offset, item);
    }
    if (continuesClock && endMs <= this.#clockMs) {
      // A late or re-uploaded reading: it goes through (the windows judge its lateness) but
      // says nothing about the held ones.
      return { release: [item], quarantine: [] };
    }
    if (continuesClock) {
      // The session goes on where it was. Held readings that it brings within the horizon
      // continue it too, in their order (each may bring the next): a reading that came ahead of
      // the ones before it, by less than the allowed lateness, is not an outlier, and releasing
      // it makes the windows what in-order arrival makes them (the review of 2026-12-04: with
      // the horizon at 2 s, a reading held 2.02 s ahead was quarantined when the one before it
      // came 1.98 s behind it). The rest were outliers.
      const decision = this.#pass(endMs, item, []);
      this.#releaseWithinHorizon(decision.release);
      for (const h of this.#held) decision.quarantine.push(h.item);
      this.#held = [];
      return decision;
    }
    return this.#hold(startMs, endMs, offset, item);
  }

  /** The held readings, to quarantine (the session is let go before they were confirmed). */
  drop(): T[] {
    const out = this.#held.map((h) => h.item);
    this.#held = [];
    return out;
  }

  #pass(endMs: number, item: T, quarantine: T[]): GuardDecision<T> {
    if (endMs > this.#clockMs) this.#clockMs = endMs;
    return { release: [item], quarantine };
  }

  /** Moves every held reading the clock brings within the horizon to `release`, each moving the clock on (so it may bring the next). */
  #releaseWithinHorizon(release: T[]): void {
    let next: number;
    while ((next = this.#held.findIndex((h) => h.startMs <= this.#clockMs + this.horizonMs)) >= 0) {
      const [h] = this.#held.splice(next, 1);
      release.push(h.item);
      if (h.endMs > this.#clockMs) this.#clockMs = h.endMs;
    }
  }

  #hold(startMs: number, endMs: number, offset: bigint, item: T): GuardDecision<T> {
    // The candidates this reading is within the horizon of: it joins them (and joins them to
    // each other, when it bridges two); with none, it is a candidate of its own.
    const joined = new Set<number>();
    const spans = new Map<number, { start: number; end: number }>();
    for (const h of this.#held) {
      const sp = spans.get(h.candidate);
      if (!sp) spans.set(h.candidate, { start: h.startMs, end: h.endMs });
      else {
        if (h.startMs < sp.start) sp.start = h.startMs;
        if (h.endMs > sp.end) sp.end = h.endMs;
      }
    }
    for (const [id, sp] of spans) if (startMs <= sp.end + this.horizonMs && endMs >= sp.start - this.horizonMs) joined.add(id);
    let candidate: number;
    if (joined.size === 0) candidate = this.#nextCandidate++;
    else {
      candidate = Math.min(...joined);
      for (const h of this.#held) if (joined.has(h.candidate)) h.candidate = candidate;
    }
    this.#held.push({ startMs, endMs, offset, item, candidate });
    const quarantine: T[] = [];
    let members = 0;
    for (const h of this.#held) if (h.candidate === candidate) members++;
    if (members >= this.confirmReadings) {
      // Confirmed: the clock jumps to this candidate, whose readings go to the windows in their
      // order; a held reading that then lies within the horizon of the new clock (behind it, or
      // just ahead) goes with them, and the others stay held: judged against the new clock.
      const release: T[] = [];
      const rest: Held<T>[] = [];
      for (const h of this.#held) {
        if (h.candidate === candidate) {
          release.push(h.item);
          if (h.endMs > this.#clockMs) this.#clockMs = h.endMs;
        } else rest.push(h);
      }
      this.#held = rest;
      this.#releaseWithinHorizon(release);
      return { release, quarantine, jumped: true };
    }
    // Memory bound: past maxHeldReadings, every other candidate is quarantined and only this
    // reading's is kept (what one held set did for every reading before candidates). The one
    // case where arrival order and a restart can change a decision (see the header): the
    // eviction depends on every reading then held, and a replay from the oldest held offset
    // does not see those before it.
    if (this.#held.length > this.maxHeldReadings) {
      const keep: Held<T>[] = [];
      for (const h of this.#held) {
        if (h.candidate === candidate) keep.push(h);
        else quarantine.push(h.item);
      }
      this.#held = keep;
    }
    return { release: [], quarantine };
  }
}
