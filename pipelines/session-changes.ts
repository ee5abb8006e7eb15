// Session changes from PostgreSQL to the bus, and from the bus into the ClickHouse sessions
// dimension (issue 8: "a sessions dimension for data scientists' joins, fed from entity
// changes published on the bus, not written by the API directly").
//
// PostgreSQL → bus: the session_changes outbox (schemas/postgres/0002_session_changes.sql) is
// filled by a trigger in the transaction of every change. SessionChangesRelay takes up to
// 500 rows with FOR UPDATE SKIP LOCKED, publishes the current state of their sessions to
// attune.session.changes.v1 (compacted, keyed by session id) and deletes the rows in the
// same transaction. A crash between publish and commit publishes again; every record carries
// the session's version, so a repeat is the same row in ClickHouse. Relays in several worker
// processes share the outbox without taking the same rows.
//
// bus → ClickHouse: SessionDimensionSink writes each record as a row of `sessions`
// (ReplacingMergeTree on updated_at, which strictly increases per session) and commits the
// offset once the row is stored.
import type { Bus, Subscription } from '../bus/types.js';
import type { Logger } from '../lib/log.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import type { SessionChange } from '../schemas/registry/schemas.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import { BatchWriter } from '../store/batch-writer.js';
import type { StoreClient } from '../store/clickhouse.js';
import type { SqlClient } from '../store/postgres/client.js';
import { Tables, type SessionRow } from '../store/rows.js';
import type { DeadLetterInput } from './dead-letter.js';
import { finishSinkBatch } from './table-sink.js';
import { groupIdFor } from './group-id.js';

const BATCH = 500;

interface ChangedSessionRow {
  session_id: string;
  org_id: string;
  user_id: string;
  device_id: string | null;
  kind: string;
  title: string;
  status: string;
  started_at: Date;
  ended_at: Date | null;
  coherence_threshold: number;
  threshold_duration_s: number;
  metadata: unknown;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export function sessionChangeRecord(r: ChangedSessionRow): SessionChange {
  return {
    session_id: r.session_id,
    org_id: r.org_id,
    user_id: r.user_id,
    device_id: r.device_id ?? '',
    type: r.kind,
    title: r.title,
    status: r.status,
    started_at: r.started_at.getTime(),
    ended_at: r.ended_at ? r.ended_at.getTime() : null,
    coherence_threshold: Number(r.coherence_threshold),
    threshold_duration_s: Number(r.threshold_duration_s),
    metadata_json: JSON.stringify(r.metadata ?? {}),
    version: Number(r.version),
    created_at: r.created_at.getTime(),
    updated_at: r.updated_at.getTime(),
  };
}

export interface SessionChangesRelayOptions {
  sql: SqlClient;
  bus: Bus;
  codec: Codec;
  topics?: TopicNames;
  log: Logger;
  /** How often an empty outbox is looked at again (default 250 ms). */
  pollMs?: number;
}

export class SessionChangesRelay {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  readonly stats = { published: 0, failures: 0 };

