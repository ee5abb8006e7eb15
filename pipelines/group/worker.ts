// The group worker (issue 11 item 2): participants' windows in, group windows and live group
// events out. Kafka in, Kafka out, like the coherence worker: it opens neither ClickHouse nor
// PostgreSQL.
//
// Input: attune.group.participant-windows.v1, the repartition topic the coherence worker writes
// (pipelines/coherence/group-fanout.ts), keyed by mesh session id, so all of one group's state
// lives on one partition. Per group, GroupWindows (pure, group-windows.ts) closes a group window
// for every 5 s end in event time and computes it with the pure maths of this folder.
// Output, per batch of a partition and in this order, each step acknowledged before the next:
//  1. the group windows on attune.group.windows.v1 (keyed by mesh session; the group windows
//     sink writes group_windows and group_participant_windows, pipelines/sinks/);
//  2. the live events on attune.mesh.events.v1: group_coherence for each window, and
//     manifestation_event when group coherence has stayed at or above the session's
//     coherence_threshold for threshold_duration_s (ThresholdTracker, once per crossing);
//  3. the groups' checkpoints on attune.group.checkpoints.v1 (compacted; the coherence worker's
//     CheckpointTable and format: the last window end published and the threshold tracker there);
//  4. the commit: the oldest offset any open group window still needs (PartitionOffsetTracker).
// A restart replays from the commit, rebuilds the open windows, suppresses those at or before
// the checkpoint and continues the threshold streak from it, so a replay publishes no window
// twice (a crash between 1 and 3 publishes some again, identical; the sink keeps one).
// Event time only: nothing here reads a clock except to stamp dead letters and checkpoints, and
// to skip provisional windows too old for a live display (PROVISIONAL_MAX_AGE_MS).
import type { Bus, BusRecord, RecordBatch, Subscription, TopicPartition } from '../../bus/types.js';
import { Topics, internalTopic, type TopicNames } from '../../schemas/topics.js';
import { decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import type { GroupParticipantWindowRecord, GroupWindowRecord, MeshEventRecord } from '../../schemas/records.js';
import type { Logger } from '../../lib/log.js';
import { deadLetter, type DeadLetterInput } from '../dead-letter.js';
import { groupIdFor } from '../group-id.js';
import { PartitionOffsetTracker } from '../coherence/offsets.js';
import { CheckpointTable, type SessionCheckpoint } from '../coherence/checkpoints.js';
import { ThresholdTracker } from '../coherence/threshold.js';
import { PARTICIPANT_ENDED_HEADER, PARTICIPANT_FLUSHED_HEADER, PARTICIPATION_END_HEADER } from '../coherence/group-fanout.js';
import { createSynchronyPlan, type SynchronyPlan } from './synchrony.js';
import type { GroupWindowResult } from './window.js';
import { GroupWindows, type ClosedGroupWindow } from './group-windows.js';
import { ProvisionalGroupWindows, type ProvisionalGroupWindow, type ProvisionalParticipantWindow } from './provisional-windows.js';

export const GROUP_WORKER_GROUP = 'attune-group';

/** The coherence platform's protocol levels (its "Session Protocols" table): a manifestation_event's level. */
export const PROTOCOL_LEVELS: Record<string, number> = {
  heart_breath_sync: 1,
  gratitude_focus: 1,
  coherence_building: 2,
  intention_amplify: 2,
  manifestation_basic: 3,
  manifestation_advanced: 4,
};

export interface GroupWorkerOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  log: Logger;
  /**
   * How far the group's (or its partition's) newest window end must be past a window for it to
   * close, ms, besides every participant present having got there (GroupWindows). Default 10,000.
   */
  allowedLatenessMs?: number;
  /**
   * A participant's session that has not ended and whose newest window is this far behind the
   * group's (or its partition's) event time stops holding the group's windows, ms. Default 120,000.
   */
  silentAfterMs?: number;
  /** Surrogates per window (at least 100). Default 100. */
  surrogates?: number;
  /**
   * Close a group window as soon as everyone who could still count in it has sent theirs
   * (GroupWindows' early close: the same windows, each out 12-14 s after its end live instead
   * of 20-21 s). Default false: it drops the first allowedLatenessMs (10 s) of each participant's run, so a new
   * group's first group_coherence comes later (26.9 s after the socket opened in
   * test/npm-start-group's setup, against 21.1 s without, same load), and issue 11's mark is
   * the first one within 30 s.
   */
  earlyClose?: boolean;
  /**
   * Read the participants' provisional windows (groupParticipantWindowsProvisional) and publish
   * provisional group_coherence events (payload `provisional: true`) for live display, ~15 s
   * before the final ones (provisional-windows.ts). Default true.
   */
  provisionalWindows?: boolean;
  checkpointTopic?: string;
  checkpointPartitions?: number;
  /** Default: GROUP_WORKER_GROUP behind the topics' prefix. */
  groupId?: string;
  clock?: () => number;
}

