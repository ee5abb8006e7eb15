// Event-time sliding windows over one session's heart beats.
//
// Windows are [end − windowMs, end) with `end` a multiple of stepMs in epoch ms, so every
// worker (and every replay) cuts the same windows. A window closes when the watermark,
// maxEventTime − allowedLatenessMs, reaches its end plus its lookahead span (below). Closing
// happens inside add(), right after the record that moved the watermark, so what a window holds depends only on the
// sequence of records, never on when the caller asks for closed windows; closeReady() just
// hands them over. That is what makes a replay reproduce the windows (README.md).
//
// Beats live in a ring of typed arrays sorted by time: in-order beats are appended at the
// tail in O(1); an out-of-order beat is placed by binary search and the later beats are
// shifted by one (bounded by the beats of one window plus the lateness). Beats that no
// open window can hold anymore, nor its context, are evicted from the head, so a session
// keeps at most contextMs + windowMs + allowedLatenessMs + lookaheadMs + stepMs of beats (139 s
// by default: about 190 beats at 80 bpm).
//
// Context: a closed window also carries the beats of the `contextMs` (60 s) before its start.
// Artifact cleaning (pipelines/hrv/artifacts.ts) judges a beat against the 91 beats around
// it (Lipponen & Tarvainen 2019); a 64 s window holds only 60–90, so without the beats before
// it the first beats of every window would be judged against half a neighbourhood. The
// context is part of the state the record sequence determines, like the window's own beats,
// and retainedMinOffset() covers it, so a replay or restart hands over the same context.
//
// Lookahead: a window also carries up to `lookaheadBeats` (5) beats from its end on, within
// LOOKAHEAD_MS (5 s) of it, which the cleaning reads to judge the window's last beats on their
// whole pattern (never as the window's own; pipelines/hrv/artifacts.ts, 0.). So a window closes
// only once the watermark passes its end plus that span: every beat of the span has then come
// within the allowed lateness or is late, and the lookahead, like the window's own beats, does
// not depend on the order they came in. (Closing at the end itself, as first done, let a beat
// of the span that was under 10 s late miss its window's lookahead.)
import { AttuneError } from '../../lib/errors.js';
import { ADJACENT_TOLERANCE_MS, LOOKAHEAD_BEATS, LOOKAHEAD_MS } from '../hrv/artifacts.js';
import { parseOffset, type Offset } from './offsets.js';

/**
 * End times of the beats of one reading. The last RR interval ends at `recordedAt` and the
 * intervals are oldest first, so beat i ends at recordedAt − sum(rr[i+1..n−1]).
 */
export function beatTimes(recordedAt: number, rr: ArrayLike<number>): Float64Array {
  if (!Number.isFinite(recordedAt)) {
    throw new AttuneError('validation_error', 'recorded_at is not a finite number', [
      { field: '/recorded_at', reason: 'invalid_argument', message: 'must be epoch milliseconds' },
    ]);
  }
  const n = rr.length;
  const times = new Float64Array(n);
  let t = recordedAt;
  for (let i = n - 1; i >= 0; i--) {
    const interval = rr[i];
    if (!(interval > 0) || !Number.isFinite(interval)) {
      throw new AttuneError('validation_error', 'RR interval is not a positive finite number', [
        { field: `/rr_intervals_ms/${i}`, reason: 'invalid_argument', message: 'must be > 0 ms' },
      ]);
    }
    times[i] = t;
    t -= interval;
  }
  return times;
}

export interface SessionWindowsOptions {
  /** Window length, ms. Default 64 000. */
  windowMs?: number;
  /** Distance between window ends, ms; window ends are multiples of it. Default 5 000. */
  stepMs?: number;
  /** How far behind the newest beat the watermark trails, ms. Default 10 000. */
  allowedLatenessMs?: number;
  /**
   * Beats before a window's start handed over with it as context for artifact cleaning, ms.
   * Default 60 000 (at least the 45 beats the cleaning reads, down to 45 bpm). 0 hands over
   * the window's own beats only.
   */
  contextMs?: number;
  /**
   * Beats from a window's end on (within LOOKAHEAD_MS) handed over with it, read by the artifact
   * cleaning only; a window then closes LOOKAHEAD_MS later. Default LOOKAHEAD_BEATS (5); 0 hands
   * over none and closes a window as soon as the watermark passes its end.
   */
  lookaheadBeats?: number;
  /** Starting capacity of the beat buffers (grows by doubling). Default 128. */
  initialCapacity?: number;
  /**
   * Late beats counted before this instance (lateBeatCount starts here). A worker resuming a
   * session mid-stream passes the count its checkpoint anchored at the record the replay starts
   * with, so the count it stamps on windows is the uninterrupted run's. Default 0.
   */
  lateBeatCount?: number;
}

