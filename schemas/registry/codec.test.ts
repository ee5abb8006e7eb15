import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttuneError } from '../../lib/errors.js';
import { Topics } from '../topics.js';
import { createCodec, readSchemaId, writeWireHeader } from './codec.js';
import { startConfluentDouble } from './confluent-double.test-util.js';
import { ConfluentSchemaRegistry, LocalSchemaRegistry } from './registry.js';
import { loadSchemaFile, schemaFingerprint, type AvroSchema, type CoherenceWindow, type HeartReading } from './schemas.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const smallReading: HeartReading = {
  reading_id: 'r1',
  device_id: 'd',
  user_id: 'u',
  org_id: 'o',
  session_id: null,
  recorded_at: 1000,
  received_at: 1001,
  hr_bpm: 60,
  rr_intervals_ms: [1000, 500.5],
  device_hrv_ms: null,
  device_coherence: 0.5,
  battery_level_pct: null,
  source: 'live',
};

// Worked out by hand from the Avro 1.11 spec, field by field: [bytes, why].
const smallReadingBytes = Buffer.concat(
  (
    [
      ['00 00000001', 'magic byte, schema id 1 big-endian'],
      ['04 7231', 'reading_id: length 2 zig-zag = 4, "r1"'],
      ['02 64 02 75 02 6f', 'device_id "d", user_id "u", org_id "o"'],
      ['00', 'session_id: union branch 0 (null)'],
      ['d0 0f', 'recorded_at 1000: zig-zag 2000 = 0x7d0, varint low 7 bits first'],
      ['d2 0f', 'received_at 1001: zig-zag 2002'],
      ['02 00007042', 'hr_bpm: branch 1 (float), 60.0f = 0x42700000 little-endian'],
      ['04 00007a44 0040fa43 00', 'rr_intervals_ms: block of 2, 1000.0f, 500.5f = 0x43fa4000, end of blocks'],
      ['00', 'device_hrv_ms null'],
      ['02 0000003f', 'device_coherence: branch 1, 0.5f = 0x3f000000'],
      ['00', 'battery_level_pct null'],
      ['02', 'source: enum index 1 ("live"), zig-zag 2'],
    ] as Array<[string, string]>
  ).map(([bytes]) => hex(bytes)),
);

test('the hand-computed byte vector of a small HeartReading', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  assert.equal(codec.schemaIdOf(Topics.heartReadings), 1);
  const bytes = codec.encode(Topics.heartReadings, smallReading);
  assert.equal(bytes.toString('hex'), smallReadingBytes.toString('hex'));
  const back = await codec.decode<HeartReading>(bytes);
  assert.deepEqual({ ...back }, smallReading);
  assert.equal(typeof back.recorded_at, 'number', 'timestamp-millis stays a plain number');
});

test('negative ints zig-zag and bytes are length-prefixed (DeadLetter)', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const bytes = codec.encode(Topics.deadLetter, {
    source_topic: 't',
    source_partition: -3,
    source_offset: '7',
    key: 'k',
    value: Buffer.from([0xff, 0x00]),
    reason_code: 'x',
    reason: '',
    failed_at: -1,
    consumer_group: 'g',
  });
  // header id 4 | "t" | -3 → 5 | "7" | "k" | 2 bytes ff 00 | "x" | "" | -1 → 01 | "g"
  assert.equal(bytes.toString('hex'), '0000000004' + '0274' + '05' + '0237' + '026b' + '04ff00' + '0278' + '00' + '01' + '0267');
});

test('wire header is magic 0 + big-endian id', () => {
  assert.equal(writeWireHeader(0x01020304).toString('hex'), '0001020304');
  assert.equal(readSchemaId(hex('0001020304ff')), 0x01020304);
  assert.throws(() => readSchemaId(hex('0100000001')), (e: unknown) => e instanceof AttuneError && e.details[0].reason === 'bad_magic_byte');
  assert.throws(() => readSchemaId(hex('000000')), (e: unknown) => e instanceof AttuneError && e.code === 'validation_error');
});

test('decoding an unknown schema id gives a coded not_found error', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const buf = Buffer.concat([writeWireHeader(999), Buffer.from([0])]);
  await assert.rejects(codec.decode(buf), (e: unknown) => e instanceof AttuneError && e.code === 'not_found' && e.details[0].schema_id === 999);
  assert.throws(() => codec.decodeSync(buf), (e: unknown) => e instanceof AttuneError && e.code === 'not_found');
});

