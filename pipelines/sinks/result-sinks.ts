// The result sinks (issue 10: compute workers are Kafka in, Kafka out): the coherence worker
// publishes windows and session events; these consumers, in groups of their own, write them to
// ClickHouse (and the group events sink writes the API's and the group worker's mesh events).
// Like the readings sink (table-sink.ts): rows batched by BatchWriter, a partition's
// offset committed only once the rows before it are inserted, and while inserts fail the writer
// holds its rows and, past its buffer, blocks the handler, so the partition delivers nothing new
// (the bus keeps the member alive meanwhile) and nothing is lost.
//
// Idempotent on replay: both tables are ReplacingMergeTrees on the record's natural key, so a
// record written twice is one row under FINAL. Windows go further, since "rows as inserted"
// is an answer too (the suites compare them): the sink writes a session's windows only past the
// last window_end it holds for that session (read from coherence_windows on first sight, then
// kept), so a window the worker published twice (a crash between the windows and their
// checkpoint, pipelines/coherence/checkpoints.ts) or a sink replay after a crash is inserted
// once. A session's windows come in window-end order: they are keyed by session id, so one
// partition holds them, and the worker never publishes a window at or before one it published.
import type { Bus, Subscription } from '../../bus/types.js';
import type { Logger } from '../../lib/log.js';
import type { Codec } from '../../schemas/registry/codec.js';
import type { CoherenceWindowRecord, MeshEventRecord, SessionEventRecord } from '../../schemas/records.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import { BatchWriter } from '../../store/batch-writer.js';
import type { StoreClient } from '../../store/clickhouse.js';
import { CoherenceWindowColumns, Tables, type CoherenceWindowRow, type GroupEventRow, type SessionEventRow } from '../../store/rows.js';
import { groupIdFor } from '../group-id.js';
import { decodeSinkBatch, finishSinkBatch } from '../table-sink.js';

export const COHERENCE_WINDOWS_SINK_GROUP = 'attune-coherence-windows-sink';
export const SESSION_EVENTS_SINK_GROUP = 'attune-session-events-sink';
export const GROUP_EVENTS_SINK_GROUP = 'attune-group-events-sink';

export interface ResultSinkOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  store: StoreClient;
  log: Logger;
  writer?: { maxRows?: number; maxDelayMs?: number; maxBufferedRows?: number };
  /** Default: the sink's group behind the topics' prefix (pipelines/group-id.ts). */
  groupId?: string;
  clock?: () => number;
}

/** Why a decoded value is not a coherence window (another schema on the topic), or null. */
export function notACoherenceWindow(r: unknown): string | null {
  const w = r as Partial<CoherenceWindowRecord> | null;
  if (!w || typeof w !== 'object') return 'not a record';
  if (typeof w.session_id !== 'string' || w.session_id === '') return 'not a CoherenceWindow: no session_id';
  if (typeof w.window_end !== 'number' || typeof w.window_start !== 'number') return 'not a CoherenceWindow: no window_start / window_end';
  if (typeof w.valid !== 'boolean' || typeof w.beat_count !== 'number') return 'not a CoherenceWindow: no valid / beat_count';
  return null;
}

/** Why a decoded value is not a session event, or null. */
export function notASessionEvent(r: unknown): string | null {
  const e = r as Partial<SessionEventRecord> | null;
  if (!e || typeof e !== 'object') return 'not a record';
  if (typeof e.event_id !== 'string' || e.event_id === '') return 'not a SessionEvent: no event_id';
  if (typeof e.type !== 'string' || typeof e.occurred_at !== 'number' || typeof e.session_id !== 'string') return 'not a SessionEvent: no type / occurred_at / session_id';
  return null;
}

abstract class ResultSink<Rec, Row extends object> {
  protected subscription: Subscription | null = null;
  protected readonly writer: BatchWriter<Row>;
  readonly groupId: string;
  readonly stats = { records: 0, rows: 0, duplicates: 0, deadLettered: 0 };
  protected readonly topics: TopicNames;
  protected readonly clock: () => number;

  constructor(
    protected readonly opts: ResultSinkOptions,
    private readonly spec: { group: string; topic: (t: TopicNames) => string; table: string; columns?: string[]; name: string; invalid: (r: unknown) => string | null },
  ) {
    this.topics = opts.topics ?? Topics;
    this.clock = opts.clock ?? Date.now;
    this.groupId = opts.groupId ?? groupIdFor(spec.group, this.topics);
    this.writer = new BatchWriter<Row>({
      store: opts.store,
      table: spec.table,
      columns: spec.columns,
      compact: spec.columns !== undefined,
      maxRows: opts.writer?.maxRows,
      maxDelayMs: opts.writer?.maxDelayMs,
      maxBufferedRows: opts.writer?.maxBufferedRows,
      log: opts.log,
      onError: (err, f) => opts.log.error({ err, ...f }, `${spec.table} insert keeps failing; retrying, offsets held`),
    });
  }

  /** The rows of a batch's valid records, in order (may look up the store). */
  protected abstract rows(records: Rec[]): Promise<Row[]>;

  /** Partitions changed hands: what the sink remembers per key may be stale. */
  protected onAssignment(): void {}

