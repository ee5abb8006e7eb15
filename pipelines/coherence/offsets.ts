// Which offset the coherence worker may commit for a partition.
//
// The worker holds state (beats of windows not yet emitted) built from records it has
// already processed. Committing the usual "last processed + 1" would lose that state on a
// crash: the records that fed it would never be read again. So the worker commits the
// oldest offset any unemitted window still depends on; a replay from there rebuilds the
// state exactly (see README.md, "Replay contract").
//
// Kafka offsets are signed 64-bit integers, carried as decimal strings (as kafkajs does);
// they exceed Number.MAX_SAFE_INTEGER, so everything here is BigInt.
import { AttuneError } from '../../lib/errors.js';

export type Offset = string | bigint;

/** Largest Kafka offset (int64 max). */
export const maxOffset = (1n << 63n) - 1n;

const decimalInteger = /^[0-9]{1,19}$/;

/** Parses and checks a Kafka offset: an integer in 0..2^63−1, as a decimal string or a bigint. */
export function parseOffset(offset: Offset): bigint {
  let value: bigint;
  if (typeof offset === 'bigint') {
    value = offset;
  } else if (typeof offset === 'string' && decimalInteger.test(offset)) {
    value = BigInt(offset);
  } else {
    throw new AttuneError('validation_error', `not a Kafka offset: ${String(offset)}`, [
      { reason: 'invalid_offset', message: 'an offset is a non-negative decimal integer string or a bigint' },
    ]);
  }
  if (value < 0n || value > maxOffset) {
    throw new AttuneError('validation_error', `Kafka offset out of range: ${value}`, [
      { reason: 'invalid_offset', message: 'an offset lies in 0..2^63-1' },
    ]);
  }
  return value;
}

/**
 * Tracks one partition of the heart-readings topic for the coherence worker.
 *
 * The worker calls `processed(offset)` after it has applied a record to its session
 * state, and `setRetained(sessionId, offset)` with the session's oldest still-needed
 * offset (`SessionWindows.retainedMinOffset()`, null once the session holds nothing)
 * after each batch. `commitOffset()` is then the offset it may commit.
 *
 * Cost: `setRetained` is O(1); `commitOffset` is O(sessions on the partition), cached
 * until the next change. Sessions that retain nothing are removed from the map, so it
 * holds only sessions with live windows.
 */
export class PartitionOffsetTracker {
  readonly topic: string;
  readonly partition: number;
  #nextOffset: bigint | null = null;
  readonly #retainedBySession = new Map<string, bigint>();
  #cachedCommit: bigint | null = null;
  #cacheValid = false;

  constructor(topic: string, partition: number) {
    this.topic = topic;
    this.partition = partition;
  }

  /**
   * Notes that the record at `offset` has been applied. Offsets below the highest seen are
   * ignored (a batch delivered again after a failed handler), so the high-water mark only
   * moves forward.
   */
  processed(offset: Offset): void {
    const next = parseOffset(offset) + 1n;
    if (this.#nextOffset === null || next > this.#nextOffset) {
      this.#nextOffset = next;
      this.#cacheValid = false;
    }
  }

  /**
   * True when the record at `offset` was already applied to this tracker's state: the bus
   * delivers a batch again after its handler failed, and records the handler had applied
   * before failing must not be applied twice.
   */
  isProcessed(offset: Offset): boolean {
    return this.#nextOffset !== null && parseOffset(offset) < this.#nextOffset;
  }

  /** The next offset after the last processed record, as a decimal string; null before any. */
  nextOffset(): string | null {
    return this.#nextOffset === null ? null : this.#nextOffset.toString();
  }

  /**
   * Sets the oldest offset a session still needs for windows it has not emitted, or null
   * when it retains nothing (closed or evicted everything).
   */
  setRetained(sessionId: string, oldestRetainedOffset: Offset | null): void {
    if (oldestRetainedOffset === null) {
      if (this.#retainedBySession.delete(sessionId)) this.#cacheValid = false;
      return;
    }
    const value = parseOffset(oldestRetainedOffset);
    if (this.#retainedBySession.get(sessionId) !== value) {
      this.#retainedBySession.set(sessionId, value);
      this.#cacheValid = false;
    }
  }

  /** Drops a session (ended, flushed with `closeAll()` and written out). */
  forgetSession(sessionId: string): void {
    this.setRetained(sessionId, null);
  }

  /** Number of sessions that currently hold back the commit point. */
  get retainingSessionCount(): number {
    return this.#retainedBySession.size;
  }

  /**
   * The offset it is safe to commit: the smallest offset retained by any session, or the
   * next offset after the last processed record when no session retains anything (or all
   * retained offsets lie beyond it). Null before any record was processed.
   */
  commitOffset(): string | null {
    if (!this.#cacheValid) {
      let commit = this.#nextOffset;
      if (commit !== null) {
        for (const retained of this.#retainedBySession.values()) {
          if (retained < commit) commit = retained;
        }
      }
      this.#cachedCommit = commit;
      this.#cacheValid = true;
    }
    return this.#cachedCommit === null ? null : this.#cachedCommit.toString();
  }
}
