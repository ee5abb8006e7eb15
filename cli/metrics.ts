// The process's metrics, wired at the composition root (issue 9): the bus and the ClickHouse
// inserts are wrapped (records in and out per topic, consumer lag, dead letters by reason, sink
// batches), and the workers' and live hubs' `stats` objects are read at each scrape. Nothing
// here changes what the wrapped objects do; the workers do not know prom-client.
import type { Bus, BusRecord, OutgoingRecord, RecordBatch, Subscription, SubscribeOptions, TopicPartition } from '../bus/types.js';
import type { EmbeddedBus } from '../bus/embedded.js';
import { LATENCY_BUCKETS_S, type Metrics, type Sample } from '../lib/metrics.js';
import type { StoreClient } from '../store/clickhouse.js';
import type { TopicNames } from '../schemas/topics.js';
import type { LiveHub } from '../http/live-hub.js';
import type { ReadingsSink } from '../pipelines/readings-sink.js';
import type { CoherenceWorker } from '../pipelines/coherence/worker.js';
import type { GroupWorker } from '../pipelines/group/worker.js';
import type { GroupWindowsSink } from '../pipelines/sinks/group-windows-sink.js';
import type { SpeechWorker } from '../pipelines/speech/worker.js';
import type { SpeechResultsSink } from '../pipelines/sinks/speech-results-sink.js';
import type { AudioStreamLeases } from '../ingest/audio/stream-leases.js';
import type { SessionChangesRelay, SessionDimensionSink } from '../pipelines/session-changes.js';

/** How long a scrape waits for a group's committed offsets (Kafka: one admin request) before it does without. */
const COMMITTED_FETCH_TIMEOUT_MS = 1_000;

/** What one subscription of this process has seen of one partition. */
interface PartitionSeen {
  /** The offset after the last record delivered. */
  received: bigint | null;
  /** The first offset delivered (where a group that has committed nothing started). */
  first: bigint | null;
  /** The last offset this member committed (the next one it wants). */
  committed: bigint | null;
}

interface Tracked {
  group: string;
  /** `${topic}\u0000${partition}` → what was seen; only the partitions assigned now. */
  partitions: Map<string, PartitionSeen & TopicPartition>;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  return Promise.race([p.catch(() => null), timeout]).finally(() => clearTimeout(timer));
}

/**
 * The bus, counted: records published per topic, records delivered per topic and group, dead
 * letters by reason (their attune-reason header), and the lag of every partition this
 * process's consumer groups hold. Lag = end − committed, where the end is the partition's next
 * offset on the embedded bus (its log is in this process) and, on Kafka, the offset after the
 * highest record this process's consumers have received (what the workers see: records not
 * yet fetched are not counted). Committed offsets are the ones this process committed, else
 * the bus's (bus.committed), else (a group that has committed nothing) the first offset it
 * received, or the log's start on the embedded bus. Live fan-out groups (ephemeral, never committing) have no lag.
 *
 * The returned bus is a Proxy: every other member (kind, stats() of the embedded bus, close)
 * is the wrapped bus's own.
 */
