// The coherence worker over the embedded bus and chDB: a worker that stops in the middle of
// a high-coherence streak and is replaced must fire coherence_threshold_reached exactly once,
// at the same window (same event id) as a worker that never stopped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { type Bus } from '../../bus/types.js';
import { Topics, prefixedTopics, type TopicNames } from '../../schemas/topics.js';
import { createCodec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import { createStoreClient, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import { DevicesRepository, SessionsRepository } from '../../store/postgres/sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import type { Codec } from '../../schemas/registry/codec.js';
import { readingId, type CoherenceWindowRecord, type HeartReadingRecord } from '../../schemas/records.js';
import { silentLogger } from '../../lib/log.js';
import { rsaReadings, waitFor } from '../../test/attune.js';
import { partitionForKey } from '../../bus/partitioner.js';
import { CoherenceWorker } from './worker.js';
import { endMarkerRecord } from './end-markers.js';
import { beatTimes, defaultAllowedLatenessMs } from './session-windows.js';
import { PARTICIPANT_ENDED_HEADER, PARTICIPANT_FLUSHED_HEADER } from './group-fanout.js';
import type { MeshParticipation } from '../../store/postgres/mesh-repo.js';
import { LOOKAHEAD_MS } from '../hrv/artifacts.js';
import { TestResultSinks, countingBus, flushingThrough, type CountingBus } from '../sinks/result-sinks.test-util.js';

let dir: string;
let store: StoreClient;
let bus: CountingBus;
/** The windows and events sinks: the worker writes to the bus only. */
let sinks: TestResultSinks;
const moreSinks: TestResultSinks[] = [];
let codec: Codec;
let entities: TestDatabase;
let sessions: SessionsRepository;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-worker-'));
  store = await createStoreClient({ dataDir: dir, database: 'worker_test', log: silentLogger });
  await migrate(store);
  bus = countingBus(await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 }));
  await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  sinks = new TestResultSinks(bus, codec, store);
  entities = await entityTestDatabase();
  sessions = new SessionsRepository(entities.client);
  // A session's device must be registered (a foreign key in PostgreSQL).
  const devices = new DevicesRepository(entities.client);
  for (const id of ['dev-ref', 'dev-resumed', 'dev-ref2', 'dev-flaky', 'dev-clean', 'dev-paused', 'dev-quiet', 'dev-prov-on', 'dev-prov-off', 'dev-prov-stuck', 'dev-prov-ooo-on', 'dev-prov-ooo-off']) await devices.register({ id, orgId: 'o1', userId: 'u1' });
});