interface GroupState {
  id: string;
  orgId: string;
  windows: GroupWindows;
  threshold: ThresholdTracker;
  level: number;
  emittedThroughMs: number;
}

interface PartitionState {
  tracker: PartitionOffsetTracker;
  groups: Map<string, GroupState>;
  /** Newest participant window end of the partition (event time). */
  maxEndMs: number;
  outWindows: GroupWindowRecord[];
  outEvents: MeshEventRecord[];
  outCheckpoints: Set<GroupState>;
  outDeadLetters: DeadLetterInput[];
  synced: Promise<void> | null;
  lock: Promise<void>;
}

export interface GroupWorkerStats {
  records: number;
  /** Provisional group windows published (live display only). */
  provisionalWindows: number;
  /** Provisional records or rounds that failed: a record that is no participant window (counted only), computing or publishing (logged); never retried. */
  provisionalFailures: number;
  /** Provisional participant windows skipped: older than PROVISIONAL_MAX_AGE_MS by the wall clock, or at or before their group's final windows. */
  provisionalSkipped: number;
  windows: number;
  suppressedWindows: number;
  lateWindows: number;
  events: number;
  manifestations: number;
  deadLettered: number;
  restoredGroups: number;
  /** Participation end markers (a leave, the group session's end). */
  inputEnds: number;
}

/** Samples of a window's series: 64 s at 4 Hz (the synchrony plan's sampleCount). */
const SERIES_SAMPLES = 256;

/** Why a decoded value is not a participant window, or null. */
export function notAParticipantWindow(r: unknown): string | null {
  const w = r as Partial<GroupParticipantWindowRecord> | null;
  if (!w || typeof w !== 'object') return 'not a record';
  if (typeof w.mesh_id !== 'string' || w.mesh_id === '' || typeof w.participant_id !== 'string' || w.participant_id === '') return 'not a GroupParticipantWindow: no mesh_id / participant_id';
  if (typeof w.window_end !== 'number' || typeof w.valid !== 'boolean' || !Array.isArray(w.series)) return 'not a GroupParticipantWindow: no window_end / valid / series';
  if (w.window_end % 5000 !== 0) return 'not a GroupParticipantWindow: window_end is not a multiple of 5 s';
  if (w.valid && w.series.length !== SERIES_SAMPLES) return `not a GroupParticipantWindow: a valid window's series has ${w.series.length} samples, not ${SERIES_SAMPLES}`;
  if (!Number.isFinite(w.coherence_threshold) || !(Number(w.threshold_duration_s) > 0)) return 'not a GroupParticipantWindow: no coherence_threshold / threshold_duration_s';
  return null;
}

/** A PARTICIPATION_END_HEADER value: `left:<ms>` or `ended:<ms>`; null when malformed. */
export function parseParticipationEnd(v: string): { left: boolean; atMs: number } | null {
  const m = /^(left|ended):(-?\d+)$/.exec(v);
  return m ? { left: m[1] === 'left', atMs: Number(m[2]) } : null;
}