export function instrumentBus<B extends Bus>(bus: B, metrics: Metrics, topics: TopicNames): B {
  const published = metrics.counter('attune_bus_records_published_total', 'Records published to the bus by this process, by topic.', ['topic']);
  const consumed = metrics.counter('attune_bus_records_consumed_total', 'Records delivered to this process by the bus, by topic and consumer group (redeliveries count again).', ['topic', 'group']);
  const deadLetters = metrics.counter('attune_dead_letters_total', 'Records dead-lettered by this process, by catalogued reason and consumer group.', ['reason', 'group']);
  const tracked = new Set<Tracked>();

  const publish = async (topic: string, records: OutgoingRecord[]): Promise<void> => {
    await bus.publish(topic, records);
    published.inc({ topic }, records.length);
    if (topic === topics.deadLetter) {
      for (const r of records) deadLetters.inc({ reason: r.headers?.['attune-reason'] ?? 'unknown', group: r.headers?.['attune-consumer-group'] ?? 'unknown' });
    }
  };

  const subscribe = async (opts: SubscribeOptions): Promise<Subscription> => {
    if (opts.ephemeral) {
      // Live fan-out: counted, no lag (it never commits).
      return bus.subscribe({
        ...opts,
        eachBatch: (batch) => {
          if (batch.records.length > 0) consumed.inc({ topic: batch.topic, group: opts.groupId }, batch.records.length);
          return opts.eachBatch(batch);
        },
      });
    }
    const t: Tracked = { group: opts.groupId, partitions: new Map() };
    const seen = (topic: string, partition: number) => {
      const key = tpKey(topic, partition);
      let p = t.partitions.get(key);
      if (!p) t.partitions.set(key, (p = { topic, partition, received: null, first: null, committed: null }));
      return p;
    };
    const eachBatch = (batch: RecordBatch) => {
      const last: BusRecord | undefined = batch.records[batch.records.length - 1];
      if (last) {
        consumed.inc({ topic: batch.topic, group: opts.groupId }, batch.records.length);
        const p = seen(batch.topic, batch.partition);
        const next = BigInt(last.offset) + 1n;
        if (p.received === null || next > p.received) p.received = next;
        const first = BigInt(batch.records[0].offset);
        if (p.first === null || first < p.first) p.first = first;
      }
      return opts.eachBatch(batch);
    };
    const onAssignment = (assigned: TopicPartition[]) => {
      // Partitions this member lost are another member's to report.
      const keep = new Set(assigned.map((a) => tpKey(a.topic, a.partition)));
      for (const key of t.partitions.keys()) if (!keep.has(key)) t.partitions.delete(key);
      for (const a of assigned) seen(a.topic, a.partition);
      return opts.onAssignment?.(assigned);
    };
    const sub = await bus.subscribe({ ...opts, eachBatch, onAssignment });
    tracked.add(t);
    return {
      async commit(topic, partition, offset) {
        await sub.commit(topic, partition, offset);
        const p = t.partitions.get(tpKey(topic, partition));
        if (p && (p.committed === null || BigInt(offset) > p.committed)) p.committed = BigInt(offset);
      },
      async stop() {
        tracked.delete(t);
        await sub.stop();
      },
    };
  };

  metrics.gaugeFrom('attune_consumer_lag', 'Records of a partition not yet committed by a consumer group of this process (end offset − committed offset).', ['group', 'topic', 'partition'], async () => {
    const embedded = bus.kind === 'embedded' && typeof (bus as unknown as EmbeddedBus).stats === 'function' ? (bus as unknown as EmbeddedBus).stats() : null;
    const ends = new Map<string, { start: number; next: number }>();
    for (const s of embedded ?? []) ends.set(tpKey(s.topic, s.partition), { start: s.startOffset, next: s.nextOffset });
    // Several members of one group in this process (tests): one series per partition.
    const byPartition = new Map<string, { group: string; topic: string; partition: number; end: bigint | null; committed: bigint | null }>();
    const fetched = new Map<string, Promise<Map<number, string> | null>>();
    const committedOf = (group: string, topic: string) => {
      const key = `${group}\u0000${topic}`;
      let f = fetched.get(key);
      if (!f) fetched.set(key, (f = withTimeout(bus.committed(group, topic), COMMITTED_FETCH_TIMEOUT_MS)));
      return f;
    };
    for (const t of tracked) {
      for (const p of t.partitions.values()) {
        const key = `${t.group}\u0000${tpKey(p.topic, p.partition)}`;
        const log = ends.get(tpKey(p.topic, p.partition));
        let committed = p.committed;
        // On the embedded bus the group's committed offsets are in this process: always exact.
        if (committed === null || embedded) {
          const c = (await committedOf(t.group, p.topic))?.get(p.partition);
          if (c !== undefined) committed = BigInt(c);
        }
        let end = log ? BigInt(log.next) : p.received;
        // Nothing committed yet: the group's position is where it started reading.
        if (committed === null) committed = log ? BigInt(log.start) : p.first;
        if (end !== null && committed !== null && committed > end) end = committed;
        const prev = byPartition.get(key);
        if (!prev) byPartition.set(key, { group: t.group, topic: p.topic, partition: p.partition, end, committed });
        else {
          if (end !== null && (prev.end === null || end > prev.end)) prev.end = end;
          if (committed !== null && (prev.committed === null || committed > prev.committed)) prev.committed = committed;
        }
      }
    }
    const out: Sample[] = [];
    for (const p of byPartition.values()) {
      // Nothing received and no log to read the end from (Kafka, an idle partition): unknown, no series.
      if (p.end === null || p.committed === null) continue;
      const lag = p.end - p.committed;
      out.push([{ group: p.group, topic: p.topic, partition: p.partition }, Number(lag > 0n ? lag : 0n)]);
    }
    return out;
  });

  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(bus, {
    get(target, prop) {
      if (prop === 'publish') return publish;
      if (prop === 'subscribe') return subscribe;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let bound = cache.get(prop);
      if (!bound) cache.set(prop, (bound = value.bind(target)));
      return bound;
    },
  });
}

