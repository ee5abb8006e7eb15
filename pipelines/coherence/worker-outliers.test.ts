// Poison beats on the bus (issue 9 "Strict input", issue 10 item 3): one reading minutes ahead
// of its session must not move the session's clock (quarantined, dead-lettered, counted; every
// window of the clean run still produced, identical); a device that really resumes after a
// gap keeps its windows; implausible RR/HR/timestamps are dead-lettered by the coherence
// worker and by the readings sink, and never stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { type Bus, type OutgoingRecord } from '../../bus/types.js';
import { keysCoveringPartitions } from '../../bus/partitioner.js';
import { Topics, prefixedTopics, type TopicNames } from '../../schemas/topics.js';
import { createCodec, decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { DeadLetter } from '../../schemas/registry/schemas.js';
import { createStoreClient, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import { DevicesRepository, SessionsRepository } from '../../store/postgres/sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { SinkProgressRepository } from '../../store/postgres/sink-progress-repo.js';
import { commitDropping } from '../../bus/commit-dropping.test-util.js';
import { readingId, type HeartReadingRecord } from '../../schemas/records.js';
import { silentLogger } from '../../lib/log.js';
import { rsaReadings, waitFor } from '../../test/attune.js';
import { ReadingsSink } from '../readings-sink.js';
import { CoherenceWorker } from './worker.js';
import { endMarkerRecord, settingsMarkerRecord } from './end-markers.js';
import { TestResultSinks, countingBus, flushingThrough, type CountingBus } from '../sinks/result-sinks.test-util.js';

let dir: string;
let store: StoreClient;
let bus: CountingBus;
/** The windows and events sinks of each topic prefix: the worker writes to the bus only. */
const sinks = new Map<string, TestResultSinks>();
let codec: Codec;
let entities: TestDatabase;
let sessions: SessionsRepository;
let progress: SinkProgressRepository;

const devices = ['dev-ctl', 'dev-out', 'dev-off', 'dev-gap', 'dev-gap-ref', 'dev-bad', 'dev-bad-ref', 'dev-rs', 'dev-rs-ref', 'dev-ws', 'dev-sg', 'dev-sg-gap', 'dev-sg-off', 'dev-rq', 'dev-rq-ref', 'dev-lg-one', 'dev-lg-two'];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-outliers-'));
  store = await createStoreClient({ dataDir: dir, database: 'outliers_test', log: silentLogger });
  await migrate(store);
  bus = countingBus(await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 }));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  entities = await entityTestDatabase();
  sessions = new SessionsRepository(entities.client);
  progress = new SinkProgressRepository(entities.client);
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
const readings = rsaReadings({ startMs: start + 250, durationS: 150, breathHz: 0.1, seed: 21 });
type Reading = (typeof readings)[number];
const sessionOpts = { orgId: 'o1', userId: 'u1', startedAt: start, coherenceThreshold: 0.5, thresholdDurationS: 30 };

async function topicsFor(prefix: string): Promise<TopicNames> {
  const topics = prefixedTopics(prefix);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  return topics;
}

interface Extra {
  recordedAt: number;
  receivedAt?: number;
  rr: number[];
  hr?: number | null;
}

function record(sessionId: string, deviceId: string, r: Reading | Extra): HeartReadingRecord {
  const recordedAt = 'timestamp' in r ? Date.parse(r.timestamp) : r.recordedAt;
  const receivedAt = 'timestamp' in r ? recordedAt : (r.receivedAt ?? recordedAt);
  return {
    reading_id: readingId('o1', deviceId, recordedAt),
    device_id: deviceId,
    user_id: 'u1',
    org_id: 'o1',
    session_id: sessionId,
    recorded_at: recordedAt,
    received_at: receivedAt,
    hr_bpm: 'timestamp' in r ? r.hr : (r.hr ?? null),
    rr_intervals_ms: 'timestamp' in r ? r.rr_intervals_ms : r.rr,
    device_hrv_ms: null,
    device_coherence: null,
    battery_level_pct: null,
    source: 'sync',
  };
}

/** Publishes the readings, then (unless `end` is false) the session's end marker, as the end call would. */
async function publish(topic: string, sessionId: string, deviceId: string, series: Array<Reading | Extra>, end = true): Promise<void> {
  const recs = [];
  let last = 0;
  for (const r of series) {
    const rec = record(sessionId, deviceId, r);
    last = Math.max(last, rec.recorded_at);
    recs.push({ key: deviceId, value: await codec.encode(Topics.heartReadings, rec), timestamp: rec.recorded_at });
  }
  if (end) recs.push(await endMarkerRecord(codec, { sessionId, deviceId, userId: 'u1', orgId: 'o1', endedAtMs: last }));
  await bus.publish(topic, recs);
}