export interface ClosedWindow {
  windowStartMs: number;
  /** Exclusive; a multiple of stepMs. */
  windowEndMs: number;
  /**
   * End times of the beats handed over, ascending (a copy, `count` long): first
   * `contextCount` beats of the context before windowStartMs, then the window's own beats,
   * then `lookaheadCount` beats from windowEndMs on.
   */
  beatTimesMs: Float64Array;
  /** RR interval ending at each beat, ms (a copy, `count` long). */
  rrMs: Float64Array;
  count: number;
  /** Leading beats that lie before windowStartMs (context, not part of the window). */
  contextCount: number;
  /** Trailing beats at or after windowEndMs (lookahead for the cleaning, not part of the window). */
  lookaheadCount: number;
  /**
   * The session's cumulative late-beat count when the window closed. Counts only what this
   * instance has seen, so it is not reproduced by a replay from a committed offset.
   */
  lateBeatCount: number;
  /**
   * This instance's beat revision when the window was cut (SessionWindows.revision): two cuts
   * of one window (same end) with the same revision hold the same beats, so their metrics are
   * the same (the worker computes a final window that its provisional one already had once).
   */
  revision: number;
}

/** Where a 64-bit element's high and low 32-bit halves sit in a typed-array view of its buffer (platform byte order). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const HIGH = LITTLE_ENDIAN ? 1 : 0;
const LOW = LITTLE_ENDIAN ? 0 : 1;

interface PendingWindow {
  window: ClosedWindow;
  /** Oldest offset among the window's beats: a replay must start at or before it. */
  oldestOffset: bigint;
}

export const defaultWindowMs = 64_000;
export const defaultStepMs = 5_000;
export const defaultAllowedLatenessMs = 10_000;
export const defaultContextMs = 60_000;

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new AttuneError('validation_error', `${name} must be a positive integer`, [
      { field: name, reason: 'invalid_argument', message: `got ${value}` },
    ]);
  }
  return value;
}

export class SessionWindows {
  readonly windowMs: number;
  readonly stepMs: number;
  readonly allowedLatenessMs: number;
  readonly contextMs: number;
  readonly lookaheadBeats: number;
  /** Span after a window's end its lookahead is taken from: LOOKAHEAD_MS, or 0 without lookahead. */
  readonly lookaheadMs: number;

  // Ring buffers, logical index i lives at (#head + i) % capacity, ascending time.
  #times: Float64Array;
  #rr: Float64Array;
  #offsets: BigInt64Array;
  /**
   * #offsets' 64-bit words as 32-bit halves (views on its buffer): the oldest offset of a cut
   * window is found by comparing these, because each element read from a BigInt64Array
   * allocates a BigInt (about 120 reads a window showed as 1.5 µs a reading in bench:kafka's
   * profile). Exact for every 64-bit offset.
   */
  #offsetHigh: Int32Array;
  #offsetLow: Uint32Array;
  #head = 0;
  #size = 0;

  #maxEventTimeMs = -Infinity;
  /** Every window with end ≤ this is closed (emitted, or skipped for having no beats). */
  #closedThroughMs = -Infinity;
  #lateBeatCount = 0;
  #duplicateBeatCount = 0;
  /**
   * Bumped whenever the beats held change anywhere but at the newest end: a beat inserted
   * before the newest one, or the buffers emptied. Appends (a beat after the newest) and
   * evictions (beats no open window or its context needs) leave it. A window is cut only once
   * the beats have passed its end (provisionalWindow: the newest beat is at or after it;
   * closing: the watermark is), so later appends fall after it and evictions before its
   * context: with the revision unchanged, a second cut holds exactly the first one's beats.
   */
  #revision = 0;
  #pending: PendingWindow[] = [];

