// The readings sink: heart readings from the bus into heart_readings, one row per beat. A
// batch record (HeartReadingBatch, schemas/reading-batches.ts) gives the same rows as its
// readings published one by one would (same reading_id, same beats).
// Rows are batched (BatchWriter: 10,000 rows or 1 s) and the partition's offset is
// committed only once the rows before it are in ClickHouse. A crash before the commit
// replays them; heart_readings is a ReplacingMergeTree on the natural key, so the replay
// changes no answer.
//
// With a sessions repository (the sink role passes one) the sink applies the coherence worker's
// clock guard (coherence/clock-guard.ts) to the same readings in the same order, so the raw
// beats of a reading the worker judges a clock jump (a forged future reading) are not stored
// either: the guard is pure, and decides from the session's sequence of readings alone. A
// reading it holds is stored once the next readings confirm the jump, or never if they refute
// it (the worker dead-letters it as future_beat; the sink counts it, `stats.quarantined`); the
// partition's commit never passes a held reading. The guard's clock starts at the session's
// started_at, or after a restart at the session's last stored beat (as the worker's starts at
// its last published window), so a replay continues where the sink was.
import { type Bus, type BusRecord, type Subscription } from '../bus/types.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import type { Codec } from '../schemas/registry/codec.js';
import { decodeReadingsValue } from '../schemas/reading-batches.js';
import type { Logger } from '../lib/log.js';
import { BatchWriter } from '../store/batch-writer.js';
import type { StoreClient } from '../store/clickhouse.js';
import { HeartReadingColumns, Tables, type HeartReadingRow } from '../store/rows.js';
import type { HeartReadingRecord } from '../schemas/records.js';
import { implausibleReading, notAHeartReading } from '../schemas/reading-limits.js';
import { batchItemDeadLetter, type DeadLetterInput } from './dead-letter.js';
import { finishSinkBatch, type TableSinkContext } from './table-sink.js';
import { groupIdFor } from './group-id.js';
import { asEndMarker } from './coherence/end-markers.js';
import { SessionClockGuard, defaultConfirmReadings } from './coherence/clock-guard.js';
import { defaultAllowedLatenessMs } from './coherence/session-windows.js';
import type { SessionsRepository } from '../store/postgres/sessions-repo.js';

export const READINGS_SINK_GROUP = 'attune-readings-sink';

/**
 * One row per beat (the reading's HR repeated on each), or one row when it has only an HR.
 * Rows are built as one literal shape (no spreads) so that V8 keeps them on its fast paths
 * for allocation and JSON.stringify: this runs for every beat ingested.
 */
export function readingToRows(r: HeartReadingRecord, out: HeartReadingRow[]): void {
  const sessionId = r.session_id ?? '';
  const rr = r.rr_intervals_ms;
  const n = rr.length;
  if (n === 0) {
    out.push(row(r, sessionId, r.recorded_at, 0, null));
    return;
  }
  // Beat i ends at recorded_at minus the intervals after it (see beatTimes); walked backwards.
  let t = r.recorded_at;
  const start = out.length;
  out.length = start + n;
  for (let i = n - 1; i >= 0; i--) {
    out[start + i] = row(r, sessionId, Math.round(t), i, rr[i]);
    t -= rr[i];
  }
}

function row(r: HeartReadingRecord, sessionId: string, eventTime: number, beatIndex: number, rrMs: number | null): HeartReadingRow {
  return {
    event_time: eventTime,
    org_id: r.org_id,
    user_id: r.user_id,
    device_id: r.device_id,
    session_id: sessionId,
    reading_id: r.reading_id,
    beat_index: beatIndex,
    rr_ms: rrMs,
    hr_bpm: r.hr_bpm,
    device_hrv_ms: r.device_hrv_ms,
    device_coherence: r.device_coherence,
    battery_level_pct: r.battery_level_pct,
    source: r.source,
    received_at: r.received_at,
  };
}

export interface ReadingsSinkOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  store: StoreClient;
  log: Logger;
  writer?: { maxRows?: number; maxDelayMs?: number };
  /** Default: READINGS_SINK_GROUP behind the topics' prefix (pipelines/group-id.ts). */
  groupId?: string;
  clock?: () => number;
  /** Sessions' start times: with it the sink applies the coherence worker's clock guard. */
  sessions?: Pick<SessionsRepository, 'get'>;
  /** As the coherence worker's (default: the allowed lateness, 10 s). */
  clockHorizonMs?: number;
  /** As the coherence worker's (default 3; 1 turns the guard off). */
  confirmReadings?: number;
  /** As the coherence worker's: a session silent this long in its partition's event time lets go of what its guard holds. Default 300,000. */
  sessionIdleEndMs?: number;
}

interface Held {
  rows: HeartReadingRow[];
  offset: bigint;
}

interface GuardedPartition {
  guards: Map<string, SessionClockGuard<Held>>;
  /** Newest beat the guard let through in the partition, ms (event time). */
  maxEventTimeMs: number;
}

