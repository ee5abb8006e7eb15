// The coherence worker's restart state, on Kafka (issue 10: no compute worker reads ClickHouse).
//
// A compacted topic keyed by session id (InternalTopics.coherenceCheckpoints, JSON values:
// internal state, not a data contract). Per session: the end of the last window the worker
// published, its threshold tracker's state right after that window, and whether the session
// has ended. Written by the worker after the windows and events it covers are acknowledged by
// the bus, and before the readings offset that depends on it is committed; so at any crash the
// newest checkpoint of a session is at least as new as the committed offset, and never ahead
// of what the windows topic holds (see pipelines/coherence/README.md, "Restart state").
//
// Every worker process reads the whole topic into memory (CheckpointTable: a consumer in a
// group of its own, so it gets every partition) and keeps reading. Before it uses the table
// for a readings partition it has just been given, it places a read barrier: a record with a
// fresh nonce in every partition of the checkpoint topic, and waits until its reader has seen
// them all. Kafka keeps each partition in order, so every checkpoint acknowledged before the
// barrier (everything the partition's previous owner wrote before it died or let go) is then
// in the table.
import { randomUUID } from 'node:crypto';
import type { Bus, BusRecord, Subscription } from '../../bus/types.js';
import { keysCoveringPartitions } from '../../bus/partitioner.js';
import type { Logger } from '../../lib/log.js';
import type { ThresholdSnapshot } from './threshold.js';

export interface SessionCheckpoint {
  sessionId: string;
  /** Windows ending at or before this are published; null when none was. */
  emittedThroughMs: number | null;
  /** The session's threshold tracker right after that window (null: the session has no tracker). */
  threshold: ThresholdSnapshot | null;
  /** The session ended (its end marker, or its idle end in event time). */
  ended: boolean;
  /**
   * The threshold settings the tracker judged by when this was written, and the session's
   * version they are from (a settings marker, end-markers.ts); absent in checkpoints written
   * before 2026-12-06 and for sessions without a tracker (then PostgreSQL's are read).
   */
  settings?: { coherenceThreshold: number; thresholdDurationS: number; version: number };
  /** Its end marker was applied (a state revived since ignores that marker written again). */
  endedByMarker?: boolean;
  /**
   * An ended session's late beats at its end (late_beat_count is cumulative per session: a
   * revival by readings after the end continues it); absent in checkpoints written before
   * 2026-12-06 (the revival then counts from 0) and in those of sessions not ended.
   */
  lateBeats?: number;
  /**
   * Where a replay of the session's readings may start, and its clock guard there
   * (GuardAnchor, oldest first); absent in checkpoints written before 2026-12-05, and in the
   * group worker's.
   */
  guard?: GuardAnchor[] | null;
}

/**
 * The coherence worker's clock guard at a session's first record at or after an offset the
 * worker committed, or was about to, or started reading from (its anchor): a replay from that
 * offset starts with that record, and a guard restarted with this clock decides every replayed
 * reading as the uninterrupted run did. The newest anchor is retained (no commit passes it
 * before the next checkpoint); the older ones cover commits issued but perhaps not yet
 * acknowledged. See pipelines/coherence/README.md, "Restart state". `offset`
 * null: the session had no record there yet; its next one comes after `afterOffset`, with the
 * guard as it was then.
 */
export interface GuardAnchor {
  offset: string | null;
  afterOffset: string | null;
  /** The guard's clock before that record (ms); null: none yet (-Infinity). */
  clockMs: number | null;
  /** The guard held readings then, that the record did not refute: the anchor cannot restore them, so a restart falls back. */
  held: boolean;
  /**
   * The session's late beats counted before that record (late_beat_count is cumulative per
   * session, so a replay starting there continues from it); null in checkpoints written
   * before 2026-12-06 (the replay then counts from 0).
   */
  lateBeats: number | null;
  /**
   * Before that record: the session's quietFromMs (its idle end counts from it; null: none, or
   * a checkpoint written before 2026-12-06), whether its reading was the partition's newest
   * (sentLast: quietFromMs not set yet), and the partition's event time (a replay whose first
   * record is this one starts from it).
   */
  quietFromMs?: number | null;
  sentLast?: boolean;
  /** The session's dueFromMs before the record (null: not due). */
  dueFromMs?: number | null;
  partitionMaxMs?: number | null;
  /**
   * The session's end marker had been applied before that record (its state was revived by
   * readings after the end): a replay starting there ignores that marker written again, one
   * starting before the end applies it. Absent in checkpoints written before 2026-12-06 (the
   * checkpoint's own endedByMarker then decides).
   */
  endedByMarker?: boolean;
}

