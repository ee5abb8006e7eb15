// Batch records (HeartReadingBatch, schemas/reading-batches.ts) through the coherence worker and
// the readings sink: the same windows and the same rows (same reading ids) as the same readings
// published one record each; an implausible or quarantined reading inside a batch dead-lettered
// alone, with the record's offset and its index in the batch, the rest processed; and a worker
// replaced mid-stream (many readings per committed offset) still gives the same windows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { Topics, prefixedTopics, type TopicNames } from '../../schemas/topics.js';
import { createCodec, decodeRecord, readSchemaId, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { DeadLetter } from '../../schemas/registry/schemas.js';
import { createStoreClient, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import { DevicesRepository, SessionsRepository } from '../../store/postgres/sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { readingId, type HeartReadingRecord } from '../../schemas/records.js';
import { silentLogger } from '../../lib/log.js';
import { rsaReadings, waitFor } from '../../test/attune.js';
import { publishReadings } from '../../ingest/publisher.js';
import { ReadingsSink } from '../readings-sink.js';
import { CoherenceWorker } from './worker.js';
import { endMarkerRecord } from './end-markers.js';
import { TestResultSinks, countingBus, flushingThrough, type CountingBus } from '../sinks/result-sinks.test-util.js';

let dir: string;
let store: StoreClient;
let bus: CountingBus;
const sinks = new Map<string, TestResultSinks>();
let codec: Codec;
let entities: TestDatabase;
let sessions: SessionsRepository;

const devices = ['dev-one', 'dev-many', 'dev-rs-ref', 'dev-rs', 'dev-end-ref', 'dev-end-run', 'dev-end-restart', 'dev-end-part', 'dev-end-part-rs', 'dev-tail-run', 'dev-tail-rs', 'dev-guard-run', 'dev-guard-rs'];
const PER_RECORD = 25;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-batches-'));
  store = await createStoreClient({ dataDir: dir, database: 'batches_test', log: silentLogger });
  await migrate(store);
  bus = countingBus(await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 }));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  entities = await entityTestDatabase();
  sessions = new SessionsRepository(entities.client);
  const repo = new DevicesRepository(entities.client);
  for (const id of devices) await repo.register({ id, orgId: 'o1', userId: 'u1' });
});

after(async () => {
  for (const s of sinks.values()) await s.stop();
  await bus.close();
  await store.close();
  await entities.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const start = Date.UTC(2026, 10, 1, 9, 0, 0);
const readings = rsaReadings({ startMs: start + 250, durationS: 150, breathHz: 0.1, seed: 31 });
const sessionOpts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };

interface Extra {
  recordedAt: number;
  receivedAt: number;
  rr: number[];
}
type Reading = (typeof readings)[number] | Extra;

function record(sessionId: string, deviceId: string, r: Reading): HeartReadingRecord {
  const recordedAt = 'timestamp' in r ? Date.parse(r.timestamp) : r.recordedAt;
  return {
    reading_id: readingId('o1', deviceId, recordedAt),
    device_id: deviceId,
    user_id: 'u1',
    org_id: 'o1',
    session_id: sessionId,
    recorded_at: recordedAt,
    // One request's readings share the gateway's received_at: one batch per PER_RECORD readings.
    received_at: 'timestamp' in r ? start + 3_600_000 : r.receivedAt,
    hr_bpm: 'timestamp' in r ? r.hr : null,
    rr_intervals_ms: 'timestamp' in r ? r.rr_intervals_ms : r.rr,
    device_hrv_ms: null,
    device_coherence: null,
    battery_level_pct: null,
    source: 'sync',
  };
}

async function topicsFor(prefix: string): Promise<TopicNames> {
  const topics = prefixedTopics(prefix);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  return topics;
}

/** Publishes the readings as the gateway does (PER_RECORD a record, or 1: single records), then the end marker unless `end` is false. */
async function publish(topics: TopicNames, sessionId: string, deviceId: string, series: Reading[], perRecord: number, end = true): Promise<void> {
  const recs = series.map((r) => record(sessionId, deviceId, r));
  // As the gateway: consecutive readings with the same received_at go into one batch.
  await publishReadings(bus, topics, codec, recs, perRecord);
  if (end) await bus.publish(topics.heartReadings, [await endMarkerRecord(codec, { sessionId, deviceId, userId: 'u1', orgId: 'o1', endedAtMs: Math.max(...recs.map((r) => r.recorded_at)) })]);
}

function sinksFor(topics: TopicNames): TestResultSinks {
  let s = sinks.get(topics.heartReadings);
  if (!s) sinks.set(topics.heartReadings, (s = new TestResultSinks(bus, codec, store, topics)));
  return s;
}

function worker(topics: TopicNames, groupId: string): CoherenceWorker {
  return flushingThrough(new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId }), sinksFor(topics));
}

