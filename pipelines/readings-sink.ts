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
// it (the worker dead-letters it as future_beat; the sink writes it to
// heart_readings_quarantined and counts it, `stats.quarantined`); the partition's commit never
// passes a held reading.
//
// Restarts (a crash, a rebalance, a stop while another session of the partition holds a
// reading): the replay starts at the commit, and rows of records after it may already be stored.
// A session's guard restarts with its clock at the session's newest stored beat (beats only: a
// reading with only a heart rate bypasses the guard), which may be ahead of where the replay
// starts, and the replay's readings are then judged as follows:
//  - a reading the run before stored ends at or before that beat, so it goes through again
//    and moves nothing (the guard passes a late reading whatever it holds);
//  - a reading the run before quarantined is in heart_readings_quarantined, keyed by its record
//    (topic, partition, offset, index in the record), and is quarantined again without being
//    judged: judged from a newer clock it could have gone through;
//  - the others, which the run before never decided, meet the guard in the state the run before
//    had when it stopped deciding: its clock was that newest stored beat (a session's clock only
//    moves by releasing readings, which are stored in order), and the readings it held are held
//    again in order.
// For that, a quarantined reading's row is durable before any row the sink takes after its
// quarantine (the batch waits for it). The held readings' markers are only ahead of the rows:
// a marker durable before the rows released before it costs nothing, as a reading held and then
// quarantined never decides another (its candidate never confirmed; only the memory bound's
// eviction reads it, a case the guard's header already names).
// The partition's event time (its newest beat let through), which idle ends read, cannot be
// rebuilt from the records a replay reads again: the records that set it may lie before the
// commit, and a replay that rebuilt it from the sessions it met let a session 5 minutes or more
// behind go at another point than the run before (a review's case, 2026-12-05). So before each
// commit the sink writes the partition's event time a replay from that offset starts with (the
// progress table, Postgres readings_sink_progress): for a commit past the batch, the time after
// it; for a commit held at a held reading, the time before that reading's record (kept with the
// reading when it was held). A new owner starts from the row at or before where its delivery
// starts. Rows go only below a commit the broker acknowledged (commitWithProgress), and a
// missing row is logged and counted. Why that is enough: a replay's guards start at their
// sessions' newest stored beats, and a replayed reading listed as quarantined moves the event
// time as its first offer did, so the replay's event time is never behind the run before's at
// the same record and never past the newest the run before reached. A session that holds a reading in the replay held it, unconfirmed,
// when the run before stopped; had the run before's event time moved past the session's clock
// plus the idle span after the hold, it would have let the session go and listed the reading
// as quarantined. So it did not, the replay's event time has no higher value to move to, and
// the session's clock in the replay is the one it had when the run before stopped: the replay
// does not let it go either. (The coherence worker keeps the record that set it above its commit instead;
// for the sink that would hold its commit behind its last record for as long as that session is
// silent, which reads as lag that never drains.) Checked by a random sweep
// (readings-sink.test.ts), not proved.
// A record delivered again while this process keeps the partition (kafkajs restarts a rejoined
// member's fetch at the commit) is skipped: it was offered to the guards once, its rows taken.
// (With kafkajs, a member expelled by its session timeout that rejoins and is given the same
// partition back keeps its guards although another member may have read on meanwhile: the
// adapter reports only the new assignment. The default client's adapter reports an empty
// assignment when it replaces a consumer it lost; not tested for an expulsion.)
// Checked on a model of the protocol (clock-guard.test.ts: 3 sessions, one bus batch per flush, a
// crash at every batch end, after the commit, before it, or with only the quarantined readings'
// rows durable: 0 of 9,621 restart points store other readings, 1,056 without the list; it has no
// end markers, idle ends or heart-rate-only readings) and on the sink itself
// (worker-outliers.test.ts: restarts and lost commits with three sessions and 26 outliers;
// readings-sink.test.ts: a heart rate alone, a redelivery). Not an exhaustive proof.
// A session let go (its end marker, or silence) restarts its guard from the clock it had. (The
// coherence worker restarts an ended session's guard at the end of its last window instead, so
// for a reading after a session's end the two can decide otherwise.)
// While ClickHouse refuses the quarantined readings' rows the partition's batch waits (as the
// writer's back-pressure makes it wait for rows); on the embedded bus a rebalance waits for it.
import { type Bus, type BusRecord, type Subscription } from '../bus/types.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import type { Codec } from '../schemas/registry/codec.js';
import { decodeReadingsValue } from '../schemas/reading-batches.js';
import type { Logger } from '../lib/log.js';
import { BatchWriter } from '../store/batch-writer.js';
import type { StoreClient } from '../store/clickhouse.js';
import { HeartReadingColumns, Tables, type HeartReadingRow, type QuarantinedReadingRow } from '../store/rows.js';
import type { HeartReadingRecord } from '../schemas/records.js';
import { implausibleReading, notAHeartReading } from '../schemas/reading-limits.js';
import { batchItemDeadLetter, type DeadLetterInput } from './dead-letter.js';
import { finishSinkBatch, type TableSinkContext } from './table-sink.js';
import { groupIdFor } from './group-id.js';
import { asEndMarker, asSettingsMarker } from './coherence/end-markers.js';
import { SessionClockGuard, defaultConfirmReadings } from './coherence/clock-guard.js';
import { defaultAllowedLatenessMs } from './coherence/session-windows.js';
import type { SessionsRepository } from '../store/postgres/sessions-repo.js';
import type { SinkProgressRepository } from '../store/postgres/sink-progress-repo.js';

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
  /**
   * Where the partition's event time is kept per commit (Postgres, readings_sink_progress): with
   * it a new owner of a partition starts from the event time the run before had there (see the
   * header). Without it a replay rebuilds it from the records it reads again.
   */
  progress?: Pick<SinkProgressRepository, 'record' | 'at' | 'prune'>;
}