/** The session's stored windows (with `late`, their late_beat_count too). */
async function windowMetrics(sessionId: string, late = false) {
  const rs = await store.client.query({
    query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, valid, invalid_reason, partial, coverage, longest_gap_ms,
              coherence, coherence_ratio, mean_hr_bpm, rmssd_ms, sdnn_ms, beat_count, artifact_ratio${late ? ', late_beat_count' : ''}
            FROM ${store.database}.coherence_windows FINAL WHERE session_id = {s:String} ORDER BY window_end`,
    query_params: { s: sessionId },
    format: 'JSONEachRow',
  });
  return (await rs.json()) as Array<{ end_ms: string | number; valid: boolean | number } & Record<string, unknown>>;
}

/** Every dead letter on the topics' dead-letter topic, once `count` are there (with its bus headers). */
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

function sinksFor(topics: TopicNames): TestResultSinks {
  let s = sinks.get(topics.heartReadings);
  if (!s) sinks.set(topics.heartReadings, (s = new TestResultSinks(bus, codec, store, topics)));
  return s;
}

function worker(topics: TopicNames, groupId: string, extra: { confirmReadings?: number } = {}): CoherenceWorker {
  return flushingThrough(new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId, ...extra }), sinksFor(topics));
}

/**
 * A worker per segment of `count` input items cut at `cuts` (a restart at each cut):
 * `send(from, to)` publishes items [from, to), and a worker has read them once `seen(w)` reaches
 * `expected(from, to)`; the last one also waits until every session is flushed. Each stopped
 * worker goes to `done`. (A replay's records count too, so a worker may stop a little before
 * its cut: that only moves the restart point.)
 */
async function runSegments(opts: {
  name: string;
  topics: TopicNames;
  count: number;
  cuts: number[];
  send: (from: number, to: number) => Promise<unknown>;
  expected: (from: number, to: number) => number;
  seen?: (w: CoherenceWorker) => number;
  done?: (w: CoherenceWorker) => void;
}): Promise<void> {
  const { name, topics, cuts } = opts;
  const seen = opts.seen ?? ((w: CoherenceWorker) => w.stats.readings);
  const bounds = [0, ...cuts, opts.count];
  for (let c = 1; c < bounds.length; c++) {
    const w = worker(topics, `${name}-group`);
    await w.start();
    try {
      await opts.send(bounds[c - 1], bounds[c]);
      const n = opts.expected(bounds[c - 1], bounds[c]);
      if (c === bounds.length - 1) await waitFor(`${name}: flushed`, () => w.openSessionCount === 0 && seen(w) >= n, 60_000, 20);
      else await waitFor(`${name}: records up to ${bounds[c]} read`, () => seen(w) >= n, 60_000, 20);
      await w.flush();
    } finally {
      await w.stop();
    }
    opts.done?.(w);
  }
}

/** runSegments over interleaved readings of the sessions `ids` (sendMerged's input), counting readings. */
function runMergedSegments(name: string, topics: TopicNames, ids: string[], input: Merged[], cuts: number[], done?: (w: CoherenceWorker) => void): Promise<void> {
  return runSegments({
    name,
    topics,
    count: input.length,
    cuts,
    send: (from, to) => sendMerged(topics.heartReadings, name, ids, input, from, to),
    expected: (from, to) => input.slice(from, to).filter((m) => m.r !== null).length,
    done,
  });
}

test('one reading 4 minutes ahead moves no window: it is quarantined (future_beat), dead-lettered and counted', async () => {
  const topics = await topicsFor('outlier.');
  const control = await sessions.create({ ...sessionOpts, deviceId: 'dev-ctl' });
  const outlier = await sessions.create({ ...sessionOpts, deviceId: 'dev-out' });
  const unguarded = await sessions.create({ ...sessionOpts, deviceId: 'dev-off' });
  // 60 s into the session, a reading dated 240 s ahead (received now, so within the
  // gateway's 5 minutes of the future), then the session goes on as before.
  const k = readings.findIndex((r) => Date.parse(r.timestamp) > start + 60_000);
  const at = Date.parse(readings[k].timestamp);
  const poisoned: Array<Reading | Extra> = [...readings.slice(0, k), { recordedAt: at + 240_000, receivedAt: at, rr: [880, 910] }, ...readings.slice(k)];

  const w = worker(topics, 'outlier-group');
  // The same input without the guard (confirmReadings 1): the behaviour before it.
  const offTopics = await topicsFor('outlier-off.');
  const off = worker(offTopics, 'outlier-off-group', { confirmReadings: 1 });
  await w.start();
  await off.start();
  try {
    await publish(topics.heartReadings, control.id, 'dev-ctl', readings);
    await publish(topics.heartReadings, outlier.id, 'dev-out', poisoned);
    await publish(offTopics.heartReadings, unguarded.id, 'dev-off', poisoned);
    await waitFor('both sessions flushed', () => w.stats.readings === 2 * readings.length + 1 && w.openSessionCount === 0, 30_000, 20);
    await waitFor('the unguarded session flushed', () => off.stats.readings === readings.length + 1 && off.openSessionCount === 0, 30_000, 20);
    await w.flush();
    await off.flush();
  } finally {
    await w.stop();
    await off.stop();
  }
  const expected = await windowMetrics(control.id);
  const got = await windowMetrics(outlier.id);
  const before = await windowMetrics(unguarded.id);
  const key = (r: Record<string, unknown>) => JSON.stringify(r);
  const lost = (rows: typeof expected) => expected.filter((e) => !rows.some((r) => key(r) === key(e)));
  const validOf = (rows: typeof expected) => rows.filter((r) => Boolean(r.valid)).length;
  console.log(
    `control: ${expected.length} windows (${validOf(expected)} valid); unguarded: ${lost(before).length} of them missing or changed, ${validOf(before)} valid; guarded: ${lost(got).length} missing or changed, ${validOf(got)} valid`,
  );
  assert.ok(expected.length > 20 && validOf(expected) > 10);
  assert.ok(lost(before).length > 0, 'without the guard the outlier costs windows (the input reproduces the issue)');
  assert.deepEqual(got, expected, 'every window of the control run, identical');
  assert.equal(w.stats.quarantinedReadings, 1);
  assert.equal(w.stats.implausibleReadings, 0);
  assert.equal(w.stats.deadLettered, 1);
  const dl = await deadLetters(topics, 1);
  assert.equal(dl.length, 1);
  assert.equal(dl[0].reason_code, 'future_beat');
  assert.equal(dl[0].consumer_group, 'outlier-group');
  assert.match(dl[0].reason, /240 s ahead/);
  assert.deepEqual(
    { ...dl[0].headers, 'attune-failed-at': 'x' },
    {
      'attune-reason': 'future_beat',
      'attune-source-topic': topics.heartReadings,
      'attune-source-partition': String(dl[0].source_partition),
      'attune-source-offset': dl[0].source_offset,
      'attune-failed-at': 'x',
      'attune-consumer-group': 'outlier-group',
    },
  );
  assert.ok(!Number.isNaN(Date.parse(dl[0].headers['attune-failed-at'])));
  const decoded = await decodeRecord<HeartReadingRecord>(codec, dl[0].value as Buffer);
  assert.equal(decoded.recorded_at, at + 240_000, 'the dead letter carries the record itself');
});

test('a worker stopped while it holds the outlier is replaced, and the replacement quarantines it: the same windows', async () => {
  const topics = await topicsFor('restart.');
  const refTopics = await topicsFor('restart-ref.');
  const session = await sessions.create({ ...sessionOpts, deviceId: 'dev-rs' });
  const control = await sessions.create({ ...sessionOpts, deviceId: 'dev-rs-ref' });
  const k = readings.findIndex((r) => Date.parse(r.timestamp) > start + 90_000);
  const at = Date.parse(readings[k].timestamp);
  const outlier: Extra = { recordedAt: at + 240_000, receivedAt: at, rr: [880, 910] };

  const ref = worker(refTopics, 'restart-ref-group');
  await ref.start();
  try {
    await publish(refTopics.heartReadings, control.id, 'dev-rs-ref', readings);
    await waitFor('the control flushed', () => ref.stats.readings === readings.length && ref.openSessionCount === 0, 30_000, 20);
    await ref.flush();
  } finally {
    await ref.stop();
  }

  // The first worker (no end marker in its lifetime) stops with the outlier held.
  const first = worker(topics, 'restart-group');
  await first.start();
  try {
    await publish(topics.heartReadings, session.id, 'dev-rs', [...readings.slice(0, k), outlier], false);
    await waitFor('the first worker to read its share', () => first.stats.readings === k + 1, 30_000, 20);
  } finally {
    await first.stop();
  }
  assert.equal(first.stats.quarantinedReadings, 0, 'still undecided when it stopped');
  assert.ok(first.stats.windows > 0);

  const second = worker(topics, 'restart-group');
  await second.start();
  try {
    await publish(topics.heartReadings, session.id, 'dev-rs', readings.slice(k));
    await waitFor('the replacement to flush', () => second.stats.quarantinedReadings === 1 && second.openSessionCount === 0 && second.stats.readings >= readings.length - k, 30_000, 20);
    await second.flush();
  } finally {
    await second.stop();
  }
  assert.deepEqual(await windowMetrics(session.id), await windowMetrics(control.id));
  const dl = await deadLetters(topics, 1);
  assert.deepEqual(dl.map((d) => [d.reason_code, d.consumer_group]), [['future_beat', 'restart-group']]);
});

test('a worker restarted after it quarantined an outlier quarantines it again in the replay: the clock guard restarts from its checkpointed clock, not from the last window published', async () => {
  const topics = await topicsFor('requarantine.');
  const refTopics = await topicsFor('requarantine-ref.');
  const session = await sessions.create({ ...sessionOpts, deviceId: 'dev-rq' });
  const control = await sessions.create({ ...sessionOpts, deviceId: 'dev-rq-ref' });
  // 60 s in, a reading dated 40 s ahead: past the 10 s horizon then, but behind the last window
  // the worker will have published when it stops at 140 s (~125 s): with the guard's clock
  // restarted there, the replay would take it as a late reading and put its beats in windows.
  const k = readings.findIndex((r) => Date.parse(r.timestamp) > start + 60_000);
  const at = Date.parse(readings[k].timestamp);
  const poisoned: Array<Reading | Extra> = [...readings.slice(0, k), { recordedAt: at + 40_000, receivedAt: at, rr: [880, 910] }, ...readings.slice(k)];
  const cut = poisoned.findIndex((r) => ('timestamp' in r ? Date.parse(r.timestamp) : r.recordedAt) > start + 140_000);

  const ref = worker(refTopics, 'requarantine-ref-group');
  await ref.start();
  try {
    await publish(refTopics.heartReadings, control.id, 'dev-rq-ref', poisoned);
    await waitFor('the uninterrupted run flushed', () => ref.stats.readings === poisoned.length && ref.openSessionCount === 0, 30_000, 20);
    await ref.flush();
  } finally {
    await ref.stop();
  }
  assert.equal(ref.stats.quarantinedReadings, 1);

  const first = worker(topics, 'requarantine-group');
  await first.start();
  try {
    await publish(topics.heartReadings, session.id, 'dev-rq', poisoned.slice(0, cut), false);
    await waitFor('the first worker to read its share', () => first.stats.readings === cut, 30_000, 20);
    await first.flush();
  } finally {
    await first.stop();
  }
  assert.equal(first.stats.quarantinedReadings, 1, 'quarantined before the stop, as in the uninterrupted run');
  assert.ok(first.stats.windows > 10);

  const second = worker(topics, 'requarantine-group');
  await second.start();
  try {
    await publish(topics.heartReadings, session.id, 'dev-rq', poisoned.slice(cut));
    await waitFor('the replacement to flush', () => second.openSessionCount === 0 && second.stats.readings >= poisoned.length - cut, 30_000, 20);
    await second.flush();
  } finally {
    await second.stop();
  }
  assert.ok(second.stats.readings > poisoned.length - k, `the replay covers the outlier (${second.stats.readings} readings read)`);
  assert.equal(second.stats.quarantinedReadings, 1, 'the replay quarantined it again');
  assert.deepEqual([second.stats.guardAnchored, second.stats.guardAnchorMisses], [1, 0], "the guard restarted from the checkpoint's anchor");
  assert.deepEqual(await windowMetrics(session.id), await windowMetrics(control.id));
});

type Merged = { j: number; t: number; i: number; r: Reading | Extra | null };
const timeOf = (r: Reading | Extra) => ('timestamp' in r ? Date.parse(r.timestamp) : (r.receivedAt ?? r.recordedAt));

/**
 * Three sessions in one partition, starting 0, 20 and 40 s apart (so the commit is held by
 * another session's beats than the one restarting), 400 s long (restarts far from a session's
 * first record, with the guard's clock well past its start), the first ending at 200 s while the
 * others go on (a replay reads its end again); outliers 12-90 s ahead every ~35 s. In partition
 * order, each session's end marker right after its last reading (`r` null).
 */
function threeSessionsWithOutliers(): Merged[] {
  const durations = [200, 400, 400];
  const series = [0, 1, 2].map((j) => {
    const rs = rsaReadings({ startMs: start + 250 + 20_000 * j, durationS: durations[j], breathHz: 0.1, seed: 40 + j });
    const out: Array<Reading | Extra> = [...rs];
    for (let i = 0, at = 25_000 + 7_000 * j; at < durations[j] * 1000 - 20_000; i++, at += 35_000) {
      const k = rs.findIndex((r) => Date.parse(r.timestamp) > start + 20_000 * j + at);
      const t = Date.parse(rs[k].timestamp);
      out.splice(k + i, 0, { recordedAt: t + [12_000, 40_000, 90_000, 25_000][i % 4], receivedAt: t, rr: [870, 905] });
    }
    // Every 45 s from 170 s on, two beats dated 150 s back arrive: older than any window still
    // open or its context, so they are dropped and counted late (late_beat_count).
    for (let at = 170_000 + 9_000 * j; at < durations[j] * 1000 - 5_000; at += 45_000) {
      const k = rs.findIndex((r) => Date.parse(r.timestamp) > start + 20_000 * j + at);
      const t = Date.parse(rs[k].timestamp);
      out.splice(out.indexOf(rs[k]), 0, { recordedAt: t - 150_000 + 437, receivedAt: t, rr: [880, 910] });
    }
    if (j === 0) {
      // 10 s before its end, one dated 20 s ahead: past the session's last beat, but within the
      // horizon of its last window, where an old-style restart would start the guard.
      const k = rs.findIndex((r) => Date.parse(r.timestamp) > start + durations[0] * 1000 - 10_000);
      const t = Date.parse(rs[k].timestamp);
      out.splice(out.indexOf(rs[k]), 0, { recordedAt: t + 20_000, receivedAt: t, rr: [870, 905] });
    }
    return out;
  });
  return series
    .flatMap((rs, j) => [...rs.map((r, i) => ({ j, r, t: timeOf(r), i })), { j, r: null, t: Math.max(...rs.map(timeOf)) + 1, i: rs.length }])
    .sort((a, b) => a.t - b.t || a.j - b.j || a.i - b.i);
}

/** Publishes merged[from, to) to the topic, for the sessions `ids` of the devices `${name}-d${j}`. */
async function sendMerged(topic: string, name: string, ids: string[], merged: Merged[], from: number, to: number): Promise<void> {
  const recs = [];
  for (const { j, r, t } of merged.slice(from, to)) {
    if (r) recs.push({ key: `${name}-d${j}`, value: await codec.encode(Topics.heartReadings, record(ids[j], `${name}-d${j}`, r)), timestamp: timeOf(r) });
    else recs.push(await endMarkerRecord(codec, { sessionId: ids[j], deviceId: `${name}-d${j}`, userId: 'u1', orgId: 'o1', endedAtMs: t - 1 }));
  }
  await bus.publish(topic, recs);
}

/** One-partition topics and three sessions (devices `${name}-d0..2`, session j started at `startedAt(j)`) for a run of interleaved sessions. */
async function threeSessionRun(name: string, startedAt: (j: number) => number = () => start): Promise<{ topics: TopicNames; ids: string[] }> {
  const repo = new DevicesRepository(entities.client);
  const topics = prefixedTopics(`${name}.`);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
  const ids: string[] = [];
  for (let j = 0; j < 3; j++) {
    await repo.register({ id: `${name}-d${j}`, orgId: 'o1', userId: 'u1' });
    ids.push((await sessions.create({ ...sessionOpts, startedAt: startedAt(j), deviceId: `${name}-d${j}` })).id);
  }
  return { topics, ids };
}

test("restarts at several points of one partition holding three sessions with outliers 12-90 s ahead, one ending early: every run stores the uninterrupted run's windows", async () => {
  const merged = threeSessionsWithOutliers();
  async function run(name: string, cuts: number[]) {
    const { topics, ids } = await threeSessionRun(name);
    let anchored = 0;
    let quarantined = 0;
    await runMergedSegments(name, topics, ids, merged, cuts, (w) => {
      anchored += w.stats.guardAnchored;
      quarantined += w.stats.quarantinedReadings;
      assert.equal(w.stats.guardAnchorMisses, 0, `${name}: every restarted session found its anchor`);
    });
    return { windows: await Promise.all(ids.map((id) => windowMetrics(id, true))), anchored, quarantined };
  }
  const ref = await run('rqm-ref', []);
  assert.deepEqual(ref.windows.map((w) => w.length > 30), [true, true, true]);
  assert.ok(ref.quarantined >= 20, `${ref.quarantined} outliers quarantined in the uninterrupted run`);
  // late_beat_count is cumulative per session: a restart must continue it, not count from 0.
  // Every beat of the readings dated back is late (the generator's, counted here).
  const lastLate = ref.windows.map((ws) => Number(ws[ws.length - 1].late_beat_count));
  const datedBack = [0, 1, 2].map((j) => merged.filter((m) => m.j === j && m.r !== null && !('timestamp' in m.r) && m.r.recordedAt < (m.r.receivedAt ?? 0)).reduce((n, m) => n + (m.r as Extra).rr.length, 0));
  assert.ok(datedBack.every((n) => n > 0));
  assert.deepEqual(lastLate, datedBack, 'late beats counted in the uninterrupted run');
  const n = merged.length;
  const endOfFirst = merged.findIndex((m) => m.j === 0 && m.r === null);
  for (const cuts of [[Math.round(n * 0.3)], [endOfFirst + 5], [endOfFirst + 40], [Math.round(n * 0.7)], [Math.round(n * 0.9)], [Math.round(n * 0.45), Math.round(n * 0.8)]]) {
    const got = await run(`rqm-${cuts.join('-')}`, cuts);
    assert.ok(got.anchored >= cuts.length, `${got.anchored} sessions restarted from an anchor`);
    for (let j = 0; j < 3; j++) assert.deepEqual(got.windows[j], ref.windows[j], `cuts ${cuts}: session ${j}`);
  }
});

test("the readings sink restarted at several points, or after losing its commits, stores and quarantines exactly the uninterrupted run's readings", async () => {
  // The worker's restart test above, for the sink: its guard restarts from each session's newest
  // stored beat, which after a replay from an older commit (one another session's held reading
  // kept back, or commits lost in a crash) lies ahead of where the replay starts; before
  // heart_readings_quarantined, outliers the first run had quarantined were judged from it again
  // and stored.
  const merged = threeSessionsWithOutliers();
  const storedIds = async (sessionId: string) => {
    const rs = await store.client.query({
      query: `SELECT DISTINCT reading_id FROM ${store.database}.heart_readings FINAL WHERE session_id = {s:String} ORDER BY reading_id`,
      query_params: { s: sessionId },
      format: 'JSONEachRow',
    });
    return ((await rs.json()) as Array<{ reading_id: string }>).map((r) => r.reading_id);
  };
  const quarantinedRows = async (sessionId: string) => {
    const rs = await store.client.query({
      query: `SELECT reading_id, toUnixTimestamp64Milli(session_clock_at) AS clock, reason, source_offset, source_index
              FROM ${store.database}.heart_readings_quarantined FINAL WHERE session_id = {s:String} ORDER BY source_offset, source_index`,
      query_params: { s: sessionId },
      format: 'JSONEachRow',
    });
    return (await rs.json()) as Array<{ reading_id: string; clock: string | number; reason: string; source_offset: string | number; source_index: number }>;
  };
  async function run(name: string, cuts: number[], commitsLost: boolean) {
    const { topics, ids } = await threeSessionRun(name);
    const bounds = [0, ...cuts, merged.length];
    const drop = { on: false };
    let again = 0;
    let quarantined = 0;
    for (let c = 1; c < bounds.length; c++) {
      // With commitsLost, every segment but the last loses its commits: the next process
      // replays from the commit before it, with all of the segment's rows stored.
      drop.on = commitsLost && c < bounds.length - 1;
      const sink = new ReadingsSink({ bus: commitDropping(bus, drop), topics, codec, store, sessions, progress, log: silentLogger, groupId: `${name}-sink`, writer: { maxDelayMs: 20 } });
      await sink.start();
      try {
        await sendMerged(topics.heartReadings, name, ids, merged, bounds[c - 1], bounds[c]);
        // (A replay's records count too, so a sink may stop a little before its cut: that only
        // moves the restart point.)
        await waitFor(`${name}: records up to ${bounds[c]} handled`, () => sink.stats.records >= bounds[c] - bounds[c - 1], 60_000, 20);
        await sink.flush();
      } finally {
        await sink.stop();
      }
      again += (sink.stats as any).quarantinedAgain ?? 0;
      quarantined += sink.stats.quarantined - ((sink.stats as any).quarantinedAgain ?? 0);
    }
    const outliers = ids.map((_, j) =>
      // The readings dated ahead (those dated back are late, not outliers).
      merged.filter((m) => m.j === j && m.r !== null && !('timestamp' in m.r) && m.r.recordedAt > (m.r.receivedAt ?? m.r.recordedAt)).map((m) => readingId('o1', `${name}-d${j}`, (m.r as Extra).recordedAt)),
    );
    return { stored: await Promise.all(ids.map((id) => storedIds(id))), quarantinedRows: await Promise.all(ids.map((id) => quarantinedRows(id))), again, quarantined, ids, outliers };
  }
  const ref = await run('srq-ref', [], false);
  assert.ok(ref.quarantined >= 20, `${ref.quarantined} outliers quarantined in the uninterrupted run`);
  for (let j = 0; j < 3; j++) {
    // Every outlier of the input is quarantined and listed, none stored (the 12-90 s jumps are never confirmed).
    assert.deepEqual(ref.quarantinedRows[j].map((q) => q.reading_id).sort(), [...ref.outliers[j]].sort(), `session ${j}: the quarantined readings listed`);
    assert.ok(ref.quarantinedRows[j].every((q) => q.reason === 'future_beat' && Number(q.clock) > start));
    assert.ok(ref.outliers[j].every((id) => !ref.stored[j].includes(id)));
  }
  const n = merged.length;
  const endOfFirst = merged.findIndex((m) => m.j === 0 && m.r === null);
  let againTotal = 0;
  for (const [cuts, lost] of [
    [[Math.round(n * 0.3)], false],
    [[endOfFirst + 5], true],
    [[Math.round(n * 0.55)], true],
    [[Math.round(n * 0.9)], false],
    [[Math.round(n * 0.2), Math.round(n * 0.45), Math.round(n * 0.8)], true],
  ] as Array<[number[], boolean]>) {
    const got = await run(`srq-${cuts.join('-')}-${lost}`, cuts, lost);
    againTotal += got.again;
    // The reading ids carry the device, which differs per run: compare by position in the input.
    for (let j = 0; j < 3; j++) {
      const position = (run: { stored: string[][] }, name: string) => {
        const byId = new Map(merged.filter((m) => m.j === j && m.r).map((m, k) => [readingId('o1', `${name}-d${j}`, 'timestamp' in m.r! ? Date.parse(m.r!.timestamp) : m.r!.recordedAt), k]));
        return run.stored[j].map((id) => byId.get(id)).sort((a, b) => a! - b!);
      };
      assert.deepEqual(position(got, `srq-${cuts.join('-')}-${lost}`), position(ref, 'srq-ref'), `cuts ${cuts}${lost ? ', commits lost' : ''}: session ${j}'s stored readings`);
      assert.equal(got.quarantinedRows[j].length, ref.quarantinedRows[j].length, `cuts ${cuts}${lost ? ', commits lost' : ''}: session ${j}'s quarantined readings`);
      assert.deepEqual(got.quarantinedRows[j].map((q) => Number(q.clock)), ref.quarantinedRows[j].map((q) => Number(q.clock)), `cuts ${cuts}: the same clocks`);
    }
  }
  // The path under test was taken: replays met readings a run before had quarantined.
  assert.ok(againTotal >= 5, `${againTotal} replayed readings quarantined again`);
});

