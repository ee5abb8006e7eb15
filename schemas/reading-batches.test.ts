// Batch records on the readings topic (schemas/reading-batches.ts): packing, the codec's second
// record type, dispatch on the writer schema id, and what the gateway publishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bus, OutgoingRecord } from '../bus/types.js';
import { publishReadings } from '../ingest/publisher.js';
import { createCodec, readSchemaId, writeWireHeader } from './registry/codec.js';
import { startConfluentDouble } from './registry/confluent-double.test-util.js';
import { ConfluentSchemaRegistry, LocalSchemaRegistry } from './registry/registry.js';
import { loadSchemaFile, type AvroSchema } from './registry/schemas.js';
import { HEART_READING_BATCH, decodeReadingsValue, expandBatch, toBatches, type HeartReadingBatchRecord } from './reading-batches.js';
import { readingId, type HeartReadingRecord } from './records.js';
import { Topics } from './topics.js';
import { asEndMarker, endMarkerRecord } from '../pipelines/coherence/end-markers.js';

/** Values Avro floats hold exactly, so a decoded reading equals the one encoded. */
function reading(i: number, over: Partial<HeartReadingRecord> = {}): HeartReadingRecord {
  const t = 1_764_000_000_000 + i * 1000;
  return {
    reading_id: readingId('o', over.device_id ?? 'd', t),
    device_id: 'd',
    user_id: 'u',
    org_id: 'o',
    session_id: 's1',
    recorded_at: t,
    received_at: 1_764_000_900_000,
    hr_bpm: i % 3 === 0 ? null : 60 + (i % 40),
    rr_intervals_ms: i % 5 === 0 ? [] : [800 + (i % 7) * 16.5, 790.25],
    device_hrv_ms: i % 4 === 0 ? 42.5 : null,
    device_coherence: null,
    battery_level_pct: i % 2 === 0 ? 80 : null,
    source: 'sync',
    ...over,
  };
}

test('toBatches packs consecutive readings of one device and session, at most N a record, and expandBatch gives them back in order', () => {
  const rs = [
    ...Array.from({ length: 25 }, (_, i) => reading(i)),
    ...Array.from({ length: 3 }, (_, i) => reading(25 + i, { session_id: 's2' })),
    ...Array.from({ length: 2 }, (_, i) => reading(28 + i, { session_id: null })),
    reading(30),
  ];
  const batches = toBatches(rs, 10);
  assert.deepEqual(
    batches.map((b) => [b.session_id, b.readings.length]),
    [['s1', 10], ['s1', 10], ['s1', 5], ['s2', 3], [null, 2], ['s1', 1]],
  );
  assert.deepEqual(batches.flatMap(expandBatch), rs);
  assert.throws(() => toBatches(rs, 0), RangeError);
});

test('toBatches cuts a batch before its estimated bytes pass the bound, whatever the count', () => {
  const big = Array.from({ length: 400 }, (_, i) => reading(i, { rr_intervals_ms: Array.from({ length: 600 }, () => 300) }));
  const batches = toBatches(big, 1000);
  assert.ok(batches.length >= 2, `${batches.length} batches`);
  assert.equal(batches.reduce((n, b) => n + b.readings.length, 0), 400);
  return createCodec(LocalSchemaRegistry.fromManifest()).then((codec) => {
    for (const b of batches) assert.ok(codec.encodeRecord('HeartReadingBatch', b).length < 1024 * 1024, 'under Kafka default message.max.bytes');
  });
});

test('a batch record goes through the codec with its own schema id (16; 12 before session_ended_at) and dispatches as a batch; single readings and end markers as before', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  assert.equal(codec.schemaIdOfRecord('HeartReadingBatch'), 16);
  const rs = Array.from({ length: 12 }, (_, i) => reading(i));
  const [batch] = toBatches(rs);
  const bytes = codec.encodeRecord('HeartReadingBatch', batch);
  assert.equal(readSchemaId(bytes), 16);
  assert.equal(codec.recordNameOf(16), HEART_READING_BATCH);
  const got = decodeReadingsValue(codec, bytes);
  assert.ok(!(got instanceof Promise), 'known schema: decoded synchronously');
  assert.equal(got.kind, 'batch');
  assert.deepEqual(got.kind === 'batch' && got.readings, rs);
  assert.equal(got.kind === 'batch' && got.sessionEndedAtMs, null);
  // A session that had ended when the readings were accepted: its ended_at on the batch.
  const ended = toBatches(rs, undefined, undefined, new Map([[rs[0].session_id!, 1_700_000_123_000]]));
  const back = await decodeReadingsValue(codec, codec.encodeRecord('HeartReadingBatch', ended[0]));
  assert.deepEqual(back.kind === 'batch' && [back.sessionEndedAtMs, back.readings], [1_700_000_123_000, rs]);
  // Batches already on the topic, written before the field (id 12), read as before.
  const v1 = await createCodec(LocalSchemaRegistry.fromManifest(), { recordSchemas: { HeartReadingBatch: loadSchemaFile('HeartReadingBatch.v1.avsc') } });
  assert.equal(v1.schemaIdOfRecord('HeartReadingBatch'), 12);
  const { session_ended_at: _e, ...oldBatch } = batch;
  const old = await decodeReadingsValue(codec, v1.encodeRecord('HeartReadingBatch', oldBatch as HeartReadingBatchRecord));
  assert.deepEqual(old.kind === 'batch' && [old.sessionEndedAtMs, old.readings], [null, rs]);
  // A single HeartReading on the same topic is not a batch.
  const single = await decodeReadingsValue(codec, codec.encode(Topics.heartReadings, rs[3]));
  assert.equal(single.kind, 'single');
  assert.deepEqual(single.kind === 'single' && { ...(single.value as object) }, rs[3]);
  // Nor is an end marker, which still reads as one.
  const marker = await endMarkerRecord(codec, { sessionId: 's1', deviceId: 'd', userId: 'u', orgId: 'o', endedAtMs: 5 });
  const m = await decodeReadingsValue(codec, marker.value);
  assert.equal(m.kind, 'single');
  assert.deepEqual(asEndMarker(m.kind === 'single' && m.value), { sessionId: 's1', deviceId: 'd', endedAtMs: 5 });
  // Undecodable values still fail (through the codec's decode), for the caller to dead-letter.
  await assert.rejects(async () => decodeReadingsValue(codec, Buffer.from([1, 2, 3, 4, 5, 6])), /magic byte/);
  await assert.rejects(async () => decodeReadingsValue(codec, Buffer.concat([writeWireHeader(12), Buffer.from([0xff, 0xff])])));
});