  constructor(opts: SessionWindowsOptions = {}) {
    this.windowMs = positiveInteger('windowMs', opts.windowMs ?? defaultWindowMs);
    this.stepMs = positiveInteger('stepMs', opts.stepMs ?? defaultStepMs);
    const lateness = opts.allowedLatenessMs ?? defaultAllowedLatenessMs;
    if (!Number.isInteger(lateness) || lateness < 0) {
      throw new AttuneError('validation_error', 'allowedLatenessMs must be a non-negative integer', [
        { field: 'allowedLatenessMs', reason: 'invalid_argument', message: `got ${lateness}` },
      ]);
    }
    this.allowedLatenessMs = lateness;
    const context = opts.contextMs ?? defaultContextMs;
    if (!Number.isInteger(context) || context < 0) {
      throw new AttuneError('validation_error', 'contextMs must be a non-negative integer', [
        { field: 'contextMs', reason: 'invalid_argument', message: `got ${context}` },
      ]);
    }
    this.contextMs = context;
    const lookahead = opts.lookaheadBeats ?? LOOKAHEAD_BEATS;
    if (!Number.isInteger(lookahead) || lookahead < 0) {
      throw new AttuneError('validation_error', 'lookaheadBeats must be a non-negative integer', [
        { field: 'lookaheadBeats', reason: 'invalid_argument', message: `got ${lookahead}` },
      ]);
    }
    this.lookaheadBeats = lookahead;
    const lateBeats = opts.lateBeatCount ?? 0;
    if (!Number.isSafeInteger(lateBeats) || lateBeats < 0) {
      throw new AttuneError('validation_error', 'lateBeatCount must be a non-negative integer', [
        { field: 'lateBeatCount', reason: 'invalid_argument', message: `got ${lateBeats}` },
      ]);
    }
    this.#lateBeatCount = lateBeats;
    this.lookaheadMs = lookahead > 0 ? LOOKAHEAD_MS : 0;
    if (this.stepMs > this.windowMs) {
      throw new AttuneError('validation_error', 'stepMs must not exceed windowMs', [
        { field: 'stepMs', reason: 'invalid_argument', message: `${this.stepMs} > windowMs ${this.windowMs}` },
      ]);
    }
    const capacity = positiveInteger('initialCapacity', opts.initialCapacity ?? 128);
    this.#times = new Float64Array(capacity);
    this.#rr = new Float64Array(capacity);
    this.#offsets = new BigInt64Array(capacity);
    this.#offsetHigh = new Int32Array(this.#offsets.buffer);
    this.#offsetLow = new Uint32Array(this.#offsets.buffer);
  }

  /** See #revision: unchanged, a window cut again holds the same beats. */
  get revision(): number {
    return this.#revision;
  }

  /** Beats that arrived after a window they belong to had closed (cumulative, from opts.lateBeatCount). */
  get lateBeatCount(): number {
    return this.#lateBeatCount;
  }

  /** Beats ignored because a beat with the very same time was already held (a redelivered reading). */
  get duplicateBeatCount(): number {
    return this.#duplicateBeatCount;
  }

  /** Newest beat time seen, ms; -Infinity before any beat. */
  get maxEventTimeMs(): number {
    return this.#maxEventTimeMs;
  }

  /** maxEventTime − allowedLateness; windows with end + lookaheadMs ≤ this are closed. */
  get watermarkMs(): number {
    return this.#maxEventTimeMs - this.allowedLatenessMs;
  }

  /** End of the last closed window (all windows ending at or before it are closed); -Infinity if none. */
  get closedThroughMs(): number {
    return this.#closedThroughMs;
  }

  /** Beats held for windows that have not closed and as their context. */
  get retainedBeatCount(): number {
    return this.#size;
  }

  /** Current length of the beat buffers (memory ≈ 24 bytes × capacity). */
  get capacity(): number {
    return this.#times.length;
  }