export class ReadingsSink {
  private subscription: Subscription | null = null;
  private readonly writer: BatchWriter<HeartReadingRow>;
  readonly groupId: string;
  readonly stats = { readings: 0, rows: 0, deadLettered: 0, implausible: 0, endMarkers: 0, held: 0, quarantined: 0 };
  private readonly partitions = new Map<number, GuardedPartition>();

  constructor(private readonly opts: ReadingsSinkOptions) {
    this.groupId = opts.groupId ?? groupIdFor(READINGS_SINK_GROUP, opts.topics);
    this.writer = new BatchWriter<HeartReadingRow>({
      store: opts.store,
      table: Tables.heartReadings,
      columns: HeartReadingColumns,
      compact: true,
      maxRows: opts.writer?.maxRows,
      maxDelayMs: opts.writer?.maxDelayMs,
      log: opts.log,
      onError: (err, f) => opts.log.error({ err, ...f }, 'heart_readings insert keeps failing; retrying, offsets held'),
    });
  }

  private get sinkContext(): TableSinkContext<HeartReadingRow> {
    const o = this.opts;
    return { bus: o.bus, topics: o.topics ?? Topics, codec: o.codec, groupId: this.groupId, clock: o.clock ?? Date.now, log: o.log, writer: this.writer, subscription: () => this.subscription, name: 'readings sink' };
  }

