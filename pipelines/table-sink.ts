// The end of a sink's batch, shared by the sinks that copy a topic into a ClickHouse table
// (readings-sink.ts, session-changes.ts): dead-letter what could not be used, hand the rows to
// the batch writer, and commit the partition's offset only once those rows are durable. A
// crash before the commit replays the batch; the tables are ReplacingMergeTrees, so a replay
// changes no answer.
import type { Bus, BusRecord, Subscription } from '../bus/types.js';
import type { Logger } from '../lib/log.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import type { TopicNames } from '../schemas/topics.js';
import type { BatchWriter } from '../store/batch-writer.js';
import { deadLetter, type DeadLetterInput } from './dead-letter.js';

export interface TableSinkContext<Row extends object> {
  bus: Bus;
  topics: TopicNames;
  codec: Codec;
  groupId: string;
  clock: () => number;
  log: Logger;
  writer: BatchWriter<Row>;
  subscription: () => Subscription | null;
  /** Names the sink in log lines. */
  name: string;
  /** When given, each commit issued is in it until it settles, so a flush or a stop can wait for the commits of what is durable. */
  commits?: Set<Promise<void>>;
}

export async function finishSinkBatch<Row extends object>(
  sink: TableSinkContext<Row>,
  batch: { topic: string; partition: number; records: BusRecord[] },
  rows: Row[],
  bad: DeadLetterInput[],
  /** The offset to commit once the rows are durable; default: past the batch's last record. */
  commitOffset?: string,
  /** How to commit it; default: the subscription's commit. */
  commit?: (offset: string) => Promise<void>,
): Promise<void> {
  if (bad.length > 0) {
    await deadLetter(sink.bus, sink.topics, sink.codec, sink.groupId, bad, sink.clock());
    sink.log.warn({ count: bad.length, partition: batch.partition }, `${sink.name} dead-lettered records`);
  }
  const last = batch.records[batch.records.length - 1];
  if (!last) return;
  const next = commitOffset ?? (BigInt(last.offset) + 1n).toString();
  await sink.writer.add(rows, () => {
    const issued = commit ? commit(next) : sink.subscription()?.commit(batch.topic, batch.partition, next);
    const settled = issued?.catch((err) => {
      sink.log.warn({ err, partition: batch.partition }, `${sink.name} commit failed; the rows will be replayed`);
    });
    if (settled && sink.commits) {
      const commits = sink.commits;
      commits.add(settled);
      void settled.finally(() => commits.delete(settled));
    }
  });
}

/**
 * A sink batch's records decoded, in order; what does not decode ('undecodable') or is not the
 * record the topic carries (`invalid` says why: 'invalid_record') as dead letters.
 */
export async function decodeSinkBatch<Rec>(codec: Codec, records: BusRecord[], invalid: (r: unknown) => string | null): Promise<{ good: Array<{ value: Rec; record: BusRecord }>; bad: DeadLetterInput[] }> {
  const good: Array<{ value: Rec; record: BusRecord }> = [];
  const bad: DeadLetterInput[] = [];
  for (const record of records) {
    try {
      let value = decodeRecord<Rec>(codec, record.value);
      if (value instanceof Promise) value = await value;
      const wrong = invalid(value);
      if (wrong) bad.push({ record, reasonCode: 'invalid_record', reason: wrong });
      else good.push({ value, record });
    } catch (err) {
      bad.push({ record, reasonCode: 'undecodable', reason: (err as Error).message });
    }
  }
  return { good, bad };
}