interface Held {
  rows: HeartReadingRow[];
  reading: HeartReadingRecord;
  offset: bigint;
  /** Its index in its record (a HeartReadingBatch), 0 for a record of one reading. */
  index: number;
  /** The partition's event time before its record: what a replay from its offset starts with. */
  partitionTimeBefore: number;
}

interface GuardedPartition {
  topic: string;
  partition: number;
  guards: Map<string, SessionClockGuard<Held>>;
  /** Newest beat the guard let through in the partition, ms (event time). */
  maxEventTimeMs: number;
  /** The newest commit waiting for its progress row, and the loop writing them (one at a time, in order). */
  pendingCommit: { offset: string; partitionTimeMs: number } | null;
  committing: Promise<void> | null;
  /** A commit waits for its progress row to be written again (PostgreSQL refused it). */
  retryTimer: NodeJS.Timeout | null;
  /** Commits acknowledged since the partition's progress rows were last pruned. */
  acksSincePrune: number;
  /** The offset after the last record offered to the guards: one delivered again (a client that restarts its fetch at the commit without a new assignment) is skipped. */
  nextOffset: bigint | null;
  /** The let-go map forgot a session: from then on look-ups of the newest stored beat wait for the writer (see MAX_LET_GO). */
  letGoForgot: boolean;
  /** Sessions let go (end marker, silence) and the clock their guard had: a later reading of one restarts the guard there. Oldest first, at most MAX_LET_GO. */
  letGoClocks: Map<string, number>;
  /**
   * Per guarded session, the partition's event time at the first reading of another session
   * after its newest one: silence counts from it too, as the coherence worker's idle end does
   * (a session behind the others of its partition but still sending is not silent). Absent
   * for the sessions in lastSenders (their reading is the partition's newest) and for those
   * not heard since this process took the partition.
   */
  quietFrom: Map<string, number>;
  lastSenders: Set<string>;
  /** Sessions found silent for half the idle span, and the partition's event time then: let go after another half (the worker's dueFromMs). */
  dueFrom: Map<string, number>;
  /** Sessions whose end marker was applied here (oldest first, at most MAX_LET_GO). */
  endedByMarker: Set<string>;
  /**
   * Per session whose guard restarted from the store: its records (`offset:index`) that a run
   * before quarantined (heart_readings_quarantined), at or after its first record read here.
   */
  quarantinedBefore: Map<string, Set<string>>;
}

