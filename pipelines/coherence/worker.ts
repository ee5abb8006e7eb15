// The coherence worker: heart readings in, coherence windows and session events out.
//
// Per session it keeps 64 s (+ allowed lateness) of beats in event time (SessionWindows);
// every 5 s of event time a window closes, its metrics are computed (pipelines/hrv), and the
// result goes to the bus: the coherenceWindows and sessionEvents topics, read by the live
// fan-out and by the sinks that write ClickHouse (pipelines/sinks/). Kafka in, Kafka out
// (issue 10): the worker opens no ClickHouse at all, so compute scales out with the readings
// topic's consumer group wherever ClickHouse is.
//
// Readings arrive one per record (HeartReading) or many per record (HeartReadingBatch,
// schemas/reading-batches.ts); a batch's readings are applied one by one at the record's
// offset, as if each had a record of its own there, so windows, the clock guard and the
// committed offset (the oldest offset an unemitted window needs: with batches, the batch record
// holding its oldest beat) come out the same. An implausible or quarantined reading inside a
// batch is dead-lettered alone, with the record's offset and its index in the batch.
//
// Event time only (issue 10, item 1): a window is final, and emitted, when the session's
// watermark passes its end plus the allowed lateness, or when the session ends: its end
// marker in the readings partition (end-markers.ts, written after the end call), or the
// partition's event time moving sessionIdleEndMs past the session's last beat while it is
// silent. Nothing depends on the wall clock, so a stall, a pause of the uploads, a restart
// or a rebalance gives the same windows as an uninterrupted run.
//
// Exactly-once output on an at-least-once bus:
//  - The offset committed per partition is the oldest one any unemitted window still needs
//    (PartitionOffsetTracker), and only after the windows emitted before it, their events and
//    the sessions' checkpoints are acknowledged by the bus. A restart replays from there and
//    rebuilds the same state, so it recomputes the same windows.
//  - Restart state from Kafka (checkpoints.ts): per session the last window end published and
//    the threshold tracker's state there, in a compacted topic. On first sight of a session
//    the worker suppresses windows at or before that end and continues the tracker from it.
//    The checkpoint also anchors the clock guard (anchorsOf): its clock at the session's first
//    record at or after the commit, which the replay starts with, so the guard decides the
//    replayed readings as before the restart.
//    A crash between publishing windows and their checkpoint publishes those windows again
//    (the same ones, computed again); the windows sink recognises them (sinks/).
import { availableParallelism } from 'node:os';
import { type Bus, type BusRecord, type RecordBatch, type Subscription, type TopicPartition } from '../../bus/types.js';
import { Topics, internalTopic, type TopicNames } from '../../schemas/topics.js';
import type { Codec } from '../../schemas/registry/codec.js';
import { decodeReadingsValue } from '../../schemas/reading-batches.js';
import type { SessionsRepository } from '../../store/postgres/sessions-repo.js';
import type { CoherenceWindowRecord, GroupParticipantWindowRecord, HeartReadingRecord, SessionEventRecord } from '../../schemas/records.js';
import type { Logger } from '../../lib/log.js';
import type { WindowMetrics } from '../hrv/index.js';
import { MetricsPool } from './metrics-pool.js';
import { batchItemDeadLetter, deadLetter, type DeadLetterInput } from '../dead-letter.js';
import { groupIdFor } from '../group-id.js';
import { PartitionOffsetTracker } from './offsets.js';
import { SessionWindows, beatTimes, defaultAllowedLatenessMs, defaultContextMs, defaultStepMs, defaultWindowMs, type ClosedWindow } from './session-windows.js';
import { ThresholdTracker, thresholdReachedPayloadJson, type SessionEventDescriptor } from './threshold.js';
import { CheckpointTable, type GuardAnchor, type SessionCheckpoint } from './checkpoints.js';
import { SessionClockGuard, defaultConfirmReadings } from './clock-guard.js';
import { implausibleReading, notAHeartReading } from '../../schemas/reading-limits.js';
import { SessionEndMarkers, asEndMarker, asSettingsMarker, type EndMarker, type SettingsMarker } from './end-markers.js';
import { GroupFanout, PARTICIPANT_ENDED_HEADER, PARTICIPANT_FLUSHED_HEADER, PARTICIPATION_END_HEADER, type ParticipationSource } from './group-fanout.js';

export const COHERENCE_GROUP = 'attune-coherence';

export interface CoherenceWorkerOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  sessions: SessionsRepository;
  log: Logger;
  allowedLatenessMs?: number;
  /**
   * How far past a session's clock a reading may start before it is held as a suspected
   * outlier (clock-guard.ts), ms. Default: the allowed lateness.
   */
  clockHorizonMs?: number;
  /** Readings that must agree before a session's clock jumps past the horizon; 1 turns the guard off. Default 3. */
  confirmReadings?: number;
  /**
   * Event time a session may stay silent while its partition moves on (the newest beat of the
   * partition past the session's last beat) before it is ended and its last windows closed,
   * as if its end marker had come. Default 300,000 (5 min).
   */
  sessionIdleEndMs?: number;
  /** Run the session-changes → end-marker relay (end-markers.ts) beside the worker. Default true. */
  endMarkers?: boolean;
  /** The checkpoint topic (default: InternalTopics.coherenceCheckpoints behind the topics' prefix). */
  checkpointTopic?: string;
  /** Partitions of the checkpoint topic when the worker creates it (default 1). */
  checkpointPartitions?: number;
  /** Threads computing window metrics; 0 computes on the event loop. Default: 1 when there is a spare core. */
  computeThreads?: number;
  /** Default: COHERENCE_GROUP behind the topics' prefix (pipelines/group-id.ts). */
  groupId?: string;
  clock?: () => number;
  /**
   * Mesh participations (PostgreSQL, MeshRepository): with it, the windows of group participants
   * are also published on the group repartition topic (group-fanout.ts). Without it, none are.
   */
  groups?: ParticipationSource;
  /**
   * Publish provisional windows on the coherenceWindowsProvisional topic for live display:
   * after each batch, per session it touched, the newest window its beats have passed that
   * is not final yet (SessionWindows.provisionalWindow), once per window end. They change
   * nothing that is stored: only the live fan-out reads that topic. Default true.
   */
  provisionalWindows?: boolean;
}

interface SessionState {
  id: string;
  userId: string;
  orgId: string;
  deviceId: string;
  windows: SessionWindows;
  /** Holds readings that would jump the clock until the next ones confirm or refute them. */
  guard: SessionClockGuard<Guarded>;
  /** Its records since its oldest anchor, with the guard before each (anchorsOf). */
  guardLog: GuardLog;
  /**
   * The partition's event time at the first reading of another session after this session's
   * newest one (-Infinity before any; null while its reading is the partition's newest): the
   * session is silent only once the partition's event time has moved sessionIdleEndMs past
   * this too (idleEndAt). Without it, a device uploading a recording made half an hour
   * earlier, while another device of its partition streamed live, had its session ended at
   * every reading of the other's, its windows flushed from partial buffers and its next
   * readings dropped (a walkthrough: 0 valid windows of 60).
   */
  quietFromMs: number | null;
  /**
   * The partition's event time when the session was first found silent (half the idle span
   * past its newest beat and quietFromMs); null while it is not. It is ended only once the
   * partition's event time has moved another half span without a reading of it: a jump of the
   * partition's time (a device further ahead sending its first reading) makes it due, not
   * ended, and its next reading clears it (a re-check: a session 45 min behind, interleaved
   * with one 25 min behind, was ended when a live device's first reading jumped the time).
   */
  dueFromMs: number | null;
  threshold: ThresholdTracker | null;
  /**
   * The session's threshold settings where the partition's reading has got to (PostgreSQL at
   * first sight, a checkpoint, or a settings marker since), with the session's version they are
   * from; null when the session was not found. A window closed takes the settings of its close
   * with it: the tracker is set to them when the window is emitted, after the batch.
   */
  settings: ThresholdSettings | null;
  /** The session's start (PostgreSQL), -Infinity when it was not found. */
  startedAtMs: number;
  /**
   * Revived in the batch that ended it (revive): its tracker is the ended state's as it stands
   * once that state's last windows are emitted, taken at this state's first window.
   */
  inheritFrom: SessionState | null;
  /** Windows ending at or before this were published (by us, or before a restart: its checkpoint). */
  emittedThroughMs: number;
  /** Ended (marker or idle end): said in its last checkpoint. */
  ended: boolean;
  /**
   * Its end marker was read (by this state or the one it revived from): the session's end is
   * applied once; a marker written again (any later change of the ended session, a relay
   * replaying its changes) ends no state revived by readings after the end.
   */
  endedByMarker: boolean;
  /** The newest window end published provisionally (each end once, in this process). */
  provisionalThroughMs: number;
  /**
   * The metrics of the provisional windows whose final window has not closed yet, oldest
   * first (about allowed lateness / step of them): when a final window is cut from the same
   * beats as its provisional one (same end, same SessionWindows revision), its metrics are
   * these, not computed a second time. At a live device's pace every window is provisional
   * once, and computing both cost 1.65× the CPU of final windows alone (bench:coherence-live,
   * 2026-12-04); the metrics are a pure function of the beats, so reusing them changes no
   * figure.
   */
  provisionalMemos: ProvisionalMemo[];
}

