// attune.group.windows.v1 → group_windows and group_participant_windows (schemas/clickhouse/
// 0007_group_windows.sql), in the sink role like the other result sinks (result-sinks.ts): rows
// batched by one BatchWriter per table, a partition's offset committed only once the rows of
// both tables before it are inserted, and while inserts fail the writers hold their rows and
// then block the handler. Both tables are ReplacingMergeTrees on the natural key, so a group
// window written again (the group worker republishing after a crash, a sink replay) is one row
// under FINAL, with the same values: replaying a group's input gives the same stored windows.
import type { Bus, Subscription } from '../../bus/types.js';
import type { Logger } from '../../lib/log.js';
import type { Codec } from '../../schemas/registry/codec.js';
import type { GroupWindowRecord } from '../../schemas/records.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import { BatchWriter } from '../../store/batch-writer.js';
import type { StoreClient } from '../../store/clickhouse.js';
import { Tables, type GroupParticipantWindowRow, type GroupWindowRow } from '../../store/rows.js';
import { deadLetter } from '../dead-letter.js';
import { decodeSinkBatch } from '../table-sink.js';
import { groupIdFor } from '../group-id.js';

export const GROUP_WINDOWS_SINK_GROUP = 'attune-group-windows-sink';

export const GroupWindowColumns: Array<keyof GroupWindowRow> = [
  'org_id', 'group_id', 'window_start', 'window_end', 'participant_count', 'present_count', 'coherence', 'sync_r', 'plv',
  'sync_z', 'sync_p', 'surrogate_count', 'breathing_sync', 'xcorr_max', 'xcorr_lag_s', 'computed_at',
];
export const GroupParticipantWindowColumns: Array<keyof GroupParticipantWindowRow> = [
  'org_id', 'group_id', 'participant_id', 'user_id', 'window_end', 'counted', 'coherence', 'contribution_weight',
  'phase_locking', 'breathing_rate_bpm', 'breathing_sync', 'artifact_ratio', 'coverage', 'computed_at',
];

/** Why a decoded value is not a group window, or null. */
export function notAGroupWindow(r: unknown): string | null {
  const w = r as Partial<GroupWindowRecord> | null;
  if (!w || typeof w !== 'object') return 'not a record';
  if (typeof w.mesh_id !== 'string' || w.mesh_id === '') return 'not a GroupWindow: no mesh_id';
  if (typeof w.window_end !== 'number' || typeof w.participant_count !== 'number' || !Array.isArray(w.participants)) return 'not a GroupWindow: no window_end / participant_count / participants';
  return null;
}

export interface GroupWindowsSinkOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  store: StoreClient;
  log: Logger;
  writer?: { maxRows?: number; maxDelayMs?: number; maxBufferedRows?: number };
  groupId?: string;
  clock?: () => number;
}

export class GroupWindowsSink {
  readonly groupId: string;
  readonly stats = { records: 0, windowRows: 0, participantRows: 0, deadLettered: 0 };
  private subscription: Subscription | null = null;
  private readonly windows: BatchWriter<GroupWindowRow>;
  private readonly participants: BatchWriter<GroupParticipantWindowRow>;
  private readonly topics: TopicNames;
  private readonly clock: () => number;

  constructor(private readonly opts: GroupWindowsSinkOptions) {
    this.topics = opts.topics ?? Topics;
    this.clock = opts.clock ?? Date.now;
    this.groupId = opts.groupId ?? groupIdFor(GROUP_WINDOWS_SINK_GROUP, this.topics);
    const common = {
      store: opts.store,
      compact: true,
      maxRows: opts.writer?.maxRows,
      maxDelayMs: opts.writer?.maxDelayMs,
      maxBufferedRows: opts.writer?.maxBufferedRows,
      log: opts.log,
    };
    this.windows = new BatchWriter<GroupWindowRow>({
      ...common,
      table: Tables.groupWindows,
      columns: GroupWindowColumns,
      onError: (err, f) => opts.log.error({ err, ...f }, 'group_windows insert keeps failing; retrying, offsets held'),
    });
    this.participants = new BatchWriter<GroupParticipantWindowRow>({
      ...common,
      table: Tables.groupParticipantWindows,
      columns: GroupParticipantWindowColumns,
      onError: (err, f) => opts.log.error({ err, ...f }, 'group_participant_windows insert keeps failing; retrying, offsets held'),
    });
  }

  async start(): Promise<void> {
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [this.topics.groupWindows],
      fromBeginning: true,
      eachBatch: async (batch) => {
        const windows: GroupWindowRow[] = [];
        const participants: GroupParticipantWindowRow[] = [];
        const now = this.clock();
        const { good, bad } = await decodeSinkBatch<GroupWindowRecord>(this.opts.codec, batch.records, notAGroupWindow);
        for (const { value: r } of good) {
          this.stats.records++;
          windows.push({
            org_id: r.org_id,
            group_id: r.mesh_id,
            window_start: r.window_start,
            window_end: r.window_end,
            participant_count: r.participant_count,
            present_count: r.present_count,
            coherence: r.coherence,
            sync_r: r.sync_r,
            plv: r.plv,
            sync_z: r.sync_z,
            sync_p: r.sync_p,
            surrogate_count: r.surrogate_count,
            breathing_sync: r.breathing_sync,
            xcorr_max: r.xcorr_max,
            xcorr_lag_s: r.xcorr_lag_s,
            computed_at: now,
          });
          for (const q of r.participants) {
            participants.push({
              org_id: r.org_id,
              group_id: r.mesh_id,
              participant_id: q.participant_id,
              user_id: q.user_id,
              window_end: r.window_end,
              counted: q.counted,
              coherence: q.coherence,
              contribution_weight: q.contribution_weight,
              phase_locking: q.phase_locking,
              breathing_rate_bpm: q.breathing_rate_bpm,
              breathing_sync: q.breathing_sync,
              artifact_ratio: q.artifact_ratio,
              coverage: q.coverage,
              computed_at: now,
            });
          }
        }
        if (bad.length > 0) {
          await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, bad, this.clock());
          this.stats.deadLettered += bad.length;
        }
        const last = batch.records[batch.records.length - 1];
        if (!last) return;
        const next = (BigInt(last.offset) + 1n).toString();
        this.stats.windowRows += windows.length;
        this.stats.participantRows += participants.length;
        // Committed once both tables hold the batch's rows.
        let pending = 2;
        const durable = () => {
          if (--pending > 0) return;
          this.subscription?.commit(batch.topic, batch.partition, next).catch((err) => {
            this.opts.log.warn({ err, partition: batch.partition }, 'group windows sink commit failed; the rows will be replayed');
          });
        };
        await this.participants.add(participants, durable);
        await this.windows.add(windows, durable);
      },
    });
  }

  /** Resolves once every row taken so far is in ClickHouse. */
  async flush(): Promise<void> {
    await Promise.all([this.participants.flush(), this.windows.flush()]);
  }

  async stop(): Promise<void> {
    await this.flush().catch((err) => this.opts.log.warn({ err }, 'group windows sink: final flush failed; rows will be replayed'));
    await this.subscription?.stop();
    await Promise.all([this.participants.close().catch(() => undefined), this.windows.close().catch(() => undefined)]);
  }
}