/**
 * Provisional participant windows ending longer ago than this by the wall clock are not
 * computed (a live display has no use for them), and a group's provisional state is let go once
 * the provisional input of its process is this far past its own. The one use of the wall clock
 * here outside stamps: provisional windows are allowed to depend on timing, final ones are not.
 */
export const PROVISIONAL_MAX_AGE_MS = 120_000;

/** Event time after which a group with nothing open is let go, ms. */
const IDLE_GROUP_MS = 3_600_000;

const nn = (v: number | null): number | null => (v === null || !Number.isFinite(v) ? null : v);

/** A participant window record as GroupWindows and ProvisionalGroupWindows take it (without its bus position). */
export function participantWindowOf(w: GroupParticipantWindowRecord): ProvisionalParticipantWindow {
  return {
    participantId: w.participant_id,
    userId: w.user_id,
    sessionId: w.session_id,
    windowStartMs: w.window_start,
    windowEndMs: w.window_end,
    valid: w.valid,
    coherence: w.valid ? nn(w.coherence) : null,
    coverage: w.coverage,
    artifactRatio: w.artifact_ratio,
    breathingRateBpm: w.valid ? nn(w.breathing_rate_bpm) : null,
    lastBeatMs: w.last_beat_at,
    series: w.series,
  };
}

/** The mesh session's pacer rate a participant window carries; null when it has none. */
function pacerOf(w: GroupParticipantWindowRecord): number | null {
  return Number.isFinite(w.pacer_rate_bpm) && w.pacer_rate_bpm > 0 ? w.pacer_rate_bpm : null;
}

/** group_coherence's payload (final and provisional). */
function groupCoherencePayload(r: GroupWindowResult, presentCount: number, end: number, weights: Record<string, number>) {
  return {
    coherence: r.coherence,
    participant_count: r.participantCount,
    present_count: presentCount,
    sync_r: nn(r.syncR),
    sync_z: nn(r.syncZ),
    sync_p: nn(r.syncP),
    plv: nn(r.plv),
    breathing_sync: nn(r.breathingSync),
    window_end: new Date(end).toISOString(),
    weights,
  };
}

export class GroupWorker {
  readonly groupId: string;
  readonly stats: GroupWorkerStats = { records: 0, provisionalWindows: 0, provisionalFailures: 0, provisionalSkipped: 0, windows: 0, suppressedWindows: 0, lateWindows: 0, events: 0, manifestations: 0, deadLettered: 0, restoredGroups: 0, inputEnds: 0 };
  readonly checkpoints: CheckpointTable;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly topics: TopicNames;
  private readonly clock: () => number;
  private readonly plan: SynchronyPlan = createSynchronyPlan();
  private subscription: Subscription | null = null;
  private provisionalSubscription: Subscription | null = null;
  /** Per group, its provisional windows (this process's partitions of the provisional topic). */
  private readonly provisional = new Map<string, { windows: ProvisionalGroupWindows; orgId: string; lastSeenMs: number }>();

  constructor(private readonly opts: GroupWorkerOptions) {
    this.topics = opts.topics ?? Topics;
    this.clock = opts.clock ?? Date.now;
    this.groupId = opts.groupId ?? groupIdFor(GROUP_WORKER_GROUP, this.topics);
    this.checkpoints = new CheckpointTable({
      bus: opts.bus,
      topic: opts.checkpointTopic ?? internalTopic('groupCheckpoints', this.topics),
      groupId: `${this.groupId}-checkpoints`,
      partitions: opts.checkpointPartitions,
      log: opts.log,
      clock: this.clock,
    });
  }