test('the readings sink decides a reading after a session was let go the same whether it comes in the same batch as the end or in a later one', async () => {
  // Before 2026-12-05 a session let go earlier in the same batch got a guard with no clock (the
  // reading 30 s ahead went through and was stored), and in a later batch one started at its
  // newest stored beat (the same reading was held and quarantined): the answer depended on where
  // the bus cut its batches. Now the guard restarts from the clock it had, in both.
  const oneTopics = await topicsFor('sink-letgo-one.');
  const twoTopics = await topicsFor('sink-letgo-two.');
  const one = await sessions.create({ ...sessionOpts, deviceId: 'dev-lg-one' });
  const two = await sessions.create({ ...sessionOpts, deviceId: 'dev-lg-two' });
  const before = readings.slice(0, 60);
  const last = Date.parse(before[before.length - 1].timestamp);
  const ahead: Extra = { recordedAt: last + 30_000, receivedAt: last, rr: [870, 905] };
  const after: Array<Reading | Extra> = [ahead, readings[60], readings[61]];
  // Everything in one batch: published before the sink starts (one read takes up to 5,000 records).
  await publish(oneTopics.heartReadings, one.id, 'dev-lg-one', before);
  await publish(oneTopics.heartReadings, one.id, 'dev-lg-one', after, false);
  const sinkOne = new ReadingsSink({ bus, topics: oneTopics, codec, store, sessions, log: silentLogger, groupId: 'sink-letgo-one', writer: { maxDelayMs: 20 } });
  const sinkTwo = new ReadingsSink({ bus, topics: twoTopics, codec, store, sessions, log: silentLogger, groupId: 'sink-letgo-two', writer: { maxDelayMs: 20 } });
  await sinkOne.start();
  await sinkTwo.start();
  try {
    await waitFor('one batch read', () => sinkOne.stats.readings === before.length + after.length, 30_000, 20);
    // The end in one batch, what follows in a later one.
    await publish(twoTopics.heartReadings, two.id, 'dev-lg-two', before);
    await waitFor('the first part read', () => sinkTwo.stats.endMarkers === 1, 30_000, 20);
    await sinkTwo.flush();
    await publish(twoTopics.heartReadings, two.id, 'dev-lg-two', after, false);
    await waitFor('the rest read', () => sinkTwo.stats.readings === before.length + after.length, 30_000, 20);
    await sinkOne.flush();
    await sinkTwo.flush();
  } finally {
    await sinkOne.stop();
    await sinkTwo.stop();
  }
  const storedCount = async (sessionId: string, readingIdOf: string) => {
    const rs = await store.client.query({
      query: `SELECT countIf(reading_id = {r:String}) AS ahead, uniqExact(reading_id) AS readings FROM ${store.database}.heart_readings FINAL WHERE session_id = {s:String}`,
      query_params: { s: sessionId, r: readingIdOf },
      format: 'JSONEachRow',
    });
    const [row] = (await rs.json()) as Array<{ ahead: string | number; readings: string | number }>;
    return { ahead: Number(row.ahead), readings: Number(row.readings) };
  };
  const gotOne = await storedCount(one.id, readingId('o1', 'dev-lg-one', ahead.recordedAt));
  const gotTwo = await storedCount(two.id, readingId('o1', 'dev-lg-two', ahead.recordedAt));
  assert.deepEqual(gotOne, gotTwo, 'the same answer whatever the batches');
  assert.deepEqual(gotOne, { ahead: 0, readings: before.length + 2 }, 'the reading 30 s ahead is quarantined, every other reading stored');
  assert.equal(sinkOne.stats.quarantined, 1);
  assert.equal(sinkTwo.stats.quarantined, 1);
});