/**
 * The store, its inserts timed and counted by table: every sink batch is one insert of the
 * batch writer (store/batch-writer.ts), so these are the sinks' batches, rows, latency and
 * failures (a failed insert is retried with the same rows: each attempt counts).
 */
export function instrumentStore(store: StoreClient, metrics: Metrics): StoreClient {
  const batches = metrics.counter('attune_sink_batches_total', 'Batches inserted into ClickHouse by this process, by table.', ['table']);
  const rows = metrics.counter('attune_sink_rows_total', 'Rows inserted into ClickHouse by this process, by table.', ['table']);
  const failures = metrics.counter('attune_sink_failures_total', 'Failed inserts into ClickHouse (each retried with the same rows), by table.', ['table']);
  const duration = metrics.histogram('attune_sink_batch_duration_seconds', 'Insert latency of one batch into ClickHouse, by table.', ['table'], LATENCY_BUCKETS_S);
  const batchRows = metrics.histogram('attune_sink_batch_rows', 'Rows per batch inserted into ClickHouse, by table.', ['table'], [1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000]);
  const client = store.client;
  const insert: typeof client.insert = async (params) => {
    const table = params.table;
    const started = performance.now();
    try {
      const res = await client.insert(params);
      const n = Array.isArray(params.values) ? params.values.length : 0;
      batches.inc({ table });
      rows.inc({ table }, n);
      batchRows.observe({ table }, n);
      return res;
    } catch (err) {
      failures.inc({ table });
      throw err;
    } finally {
      duration.observe({ table }, (performance.now() - started) / 1000);
    }
  };
  const wrapped = new Proxy(client, {
    get(target, prop) {
      if (prop === 'insert') return insert;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { ...store, client: wrapped };
}

export interface WorkerParts {
  sink: ReadingsSink | null;
  worker: CoherenceWorker | null;
  /** The group worker and its sink (issue 11); absent where a caller predates them. */
  groupWorker?: GroupWorker | null;
  groupWindowsSink?: GroupWindowsSink | null;
  speechWorker: SpeechWorker | null;
  /** The speech results sink (the sink role); absent where a caller predates it. */
  speechResultsSink?: SpeechResultsSink | null;
  sessionChanges: SessionChangesRelay | null;
  sessionDimension: SessionDimensionSink | null;
  live: LiveHub<unknown> | null;
  speechLive: LiveHub<unknown> | null;
  /** Audio stream leases (the ingest role); absent where a caller predates them. */
  audioLeases?: AudioStreamLeases | null;
}

/** The workers' and live hubs' `stats`, read at each scrape. */
export function registerWorkerMetrics(metrics: Metrics, parts: WorkerParts): void {
  const { sink, worker, speechWorker, sessionChanges, sessionDimension } = parts;
  const leases = parts.audioLeases;
  if (leases) {
    metrics.counterFrom('attune_audio_streams_lost_total', 'Audio streams ended because their lease passed: swept (of a process that died: end marker published) or held here and ended by another process.', ['by'], () => [
      [{ by: 'swept' }, leases.stats.swept],
      [{ by: 'other_process' }, leases.stats.lostHeld],
    ]);
    metrics.counterFrom('attune_audio_lease_failures_total', 'Lease rounds (renewal and sweep) that failed (PostgreSQL or the bus); retried a third of the lease later.', [], () => [[{}, leases.stats.failures]]);
  }
  if (sink) {
    metrics.counterFrom('attune_readings_sink_readings_total', 'Heart readings the readings sink turned into rows.', [], () => [[{}, sink.stats.readings]]);
    metrics.counterFrom('attune_readings_sink_rows_total', 'heart_readings rows (one per beat) the readings sink handed to its writer.', [], () => [[{}, sink.stats.rows]]);
    metrics.counterFrom('attune_readings_sink_dead_lettered_total', 'Records the readings sink dead-lettered.', [], () => [[{}, sink.stats.deadLettered]]);
    metrics.counterFrom('attune_readings_sink_quarantined_total', 'Readings the readings sink\'s clock guard kept out of heart_readings (written to heart_readings_quarantined), by whether a replay quarantined them again because a run before had.', ['again'], () => [
      [{ again: 'false' }, sink.stats.quarantined - sink.stats.quarantinedAgain],
      [{ again: 'true' }, sink.stats.quarantinedAgain],
    ]);
    metrics.counterFrom('attune_readings_sink_partition_times_total', "Partitions the readings sink took over, by whether their event time was restored from readings_sink_progress (missing: a row was expected and not found; the event time is rebuilt from the records read again).", ['outcome'], () => [
      [{ outcome: 'restored' }, sink.stats.partitionTimesRestored],
      [{ outcome: 'missing' }, sink.stats.partitionTimesMissing],
    ]);
  }
  if (worker) {
    const s = worker.stats;
    metrics.counterFrom('attune_coherence_readings_total', 'Heart readings the coherence worker processed.', [], () => [[{}, s.readings]]);
    metrics.counterFrom('attune_coherence_windows_total', 'Coherence windows emitted, by validity.', ['valid'], () => [
      [{ valid: 'true' }, s.validWindows],
      [{ valid: 'false' }, s.windows - s.validWindows],
    ]);
    metrics.counterFrom('attune_coherence_provisional_windows_total', 'Provisional windows for live display: published, failed (computing or publishing), or dropped while the round before them was in flight.', ['outcome'], () => [
      [{ outcome: 'published' }, s.provisionalWindows],
      [{ outcome: 'failed' }, s.provisionalFailures],
      [{ outcome: 'dropped' }, s.provisionalDropped ?? 0],
    ]);
    metrics.counterFrom('attune_coherence_final_windows_from_provisional_total', 'Final windows cut from the same beats as their provisional window, whose metrics they took instead of computing them again.', [], () => [[{}, s.provisionalReused ?? 0]]);
    metrics.counterFrom('attune_coherence_late_beats_total', 'Beats behind their session\'s watermark by more than the allowed lateness: stored, in no window.', [], () => [[{}, s.lateBeats]]);
    metrics.counterFrom('attune_coherence_quarantined_readings_total', 'Readings that would have jumped their session\'s clock, dead-lettered as future_beat.', [], () => [[{}, s.quarantinedReadings]]);
    metrics.counterFrom('attune_coherence_implausible_readings_total', 'Readings failing the plausibility checks, dead-lettered.', [], () => [[{}, s.implausibleReadings]]);
    metrics.counterFrom('attune_coherence_guard_anchors_total', "Sessions taken over whose clock guard restarted from their checkpoint's anchor (anchored), or had none where the replay starts, or a checkpoint without anchors (missed: it restarted at the last window published).", ['outcome'], () => [
      [{ outcome: 'anchored' }, s.guardAnchored],
      [{ outcome: 'missed' }, s.guardAnchorMisses],
    ]);
    metrics.gaugeFrom('attune_coherence_open_sessions', 'Sessions with open windows in the coherence worker.', [], () => [[{}, worker.openSessionCount]]);
    const fanout = worker.groupFanout;
    if (fanout) {
      metrics.counterFrom('attune_coherence_group_records_total', "Group participants' windows the coherence worker published on the group repartition topic.", [], () => [[{}, fanout.stats.records]]);
      metrics.counterFrom('attune_coherence_group_provisional_records_total', "Group participants' provisional windows the coherence worker published (live display), or rounds of them that failed (logged).", ['outcome'], () => [
        [{ outcome: 'published' }, s.provisionalGroupRecords],
        [{ outcome: 'failed' }, s.provisionalGroupFailures],
      ]);
      metrics.counterFrom('attune_coherence_group_lookups_total', 'PostgreSQL lookups of a user\'s mesh participations by the coherence worker.', [], () => [[{}, fanout.stats.queries]]);
    }
  }
  const group = parts.groupWorker;
  if (group) {
    const s = group.stats;
    metrics.counterFrom('attune_group_participant_windows_total', "Participants' windows the group worker read.", [], () => [[{}, s.records]]);
    metrics.counterFrom('attune_group_windows_total', 'Group windows the group worker published.', [], () => [[{}, s.windows]]);
    metrics.counterFrom('attune_group_provisional_windows_total', 'Provisional group windows for live display: published; failed (a record that is no participant window, or computing or publishing); skipped (older than 2 min, or at or before the final windows).', ['outcome'], () => [
      [{ outcome: 'published' }, s.provisionalWindows],
      [{ outcome: 'failed' }, s.provisionalFailures],
      [{ outcome: 'skipped' }, s.provisionalSkipped],
    ]);
    metrics.counterFrom('attune_group_late_windows_total', "Participants' windows that came after their group window closed (ignored).", [], () => [[{}, s.lateWindows]]);
    metrics.counterFrom('attune_group_events_total', 'Live group events published, by type.', ['type'], () => [
      [{ type: 'group_coherence' }, s.events - s.manifestations],
      [{ type: 'manifestation_event' }, s.manifestations],
    ]);
    metrics.gaugeFrom('attune_group_open_groups', 'Groups (mesh sessions) with state in the group worker.', [], () => [[{}, group.openGroupCount]]);
  }
  const groupSink = parts.groupWindowsSink;
  if (groupSink) {
    metrics.counterFrom('attune_group_windows_sink_rows_total', 'Rows the group windows sink handed to its writers, by table.', ['table'], () => [
      [{ table: 'group_windows' }, groupSink.stats.windowRows],
      [{ table: 'group_participant_windows' }, groupSink.stats.participantRows],
    ]);
  }
  if (sessionChanges) {
    metrics.counterFrom('attune_session_changes_published_total', 'Session changes relayed from the PostgreSQL outbox to the bus.', [], () => [[{}, sessionChanges.stats.published]]);
    metrics.counterFrom('attune_session_changes_failures_total', 'Failed relay rounds of the session-changes outbox.', [], () => [[{}, sessionChanges.stats.failures]]);
  }
  if (sessionDimension) {
    metrics.counterFrom('attune_session_dimension_rows_total', 'Rows the sessions-dimension sink handed to its writer.', [], () => [[{}, sessionDimension.stats.rows]]);
  }
  if (speechWorker) {
    const s = speechWorker.stats;
    metrics.counterFrom('attune_speech_streams_total', 'Speech streams, by outcome (started, finalized, failed).', ['outcome'], () => [
      [{ outcome: 'started' }, s.streams],
      [{ outcome: 'finalized' }, s.finalized],
      [{ outcome: 'failed' }, s.failed],
    ]);
    metrics.counterFrom('attune_speech_frames_total', 'Audio frames the speech worker read.', [], () => [[{}, s.frames]]);
    metrics.counterFrom(
      'attune_speech_frames_skipped_total',
      'Audio frames read again and skipped: of a stream finalised before the committed offset, or of a session already completed.',
      [],
      () => [[{}, s.skipped]],
    );
    metrics.gaugeFrom('attune_speech_queue', 'What waits in the speech worker: open streams, streams being finalised.', ['queue'], () => {
      const q = speechWorker.queue;
      return [
        [{ queue: 'open_streams' }, q.openStreams],
        [{ queue: 'finalizing' }, q.finalizing],
      ];
    });
    metrics.gaugeFrom('attune_speech_recognition_backlog_seconds', 'Seconds of audio queued for speech recognition.', [], () => [[{}, speechWorker.queue.recognitionBacklogS]]);
    const bySource = (pick: (t: { audioS: number; processingS: number; lastRealTimeFactor: number }) => number) => (): Sample[] =>
      (['live', 'upload'] as const).map((source) => [{ source }, pick(speechWorker.timing[source])]);
    metrics.counterFrom('attune_speech_audio_seconds_total', 'Seconds of audio in finalised speech streams, by source.', ['source'], bySource((t) => t.audioS));
    metrics.counterFrom('attune_speech_processing_seconds_total', 'Wall-clock seconds from a finalised stream\'s first frame to its published results, by source.', ['source'], bySource((t) => t.processingS));
    metrics.gaugeFrom('attune_speech_real_time_factor', 'Processing time / audio duration of the last finalised stream, by source (rate of the two totals above for an average).', ['source'], bySource((t) => t.lastRealTimeFactor));
  }
  const speechSink = parts.speechResultsSink;
  if (speechSink) {
    const s = speechSink.stats;
    metrics.counterFrom('attune_speech_results_sink_rows_total', 'Rows of the speech_* tables the speech results sink handed to its writers.', [], () => [[{}, s.rows]]);
    metrics.counterFrom('attune_speech_results_sink_completed_total', 'Speech streams the speech results sink completed (results stored, session completed).', [], () => [[{}, s.completed]]);
    metrics.counterFrom('attune_speech_results_sink_dead_lettered_total', 'Records the speech results sink dead-lettered.', [], () => [[{}, s.deadLettered]]);
  }
  for (const [hub, live] of [['coherence', parts.live], ['speech', parts.speechLive]] as const) {
    if (!live) continue;
    metrics.gaugeFrom('attune_live_sockets', 'Live subscriber sockets attached to a hub now.', ['hub'], () => [[{ hub }, live.stats.clients]]);
    metrics.counterFrom('attune_live_evictions_total', 'Live sockets disconnected by a hub, by reason (slow: more queued messages than ATTUNE_WS_MAX_BUFFERED).', ['hub', 'reason'], () => [[{ hub, reason: 'slow' }, live.stats.slowDisconnects]]);
    metrics.counterFrom('attune_live_messages_total', 'Messages sent to live sockets by a hub.', ['hub'], () => [[{ hub }, live.stats.delivered]]);
  }
}
