// The readings sink: heart readings from the bus into heart_readings, one row per beat.
// Rows are batched (BatchWriter: 10,000 rows or 1 s) and the partition's offset is
// committed only once the rows before it are in ClickHouse. A crash before the commit
// replays them; heart_readings is a ReplacingMergeTree on the natural key, so the replay
// changes no answer.
import { type Bus, type BusRecord, type Subscription } from '../bus/types.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import type { Logger } from '../lib/log.js';
import { BatchWriter } from '../store/batch-writer.js';
import type { StoreClient } from '../store/clickhouse.js';
import { HeartReadingColumns, Tables, type HeartReadingRow } from '../store/rows.js';
import type { HeartReadingRecord } from '../schemas/records.js';
import { implausibleReading, notAHeartReading } from '../schemas/reading-limits.js';
import type { DeadLetterInput } from './dead-letter.js';
import { finishSinkBatch, type TableSinkContext } from './table-sink.js';
import { groupIdFor } from './group-id.js';
import { asEndMarker } from './coherence/end-markers.js';

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
}

export class ReadingsSink {
  private subscription: Subscription | null = null;
  private readonly writer: BatchWriter<HeartReadingRow>;
  readonly groupId: string;
  readonly stats = { readings: 0, rows: 0, deadLettered: 0, implausible: 0, endMarkers: 0 };

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
      eachBatch: async (batch) => {
        const rows: HeartReadingRow[] = [];
        const bad: DeadLetterInput[] = [];
        for (const rec of batch.records) {
          try {
            let reading = decodeRecord<HeartReadingRecord>(this.opts.codec, rec.value);
            if (reading instanceof Promise) reading = await reading;
            // A session's end marker (coherence/end-markers.ts) shares the partition; no rows.
            if (asEndMarker(reading)) {
              this.stats.endMarkers++;
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
            readingToRows(reading, rows);
            this.stats.readings++;
          } catch (err) {
            bad.push({ record: rec, reasonCode: 'undecodable', reason: (err as Error).message });
          }
        }
        this.stats.deadLettered += bad.length;
        this.stats.rows += rows.length;
        await finishSinkBatch(this.sinkContext, batch, rows, bad);
      },
    });
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