test('a truncated or over-long body is a validation_error', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const bytes = codec.encode(Topics.heartReadings, smallReading);
  for (const bad of [bytes.subarray(0, bytes.length - 2), Buffer.concat([bytes, Buffer.from([0])])]) {
    await assert.rejects(codec.decode(bad), (e: unknown) => e instanceof AttuneError && e.code === 'validation_error');
  }
});

test('encode names the invalid field', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const bad = { ...smallReading, hr_bpm: 'fast', rr_intervals_ms: [800, 'x'] } as unknown as HeartReading;
  assert.throws(
    () => codec.encode(Topics.heartReadings, bad),
    (e: unknown) => {
      assert.ok(e instanceof AttuneError && e.code === 'validation_error');
      const fields = e.details.map((d) => d.field);
      assert.deepEqual(fields, ['/hr_bpm', '/rr_intervals_ms/1']);
      assert.match(e.message, /\/hr_bpm/);
      return true;
    },
  );
  const missing = { ...smallReading } as Partial<HeartReading>;
  delete missing.device_id;
  assert.throws(() => codec.encode(Topics.heartReadings, missing as HeartReading), /\/device_id/);
});

test('optional fields left out are written with their defaults', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const minimal: HeartReading = { reading_id: 'r', device_id: 'd', user_id: 'u', org_id: 'o', recorded_at: 1, received_at: 2 };
  const back = await codec.decode<HeartReading>(codec.encode(Topics.heartReadings, minimal));
  assert.deepEqual(back.rr_intervals_ms, []);
  assert.equal(back.hr_bpm, null);
  assert.equal(back.source, 'sync');
});

function olderHeartReadingSchema(): AvroSchema {
  const current = loadSchemaFile('HeartReading.avsc') as { fields: Array<{ name: string }> };
  return { ...current, fields: current.fields.filter((f) => f.name !== 'source' && f.name !== 'battery_level_pct') } as AvroSchema;
}

test('evolution: a record written with an older schema decodes with the defaults of the new one', async () => {
  const subject = `${Topics.heartReadings}-value`;
  const manifest = LocalSchemaRegistry.fromManifest();
  const registry = new LocalSchemaRegistry([
    { id: 1, subject, schema: await manifest.getSchema(1) },
    { id: 2, subject: `${Topics.coherenceWindows}-value`, schema: await manifest.getSchema(2) },
    { id: 3, subject: `${Topics.sessionEvents}-value`, schema: await manifest.getSchema(3) },
    { id: 4, subject: `${Topics.deadLetter}-value`, schema: await manifest.getSchema(4) },
    { id: 5, subject: `${Topics.speechAudio}-value`, schema: await manifest.getSchema(5) },
    { id: 6, subject: `${Topics.speechEvents}-value`, schema: await manifest.getSchema(6) },
    { id: 7, subject: `${Topics.coherenceWindows}-value`, schema: await manifest.getSchema(7) },
    { id: 8, subject: `${Topics.sessionChanges}-value`, schema: await manifest.getSchema(8) },
    { id: 9, subject: `${Topics.meshEvents}-value`, schema: await manifest.getSchema(9) },
    { id: 10, subject: `${Topics.groupParticipantWindows}-value`, schema: await manifest.getSchema(10) },
    { id: 11, subject: `${Topics.groupWindows}-value`, schema: await manifest.getSchema(11) },
    { id: 12, subject: `${Topics.heartReadings}-io.attune.heart.v1.HeartReadingBatch`, schema: await manifest.getSchema(12) },
    { id: 13, subject: `${Topics.speechResults}-value`, schema: await manifest.getSchema(13) },
    { id: 14, subject: `${Topics.coherenceWindowsProvisional}-value`, schema: await manifest.getSchema(14) },
    { id: 15, subject: `${Topics.groupParticipantWindowsProvisional}-value`, schema: await manifest.getSchema(15) },
    { id: 16, subject: `${Topics.heartReadings}-io.attune.heart.v1.HeartReadingBatch`, schema: await manifest.getSchema(16) },
    { id: 100, subject, schema: olderHeartReadingSchema() },
  ]);
  // An old producer: its codec writes HeartReading with id 100.
  const oldCodec = await createCodec(registry, { schemas: { [Topics.heartReadings]: olderHeartReadingSchema() } });
  assert.equal(oldCodec.schemaIdOf(Topics.heartReadings), 100);
  const { source: _s, battery_level_pct: _b, ...oldRecord } = smallReading;
  const oldBytes = oldCodec.encode(Topics.heartReadings, oldRecord);
  assert.equal(readSchemaId(oldBytes), 100);

  const codec = await createCodec(registry);
  assert.throws(() => codec.decodeSync(oldBytes), /not loaded/);
  const back = await codec.decode<HeartReading>(oldBytes);
  assert.equal(back.source, 'sync');
  assert.equal(back.battery_level_pct, null);
  assert.deepEqual(back.rr_intervals_ms, [1000, 500.5]);
  // Once seen, the old writer id decodes synchronously too.
  assert.equal(codec.decodeSync<HeartReading>(oldBytes).device_coherence, 0.5);
});