test('dispatch is on the schema id the registry gave, and a later version of the batch schema (another id) still dispatches as a batch', async () => {
  const double = await startConfluentDouble();
  try {
    const v1 = await createCodec(new ConfluentSchemaRegistry({ url: double.url }));
    const id1 = v1.schemaIdOfRecord('HeartReadingBatch');
    assert.notEqual(id1, v1.schemaIdOf(Topics.heartReadings));
    // v2: an item field added with a default (BACKWARD and FORWARD compatible).
    const current = loadSchemaFile('HeartReadingBatch.avsc') as unknown as { fields: Array<{ name: string; type: { items: { fields: unknown[] } } }> };
    const v2Schema = structuredClone(current);
    v2Schema.fields.find((f) => f.name === 'readings')!.type.items.fields.push({ name: 'skin_temp_c', type: ['null', 'float'], default: null });
    const v2 = await createCodec(new ConfluentSchemaRegistry({ url: double.url }), { recordSchemas: { HeartReadingBatch: v2Schema as unknown as AvroSchema } });
    const id2 = v2.schemaIdOfRecord('HeartReadingBatch');
    assert.notEqual(id2, id1);
    const rs = Array.from({ length: 4 }, (_, i) => reading(i));
    const [b] = toBatches(rs);
    const newer = v2.encodeRecord('HeartReadingBatch', { ...b, readings: b.readings.map((r) => ({ ...r, skin_temp_c: 33.5 })) } as HeartReadingBatchRecord);
    assert.equal(readSchemaId(newer), id2);
    // A v1 reader that has never seen id 2 fetches it, resolves it to its own batch type, and dispatches on it.
    const reader = await createCodec(new ConfluentSchemaRegistry({ url: double.url }));
    const got = await decodeReadingsValue(reader, newer);
    assert.equal(got.kind, 'batch');
    assert.deepEqual(got.kind === 'batch' && got.readings, rs);
  } finally {
    await double.close();
  }
});

/** A bus that records what is published. */
function recordingBus(): Bus & { calls: Array<{ topic: string; records: OutgoingRecord[] }> } {
  const calls: Array<{ topic: string; records: OutgoingRecord[] }> = [];
  return {
    calls,
    publish: async (topic: string, records: OutgoingRecord[]) => void calls.push({ topic, records }),
  } as unknown as Bus & { calls: typeof calls };
}

test('the gateway publishes 2,500 readings as 3 batch records in one publish, keyed by device, dated by their newest reading; 1 a record publishes single HeartReadings', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const rs = Array.from({ length: 2500 }, (_, i) => reading(i));
  const bus = recordingBus();
  await publishReadings(bus, Topics, codec, rs);
  assert.equal(bus.calls.length, 1, 'one publish: the bus keeps all or nothing is acknowledged');
  const recs = bus.calls[0].records;
  assert.equal(bus.calls[0].topic, Topics.heartReadings);
  assert.deepEqual(recs.map((r) => r.key), ['d', 'd', 'd']);
  assert.deepEqual(recs.map((r) => r.timestamp), [rs[999].recorded_at, rs[1999].recorded_at, rs[2499].recorded_at]);
  const back: HeartReadingRecord[] = [];
  for (const r of recs) {
    const v = await decodeReadingsValue(codec, r.value);
    assert.equal(v.kind, 'batch');
    if (v.kind === 'batch') back.push(...v.readings);
  }
  assert.deepEqual(back, rs);

  const singles = recordingBus();
  await publishReadings(singles, Topics, codec, rs.slice(0, 5), 1);
  assert.equal(singles.calls[0].records.length, 5);
  for (const r of singles.calls[0].records) assert.equal(readSchemaId(r.value), codec.schemaIdOf(Topics.heartReadings));
});