/**
 * A session's records (offsets) since its oldest guard anchor, each with the clock guard's
 * clock before the record's first reading and whether it held readings then: what a
 * checkpoint's anchors are picked from (checkpoints.ts, GuardAnchor). `from`: every record of
 * the session at or after it is in the log (null: not since the log last overflowed).
 */
interface GuardLog {
  offsets: bigint[];
  clocks: number[];
  held: boolean[];
  /** The session's late beats counted before the record (SessionWindows.lateBeatCount). */
  late: number[];
  /** The session's quietFromMs and dueFromMs before the record. */
  quiet: Array<number | null>;
  due: Array<number | null>;
  /** The partition's event time before the record. */
  partitionMax: number[];
  /** The session's endedByMarker before the record (a revived tail's log goes on from its end's). */
  marked: boolean[];
  from: bigint | null;
}

/** Records a guard log keeps at most: past it (a session read for long without a window closing) it starts again, and the next anchors wait for it. */
const MAX_GUARD_LOG = 10_000;
/** Commit offsets issued per partition that a checkpoint's anchors cover (the newest, and earlier ones perhaps not acknowledged when a crash came). */
const ANCHOR_FLOORS = 4;

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * The anchor a replay whose first record of the session is at `firstOffset` restarts its guard
 * from: the one at exactly that record, or, past every anchored record, the one for the
 * session's next record; none when readings were held there (not in a checkpoint) or when the
 * replay starts elsewhere (a commit older than the anchors cover).
 */
function anchorFor(anchors: GuardAnchor[], firstOffset: bigint, ended: boolean): GuardAnchor | null {
  for (const a of anchors) {
    // A record after an ended session's checkpoint revives it: an uninterrupted run starts
    // that guard afresh, whether or not it has read the checkpoint back yet, and so does this.
    if (a.offset === null && ended) continue;
    const hit = a.offset !== null ? BigInt(a.offset) === firstOffset : firstOffset > BigInt(a.afterOffset!);
    if (hit) return a.held ? null : a;
  }
  return null;
}

/**
 * The checkpoint table's key for the settings a device-less session's marker (in every
 * partition) left in a partition that had no state of the session.
 */
const looseSettingsKey = (sessionId: string, partition: number) => `${sessionId}\u0000settings@${partition}`;

/** The tracker key under which a session's newest guard anchor is retained. */
const anchorKey = (sessionId: string) => `${sessionId}\u0000guard`;

/** The tracker key under which the beats of an ended session's tail are retained (PartitionState.endedTails). */
const tailKey = (sessionId: string) => `${sessionId}\u0000tail`;

/**
 * An ended session's tail kept for its revival: its windows, and its guard log, which the
 * revived state goes on with. The revived state's retained offsets (the tail's beats) keep the
 * commit before the end marker, so a replay after a restart starts with records from before the
 * end: its checkpoint's anchors must be at those records (with the end marker not yet applied
 * there), or the replay misses them and restarts the late count and the clock guard.
 */
interface EndedTail {
  windows: SessionWindows;
  guardLog: GuardLog;
}

interface ProvisionalMemo {
  windowEndMs: number;
  revision: number;
  count: number;
  metrics: WindowMetrics;
}

/** Provisional memos kept per session (the windows between the watermark and the newest provisional end: 2-3 at the default 10 s lateness). */
const MAX_PROVISIONAL_MEMOS = 8;

interface Guarded {
  rec: BusRecord;
  reading: HeartReadingRecord;
  offset: bigint;
  /** Its index in a batch record (HeartReadingBatch); null when the record is this one reading. */
  index: number | null;
}

/** A session's threshold settings and the version of the session they are from. */
interface ThresholdSettings {
  threshold: number;
  holdMs: number;
  version: number;
}

interface ClosedOf {
  st: SessionState;
  w: ClosedWindow;
  /** The session's settings when the window closed (its events are judged by them). */
  settings?: ThresholdSettings | null;
  /** Closed by the session's end, not its watermark (PARTICIPANT_FLUSHED_HEADER). */
  flushed?: boolean;
}

interface PartitionState {
  tracker: PartitionOffsetTracker;
  sessions: Map<string, SessionState>;
  /** Sessions ended (marker or idle end): how far they were emitted, in case a late reading comes. */
  flushedThrough: Map<string, number>;
  /**
   * The newest checkpoint this owner wrote for each session it ended, or whose settings a
   * marker changed while it had no state here: a reading that revives (or first brings) one
   * restores from it, as a replay would from the topic. (The checkpoint table's reader may not
   * have read it back yet, and a revival restored from an older one, with a tracker a stream of
   * windows behind: whether an event fired depended on the reader's progress.)
   */
  localCheckpoints: Map<string, SessionCheckpoint>;
  /**
   * Device-less sessions' settings from markers read here without their state (looseSettingsKey),
   * until the checkpoint table's reader has them; apart from localCheckpoints, so that they never
   * push its ended checkpoints out.
   */
  looseSettings: Map<string, NonNullable<SessionCheckpoint['settings']>>;
  /** Checkpoints of sessions without state (a settings marker), to write with the batch's. */
  outLooseCheckpoints: SessionCheckpoint[];
  /** Sessions ended in the batch being read (a later reading of one in it revives it: revive). */
  endedInBatch: Map<string, SessionState>;
  /**
   * The beats a session ended by its marker still held for later windows and their context
   * (closeTail), until the partition's event time passes `dropAtMs` (the idle-end span after its
   * last beat): a revival (readings synced after the end call) continues these windows, so the
   * windows after the flushed ones have the beats before the end. Their offsets stay retained
   * (tailKey) while they are kept, so a replay after a restart rebuilds them.
   */
  endedTails: Map<string, EndedTail & { dropAtMs: number }>;
  /** No ended tail is dropped before maxEventTimeMs passes this (a lower bound). */
  nextTailDropMs: number;
  /** Newest beat time of the partition, ms (event time). */
  maxEventTimeMs: number;
  /** No session is idle-ended before maxEventTimeMs passes this (a lower bound). */
  nextIdleEndMs: number;
  /** The sessions whose readings are the partition's newest (no other session's since): their quietFromMs is null. */
  lastSenders: Set<SessionState>;
  /**
   * The outbox. Once a record is applied its windows leave the session state, so what they
   * produce must not be lost if computing or writing them fails: it waits here and is sent
   * first on the next try (the bus redelivers the failed batch), before any commit.
   */
  pendingClosed: ClosedOf[];
  /** Provisional windows cut after the last batch, to compute and publish after its output. */
  pendingProvisional: ClosedOf[];
  /** The provisional round being computed and published (outside the lock); null when none. */
  provisionalInFlight: Promise<void> | null;
  outWindows: CoherenceWindowRecord[];
  outEvents: SessionEventRecord[];
  outDeadLetters: DeadLetterInput[];
  /**
   * Group participants' windows (repartition topic, keyed by mesh session), published with the
   * windows; `ended`: the session's last window (it ended: marker or idle end).
   */
  outGroup: Array<{ rec: GroupParticipantWindowRecord; ended: boolean; /** A marker: PARTICIPATION_END_HEADER's value. */ end?: string; flushed?: boolean }>;
  /** Sessions whose checkpoint changed with the windows in the outbox: written after them. */
  outCheckpoints: Set<SessionState>;
  /** The last commit offsets issued (oldest first, at most ANCHOR_FLOORS): the floors of the sessions' guard anchors. */
  recentFloors: bigint[];
  /** The first offset this process read of the partition (its replay's start): every record from it on was read. */
  startOffset: bigint | null;
  /** The record being applied (an end's offset, for `ending`). */
  currentOffset: bigint;
  /**
   * Sessions ended here, with the offset of the record that ended them: checkpointed again
   * (their guard anchors for each new commit) until the commit passes that record, since a
   * replay from a commit before it replays their end too.
   */
  ending: Map<SessionState, bigint>;
  /**
   * The checkpoint last written for each session in `ending` (JSON): one the next commit would
   * write the same (the commit and its floors unchanged: a kept tail holds the commit before
   * the end for up to sessionIdleEndMs of event time) is not written again.
   */
  endingWritten: Map<SessionState, string>;
  /** The checkpoint read barrier for this partition's new owner (set on its first batch). */
  synced: Promise<void> | null;
  /** Serialises the batches of one partition. */
  lock: Promise<void>;
}

export interface CoherenceWorkerStats {
  readings: number;
  windows: number;
  validWindows: number;
  suppressedWindows: number;
  lateBeats: number;
  events: number;
  deadLettered: number;
  /** Readings failing the plausibility checks (RR, HR, timestamps), dead-lettered. */
  implausibleReadings: number;
  /** Readings that would have jumped their session's clock, unconfirmed, dead-lettered as future_beat. */
  quarantinedReadings: number;
  /** Readings held by the clock guard whose jump the next readings confirmed (a device resuming after a gap). */
  confirmedJumps: number;
  readingsWithoutSession: number;
  /** Sessions whose end marker closed their last windows. */
  endedSessions: number;
  /** Sessions ended because their partition's event time moved sessionIdleEndMs past their last beat. */
  idleEndedSessions: number;
  /** End markers read (a repeated one, or one for a session with nothing open, closes nothing). */
  endMarkers: number;
  /** Settings markers read, and those that changed a session's threshold settings. */
  settingsMarkers: number;
  settingsApplied: number;
  /** Sessions revived by a reading in the batch that ended them (revive). */
  revivedInBatch: number;
  /** Records synced after their session's end that reached it and closed its last windows (closeAfterEnd). */
  closedAfterEnd: number;
  /** End markers of a session whose end was applied already (its state revived since): ignored. */
  repeatedEndMarkers: number;
  /** Sessions taken over (restart, rebalance) whose state came from a checkpoint. */
  restoredSessions: number;
  /** Provisional windows published (live display only). */
  provisionalWindows: number;
  /** Provisional windows not published because computing or publishing them failed (logged; nothing stored depends on them). */
  provisionalFailures: number;
  /** Provisional windows dropped because the round before them was still in flight (a slow bus). */
  provisionalDropped: number;
  /** Final windows whose metrics were their provisional window's (the same beats: computed once). */
  provisionalReused: number;
  /** Sessions taken over whose clock guard restarted from a checkpointed anchor (exactly where the replay starts). */
  guardAnchored: number;
  /** Sessions taken over whose checkpoint had anchors, none where the replay starts (a commit older than they cover, or readings held there): the guard restarted at the last window published. */
  guardAnchorMisses: number;
  /** Mesh participants' provisional windows published for the group worker (one per participation). */
  provisionalGroupRecords: number;
  /** Rounds of those that failed (a membership query, or publishing): logged. */
  provisionalGroupFailures: number;
}