test('a device that really resumes after a 10-minute gap keeps its windows: the jump is confirmed, no beat is lost', async () => {
  const topics = await topicsFor('gap.');
  const offTopics = await topicsFor('gap-off.');
  const gapped = await sessions.create({ ...sessionOpts, deviceId: 'dev-gap' });
  const reference = await sessions.create({ ...sessionOpts, deviceId: 'dev-gap-ref' });
  const lastBefore = Date.parse(readings[readings.length - 1].timestamp);
  const resumed = rsaReadings({ startMs: lastBefore + 600_000, durationS: 120, breathHz: 0.1, seed: 5 });
  const series = [...readings, ...resumed];

  const w = worker(topics, 'gap-group');
  const off = worker(offTopics, 'gap-off-group', { confirmReadings: 1 });
  await w.start();
  await off.start();
  try {
    await publish(topics.heartReadings, gapped.id, 'dev-gap', series);
    await publish(offTopics.heartReadings, reference.id, 'dev-gap-ref', series);
    await waitFor('the gapped session flushed', () => w.stats.readings === series.length && w.openSessionCount === 0, 30_000, 20);
    await waitFor('the reference flushed', () => off.stats.readings === series.length && off.openSessionCount === 0, 30_000, 20);
    await w.flush();
    await off.flush();
  } finally {
    await w.stop();
    await off.stop();
  }
  const expected = await windowMetrics(reference.id);
  const got = await windowMetrics(gapped.id);
  const afterGap = expected.filter((r) => Number(r.end_ms) > lastBefore + 600_000);
  assert.ok(afterGap.length > 20 && afterGap.some((r) => Boolean(r.valid)), `windows after the gap: ${afterGap.length}`);
  assert.deepEqual(got, expected, 'the same windows as without the guard, those after the gap included');
  assert.equal(w.stats.quarantinedReadings, 0);
  assert.equal(w.stats.confirmedJumps, 1);
  assert.equal(w.stats.deadLettered, 0);
});