test('CoherenceWindow v1 records (schema id 2, before the trust fields) decode with the v2 defaults; v2 is written as id 7', async () => {
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  assert.equal(codec.schemaIdOf(Topics.coherenceWindows), 7);
  const v1 = await createCodec(LocalSchemaRegistry.fromManifest(), { schemas: { [Topics.coherenceWindows]: loadSchemaFile('CoherenceWindow.v1.avsc') } });
  assert.equal(v1.schemaIdOf(Topics.coherenceWindows), 2);
  const window = {
    session_id: 's', user_id: 'u', org_id: 'o', device_id: 'd', window_start: 0, window_end: 64_000, valid: true,
    coherence: 0.8, coherence_ratio: 4, peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 60, rmssd_ms: 40,
    sdnn_ms: 50, pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0,
  };
  const old = await codec.decode<CoherenceWindow>(v1.encode(Topics.coherenceWindows, window));
  assert.deepEqual([old.invalid_reason, old.partial, old.coverage, old.longest_gap_ms, old.coherence], [null, false, null, null, 0.8]);
  const fresh = { ...window, valid: false, coherence: null, invalid_reason: 'partial', partial: true, coverage: 0.5, longest_gap_ms: 32_000 };
  const back = await codec.decode<CoherenceWindow>(codec.encode(Topics.coherenceWindows, fresh));
  assert.deepEqual({ ...back }, fresh);
});

test('the local manifest refuses a schema it does not list and fingerprints match the files', async () => {
  const registry = LocalSchemaRegistry.fromManifest();
  await assert.rejects(registry.register(`${Topics.heartReadings}-value`, olderHeartReadingSchema()), (e: unknown) => e instanceof AttuneError && e.code === 'not_found');
  await assert.rejects(registry.register('other-value', await registry.getSchema(1)), /not in the local registry/);
});

test('ConfluentSchemaRegistry registers <topic>-value subjects (TopicNameStrategy), the batch record under <topic>-<record name>, and resolves ids over HTTP', async () => {
  const double = await startConfluentDouble();
  try {
    const codec = await createCodec(new ConfluentSchemaRegistry({ url: double.url }));
    const subjects = (await (await fetch(`${double.url}/subjects`)).json()) as string[];
    assert.deepEqual(
      subjects.sort(),
      [...Object.values(Topics).map((t) => `${t}-value`), `${Topics.heartReadings}-io.attune.heart.v1.HeartReadingBatch`].sort(),
    );
    const bytes = codec.encode(Topics.heartReadings, smallReading);
    const latest = (await (await fetch(`${double.url}/subjects/${Topics.heartReadings}-value/versions/latest`)).json()) as { id: number };
    assert.equal(readSchemaId(bytes), latest.id);

    // A fresh consumer-side client knows nothing about the id and fetches it.
    const registry = new ConfluentSchemaRegistry({ url: double.url });
    const schema = await registry.getSchema(readSchemaId(bytes));
    assert.equal(schemaFingerprint(schema), schemaFingerprint(loadSchemaFile('HeartReading.avsc')));
    assert.deepEqual({ ...(await codec.decode<HeartReading>(bytes)) }, smallReading);
    await assert.rejects(registry.getSchema(77), (e: unknown) => e instanceof AttuneError && e.code === 'not_found');
    assert.ok(double.calls.includes('GET /schemas/ids/77'));
    // Registration is a plain POST: the subject's compatibility level is left to the registry.
    assert.ok(!double.calls.some((c) => c.includes('/config')), double.calls.join(', '));
  } finally {
    await double.close();
  }
});