interface CheckpointWire {
  v: 1;
  session_id: string;
  emitted_through_ms: number | null;
  threshold: { armed: boolean; last_end_ms: number | null; streak_first_end_ms: number | null; streak_window_count: number; value?: number; hold_ms?: number } | null;
  ended: boolean;
  settings?: { coherence_threshold: number; threshold_duration_s: number; version: number };
  ended_by_marker?: boolean;
  late_beats?: number;
  guard?: Array<{
    offset: string | null;
    after_offset: string | null;
    clock_ms: number | null;
    held: boolean;
    late_beats?: number | null;
    quiet_from_ms?: number | null;
    sent_last?: boolean;
    due_from_ms?: number | null;
    partition_max_ms?: number | null;
    ended_by_marker?: boolean;
  }> | null;
  written_at: number;
}

interface BarrierWire {
  v: 1;
  barrier: string;
}

const BARRIER_PREFIX = '\u0000barrier:';

/** One key per partition of an n-partition topic (murmur2, as the bus partitions), for barriers. */
export function barrierKeys(partitions: number): string[] {
  return keysCoveringPartitions(partitions, BARRIER_PREFIX);
}

export function encodeCheckpoint(c: SessionCheckpoint, now: number): Buffer {
  const t = c.threshold;
  const wire: CheckpointWire = {
    v: 1,
    session_id: c.sessionId,
    emitted_through_ms: c.emittedThroughMs,
    threshold: t
      ? {
          armed: t.armed,
          last_end_ms: t.lastEndMs,
          streak_first_end_ms: t.streakFirstEndMs,
          streak_window_count: t.streakWindowCount,
          ...(t.threshold !== undefined ? { value: t.threshold } : {}),
          ...(t.holdMs !== undefined ? { hold_ms: t.holdMs } : {}),
        }
      : null,
    ended: c.ended,
    ...(c.endedByMarker ? { ended_by_marker: true } : {}),
    ...(c.lateBeats !== undefined ? { late_beats: c.lateBeats } : {}),
    ...(c.settings ? { settings: { coherence_threshold: c.settings.coherenceThreshold, threshold_duration_s: c.settings.thresholdDurationS, version: c.settings.version } } : {}),
    ...(c.guard ? { guard: c.guard.map((a) => ({ offset: a.offset, after_offset: a.afterOffset, clock_ms: a.clockMs, held: a.held, late_beats: a.lateBeats, quiet_from_ms: a.quietFromMs ?? null, sent_last: a.sentLast === true, due_from_ms: a.dueFromMs ?? null, partition_max_ms: a.partitionMaxMs ?? null, ...(a.endedByMarker !== undefined ? { ended_by_marker: a.endedByMarker } : {}) })) } : {}),
    written_at: now,
  };
  return Buffer.from(JSON.stringify(wire));
}

/** A checkpoint, a barrier's nonce, or null for a value that is neither (never thrown: no record may stall the reader). */
export function decodeCheckpoint(value: Buffer): SessionCheckpoint | { barrier: string } | null {
  let v: Partial<CheckpointWire & BarrierWire>;
  try {
    v = JSON.parse(value.toString('utf8'));
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || v.v !== 1) return null;
  if (typeof v.barrier === 'string') return { barrier: v.barrier };
  if (typeof v.session_id !== 'string') return null;
  const t = v.threshold;
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  return {
    sessionId: v.session_id,
    emittedThroughMs: num(v.emitted_through_ms),
    threshold:
      t && typeof t === 'object'
        ? {
            armed: t.armed === true,
            lastEndMs: num(t.last_end_ms),
            streakFirstEndMs: num(t.streak_first_end_ms),
            streakWindowCount: num(t.streak_window_count) ?? 0,
            ...(num(t.value) !== null ? { threshold: num(t.value)! } : {}),
            ...(num(t.hold_ms) !== null && num(t.hold_ms)! > 0 ? { holdMs: num(t.hold_ms)! } : {}),
          }
        : null,
    ended: v.ended === true,
    ...settingsOf(v.settings),
    ...(v.ended_by_marker === true ? { endedByMarker: true } : {}),
    ...(typeof v.late_beats === 'number' && Number.isSafeInteger(v.late_beats) && v.late_beats >= 0 ? { lateBeats: v.late_beats } : {}),
    ...(v.guard !== undefined ? { guard: guardOf(v.guard) } : {}),
  };
}