  async start(): Promise<void> {
    await this.checkpoints.start();
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [this.topics.groupParticipantWindows],
      fromBeginning: true,
      eachBatch: (batch) => this.withPartition(batch.topic, batch.partition, (p) => this.handleBatch(p, batch)),
      onAssignment: (assigned) => this.onAssignment(assigned),
    });
    if (this.opts.provisionalWindows !== false) {
      // Live display only: a group of its own (the processes share the partitions) that never
      // commits, so a restart, or a partition taken over, starts at the newest records rather
      // than working through what was published meanwhile; on the embedded bus it holds no log.
      // Its failure to start costs the live display only: logged, the final path runs on.
      try {
        this.provisionalSubscription = await this.opts.bus.subscribe({
          groupId: `${this.groupId}-provisional`,
          topics: [this.topics.groupParticipantWindowsProvisional],
          fromBeginning: false,
          ephemeral: true,
          eachBatch: (batch) => this.handleProvisional(batch),
        });
      } catch (err) {
        this.opts.log.warn({ err }, 'group worker: the provisional group windows reader did not start (live display only; the final windows are unaffected)');
      }
    }
  }

  /**
   * Provisional participant windows in, provisional group_coherence events out. Nothing here
   * is retried: a failure is logged and counted, and the final windows are unaffected.
   */
  private async handleProvisional(batch: RecordBatch): Promise<void> {
    const events: MeshEventRecord[] = [];
    try {
      for (const rec of batch.records) {
        let w: GroupParticipantWindowRecord;
        try {
          const d = decodeRecord<GroupParticipantWindowRecord>(this.opts.codec, rec.value);
          w = d instanceof Promise ? await d : d;
        } catch {
          this.stats.provisionalFailures++;
          continue;
        }
        if (notAParticipantWindow(w) !== null) {
          this.stats.provisionalFailures++;
          continue;
        }
        // Too old for a live display (a backlog after an outage), or its final group window is
        // out (CheckpointTable: every process reads every group's, whichever process computes
        // its final windows): skipped, not computed.
        if (w.window_end < this.clock() - PROVISIONAL_MAX_AGE_MS || w.window_end <= (this.checkpoints.get(w.mesh_id)?.emittedThroughMs ?? -Infinity)) {
          this.stats.provisionalSkipped++;
          continue;
        }
        let g = this.provisional.get(w.mesh_id);
        if (!g) {
          g = {
            windows: new ProvisionalGroupWindows({
              groupId: w.mesh_id,
              plan: this.plan,
              pacerRateBpm: pacerOf(w),
              allowedLatenessMs: this.opts.allowedLatenessMs,
              surrogates: this.opts.surrogates,
            }),
            orgId: w.org_id,
            lastSeenMs: w.window_end,
          };
          this.provisional.set(w.mesh_id, g);
        }
        g.lastSeenMs = Math.max(g.lastSeenMs, w.window_end);
        const final = this.checkpoints.get(w.mesh_id)?.emittedThroughMs;
        if (final !== undefined && final !== null) g.windows.finalThrough(final);
        const ready = g.windows.add(participantWindowOf(w));
        for (const c of ready) events.push(this.provisionalEvent(w.mesh_id, g.orgId, c));
      }
      // Groups whose provisional input stopped an hour of event time ago are let go.
      let newest = -Infinity;
      for (const g of this.provisional.values()) newest = Math.max(newest, g.lastSeenMs);
      for (const [id, g] of this.provisional) {
        if (g.lastSeenMs < newest - PROVISIONAL_MAX_AGE_MS) this.provisional.delete(id);
      }
      if (events.length > 0) {
        const recs = [];
        for (const e of events) recs.push({ key: e.mesh_id, value: await this.opts.codec.encode(Topics.meshEvents, e), timestamp: e.occurred_at });
        await this.opts.bus.publish(this.topics.meshEvents, recs);
        this.stats.provisionalWindows += events.length;
      }
    } catch (err) {
      this.stats.provisionalFailures += Math.max(1, events.length);
      this.opts.log.warn({ err, partition: batch.partition }, 'group worker: provisional group windows not published (live display only; the final windows are unaffected)');
    }
  }

  /** A provisional window's group_coherence: the final one's payload, `provisional: true`, its own event id. */
  private provisionalEvent(meshId: string, orgId: string, c: ProvisionalGroupWindow): MeshEventRecord {
    const r = c.result;
    return {
      event_id: `${meshId}:group_coherence:${c.windowEndMs}:provisional`,
      mesh_id: meshId,
      org_id: orgId,
      type: 'group_coherence',
      occurred_at: c.windowEndMs,
      payload_json: JSON.stringify({
        ...groupCoherencePayload(r, c.presentCount, c.windowEndMs, Object.fromEntries(r.participants.map((q) => [q.participantId, q.weight]))),
        provisional: true,
      }),
    };
  }

  /** Groups with open windows. */
  get openGroupCount(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.groups.size;
    return n;
  }

  private async withPartition(topic: string, partition: number, fn: (p: PartitionState) => Promise<void>): Promise<void> {
    const k = `${topic}/${partition}`;
    let p = this.partitions.get(k);
    if (!p) {
      p = {
        tracker: new PartitionOffsetTracker(topic, partition),
        groups: new Map(),
        maxEndMs: -Infinity,
        outWindows: [],
        outEvents: [],
        outCheckpoints: new Set(),
        outDeadLetters: [],
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

  private onAssignment(assigned: TopicPartition[]): void {
    const keep = new Set(assigned.map((a) => `${a.topic}/${a.partition}`));
    for (const k of [...this.partitions.keys()]) if (!keep.has(k)) this.partitions.delete(k);
  }

  private async handleBatch(p: PartitionState, batch: RecordBatch): Promise<void> {
    if (!p.synced) {
      // Taken over: everything the previous owner checkpointed must be read first.
      p.synced = this.checkpoints.sync();
      p.synced.catch(() => (p.synced = null));
    }
    await p.synced;
    const decoded: Array<{ rec: BusRecord; w: GroupParticipantWindowRecord }> = [];
    for (const rec of batch.records) {
      if (p.tracker.isProcessed(rec.offset)) continue;
      try {
        let w = decodeRecord<GroupParticipantWindowRecord>(this.opts.codec, rec.value);
        if (w instanceof Promise) w = await w;
        const wrong = notAParticipantWindow(w);
        if (wrong) p.outDeadLetters.push({ record: rec, reasonCode: 'invalid_record', reason: wrong });
        else decoded.push({ rec, w });
      } catch (err) {
        p.outDeadLetters.push({ record: rec, reasonCode: 'undecodable', reason: (err as Error).message });
      }
    }
    const touched = new Set<GroupState>();
    for (const { rec, w } of decoded) {
      const offset = BigInt(rec.offset);
      this.stats.records++;
      const g = this.groupOf(p, w);
      const endHeader = rec.headers[PARTICIPATION_END_HEADER];
      // Closed by the participant's session end: data, not event time (GroupWindows' header).
      const flushed = rec.headers[PARTICIPANT_FLUSHED_HEADER] === 'true';
      const end = endHeader === undefined ? null : parseParticipationEnd(endHeader);
      if (end) {
        // A marker, not a window: the participant's input to the group ended.
        g.windows.endInput({ participantId: w.participant_id, sessionId: w.session_id, windowEndMs: w.window_end, atMs: end.atMs, left: end.left, offset, flushed });
        this.stats.inputEnds++;
        touched.add(g);
        if (!flushed && w.window_end > p.maxEndMs) p.maxEndMs = w.window_end;
        for (const c of g.windows.closeReady()) this.emit(p, g, c);
        p.tracker.processed(offset);
        continue;
      }
      const added = g.windows.add({
        ...participantWindowOf(w),
        offset,
        ends: rec.headers[PARTICIPANT_ENDED_HEADER] === 'true',
        flushed,
      });
      if (!added) this.stats.lateWindows++;
      touched.add(g);
      if (!flushed && w.window_end > p.maxEndMs) p.maxEndMs = w.window_end;
      for (const c of g.windows.closeReady()) this.emit(p, g, c);
      p.tracker.processed(offset);
    }
    for (const rec of batch.records) if (!p.tracker.isProcessed(rec.offset)) p.tracker.processed(BigInt(rec.offset));
    // The partition's event time closes the last windows of groups whose input stopped.
    for (const g of p.groups.values()) {
      if (g.windows.openEndCount === 0) {
        // Nothing open for an hour of the partition's event time: let the group go (its
        // checkpoint has what a late record would need).
        // (Its newest input counts too: with early close a group whose participants are all in
        // their warm-up has nothing open yet, and must not be dropped and restarted.)
        if (Math.max(g.windows.closedThroughMs, g.windows.newestInputMs) < p.maxEndMs - IDLE_GROUP_MS && !p.outCheckpoints.has(g)) {
          p.groups.delete(g.id);
          p.tracker.forgetSession(g.id);
          touched.delete(g);
        }
        continue;
      }
      if (g.windows.advance(p.maxEndMs)) {
        for (const c of g.windows.closeReady()) this.emit(p, g, c);
        touched.add(g);
      }
    }
    for (const g of touched) p.tracker.setRetained(g.id, g.windows.retainedMinOffset());
    await this.output(p);
  }

  private groupOf(p: PartitionState, w: GroupParticipantWindowRecord): GroupState {
    let g = p.groups.get(w.mesh_id);
    if (g) return g;
    const cp = this.checkpoints.get(w.mesh_id);
    const threshold = new ThresholdTracker({
      sessionId: w.mesh_id,
      threshold: w.coherence_threshold,
      holdMs: Math.max(5, w.threshold_duration_s) * 1000,
    });
    if (cp?.threshold) threshold.restore(cp.threshold);
    if (cp) this.stats.restoredGroups++;
    g = {
      id: w.mesh_id,
      orgId: w.org_id,
      windows: new GroupWindows({
        groupId: w.mesh_id,
        plan: this.plan,
        pacerRateBpm: pacerOf(w),
        allowedLatenessMs: this.opts.allowedLatenessMs,
        silentAfterMs: this.opts.silentAfterMs,
        surrogates: this.opts.surrogates,
        earlyClose: this.opts.earlyClose ?? false,
      }),
      threshold,
      level: PROTOCOL_LEVELS[w.protocol] ?? 1,
      emittedThroughMs: cp?.emittedThroughMs ?? -Infinity,
    };
    p.groups.set(w.mesh_id, g);
    return g;
  }

  private emit(p: PartitionState, g: GroupState, c: ClosedGroupWindow): void {
    const r = c.result;
    const end = c.windowEndMs;
    // The tracker sees replayed windows too (it ignores those at or before its restored state).
    const reached = g.threshold.update({ windowEndMs: end, valid: r.coherence !== null, coherence: r.coherence });
    if (end <= g.emittedThroughMs) {
      this.stats.suppressedWindows++;
      return;
    }
    g.emittedThroughMs = end;
    this.stats.windows++;
    p.outWindows.push({
      mesh_id: g.id,
      org_id: g.orgId,
      window_start: c.windowStartMs,
      window_end: end,
      participant_count: r.participantCount,
      present_count: c.presentCount,
      coherence: r.coherence,
      sync_r: nn(r.syncR),
      plv: nn(r.plv),
      sync_z: nn(r.syncZ),
      sync_p: nn(r.syncP),
      surrogate_count: r.surrogateCount,
      breathing_sync: nn(r.breathingSync),
      xcorr_max: nn(r.crossCorrelationMeanAbsR),
      xcorr_lag_s: nn(c.crossCorrelationMeanAbsLagS),
      participants: c.participants.map((q) => ({
        participant_id: q.participantId,
        user_id: q.userId,
        counted: q.counted,
        coherence: q.coherence,
        contribution_weight: q.weight,
        phase_locking: q.locking,
        breathing_rate_bpm: q.breathingRateBpm,
        breathing_sync: q.breathingSync,
        artifact_ratio: q.artifactRatio,
        coverage: q.coverage,
      })),
    });
    p.outEvents.push({
      event_id: `${g.id}:group_coherence:${end}`,
      mesh_id: g.id,
      org_id: g.orgId,
      type: 'group_coherence',
      occurred_at: end,
      payload_json: JSON.stringify({
        ...groupCoherencePayload(r, c.presentCount, end, Object.fromEntries(c.participants.filter((q) => q.counted).map((q) => [q.participantId, q.weight]))),
        provisional: false,
      }),
    });
    this.stats.events++;
    for (const e of reached) {
      p.outEvents.push({
        event_id: `${g.id}:manifestation_event:${end}`,
        mesh_id: g.id,
        org_id: g.orgId,
        type: 'manifestation_event',
        occurred_at: end,
        payload_json: JSON.stringify({
          level: g.level,
          strength: e.payload.coherence,
          duration: Math.round((end - e.payload.streakStartMs) / 1000),
          threshold: e.payload.threshold,
          threshold_duration_s: e.payload.holdMs / 1000,
          streak_start: new Date(e.payload.streakStartMs).toISOString(),
        }),
      });
      this.stats.events++;
      this.stats.manifestations++;
    }
    p.outCheckpoints.add(g);
  }

  private checkpointOf(g: GroupState): SessionCheckpoint {
    return { sessionId: g.id, emittedThroughMs: g.emittedThroughMs === -Infinity ? null : g.emittedThroughMs, threshold: g.threshold.snapshot(), ended: false };
  }

  /** Windows, then events, then checkpoints, then the commit; each step keeps its outbox until it succeeds. */
  private async output(p: PartitionState): Promise<void> {
    if (p.outDeadLetters.length > 0) {
      await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, p.outDeadLetters, this.clock());
      this.stats.deadLettered += p.outDeadLetters.length;
      p.outDeadLetters = [];
    }
    if (p.outWindows.length > 0) {
      const recs = [];
      for (const w of p.outWindows) recs.push({ key: w.mesh_id, value: await this.opts.codec.encode(Topics.groupWindows, w), timestamp: w.window_end });
      await this.opts.bus.publish(this.topics.groupWindows, recs);
      p.outWindows = [];
    }
    if (p.outEvents.length > 0) {
      const recs = [];
      for (const e of p.outEvents) recs.push({ key: e.mesh_id, value: await this.opts.codec.encode(Topics.meshEvents, e), timestamp: e.occurred_at });
      await this.opts.bus.publish(this.topics.meshEvents, recs);
      p.outEvents = [];
    }
    if (p.outCheckpoints.size > 0) {
      await this.checkpoints.write([...p.outCheckpoints].map((g) => this.checkpointOf(g)));
      p.outCheckpoints = new Set();
    }
    const commitAt = p.tracker.commitOffset();
    if (commitAt === null) return;
    this.subscription?.commit(p.tracker.topic, p.tracker.partition, commitAt).catch((err) => {
      this.opts.log.warn({ err, partition: p.tracker.partition }, 'group worker commit failed; records will be replayed');
    });
  }

  /** Resolves once the work under way is done and everything emitted so far is on the bus. */
  async flush(): Promise<void> {
    await Promise.all([...this.partitions.values()].map((p) => p.lock));
  }

  async stop(): Promise<void> {
    await this.flush().catch((err) => this.opts.log.warn({ err }, 'group worker: final flush failed; records will be replayed'));
    await this.provisionalSubscription?.stop();
    await this.subscription?.stop();
    await this.checkpoints.stop();
  }
}