/** Key under which the partition's newest-beat record is retained (no session id looks like it). */
const PARTITION_MAX = '\u0000partition-max';

export class CoherenceWorker {
  readonly groupId: string;
  readonly stats: CoherenceWorkerStats = {
    readings: 0,
    windows: 0,
    validWindows: 0,
    suppressedWindows: 0,
    lateBeats: 0,
    events: 0,
    deadLettered: 0,
    implausibleReadings: 0,
    quarantinedReadings: 0,
    confirmedJumps: 0,
    readingsWithoutSession: 0,
    endedSessions: 0,
    idleEndedSessions: 0,
    endMarkers: 0,
    settingsMarkers: 0,
    settingsApplied: 0,
    revivedInBatch: 0,
    closedAfterEnd: 0,
    repeatedEndMarkers: 0,
    restoredSessions: 0,
    provisionalWindows: 0,
    provisionalFailures: 0,
    provisionalDropped: 0,
    provisionalReused: 0,
    provisionalGroupRecords: 0,
    guardAnchored: 0,
    guardAnchorMisses: 0,
    provisionalGroupFailures: 0,
  };
  private readonly partitions = new Map<string, PartitionState>();
  private readonly pool: MetricsPool;
  readonly checkpoints: CheckpointTable;
  private subscription: Subscription | null = null;
  private endMarkers: SessionEndMarkers | null = null;
  private readonly clock: () => number;
  private readonly topics: TopicNames;
  /** Group participants' windows → the repartition topic; null without opts.groups. */
  readonly groupFanout: GroupFanout | null;

  constructor(private readonly opts: CoherenceWorkerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.groupFanout = opts.groups ? new GroupFanout({ source: opts.groups, clock: this.clock }) : null;
    this.topics = opts.topics ?? Topics;
    this.groupId = opts.groupId ?? groupIdFor(COHERENCE_GROUP, this.topics);
    this.pool = new MetricsPool({ threads: opts.computeThreads ?? (availableParallelism() > 1 ? 1 : 0), log: opts.log });
    this.checkpoints = new CheckpointTable({
      bus: opts.bus,
      topic: opts.checkpointTopic ?? internalTopic('coherenceCheckpoints', this.topics),
      groupId: `${this.groupId}-checkpoints`,
      partitions: opts.checkpointPartitions,
      log: opts.log,
      clock: this.clock,
    });
  }