test('the readings sink applies the clock guard too: the raw beats of the forged future reading are not stored, every other reading is (and a confirmed jump is)', async () => {
  const topics = await topicsFor('sink-guard.');
  const forged = await sessions.create({ ...sessionOpts, deviceId: 'dev-sg' });
  const resumed = await sessions.create({ ...sessionOpts, deviceId: 'dev-sg-gap' });
  // As in the first test: 60 s in, one reading dated 240 s ahead (received then, so plausible).
  const k = readings.findIndex((r) => Date.parse(r.timestamp) > start + 60_000);
  const at = Date.parse(readings[k].timestamp);
  const outlier: Extra = { recordedAt: at + 240_000, receivedAt: at, rr: [880, 910] };
  const poisoned: Array<Reading | Extra> = [...readings.slice(0, k), outlier, ...readings.slice(k)];
  // A device that really resumes 10 minutes later: the jump is confirmed, every reading kept.
  const later = rsaReadings({ startMs: start + 250 + 600_000 + 150_000, durationS: 60, breathHz: 0.1, seed: 22 });
  const gapped = [...readings, ...later];
  const guarded = new ReadingsSink({ bus, topics, codec, store, sessions, log: silentLogger, groupId: 'sink-guard', writer: { maxDelayMs: 20 } });
  // The control: the same sink without the guard stores the forged beats (the behaviour before).
  const offTopics = await topicsFor('sink-guard-off.');
  const unguarded = new ReadingsSink({ bus, topics: offTopics, codec, store, log: silentLogger, groupId: 'sink-guard-off', writer: { maxDelayMs: 20 } });
  const unguardedSession = await sessions.create({ ...sessionOpts, deviceId: 'dev-sg-off' });
  await guarded.start();
  await unguarded.start();
  try {
    await publish(topics.heartReadings, forged.id, 'dev-sg', poisoned);
    await publish(topics.heartReadings, resumed.id, 'dev-sg-gap', gapped);
    await publish(offTopics.heartReadings, unguardedSession.id, 'dev-sg-off', poisoned);
    await waitFor('the guarded sink to read everything', () => guarded.stats.readings === poisoned.length + gapped.length && guarded.stats.endMarkers === 2, 30_000, 20);
    await waitFor('the unguarded sink to read everything', () => unguarded.stats.readings === poisoned.length, 30_000, 20);
    await guarded.flush();
    await unguarded.flush();
  } finally {
    await guarded.stop();
    await unguarded.stop();
  }
  const storedIds = async (sessionId: string) => {
    const rs = await store.client.query({
      query: `SELECT DISTINCT reading_id FROM ${store.database}.heart_readings FINAL WHERE session_id = {s:String}`,
      query_params: { s: sessionId },
      format: 'JSONEachRow',
    });
    return new Set(((await rs.json()) as Array<{ reading_id: string }>).map((r) => r.reading_id));
  };
  const forgedId = (device: string) => readingId('o1', device, outlier.recordedAt);
  const idsOf = (device: string, series: Array<Reading | Extra>) => series.map((r) => readingId('o1', device, 'timestamp' in r ? Date.parse(r.timestamp) : r.recordedAt));
  const off = await storedIds(unguardedSession.id);
  assert.ok(off.has(forgedId('dev-sg-off')), 'without the guard the forged reading is stored (the input reproduces the limitation)');
  const got = await storedIds(forged.id);
  assert.ok(!got.has(forgedId('dev-sg')), 'the forged reading is not stored');
  assert.deepEqual([...got].sort(), idsOf('dev-sg', readings).sort(), 'every other reading is');
  assert.equal(guarded.stats.quarantined, 1);
  assert.deepEqual([...(await storedIds(resumed.id))].sort(), idsOf('dev-sg-gap', gapped).sort(), 'a confirmed jump loses no reading');
  assert.equal(guarded.stats.held, 0);
});

test('RR −5 ms, RR 99,999 ms, HR 300 and a reading dated a year ahead are dead-lettered by the worker and the sink, never stored', async () => {
  const topics = await topicsFor('implausible.');
  const session = await sessions.create({ ...sessionOpts, deviceId: 'dev-bad' });
  const clean = await sessions.create({ ...sessionOpts, deviceId: 'dev-bad-ref' });
  const t0 = Date.parse(readings[20].timestamp);
  const bad: Extra[] = [
    { recordedAt: t0 + 100, rr: [-5] },
    { recordedAt: t0 + 200, rr: [99_999] },
    { recordedAt: t0 + 300, rr: [900], hr: 300 },
    { recordedAt: t0 + 365 * 86_400_000, receivedAt: t0 + 400, rr: [900] },
  ];
  const series: Array<Reading | Extra> = [...readings.slice(0, 20), ...bad, ...readings.slice(20)];
  const w = worker(topics, 'implausible-worker');
  const sink = new ReadingsSink({ bus, topics, codec, store, log: silentLogger, groupId: 'implausible-sink', writer: { maxDelayMs: 20 } });
  await w.start();
  await sink.start();
  try {
    await publish(topics.heartReadings, session.id, 'dev-bad', series);
    await publish(topics.heartReadings, clean.id, 'dev-bad-ref', readings);
    const total = series.length + readings.length;
    await waitFor('the worker to read everything', () => w.stats.readings === total && w.openSessionCount === 0, 30_000, 20);
    await waitFor('the sink to read everything', () => sink.stats.readings + sink.stats.implausible === total, 30_000, 20);
    await w.flush();
    await sink.flush();
  } finally {
    await w.stop();
    await sink.stop();
  }
  assert.equal(w.stats.implausibleReadings, 4);
  assert.equal(sink.stats.implausible, 4);
  assert.equal(w.stats.quarantinedReadings, 0, 'the year-ahead reading was refused as implausible before the guard saw it');

  const badIds = bad.map((b) => readingId('o1', 'dev-bad', b.recordedAt));
  const rs = await store.client.query({
    query: `SELECT reading_id, count() AS n FROM ${store.database}.heart_readings WHERE session_id = {s:String} GROUP BY reading_id`,
    query_params: { s: session.id },
    format: 'JSONEachRow',
  });
  const stored = new Set(((await rs.json()) as Array<{ reading_id: string }>).map((r) => r.reading_id));
  assert.equal(stored.size, readings.length, 'every plausible reading stored');
  for (const id of badIds) assert.ok(!stored.has(id), `implausible reading ${id} not stored`);

  const dl = await deadLetters(topics, 8);
  const summary = dl.map((d) => `${d.consumer_group} ${d.reason_code}`).sort();
  assert.deepEqual(summary, [
    'implausible-sink implausible_hr',
    'implausible-sink implausible_rr',
    'implausible-sink implausible_rr',
    'implausible-sink implausible_timestamp',
    'implausible-worker implausible_hr',
    'implausible-worker implausible_rr',
    'implausible-worker implausible_rr',
    'implausible-worker implausible_timestamp',
  ]);
  assert.ok(dl.some((d) => /RR -5 ms/.test(d.reason)) && dl.some((d) => /RR 99999 ms/.test(d.reason)));

  // The windows are those of the clean readings alone: no bad beat reached them.
  const windows = await windowMetrics(session.id);
  assert.ok(windows.length > 20);
  assert.deepEqual(windows, await windowMetrics(clean.id));
});