type Step = { reading: HeartReadingRecord; offset: bigint; index: number } | { endOf: string };

/**
 * Let-go sessions whose clock a partition remembers (a few megabytes at most). Past it the oldest
 * is forgotten, and a later reading of it restarts its guard from its newest stored beat, which is
 * its clock once the writer has inserted its rows: once the partition has forgotten one, each
 * look-up first waits until every row taken is inserted.
 */
const MAX_LET_GO = 100_000;

/** Acknowledged commits of a partition between two prunes of its progress rows. */
const PRUNE_AFTER_ACKS = 50;

export class ReadingsSink {
  private subscription: Subscription | null = null;
  private readonly writer: BatchWriter<HeartReadingRow>;
  private readonly quarantineWriter: BatchWriter<QuarantinedReadingRow>;
  readonly groupId: string;
  /**
   * `records`: records whose batch is handled (its rows handed to the writer). `quarantinedAgain`:
   * replayed readings quarantined because a run before did (heart_readings_quarantined),
   * included in `quarantined`.
   */
  readonly stats = { records: 0, readings: 0, rows: 0, deadLettered: 0, implausible: 0, endMarkers: 0, held: 0, quarantined: 0, quarantinedAgain: 0, partitionTimesRestored: 0, partitionTimesMissing: 0 };
  /** Commits issued and not yet settled (flush() and stop() wait for them). */
  private readonly commits = new Set<Promise<void>>();
  /** Set by stop(): a batch waiting for its quarantined readings' insert gives up. */
  private stopping = false;
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
    // Flushed by each batch that quarantines (the rows after a quarantine wait for its row), so
    // no timer batching is needed; rare (outliers only), so plain JSONEachRow.
    this.quarantineWriter = new BatchWriter<QuarantinedReadingRow>({
      store: opts.store,
      table: Tables.heartReadingsQuarantined,
      log: opts.log,
      onError: (err, f) => opts.log.error({ err, ...f }, 'heart_readings_quarantined insert keeps failing; retrying, the partition waits'),
    });
  }

  private get sinkContext(): TableSinkContext<HeartReadingRow> {
    const o = this.opts;
    return { bus: o.bus, topics: o.topics ?? Topics, codec: o.codec, groupId: this.groupId, clock: o.clock ?? Date.now, log: o.log, writer: this.writer, subscription: () => this.subscription, name: 'readings sink', commits: this.commits };
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
        const guarded = this.opts.sessions ? this.partitionOf(batch.topic, batch.partition) : null;
        const rows: HeartReadingRow[] = [];
        const bad: DeadLetterInput[] = [];
        /** In guarded mode: the readings with beats and the end markers, in offset order, for the guard. */
        const steps: Step[] = [];
        for (const rec of batch.records) {
          const offset = guarded ? BigInt(rec.offset) : 0n;
          // Delivered again while this process keeps the partition's guards (kafkajs restarts its
          // fetch at the commit after a rejoin): offered once already, its rows taken.
          if (guarded && guarded.nextOffset !== null && offset < guarded.nextOffset) continue;
          try {
            let decoded = decodeReadingsValue(this.opts.codec, rec.value);
            if (decoded instanceof Promise) decoded = await decoded;
            if (decoded.kind === 'batch') {
              // Many readings in one record (HeartReadingBatch): each judged on its own, an
              // implausible one dead-lettered alone (with its index), the others stored.
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
                if (guarded && reading.session_id && reading.rr_intervals_ms.length > 0) steps.push({ reading, offset, index: i });
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
            // A session's settings marker: for the coherence worker's threshold; no rows.
            if (asSettingsMarker(reading)) continue;
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
            if (guarded && reading.session_id && reading.rr_intervals_ms.length > 0) steps.push({ reading, offset, index: 0 });
            else readingToRows(reading, rows);
          } catch (err) {
            bad.push({ record: rec, reasonCode: 'undecodable', reason: (err as Error).message });
          }
        }
        let commitAt: string | undefined;
        let commit: ((offset: string) => Promise<void>) | undefined;
        if (guarded) {
          // Everything that can fail (dead letters, look-ups) before the guards change, so a
          // batch delivered again after a failure is offered to them once.
          if (bad.length > 0) {
            await finishSinkBatch(this.sinkContext, { ...batch, records: [] }, [], bad);
            this.stats.deadLettered += bad.length;
            bad.length = 0;
          }
          // The partition's first batch here (nothing offered yet): its event time from the progress table.
          if (guarded.nextOffset === null && batch.records.length > 0) await this.restorePartitionTime(guarded, BigInt(batch.records[0].offset));
          await this.prepareGuards(guarded, steps);
          const quarantined: QuarantinedReadingRow[] = [];
          // The partition's event time before the record being offered (a record never spans batches).
          let recordOffset: bigint | null = null;
          let recordStartMs = -Infinity;
          for (const step of steps) {
            if ('endOf' in step) {
              // A session's end is applied once, as the coherence worker does: its marker written
              // again (a later change of the ended session) lets go no guard revived since.
              if (guarded.endedByMarker.has(step.endOf)) continue;
              if (guarded.endedByMarker.size >= MAX_LET_GO) guarded.endedByMarker.delete(guarded.endedByMarker.values().next().value!);
              guarded.endedByMarker.add(step.endOf);
              this.letGo(guarded, step.endOf, quarantined);
            } else {
              if (step.offset !== recordOffset) {
                recordOffset = step.offset;
                recordStartMs = guarded.maxEventTimeMs;
              }
              this.guard(guarded, step, recordStartMs, rows, quarantined);
            }
          }
          const last = batch.records[batch.records.length - 1];
          // Never back: a batch delivered again (all of it skipped above) leaves it where it was.
          if (last && (guarded.nextOffset === null || BigInt(last.offset) + 1n > guarded.nextOffset)) guarded.nextOffset = BigInt(last.offset) + 1n;
          this.stats.held = this.heldCount();
          const at = this.commitOffset(guarded, batch.records);
          if (at) {
            commitAt = at.offset;
            if (this.opts.progress) commit = (offset) => this.commitWithProgress(guarded, offset, at.partitionTimeMs);
          }
          // The quarantined readings' rows are durable before any row taken after them (see
          // the header): a replay from an older commit finds them and quarantines them again.
          if (quarantined.length > 0) await this.durable(this.quarantineWriter, quarantined);
        }
        this.stats.deadLettered += bad.length;
        this.stats.rows += rows.length;
        await finishSinkBatch(this.sinkContext, batch, rows, bad, commitAt, commit);
        this.stats.records += batch.records.length;
      },
    });
  }

  /**
   * Inserts `rows` and waits until they are durable, however long ClickHouse refuses them (the
   * writer retries; its flush reports each run of failures): the guards have already decided,
   * so the batch cannot be given back to be decided again. Rejects only once the sink stops.
   */
  private async durable<Row extends object>(writer: BatchWriter<Row>, rows: Row[]): Promise<void> {
    await writer.add(rows);
    for (;;) {
      try {
        await writer.flush();
        return;
      } catch (err) {
        if (this.stopping) throw err;
        this.opts.log.warn({ err }, 'readings sink: quarantined readings not yet inserted; the partition waits');
      }
    }
  }

  private partitionOf(topic: string, partition: number): GuardedPartition {
    let p = this.partitions.get(partition);
    if (!p) {
      p = {
        topic,
        partition,
        guards: new Map(),
        maxEventTimeMs: -Infinity,
        pendingCommit: null,
        committing: null,
        retryTimer: null,
        acksSincePrune: 0,
        nextOffset: null,
        letGoForgot: false,
        letGoClocks: new Map(),
        quietFrom: new Map(),
        lastSenders: new Set(),
        dueFrom: new Map(),
        endedByMarker: new Set(),
        quarantinedBefore: new Map(),
      };
      this.partitions.set(partition, p);
    }
    return p;
  }

  private newGuard(startMs: number): SessionClockGuard<Held> {
    return new SessionClockGuard<Held>({
      horizonMs: this.opts.clockHorizonMs ?? defaultAllowedLatenessMs,
      confirmReadings: this.opts.confirmReadings ?? defaultConfirmReadings,
      startMs,
    });
  }

  /**
   * Creates the guards of sessions first seen in these steps: from the clock they had when let
   * go, or else from their start and newest stored beat, with the records a run before
   * quarantined (a restart: see the header).
   */
  private async prepareGuards(p: GuardedPartition, steps: Step[]): Promise<void> {
    const fresh = new Map<string, { orgId: string; firstOffset: bigint }>();
    for (const s of steps) {
      if ('endOf' in s) continue;
      const id = s.reading.session_id!;
      if (!p.guards.has(id) && !fresh.has(id)) fresh.set(id, { orgId: s.reading.org_id, firstOffset: s.offset });
    }
    for (const [id, { orgId, firstOffset }] of fresh) {
      if (this.resumeLetGo(p, id)) continue;
      if (p.letGoForgot) await this.writer.flush();
      const [session, stored, before] = await Promise.all([this.opts.sessions!.get(id), this.lastStoredBeat(id), this.quarantinedRecords(p, orgId, id, firstOffset)]);
      if (before.size > 0) p.quarantinedBefore.set(id, before);
      this.putGuard(p, id, Math.max(session?.startedAt ?? -Infinity, stored));
    }
  }

  /** Offers a reading to its session's guard; released rows go to `rows`, quarantined readings to `quarantined`. */
  private guard(p: GuardedPartition, step: { reading: HeartReadingRecord; offset: bigint; index: number }, partitionTimeBefore: number, rows: HeartReadingRow[], quarantined: QuarantinedReadingRow[]): void {
    const { reading, offset, index } = step;
    const sid = reading.session_id!;
    const before = p.quarantinedBefore.get(sid);
    if (before !== undefined && before.delete(`${offset}:${index}`)) {
      // A run before quarantined this record: the same decision, without judging it again.
      if (before.size === 0) p.quarantinedBefore.delete(sid);
      this.stats.quarantined++;
      this.stats.quarantinedAgain++;
      // The run before offered it, which moved the partition's event time to the guard's clock
      // (a session's start, say, when the reading was held before any beat): so does the replay
      // (a review's case, 2026-12-05).
      this.advancePartitionTime(p, p.guards.get(sid) ?? this.resumeLetGo(p, sid) ?? this.putGuard(p, sid, -Infinity), quarantined, sid);
      return;
    }
    // Missing only when let go earlier in this batch (its marker, or silence).
    const g = p.guards.get(sid) ?? this.resumeLetGo(p, sid) ?? this.putGuard(p, sid, -Infinity);
    let startMs = reading.recorded_at;
    for (const v of reading.rr_intervals_ms) startMs -= v;
    // The common case (nothing held, the reading continues the clock): its rows go straight
    // out, as offer() would release them, without a held item and a decision per reading.
    if (g.passes(startMs, reading.recorded_at)) readingToRows(reading, rows);
    else {
      const item: Held = { rows: [], reading, offset, index, partitionTimeBefore };
      readingToRows(reading, item.rows);
      const decision = g.offer(startMs, reading.recorded_at, offset, item);
      for (const h of decision.quarantine) quarantined.push(this.quarantineRow(p, h, g.clockMs));
      this.stats.quarantined += decision.quarantine.length;
      for (const h of decision.release) for (const r of h.rows) rows.push(r);
    }
    this.advancePartitionTime(p, g, quarantined, sid);
  }

  /** Moves the partition's event time to the guard's clock if that is newer, and lets go the sessions it leaves idle. */
  private advancePartitionTime(p: GuardedPartition, g: SessionClockGuard<Held>, quarantined: QuarantinedReadingRow[], sessionId?: string): void {
    const moved = g.clockMs > p.maxEventTimeMs;
    if (moved) p.maxEventTimeMs = g.clockMs;
    if (sessionId !== undefined) {
      // The sessions that sent the readings before this one start their silence here.
      if (!(p.lastSenders.size === 1 && p.lastSenders.has(sessionId))) {
        for (const s of p.lastSenders) if (s !== sessionId) p.quietFrom.set(s, p.maxEventTimeMs);
        p.lastSenders.clear();
      }
      p.quietFrom.delete(sessionId);
      p.dueFrom.delete(sessionId);
      p.lastSenders.add(sessionId);
    }
    if (moved) {
      // A session silent for sessionIdleEndMs of its partition's event time is ended by the
      // worker, and what its guard holds is quarantined: the same here.
      const half = (this.opts.sessionIdleEndMs ?? 300_000) / 2;
      for (const [other, og] of p.guards) {
        if (p.lastSenders.has(other)) continue;
        const due = p.dueFrom.get(other);
        if (due === undefined) {
          if (Math.max(og.clockMs, p.quietFrom.get(other) ?? -Infinity) + half < p.maxEventTimeMs) p.dueFrom.set(other, p.maxEventTimeMs);
        } else if (due + half < p.maxEventTimeMs) this.letGo(p, other, quarantined);
      }
    }
  }

  /** A let-go session's guard, restarted at the clock it had (and put back); undefined when the partition has none for it. */
  private resumeLetGo(p: GuardedPartition, sessionId: string): SessionClockGuard<Held> | undefined {
    const clockMs = p.letGoClocks.get(sessionId);
    if (clockMs === undefined) return undefined;
    p.letGoClocks.delete(sessionId);
    return this.putGuard(p, sessionId, clockMs);
  }

  private putGuard(p: GuardedPartition, sessionId: string, startMs: number): SessionClockGuard<Held> {
    const g = this.newGuard(startMs);
    p.guards.set(sessionId, g);
    return g;
  }

  /** The session ended (its marker, or silence): what its guard still holds was never confirmed; its clock is kept. */
  private letGo(p: GuardedPartition, sessionId: string, quarantined: QuarantinedReadingRow[]): void {
    const g = p.guards.get(sessionId);
    if (!g) return;
    const dropped = g.drop();
    for (const h of dropped) quarantined.push(this.quarantineRow(p, h, g.clockMs));
    this.stats.quarantined += dropped.length;
    p.guards.delete(sessionId);
    p.quietFrom.delete(sessionId);
    p.dueFrom.delete(sessionId);
    p.lastSenders.delete(sessionId);
    p.letGoClocks.set(sessionId, g.clockMs);
    if (p.letGoClocks.size > MAX_LET_GO) {
      p.letGoClocks.delete(p.letGoClocks.keys().next().value!);
      p.letGoForgot = true;
    }
  }

  private quarantineRow(p: GuardedPartition, h: Held, clockMs: number): QuarantinedReadingRow {
    const r = h.reading;
    return {
      org_id: r.org_id,
      user_id: r.user_id,
      device_id: r.device_id,
      session_id: r.session_id ?? '',
      reading_id: r.reading_id,
      recorded_at: r.recorded_at,
      received_at: r.received_at,
      rr_intervals_ms: r.rr_intervals_ms,
      hr_bpm: r.hr_bpm,
      source: r.source,
      reason: 'future_beat',
      session_clock_at: Number.isFinite(clockMs) ? Math.round(clockMs) : null,
      source_topic: p.topic,
      source_partition: p.partition,
      source_offset: h.offset.toString(),
      source_index: h.index,
    };
  }

  private heldCount(): number {
    let n = 0;
    for (const p of this.partitions.values()) for (const g of p.guards.values()) n += g.heldCount;
    return n;
  }

  /**
   * Past the batch, unless a reading the guard holds is older: the commit never passes it. With
   * the partition's event time a replay from there starts with (the progress table).
   */
  private commitOffset(p: GuardedPartition, records: BusRecord[]): { offset: string; partitionTimeMs: number } | undefined {
    const last = records[records.length - 1];
    if (!last) return undefined;
    // Past every record offered (not only this batch's: a batch delivered again would move the
    // commit back, with an event time that is not the one before it).
    let min = p.nextOffset ?? BigInt(last.offset) + 1n;
    let partitionTimeMs = p.maxEventTimeMs;
    for (const g of p.guards.values()) {
      const h = g.oldestHeld();
      if (h !== null && h.offset < min) {
        min = h.offset;
        partitionTimeMs = h.item.partitionTimeBefore;
      }
    }
    return { offset: min.toString(), partitionTimeMs };
  }

  /**
   * Writes the progress row of a commit, then commits: the row is durable before the broker
   * holds the commit. One loop per partition, in order; commits that pile up meanwhile are
   * coalesced into the newest (each caller's promise settles once it, or a newer one, is done).
   * When PostgreSQL refuses the row, nothing is committed and the newest commit is tried again a
   * second later (the rows are stored: only the commit waits, and a crash meanwhile replays).
   * Every PRUNE_AFTER_ACKS acknowledged commits, the partition's rows below the acknowledged
   * one go: the broker's commit never goes back past it (a new owner starts from it), so a
   * replay never needs them, however many commits after it are lost.
   */
  private commitWithProgress(p: GuardedPartition, offset: string, partitionTimeMs: number): Promise<void> {
    p.pendingCommit = { offset, partitionTimeMs };
    if (!p.committing) {
      const run = async () => {
        const key = { groupId: this.groupId, topic: p.topic, partition: p.partition };
        try {
          while (p.pendingCommit) {
            const c = p.pendingCommit;
            p.pendingCommit = null;
            try {
              await this.opts.progress!.record(key, BigInt(c.offset), Number.isFinite(c.partitionTimeMs) ? c.partitionTimeMs : null);
            } catch (err) {
              this.opts.log.warn({ err, partition: p.partition, offset: c.offset }, 'readings sink: progress row not written (PostgreSQL); the commit waits and is tried again');
              p.pendingCommit ??= c;
              this.retryCommitLater(p);
              return;
            }
            await this.subscription?.commit(p.topic, p.partition, c.offset);
            if (++p.acksSincePrune >= PRUNE_AFTER_ACKS) {
              p.acksSincePrune = 0;
              await this.opts.progress!.prune(key, BigInt(c.offset)).catch((err) => this.opts.log.warn({ err, partition: p.partition }, 'readings sink: old progress rows not pruned; tried again later'));
            }
          }
        } finally {
          p.committing = null;
        }
      };
      p.committing = run();
    }
    return p.committing;
  }

  private retryCommitLater(p: GuardedPartition): void {
    if (p.retryTimer || this.stopping) return;
    p.retryTimer = setTimeout(() => {
      p.retryTimer = null;
      const c = p.pendingCommit;
      if (!c || this.stopping || this.partitions.get(p.partition) !== p) return;
      void this.commitWithProgress(p, c.offset, c.partitionTimeMs).catch((err) => this.opts.log.warn({ err, partition: p.partition }, 'readings sink commit failed; the rows will be replayed'));
    }, 1_000);
    p.retryTimer.unref();
  }

  /**
   * A partition's first batch in this process: its event time as the run before had it at the
   * newest commit at or before where the delivery starts (the progress table), so that idle ends
   * are decided as they were. Without a row it stays unknown (-Infinity) and is rebuilt.
   */
  private async restorePartitionTime(p: GuardedPartition, firstOffset: bigint): Promise<void> {
    if (this.opts.progress) {
      const row = await this.opts.progress.at({ groupId: this.groupId, topic: p.topic, partition: p.partition }, firstOffset);
      if (row && row.partitionTimeMs !== null && row.partitionTimeMs > p.maxEventTimeMs) p.maxEventTimeMs = row.partitionTimeMs;
      if (row) this.stats.partitionTimesRestored++;
      else if (firstOffset > 0n) {
        // A group's first start reads from offset 0 with no row; past it, a row should be there
        // (unless the topic's retention removed the records before, or the commits predate the table).
        this.stats.partitionTimesMissing++;
        this.opts.log.warn({ partition: p.partition, offset: firstOffset.toString() }, "readings sink: no progress row at or before the partition's first offset; its event time is rebuilt from the records read again");
      }
    }
  }

  /**
   * The session's newest stored beat, ms (-Infinity without one): where a restarted sink's guard
   * clock starts. Beats only: a reading with only a heart rate is stored without the guard and
   * never moves its clock.
   */
  private async lastStoredBeat(sessionId: string): Promise<number> {
    const rs = await this.opts.store.client.query({
      query: `SELECT toUnixTimestamp64Milli(max(event_time)) AS t, count() AS n FROM ${this.opts.store.table(Tables.heartReadings)} WHERE session_id = {id:String} AND rr_ms IS NOT NULL`,
      query_params: { id: sessionId },
      format: 'JSONEachRow',
    });
    const [row] = (await rs.json()) as Array<{ t: string | number; n: string | number }>;
    return row && Number(row.n) > 0 ? Number(row.t) : -Infinity;
  }

  /** The session's records in this partition at or after `fromOffset` that a run before quarantined, as `offset:index`. */
  private async quarantinedRecords(p: GuardedPartition, orgId: string, sessionId: string, fromOffset: bigint): Promise<Set<string>> {
    const rs = await this.opts.store.client.query({
      query: `SELECT DISTINCT toString(source_offset) AS o, source_index AS i FROM ${this.opts.store.table(Tables.heartReadingsQuarantined)}
              WHERE org_id = {org:String} AND session_id = {id:String} AND source_topic = {topic:String}
                AND source_partition = {partition:UInt32} AND source_offset >= {from:UInt64}`,
      query_params: { org: orgId, id: sessionId, topic: p.topic, partition: p.partition, from: fromOffset.toString() },
      format: 'JSONEachRow',
    });
    return new Set(((await rs.json()) as Array<{ o: string; i: number | string }>).map((r) => `${r.o}:${Number(r.i)}`));
  }

  /** Resolves once every row taken so far is in ClickHouse and the commits that follow from it are answered. */
  async flush(): Promise<void> {
    await Promise.all([this.writer.flush(), this.quarantineWriter.flush()]);
    await Promise.all([...this.commits]);
  }

  /**
   * Flushes and commits what is buffered while still in the group, then leaves it. (A batch still
   * being handled then is committed only if its rows are inserted before the member has left;
   * otherwise it is read again, as after a crash.)
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const p of this.partitions.values()) if (p.retryTimer) clearTimeout(p.retryTimer);
    await this.writer.flush().catch((err) => this.opts.log.warn({ err }, 'readings sink: final flush failed; rows will be replayed'));
    await Promise.all([...this.commits]);
    await this.subscription?.stop();
    await this.writer.close().catch(() => undefined);
    await this.quarantineWriter.close().catch(() => undefined);
  }
}
