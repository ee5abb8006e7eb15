// Readings in batches on the readings topic (issue 10, bench:kafka's targets).
//
// One Kafka record per reading cost the Kafka clients 16-32 µs of CPU per reading to publish
// and consume (bench/results/kafka-records-*: kafkajs 15.9 + 4.3 µs, platformatic 6.6 + 10.1),
// a 1,000-reading record under 3 µs for the same bytes: the pipeline was the client's records,
// not its bytes. So the gateway publishes the readings of one request as HeartReadingBatch
// records (HeartReadingBatch.avsc): up to `readingsPerRecord` (ATTUNE_READINGS_PER_RECORD,
// default 1,000) consecutive readings of one device and one session each.
//
// Why a second record type on the same topic rather than a topic of batches: the readings
// topic's order per device is the contract the coherence worker relies on. End markers
// (pipelines/coherence/end-markers.ts) land after every reading accepted before the end call
// only because they share the partition, and the clock guard and the replay from a committed
// offset need a session's readings in one sequence. Two topics would give two sequences whose
// interleaving depends on timing. Schema evolution: single HeartReading records already on the
// topic (and any other producer's) stay readable, so a reader dispatches on the schema id in
// each value's wire header (`codec.recordNameOf`): the batch type has a subject of its own
// (TopicRecordNameStrategy), so the `-value` subject keeps HeartReading and its compatibility
// rules. ATTUNE_READINGS_PER_RECORD=1 publishes single HeartReading records as before, for
// consumers that do not know the batch type yet.
import { readSchemaId, decodeRecord, type Codec } from './registry/codec.js';
import { extraRecordSchemas, type HeartReadingBatch, type HeartReadingBatchItem } from './registry/schemas.js';
import type { HeartReadingRecord } from './records.js';

export type HeartReadingBatchRecord = Required<HeartReadingBatch>;

/** The record name readers dispatch on. */
export const HEART_READING_BATCH = extraRecordSchemas.HeartReadingBatch.fullName;

/** Readings per batch record by default (ATTUNE_READINGS_PER_RECORD). */
export const defaultReadingsPerRecord = 1000;

/**
 * Estimated Avro bytes a batch's readings may take. A request of 1 MB of JSON can hold 400
 * readings of 600 RR intervals each (~1 MB as Avro floats), and Kafka refuses records over
 * its default message.max.bytes (1 MiB): a batch is cut before this bound, whatever its count.
 */
export const maxBatchBytes = 512 * 1024;

/** An upper estimate of one reading's bytes in a batch: 4 per RR interval, the rest bounded. */
const itemBytes = (r: HeartReadingRecord): number => 96 + r.reading_id.length + 4 * r.rr_intervals_ms.length;

const sameBatch = (a: HeartReadingRecord, b: HeartReadingRecord): boolean =>
  a.device_id === b.device_id &&
  a.session_id === b.session_id &&
  a.user_id === b.user_id &&
  a.org_id === b.org_id &&
  a.received_at === b.received_at &&
  a.source === b.source;

/**
 * Packs readings, in their order, into batch records: consecutive readings of the same device,
 * session, user, organisation, received_at and source share one, up to `maxReadings` readings
 * and about `maxBytes` bytes. Expanding the batches (expandBatch) gives the readings back.
 * `sessionEnds`: the ended_at of the sessions that had ended when the readings were accepted,
 * written as session_ended_at on each such session's last batch.
 */