test('records of another schema on the readings topic are dead-lettered (invalid_record) by the worker and the sink, and the partition goes on', async () => {
  const topics = await topicsFor('wrong-schema.');
  const session = await sessions.create({ ...sessionOpts, deviceId: 'dev-ws' });
  const t = Date.parse(readings[10].timestamp);
  const window = await codec.encode(Topics.coherenceWindows, {
    session_id: session.id, user_id: 'u1', org_id: 'o1', device_id: 'dev-ws', window_start: t - 64_000, window_end: t,
    valid: false, beat_count: 0, artifact_ratio: 0,
  });
  const event = await codec.encode(Topics.sessionEvents, { event_id: 'e1', session_id: session.id, user_id: 'u1', org_id: 'o1', type: 'x', occurred_at: t });
  await publish(topics.heartReadings, session.id, 'dev-ws', readings.slice(0, 10), false);
  await bus.publish(topics.heartReadings, [{ key: 'dev-ws', value: window, timestamp: t }, { key: 'dev-ws', value: event, timestamp: t }]);
  await publish(topics.heartReadings, session.id, 'dev-ws', readings.slice(10));
  const w = worker(topics, 'wrong-schema-worker');
  const sink = new ReadingsSink({ bus, topics, codec, store, log: silentLogger, groupId: 'wrong-schema-sink', writer: { maxDelayMs: 20 } });
  await w.start();
  await sink.start();
  try {
    await waitFor('the worker to get past them', () => w.stats.readings === readings.length && w.stats.deadLettered === 2 && w.openSessionCount === 0, 30_000, 20);
    await waitFor('the sink to get past them', () => sink.stats.readings === readings.length && sink.stats.deadLettered === 2, 30_000, 20);
    await w.flush();
    await sink.flush();
  } finally {
    await w.stop();
    await sink.stop();
  }
  assert.ok(w.stats.windows > 20);
  const dl = await deadLetters(topics, 4);
  assert.deepEqual(dl.map((d) => `${d.consumer_group} ${d.reason_code}`).sort(), [
    'wrong-schema-sink invalid_record',
    'wrong-schema-sink invalid_record',
    'wrong-schema-worker invalid_record',
    'wrong-schema-worker invalid_record',
  ]);
  assert.ok(dl.every((d) => /not a HeartReading record/.test(d.reason)), dl.map((d) => d.reason).join('; '));
});

/**
 * One partition: device d0 uploads a recording made 30 minutes before d1's, which streams at
 * the same time; their readings arrive interleaved, one of each in turn.
 */
function laggingPair(): Merged[] {
  const behind = rsaReadings({ startMs: start + 250 - 1_800_000, durationS: 400, breathHz: 0.1, seed: 61 });
  const live = rsaReadings({ startMs: start + 250, durationS: 400, breathHz: 0.1, seed: 62 });
  const out: Merged[] = [];
  const n = Math.max(behind.length, live.length);
  for (let i = 0; i < n; i++) {
    if (i < behind.length) out.push({ j: 0, r: behind[i], t: out.length, i });
    if (i < live.length) out.push({ j: 1, r: live[i], t: out.length, i });
  }
  out.push({ j: 0, r: null, t: timeOf(behind[behind.length - 1]) + 1, i: behind.length });
  out.push({ j: 1, r: null, t: timeOf(live[live.length - 1]) + 1, i: live.length });
  return out;
}

test("a session uploading a recording 30 minutes behind another of its partition's, interleaved with it, is not ended for silence at every reading of the other: its windows are those it has alone, through restarts too", async () => {
  const merged = laggingPair();
  async function run(name: string, devices: number[], cuts: number[]) {
    const repo = new DevicesRepository(entities.client);
    const topics = prefixedTopics(`${name}.`);
    await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
    const ids: string[] = [];
    for (let j = 0; j < 2; j++) {
      await repo.register({ id: `${name}-d${j}`, orgId: 'o1', userId: 'u1' });
      ids.push((await sessions.create({ ...sessionOpts, startedAt: j === 0 ? start - 1_800_000 : start, deviceId: `${name}-d${j}` })).id);
    }
    const input = merged.filter((m) => devices.includes(m.j));
    let idleEnded = 0;
    await runMergedSegments(name, topics, ids, input, cuts, (w) => (idleEnded += w.stats.idleEndedSessions));
    return { windows: await Promise.all(ids.map((id) => windowMetrics(id, true))), idleEnded };
  }
  const alone = await run('lag-alone', [0], []);
  const together = await run('lag-both', [0, 1], []);
  const valid = (ws: Array<{ valid: boolean | number }>) => ws.filter((w) => Boolean(w.valid)).length;
  assert.ok(alone.windows[0].length > 70 && valid(alone.windows[0]) > 60, `alone: ${alone.windows[0].length} windows, ${valid(alone.windows[0])} valid`);
  assert.equal(together.idleEnded, 0, 'neither session was silent');
  assert.deepEqual(together.windows[0], alone.windows[0], 'the session behind has the windows it has alone');
  const n = merged.length;
  for (const cuts of [[Math.round(n * 0.35)], [Math.round(n * 0.2), Math.round(n * 0.7)]]) {
    const got = await run(`lag-${cuts.join('-')}`, [0, 1], cuts);
    assert.deepEqual(got.windows, together.windows, `cuts ${cuts}`);
  }
});