/** A checkpoint's settings, when present and well-formed (else none: PostgreSQL's are read). */
function settingsOf(s: unknown): Pick<SessionCheckpoint, 'settings'> {
  const w = s as { coherence_threshold?: unknown; threshold_duration_s?: unknown; version?: unknown } | null | undefined;
  if (!w || typeof w !== 'object') return {};
  const { coherence_threshold: t, threshold_duration_s: d, version } = w;
  if (typeof t !== 'number' || !Number.isFinite(t) || typeof d !== 'number' || !(d > 0) || typeof version !== 'number' || !Number.isInteger(version)) return {};
  return { settings: { coherenceThreshold: t, thresholdDurationS: d, version } };
}

const OFFSET = /^\d{1,19}$/;

/** A checkpoint's guard anchors; null when absent or any is malformed (the restart then falls back). */
function guardOf(list: unknown): GuardAnchor[] | null {
  if (!Array.isArray(list) || list.length === 0 || list.length > 16) return null;
  const out: GuardAnchor[] = [];
  for (const g of list) {
    const a = anchorOf(g);
    if (a === null) return null;
    out.push(a);
  }
  return out;
}

function anchorOf(g: unknown): GuardAnchor | null {
  if (!g || typeof g !== 'object') return null;
  const w = g as { offset?: unknown; after_offset?: unknown; clock_ms?: unknown; held?: unknown; late_beats?: unknown; quiet_from_ms?: unknown; sent_last?: unknown; due_from_ms?: unknown; partition_max_ms?: unknown; ended_by_marker?: unknown };
  const offset = typeof w.offset === 'string' && OFFSET.test(w.offset) ? w.offset : null;
  const afterOffset = typeof w.after_offset === 'string' && OFFSET.test(w.after_offset) ? w.after_offset : null;
  if ((offset === null) === (afterOffset === null)) return null;
  const clockMs = typeof w.clock_ms === 'number' && Number.isFinite(w.clock_ms) ? w.clock_ms : null;
  if (w.clock_ms !== null && clockMs === null) return null;
  const lateBeats = typeof w.late_beats === 'number' && Number.isSafeInteger(w.late_beats) && w.late_beats >= 0 ? w.late_beats : null;
  const finite = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  return { offset, afterOffset, clockMs, held: w.held === true, lateBeats, quietFromMs: finite(w.quiet_from_ms), sentLast: w.sent_last === true, dueFromMs: finite(w.due_from_ms), partitionMaxMs: finite(w.partition_max_ms), ...(typeof w.ended_by_marker === 'boolean' ? { endedByMarker: w.ended_by_marker } : {}) };
}

export interface CheckpointTableOptions {
  bus: Bus;
  topic: string;
  /** The reader's group: used as is on the embedded bus (one process), with a random suffix on Kafka. */
  groupId: string;
  log: Logger;
  /** Partitions when the topic is created here (default 1; any count works). */
  partitions?: number;
  /** How long a barrier may take before sync() rejects (the batch is then retried). Default 60 s. */
  barrierTimeoutMs?: number;
  clock?: () => number;
}

interface PendingBarrier {
  remaining: Set<number>;
  resolve: () => void;
}

export class CheckpointTable {
  readonly stats = { read: 0, written: 0, barriers: 0, ignored: 0 };
  private readonly table = new Map<string, SessionCheckpoint>();
  private readonly barriers = new Map<string, PendingBarrier>();
  private sub: Subscription | null = null;
  private partitions: number | null = null;
  private assignedWaiters: Array<() => void> = [];
  private readonly committedFloor = new Set<number>();

  constructor(private readonly opts: CheckpointTableOptions) {}