  async start(): Promise<void> {
    // The checkpoint reader first: a partition's first batch waits for its read barrier.
    await this.checkpoints.start();
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [this.topics.heartReadings],
      fromBeginning: true,
      eachBatch: (batch) => this.withPartition(batch.topic, batch.partition, (p) => this.handleBatch(p, batch)),
      onAssignment: (assigned) => this.onAssignment(assigned),
    });
    if (this.opts.endMarkers !== false) {
      this.endMarkers = new SessionEndMarkers({ bus: this.opts.bus, codec: this.opts.codec, topics: this.topics, log: this.opts.log });
      await this.endMarkers.start();
    }
  }

  private get sessionIdleEndMs(): number {
    return this.opts.sessionIdleEndMs ?? 300_000;
  }

  private key(topic: string, partition: number): string {
    return `${topic}/${partition}`;
  }

  private async withPartition(topic: string, partition: number, fn: (p: PartitionState) => Promise<void>): Promise<void> {
    const k = this.key(topic, partition);
    let p = this.partitions.get(k);
    if (!p) {
      p = {
        tracker: new PartitionOffsetTracker(topic, partition),
        sessions: new Map(),
        flushedThrough: new Map(),
        localCheckpoints: new Map(),
        looseSettings: new Map(),
        outLooseCheckpoints: [],
        endedInBatch: new Map(),
        endedTails: new Map(),
        nextTailDropMs: Infinity,
        maxEventTimeMs: -Infinity,
        nextIdleEndMs: Infinity,
        lastSenders: new Set(),
        pendingClosed: [],
        pendingProvisional: [],
        provisionalInFlight: null,
        outWindows: [],
        outEvents: [],
        outDeadLetters: [],
        outGroup: [],
        outCheckpoints: new Set(),
        recentFloors: [],
        startOffset: null,
        currentOffset: 0n,
        ending: new Map(),
        endingWritten: new Map(),
        synced: null,
        lock: Promise.resolve(),
      };
      this.partitions.set(k, p);
    }
    const state = p;
    const run = state.lock.then(() => fn(state));
    state.lock = run.catch(() => undefined);
    return run;
  }

  /** Partitions taken away: their state belongs to the new owner, who replays from the commit. */
  private onAssignment(assigned: TopicPartition[]): void {
    const keep = new Set(assigned.map((a) => this.key(a.topic, a.partition)));
    for (const k of [...this.partitions.keys()]) if (!keep.has(k)) this.partitions.delete(k);
  }

  private async handleBatch(p: PartitionState, batch: RecordBatch): Promise<void> {
    /** Per usable record, in order: its readings, and whether it is a batch record (HeartReadingBatch). */
    const decoded: Array<{ readings: HeartReadingRecord[]; batched: boolean; offset: bigint; sessionEndedAtMs: number | null }> = [];
    const markers = new Map<string, EndMarker>();
    const settingsMarkers = new Map<string, SettingsMarker>();
    const bad: DeadLetterInput[] = [];
    for (const rec of batch.records) {
      // A batch delivered again after a failure: what was applied stays applied.
      if (p.tracker.isProcessed(rec.offset)) continue;
      try {
        let value = decodeReadingsValue(this.opts.codec, rec.value);
        if (value instanceof Promise) value = await value;
        if (value.kind === 'batch') {
          decoded.push({ readings: value.readings, batched: true, offset: BigInt(rec.offset), sessionEndedAtMs: value.sessionEndedAtMs });
          continue;
        }
        const reading = value.value as HeartReadingRecord;
        const marker = asEndMarker(reading);
        if (marker) {
          markers.set(rec.offset, marker);
          continue;
        }
        const settings = asSettingsMarker(reading);
        if (settings) {
          settingsMarkers.set(rec.offset, settings);
          continue;
        }
        // A record of another schema decodes too; used as a reading it would throw outside
        // any handler on every redelivery and stall the partition (issue 10, item 2).
        const wrong = notAHeartReading(reading);
        if (wrong) bad.push({ record: rec, reasonCode: 'invalid_record', reason: wrong });
        else decoded.push({ readings: [reading], batched: false, offset: BigInt(rec.offset), sessionEndedAtMs: null });
      } catch (err) {
        bad.push({ record: rec, reasonCode: 'undecodable', reason: (err as Error).message });
      }
    }
    if (bad.length > 0) {
      await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, bad, this.clock());
      this.stats.deadLettered += bad.length;
    }
    if (!p.synced) {
      // Taken over (start, restart, rebalance): everything the previous owner checkpointed
      // must be read before any session of the partition is set up.
      p.synced = this.checkpoints.sync();
      p.synced.catch(() => (p.synced = null));
    }
    await p.synced;
    if (p.startOffset === null && batch.records.length > 0) {
      p.startOffset = BigInt(batch.records[0].offset);
      // The commit this process started from is one a crash before its first commit lands
      // brings the next replay back to: anchors cover it too.
      p.recentFloors.push(p.startOffset);
    }
    await this.loadSessions(p, decoded);
    p.endedInBatch.clear();

    const touched = new Set<SessionState>();
    const badOffsets = new Set(bad.map((b) => b.record.offset));
    let di = 0;
    for (const rec of batch.records) {
      // Parsed once: offsets are 64-bit, and BigInt parsing per beat showed in profiles.
      const offset = BigInt(rec.offset);
      p.currentOffset = offset;
      if (p.tracker.isProcessed(offset)) continue;
      if (badOffsets.has(rec.offset)) {
        p.tracker.processed(offset);
        continue;
      }
      const settings = settingsMarkers.get(rec.offset);
      if (settings) {
        this.applySettings(p, settings);
        p.tracker.processed(offset);
        continue;
      }
      const marker = markers.get(rec.offset);
      if (marker) {
        this.stats.endMarkers++;
        const st = p.sessions.get(marker.sessionId);
        if (st && !st.endedByMarker) {
          st.endedByMarker = true;
          // Beats that stop short of the end (less the allowed lateness) may still come in a sync
          // after the end call: the tail is kept for them. A session whose beats reach its end
          // lets its beats go at once, as before (keeping every ended session's tail would hold
          // back the partition's commit, and rewrite its checkpoint with each commit, for no use).
          const behind = st.windows.maxEventTimeMs < marker.endedAtMs - st.windows.allowedLatenessMs;
          this.endSession(p, st, touched, behind);
          this.stats.endedSessions++;
        } else if (st) this.stats.repeatedEndMarkers++;
        p.tracker.processed(offset);
        continue;
      }
      // A batch record's readings one by one, exactly as if each had its own record at this
      // offset: the windows, the clock guard and the retained offsets see the same sequence.
      // The record counts as processed once all of them are applied (nothing here awaits).
      const { readings, batched, sessionEndedAtMs } = decoded[di++];
      for (let i = 0; i < readings.length; i++) this.applyReading(p, rec, offset, readings[i], batched ? i : null, touched);
      if (sessionEndedAtMs !== null && readings.length > 0) this.closeAfterEnd(p, readings[0].session_id, sessionEndedAtMs);
      p.tracker.processed(offset);
    }
    for (const st of touched) p.tracker.setRetained(st.id, this.retainedMinOffset(st));
    if (this.opts.provisionalWindows !== false) {
      for (const st of touched) {
        const w = st.windows.provisionalWindow();
        if (w === null || w.windowEndMs <= st.provisionalThroughMs || w.windowEndMs <= st.emittedThroughMs) continue;
        st.provisionalThroughMs = w.windowEndMs;
        p.pendingProvisional.push({ st, w });
      }
    }
    await this.drain(p);
  }

  /**
   * Applies one reading of the record at `offset` (`index`: its place in a batch record, null
   * for a single-reading record): plausibility, the clock guard, the session's windows, the
   * partition's event time and idle ends.
   */
  private applyReading(p: PartitionState, rec: BusRecord, offset: bigint, reading: HeartReadingRecord, index: number | null, touched: Set<SessionState>): void {
    this.stats.readings++;
    let st = reading.session_id ? p.sessions.get(reading.session_id) : undefined;
    if (!st && reading.session_id) {
      // Any reading of it, as loadSessions takes any (its first record in the next batch).
      const ended = p.endedInBatch.get(reading.session_id);
      if (ended) st = this.revive(p, ended, reading, offset);
    }
    // Every record of a known session is logged (an implausible or HR-only one too: a replay's
    // first record of the session may be one, and it must find its anchor).
    let logged = false;
    if (st) logged = this.logRecord(p, st, offset);
    // The gateway's plausibility checks, again: the bus also carries other producers' records.
    const implausible = implausibleReading(reading);
    if (implausible) {
      p.outDeadLetters.push(this.deadLetterOf({ rec, reading, offset, index }, { reasonCode: implausible.reason, reason: implausible.field + ': ' + implausible.message }));
      this.stats.implausibleReadings++;
      return;
    }
    if (!st || reading.rr_intervals_ms.length === 0) {
      if (!reading.session_id) this.stats.readingsWithoutSession++;
      return;
    }
    let startMs = reading.recorded_at;
    for (const v of reading.rr_intervals_ms) startMs -= v;
    touched.add(st);
    // The common case (nothing held, the reading continues the clock) without offer()'s
    // decision object: the same outcome, the reading alone released.
    if (st.guard.passes(startMs, reading.recorded_at)) this.addBeats(p, st, rec, reading, offset, index);
    else {
      const decision = st.guard.offer(startMs, reading.recorded_at, offset, { rec, reading, offset, index });
      this.quarantine(p, st, decision.quarantine);
      if (decision.jumped === true) this.stats.confirmedJumps++;
      for (const g of decision.release) this.addBeats(p, st, g.rec, g.reading, g.offset, g.index);
      // The record's first reading continued the clock, refuted every held reading and released
      // none of them: a guard with nothing held would have decided it the same and be in the
      // same state now, so a replay starting here needs no held readings.
      if (logged && decision.release.length === 1 && decision.quarantine.length > 0 && st.guard.heldCount === 0) st.guardLog.held[st.guardLog.held.length - 1] = false;
    }
    // Asked only when a window closed: closeReady() returns a fresh (empty) array otherwise, per reading.
    if (st.windows.pendingWindowCount > 0) for (const w of st.windows.closeReady()) p.pendingClosed.push({ st, w, settings: st.settings });
    p.nextIdleEndMs = Math.min(p.nextIdleEndMs, this.idleEndAt(st));
    const moved = st.windows.maxEventTimeMs > p.maxEventTimeMs;
    if (moved) {
      p.maxEventTimeMs = st.windows.maxEventTimeMs;
      // The record that set the partition's event time is kept above the commit, so a
      // replay after a restart starts with the same partition event time (idle ends).
      p.tracker.setRetained(PARTITION_MAX, offset);
    }
    // Silence counts from the partition's event time at the first reading of another session
    // (quietFromMs): the sessions that sent the readings before this one start theirs here.
    if (p.lastSenders.size > 0 && !(p.lastSenders.size === 1 && p.lastSenders.has(st))) {
      for (const s of p.lastSenders) {
        if (s === st) continue;
        s.quietFromMs = p.maxEventTimeMs;
        p.nextIdleEndMs = Math.min(p.nextIdleEndMs, this.idleEndAt(s));
      }
      p.lastSenders.clear();
    }
    st.quietFromMs = null;
    st.dueFromMs = null;
    p.lastSenders.add(st);
    if (moved && p.maxEventTimeMs > p.nextIdleEndMs) this.endIdle(p, touched);
    if (moved && p.maxEventTimeMs > p.nextTailDropMs) this.dropTails(p);
  }

  /** Logs the session's record at `offset` (its first reading) with the guard before it; true when this reading added the entry. */
  private logRecord(p: PartitionState, st: SessionState, offset: bigint): boolean {
    const log = st.guardLog;
    const n = log.offsets.length;
    if (n !== 0 && log.offsets[n - 1] === offset) return false;
    if (n >= MAX_GUARD_LOG) {
      // Read for long without a checkpoint: start again; anchors wait until the floors pass this.
      log.offsets = [];
      log.clocks = [];
      log.held = [];
      log.late = [];
      log.quiet = [];
      log.due = [];
      log.partitionMax = [];
      log.marked = [];
      log.from = offset + 1n;
      return false;
    }
    log.offsets.push(offset);
    log.clocks.push(st.guard.clockMs);
    log.held.push(st.guard.heldCount > 0);
    log.late.push(st.windows.lateBeatCount);
    log.quiet.push(st.quietFromMs);
    log.due.push(st.dueFromMs);
    log.partitionMax.push(p.maxEventTimeMs);
    log.marked.push(st.endedByMarker);
    return true;
  }

  /**
   * A session's new threshold settings (end-markers.ts, SETTINGS_MARKER_TYPE), from here on in
   * the partition: the windows closed after this record are judged by them. A marker of a
   * version the session already has (read again in a replay, or older than what PostgreSQL
   * gave at first sight) changes nothing; a session with no state here takes its settings from
   * PostgreSQL when its first reading comes.
   */
  private applySettings(p: PartitionState, m: SettingsMarker): void {
    this.stats.settingsMarkers++;
    const settings: ThresholdSettings = { threshold: m.coherenceThreshold, holdMs: m.thresholdDurationS * 1000, version: m.version };
    // Ended in this batch: its ended checkpoint, written with the batch, carries them.
    const st = p.sessions.get(m.sessionId) ?? p.endedInBatch.get(m.sessionId);
    if (!st) {
      // No state here (not seen yet, or ended before this batch): kept in its checkpoint, so
      // that it starts from them whenever its readings come, in this run or a replay. A session
      // without a device has its marker in every partition and its state in (at most) one of
      // them: the others keep the settings under a key of this partition's, never in the
      // session's checkpoint, which a copy written here could overwrite with a stale one.
      if (m.everyPartition) {
        const key = looseSettingsKey(m.sessionId, p.tracker.partition);
        const held = p.looseSettings.get(m.sessionId) ?? this.checkpoints.get(key)?.settings ?? this.checkpoints.get(m.sessionId)?.settings;
        if (m.version <= (held?.version ?? 0)) return;
        // The relay writes a marker for every change of the session (its title too): only one
        // that changes the settings is kept here, or each title PATCH would leave a key per
        // partition in the checkpoint table for good.
        if (held && held.coherenceThreshold === m.coherenceThreshold && held.thresholdDurationS === m.thresholdDurationS) return;
        const settings = { coherenceThreshold: m.coherenceThreshold, thresholdDurationS: m.thresholdDurationS, version: m.version };
        if (p.looseSettings.size > 10_000 && !p.looseSettings.has(m.sessionId)) p.looseSettings.clear();
        p.looseSettings.set(m.sessionId, settings);
        p.outLooseCheckpoints.push({ sessionId: key, emittedThroughMs: null, threshold: null, ended: false, settings });
        this.stats.settingsApplied++;
        return;
      }
      const base = p.localCheckpoints.get(m.sessionId) ?? this.checkpoints.get(m.sessionId) ?? { sessionId: m.sessionId, emittedThroughMs: null, threshold: null, ended: false };
      if (m.version <= (base.settings?.version ?? 0)) return;
      const next: SessionCheckpoint = { ...base, settings: { coherenceThreshold: m.coherenceThreshold, thresholdDurationS: m.thresholdDurationS, version: m.version } };
      if (p.localCheckpoints.size > 10_000 && !p.localCheckpoints.has(m.sessionId)) p.localCheckpoints.clear();
      p.localCheckpoints.set(m.sessionId, next);
      p.outLooseCheckpoints.push(next);
      this.stats.settingsApplied++;
      return;
    }
    if (m.version <= (st.settings?.version ?? 0)) return;
    st.settings = settings;
    this.stats.settingsApplied++;
    // Checkpointed before the commit passes the marker: a replay from a later commit reads
    // the settings there.
    if (!st.ended) p.outCheckpoints.add(st);
  }

  /** A released reading's beats into its session's windows. */
  private addBeats(p: PartitionState, st: SessionState, rec: BusRecord, reading: HeartReadingRecord, offset: bigint, index: number | null): void {
    const rr = reading.rr_intervals_ms;
    try {
      this.stats.lateBeats += st.windows.add(beatTimes(reading.recorded_at, rr), rr, offset);
    } catch (err) {
      // Decodable but impossible (RR not a positive finite number, say, from another
      // producer): set aside with the reason rather than block the partition.
      p.outDeadLetters.push(this.deadLetterOf({ rec, reading, offset, index }, { reasonCode: 'invalid_reading', reason: (err as Error).message }));
    }
  }

  /** A reading's dead letter: its record unchanged, or, inside a batch record, the reading alone with its index. */
  private deadLetterOf(g: Guarded, why: Pick<DeadLetterInput, 'reasonCode' | 'reason'>): DeadLetterInput {
    if (g.index === null) return { record: g.rec, ...why };
    return batchItemDeadLetter(this.opts.codec, g.rec, g.index, g.reading, why.reasonCode, why.reason);
  }

  /**
   * A batch record accepted after its session had ended (a sync after the end call: its
   * session_ended_at). Its beats came after the end marker, which closed what the session had
   * then; without this the windows they fill closed only at an idle end in event time, in a
   * quiet partition never (and session.completed waited its bound). Once the session's beats
   * reach its end (less the allowed lateness: the device's clock and the gateway's grace), no
   * beat is still to come but the few the gateway's grace lets in, so its last windows close
   * here, as the end marker closes them for beats that came before it. The beats stay held
   * (closeTail), so a later upload's windows still have their context. A function of the
   * records alone: a replay closes the same windows. A backlog that stops short of the end
   * (the sensor taken off before the end call) still waits for an idle end.
   */
  private closeAfterEnd(p: PartitionState, sessionId: string | null, endedAtMs: number): void {
    const st = sessionId === null ? undefined : p.sessions.get(sessionId);
    if (!st || st.windows.maxEventTimeMs < endedAtMs - st.windows.allowedLatenessMs) return;
    this.stats.closedAfterEnd++;
    for (const w of st.windows.closeTail()) p.pendingClosed.push({ st, w, flushed: true, settings: st.settings });
  }

  /**
   * When the partition's event time ends the session for silence: sessionIdleEndMs after its
   * newest beat (or clock) and after the partition's event time at its newest record (a session
   * behind the others of its partition but still sending is not silent).
   */
  private idleEndAt(st: SessionState): number {
    if (st.quietFromMs === null) return Infinity;
    const half = this.sessionIdleEndMs / 2;
    if (st.dueFromMs !== null) return st.dueFromMs + half;
    const last = Math.max(st.windows.maxEventTimeMs, st.guard.clockMs, st.quietFromMs);
    return last === -Infinity ? Infinity : last + half;
  }

  /**
   * A session's end (its marker, or silence in event time): its last windows close, up to the
   * first one ending after its last beat; readings its clock guard still holds were never
   * confirmed and are quarantined; its state and retained offsets are let go. `flushedThrough`
   * remembers how far it was emitted, in case a late reading of it comes after all.
   */
  private endSession(p: PartitionState, st: SessionState, touched: Set<SessionState>, keepTail = false): void {
    this.quarantine(p, st, st.guard.drop());
    // The end marker closes the same windows either way; it keeps the beats later windows would
    // read (a sync after the end call), until the partition's event time lets them go.
    for (const w of keepTail ? st.windows.closeTail() : st.windows.closeAll()) p.pendingClosed.push({ st, w, flushed: true, settings: st.settings });
    if (keepTail) this.keepTail(p, st);
    p.tracker.setRetained(st.id, null);
    p.tracker.setRetained(anchorKey(st.id), null);
    p.sessions.delete(st.id);
    p.lastSenders.delete(st);
    p.endedInBatch.set(st.id, st);
    st.ended = true;
    p.outCheckpoints.add(st);
    p.ending.set(st, p.currentOffset);
    touched.delete(st);
    if (p.flushedThrough.size > 10_000) p.flushedThrough.clear();
    p.flushedThrough.set(st.id, Math.max(st.emittedThroughMs, st.windows.closedThroughMs));
  }

  /** Keeps an ended session's tail beats (PartitionState.endedTails), their offsets retained. */
  private keepTail(p: PartitionState, st: SessionState): void {
    const oldest = st.windows.retainedMinOffset();
    if (oldest === null) return;
    const dropAtMs = st.windows.maxEventTimeMs + this.sessionIdleEndMs;
    p.endedTails.set(st.id, { windows: st.windows, guardLog: st.guardLog, dropAtMs });
    p.tracker.setRetained(tailKey(st.id), oldest);
    p.nextTailDropMs = Math.min(p.nextTailDropMs, dropAtMs);
  }

  /** An ended session's tail, taken by its revival (its offsets are the revived state's from here on). */
  private takeTail(p: PartitionState, sessionId: string): EndedTail | null {
    const tail = p.endedTails.get(sessionId);
    if (!tail) return null;
    p.endedTails.delete(sessionId);
    p.tracker.setRetained(tailKey(sessionId), null);
    return { windows: tail.windows, guardLog: tail.guardLog };
  }

  /** Lets go of the ended tails the partition's event time has passed. */
  private dropTails(p: PartitionState): void {
    let next = Infinity;
    for (const [id, tail] of p.endedTails) {
      if (tail.dropAtMs < p.maxEventTimeMs) {
        p.endedTails.delete(id);
        p.tracker.setRetained(tailKey(id), null);
      } else next = Math.min(next, tail.dropAtMs);
    }
    p.nextTailDropMs = next;
  }

  /** Ends the sessions the partition's event time has left sessionIdleEndMs behind. */
  private endIdle(p: PartitionState, touched: Set<SessionState>): void {
    let next = Infinity;
    for (const st of [...p.sessions.values()]) {
      const at = this.idleEndAt(st);
      if (at >= p.maxEventTimeMs) {
        next = Math.min(next, at);
        continue;
      }
      if (st.dueFromMs === null) {
        // Silent for half the span: due from here; ended if the next half passes without it.
        st.dueFromMs = p.maxEventTimeMs;
        next = Math.min(next, this.idleEndAt(st));
        continue;
      }
      this.endSession(p, st, touched);
      this.stats.idleEndedSessions++;
    }
    p.nextIdleEndMs = next;
  }

  /** The oldest offset a session still needs: its windows' beats and the readings its guard holds. */
  private retainedMinOffset(st: SessionState): bigint | null {
    const w = st.windows.retainedMinOffset();
    const g = st.guard.heldMinOffset();
    if (w === null) return g;
    if (g === null) return w;
    return g < w ? g : w;
  }

  /** Dead-letters readings the clock guard refused (future_beat); they never reach the windows. */
  private quarantine(p: PartitionState, st: SessionState, held: Guarded[]): void {
    for (const g of held) {
      const ahead = Math.round((g.reading.recorded_at - st.guard.clockMs) / 1000);
      p.outDeadLetters.push(
        this.deadLetterOf(g, {
          reasonCode: 'future_beat',
          reason: `recorded_at ${new Date(g.reading.recorded_at).toISOString()} is ${ahead} s ahead of session ${st.id}'s clock; the readings after it did not confirm the jump (or more unconfirmed readings came than a session holds)`,
        }),
      );
      this.stats.quarantinedReadings++;
    }
  }

  /**
   * Computes, emits and writes what the partition's outbox holds. Each step leaves the
   * outbox as it was when it fails, so a retry picks up where this one stopped.
   */
  private async drain(p: PartitionState): Promise<void> {
    if (p.pendingClosed.length > 0) {
      const closed = p.pendingClosed;
      const { metrics, reused } = await this.metricsOf(closed);
      // Group participations are looked up before the outbox moves on, so a failed lookup
      // leaves the closed windows where they were (the windows a replay suppresses need none).
      const fanout = this.groupFanout;
      const groups = fanout
        ? await Promise.all(closed.map((c) => (c.w.windowEndMs > c.st.emittedThroughMs ? fanout.lookup(c.st.orgId, c.st.userId, c.st.deviceId, c.w.windowEndMs) : { current: [], ends: [] })))
        : null;
      p.pendingClosed = [];
      this.stats.provisionalReused += reused;
      this.releaseMemos(closed);
      // The last window of a session that ended tells the group worker the participant's input
      // ended (GroupWindows: a group whose participants all ended closes its last windows).
      const lastOfEnded = new Map<SessionState, number>();
      for (let i = 0; i < closed.length; i++) if (closed[i].st.ended) lastOfEnded.set(closed[i].st, i);
      for (let i = 0; i < closed.length; i++) {
        const { st, w } = closed[i];
        const flushed = closed[i].flushed === true;
        const emitted = this.emit(st, w, metrics[i], p.outWindows, p.outEvents, closed[i].settings);
        if (emitted && fanout && groups && groups[i].current.length > 0) {
          const ended = lastOfEnded.get(st) === i;
          for (const rec of fanout.records({ sessionId: st.id, userId: st.userId, orgId: st.orgId, deviceId: st.deviceId }, w, metrics[i], groups[i].current)) p.outGroup.push({ rec, ended, flushed });
        }
        // The first window past a leave or the group session's end: a marker after the
        // participant's last window for that group (GroupWindows.endInput).
        if (emitted && fanout && groups && groups[i].ends.length > 0) {
          for (const m of fanout.endMarkers({ sessionId: st.id, userId: st.userId, orgId: st.orgId, deviceId: st.deviceId }, w, groups[i].ends)) p.outGroup.push({ rec: m.rec, ended: true, end: m.header, flushed });
        }
        p.outCheckpoints.add(st);
      }
    }
    if (p.outDeadLetters.length > 0) {
      await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, p.outDeadLetters, this.clock());
      this.stats.deadLettered += p.outDeadLetters.length;
      p.outDeadLetters = [];
    }
    await this.output(p, p.outWindows, p.outEvents, p.outCheckpoints, p.outGroup);
    p.outWindows = [];
    p.outGroup = [];
    p.outEvents = [];
    p.outCheckpoints = new Set();
    if (p.pendingProvisional.length > 0) this.startProvisional(p);
  }

  /**
   * The metrics of closed windows, in order: a window its session's provisional memo already
   * holds (the same beats) takes those; the others are computed.
   */
  private async metricsOf(closed: ClosedOf[]): Promise<{ metrics: WindowMetrics[]; reused: number }> {
    const known = closed.map(({ st, w }) => {
      const m = st.provisionalMemos.find((x) => x.windowEndMs === w.windowEndMs);
      return m && m.revision === w.revision && m.count === w.count ? m.metrics : null;
    });
    const computed = await this.pool.compute(closed.filter((_, i) => known[i] === null).map((c) => c.w));
    let next = 0;
    return { metrics: known.map((m) => m ?? computed[next++]), reused: closed.length - computed.length };
  }

  /**
   * Once closed windows have left the outbox: their sessions' memos for them, or for earlier
   * ends, are used or never will be (windows close in end order).
   */
  private releaseMemos(closed: ClosedOf[]): void {
    for (const { st, w } of closed) {
      const memos = st.provisionalMemos;
      while (memos.length > 0 && memos[0].windowEndMs <= w.windowEndMs) memos.shift();
    }
  }

  /**
   * Computes and publishes the batch's provisional windows after its final ones and the
   * commit, outside the partition's lock: they are for live display only, so nothing waits for
   * them, a failure (computing or publishing) is logged and counted and never a reason to
   * replay, and while one round is in flight (a slow bus) newer ones are dropped, not queued.
   * A provisional window whose final one was published meanwhile is dropped.
   */
  private startProvisional(p: PartitionState): void {
    const windows = p.pendingProvisional;
    p.pendingProvisional = [];
    if (p.provisionalInFlight) {
      this.stats.provisionalDropped += windows.length;
      return;
    }
    p.provisionalInFlight = (async () => {
      try {
        const metrics = await this.pool.compute(windows.map((c) => c.w));
        const recs = [];
        for (let i = 0; i < windows.length; i++) {
          const { st, w } = windows[i];
          if (p.sessions.get(st.id) !== st || w.windowEndMs <= st.emittedThroughMs) continue;
          // Full (an allowed lateness over ~40 s): the oldest, which close first, are kept.
          if (st.provisionalMemos.length < MAX_PROVISIONAL_MEMOS) st.provisionalMemos.push({ windowEndMs: w.windowEndMs, revision: w.revision, count: w.count, metrics: metrics[i] });
          const rec = this.windowRecord(st, w, metrics[i]);
          recs.push({ key: rec.session_id, value: await this.opts.codec.encode(Topics.coherenceWindowsProvisional, rec), timestamp: rec.window_end });
        }
        if (recs.length === 0) return;
        await this.opts.bus.publish(this.topics.coherenceWindowsProvisional, recs);
        this.stats.provisionalWindows += recs.length;
        await this.publishProvisionalGroup(p, windows, metrics);
      } catch (err) {
        this.stats.provisionalFailures += windows.length;
        this.opts.log.warn({ err, partition: p.tracker.partition, windows: windows.length }, 'coherence worker: provisional windows not published (live display only; the final windows are unaffected)');
      } finally {
        p.provisionalInFlight = null;
      }
    })();
  }

  /**
   * The provisional windows of mesh participants, for the group worker's provisional group
   * windows (part of the provisional round: its failure is logged and counted apart, never
   * retried). Membership from the cache (GroupFanout.lookupForDisplay); the lookups that miss
   * it run together.
   */
  private async publishProvisionalGroup(p: PartitionState, windows: ClosedOf[], metrics: WindowMetrics[]): Promise<void> {
    const fanout = this.groupFanout;
    if (!fanout) return;
    try {
      const live = windows.map((c, i) => ({ ...c, m: metrics[i] })).filter(({ st, w }) => p.sessions.get(st.id) === st && w.windowEndMs > st.emittedThroughMs);
      const current = await Promise.all(live.map(({ st, w }) => fanout.lookupForDisplay(st.orgId, st.userId, st.deviceId, w.windowEndMs)));
      const recs = [];
      for (let i = 0; i < live.length; i++) {
        const { st, w, m } = live[i];
        for (const g of fanout.records({ sessionId: st.id, userId: st.userId, orgId: st.orgId, deviceId: st.deviceId }, w, m, current[i], true)) {
          recs.push({ key: g.mesh_id, value: await this.opts.codec.encode(Topics.groupParticipantWindowsProvisional, g), timestamp: g.window_end });
        }
      }
      if (recs.length > 0) await this.opts.bus.publish(this.topics.groupParticipantWindowsProvisional, recs);
      this.stats.provisionalGroupRecords += recs.length;
    } catch (err) {
      this.stats.provisionalGroupFailures++;
      this.opts.log.warn({ err, partition: p.tracker.partition }, "coherence worker: mesh participants' provisional windows not published (live display only; the final windows are unaffected)");
    }
  }

  /**
   * The guard anchors of sessions about to be checkpointed (checkpoints.ts, GuardAnchor): for
   * the commit about to be issued (computed without their previous anchors) and the last ones
   * issued before it, each session's first record at or after it, with its guard's clock
   * before that record. The newest anchor is retained, so no commit passes it before the
   * session's next checkpoint: a replay from any commit from then on starts with that record.
   * Each log is trimmed to its oldest anchor.
   */
  private anchorsOf(p: PartitionState, sessions: Set<SessionState>): Map<SessionState, GuardAnchor[]> {
    const out = new Map<SessionState, GuardAnchor[]>();
    // Ended ones too (p.ending), not retained: they are checkpointed again with each commit.
    const live = [...sessions].filter((st) => (st.ended ? p.ending.has(st) : p.sessions.get(st.id) === st));
    for (const st of live) if (!st.ended) p.tracker.setRetained(anchorKey(st.id), null);
    const commit = p.tracker.commitOffset();
    if (commit === null) return out;
    const next = BigInt(p.tracker.nextOffset()!);
    const floors = [...p.recentFloors, BigInt(commit)].filter((f, i, all) => i === 0 || f > all[i - 1]);
    for (const st of live) {
      const log = st.guardLog;
      // The log must hold every record of the session from the oldest floor it answers for.
      const usable = floors.filter((f) => log.from !== null && log.from <= f);
      if (usable.length === 0) continue;
      let i = 0;
      while (i < log.offsets.length && log.offsets[i] < usable[0]) i++;
      if (i > 0) {
        log.offsets.splice(0, i);
        log.clocks.splice(0, i);
        log.held.splice(0, i);
        log.late.splice(0, i);
        log.quiet.splice(0, i);
        log.due.splice(0, i);
        log.partitionMax.splice(0, i);
        log.marked.splice(0, i);
      }
      log.from = usable[0];
      const anchors: GuardAnchor[] = [];
      let j = 0;
      for (const f of usable) {
        while (j < log.offsets.length && log.offsets[j] < f) j++;
        const a: GuardAnchor =
          j < log.offsets.length
            ? {
                offset: log.offsets[j].toString(),
                afterOffset: null,
                clockMs: finiteOrNull(log.clocks[j]),
                held: log.held[j],
                lateBeats: log.late[j],
                quietFromMs: log.quiet[j] === null ? null : finiteOrNull(log.quiet[j]!),
                sentLast: log.quiet[j] === null,
                dueFromMs: log.due[j],
                partitionMaxMs: finiteOrNull(log.partitionMax[j]),
                endedByMarker: log.marked[j],
              }
            : {
                offset: null,
                afterOffset: (next - 1n).toString(),
                clockMs: finiteOrNull(st.guard.clockMs),
                held: st.guard.heldCount > 0,
                lateBeats: st.windows.lateBeatCount,
                quietFromMs: st.quietFromMs === null ? null : finiteOrNull(st.quietFromMs),
                sentLast: st.quietFromMs === null,
                dueFromMs: st.dueFromMs,
                partitionMaxMs: finiteOrNull(p.maxEventTimeMs),
                endedByMarker: st.endedByMarker,
              };
        const prev = anchors[anchors.length - 1];
        if (!prev || prev.offset !== a.offset || prev.afterOffset !== a.afterOffset) anchors.push(a);
      }
      const newest = anchors[anchors.length - 1];
      if (newest.offset !== null && !st.ended) p.tracker.setRetained(anchorKey(st.id), newest.offset);
      out.set(st, anchors);
    }
    return out;
  }

  /**
   * A reading of a session ended earlier in this batch (its marker, or silence) revives it here,
   * as the next batch would from the ended checkpoint (loadSessions: no anchor, the guard from
   * the session's start or its last window, windows up to the flushed one suppressed, the
   * tracker as the ended state left it). Before, such a reading was dropped in the batch of the
   * end and revived the session in a later one: the windows depended on where the bus cut its
   * batches.
   */
  private revive(p: PartitionState, ended: SessionState, r: HeartReadingRecord, offset: bigint): SessionState {
    const emittedThroughMs = Math.max(ended.emittedThroughMs, p.flushedThrough.get(ended.id) ?? -Infinity);
    const st = this.newSessionState(p, r, offset, {
      id: ended.id,
      // Cumulative per session: the count goes on from the end's, as a revival from the ended
      // checkpoint in a later batch (loadSessions) continues it.
      lateBeats: ended.windows.lateBeatCount,
      guardStartMs: Math.max(ended.startedAtMs, emittedThroughMs),
      quietFromMs: null,
      dueFromMs: null,
      threshold: null,
      settings: ended.settings,
      startedAtMs: ended.startedAtMs,
      inheritFrom: ended,
      emittedThroughMs,
      endedByMarker: ended.endedByMarker,
      tail: this.takeTail(p, ended.id),
    });
    p.sessions.set(st.id, st);
    p.endedInBatch.delete(st.id);
    this.stats.revivedInBatch++;
    return st;
  }

  /** A session's state from its first record here (`r` at `firstOffset`) and what it starts from. */
  private newSessionState(
    p: PartitionState,
    r: HeartReadingRecord,
    firstOffset: bigint,
    v: Pick<SessionState, 'id' | 'quietFromMs' | 'dueFromMs' | 'threshold' | 'settings' | 'startedAtMs' | 'inheritFrom' | 'emittedThroughMs' | 'endedByMarker'> & { lateBeats: number; guardStartMs: number; tail?: EndedTail | null },
  ): SessionState {
    const { lateBeats, guardStartMs, tail, ...rest } = v;
    return {
      ...rest,
      userId: r.user_id,
      orgId: r.org_id,
      deviceId: r.device_id,
      // A revival continues the ended session's tail when it is still kept (its late count with it).
      windows: tail?.windows ?? new SessionWindows({ allowedLatenessMs: this.opts.allowedLatenessMs, lateBeatCount: lateBeats }),
      guard: new SessionClockGuard<Guarded>({
        horizonMs: this.opts.clockHorizonMs ?? this.opts.allowedLatenessMs ?? defaultAllowedLatenessMs,
        confirmReadings: this.opts.confirmReadings ?? defaultConfirmReadings,
        // A revived tail's guard starts where its end closed it (the end of its last window), as
        // in the run that ended it: a replay's checkpoint has published further, and its
        // emittedThroughMs would start the guard later than the uninterrupted run's.
        startMs: tail ? Math.max(rest.startedAtMs, tail.windows.closedThroughMs) : guardStartMs,
      }),
      // Every record of the session read from the partition's start on is logged (there were
      // none before this one).
      guardLog: tail?.guardLog ?? { offsets: [], clocks: [], held: [], late: [], quiet: [], due: [], partitionMax: [], marked: [], from: p.startOffset ?? firstOffset },
      ended: false,
      provisionalThroughMs: -Infinity,
      provisionalMemos: [],
    };
  }

  /** Creates state for sessions first seen in this batch, from their checkpoints (a takeover). */
  private async loadSessions(p: PartitionState, records: Array<{ readings: HeartReadingRecord[]; offset: bigint }>): Promise<void> {
    const fresh = new Map<string, { r: HeartReadingRecord; offset: bigint }>();
    for (const { readings, offset } of records) for (const r of readings) if (r.session_id && !p.sessions.has(r.session_id) && !fresh.has(r.session_id)) fresh.set(r.session_id, { r, offset });
    if (fresh.size === 0) return;
    for (const [id, { r, offset: firstOffset }] of fresh) {
      const session = await this.opts.sessions.get(id);
      const cp = p.localCheckpoints.get(id) ?? this.checkpoints.get(id);
      p.localCheckpoints.delete(id);
      // A session without a device: its settings markers read here before its first reading.
      const loose = p.looseSettings.get(id) ?? this.checkpoints.get(looseSettingsKey(id, p.tracker.partition))?.settings;
      p.looseSettings.delete(id);
      // The settings the session had where the checkpoint was written (its settings markers
      // before that are behind the commit), else PostgreSQL's now.
      // Without a checkpoint's: the settings it was created with (version 1; the markers of its
      // changes come in the partition), else, for a session created before they were recorded,
      // its current ones.
      // Markers read here without its state (loose), when newer than the checkpoint's.
      const marked = loose && loose.version > (cp?.settings?.version ?? 0) ? loose : cp?.settings;
      const initial = marked || !session ? null : await this.opts.sessions.initialSettings(id);
      const saved = marked ?? (initial ? { ...initial, version: 1 } : session ? { coherenceThreshold: session.coherenceThreshold, thresholdDurationS: session.thresholdDurationS, version: session.version } : null);
      const settings: ThresholdSettings | null = saved ? { threshold: saved.coherenceThreshold, holdMs: saved.thresholdDurationS * 1000, version: saved.version } : null;
      // The tracker with the settings it judged the last window by (in its snapshot, when the
      // checkpoint has them), so that a change since is applied, and its streak ended, exactly
      // where the uninterrupted run did: at the next window.
      const threshold = settings ? new ThresholdTracker({ sessionId: id, threshold: settings.threshold, holdMs: settings.holdMs }) : null;
      // The tracker continues from its state right after the last window published: replayed
      // windows at or before it are ignored by it, the next ones fire as an uninterrupted run.
      if (threshold && cp?.threshold) threshold.restore(cp.threshold);
      if (cp) this.stats.restoredSessions++;
      // The flushed-through mark covers a session this process ended, whose checkpoint its
      // reader may not have read back yet.
      const emittedThroughMs = Math.max(cp?.emittedThroughMs ?? -Infinity, p.flushedThrough.get(id) ?? -Infinity);
      // The guard's clock where this replay of the session starts, when its checkpoint has it
      // (the anchor for the commit the replay starts from); otherwise, before any beat, the
      // session's start or the last window already published, so that even a session's first
      // reading is held when it lies far past both (a replay then decides a reading that came
      // more than the horizon ahead of the clock but behind that window otherwise than the run
      // before it did: README, Known limitations).
      const anchor = cp?.guard ? anchorFor(cp.guard, firstOffset, cp.ended) : null;
      if (cp && !(cp.ended && anchor === null)) {
        if (anchor) this.stats.guardAnchored++;
        else this.stats.guardAnchorMisses++;
      }
      // Kept until the session's next checkpoint anchors it anew: a commit passing it before
      // then would start the next replay at a record no anchor is for.
      if (anchor) p.tracker.setRetained(anchorKey(id), firstOffset);
      // The partition's event time before the first record this owner reads, as the run
      // before had it there: the records that set it may lie before the commit, and a replay
      // that rebuilt it from what it reads again would judge silences against a lower time.
      // (Only an anchor at that very record: one for a record after an offset holds the time
      // when it was written, which records since may have moved.)
      if (anchor?.offset != null && anchor.partitionMaxMs != null && p.startOffset !== null && firstOffset === p.startOffset && p.maxEventTimeMs === -Infinity) {
        p.maxEventTimeMs = anchor.partitionMaxMs;
      }
      const guardStartMs = anchor ? (anchor.clockMs ?? -Infinity) : Math.max(session?.startedAt ?? -Infinity, emittedThroughMs);
      const created = this.newSessionState(p, r, firstOffset, {
        id,
        // The late beats counted before the replay's first record, as the uninterrupted run
        // had them (late_beat_count is cumulative per session). A revival (an ended
        // checkpoint, no anchor: the replay starts after the end) goes on from the count at the
        // end; otherwise 0 without an anchor.
        lateBeats: anchor ? (anchor.lateBeats ?? 0) : cp?.ended ? (cp.lateBeats ?? 0) : 0,
        guardStartMs,
        // Where the run before had it before this record; without an anchor (its first record
        // in this run, a revival) null: no silence ends it before its first reading here, which
        // may come after other sessions' readings in this batch.
        quietFromMs: anchor && !anchor.sentLast && anchor.quietFromMs != null ? anchor.quietFromMs : null,
        dueFromMs: anchor?.dueFromMs ?? null,
        threshold,
        settings,
        startedAtMs: session?.startedAt ?? -Infinity,
        inheritFrom: null,
        emittedThroughMs,
        // (An ended checkpoint's anchor resumes the state before its end: its marker is ahead.)
        // An anchor says whether the marker had been applied at its record (before a revived
        // tail's end: not yet, so the replay applies it again, as the run did).
        endedByMarker: anchor?.endedByMarker ?? (cp?.endedByMarker === true && !(cp.ended && anchor !== null)),
        tail: cp?.ended && anchor === null ? this.takeTail(p, id) : null,
      });
      p.sessions.set(id, created);
      if (anchor?.sentLast) p.lastSenders.add(created);
    }
  }

  private checkpointOf(st: SessionState): SessionCheckpoint {
    return {
      sessionId: st.id,
      emittedThroughMs: st.emittedThroughMs === -Infinity ? null : st.emittedThroughMs,
      threshold: st.threshold?.snapshot() ?? null,
      ...(st.settings ? { settings: { coherenceThreshold: st.settings.threshold, thresholdDurationS: st.settings.holdMs / 1000, version: st.settings.version } } : {}),
      ended: st.ended,
      ...(st.endedByMarker ? { endedByMarker: true } : {}),
      ...(st.ended ? { lateBeats: st.windows.lateBeatCount } : {}),
    };
  }

  private eventRecord(st: SessionState, e: SessionEventDescriptor): SessionEventRecord {
    return {
      event_id: e.eventId,
      session_id: st.id,
      user_id: st.userId,
      org_id: st.orgId,
      type: e.type,
      occurred_at: e.occurredAtMs,
      payload_json: thresholdReachedPayloadJson(e.payload),
    };
  }

  /** The window's record, as the coherenceWindows topic (and the provisional one) carry it. */
  private windowRecord(st: SessionState, w: ClosedWindow, m: WindowMetrics): CoherenceWindowRecord {
    return {
      session_id: st.id,
      user_id: st.userId,
      org_id: st.orgId,
      device_id: st.deviceId,
      window_start: w.windowStartMs,
      window_end: w.windowEndMs,
      valid: m.valid,
      invalid_reason: m.invalidReason,
      partial: m.partial,
      coverage: m.coverage,
      longest_gap_ms: m.longestGapMs,
      coherence: m.coherence,
      coherence_ratio: m.coherenceRatio,
      peak_frequency_hz: m.peakFrequencyHz,
      breathing_rate_bpm: m.breathingRateBpm,
      mean_hr_bpm: m.meanHrBpm,
      rmssd_ms: m.rmssdMs,
      sdnn_ms: m.sdnnMs,
      pnn50_pct: m.pnn50Pct,
      // Beats in the window as received (before cleaning), as the column says; the context
      // beats handed over before the window and the lookahead after it are not its own.
      beat_count: w.count - w.contextCount - w.lookaheadCount,
      artifact_ratio: m.artifactRatio,
      late_beat_count: w.lateBeatCount,
    };
  }

  /** Emits the window (and any event it completes); false when it was suppressed (published before a restart). */
  private emit(st: SessionState, w: ClosedWindow, m: WindowMetrics, windows: CoherenceWindowRecord[], events: SessionEventRecord[], settings?: ThresholdSettings | null): boolean {
    if (st.inheritFrom) {
      // Revived in the batch that ended it: the ended state's windows, all before this one in
      // the batch, are emitted; its tracker now is what its checkpoint holds.
      const from = st.inheritFrom.threshold;
      st.inheritFrom = null;
      if (from) {
        st.threshold = new ThresholdTracker({ sessionId: st.id, threshold: from.threshold, holdMs: from.holdMs });
        st.threshold.restore(from.snapshot());
      }
    }
    // The settings the window closed under (a settings marker may have come since, later in
    // the same batch: it judges the windows closed after it).
    if (settings) {
      if (st.threshold) st.threshold.reconfigure(settings.threshold, settings.holdMs);
      else st.threshold = new ThresholdTracker({ sessionId: st.id, threshold: settings.threshold, holdMs: settings.holdMs });
    }
    // The threshold tracker sees replayed windows too, so a streak survives a restart.
    const reached = st.threshold?.update({ windowEndMs: w.windowEndMs, valid: m.valid, coherence: m.coherence }) ?? [];
    if (w.windowEndMs <= st.emittedThroughMs) {
      this.stats.suppressedWindows++;
      return false;
    }
    st.emittedThroughMs = w.windowEndMs;
    this.stats.windows++;
    if (m.valid) this.stats.validWindows++;
    windows.push(this.windowRecord(st, w, m));
    for (const e of reached) {
      this.stats.events++;
      events.push(this.eventRecord(st, e));
    }
    return true;
  }

  /**
   * Publishes windows (and the group participants' copies on the repartition topic), then
   * their events, then the sessions' checkpoints, each once the one before is acknowledged,
   * and then commits: a checkpoint never runs ahead of the windows topic, and the committed
   * offset never ahead of the checkpoints.
   */
  private async output(
    p: PartitionState,
    windows: CoherenceWindowRecord[],
    events: SessionEventRecord[],
    sessions: Set<SessionState>,
    group: Array<{ rec: GroupParticipantWindowRecord; ended: boolean; /** A marker: PARTICIPATION_END_HEADER's value. */ end?: string; flushed?: boolean }>,
  ): Promise<void> {
    if (windows.length > 0) {
      const recs = [];
      for (const w of windows) recs.push({ key: w.session_id, value: await this.opts.codec.encode(Topics.coherenceWindows, w), timestamp: w.window_end });
      await this.opts.bus.publish(this.topics.coherenceWindows, recs);
    }
    if (group.length > 0) {
      // Keyed by the group: one group's windows, from every participant, on one partition.
      const recs = [];
      for (const { rec: g, ended, end, flushed } of group) {
        // About the stream, not the window: no schema change for them.
        const headers: Record<string, string> = {
          ...(ended ? { [PARTICIPANT_ENDED_HEADER]: 'true', ...(end ? { [PARTICIPATION_END_HEADER]: end } : {}) } : {}),
          ...(flushed ? { [PARTICIPANT_FLUSHED_HEADER]: 'true' } : {}),
        };
        recs.push({
          key: g.mesh_id,
          value: await this.opts.codec.encode(Topics.groupParticipantWindows, g),
          timestamp: g.window_end,
          ...(Object.keys(headers).length > 0 ? { headers } : {}),
        });
      }
      await this.opts.bus.publish(this.topics.groupParticipantWindows, recs);
    }
    if (events.length > 0) {
      const recs = [];
      for (const e of events) recs.push({ key: e.session_id, value: await this.opts.codec.encode(Topics.sessionEvents, e), timestamp: e.occurred_at });
      await this.opts.bus.publish(this.topics.sessionEvents, recs);
    }
    // Ended sessions whose end a replay would still read are checkpointed again with anchors
    // for this commit (a session revived since is checkpointed as the live one, only).
    for (const st of p.ending.keys()) if (p.sessions.has(st.id)) p.ending.delete(st);
    const checkpointed = p.ending.size > 0 ? new Set([...sessions, ...p.ending.keys()]) : sessions;
    // Sessions without state whose settings a marker changed (applySettings); one that has state
    // again is checkpointed as such.
    const loose = p.outLooseCheckpoints.filter((c) => !p.sessions.has(c.sessionId));
    p.outLooseCheckpoints = [];
    if (checkpointed.size > 0 || loose.length > 0) {
      const anchors = this.anchorsOf(p, checkpointed);
      const again: Array<[SessionState, string]> = [];
      const fresh: SessionCheckpoint[] = [];
      for (const st of checkpointed) {
        const c = { ...this.checkpointOf(st), guard: anchors.get(st) ?? null };
        if (p.ending.has(st)) {
          // Rewritten with each commit while a replay would still read its end: only when it
          // changed (until 12-06 every batch rewrote every such session's, the same, for as long
          // as a kept tail held the commit: 3.4x the checkpoint records in a review's run).
          const json = JSON.stringify(c);
          if (!sessions.has(st) && p.endingWritten.get(st) === json) continue;
          again.push([st, json]);
        }
        fresh.push(c);
      }
      const written = [...fresh, ...loose];
      if (written.length > 0) await this.checkpoints.write(written);
      for (const [st, json] of again) p.endingWritten.set(st, json);
      for (const c of written) {
        if (!c.ended) continue;
        if (p.localCheckpoints.size > 10_000 && !p.localCheckpoints.has(c.sessionId)) p.localCheckpoints.clear();
        p.localCheckpoints.set(c.sessionId, c);
      }
    }
    const commitAt = p.tracker.commitOffset();
    if (commitAt === null) return;
    const floor = BigInt(commitAt);
    for (const [st, endOffset] of p.ending) if (floor > endOffset) p.ending.delete(st);
    for (const st of p.endingWritten.keys()) if (!p.ending.has(st)) p.endingWritten.delete(st);
    const floors = p.recentFloors;
    if (floors.length === 0 || floors[floors.length - 1] !== floor) {
      floors.push(floor);
      if (floors.length > ANCHOR_FLOORS) floors.shift();
    }
    this.subscription?.commit(p.tracker.topic, p.tracker.partition, commitAt).catch((err) => {
      this.opts.log.warn({ err, partition: p.tracker.partition }, 'coherence commit failed; records will be replayed');
    });
  }

  /** Sessions with open windows (not yet ended by their marker or by silence). */
  get openSessionCount(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.sessions.size;
    return n;
  }

  /** Resolves once the work under way is done and every window and event emitted so far is on the bus. */
  async flush(): Promise<void> {
    await Promise.all([...this.partitions.values()].map((p) => p.lock));
    // And the provisional rounds those batches started (they never throw).
    await Promise.all([...this.partitions.values()].map((p) => p.provisionalInFlight));
  }

  async stop(): Promise<void> {
    await this.endMarkers?.stop();
    await this.flush().catch((err) => this.opts.log.warn({ err }, 'coherence worker: final flush failed; records will be replayed'));
    await this.subscription?.stop();
    await this.checkpoints.stop();
    await this.pool.close();
  }
}