  /** Closed windows not yet handed over by closeReady(). */
  get pendingWindowCount(): number {
    return this.#pending.length;
  }

  /**
   * Adds the beats of one record (times ascending or not, with the RR interval ending at
   * each, all from the bus record at `offset`). Returns how many were late: their time lay
   * before the end of the last closed window plus its lookahead span, so a closed window would
   * have read them (a beat of that span still lands in its own, open window). Late beats still
   * go into the windows that are open; those no open window can hold are dropped (and counted).
   * A beat with the time of one still held is a re-sent copy: ignored and not counted (one older
   * than the beats held, the open windows and their context, cannot be told from a late one).
   *
   * Call it once per record, in offset order: lateness is judged against the watermark
   * the previous records set, and the windows this record's beats close are cut before
   * the next record arrives.
   */
  add(beatTimesMs: ArrayLike<number>, rrMs: ArrayLike<number>, offset: Offset): number {
    const n = beatTimesMs.length;
    if (rrMs.length !== n) {
      throw new AttuneError('validation_error', 'beat times and RR intervals differ in length', [
        { reason: 'invalid_argument', message: `${n} beat times, ${rrMs.length} RR intervals` },
      ]);
    }
    const recordOffset = parseOffset(offset);
    const closedThrough = this.#closedThroughMs;
    // Late: a closed window held it, or read it as its lookahead. Only beats more than the
    // allowed lateness behind the newest can be (closing waits for the lookahead span).
    const lateBefore = closedThrough + this.lookaheadMs;
    // A late beat is still kept while an open window can hold it or use it as context.
    const keepFrom = closedThrough + this.stepMs - this.windowMs - this.contextMs;
    let late = 0;
    let maxTime = this.#maxEventTimeMs;
    for (let i = 0; i < n; i++) {
      const t = beatTimesMs[i];
      const rr = rrMs[i];
      if (!Number.isFinite(t) || !Number.isFinite(rr)) {
        throw new AttuneError('validation_error', 'beat time or RR interval is not finite', [
          { index: i, reason: 'invalid_argument', message: `time ${t}, rr ${rr}` },
        ]);
      }
      if (t < lateBefore && t < keepFrom) {
        // No open window can hold it, and it is no longer held to compare: counted late,
        // whether it is new or a re-sent copy of a beat a closed window had.
        late++;
        continue;
      }
      // A beat with the very time of one held is a re-sent copy (a retried upload, a replay):
      // ignored, and not late, since the windows it belongs to had it.
      if (!this.#insert(t, rr, recordOffset)) continue;
      if (t < lateBefore) late++;
      else if (t > maxTime) maxTime = t;
    }
    this.#lateBeatCount += late;
    if (maxTime > this.#maxEventTimeMs) {
      this.#maxEventTimeMs = maxTime;
      this.#closeThrough(this.#floorToStep(maxTime - this.allowedLatenessMs - this.lookaheadMs));
    }
    return late;
  }

  /**
   * Windows that closed since the last call (end + lookaheadMs ≤ watermark), oldest first.
   * Each has at least one beat; ends strictly increase across calls.
   */
  closeReady(): ClosedWindow[] {
    if (this.#pending.length === 0) return [];
    const out = this.#pending.map((p) => p.window);
    this.#pending = [];
    return out;
  }

  /**
   * A provisional reading of the newest window the session's beats have passed but that is
   * not final yet: end + lookaheadMs ≤ the newest beat (its lookahead span passed, so that its
   * final window, cut from the same beats when nothing arrives out of order, has the same
   * revision and count and takes its metrics: the worker's memo), end > every closed window's.
   * It is cut from the
   * beats held now, so beats still to come within the allowed lateness can change it; the
   * final window of the same end comes from closeReady() once the watermark passes it. Null
   * when every window the beats have passed is closed, or the window has no beat of its own.
   * Reads the state, never changes it: calling it or not gives the same final windows.
   */
  provisionalWindow(): ClosedWindow | null {
    if (this.#size === 0) return null;
    const end = this.#floorToStep(this.#maxEventTimeMs - this.lookaheadMs);
    if (end <= this.#closedThroughMs) return null;
    const start = end - this.windowMs;
    const firstOwn = this.#lowerBound(start);
    if (firstOwn >= this.#size || this.#times[(this.#head + firstOwn) % this.#times.length] >= end) return null;
    return this.#cut(start, end).window;
  }

  /**
   * Closes every remaining window up to the first one that ends after the last beat (an
   * ended or idle session; the caller decides, it has the clock) and returns all closed
   * windows not yet handed over. The buffers are emptied; beats added afterwards are late
   * if they fall before that last window's end plus its lookahead span.
   */
  closeAll(): ClosedWindow[] {
    const out = this.closeTail();
    this.#head = 0;
    this.#size = 0;
    this.#revision++;
    return out;
  }

  /**
   * Like closeAll(), but the beats a later window or its context may still need are kept:
   * if beats come after all (a paused upload, a stalled consumer), the windows after the tail
   * are cut from the same beats as if there had been no pause. Only the tail windows, closed
   * early, miss what comes later (their beats then count as late).
   */
  closeTail(): ClosedWindow[] {
    if (this.#size > 0) {
      const lastBeat = this.#times[(this.#head + this.#size - 1) % this.#times.length];
      this.#closeThrough(this.#floorToStep(lastBeat) + this.stepMs);
    }
    return this.closeReady();
  }

  /**
   * Oldest bus offset the session still depends on: over the beats held for open windows
   * and the closed windows not yet handed over. Null when it holds nothing. O(beats held).
   */
  retainedMinOffset(): bigint | null {
    let oldest: bigint | null = null;
    for (const p of this.#pending) {
      if (oldest === null || p.oldestOffset < oldest) oldest = p.oldestOffset;
    }
    const cap = this.#offsets.length;
    for (let i = 0; i < this.#size; i++) {
      const o = this.#offsets[(this.#head + i) % cap];
      if (oldest === null || o < oldest) oldest = o;
    }
    return oldest;
  }

  #floorToStep(t: number): number {
    return Math.floor(t / this.stepMs) * this.stepMs;
  }

  /** Inserts one beat in time order; false when a beat with the same time is already held. */
  #insert(t: number, rr: number, offset: bigint): boolean {
    if (this.#size === this.#times.length) this.#grow();
    const cap = this.#times.length;
    const times = this.#times;
    if (this.#size === 0 || t > times[(this.#head + this.#size - 1) % cap]) {
      const at = (this.#head + this.#size) % cap;
      times[at] = t;
      this.#rr[at] = rr;
      this.#offsets[at] = offset;
      this.#size++;
      return true;
    }
    // Out of order: first logical index whose time is ≥ t.
    const pos = this.#lowerBound(t);
    if (pos < this.#size && times[(this.#head + pos) % cap] === t) {
      this.#duplicateBeatCount++;
      return false;
    }
    this.#revision++;
    for (let i = this.#size; i > pos; i--) {
      const to = (this.#head + i) % cap;
      const from = (this.#head + i - 1) % cap;
      times[to] = times[from];
      this.#rr[to] = this.#rr[from];
      this.#offsets[to] = this.#offsets[from];
    }
    const at = (this.#head + pos) % cap;
    times[at] = t;
    this.#rr[at] = rr;
    this.#offsets[at] = offset;
    this.#size++;
    return true;
  }

  /** First logical index whose time is ≥ t (size when none). */
  #lowerBound(t: number): number {
    const cap = this.#times.length;
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#times[(this.#head + mid) % cap] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #grow(): void {
    const cap = this.#times.length;
    const times = new Float64Array(cap * 2);
    const rr = new Float64Array(cap * 2);
    const offsets = new BigInt64Array(cap * 2);
    for (let i = 0; i < this.#size; i++) {
      const from = (this.#head + i) % cap;
      times[i] = this.#times[from];
      rr[i] = this.#rr[from];
      offsets[i] = this.#offsets[from];
    }
    this.#times = times;
    this.#rr = rr;
    this.#offsets = offsets;
    this.#offsetHigh = new Int32Array(offsets.buffer);
    this.#offsetLow = new Uint32Array(offsets.buffer);
    this.#head = 0;
  }

  /** Drops beats from the head that lie before `t`. */
  #evictBefore(t: number): void {
    const cap = this.#times.length;
    while (this.#size > 0 && this.#times[this.#head] < t) {
      this.#head = (this.#head + 1) % cap;
      this.#size--;
    }
  }

  /**
   * Closes every window with end ≤ `targetEndMs`. Windows without beats of their own are
   * skipped: after each closed window the next candidate is the later of "one step on" and
   * "the first window holding the oldest beat not yet past every closed window" (context
   * beats before it do not count), so a gap costs one jump, not one empty window per step.
   */
  #closeThrough(targetEndMs: number): void {
    if (targetEndMs <= this.#closedThroughMs) return;
    const step = this.stepMs;
    while (true) {
      const nextOpen = this.#lowerBound(this.#closedThroughMs + step - this.windowMs);
      if (nextOpen >= this.#size) break;
      const oldest = this.#times[(this.#head + nextOpen) % this.#times.length];
      const end = Math.max(this.#closedThroughMs + step, this.#floorToStep(oldest) + step);
      if (end > targetEndMs) break;
      this.#pending.push(this.#cut(end - this.windowMs, end));
      this.#closedThroughMs = end;
      this.#evictBefore(end + step - this.windowMs - this.contextMs);
    }
    this.#closedThroughMs = targetEndMs;
    this.#evictBefore(targetEndMs + step - this.windowMs - this.contextMs);
  }

  /**
   * Copies the beats in [startMs − contextMs, endMs), and up to lookaheadBeats in
   * [endMs, endMs + lookaheadMs) that follow without a gap, out of the ring. Older beats may still
   * be held after a gap jump; they are neither handed over nor counted in oldestOffset.
   */
  #cut(startMs: number, endMs: number): PendingWindow {
    const cap = this.#times.length;
    const first = this.#lowerBound(startMs - this.contextMs);
    const contextCount = this.#lowerBound(startMs) - first;
    let last = first + contextCount;
    while (last < this.#size && this.#times[(this.#head + last) % cap] < endMs) last++;
    // The lookahead stops at a gap (a beat whose interval does not reach back to the one before
    // it), as the cleaning stops reading there: beats after a gap say nothing about the window.
    let lookaheadCount = 0;
    while (lookaheadCount < this.lookaheadBeats && last < this.#size && last > 0) {
      const at = (this.#head + last) % cap;
      const before = (this.#head + last - 1) % cap;
      if (this.#times[at] >= endMs + this.lookaheadMs) break;
      if (Math.abs(this.#times[at] - this.#rr[at] - this.#times[before]) > ADJACENT_TOLERANCE_MS) break;
      lookaheadCount++;
      last++;
    }
    const count = last - first;
    // One buffer for both copies: a typed array over 64 bytes gets a backing store of its own
    // outside V8's heap, which costs more to allocate and to collect than the copying.
    const copies = new Float64Array(2 * count);
    const beatTimesMs = copies.subarray(0, count);
    const rrMs = copies.subarray(count);
    const high = this.#offsetHigh;
    const low = this.#offsetLow;
    let oldestAt = (this.#head + first) % cap;
    let oldestHigh = high[2 * oldestAt + HIGH];
    let oldestLow = low[2 * oldestAt + LOW];
    for (let i = 0; i < count; i++) {
      const at = (this.#head + first + i) % cap;
      beatTimesMs[i] = this.#times[at];
      rrMs[i] = this.#rr[at];
      const h = high[2 * at + HIGH];
      if (h < oldestHigh || (h === oldestHigh && low[2 * at + LOW] < oldestLow)) {
        oldestAt = at;
        oldestHigh = h;
        oldestLow = low[2 * at + LOW];
      }
    }
    const oldestOffset = this.#offsets[oldestAt];
    return {
      window: { windowStartMs: startMs, windowEndMs: endMs, beatTimesMs, rrMs, count, contextCount, lookaheadCount, lateBeatCount: this.#lateBeatCount, revision: this.#revision },
      oldestOffset,
    };
  }
}
