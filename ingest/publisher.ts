import { type Bus } from '../bus/types.js';
import { Topics, type TopicNames } from '../schemas/topics.js';
import type { Codec } from '../schemas/registry/codec.js';
import type { HeartReadingRecord } from '../schemas/records.js';

/**
 * Publishes accepted readings to the heart-readings topic, keyed by device so one device's
 * readings keep their order. Resolves only once the bus has them durably: the gateway
 * answers 202 after that, so an acknowledged reading is never lost.
 */
export async function publishReadings(bus: Bus, topics: TopicNames, codec: Codec, records: HeartReadingRecord[]): Promise<void> {
  if (records.length === 0) return;
  const out = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    // encode is synchronous for the Avro codec; awaiting only when it is not saves a tick per record.
    const encoded = codec.encode(Topics.heartReadings, r);
    out[i] = { key: r.device_id, value: encoded instanceof Promise ? await encoded : encoded, timestamp: r.recorded_at };
  }
  await bus.publish(topics.heartReadings, out);
}