  async start(): Promise<void> {
    const { bus, topic } = this.opts;
    await bus.ensureTopics([{ topic, partitions: this.opts.partitions ?? 1, compacted: true }]);
    // Kafka: every worker process reads every partition, so each has a group of its own (a
    // group that never commits leaves nothing behind on the broker). The embedded bus is one
    // process; its stable group commits offset 0 once per partition, which keeps the
    // embedded log's retention (it deletes what every group has committed past) off the
    // checkpoints: the embedded log does not compact, so it keeps every checkpoint.
    const embedded = bus.kind === 'embedded';
    const groupId = embedded ? this.opts.groupId : `${this.opts.groupId}-${randomUUID().slice(0, 8)}`;
    this.sub = await bus.subscribe({
      groupId,
      topics: [topic],
      fromBeginning: true,
      // On Kafka the reader never commits and no one replays its group (the next process reads
      // from the start under a new one): it is no consumer that lags, so attune_consumer_lag
      // leaves it out as it does live fan-out (until 12-06 it reported every checkpoint ever
      // read as lag, e.g. 732 records that never drained, on every worker process).
      ephemeral: !embedded,
      onAssignment: (assigned) => {
        const n = assigned.filter((a) => a.topic === topic).length;
        if (n > 0) this.partitions = Math.max(this.partitions ?? 0, n);
        if (this.partitions !== null) for (const w of this.assignedWaiters.splice(0)) w();
      },
      eachBatch: async (batch) => {
        for (const rec of batch.records) this.apply(batch.partition, rec);
        if (embedded && !this.committedFloor.has(batch.partition)) {
          await this.sub?.commit(batch.topic, batch.partition, '0');
          this.committedFloor.add(batch.partition);
        }
      },
    });
  }

  private apply(partition: number, rec: BusRecord): void {
    const c = decodeCheckpoint(rec.value);
    if (c === null) {
      this.stats.ignored++;
      return;
    }
    if ('barrier' in c) {
      const b = this.barriers.get(c.barrier);
      if (b) {
        b.remaining.delete(partition);
        if (b.remaining.size === 0) {
          this.barriers.delete(c.barrier);
          b.resolve();
        }
      }
      return;
    }
    this.stats.read++;
    this.table.set(c.sessionId, c);
  }

  private partitionCount(): Promise<number> {
    if (this.partitions !== null) return Promise.resolve(this.partitions);
    return new Promise((resolve) => this.assignedWaiters.push(() => resolve(this.partitions!)));
  }

  /**
   * Resolves once every checkpoint the bus acknowledged before this call is in the table (a
   * read barrier through every partition of the topic).
   */
  async sync(): Promise<void> {
    const timeoutMs = this.opts.barrierTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`coherence checkpoints: read barrier not seen within ${timeoutMs} ms`)), timeoutMs);
    });
    const nonce = randomUUID();
    try {
      const n = await Promise.race([this.partitionCount(), timeout]);
      const seen = new Promise<void>((resolve) => this.barriers.set(nonce, { remaining: new Set(Array.from({ length: n }, (_, i) => i)), resolve }));
      const value = Buffer.from(JSON.stringify({ v: 1, barrier: nonce } satisfies BarrierWire));
      await this.opts.bus.publish(this.opts.topic, barrierKeys(n).map((key) => ({ key, value })));
      await Promise.race([seen, timeout]);
      this.stats.barriers++;
    } finally {
      clearTimeout(timer);
      this.barriers.delete(nonce);
    }
  }

  get(sessionId: string): SessionCheckpoint | undefined {
    return this.table.get(sessionId);
  }

  get size(): number {
    return this.table.size;
  }

  /** Publishes checkpoints (resolves once the bus has them durably). */
  async write(checkpoints: SessionCheckpoint[]): Promise<void> {
    if (checkpoints.length === 0) return;
    const now = (this.opts.clock ?? Date.now)();
    await this.opts.bus.publish(
      this.opts.topic,
      checkpoints.map((c) => ({ key: c.sessionId, value: encodeCheckpoint(c, now) })),
    );
    this.stats.written += checkpoints.length;
  }

  async stop(): Promise<void> {
    await this.sub?.stop();
    this.sub = null;
  }
}