test("a session's threshold settings changed mid-stream (a settings marker in its partition) judge the windows closed after the marker, in an uninterrupted run and through restarts alike", async () => {
  const series = rsaReadings({ startMs: start + 250, durationS: 400, breathHz: 0.1, seed: 71 });
  const at = series.findIndex((r) => Date.parse(r.timestamp) > start + 200_000);
  const events = async (sessionId: string) => {
    const rs = await store.client.query({
      query: `SELECT event_id, type, toUnixTimestamp64Milli(occurred_at) AS at_ms, payload_json FROM ${store.database}.session_events FINAL WHERE session_id = {s:String} ORDER BY occurred_at`,
      query_params: { s: sessionId },
      format: 'JSONEachRow',
    });
    return (await rs.json()) as Array<{ event_id: string; type: string; at_ms: string | number; payload_json: string }>;
  };
  /** Readings, the settings marker (version 2, and again, and an older version 1 after it: neither changes anything), the end marker; cut into worker runs at `cuts`. */
  async function run(name: string, cuts: number[], withMarker = true, opts: { patchedBefore?: boolean; markerFirst?: boolean; deviceless?: boolean } = {}) {
    const topics = prefixedTopics(`${name}.`);
    // A session without a device: its markers in each of 3 partitions, as the relay writes them.
    const partitions = opts.deviceless ? 3 : 1;
    await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions })));
    const device = `${name}-d`;
    await new DevicesRepository(entities.client).register({ id: device, orgId: 'o1', userId: 'u1' });
    // Unreachable at first: 0.99 held 30 s; then 0.3 held 10 s.
    const session = await sessions.create({ ...sessionOpts, coherenceThreshold: 0.99, thresholdDurationS: 30, ...(opts.deviceless ? {} : { deviceId: device }) });
    // The row already at version 2 when the worker first sees the session (a worker behind the PATCH).
    if (opts.patchedBefore) await sessions.update(session.id, { coherenceThreshold: 0.3, thresholdDurationS: 10 });
    const markedKeys = opts.deviceless ? keysCoveringPartitions(partitions, 'settings-marker-') : [device];
    const marker = (version: number) =>
      Promise.all(
        markedKeys.map((key) =>
          settingsMarkerRecord(codec, { sessionId: session.id, deviceId: opts.deviceless ? '' : device, key, userId: 'u1', orgId: 'o1', coherenceThreshold: version === 2 ? 0.3 : 0.8, thresholdDurationS: version === 2 ? 10 : 20, version, changedAtMs: start + 200_000 }),
        ),
      );
    const recs: OutgoingRecord[] = [];
    if (opts.markerFirst) recs.push(...(await marker(2)));
    for (let i = 0; i < series.length; i++) {
      if (withMarker && i === at) recs.push(...(await marker(2)), ...(await marker(2)));
      if (withMarker && i === at + 20) recs.push(...(await marker(1)));
      recs.push({ key: device, value: await codec.encode(Topics.heartReadings, record(session.id, device, series[i])), timestamp: Date.parse(series[i].timestamp) });
    }
    for (const key of markedKeys) recs.push(await endMarkerRecord(codec, { sessionId: session.id, deviceId: opts.deviceless ? '' : device, key, userId: 'u1', orgId: 'o1', endedAtMs: Date.parse(series[series.length - 1].timestamp) }));
    let applied = 0;
    await runSegments({
      name,
      topics,
      count: recs.length,
      cuts,
      send: (from, to) => bus.publish(topics.heartReadings, recs.slice(from, to)),
      expected: (from, to) => to - from,
      seen: (w) => w.stats.readings + w.stats.settingsMarkers + w.stats.endMarkers,
      done: (w) => (applied += w.stats.settingsApplied),
    });
    return { events: await events(session.id), windows: await windowMetrics(session.id, true), applied };
  }
  const unchanged = await run('settings-none', [], false);
  assert.equal(unchanged.events.length, 0, 'nothing reaches 0.99');
  const ref = await run('settings-ref', []);
  assert.equal(ref.applied, 1, 'version 2 applied once; its copy and the older version 1 changed nothing');
  assert.ok(ref.events.length >= 1, `${ref.events.length} events after the change`);
  const markerAt = Date.parse(series[at].timestamp);
  for (const e of ref.events) {
    const p = JSON.parse(e.payload_json);
    assert.deepEqual([p.threshold, p.hold_s], [0.3, 10], e.payload_json);
    // Windows close 15 s of beats after their end (lateness and lookahead): those closed after
    // the marker end after it, less that.
    assert.ok(Number(e.at_ms) > markerAt - 15_000, `event at ${Number(e.at_ms) - start} ms, the marker at ${markerAt - start} ms`);
  }
  assert.deepEqual(ref.windows, unchanged.windows, 'settings change no window');
  /** Events equal but for the session id that begins their ids. */
  const sameEvents = (got: typeof ref.events, want: typeof ref.events) => {
    const strip = (es: typeof ref.events) => es.map((e) => ({ ...e, event_id: e.event_id.split(':').slice(1).join(':') }));
    assert.deepEqual(strip(got), strip(want));
  };
  const n = series.length + 4;
  for (const cuts of [[at - 30], [at + 1], [at + 2, at + 60], [Math.round(n * 0.8)]]) {
    const got = await run(`settings-${cuts.join('-')}`, cuts);
    assert.deepEqual(got.events, ref.events.map((e) => ({ ...e, event_id: e.event_id.replace(/^[^:]+/, got.events[0]?.event_id.split(':')[0] ?? '') })), `cuts ${cuts}: the same events`);
  }
  // A worker that first sees the session after the PATCH reached PostgreSQL, but before its
  // marker reached the partition, judges the windows before the marker by the settings the
  // session was created with: the same events as one that kept up.
  const behind = await run('settings-behind', [], true, { patchedBefore: true });
  sameEvents(behind.events, ref.events);
  // The marker before the session's first reading (the PATCH came first): the new settings from
  // its first window, in an uninterrupted run and with a restart right after the marker.
  const first = await run('settings-first', [], true, { markerFirst: true });
  assert.ok(first.events.length >= 1 && Number(first.events[0].at_ms) < markerAt - 15_000, `an event before the mid-stream marker: ${first.events.map((e) => Number(e.at_ms) - start)}`);
  const firstCut = await run('settings-first-cut', [1], true, { markerFirst: true });
  sameEvents(firstCut.events, first.events);
  // A session without a device (the platform document's): its markers in every partition, its
  // readings in one. The same events as with a device, mid-stream and before its first reading,
  // with restarts between the copies and after them.
  for (const cuts of [[], [at + 2], [at + 7]]) sameEvents((await run(`settings-bare-${cuts.join('-')}`, cuts, true, { deviceless: true })).events, ref.events);
  for (const cuts of [[], [2], [3]]) sameEvents((await run(`settings-bare-first-${cuts.join('-')}`, cuts, true, { markerFirst: true, deviceless: true })).events, first.events);
});

test("readings after a session's end marker revive it the same whether they come in the batch of the end or in a later one", async () => {
  const series = rsaReadings({ startMs: start + 250, durationS: 300, breathHz: 0.1, seed: 81 });
  const endAt = series.findIndex((r) => Date.parse(r.timestamp) > start + 150_000);
  async function run(name: string, split: boolean) {
    const topics = prefixedTopics(`${name}.`);
    await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
    const device = `${name}-d`;
    await new DevicesRepository(entities.client).register({ id: device, orgId: 'o1', userId: 'u1' });
    const session = await sessions.create({ ...sessionOpts, coherenceThreshold: 0.3, thresholdDurationS: 10, deviceId: device });
    const enc = async (r: Reading) => ({ key: device, value: await codec.encode(Topics.heartReadings, record(session.id, device, r)), timestamp: Date.parse(r.timestamp) });
    const first = [];
    for (const r of series.slice(0, endAt)) first.push(await enc(r));
    // The end call after the first 150 s; the device syncs the rest after it (late for the
    // session's windows: they revive it, and windows up to its last one are not stored again).
    first.push(await endMarkerRecord(codec, { sessionId: session.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: Date.parse(series[endAt - 1].timestamp) }));
    const rest = [];
    for (const r of series.slice(endAt)) rest.push(await enc(r));
    const w = worker(topics, `${name}-group`);
    await w.start();
    try {
      if (split) {
        await bus.publish(topics.heartReadings, first);
        await waitFor(`${name}: the first end read`, () => w.stats.endMarkers >= 1, 30_000, 20);
        await bus.publish(topics.heartReadings, rest);
      } else await bus.publish(topics.heartReadings, [...first, ...rest]);
      // (The revived session stays open: its windows close by the watermark, its last ones at an idle end.)
      await waitFor(`${name}: read`, () => w.stats.readings >= series.length, 60_000, 20);
      await w.flush();
    } finally {
      await w.stop();
    }
    const rs = await store.client.query({
      query: `SELECT toUnixTimestamp64Milli(occurred_at) AS at_ms, payload_json FROM ${store.database}.session_events FINAL WHERE session_id = {s:String} ORDER BY occurred_at`,
      query_params: { s: session.id },
      format: 'JSONEachRow',
    });
    return { windows: await windowMetrics(session.id, true), events: await rs.json(), revivedInBatch: (w.stats as any).revivedInBatch ?? 0 };
  }
  const split = await run('revive-split', true);
  const oneBatch = await run('revive-one', false);
  const endMs = Date.parse(series[endAt - 1].timestamp);
  assert.ok(split.windows.some((w) => Number(w.end_ms) > endMs + 60_000), 'windows after the end: the session was revived');
  assert.deepEqual(oneBatch.windows, split.windows);
  assert.deepEqual(oneBatch.events, split.events);
  assert.equal(oneBatch.revivedInBatch, 1, 'revived in the batch of its end');
});