async function windowMetrics(sessionId: string) {
  const rs = await store.client.query({
    query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, valid, invalid_reason, partial, coverage, longest_gap_ms,
              coherence, coherence_ratio, mean_hr_bpm, rmssd_ms, sdnn_ms, beat_count, artifact_ratio, late_beat_count
            FROM ${store.database}.coherence_windows FINAL WHERE session_id = {s:String} ORDER BY window_end`,
    query_params: { s: sessionId },
    format: 'JSONEachRow',
  });
  return (await rs.json()) as Array<Record<string, unknown>>;
}

/** heart_readings rows of a session as inserted (no FINAL: a duplicate would show). */
async function rows(sessionId: string) {
  const rs = await store.client.query({
    query: `SELECT reading_id, toUnixTimestamp64Milli(event_time) AS t, beat_index, rr_ms, hr_bpm, source, toUnixTimestamp64Milli(received_at) AS received
            FROM ${store.database}.heart_readings WHERE session_id = {s:String} ORDER BY t, beat_index`,
    query_params: { s: sessionId },
    format: 'JSONEachRow',
  });
  return (await rs.json()) as Array<{ reading_id: string } & Record<string, unknown>>;
}

async function deadLetters(topics: TopicNames, count: number): Promise<Array<DeadLetter & { headers: Record<string, string> }>> {
  const got: Array<DeadLetter & { headers: Record<string, string> }> = [];
  const sub = await bus.subscribe({
    groupId: `dl-reader-${topics.deadLetter}`,
    topics: [topics.deadLetter],
    fromBeginning: true,
    ephemeral: true,
    eachBatch: async (batch) => {
      for (const rec of batch.records) got.push({ ...(await decodeRecord<DeadLetter>(codec, rec.value)), headers: rec.headers });
    },
  });
  try {
    await waitFor(`${count} dead letters`, () => got.length >= count, 10_000, 20);
  } finally {
    await sub.stop();
  }
  return got;
}

test('batch records give the windows and rows of single records; an implausible and a quarantined reading inside a batch are dead-lettered alone, with the offset and index', async () => {
  const oneTopics = await topicsFor('batches-one.');
  const manyTopics = await topicsFor('batches-many.');
  const one = await sessions.create({ ...sessionOpts, deviceId: 'dev-one' });
  const many = await sessions.create({ ...sessionOpts, deviceId: 'dev-many' });
  // In the batched series: an RR of 99,999 ms among the first readings (record 0), and 60 s in
  // a reading dated 240 s ahead (plausible, received then: the clock guard quarantines it).
  const k = readings.findIndex((r) => Date.parse(r.timestamp) > start + 60_000);
  const at = Date.parse(readings[k].timestamp);
  const implausible: Extra = { recordedAt: Date.parse(readings[20].timestamp) - 300, receivedAt: start + 3_600_000, rr: [99_999] };
  const outlier: Extra = { recordedAt: at + 240_000, receivedAt: start + 3_600_000, rr: [880, 910] };
  const series: Reading[] = [...readings.slice(0, 20), implausible, ...readings.slice(20, k), outlier, ...readings.slice(k)];
  // Where they travel: the gateway publishes a request's readings in time order.
  const timeOf = (r: Reading) => ('timestamp' in r ? Date.parse(r.timestamp) : r.recordedAt);
  const published = series.slice().sort((a, b) => timeOf(a) - timeOf(b));
  const implausibleAt = published.indexOf(implausible);
  const outlierAt = published.indexOf(outlier);
  assert.ok(outlierAt % PER_RECORD !== 0 && Math.floor(outlierAt / PER_RECORD) > 0, 'the outlier is inside a later batch');

  const w1 = worker(oneTopics, 'batches-one-worker');
  const wN = worker(manyTopics, 'batches-many-worker');
  const s1 = new ReadingsSink({ bus, topics: oneTopics, codec, store, sessions, log: silentLogger, groupId: 'batches-one-sink', writer: { maxDelayMs: 20 } });
  const sN = new ReadingsSink({ bus, topics: manyTopics, codec, store, sessions, log: silentLogger, groupId: 'batches-many-sink', writer: { maxDelayMs: 20 } });
  for (const x of [w1, wN, s1, sN]) await x.start();
  try {
    await publish(oneTopics, one.id, 'dev-one', readings, 1);
    await publish(manyTopics, many.id, 'dev-many', series, PER_RECORD);
    await waitFor('the workers flushed', () => w1.stats.readings === readings.length && wN.stats.readings === series.length && w1.openSessionCount + wN.openSessionCount === 0, 30_000, 20);
    await waitFor('the sinks read everything', () => s1.stats.readings === readings.length && sN.stats.readings + sN.stats.implausible === series.length && sN.stats.endMarkers === 1, 30_000, 20);
    for (const x of [w1, wN, s1, sN]) await x.flush();
  } finally {
    for (const x of [w1, wN, s1, sN]) await x.stop();
  }
  // What was on the bus: single HeartReading records for one, batch records for the other.
  const recordsOf = async (topic: string) => {
    const out: Array<{ offset: string; id: number }> = [];
    const sub = await bus.subscribe({ groupId: `peek-${topic}`, topics: [topic], fromBeginning: true, ephemeral: true, eachBatch: async (b) => void out.push(...b.records.map((r) => ({ offset: r.offset, id: readSchemaId(r.value) }))) });
    await waitFor('records', () => out.length > 0, 10_000, 20);
    await sub.stop();
    return out;
  };
  const manyRecords = await recordsOf(manyTopics.heartReadings);
  assert.equal(manyRecords.length, Math.ceil(series.length / PER_RECORD) + 1, 'batch records and the end marker');
  assert.ok(manyRecords.slice(0, -1).every((r) => r.id === codec.schemaIdOfRecord('HeartReadingBatch')));

  const expected = await windowMetrics(one.id);
  assert.ok(expected.length > 20 && expected.some((r) => Boolean(r.valid)), `${expected.length} windows`);
  assert.deepEqual(await windowMetrics(many.id), expected, 'the same windows, field by field');
  const strip = (rs: Awaited<ReturnType<typeof rows>>) => rs.map(({ reading_id: _r, ...rest }) => rest);
  const oneRows = await rows(one.id);
  const manyRows = await rows(many.id);
  assert.deepEqual(strip(manyRows), strip(oneRows), 'the same beats, each once');
  assert.deepEqual(
    [...new Set(manyRows.map((r) => r.reading_id))].sort(),
    readings.map((r) => readingId('o1', 'dev-many', Date.parse(r.timestamp))).sort(),
    'the same reading ids (readingId), neither bad reading stored',
  );
  assert.equal(wN.stats.implausibleReadings, 1);
  assert.equal(wN.stats.quarantinedReadings, 1);
  assert.equal(sN.stats.implausible, 1);
  assert.equal(sN.stats.quarantined, 1);

  const dl = await deadLetters(manyTopics, 3);
  const byGroup = (g: string) => dl.filter((d) => d.consumer_group === g).sort((a, b) => a.reason_code.localeCompare(b.reason_code));
  const [future, rr] = byGroup('batches-many-worker');
  assert.deepEqual([future.reason_code, rr.reason_code], ['future_beat', 'implausible_rr']);
  const [sinkRr] = byGroup('batches-many-sink');
  assert.equal(sinkRr.reason_code, 'implausible_rr');
  assert.equal(dl.length, 3);
  for (const [d, pos, reading] of [
    [rr, implausibleAt, implausible],
    [sinkRr, implausibleAt, implausible],
    [future, outlierAt, outlier],
  ] as const) {
    const offset = manyRecords[Math.floor(pos / PER_RECORD)].offset;
    assert.equal(d.source_offset, offset, 'the batch record\'s offset');
    assert.equal(d.headers['attune-source-offset'], offset);
    assert.equal(d.headers['attune-source-index'], String(pos % PER_RECORD), 'its index in the batch');
    assert.match(d.reason, new RegExp(`^readings\\[${pos % PER_RECORD}\\]: `));
    // The dead letter carries the reading alone, as a single HeartReading.
    const alone = await decodeRecord<HeartReadingRecord>(codec, d.value as Buffer);
    assert.equal(readSchemaId(d.value as Buffer), codec.schemaIdOf(Topics.heartReadings));
    assert.equal(alone.recorded_at, reading.recordedAt);
    assert.deepEqual(alone.rr_intervals_ms, reading.rr);
    assert.equal(alone.reading_id, readingId('o1', 'dev-many', reading.recordedAt));
  }
});

test('a worker replaced mid-stream resumes from the batch record its oldest open window needs: the same windows as an uninterrupted run', async () => {
  const topics = await topicsFor('batches-restart.');
  const refTopics = await topicsFor('batches-restart-ref.');
  const session = await sessions.create({ ...sessionOpts, deviceId: 'dev-rs' });
  const control = await sessions.create({ ...sessionOpts, deviceId: 'dev-rs-ref' });
  const ref = worker(refTopics, 'batches-restart-ref');
  await ref.start();
  try {
    await publish(refTopics, control.id, 'dev-rs-ref', readings, PER_RECORD);
    await waitFor('the control flushed', () => ref.stats.readings === readings.length && ref.openSessionCount === 0, 30_000, 20);
    await ref.flush();
  } finally {
    await ref.stop();
  }
  // 70 % of the readings (a part-batch at the end), no end marker: the first worker stops with windows open.
  const cut = Math.floor(readings.length * 0.7);
  const first = worker(topics, 'batches-restart');
  await first.start();
  try {
    await publish(topics, session.id, 'dev-rs', readings.slice(0, cut), PER_RECORD, false);
    await waitFor('the first worker to read its share', () => first.stats.readings === cut, 30_000, 20);
    await first.flush();
  } finally {
    await first.stop();
  }
  assert.ok(first.stats.windows > 0);
  const second = worker(topics, 'batches-restart');
  await second.start();
  try {
    await publish(topics, session.id, 'dev-rs', readings.slice(cut), PER_RECORD);
    await waitFor('the replacement to flush', () => second.openSessionCount === 0 && second.stats.endMarkers === 1, 30_000, 20);
    await second.flush();
  } finally {
    await second.stop();
  }
  // It replayed from a committed offset inside the first part (at least one batch record again).
  assert.ok(second.stats.readings > readings.length - cut, `replayed ${second.stats.readings - (readings.length - cut)} readings`);
  assert.deepEqual(await windowMetrics(session.id), await windowMetrics(control.id));
});

/** The reference for a sync after the end: the same readings, all synced before the end call (its marker after them). */
async function syncedBeforeTheEnd(name: string): Promise<{ id: string }> {
  const topics = await topicsFor(`${name}.`);
  const ref = await sessions.create({ ...sessionOpts, deviceId: 'dev-end-ref' });
  const r = worker(topics, name);
  await r.start();
  try {
    await publish(topics, ref.id, 'dev-end-ref', readings, PER_RECORD);
    await waitFor('the reference flushed', () => r.stats.readings === readings.length && r.openSessionCount === 0, 30_000, 20);
    await r.flush();
  } finally {
    await r.stop();
  }
  return ref;
}

test('a backlog synced after the end call, in three requests: the one that reaches the end closes the last windows; an uninterrupted run and one restarted between requests store the windows of the same beats synced before the end', async () => {
  const ref = await syncedBeforeTheEnd('end-after-ref');
  const endMs = Math.max(...readings.map((x) => Date.parse(x.timestamp)));
  const thirds = [0, Math.floor(readings.length / 3), Math.floor((2 * readings.length) / 3), readings.length];
  for (const [device, restart] of [['dev-end-run', false], ['dev-end-restart', true]] as const) {
    const topics = await topicsFor(`end-after-${device}.`);
    const s = await sessions.create({ ...sessionOpts, deviceId: device });
    // The end call first, then three requests, each stamped with the session's end as the gateway does after it.
    await bus.publish(topics.heartReadings, [await endMarkerRecord(codec, { sessionId: s.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: endMs })]);
    let w = worker(topics, `end-after-${device}`);
    await w.start();
    let read = 0;
    try {
      for (let i = 0; i < 3; i++) {
        const part = readings.slice(thirds[i], thirds[i + 1]).map((x) => record(s.id, device, { recordedAt: Date.parse(x.timestamp), receivedAt: start + 3_600_000 + i, rr: x.rr_intervals_ms }));
        await publishReadings(bus, topics, codec, part, PER_RECORD, new Map([[s.id, endMs]]));
        read += part.length;
        const current = w;
        // (After the restart the replay's readings count too: the last request is in once it closed the tail.)
        await waitFor(`request ${i} read`, () => current.stats.readings >= read && (i < 2 || current.stats.closedAfterEnd >= 1), 30_000, 20);
        await current.flush();
        if (restart && i === 1) {
          await current.stop();
          w = worker(topics, `end-after-${device}`);
          await w.start();
          read = 0;
        }
      }
      assert.equal(w.stats.closedAfterEnd, 1, 'the last request closed the tail');
    } finally {
      await w.stop();
    }
    assert.deepEqual(await windowMetrics(s.id), await windowMetrics(ref.id), device);
  }
});

test('a session synced partly before the end call and the rest after it: the windows after the flushed ones keep the beats before the end (the end kept them), as if all had come before the end, through a restart too', async () => {
  const ref = await syncedBeforeTheEnd('end-part-ref');
  const reference = await windowMetrics(ref.id);
  const endMs = Math.max(...readings.map((x) => Date.parse(x.timestamp)));
  const cut = Math.floor(readings.length * 0.6);
  const cutMs = Date.parse(readings[cut - 1].timestamp);
  for (const [device, restart] of [['dev-end-part', false], ['dev-end-part-rs', true]] as const) {
    const topics = await topicsFor(`end-part-${device}.`);
    const s = await sessions.create({ ...sessionOpts, deviceId: device });
    const rec = (x: (typeof readings)[number], i: number) => record(s.id, device, { recordedAt: Date.parse(x.timestamp), receivedAt: start + 3_600_000 + i, rr: x.rr_intervals_ms });
    let w = worker(topics, `end-part-${device}`);
    await w.start();
    try {
      // Live until the cut, then the end call (the device out of range), then its backlog.
      await publishReadings(bus, topics, codec, readings.slice(0, cut).map((x) => rec(x, 0)), PER_RECORD);
      await bus.publish(topics.heartReadings, [await endMarkerRecord(codec, { sessionId: s.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: endMs })]);
      const first = w;
      await waitFor('the end read', () => first.stats.readings === cut && first.stats.endMarkers === 1, 30_000, 20);
      await first.flush();
      if (restart) {
        await first.stop();
        w = worker(topics, `end-part-${device}`);
        await w.start();
      }
      await publishReadings(bus, topics, codec, readings.slice(cut).map((x) => rec(x, 1)), PER_RECORD, new Map([[s.id, endMs]]));
      const current = w;
      await waitFor('the backlog read', () => current.stats.closedAfterEnd === 1, 30_000, 20);
      await current.flush();
    } finally {
      await w.stop();
    }
    const got = await windowMetrics(s.id);
    const { late_beat_count: _l, ...shape } = reference[0];
    const strip = (x: Record<string, unknown>) => Object.fromEntries(Object.keys(shape).map((k) => [k, x[k]]));
    // The windows the end closed early (their last beats came after it) differ; every other is the reference's.
    const early = (x: Record<string, unknown>) => Number(x.end_ms) > cutMs - 20_000 && Number(x.end_ms) <= cutMs + 5_000;
    assert.deepEqual(got.map((x) => Number(x.end_ms)), reference.map((x) => Number(x.end_ms)), `${device}: every window`);
    assert.deepEqual(got.filter((x) => !early(x)).map(strip), reference.filter((x) => !early(x)).map(strip), device);
  }
});

// The revived state holds the tail's beats, so the commit stays before the end marker: a replay
// after a restart reads records from before the end first. Until the review of 12-06 its
// checkpoint's anchors named the revival's first record only, the replay missed them and its
// windows counted late beats from 0 (5 in the uninterrupted run).
test('a kept tail revived by a short request, then a restart before the rest: the windows after it (late_beat_count included) are those of the uninterrupted run', async () => {
  const endMs = Math.max(...readings.map((x) => Date.parse(x.timestamp)));
  const cut = Math.floor(readings.length * 0.6);
  // A request after the end short enough that the revived windows still hold beats from before the end marker.
  const mid = cut + 15;
  const results: Array<Array<Record<string, unknown>>> = [];
  for (const [device, restart] of [['dev-tail-run', false], ['dev-tail-rs', true]] as const) {
    const topics = await topicsFor(`tail-rs-${device}.`);
    const s = await sessions.create({ ...sessionOpts, deviceId: device });
    const rec = (x: (typeof readings)[number], i: number) => record(s.id, device, { recordedAt: Date.parse(x.timestamp), receivedAt: start + 3_600_000 + i, rr: x.rr_intervals_ms });
    let w = worker(topics, `tail-rs-${device}`);
    await w.start();
    try {
      await publishReadings(bus, topics, codec, readings.slice(0, cut).map((x) => rec(x, 0)), PER_RECORD);
      await bus.publish(topics.heartReadings, [await endMarkerRecord(codec, { sessionId: s.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: endMs })]);
      await publishReadings(bus, topics, codec, readings.slice(cut, mid).map((x) => rec(x, 1)), PER_RECORD, new Map([[s.id, endMs]]));
      const first = w;
      await waitFor('the short request read', () => first.stats.readings === mid && first.stats.endMarkers === 1, 30_000, 20);
      await first.flush();
      if (restart) {
        await first.stop();
        w = worker(topics, `tail-rs-${device}`);
        await w.start();
      }
      await publishReadings(bus, topics, codec, readings.slice(mid).map((x) => rec(x, 2)), PER_RECORD, new Map([[s.id, endMs]]));
      const current = w;
      await waitFor('the rest read', () => current.stats.closedAfterEnd === 1, 30_000, 20);
      await current.flush();
      if (restart) {
        // The replay started before the end marker, at a record its checkpoint anchors, and applied the end again.
        assert.ok(current.stats.readings > readings.length - mid, `replayed ${current.stats.readings - (readings.length - mid)} readings`);
        assert.deepEqual([current.stats.guardAnchored, current.stats.guardAnchorMisses, current.stats.endedSessions], [1, 0, 1]);
      }
    } finally {
      await w.stop();
    }
    results.push(await windowMetrics(s.id));
  }
  const [run, restarted] = results;
  assert.ok(run.some((x) => Number(x.late_beat_count) > 0), 'the revival counts the beats the end closed early as late');
  const noLate = (xs: Array<Record<string, unknown>>) => xs.map(({ late_beat_count: _l, ...r }) => r);
  assert.deepEqual(noLate(restarted), noLate(run), "the windows but their late count");
  assert.deepEqual(restarted, run);
});

test("a kept tail revived, a reading 23 s ahead quarantined after the end, then a restart: the replay's guard restarts where the end left it and quarantines it again", async () => {
  const endMs = Math.max(...readings.map((x) => Date.parse(x.timestamp)));
  const cut = Math.floor(readings.length * 0.6);
  const cutMs = Date.parse(readings[cut - 1].timestamp);
  const k = readings.findIndex((x) => Date.parse(x.timestamp) > cutMs + 5_000);
  const m = readings.findIndex((x) => Date.parse(x.timestamp) > cutMs + 40_000);
  // About 23 s ahead of the readings synced just before it: the guard holds it, the next request
  // refutes it. (Behind the window end the restarted run's checkpoint had published, plus the horizon.)
  const outlier: Extra = { recordedAt: cutMs + 30_000, receivedAt: 0, rr: [880, 910] };
  const results: Array<Array<Record<string, unknown>>> = [];
  for (const [device, restart] of [['dev-guard-run', false], ['dev-guard-rs', true]] as const) {
    const topics = await topicsFor(`guard-rs-${device}.`);
    const s = await sessions.create({ ...sessionOpts, deviceId: device });
    const rec = (x: (typeof readings)[number], i: number) => record(s.id, device, { recordedAt: Date.parse(x.timestamp), receivedAt: start + 3_600_000 + i, rr: x.rr_intervals_ms });
    const ends = new Map([[s.id, endMs]]);
    let w = worker(topics, `guard-rs-${device}`);
    await w.start();
    let quarantined = 0;
    try {
      await publishReadings(bus, topics, codec, readings.slice(0, cut).map((x) => rec(x, 0)), PER_RECORD);
      await bus.publish(topics.heartReadings, [await endMarkerRecord(codec, { sessionId: s.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: endMs })]);
      // After the end call: a few seconds of the backlog, the outlier alone, then the next minute.
      await publishReadings(bus, topics, codec, readings.slice(cut, k).map((x) => rec(x, 1)), PER_RECORD, ends);
      await publishReadings(bus, topics, codec, [record(s.id, device, { ...outlier, receivedAt: start + 3_600_002 })], PER_RECORD, ends);
      await publishReadings(bus, topics, codec, readings.slice(k, m).map((x) => rec(x, 3)), PER_RECORD, ends);
      const first = w;
      await waitFor('the backlog so far read', () => first.stats.readings === m + 1 && first.stats.endMarkers === 1, 30_000, 20);
      await first.flush();
      quarantined += first.stats.quarantinedReadings;
      if (restart) {
        await first.stop();
        w = worker(topics, `guard-rs-${device}`);
        await w.start();
      }
      await publishReadings(bus, topics, codec, readings.slice(m).map((x) => rec(x, 4)), PER_RECORD, ends);
      const current = w;
      await waitFor('the rest read', () => current.stats.closedAfterEnd === 1, 30_000, 20);
      await current.flush();
      if (restart) {
        assert.equal(current.stats.guardAnchored, 1, 'the replay started at an anchored record before the end');
        // The replay decides the outlier again, as the run before it did.
        assert.equal(current.stats.quarantinedReadings, 1, 'quarantined again in the replay');
      }
    } finally {
      await w.stop();
    }
    assert.equal(quarantined, 1, `${device}: the outlier quarantined`);
    results.push(await windowMetrics(s.id));
  }
  assert.deepEqual(results[1], results[0]);
});