  async start(): Promise<void> {
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [this.spec.topic(this.topics)],
      fromBeginning: true,
      onAssignment: () => this.onAssignment(),
      eachBatch: async (batch) => {
        const decoded = await decodeSinkBatch<Rec>(this.opts.codec, batch.records, this.spec.invalid);
        const good = decoded.good.map((g) => g.value);
        const bad = decoded.bad;
        const rows = await this.rows(good);
        this.stats.records += good.length;
        this.stats.rows += rows.length;
        this.stats.deadLettered += bad.length;
        await finishSinkBatch(
          { bus: this.opts.bus, topics: this.topics, codec: this.opts.codec, groupId: this.groupId, clock: this.clock, log: this.opts.log, writer: this.writer, subscription: () => this.subscription, name: this.spec.name },
          batch,
          rows,
          bad,
        );
      },
    });
  }

  /** Resolves once every row taken so far is in ClickHouse. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Flushes and commits what is buffered while still in the group, then leaves it. */
  async stop(): Promise<void> {
    await this.writer.flush().catch((err) => this.opts.log.warn({ err }, `${this.spec.name}: final flush failed; rows will be replayed`));
    await this.subscription?.stop();
    await this.writer.close().catch(() => undefined);
  }
}

/** attune.coherence.windows.v1 → coherence_windows, each window once. */
export class CoherenceWindowsSink extends ResultSink<CoherenceWindowRecord, CoherenceWindowRow> {
  /** Per session: the last window_end written (or stored before this sink saw the session). */
  private readonly through = new Map<string, number>();
  private stale = false;
  /** Sessions remembered before the map is let go (and read again from the store). */
  static readonly maxSessions = 100_000;

  constructor(opts: ResultSinkOptions) {
    super(opts, {
      group: COHERENCE_WINDOWS_SINK_GROUP,
      topic: (t) => t.coherenceWindows,
      table: Tables.coherenceWindows,
      columns: CoherenceWindowColumns,
      name: 'coherence windows sink',
      invalid: notACoherenceWindow,
    });
  }

  protected override onAssignment(): void {
    this.stale = true;
  }

  protected async rows(records: CoherenceWindowRecord[]): Promise<CoherenceWindowRow[]> {
    if (this.stale || this.through.size > CoherenceWindowsSink.maxSessions) {
      // Another sink may have written these sessions meanwhile; what this one buffered must be
      // in the store before the store is asked again.
      await this.writer.flush();
      this.through.clear();
      this.stale = false;
    }
    const fresh = [...new Set(records.map((r) => r.session_id).filter((id) => !this.through.has(id)))];
    if (fresh.length > 0) {
      const rs = await this.opts.store.client.query({
        query: `SELECT session_id, toUnixTimestamp64Milli(max(window_end)) AS last_end_ms
                FROM ${this.opts.store.table(Tables.coherenceWindows)}
                WHERE session_id IN {ids:Array(String)} GROUP BY session_id`,
        query_params: { ids: fresh },
        format: 'JSONEachRow',
      });
      for (const row of (await rs.json()) as Array<{ session_id: string; last_end_ms: string | number }>) this.through.set(row.session_id, Number(row.last_end_ms));
      for (const id of fresh) if (!this.through.has(id)) this.through.set(id, -Infinity);
    }
    const now = this.clock();
    const out: CoherenceWindowRow[] = [];
    for (const w of records) {
      if (w.window_end <= this.through.get(w.session_id)!) {
        this.stats.duplicates++;
        continue;
      }
      this.through.set(w.session_id, w.window_end);
      out.push({ ...w, computed_at: now });
    }
    return out;
  }
}

/** attune.session.events.v1 → session_events (ReplacingMergeTree on event_id: a repeat is one row under FINAL). */
export class SessionEventsSink extends ResultSink<SessionEventRecord, SessionEventRow> {
  constructor(opts: ResultSinkOptions) {
    super(opts, {
      group: SESSION_EVENTS_SINK_GROUP,
      topic: (t) => t.sessionEvents,
      table: Tables.sessionEvents,
      name: 'session events sink',
      invalid: notASessionEvent,
    });
  }

  protected async rows(records: SessionEventRecord[]): Promise<SessionEventRow[]> {
    return records.map((e) => ({ event_id: e.event_id, session_id: e.session_id, org_id: e.org_id, user_id: e.user_id, type: e.type, occurred_at: e.occurred_at, payload_json: e.payload_json }));
  }
}

/** Why a decoded value is not a mesh event, or null. */
export function notAMeshEvent(r: unknown): string | null {
  const e = r as Partial<MeshEventRecord> | null;
  if (!e || typeof e !== 'object') return 'not a record';
  if (typeof e.event_id !== 'string' || e.event_id === '') return 'not a MeshEvent: no event_id';
  if (typeof e.type !== 'string' || typeof e.occurred_at !== 'number' || typeof e.mesh_id !== 'string' || e.mesh_id === '') return 'not a MeshEvent: no type / occurred_at / mesh_id';
  return null;
}

/**
 * attune.mesh.events.v1 → group_events (ReplacingMergeTree on event_id), every type but
 * group_coherence: its final figures are group_windows' rows, and its provisional copies are
 * never stored.
 */
export class GroupEventsSink extends ResultSink<MeshEventRecord, GroupEventRow> {
  constructor(opts: ResultSinkOptions) {
    super(opts, {
      group: GROUP_EVENTS_SINK_GROUP,
      topic: (t) => t.meshEvents,
      table: Tables.groupEvents,
      name: 'group events sink',
      invalid: notAMeshEvent,
    });
  }

  protected async rows(records: MeshEventRecord[]): Promise<GroupEventRow[]> {
    const now = this.clock();
    return records
      .filter((e) => e.type !== 'group_coherence')
      .map((e) => ({ event_id: e.event_id, org_id: e.org_id, group_id: e.mesh_id, type: e.type, occurred_at: e.occurred_at, payload_json: e.payload_json, computed_at: now }));
  }
}