test("late beats counted before a session's end go on in the windows of its revival: in the batch of the end, in a later one, and after a restart between", async () => {
  const series: Array<Reading | Extra> = [...rsaReadings({ startMs: start + 250, durationS: 300, breathHz: 0.1, seed: 83 })];
  // Two beats dated 150 s back at 100 s and at 120 s (before the end at 150 s), and two at 250 s
  // (after it, in the revived session): each older than every window still open, so late.
  for (const at of [100_000, 120_000, 250_000]) {
    const k = series.findIndex((r) => 'timestamp' in r && Date.parse(r.timestamp) > start + at);
    const t = Date.parse((series[k] as Reading).timestamp);
    series.splice(k, 0, { recordedAt: t - 150_000 + 437, receivedAt: t, rr: [880, 910] });
  }
  const endAt = series.findIndex((r) => 'timestamp' in r && Date.parse(r.timestamp) > start + 150_000);
  const endMs = timeOf(series[endAt - 1]);
  const datedBack = (rs: Array<Reading | Extra>) => rs.reduce((n, r) => n + ('timestamp' in r ? 0 : r.rr.length), 0);
  async function run(name: string, mode: 'one' | 'split' | 'restart') {
    const topics = prefixedTopics(`${name}.`);
    await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
    const device = `${name}-d`;
    await new DevicesRepository(entities.client).register({ id: device, orgId: 'o1', userId: 'u1' });
    await new DevicesRepository(entities.client).register({ id: `${name}-o`, orgId: 'o1', userId: 'u1' });
    const session = await sessions.create({ ...sessionOpts, deviceId: device });
    const enc = async (r: Reading | Extra) => ({ key: device, value: await codec.encode(Topics.heartReadings, record(session.id, device, r)), timestamp: timeOf(r) });
    const first = [];
    for (const r of series.slice(0, endAt)) first.push(await enc(r));
    first.push(await endMarkerRecord(codec, { sessionId: session.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: endMs }));
    const rest = [];
    for (const r of series.slice(endAt)) rest.push(await enc(r));
    if (mode === 'restart') {
      // Another session's reading after the end, so that the commit passes the end marker: the
      // replay then starts after the end, and the revival restores from the ended checkpoint.
      const other = await sessions.create({ ...sessionOpts, startedAt: endMs, deviceId: `${name}-o` });
      first.push({ key: device, value: await codec.encode(Topics.heartReadings, record(other.id, `${name}-o`, series[endAt] as Reading)), timestamp: endMs + 1 });
    }
    const parts = mode === 'one' ? [[...first, ...rest]] : [first, rest];
    const readingsIn = mode === 'one' ? [series.length] : [endAt + (mode === 'restart' ? 1 : 0), series.length - endAt];
    let w: CoherenceWorker | null = null;
    for (let i = 0; i < parts.length; i++) {
      if (!w) {
        w = worker(topics, `${name}-group`);
        await w.start();
      }
      const readingsBefore = w.stats.readings;
      await bus.publish(topics.heartReadings, parts[i]);
      const current = w;
      await waitFor(`${name}: part ${i} read`, () => current.stats.readings - readingsBefore >= readingsIn[i], 60_000, 20);
      await current.flush();
      // A restart after the end: the revival restores from the ended checkpoint.
      if (mode === 'restart' && i === 0) {
        await current.stop();
        w = null;
      }
    }
    await w!.stop();
    if (mode === 'restart') assert.deepEqual([w!.stats.restoredSessions, w!.stats.endMarkers], [1, 0], 'the replay starts after the end: restored from the ended checkpoint');
    return windowMetrics(session.id, true);
  }
  const before = datedBack(series.slice(0, endAt));
  const total = datedBack(series);
  assert.deepEqual([before, total], [4, 6]);
  for (const mode of ['one', 'split', 'restart'] as const) {
    const windows = await run(`late-revive-${mode}`, mode);
    // The end closes the windows up to the first one ending after the last beat (ends 5 s apart).
    const lastBeforeEnd = windows.filter((w) => Number(w.end_ms) <= endMs + 5_000).at(-1)!;
    assert.equal(Number(lastBeforeEnd.late_beat_count), before, `${mode}: the late beats before the end`);
    const revived = windows.filter((w) => Number(w.end_ms) > endMs + 5_000);
    assert.ok(revived.length > 5, `${mode}: windows after the end (revived)`);
    assert.ok(revived.every((w) => Number(w.late_beat_count) >= before), `${mode}: the revival goes on from the end's count: ${revived.map((w) => w.late_beat_count)}`);
    assert.equal(Number(revived.at(-1)!.late_beat_count), total, `${mode}: every late beat of the session`);
  }
});

test("two sessions 45 and 25 minutes behind a live one of their partition, interleaved with it: the live one's first reading, far ahead, ends neither (each keeps the windows it has alone)", async () => {
  const series = [
    rsaReadings({ startMs: start + 250 - 2_700_000, durationS: 400, breathHz: 0.1, seed: 91 }),
    rsaReadings({ startMs: start + 250 - 1_500_000, durationS: 400, breathHz: 0.1, seed: 92 }),
    rsaReadings({ startMs: start + 250, durationS: 400, breathHz: 0.1, seed: 93 }),
  ];
  // In chunks of 12 readings, in turn; the live device joins after the others' first chunks.
  const interleave = (devices: number[]) => {
    const out: Merged[] = [];
    const at = devices.map(() => 0);
    for (let round = 0; at.some((k, d) => k < series[devices[d]].length); round++) {
      devices.forEach((j, d) => {
        if (j === 2 && round === 0) return;
        for (let n = 0; n < 12 && at[d] < series[j].length; n++, at[d]++) out.push({ j, r: series[j][at[d]], t: out.length, i: at[d] });
      });
    }
    for (const j of devices) out.push({ j, r: null, t: timeOf(series[j][series[j].length - 1]) + 1, i: series[j].length });
    return out;
  };
  async function run(name: string, devices: number[], cuts: number[] = []) {
    const { topics, ids } = await threeSessionRun(name, (j) => [start - 2_700_000, start - 1_500_000, start][j]);
    const input = interleave(devices);
    await runMergedSegments(name, topics, ids, input, cuts);
    return Promise.all(ids.map((id) => windowMetrics(id, true)));
  }
  const alone0 = (await run('lag3-alone0', [0]))[0];
  const alone1 = (await run('lag3-alone1', [1]))[1];
  const all = await run('lag3-all', [0, 1, 2]);
  assert.ok(alone0.filter((w) => Boolean(w.valid)).length > 60);
  assert.deepEqual(all[0], alone0, '45 min behind');
  assert.deepEqual(all[1], alone1, '25 min behind');
  const n = interleave([0, 1, 2]).length;
  assert.deepEqual(await run('lag3-cut', [0, 1, 2], [Math.round(n * 0.5)]), all, 'with a restart half way');
});

test("an end marker written again after readings revived the ended session ends nothing: the same windows as without it", async () => {
  const series = rsaReadings({ startMs: start + 250, durationS: 300, breathHz: 0.1, seed: 95 });
  const endAt = series.findIndex((r) => Date.parse(r.timestamp) > start + 150_000);
  const again = series.findIndex((r) => Date.parse(r.timestamp) > start + 220_000);
  async function run(name: string, repeat: boolean) {
    const topics = prefixedTopics(`${name}.`);
    await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
    const device = `${name}-d`;
    await new DevicesRepository(entities.client).register({ id: device, orgId: 'o1', userId: 'u1' });
    const session = await sessions.create({ ...sessionOpts, deviceId: device });
    const end = () => endMarkerRecord(codec, { sessionId: session.id, deviceId: device, userId: 'u1', orgId: 'o1', endedAtMs: Date.parse(series[endAt - 1].timestamp) });
    const recs = [];
    for (let i = 0; i < series.length; i++) {
      if (i === endAt) recs.push(await end());
      // The relay writes the marker again (a later change of the ended session: a title, say).
      if (repeat && i === again) recs.push(await end());
      recs.push({ key: device, value: await codec.encode(Topics.heartReadings, record(session.id, device, series[i])), timestamp: Date.parse(series[i].timestamp) });
    }
    const w = worker(topics, `${name}-group`);
    await w.start();
    try {
      await bus.publish(topics.heartReadings, recs);
      await waitFor(`${name}: read`, () => w.stats.readings >= series.length, 60_000, 20);
      await w.flush();
    } finally {
      await w.stop();
    }
    return { windows: await windowMetrics(session.id, true), repeated: w.stats.repeatedEndMarkers };
  }
  const once = await run('endtwice-once', false);
  const twice = await run('endtwice-twice', true);
  assert.deepEqual(twice.windows, once.windows);
  assert.equal(twice.repeated, 1);
});
