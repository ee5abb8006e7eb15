// attune.speech.results.v1 → the speech_* tables (schemas/clickhouse/0002, 0003), and the end of
// a speech stream: the speech worker computes and publishes (pipelines/speech/worker.ts), this
// sink stores, in the sink role beside the other result sinks (result-sinks.ts).
//
// A record with `completion` is the last of its stream (records are keyed by session, so the
// stream's records before it are read first, from the same partition): the sink makes every row
// it holds durable, then marks the upload completed, then the session (a client that sees the
// session completed finds its upload completed too, and its results stored), then publishes
// the processing:status `done` event. Only then is the partition's offset committed.
//
// Before that, once its rows are stored, the session's rows of its other streams (a failed run
// that a retry replaces) are deleted: deleteOtherStreams, 0012_speech_stream_id.sql.
//
// Idempotent on replay: every table is a ReplacingMergeTree on the rows' natural key with
// computed_at as the version, so rows written twice (a sink replay, a worker that recomputed a
// stream after a crash) are one row under FINAL; completing twice sets the same values and
// sends the same event id. While inserts fail the writers hold their rows (and, past their
// buffers, block the handler): the partition delivers nothing new and nothing is lost. A
// completion whose session no longer exists (deleted meanwhile) is logged and passed; one that
// PostgreSQL refuses for good (a coded error: a conflict, an invalid value) is dead-lettered
// with the reason and passed, so no record can stall the partition; a failure to reach
// PostgreSQL is retried in place (back-off 200 ms doubling to 5 s) while the partition waits,
// as a failing insert is; a stop gives up and the batch is delivered again next time.
import type { Bus, BusRecord, Subscription } from '../../bus/types.js';
import { AttuneError } from '../../lib/errors.js';
import { Delays } from '../../lib/delays.js';
import type { Logger } from '../../lib/log.js';
import type { Codec } from '../../schemas/registry/codec.js';
import type { SpeechResult } from '../../schemas/registry/schemas.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import { BatchWriter } from '../../store/batch-writer.js';
import type { StoreClient } from '../../store/clickhouse.js';
import type { SpeechSessionsRepository, SpeechUploadsRepository } from '../../store/postgres/speech-sessions-repo.js';
import {
  SpeechFillerColumns,
  SpeechFrameColumns,
  SpeechPauseColumns,
  SpeechScoreColumns,
  SpeechSegmentColumns,
  SpeechSummaryColumns,
  SpeechTables,
  SpeechWordColumns,
} from '../../store/rows.js';
import { deadLetter, deadLetterReason } from '../dead-letter.js';
import { decodeSinkBatch } from '../table-sink.js';
import { groupIdFor } from '../group-id.js';
import { notASpeechResult, speechResultRows, type SpeechResultRows } from '../speech/result-records.js';
import { speechStatusEvent } from '../speech/status-event.js';

export const SPEECH_RESULTS_SINK_GROUP = 'attune-speech-results-sink';
/** How long a completion waits on ClickHouse to delete the rows of the session's other streams. */
export const DELETE_OTHER_STREAMS_GIVE_UP_MS = 60_000;

export interface SpeechResultsSinkOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  store: StoreClient;
  sessions: SpeechSessionsRepository;
  uploads: SpeechUploadsRepository;
  log: Logger;
  writer?: { maxRows?: number; maxDelayMs?: number; maxBufferedRows?: number };
  groupId?: string;
  clock?: () => number;
}

/** What the sink needs of a table's writer, whatever its row type (method syntax: rows of any table). */
interface TableWriter {
  add(rows: object[], onDurable?: () => void): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
type Writers = Record<keyof SpeechResultRows, TableWriter>;

export class SpeechResultsSink {
  readonly groupId: string;
  readonly stats = { records: 0, rows: 0, completed: 0, deadLettered: 0, otherStreamDeletes: 0, otherStreamDeleteFailures: 0 };
  private subscription: Subscription | null = null;
  private stopping = false;
  private readonly delays = new Delays();
  private readonly writers: Writers;
  private readonly topics: TopicNames;
  private readonly clock: () => number;

  constructor(private readonly opts: SpeechResultsSinkOptions) {
    this.topics = opts.topics ?? Topics;
    this.clock = opts.clock ?? Date.now;
    this.groupId = opts.groupId ?? groupIdFor(SPEECH_RESULTS_SINK_GROUP, this.topics);
    const writer = <Row extends object>(table: string, columns: string[]) =>
      new BatchWriter<Row>({
        store: opts.store,
        table,
        columns,
        compact: true,
        maxRows: opts.writer?.maxRows,
        maxDelayMs: opts.writer?.maxDelayMs,
        maxBufferedRows: opts.writer?.maxBufferedRows,
        log: opts.log,
        onError: (err, f) => opts.log.error({ err, ...f }, `${table} insert keeps failing; retrying, offsets held`),
      });
    this.writers = {
      segments: writer(SpeechTables.speechSegments, SpeechSegmentColumns),
      words: writer(SpeechTables.speechWords, SpeechWordColumns),
      fillers: writer(SpeechTables.speechFillers, SpeechFillerColumns),
      pauses: writer(SpeechTables.speechPauses, SpeechPauseColumns),
      frames: writer(SpeechTables.speechFrames, SpeechFrameColumns),
      summaries: writer(SpeechTables.speechSummaries, SpeechSummaryColumns),
      scores: writer(SpeechTables.speechScores, SpeechScoreColumns),
    };
  }