  constructor(private readonly opts: SessionChangesRelayOptions) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /**
   * Publishes one batch of the outbox; the number of outbox rows it took. Exposed so tests
   * and shutdown can drain the outbox without waiting for the poll.
   */
  async relayOnce(): Promise<number> {
    const topics = this.opts.topics ?? Topics;
    return this.opts.sql.transaction(async (tx) => {
      const taken = await tx.query<{ session_id: string }>(
        `DELETE FROM session_changes WHERE change_id IN
           (SELECT change_id FROM session_changes ORDER BY change_id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
         RETURNING session_id`,
      );
      if (taken.rows.length === 0) return 0;
      const ids = [...new Set(taken.rows.map((r) => r.session_id))];
      const { rows } = await tx.query<ChangedSessionRow>(
        `SELECT session_id::text AS session_id, org_id, user_id, device_id, kind, title, status, started_at, ended_at,
                coherence_threshold, threshold_duration_s, metadata, version, created_at, updated_at
         FROM sessions WHERE session_id = ANY($1::uuid[])`,
        [ids],
      );
      // The current state of each changed session: one record per session, whatever number
      // of changes it had since the last batch (the topic is compacted to that anyway).
      const records = await Promise.all(
        rows.map(async (r) => {
          const value = await this.opts.codec.encode(Topics.sessionChanges, sessionChangeRecord(r));
          return { key: r.session_id, value, timestamp: r.updated_at.getTime() };
        }),
      );
      // Inside the transaction: if the bus refuses, the outbox rows come back.
      await this.opts.bus.publish(topics.sessionChanges, records);
      this.stats.published += records.length;
      return taken.rows.length;
    });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.relayOnce()
        .then((n) => this.schedule(n >= BATCH ? 0 : (this.opts.pollMs ?? 250)))
        .catch((err) => {
          this.stats.failures++;
          this.opts.log.warn({ err }, 'session changes: publishing failed; the outbox keeps them, retrying');
          this.schedule(1000);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** Stops polling after the batch in flight, then publishes what is left. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    try {
      while ((await this.relayOnce()) >= BATCH);
    } catch (err) {
      this.opts.log.warn({ err }, 'session changes: could not drain the outbox at stop; the next relay will');
    }
  }
}

export const SESSION_DIMENSION_GROUP = 'attune-session-dimension';

export function sessionRow(c: SessionChange): SessionRow {
  return {
    session_id: c.session_id,
    org_id: c.org_id,
    user_id: c.user_id,
    device_id: c.device_id,
    kind: c.type,
    title: c.title,
    status: c.status,
    started_at: c.started_at,
    ended_at: c.ended_at ?? null,
    coherence_threshold: c.coherence_threshold,
    threshold_duration_s: c.threshold_duration_s,
    created_at: c.created_at,
    updated_at: c.updated_at,
    metadata_json: c.metadata_json ?? '{}',
    version: c.version,
  };
}

export interface SessionDimensionSinkOptions {
  bus: Bus;
  codec: Codec;
  store: StoreClient;
  log: Logger;
  topics?: TopicNames;
  groupId?: string;
  writer?: { maxRows?: number; maxDelayMs?: number };
  clock?: () => number;
}

export class SessionDimensionSink {
  private subscription: Subscription | null = null;
  private readonly writer: BatchWriter<SessionRow>;
  readonly groupId: string;
  readonly stats = { rows: 0, deadLettered: 0 };

  constructor(private readonly opts: SessionDimensionSinkOptions) {
    this.groupId = opts.groupId ?? groupIdFor(SESSION_DIMENSION_GROUP, opts.topics);
    this.writer = new BatchWriter<SessionRow>({
      store: opts.store,
      table: Tables.sessions,
      maxRows: opts.writer?.maxRows,
      maxDelayMs: opts.writer?.maxDelayMs,
      log: opts.log,
      onError: (err, f) => opts.log.error({ err, ...f }, 'sessions insert keeps failing; retrying, offsets held'),
    });
  }

  async start(): Promise<void> {
    const topics = this.opts.topics ?? Topics;
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [topics.sessionChanges],
      fromBeginning: true,
      eachBatch: async (batch) => {
        const rows: SessionRow[] = [];
        const bad: DeadLetterInput[] = [];
        for (const rec of batch.records) {
          try {
            let change = decodeRecord<SessionChange>(this.opts.codec, rec.value);
            if (change instanceof Promise) change = await change;
            rows.push(sessionRow(change));
          } catch (err) {
            bad.push({ record: rec, reasonCode: 'undecodable', reason: (err as Error).message });
          }
        }
        this.stats.deadLettered += bad.length;
        this.stats.rows += rows.length;
        await finishSinkBatch(
          { bus: this.opts.bus, topics, codec: this.opts.codec, groupId: this.groupId, clock: this.opts.clock ?? Date.now, log: this.opts.log, writer: this.writer, subscription: () => this.subscription, name: 'session dimension' },
          batch,
          rows,
          bad,
        );
      },
    });
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  async stop(): Promise<void> {
    await this.writer.flush().catch((err) => this.opts.log.warn({ err }, 'session dimension: final flush failed; rows will be replayed'));
    await this.subscription?.stop();
    await this.writer.close().catch(() => undefined);
  }
}
