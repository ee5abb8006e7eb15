import { type Bus, type OutgoingRecord } from '../bus/types.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import type { Codec } from '../schemas/registry/codec.js';
import type { HeartReadingRecord } from '../schemas/records.js';
import { defaultReadingsPerRecord, toBatches } from '../schemas/reading-batches.js';

/**
 * Publishes accepted readings to the heart-readings topic, keyed by device so one device's
 * readings keep their order. Resolves only once the bus has them durably: the gateway
 * answers 202 after that, so an acknowledged reading is never lost.
 *
 * `readingsPerRecord` (ATTUNE_READINGS_PER_RECORD, default 1,000) readings of one device and
 * session go into one HeartReadingBatch record (schemas/reading-batches.ts: a Kafka record per
 * reading cost the clients more CPU than everything else in the pipeline); 1 publishes one
 * HeartReading record per reading, as before batches. Every record of a call goes in one
 * publish, so the bus keeps all of them or the call fails.
 */
export async function publishReadings(
  bus: Bus,
  topics: TopicNames,
  codec: Codec,
  records: HeartReadingRecord[],
  readingsPerRecord: number = defaultReadingsPerRecord,
): Promise<void> {
  if (records.length === 0) return;
  let out: OutgoingRecord[];
  if (readingsPerRecord <= 1) {
    out = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      out[i] = { key: r.device_id, value: codec.encode(Topics.heartReadings, r), timestamp: r.recorded_at };
    }
  } else {
    out = toBatches(records, readingsPerRecord).map((b) => {
      let newest = -Infinity;
      for (const r of b.readings) if (r.recorded_at > newest) newest = r.recorded_at;
      // The newest reading's time: a broker's time-based retention never drops a record
      // while a reading in it is younger than the retention.
      return { key: b.device_id, value: codec.encodeRecord('HeartReadingBatch', b), timestamp: newest };
    });
  }
  await bus.publish(topics.heartReadings, out);
}
