// The readings sink's partition event time per commit (schemas/postgres/0010_readings_sink_progress.sql).
// Written before each commit, read by the partition's next owner: see pipelines/readings-sink.ts.
import type { SqlClient } from './client.js';

export interface SinkProgressKey {
  groupId: string;
  topic: string;
  partition: number;
}

export class SinkProgressRepository {
  constructor(private readonly sql: SqlClient) {}

  /** Records the partition's event time (ms; null: none yet) before the record at `commitOffset`. Written again with a new value, the newer wins. */
  async record(key: SinkProgressKey, commitOffset: bigint, partitionTimeMs: number | null): Promise<void> {
    await this.sql.query(
      `INSERT INTO readings_sink_progress (group_id, topic, partition, commit_offset, partition_time_ms) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (group_id, topic, partition, commit_offset) DO UPDATE SET partition_time_ms = EXCLUDED.partition_time_ms, written_at = now()`,
      [key.groupId, key.topic, key.partition, commitOffset.toString(), partitionTimeMs],
    );
  }

  /**
   * The partition's event time recorded for the newest commit at or before `offset` (where a
   * new owner's delivery starts): a number, null (recorded: none yet), or undefined (no row).
   */
  async at(key: SinkProgressKey, offset: bigint): Promise<{ commitOffset: bigint; partitionTimeMs: number | null } | undefined> {
    const { rows } = await this.sql.query<{ commit_offset: string | number; partition_time_ms: string | number | null }>(
      `SELECT commit_offset, partition_time_ms FROM readings_sink_progress
       WHERE group_id = $1 AND topic = $2 AND partition = $3 AND commit_offset <= $4
       ORDER BY commit_offset DESC LIMIT 1`,
      [key.groupId, key.topic, key.partition, offset.toString()],
    );
    const r = rows[0];
    if (!r) return undefined;
    return { commitOffset: BigInt(r.commit_offset), partitionTimeMs: r.partition_time_ms === null ? null : Number(r.partition_time_ms) };
  }

  /**
   * Deletes the partition's rows below `belowOffset` (the sink passes a commit the broker
   * acknowledged: no replay starts before it).
   */
  async prune(key: SinkProgressKey, belowOffset: bigint): Promise<void> {
    await this.sql.query(`DELETE FROM readings_sink_progress WHERE group_id = $1 AND topic = $2 AND partition = $3 AND commit_offset < $4`, [
      key.groupId,
      key.topic,
      key.partition,
      belowOffset.toString(),
    ]);
  }
}