  async start(): Promise<void> {
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [(this.opts.topics ?? Topics).heartReadings],
      fromBeginning: true,
      // Taken away: the new owner rebuilds what was held from the commit, which never passed it.
      onAssignment: (assigned) => {
        const keep = new Set(assigned.map((a) => a.partition));
        for (const k of [...this.partitions.keys()]) if (!keep.has(k)) this.partitions.delete(k);
      },
      eachBatch: async (batch) => {
        const guarded = this.opts.sessions ? this.partitionOf(batch.partition) : null;
        const rows: HeartReadingRow[] = [];
        const bad: DeadLetterInput[] = [];
        /** In guarded mode: the readings with beats and the end markers, in offset order, for the guard. */
        const steps: Array<{ reading: HeartReadingRecord; offset: bigint } | { endOf: string }> = [];
        for (const rec of batch.records) {
          try {
            let decoded = decodeReadingsValue(this.opts.codec, rec.value);
            if (decoded instanceof Promise) decoded = await decoded;
            if (decoded.kind === 'batch') {
              // Many readings in one record (HeartReadingBatch): each judged on its own, an
              // implausible one dead-lettered alone (with its index), the others stored.
              const offset = guarded ? BigInt(rec.offset) : 0n;
              const readings = decoded.readings;
              for (let i = 0; i < readings.length; i++) {
                const reading = readings[i];
                const implausible = implausibleReading(reading);
                if (implausible) {
                  bad.push(batchItemDeadLetter(this.opts.codec, rec, i, reading, implausible.reason, implausible.field + ': ' + implausible.message));
                  this.stats.implausible++;
                  continue;
                }
                this.stats.readings++;
                if (guarded && reading.session_id && reading.rr_intervals_ms.length > 0) steps.push({ reading, offset });
                else readingToRows(reading, rows);
              }
              continue;
            }
            const reading = decoded.value as HeartReadingRecord;
            // A session's end marker (coherence/end-markers.ts) shares the partition; no rows.
            const marker = asEndMarker(reading);
            if (marker) {
              this.stats.endMarkers++;
              if (guarded) steps.push({ endOf: marker.sessionId });
              continue;
            }
            const wrong = notAHeartReading(reading);
            if (wrong) {
              bad.push({ record: rec, reasonCode: 'invalid_record', reason: wrong });
              continue;
            }
            // The gateway's plausibility checks, again: RR −5 ms or 99,999 ms is not stored.
            const implausible = implausibleReading(reading);
            if (implausible) {
              bad.push({ record: rec, reasonCode: implausible.reason, reason: implausible.field + ': ' + implausible.message });
              this.stats.implausible++;
              continue;
            }
            this.stats.readings++;
            if (guarded && reading.session_id && reading.rr_intervals_ms.length > 0) steps.push({ reading, offset: BigInt(rec.offset) });
            else readingToRows(reading, rows);
          } catch (err) {
            bad.push({ record: rec, reasonCode: 'undecodable', reason: (err as Error).message });
          }
        }
        let commitAt: string | undefined;
        if (guarded) {
          // Everything that can fail (dead letters, look-ups) before the guards change, so a
          // batch delivered again after a failure is offered to them once.
          if (bad.length > 0) {
            await finishSinkBatch(this.sinkContext, { ...batch, records: [] }, [], bad);
            this.stats.deadLettered += bad.length;
            bad.length = 0;
          }
          await this.prepareGuards(guarded, steps);
          for (const step of steps) {
            if ('endOf' in step) this.letGo(guarded, step.endOf);
            else this.guard(guarded, step.reading, step.offset, rows);
          }
          this.stats.held = this.heldCount();
          commitAt = this.commitOffset(guarded, batch.records);
        }
        this.stats.deadLettered += bad.length;
        this.stats.rows += rows.length;
        await finishSinkBatch(this.sinkContext, batch, rows, bad, commitAt);
      },
    });
  }

  private partitionOf(partition: number): GuardedPartition {
    let p = this.partitions.get(partition);
    if (!p) this.partitions.set(partition, (p = { guards: new Map(), maxEventTimeMs: -Infinity }));
    return p;
  }

  /** Creates the guards of sessions first seen in these steps (their start, their last stored beat). */
  private async prepareGuards(p: GuardedPartition, steps: Array<{ reading: HeartReadingRecord; offset: bigint } | { endOf: string }>): Promise<void> {
    const fresh = new Set<string>();
    for (const s of steps) if ('reading' in s && !p.guards.has(s.reading.session_id!)) fresh.add(s.reading.session_id!);
    for (const id of fresh) {
      const session = await this.opts.sessions!.get(id);
      const stored = await this.lastStoredBeat(id);
      p.guards.set(
        id,
        new SessionClockGuard<Held>({
          horizonMs: this.opts.clockHorizonMs ?? defaultAllowedLatenessMs,
          confirmReadings: this.opts.confirmReadings ?? defaultConfirmReadings,
          startMs: Math.max(session?.startedAt ?? -Infinity, stored),
        }),
      );
    }
  }

  /** Offers a reading to its session's guard; released rows go to `rows`. */
  private guard(p: GuardedPartition, reading: HeartReadingRecord, offset: bigint, rows: HeartReadingRow[]): void {
    let g = p.guards.get(reading.session_id!);
    if (!g) {
      // Let go earlier in this batch (its marker, or silence) and read again: a fresh start.
      g = new SessionClockGuard<Held>({ horizonMs: this.opts.clockHorizonMs ?? defaultAllowedLatenessMs, confirmReadings: this.opts.confirmReadings ?? defaultConfirmReadings });
      p.guards.set(reading.session_id!, g);
    }
    let startMs = reading.recorded_at;
    for (const v of reading.rr_intervals_ms) startMs -= v;
    // The common case (nothing held, the reading continues the clock): its rows go straight
    // out, as offer() would release them, without a held item and a decision per reading.
    if (g.passes(startMs, reading.recorded_at)) readingToRows(reading, rows);
    else {
      const item: Held = { rows: [], offset };
      readingToRows(reading, item.rows);
      const decision = g.offer(startMs, reading.recorded_at, offset, item);
      this.stats.quarantined += decision.quarantine.length;
      for (const h of decision.release) for (const r of h.rows) rows.push(r);
    }
    if (g.clockMs > p.maxEventTimeMs) {
      p.maxEventTimeMs = g.clockMs;
      // A session silent for sessionIdleEndMs of its partition's event time is ended by the
      // worker, and what its guard holds is quarantined: the same here.
      const idle = this.opts.sessionIdleEndMs ?? 300_000;
      for (const [sid, other] of p.guards) if (other.clockMs + idle < p.maxEventTimeMs) this.letGo(p, sid);
    }
  }

  /** The session ended (its marker, or silence): what its guard still holds was never confirmed. */
  private letGo(p: GuardedPartition, sessionId: string): void {
    const g = p.guards.get(sessionId);
    if (!g) return;
    this.stats.quarantined += g.drop().length;
    p.guards.delete(sessionId);
  }

  private heldCount(): number {
    let n = 0;
    for (const p of this.partitions.values()) for (const g of p.guards.values()) n += g.heldCount;
    return n;
  }

  /** Past the batch, unless a reading the guard holds is older: the commit never passes it. */
  private commitOffset(p: GuardedPartition, records: BusRecord[]): string | undefined {
    const last = records[records.length - 1];
    if (!last) return undefined;
    let min = BigInt(last.offset) + 1n;
    for (const g of p.guards.values()) {
      const h = g.heldMinOffset();
      if (h !== null && h < min) min = h;
    }
    return min.toString();
  }

  /** The session's newest stored beat, ms (-Infinity without one): where a restarted sink's guard clock starts. */
  private async lastStoredBeat(sessionId: string): Promise<number> {
    const rs = await this.opts.store.client.query({
      query: `SELECT toUnixTimestamp64Milli(max(event_time)) AS t, count() AS n FROM ${this.opts.store.table(Tables.heartReadings)} WHERE session_id = {id:String}`,
      query_params: { id: sessionId },
      format: 'JSONEachRow',
    });
    const [row] = (await rs.json()) as Array<{ t: string | number; n: string | number }>;
    return row && Number(row.n) > 0 ? Number(row.t) : -Infinity;
  }

  /** Resolves once every row taken so far is in ClickHouse. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Flushes and commits what is buffered while still in the group, then leaves it. */
  async stop(): Promise<void> {
    await this.writer.flush().catch((err) => this.opts.log.warn({ err }, 'readings sink: final flush failed; rows will be replayed'));
    await this.subscription?.stop();
    await this.writer.close().catch(() => undefined);
  }
}