  async start(): Promise<void> {
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [this.topics.speechResults],
      fromBeginning: true,
      eachBatch: async (batch) => {
        const { good, bad } = await decodeSinkBatch<SpeechResult>(this.opts.codec, batch.records, notASpeechResult);
        const completions: Array<{ result: SpeechResult; record: BusRecord }> = [];
        const rows: SpeechResultRows = { segments: [], words: [], fillers: [], pauses: [], frames: [], summaries: [], scores: [] };
        for (const { value: r, record } of good) {
          this.stats.records++;
          const of = speechResultRows(r);
          for (const k of Object.keys(rows) as Array<keyof SpeechResultRows>) for (const row of of[k]) (rows[k] as object[]).push(row);
          if (r.completion) completions.push({ result: r, record });
        }
        if (bad.length > 0) {
          await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, bad, this.clock());
          this.stats.deadLettered += bad.length;
          this.opts.log.warn({ count: bad.length, partition: batch.partition }, 'speech results sink dead-lettered records');
        }
        const last = batch.records[batch.records.length - 1];
        if (!last) return;
        const next = (BigInt(last.offset) + 1n).toString();
        const kinds = Object.keys(rows) as Array<keyof SpeechResultRows>;
        for (const k of kinds) this.stats.rows += rows[k].length;
        if (completions.length === 0) {
          // Committed once every table holds the batch's rows.
          let pending = kinds.length;
          const durable = () => {
            if (--pending > 0) return;
            this.commit(batch.topic, batch.partition, next);
          };
          for (const k of kinds) await this.writers[k].add(rows[k], durable);
          return;
        }
        for (const k of kinds) await this.writers[k].add(rows[k]);
        // A stream completes only once its rows are stored. flush() rejects every few failed
        // inserts (the writer keeps retrying): wait on, rather than hand the batch back to the bus
        // only for it to buffer the same rows again.
        for (;;) {
          try {
            await this.flush();
            break;
          } catch (err) {
            if (this.stopping) throw err;
          }
        }
        for (const c of completions) await this.complete(c.result, c.record);
        this.commit(batch.topic, batch.partition, next);
      },
    });
  }

  private commit(topic: string, partition: number, offset: string): void {
    this.subscription?.commit(topic, partition, offset).catch((err) => {
      this.opts.log.warn({ err, partition }, 'speech results sink commit failed; the records will be replayed');
    });
  }

  /** The upload, then the session, completed; then the `done` event (after a crash in between, all again). */
  private async complete(r: SpeechResult, record: BusRecord): Promise<void> {
    const c = r.completion!;
    await this.deleteOtherStreamsRetrying(r);
    let now = this.clock();
    for (let backoff = 200; ; backoff = Math.min(backoff * 2, 5000)) {
      try {
        if (r.source === 'upload') {
          await this.opts.uploads.update(r.stream_id, { status: 'completed', stage: 'done', progress: 1, etaS: null, completedAt: now });
        }
        await this.opts.sessions.update(r.session_id, { status: 'completed', endedAt: r.audio_started_at + c.duration_ms, audioDurationS: c.duration_ms / 1000 });
        break;
      } catch (err) {
        if (err instanceof AttuneError && err.code !== 'unavailable') return this.notCompleted(r, record, err);
        // Not reached (a connection error): wait and try again, unless the sink stops.
        if (this.stopping) throw err;
        this.opts.log.warn({ err, session: r.session_id, retryInMs: backoff }, 'speech stream not completed yet: PostgreSQL failed; retrying');
        await this.delays.wait(backoff); // stop() ends it at once
        if (this.stopping) throw err;
        now = this.clock();
      }
    }
    await this.completed(r, now);
  }

  /**
   * Deletes the session's rows written by its other streams (a failed run before this one:
   * 0012_speech_stream_id.sql), in every speech table, once this stream's rows are stored and
   * before the session says completed. One query finds the tables that have any (usually none:
   * a first run), and only those get a lightweight DELETE. Rows without a stream id (written
   * before 0012) are left: the stream that wrote them may be this one.
   */
  private async deleteOtherStreams(r: SpeechResult): Promise<void> {
    const { store } = this.opts;
    const where = `org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String} AND stream_id NOT IN ('', {stream:String})`;
    const params = { org: r.org_id, user: r.user_id, sid: r.session_id, stream: r.stream_id };
    const tables: string[] = Object.values(SpeechTables);
    // One row at most per table. speech_terms is ordered by (org, user, term, session): its
    // probe reads the segments' own rows (term ''), a key range, not every term of the user;
    // a run that wrote any term wrote those.
    const probe = (t: string) => `(SELECT '${t}' AS t FROM ${store.table(t)} WHERE ${where}${t === SpeechTables.speechTerms ? " AND term = ''" : ''} LIMIT 1)`;
    const rs = await store.client.query({
      query: tables.map(probe).join(' UNION ALL '),
      query_params: params,
      format: 'JSONEachRow',
    });
    const stale = new Set(((await rs.json()) as Array<{ t: string }>).map((x) => x.t));
    for (const t of tables) {
      if (!stale.has(t)) continue;
      await store.client.command({ query: `DELETE FROM ${store.table(t)} WHERE ${where}`, query_params: params });
      this.stats.otherStreamDeletes++;
    }
    if (stale.size > 0) this.opts.log.info({ session: r.session_id, stream: r.stream_id, tables: [...stale] }, 'rows of the session\'s earlier streams deleted');
  }

  /**
   * deleteOtherStreams, tried again (back-off 200 ms doubling to 5 s) while ClickHouse fails,
   * for DELETE_OTHER_STREAMS_GIVE_UP_MS at most: then the completion goes on without it (logged
   * at error, counted), so an error that waiting does not cure (a user without the DELETE
   * grant, say) costs the session its cleanup, never the partition its progress.
   */
  private async deleteOtherStreamsRetrying(r: SpeechResult): Promise<void> {
    const giveUpAt = this.clock() + DELETE_OTHER_STREAMS_GIVE_UP_MS;
    for (let backoff = 200; ; backoff = Math.min(backoff * 2, 5000)) {
      try {
        return await this.deleteOtherStreams(r);
      } catch (err) {
        if (this.stopping) throw err;
        if (this.clock() >= giveUpAt) {
          this.stats.otherStreamDeleteFailures++;
          this.opts.log.error({ err, session: r.session_id, stream: r.stream_id }, 'rows of the session\'s earlier streams not deleted: ClickHouse kept failing; completing without');
          return;
        }
        this.opts.log.warn({ err, session: r.session_id, retryInMs: backoff }, 'deleting rows of the session\'s earlier streams failed; retrying');
        await this.delays.wait(backoff);
        if (this.stopping) throw err;
      }
    }
  }

  /** A completion PostgreSQL refused with a coded error: passed (deleted session) or dead-lettered. */
  private async notCompleted(r: SpeechResult, record: BusRecord, err: AttuneError): Promise<void> {
    if (err.code === 'not_found') {
      // Deleted while it was processed: its rows are stored, there is nothing to complete.
      this.opts.log.warn({ session: r.session_id, stream: r.stream_id, err }, 'speech results of a session that no longer exists');
      return;
    }
    // Refused for good: trying again would stall the partition.
    this.opts.log.error({ session: r.session_id, stream: r.stream_id, err }, 'speech stream not completed: dead-lettered');
    const why = `completion refused: ${err.code}: ${err.message}`;
    await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, [{ record, reasonCode: deadLetterReason(err), reason: why }], this.clock());
    this.stats.deadLettered++;
  }

  /** Counted, and the `done` event sent (best effort). */
  private async completed(r: SpeechResult, now: number): Promise<void> {
    const c = r.completion!;
    this.stats.completed++;
    // score: the webhook's session.completed carries it (pipelines/webhooks).
    const event = speechStatusEvent(
      { sessionId: r.session_id, orgId: r.org_id, userId: r.user_id, streamId: r.stream_id, source: r.source },
      now,
      'done',
      1,
      null,
      'completed',
      { wordCount: c.word_count, durationS: c.duration_ms / 1000, score: c.score ?? null },
    );
    try {
      await this.opts.bus.publish(this.topics.speechEvents, [{ key: r.session_id, value: await this.opts.codec.encode(Topics.speechEvents, event), timestamp: now }]);
    } catch (err) {
      // Live events are best effort (as the worker's): the session row says completed either way.
      this.opts.log.warn({ err, session: r.session_id }, 'speech done event not published');
    }
  }

  /** Resolves once every row taken so far is in ClickHouse. */
  async flush(): Promise<void> {
    await Promise.all(Object.values(this.writers).map((w) => w.flush()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.delays.wakeAll();
    await this.flush().catch((err) => this.opts.log.warn({ err }, 'speech results sink: final flush failed; rows will be replayed'));
    await this.subscription?.stop();
    await Promise.all(Object.values(this.writers).map((w) => w.close().catch(() => undefined)));
  }
}