after(async () => {
  for (const s of [sinks, ...moreSinks]) await s.stop();
  await bus.close();
  await store.close();
  await entities.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const start = Date.UTC(2026, 10, 1, 9, 0, 0);
const readings = rsaReadings({ startMs: start + 250, durationS: 150, breathHz: 0.1, seed: 21 });

/** Publishes series[from, to); the publish that reaches the series' end also sends the session's end marker, as the end call would. */
async function publish(sessionId: string, deviceId: string, from: number, to: number, topic: string = Topics.heartReadings, series = readings): Promise<void> {
  const records = [];
  for (const r of series.slice(from, to)) {
    const recordedAt = Date.parse(r.timestamp);
    const rec: HeartReadingRecord = {
      reading_id: readingId('o1', deviceId, recordedAt),
      device_id: deviceId,
      user_id: 'u1',
      org_id: 'o1',
      session_id: sessionId,
      recorded_at: recordedAt,
      received_at: recordedAt,
      hr_bpm: r.hr,
      rr_intervals_ms: r.rr_intervals_ms,
      device_hrv_ms: null,
      device_coherence: null,
      battery_level_pct: null,
      source: 'sync',
    };
    records.push({ key: deviceId, value: await codec.encode(Topics.heartReadings, rec), timestamp: recordedAt });
  }
  if (to >= series.length) {
    records.push(await endMarkerRecord(codec, { sessionId, deviceId, userId: 'u1', orgId: 'o1', endedAtMs: Date.parse(series[series.length - 1].timestamp) }));
  }
  await bus.publish(topic, records);
}

async function events(sessionId: string): Promise<Array<{ event_id: string; occurred_ms: number }>> {
  const rs = await store.client.query({
    query: `SELECT event_id, toUnixTimestamp64Milli(occurred_at) AS occurred_ms FROM ${store.database}.session_events WHERE session_id = {s:String} ORDER BY occurred_at`,
    query_params: { s: sessionId },
    format: 'JSONEachRow',
  });
  return ((await rs.json()) as Array<{ event_id: string; occurred_ms: string | number }>).map((e) => ({ event_id: e.event_id, occurred_ms: Number(e.occurred_ms) }));
}

function worker(groupId: string, topics?: TopicNames, through: TestResultSinks = sinks): CoherenceWorker {
  return flushingThrough(new CoherenceWorker({ bus, codec, topics, sessions, log: silentLogger, groupId }), through);
}

test('a worker replaced mid-streak fires the threshold event once, at the same window as one that never stopped', async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const reference = await sessions.create({ ...opts, deviceId: 'dev-ref' });
  const resumed = await sessions.create({ ...opts, deviceId: 'dev-resumed' });

  // Reference: one worker sees everything.
  const ref = worker('ref-group');
  await ref.start();
  await publish(reference.id, 'dev-ref', 0, readings.length);
  await waitFor('the reference session to be flushed', () => ref.stats.readings === readings.length && ref.openSessionCount === 0, 30_000, 20);
  await ref.flush();
  const expected = await events(reference.id);
  assert.equal(expected.length, 1);
  await ref.stop();

  // The stored windows say why they are or are not trusted: windows whose beats start more
  // than 4 s after their start (the session's first minute) or stop more than 4 s before their
  // end (its last window) are partial; every other window of this clean series is valid.
  const stored = (await (
    await store.client.query({
      query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, valid, invalid_reason, partial, coverage, longest_gap_ms
              FROM ${store.database}.coherence_windows WHERE session_id = {s:String} ORDER BY window_end`,
      query_params: { s: reference.id },
      format: 'JSONEachRow',
    })
  ).json()) as Array<{ end_ms: string | number; valid: boolean; invalid_reason: string | null; partial: boolean; coverage: number; longest_gap_ms: number }>;
  const lastBeat = Date.parse(readings[readings.length - 1].timestamp);
  for (const w of stored) {
    const end = Number(w.end_ms);
    const full = start + 250 - (end - 64_000) <= 4000 && end - lastBeat <= 4000;
    assert.equal(w.valid, full, `window ending ${end - start} ms into the session: ${w.invalid_reason}`);
    assert.equal(w.partial, !full);
    assert.equal(w.invalid_reason, full ? null : 'partial');
    assert.ok(w.coverage > 0 && w.coverage <= 1 && w.longest_gap_ms >= 0);
    if (full) assert.ok(w.coverage > 0.97 && w.longest_gap_ms < 2000, JSON.stringify(w));
  }

  // The first worker sees the first 85 s: windows close through 75 s, and the first full one
  // (the earlier ones are partial) ends at 65 s, so the streak has begun but not lasted 30 s yet.
  // Topics of their own: the group reads from the first offset, and the reference's readings
  // are not its share.
  const rt = prefixedTopics('resume.');
  await bus.ensureTopics(Object.values(rt).map((topic) => ({ topic, partitions: 2 })));
  const resumeSinks = new TestResultSinks(bus, codec, store, rt);
  moreSinks.push(resumeSinks);
  const first = worker('resume-group', rt, resumeSinks);
  await first.start();
  const cut = readings.findIndex((r) => Date.parse(r.timestamp) > start + 85_000);
  await publish(resumed.id, 'dev-resumed', 0, cut, rt.heartReadings);
  await waitFor('the first worker to take its share', () => first.stats.readings === cut, 30_000, 20);
  await first.stop();
  assert.ok(first.stats.validWindows > 0, 'the first worker emitted windows of the streak');
  assert.deepEqual(await events(resumed.id), [], 'no event before the hold is reached');

  // Its replacement, in the same group, replays from the committed offset and goes on.
  const second = worker('resume-group', rt, resumeSinks);
  await second.start();
  await publish(resumed.id, 'dev-resumed', cut, readings.length, rt.heartReadings);
  await waitFor('the replacement to flush the session', () => second.stats.readings >= readings.length - cut && second.openSessionCount === 0, 30_000, 20);
  await second.flush();
  await second.stop();

  const got = await events(resumed.id);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.equal(got[0].occurred_ms, expected[0].occurred_ms);
  assert.equal(got[0].event_id.replace(resumed.id, ''), expected[0].event_id.replace(reference.id, ''));
  assert.equal(second.stats.restoredSessions, 1, 'the replacement took the session over from its checkpoint');
});

async function windowRows(sessionId: string) {
  const rs = await store.client.query({
    query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, valid, coherence, rmssd_ms, beat_count
            FROM ${store.database}.coherence_windows WHERE session_id = {s:String} ORDER BY window_end`,
    query_params: { s: sessionId },
    format: 'JSONEachRow',
  });
  return rs.json();
}

test('windows whose publish failed are sent on the redelivery: none lost, none twice', async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const reference = await sessions.create({ ...opts, deviceId: 'dev-ref2' });
  const flakySession = await sessions.create({ ...opts, deviceId: 'dev-flaky' });

  const ref = worker('ref2-group');
  await ref.start();
  await publish(reference.id, 'dev-ref2', 0, readings.length);
  await waitFor('the reference windows', async () => ref.openSessionCount === 0 && ref.stats.readings >= readings.length, 30_000, 20);
  await ref.flush();
  await ref.stop();

  // The windows topic refuses the first three publishes, as a broker might during a failover.
  let refusals = 3;
  const flaky: Bus = {
    kind: bus.kind,
    ensureTopics: (specs) => bus.ensureTopics(specs),
    publish: async (topic, records) => {
      if (topic === Topics.coherenceWindows && refusals > 0) {
        refusals--;
        throw new Error('not enough replicas');
      }
      return bus.publish(topic, records);
    },
    subscribe: (o) => bus.subscribe(o),
    committed: (g, t) => bus.committed(g, t),
    partitionCount: (t) => bus.partitionCount(t),
    close: () => bus.close(),
  };
  const w = flushingThrough(new CoherenceWorker({ bus: flaky, codec, sessions, log: silentLogger, groupId: 'flaky-group' }), sinks);
  await w.start();
  try {
    await publish(flakySession.id, 'dev-flaky', 0, readings.length);
    await waitFor('the flaky worker to get through', async () => {
      if (w.openSessionCount > 0 || refusals > 0) return false;
      await w.flush();
      return ((await windowRows(flakySession.id)) as unknown[]).length >= ((await windowRows(reference.id)) as unknown[]).length;
    }, 30_000, 50);
  } finally {
    await w.stop();
  }
  assert.equal(refusals, 0, 'the failures happened');
  const expected = await windowRows(reference.id);
  assert.ok((expected as unknown[]).length > 10);
  assert.deepEqual(await windowRows(flakySession.id), expected);
});

const publishReadings = publish;

async function windowMetrics(sessionId: string) {
  const rs = await store.client.query({
    query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, valid, invalid_reason, partial, coverage, longest_gap_ms,
              coherence, coherence_ratio, mean_hr_bpm, rmssd_ms, sdnn_ms, beat_count, artifact_ratio
            FROM ${store.database}.coherence_windows FINAL WHERE session_id = {s:String} ORDER BY window_end`,
    query_params: { s: sessionId },
    format: 'JSONEachRow',
  });
  return (await rs.json()) as Array<{ end_ms: string | number } & Record<string, unknown>>;
}

test('a pause in the input, however long on the wall clock, changes no window: windows close on event time only', async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const clean = await sessions.create({ ...opts, deviceId: 'dev-clean' });
  const paused = await sessions.create({ ...opts, deviceId: 'dev-paused' });
  // Topics of its own, so the worker's counts are this test's readings only.
  const topics = prefixedTopics('pause.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  const pauseSinks = new TestResultSinks(bus, codec, store, topics);
  moreSinks.push(pauseSinks);
  const w = flushingThrough(new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId: 'pause-group' }), pauseSinks);
  await w.start();
  const publish = (id: string, device: string, from: number, to: number) => publishReadings(id, device, from, to, topics.heartReadings);
  const cut = readings.findIndex((r) => Date.parse(r.timestamp) > start + 70_000);
  try {
    await publish(clean.id, 'dev-clean', 0, readings.length);
    await waitFor('the clean session to end', () => w.stats.readings === readings.length && w.openSessionCount === 0, 30_000, 20);
    // The paused device sends its first 70 s, then nothing for a while (the phone paused its
    // uploads, or the broker was away): 1.5 s here, 5 times what the old wall-clock idle flush
    // took to cut its tail; then the rest, and the end.
    await publish(paused.id, 'dev-paused', 0, cut);
    await waitFor('the first part', () => w.stats.readings === readings.length + cut, 30_000, 20);
    await w.flush();
    const during = await windowMetrics(paused.id);
    const lastBeforePause = Date.parse(readings[cut - 1].timestamp);
    assert.ok(during.length > 0 && during.every((r) => Number(r.end_ms) <= lastBeforePause - 10_000), 'only windows the watermark closed');
    const quiet = Date.now() + 1500;
    await waitFor('the pause', () => Date.now() >= quiet, 5_000, 50);
    await w.flush();
    assert.deepEqual(await windowMetrics(paused.id), during, 'nothing closed during the pause');
    assert.equal(w.openSessionCount, 1);
    await publish(paused.id, 'dev-paused', cut, readings.length);
    await waitFor('the rest to end', () => w.stats.readings === 2 * readings.length && w.openSessionCount === 0, 30_000, 20);
    await w.flush();
  } finally {
    await w.stop();
  }
  const expected = await windowMetrics(clean.id);
  const got = await windowMetrics(paused.id);
  assert.ok(expected.length > 20);
  assert.deepEqual(got, expected, 'every window equals the clean run\'s');
  assert.equal(w.stats.endedSessions, 2);
});

test('a silent session is ended once the event time of its partition is sessionIdleEndMs past it, and no longer holds the commit back', async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const topics = prefixedTopics('release.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  // Two devices whose readings share a partition.
  const partition = partitionForKey('dev-quiet', 2);
  let other = 0;
  while (partitionForKey(`dev-busy-${other}`, 2) !== partition) other++;
  await new DevicesRepository(entities.client).register({ id: `dev-busy-${other}`, orgId: 'o1', userId: 'u1' });
  const quiet = await sessions.create({ ...opts, deviceId: 'dev-quiet' });
  const busy = await sessions.create({ ...opts, deviceId: `dev-busy-${other}` });
  const idleEndMs = 120_000;
  const releaseSinks = new TestResultSinks(bus, codec, store, topics);
  moreSinks.push(releaseSinks);
  const w = flushingThrough(new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId: 'release-group', sessionIdleEndMs: idleEndMs }), releaseSinks);
  await w.start();
  const cut = readings.findIndex((r) => Date.parse(r.timestamp) > start + 70_000);
  const lastQuiet = Date.parse(readings[cut - 1].timestamp);
  // The busy device's readings, [from, from + durationS), without an end marker. It streams on
  // from before the quiet device stops: silence counts while the partition's time moves with
  // readings, not across a jump (a device joining far ahead ends nobody at once).
  const sendBusy = async (from: number, durationS: number) => {
    const rs = rsaReadings({ startMs: from, durationS, seed: 3 });
    await publishReadings(busy.id, `dev-busy-${other}`, 0, rs.length - 1, topics.heartReadings, rs);
    return rs.length - 1;
  };
  try {
    await publishReadings(quiet.id, 'dev-quiet', 0, cut, topics.heartReadings);
    // Within the idle span of the quiet session's last beat: it stays open, and its oldest offset held.
    let sent = cut + (await sendBusy(lastQuiet - 5_000, (idleEndMs - 10_000 + 5_000) / 1000));
    await waitFor('the busy readings', () => w.stats.readings === sent, 30_000, 20);
    assert.equal(w.stats.idleEndedSessions, 0);
    assert.equal(w.openSessionCount, 2);
    await w.flush();
    const held = await waitFor('a commit', async () => (await bus.committed('release-group', topics.heartReadings)).get(partition), 10_000, 20);
    assert.ok(BigInt(held) < BigInt(cut), `commit ${held} holds the quiet session's beats (offsets below ${cut})`);
    const before = await windowMetrics(quiet.id);
    // Past it: the quiet session is ended, its last windows closed, and the commit moves past its offsets.
    sent += await sendBusy(lastQuiet + idleEndMs - 10_000, 30);
    await waitFor('the quiet session to be ended', () => w.stats.readings === sent && w.stats.idleEndedSessions === 1, 30_000, 20);
    assert.equal(w.openSessionCount, 1);
    await waitFor('the commit to move on', async () => {
      await w.flush();
      const c = (await bus.committed('release-group', topics.heartReadings)).get(partition);
      return c !== undefined && BigInt(c) >= BigInt(cut);
    }, 10_000, 20);
    const after = await windowMetrics(quiet.id);
    const lastEnd = Number(after[after.length - 1].end_ms);
    assert.ok(after.length > before.length, 'the tail windows closed');
    assert.ok(lastEnd > lastQuiet && lastEnd - 5_000 <= lastQuiet, 'through the window holding the last beat');
  } finally {
    await w.stop();
  }
});

type PublishedWindow = { topic: 'final' | 'provisional'; session: string; endMs: number; w: CoherenceWindowRecord };

/**
 * One worker (provisional windows on or off) fed `series` live-like: 8 readings (about 14 s of
 * beats) at a time, each piece handled before the next is sent, until the session ends; what
 * it publishes on the final and provisional topics goes to `log`, in order.
 */
async function provisionalRun(prefix: string, sessionId: string, deviceId: string, provisionalWindows: boolean, log: PublishedWindow[], series = readings) {
  const topics = prefixedTopics(prefix);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  const runSinks = new TestResultSinks(bus, codec, store, topics);
  moreSinks.push(runSinks);
  const watched: Bus = {
    ...bus,
    kind: bus.kind,
    publish: async (topic, records) => {
      await bus.publish(topic, records);
      const kind = topic === topics.coherenceWindows ? 'final' : topic === topics.coherenceWindowsProvisional ? 'provisional' : null;
      if (kind) for (const r of records) {
        const w = await codec.decode<CoherenceWindowRecord>(r.value as Buffer);
        log.push({ topic: kind, session: w.session_id, endMs: w.window_end, w });
      }
    },
  };
  const w = flushingThrough(new CoherenceWorker({ bus: watched, topics, codec, sessions, log: silentLogger, groupId: `${prefix}group`, provisionalWindows }), runSinks);
  await w.start();
  try {
    for (let from = 0; from < series.length; from += 8) {
      const to = Math.min(from + 8, series.length);
      await publishReadings(sessionId, deviceId, from, to, topics.heartReadings, series);
      await waitFor(`readings up to ${to}`, () => w.stats.readings === to, 30_000, 10);
      await w.flush();
    }
    await waitFor('the session to end', () => w.openSessionCount === 0, 30_000, 20);
    await w.flush();
  } finally {
    await w.stop();
  }
  return w.stats;
}

test('provisional windows: after each batch, the newest window the beats have passed goes out once, before its final one, on its own topic; the final windows are those of a worker without them', async (t) => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const on = await sessions.create({ ...opts, deviceId: 'dev-prov-on' });
  const off = await sessions.create({ ...opts, deviceId: 'dev-prov-off' });
  // What the worker publishes, in the order it publishes it (final and provisional topics).
  const log: PublishedWindow[] = [];
  const run = (prefix: string, sessionId: string, deviceId: string, provisionalWindows: boolean) => provisionalRun(prefix, sessionId, deviceId, provisionalWindows, log);
  const offStats = await run('prov-off.', off.id, 'dev-prov-off', false);
  const onStats = await run('prov-on.', on.id, 'dev-prov-on', true);
  assert.equal(offStats.provisionalWindows, 0);
  assert.equal(log.filter((e) => e.session === off.id && e.topic === 'provisional').length, 0);

  // Stored (and so every API answer): the same windows with and without provisional ones.
  const expected = await windowMetrics(off.id);
  assert.ok(expected.length > 20);
  assert.deepEqual(await windowMetrics(on.id), expected);

  const mine = log.filter((e) => e.session === on.id);
  const provisional = mine.filter((e) => e.topic === 'provisional');
  const finals = new Map(mine.filter((e) => e.topic === 'final').map((e) => [e.endMs, e]));
  assert.equal(onStats.provisionalWindows, provisional.length);
  // beat_count is the window's own beats: not its context before it, nor the lookahead after it
  // that the cleaning reads.
  const beatTimesAll = readings.flatMap((r) => Array.from(beatTimes(Date.parse(r.timestamp), r.rr_intervals_ms)));
  for (const f of finals.values()) {
    const own = beatTimesAll.filter((time) => time >= Number(f.w.window_start) && time < Number(f.w.window_end)).length;
    assert.equal(f.w.beat_count, own, `beat_count of the window ending ${f.endMs - start} ms`);
  }
  // In order, every final window that had a provisional one is cut from the same beats: its
  // metrics are taken from it, not computed twice (and the stored windows above are the same).
  assert.equal(onStats.provisionalReused, provisional.length);
  assert.equal(offStats.provisionalReused, 0);
  t.diagnostic(`${provisional.length} provisional windows, ${finals.size} final ones, ${readings.length} readings in pieces of 8`);
  // One every 8 readings at most (one per batch); the pieces cross a window end each time.
  assert.ok(provisional.length >= Math.floor(readings.length / 8) - 3, `${provisional.length} provisional windows`);
  const ends = provisional.map((e) => e.endMs);
  assert.deepEqual(ends, [...new Set(ends)].sort((a, b) => a - b), 'each end once, in order');
  for (const p of provisional) {
    const at = mine.indexOf(p);
    const final = finals.get(p.endMs);
    assert.ok(final, `a final window ends at ${p.endMs - start} ms too`);
    assert.ok(mine.indexOf(final) > at, `the provisional window ending ${p.endMs - start} ms came first`);
    // In order, nothing late: the beats of the window were all there, so it reads as its final one.
    const { late_beat_count: _a, ...pv } = p.w;
    const { late_beat_count: _b, ...fv } = final.w;
    assert.deepEqual(pv, fv);
  }
  // The live window runs ahead of the final one by the allowed lateness: both wait for the
  // lookahead span after their end (5 s), the final one for the watermark to pass it too. At
  // each provisional publish, the newest final window ends at least 10 s earlier.
  for (const p of provisional) {
    const before = mine.slice(0, mine.indexOf(p)).filter((e) => e.topic === 'final');
    if (before.length > 0) assert.ok(p.endMs - before[before.length - 1].endMs >= 10_000, `${p.endMs - before[before.length - 1].endMs} ms ahead`);
  }
});

test("a beat that comes after its window's provisional one: that final window is computed again, and the stored windows are those of a worker without provisional windows", async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const on = await sessions.create({ ...opts, deviceId: 'dev-prov-ooo-on' });
  const off = await sessions.create({ ...opts, deviceId: 'dev-prov-ooo-off' });
  // Piece 4 (series positions 32..39) is readings 32..40 but one, which comes first in piece 5:
  // one that ends before the window the piece's newest beat has passed (its provisional one),
  // so that window's provisional cut lacks its beats and its final cut has them. A few seconds
  // late, well inside the allowed lateness: no beat is late.
  const newest = Date.parse(readings[40].timestamp);
  // The provisional window of a piece ends where its newest beat has passed the end and the
  // lookahead span after it (LOOKAHEAD_MS).
  const passedEnd = Math.floor((newest - LOOKAHEAD_MS) / 5000) * 5000;
  const held = [...Array(8).keys()].map((i) => 32 + i).filter((j) => Date.parse(readings[j].timestamp) < passedEnd).pop()!;
  // In the last step of that window: the final windows are closed only up to 10 s before it, so
  // it is not late (asserted below).
  assert.ok(held !== undefined && passedEnd - Date.parse(readings[held].timestamp) < 5_000);
  const series = [...readings.slice(0, held), ...readings.slice(held + 1, 41), readings[held], ...readings.slice(41)];
  assert.equal(series.indexOf(readings[held]), 40);
  const log: PublishedWindow[] = [];
  const offStats = await provisionalRun('prov-ooo-off.', off.id, 'dev-prov-ooo-off', false, log, series);
  const onStats = await provisionalRun('prov-ooo-on.', on.id, 'dev-prov-ooo-on', true, log, series);
  assert.equal(offStats.lateBeats + onStats.lateBeats, 0);
  // Stored: the same windows with and without provisional ones.
  const expected = await windowMetrics(off.id);
  assert.ok(expected.length > 20);
  assert.deepEqual(await windowMetrics(on.id), expected);
  // The provisional window at passedEnd lacked the held beats and its final one has them.
  const mine = log.filter((e) => e.session === on.id);
  const provisional = mine.find((e) => e.topic === 'provisional' && e.endMs === passedEnd);
  const final = mine.find((e) => e.topic === 'final' && e.endMs === passedEnd);
  assert.ok(provisional && final, `a provisional and a final window end at ${passedEnd - start} ms`);
  const { late_beat_count: _a, ...pv } = provisional.w;
  const { late_beat_count: _b, ...fv } = final.w;
  assert.notDeepEqual(pv, fv);
  // So that final window, and the others still open when the held beats came, were computed
  // again; the rest took their provisional metrics.
  const provisionalCount = mine.filter((e) => e.topic === 'provisional').length;
  assert.ok(onStats.provisionalReused < provisionalCount && onStats.provisionalReused >= provisionalCount - 4, `${onStats.provisionalReused} of ${provisionalCount} reused`);
});

test('a provisional publish that hangs or fails holds nothing up: every reading handled and every final window out meanwhile', async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  const session = await sessions.create({ ...opts, deviceId: 'dev-prov-stuck' });
  const topics = prefixedTopics('prov-stuck.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  let release: () => void = () => undefined;
  const hung = new Promise<void>((r) => (release = r));
  let provisionalCalls = 0;
  let finals = 0;
  const stuck: Bus = {
    ...bus,
    kind: bus.kind,
    publish: async (topic, records) => {
      if (topic === topics.coherenceWindowsProvisional) {
        // The first round never answers until released; the ones after it fail.
        if (provisionalCalls++ === 0) return hung;
        throw new Error('provisional topic unavailable');
      }
      await bus.publish(topic, records);
      if (topic === topics.coherenceWindows) finals += records.length;
    },
  };
  const w = new CoherenceWorker({ bus: stuck, topics, codec, sessions, log: silentLogger, groupId: 'prov-stuck-group' });
  await w.start();
  try {
    for (let from = 0; from < readings.length; from += 8) {
      const to = Math.min(from + 8, readings.length);
      await publishReadings(session.id, 'dev-prov-stuck', from, to, topics.heartReadings);
      // Not flush(): it would wait for the hung round. The readings' handling must not.
      await waitFor(`readings up to ${to}`, () => w.stats.readings === to, 30_000, 10);
    }
    await waitFor('the session to end, its last windows out', () => w.openSessionCount === 0 && finals === w.stats.windows, 30_000, 10);
    assert.ok(finals > 20, `${finals} final windows`);
    assert.equal(provisionalCalls, 1, 'one round in flight; the later ones were dropped, not queued');
    assert.ok(w.stats.provisionalDropped > 0);
    release();
    await w.flush();
    assert.equal(w.stats.provisionalWindows, 1);
    // Released, the next rounds go to the bus again; here it refuses them: counted, nothing else.
    const s2 = await sessions.create({ ...opts, deviceId: 'dev-prov-stuck' });
    await publishReadings(s2.id, 'dev-prov-stuck', 0, 40, topics.heartReadings);
    await waitFor('the second session\'s readings', () => w.stats.readings === readings.length + 40, 30_000, 10);
    await w.flush();
    assert.ok(provisionalCalls > 1 && w.stats.provisionalFailures > 0, `${provisionalCalls} calls, ${w.stats.provisionalFailures} failed`);
  } finally {
    release();
    await w.stop();
  }
});

test("a group participant's windows closed by its session's end carry the flushed header (the group worker does not take them as event time); those its watermark closed do not", async () => {
  const opts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };
  await new DevicesRepository(entities.client).register({ id: 'dev-fanout', orgId: 'o1', userId: 'u1' });
  const s = await sessions.create({ ...opts, deviceId: 'dev-fanout' });
  const topics = prefixedTopics('fanout.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  const fanoutSinks = new TestResultSinks(bus, codec, store, topics);
  moreSinks.push(fanoutSinks);
  const participation: MeshParticipation = {
    meshId: '0b0f9a56-5d0e-4c53-9d55-2f3a8f7f1c01', orgId: 'o1', participantId: 'p1', userId: 'u1', deviceId: null, joinedAt: start - 1000, leftAt: null,
    startedAt: start - 1000, endedAt: null, breathingRateBpm: 6, coherenceThreshold: 0.5, thresholdDurationS: 30, protocol: 'heart_breath_sync',
  };
  const groups = { participationsOf: async () => [participation] };
  const seen: Array<{ end: number; headers: Record<string, string> }> = [];
  const sub = await bus.subscribe({
    groupId: 'fanout-reader',
    topics: [topics.groupParticipantWindows],
    fromBeginning: true,
    eachBatch: async (b) => {
      for (const r of b.records) seen.push({ end: Number(r.timestamp), headers: { ...(r.headers ?? {}) } });
    },
  });
  const w = flushingThrough(new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId: 'fanout-group', groups }), fanoutSinks);
  await w.start();
  try {
    await publishReadings(s.id, 'dev-fanout', 0, readings.length, topics.heartReadings);
    await waitFor('the session to end', () => w.stats.readings === readings.length && w.openSessionCount === 0, 30_000, 20);
    await w.flush();
    await waitFor('its last window on the group topic', () => seen.some((x) => x.headers[PARTICIPANT_ENDED_HEADER] === 'true'), 30_000, 20);
  } finally {
    await w.stop();
    await sub.stop();
  }
  seen.sort((a, b) => a.end - b.end);
  const flushed = seen.map((x) => x.headers[PARTICIPANT_FLUSHED_HEADER] === 'true');
  const first = flushed.indexOf(true);
  assert.ok(first > 10, `${first} windows closed by the watermark`);
  assert.ok(flushed.slice(first).every(Boolean), 'the flushed ones are the last');
  assert.ok(seen.length - first >= 2, `${seen.length - first} closed by the end`);
  // The watermark closes a window once the newest beat is the lateness and the look-ahead past
  // its end: those after that waited for the end.
  const lastBeat = Date.parse(readings[readings.length - 1].timestamp);
  for (const [i, x] of seen.entries()) assert.equal(flushed[i], x.end > lastBeat - defaultAllowedLatenessMs - LOOKAHEAD_MS, `window ending ${x.end - lastBeat} ms from the last beat`);
  assert.equal(seen.at(-1)!.headers[PARTICIPANT_ENDED_HEADER], 'true');
});
