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
 * publish, so the bus keeps all of them or the call fails. `sessionEnds`: the ended_at of the
 * sessions that had ended when the readings were accepted, written on their batches
 * (session_ended_at: how the coherence worker closes the last windows of a sync after the end).
 *
 * Each session's readings go out in time order (recorded_at; the request's order among equal
 * times; inTimeOrder), whatever order the request listed them in. The coherence worker reads a partition's readings
 * one by one, and the newest moves the session's watermark: a request listing its readings
 * newest first had all but its newest beats judged late and dropped from the windows (a
 * walkthrough: 4 windows of 60 from a 5-minute record sent in one request, every reading
 * accepted). Across requests, out-of-order readings within the allowed lateness still land in
 * their windows, as before.
 */
export async function publishReadings(
  bus: Bus,
  topics: TopicNames,
  codec: Codec,
  records: HeartReadingRecord[],
  readingsPerRecord: number = defaultReadingsPerRecord,
  sessionEnds: ReadonlyMap<string, number> | null = null,
): Promise<void> {
  if (records.length === 0) return;
  records = inTimeOrder(records);
  let out: OutgoingRecord[];
  if (readingsPerRecord <= 1) {
    out = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      out[i] = { key: r.device_id, value: codec.encode(Topics.heartReadings, r), timestamp: r.recorded_at };
    }
  } else {
    out = toBatches(records, readingsPerRecord, undefined, sessionEnds).map((b) => {
      let newest = -Infinity;
      for (const r of b.readings) if (r.recorded_at > newest) newest = r.recorded_at;
      // The newest reading's time: a broker's time-based retention never drops a record
      // while a reading in it is younger than the retention.
      return { key: b.device_id, value: codec.encodeRecord('HeartReadingBatch', b), timestamp: newest };
    });
  }
  await bus.publish(topics.heartReadings, out);
}

/**
 * Each session's records in time order (recorded_at; stable: the given order among equal
 * times), the sessions in the order they first appear; the same array when every session's
 * records already are. By session first, not by time across sessions: a request with two
 * sessions' readings sorted by time alone would alternate between them, one batch record each.
 */
export function inTimeOrder(records: HeartReadingRecord[]): HeartReadingRecord[] {
  // The usual request, in time order throughout: one pass, nothing allocated.
  let sorted = true;
  for (let i = 1; sorted && i < records.length; i++) sorted = records[i].recorded_at >= records[i - 1].recorded_at;
  if (sorted) return records;
  const newest = new Map<string, number>();
  let ordered = true;
  for (const r of records) {
    const key = r.session_id ?? '';
    const before = newest.get(key);
    if (before !== undefined && r.recorded_at < before) {
      ordered = false;
      break;
    }
    newest.set(key, r.recorded_at);
  }
  if (ordered) return records;
  const bySession = new Map<string, HeartReadingRecord[]>();
  for (const r of records) {
    const key = r.session_id ?? '';
    let list = bySession.get(key);
    if (!list) bySession.set(key, (list = []));
    list.push(r);
  }
  const out: HeartReadingRecord[] = [];
  for (const list of bySession.values()) out.push(...list.sort((a, b) => a.recorded_at - b.recorded_at));
  return out;
}