export function toBatches(
  records: HeartReadingRecord[],
  maxReadings: number = defaultReadingsPerRecord,
  maxBytes: number = maxBatchBytes,
  sessionEnds: ReadonlyMap<string, number> | null = null,
): HeartReadingBatchRecord[] {
  if (!(Number.isInteger(maxReadings) && maxReadings >= 1)) throw new RangeError(`maxReadings must be a positive integer, got ${maxReadings}`);
  const out: HeartReadingBatchRecord[] = [];
  let cur: HeartReadingBatchRecord | null = null;
  let first: HeartReadingRecord | null = null;
  let bytes = 0;
  for (const r of records) {
    const size = itemBytes(r);
    if (cur === null || !sameBatch(first!, r) || cur.readings.length >= maxReadings || (cur.readings.length > 0 && bytes + size > maxBytes)) {
      cur = { device_id: r.device_id, user_id: r.user_id, org_id: r.org_id, session_id: r.session_id, received_at: r.received_at, source: r.source, readings: [], session_ended_at: null };
      first = r;
      bytes = 0;
      out.push(cur);
    }
    const item: Required<HeartReadingBatchItem> = {
      reading_id: r.reading_id,
      recorded_at: r.recorded_at,
      hr_bpm: r.hr_bpm,
      rr_intervals_ms: r.rr_intervals_ms,
      device_hrv_ms: r.device_hrv_ms,
      device_coherence: r.device_coherence,
      battery_level_pct: r.battery_level_pct,
    };
    cur.readings.push(item);
    bytes += size;
  }
  if (sessionEnds !== null && sessionEnds.size > 0) {
    // On the last batch of each session only: the worker closes the session's last windows
    // after the record that carries it, and a request's own readings must all be in by then
    // (how many records a request takes is the gateway's business, not the device's).
    const marked = new Set<string>();
    for (let i = out.length - 1; i >= 0; i--) {
      const id = out[i].session_id;
      if (id === null || marked.has(id)) continue;
      marked.add(id);
      out[i].session_ended_at = sessionEnds.get(id) ?? null;
    }
  }
  return out;
}

/** The readings of a decoded batch record, each as the HeartReading it was accepted as. */
export function expandBatch(b: HeartReadingBatchRecord): HeartReadingRecord[] {
  const items = b.readings as Array<Required<HeartReadingBatchItem>>;
  const out: HeartReadingRecord[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    // One literal shape, in the gateway's field order (ingest/gateway.ts toRecords), so V8
    // keeps one hidden class for readings whichever way they came.
    out[i] = {
      reading_id: it.reading_id,
      device_id: b.device_id,
      user_id: b.user_id,
      org_id: b.org_id,
      session_id: b.session_id,
      recorded_at: it.recorded_at,
      received_at: b.received_at,
      hr_bpm: it.hr_bpm,
      rr_intervals_ms: it.rr_intervals_ms,
      device_hrv_ms: it.device_hrv_ms,
      device_coherence: it.device_coherence,
      battery_level_pct: it.battery_level_pct,
      source: b.source,
    };
  }
  return out;
}

/**
 * A value of the readings topic, decoded and dispatched on its writer schema id: a batch
 * (expanded), or anything else as decoded (a single HeartReading, an end marker, another
 * producer's record: the caller checks which).
 */
export type ReadingsTopicValue = { kind: 'batch'; readings: HeartReadingRecord[]; sessionEndedAtMs: number | null } | { kind: 'single'; value: unknown };

const dispatch = (codec: Codec, buf: Buffer, value: unknown): ReadingsTopicValue =>
  codec.recordNameOf(readSchemaId(buf)) === HEART_READING_BATCH
    ? { kind: 'batch', readings: expandBatch(value as HeartReadingBatchRecord), sessionEndedAtMs: (value as HeartReadingBatch).session_ended_at ?? null }
    : { kind: 'single', value };

/**
 * Decodes a readings-topic value (synchronously when its writer schema is known, as
 * decodeRecord); throws (or rejects) as the codec does for a value it cannot decode.
 */
export function decodeReadingsValue(codec: Codec, buf: Buffer): ReadingsTopicValue | Promise<ReadingsTopicValue> {
  const v = decodeRecord<unknown>(codec, buf);
  if (v instanceof Promise) return v.then((value) => dispatch(codec, buf, value));
  return dispatch(codec, buf, v);
}
