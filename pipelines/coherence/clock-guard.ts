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
//  - A reading that starts beyond it is held, not applied. The readings that follow decide:
//    one that continues the old clock releases the held ones it brings within the horizon
//    (they had only come ahead of it, as readings within the allowed lateness may) and means
//    the others were outliers, which are quarantined (dead-lettered as future_beat); readings that continue the held ones
//    confirm the jump (a device resuming after a real gap), and once `confirmReadings`
//    readings agree they are all released in order, so the first beats after a gap are kept
//    and cut into the same windows as if they had never been held.
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
}

export const defaultConfirmReadings = 3;

export class SessionClockGuard<T> {
  readonly horizonMs: number;
  readonly confirmReadings: number;
  #clockMs: number;
  #held: Held<T>[] = [];

  constructor(opts: ClockGuardOptions) {
    if (!(opts.horizonMs >= 0)) throw new RangeError(`horizonMs must be ≥ 0, got ${opts.horizonMs}`);
    const confirm = opts.confirmReadings ?? defaultConfirmReadings;
    if (!Number.isInteger(confirm) || confirm < 1) throw new RangeError(`confirmReadings must be a positive integer, got ${confirm}`);
    this.horizonMs = opts.horizonMs;
    this.confirmReadings = confirm;
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
    let min: bigint | null = null;
    for (const h of this.#held) if (min === null || h.offset < min) min = h.offset;
    return min;
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
      return this.#hold(startMs, endMs, offset, item, []);
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
      let next: number;
      while ((next = this.#held.findIndex((h) => h.startMs <= this.#clockMs + this.horizonMs)) >= 0) {
        const [h] = this.#held.splice(next, 1);
        decision.release.push(h.item);
        if (h.endMs > this.#clockMs) this.#clockMs = h.endMs;
      }
      for (const h of this.#held) decision.quarantine.push(h.item);
      this.#held = [];
      return decision;
    }
    let heldStart = Infinity;
    let heldEnd = -Infinity;
    for (const h of this.#held) {
      heldStart = Math.min(heldStart, h.startMs);
      heldEnd = Math.max(heldEnd, h.endMs);
    }
    if (startMs <= heldEnd + this.horizonMs && endMs >= heldStart - this.horizonMs) {
      return this.#hold(startMs, endMs, offset, item, []);
    }
    // Ahead of the clock but not with the held ones either: they were outliers, and this
    // one is the next candidate.
    const quarantine = this.#held.map((h) => h.item);
    this.#held = [];
    return this.#hold(startMs, endMs, offset, item, quarantine);
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

  #hold(startMs: number, endMs: number, offset: bigint, item: T, quarantine: T[]): GuardDecision<T> {
    this.#held.push({ startMs, endMs, offset, item });
    if (this.#held.length < this.confirmReadings) return { release: [], quarantine };
    // Confirmed: the clock jumps, and the held readings go to the windows in their order.
    const release = this.#held.map((h) => h.item);
    for (const h of this.#held) if (h.endMs > this.#clockMs) this.#clockMs = h.endMs;
    this.#held = [];
    return { release, quarantine, jumped: true };
  }
}
