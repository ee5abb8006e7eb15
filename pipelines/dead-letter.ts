// Dead letters: a record a worker cannot process is published, unchanged and with the
// reason, to attune.deadletter.v1 before its offset is passed (headers: attune-reason,
// attune-source-topic/-partition/-offset, attune-failed-at, attune-consumer-group). Nothing accepted is dropped
// without a trace. One bad reading inside a batch record (HeartReadingBatch) is dead-lettered on
// its own, as a single HeartReading value with the header attune-source-index (its index in the
// batch), and the rest of the batch is processed.
import { type Bus, type BusRecord } from '../bus/types.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import type { Codec } from '../schemas/registry/codec.js';
import { isAttuneError, type Reason } from '../lib/errors.js';
import type { HeartReadingRecord } from '../schemas/records.js';

export interface DeadLetterInput {
  record: BusRecord;
  /** A catalogued reason (lib/error-catalogue.ts): the record's `reason_code` and `attune-reason` header. */
  reasonCode: Reason;
  /** Free text: what went wrong. */
  reason: string;
  /**
   * One reading inside a batch record (HeartReadingBatch): its index in the batch, and the
   * reading on its own as a HeartReading value, which is what is dead-lettered (header
   * `attune-source-index`; source topic, partition and offset are the batch record's).
   */
  item?: { index: number; value: Buffer };
}

/**
 * The dead letter of one reading of a batch record: the reading alone, encoded as a single
 * HeartReading, with the record's place and the reading's index in it.
 */
export function batchItemDeadLetter(codec: Codec, record: BusRecord, index: number, reading: HeartReadingRecord, reasonCode: Reason, reason: string): DeadLetterInput {
  let value: Buffer;
  try {
    value = codec.encode(Topics.heartReadings, reading);
  } catch {
    // Decoded from a valid batch, it encodes; should it not, the whole record is kept.
    value = record.value;
  }
  const text = `readings[${index}]: ${reason}`;
  return { record, reasonCode, reason: text, item: { index, value } };
}

/** The reason to dead-letter a record for `err`: its first detail's catalogued reason, else `invalid_record`. */
export const deadLetterReason = (err: unknown): Reason => (isAttuneError(err) ? err.details[0]?.reason : undefined) ?? 'invalid_record';

export async function deadLetter(
  bus: Bus,
  topics: TopicNames,
  codec: Codec,
  consumerGroup: string,
  records: DeadLetterInput[],
  now: number,
): Promise<void> {
  if (records.length === 0) return;
  const out = [];
  for (const { record, reasonCode, reason, item } of records) {
    const value = await codec.encode(Topics.deadLetter, {
      source_topic: record.topic,
      source_partition: record.partition,
      source_offset: record.offset,
      key: record.key,
      value: item?.value ?? record.value,
      reason_code: reasonCode,
      reason: reason.slice(0, 2000),
      failed_at: now,
      consumer_group: consumerGroup,
    });
    // The same facts as headers, so a consumer (or kcat) can route and count dead letters
    // without decoding them (issue 10: reason, source topic, partition, offset and time).
    const headers: Record<string, string> = {
      'attune-reason': reasonCode,
      'attune-source-topic': record.topic,
      'attune-source-partition': String(record.partition),
      'attune-source-offset': record.offset,
      'attune-failed-at': new Date(now).toISOString(),
      'attune-consumer-group': consumerGroup,
    };
    if (item) headers['attune-source-index'] = String(item.index);
    out.push({ key: record.key, value, headers });
  }
  await bus.publish(topics.deadLetter, out);
}
