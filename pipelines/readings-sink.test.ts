// The readings sink's clock guard across stops and deliveries: a restarted or re-fed sink stores
// and quarantines exactly what an uninterrupted one does (the sink's header says why). The larger
// restart sweeps (three sessions with outliers, lost commits) are in
// coherence/worker-outliers.test.ts; these are the cases a review of 2026-12-05 found open.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../bus/embedded.js';
import type { Bus, BusRecord, SubscribeOptions } from '../bus/types.js';
import { Topics, prefixedTopics } from '../schemas/topics.js';
import { createCodec, type Codec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import { createStoreClient, type StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { readingId, type HeartReadingRecord } from '../schemas/records.js';
import { silentLogger } from '../lib/log.js';
import { waitFor } from '../test/attune.js';
import { seededRandom } from '../test/seeded-random.js';
import { commitDropping } from '../bus/commit-dropping.test-util.js';
import { endMarkerRecord } from './coherence/end-markers.js';
import { toBatches } from '../schemas/reading-batches.js';
import { ReadingsSink } from './readings-sink.js';
import type { SessionsRepository } from '../store/postgres/sessions-repo.js';
import { SinkProgressRepository } from '../store/postgres/sink-progress-repo.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { pgliteDatabase, type TestDatabase } from '../store/postgres/test-databases.test-util.js';

const T0 = Date.UTC(2026, 10, 1, 9, 0, 0);
let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
let pg: TestDatabase;
let progress: SinkProgressRepository;
// Every session started at T0 (the guard's clock before its first reading), unless set here.
const startedAtOf = new Map<string, number>();
const sessions = { get: async (id: string) => ({ startedAt: startedAtOf.get(id) ?? T0 }) } as unknown as Pick<SessionsRepository, 'get'>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-readings-sink-'));
  store = await createStoreClient({ dataDir: dir, database: 'readings_sink_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 1 });
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  pg = await pgliteDatabase();
  await migratePostgres(pg.client);
  progress = new SinkProgressRepository(pg.client);
});

after(async () => {
  await bus.close();
  await store.close();
  await pg.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** A reading of `beats` RR intervals of 1,000 ms ending `endS` seconds after T0; `beats` 0: a heart rate alone. */
type Item = { session: string; endS: number; beats: number; tag: string } | { session: string; end: true };
const reading = (session: string, endS: number, beats: number, tag: string): Item => ({ session, endS, beats, tag });

function toRecord(run: string, it: Extract<Item, { endS: number }>): HeartReadingRecord {
  const device = `${run}-${it.session}`;
  const t = T0 + it.endS * 1000;
  return {
    reading_id: readingId('o1', device, t),
    device_id: device,
    user_id: 'u1',
    org_id: 'o1',
    session_id: device,
    recorded_at: t,
    received_at: t,
    hr_bpm: 60,
    rr_intervals_ms: Array(it.beats).fill(1000),
    device_hrv_ms: null,
    device_coherence: null,
    battery_level_pct: null,
    source: 'sync',
  };
}

/**
 * Runs the items through a sink on a one-partition topic, stopping it and starting a new one at
 * each cut (a graceful stop: its commit stays at the oldest reading it holds, or the record that
 * set the partition's event time). Returns the tags stored and quarantined.
 */
/**
 * `progress: false`: the sink gets no progress table. `commitsLost`: every segment but the last
 * loses its commits (a crash after its rows were inserted). `idleMs`: the sessions' idle end.
 * `batchRuns`: up to 4 consecutive readings of a session are one HeartReadingBatch record.
 */
async function run(name: string, items: Item[], cuts: number[], opts: { progress?: boolean; commitsLost?: boolean; idleMs?: number; batchRuns?: boolean } = {}) {
  const topics = prefixedTopics(`${name}.`);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
  const tagOf = new Map<string, string>();
  for (const it of items) if (!('end' in it)) tagOf.set(toRecord(name, it).reading_id, it.tag);
  // The records, the same whatever the cuts: one per item, or with `batchRuns` one per run of a
  // session's consecutive readings (up to 4, received when the last was recorded, as a sync
  // upload's); a cut inside a run moves to its end.
  const recordItems: Item[][] = [];
  for (const it of items) {
    const prev = recordItems[recordItems.length - 1];
    if (opts.batchRuns && !('end' in it) && prev && prev.length < 4 && !('end' in prev[0]) && prev[0].session === it.session) prev.push(it);
    else recordItems.push([it]);
  }
  const firstItem: number[] = [];
  recordItems.reduce((at, r) => (firstItem.push(at), at + r.length), 0);
  const recordCuts = cuts.map((cut) => firstItem.filter((f) => f < cut).length);
  const bounds = [0, ...recordCuts, recordItems.length];
  const drop = { on: false };
  for (let c = 1; c < bounds.length; c++) {
    drop.on = opts.commitsLost === true && c < bounds.length - 1;
    const sink = new ReadingsSink({
      bus: commitDropping(bus, drop),
      topics,
      codec,
      store,
      sessions,
      progress: opts.progress === false ? undefined : progress,
      sessionIdleEndMs: opts.idleMs,
      log: silentLogger,
      groupId: `${name}-sink`,
      writer: { maxDelayMs: 20 },
    });
    await sink.start();
    try {
      const records = [];
      for (const group of recordItems.slice(bounds[c - 1], bounds[c])) {
        const it = group[0];
        if ('end' in it) records.push(await endMarkerRecord(codec, { sessionId: `${name}-${it.session}`, deviceId: `${name}-${it.session}`, userId: 'u1', orgId: 'o1', endedAtMs: T0 }));
        else if (group.length > 1) {
          const readings = group.map((g) => toRecord(name, g as Extract<Item, { endS: number }>));
          const receivedAt = readings[readings.length - 1].recorded_at;
          const [batch] = toBatches(readings.map((r) => ({ ...r, received_at: receivedAt })));
          records.push({ key: batch.device_id, value: await codec.encodeRecord('HeartReadingBatch', batch), timestamp: receivedAt });
        } else {
          const r = toRecord(name, it);
          records.push({ key: r.device_id, value: await codec.encode(Topics.heartReadings, r), timestamp: r.recorded_at });
        }
      }
      await bus.publish(topics.heartReadings, records);
      // (A replay's records count too, so a sink may stop a little before its cut: that only
      // moves the restart point.)
      await waitFor(`${name}: records up to ${bounds[c]} handled`, () => sink.stats.records >= records.length, 30_000, 10);
      await sink.flush();
    } finally {
      await sink.stop();
    }
  }
  const tags = async (table: string) => {
    const rs = await store.client.query({
      query: `SELECT DISTINCT reading_id FROM ${store.table(table)} FINAL WHERE startsWith(session_id, {p:String})`,
      query_params: { p: `${name}-` },
      format: 'JSONEachRow',
    });
    return ((await rs.json()) as Array<{ reading_id: string }>).map((r) => tagOf.get(r.reading_id)!).sort();
  };
  return { stored: await tags('heart_readings'), quarantined: await tags('heart_readings_quarantined') };
}

test('a sink restarted while a session far behind the partition holds a real gap decides it as the uninterrupted run', async () => {
  // R leads the partition to 480 s and ends; Q is at 350 s; W starts late (a backlog from 10 s)
  // and jumps 200 s (a real gap), confirmed by the readings after it. The partition's event time
  // stays at 480 s, so the uninterrupted run never lets W go. A replay that rebuilds the
  // partition's event time from the sessions it reads again (Q's next readings move it from
  // 360 s to 520 s) lets W go and quarantines the gap's first reading (a review's case, 2026-12-05). With
  // the progress table the replay starts at 480 s, as the run before had it there.
  const items: Item[] = [];
  for (let t = 10; t <= 480; t += 10) items.push(reading('R', t, 10, `R${t}`));
  items.push({ session: 'R', end: true });
  for (let t = 10; t <= 350; t += 10) items.push(reading('Q', t, 10, `Q${t}`));
  items.push(reading('W', 10, 10, 'W10'), reading('W', 210, 10, 'W210-gap'));
  // V sends after W (a session at 20 s), so W's silence counts from there: from 480 s in the
  // run before, from where the replay's event time is at V's reading in a replay without the
  // table (without V, W's silence would count from Q's next reading in both).
  items.push(reading('V', 20, 10, 'V20'));
  const cut = items.length;
  // Q goes on to 520 s: in a replay without the table that is more than half the idle span past
  // 360 s, where W was found silent (due), so W is let go; the run before never found W silent
  // (its silence counts from 480 s there).
  for (let t = 360; t <= 520; t += 10) items.push(reading('Q', t, 10, `Q${t}`));
  items.push(reading('W', 220, 10, 'W220'), reading('W', 230, 10, 'W230'), reading('W', 240, 10, 'W240'));
  const clean = await run('idle-ref', items, []);
  assert.ok(clean.stored.includes('W210-gap'), 'the uninterrupted run keeps the gap (confirmed)');
  assert.deepEqual(clean.quarantined, []);
  const restarted = await run('idle-cut', items, [cut]);
  assert.deepEqual(restarted, clean);
  // Without the progress table (a sink given none) the replay decides otherwise: the case is
  // real, and the table is what settles it.
  const unrestored = await run('idle-cut-unrestored', items, [cut], { progress: false });
  assert.deepEqual(unrestored.quarantined, ['W210-gap']);
});

test('a heart rate without beats does not move the clock a restarted guard starts from', async () => {
  // A reading with only a heart rate is stored without the guard; 60 s ahead, it was taken for
  // the session's newest beat after a restart, and the held outlier after it went through.
  const items: Item[] = [];
  for (let t = 10; t <= 100; t += 10) items.push(reading('S', t, 10, `S${t}`));
  items.push(reading('S', 160, 0, 'S160-heart-rate'), reading('S', 170, 10, 'S170-outlier'));
  const cut = items.length;
  items.push(reading('S', 110, 10, 'S110'), reading('S', 120, 10, 'S120'));
  const clean = await run('hr-ref', items, []);
  assert.deepEqual(clean.quarantined, ['S170-outlier']);
  assert.ok(clean.stored.includes('S160-heart-rate'));
  assert.deepEqual(await run('hr-cut', items, [cut]), clean);
});

test('records delivered again without a new assignment (a client restarting its fetch at the commit) are not offered to the guard twice', async () => {
  // kafkajs restarts a rejoined member's fetch at the committed offset and may hand the same
  // partitions back; the sink keeps their guards. Two held outliers offered twice made a
  // candidate of four, which "confirmed" them (the review's case).
  const feed = feedingBus();
  const sink = new ReadingsSink({ bus: feed.bus, codec, store, sessions, log: silentLogger, writer: { maxDelayMs: 5 } });
  await sink.start();
  const records = await encodedRecords('redeliver', [reading('S', 10, 10, 'S10'), reading('S', 20, 10, 'S20'), reading('S', 80, 5, 'S80-outlier'), reading('S', 85, 5, 'S85-outlier')]);
  const committed = () => feed.commits[feed.commits.length - 1] ?? 0n;
  const deliver = async (from: number) => {
    await feed.opts().onAssignment!([{ topic: Topics.heartReadings, partition: 0 }]);
    await feed.opts().eachBatch({ topic: Topics.heartReadings, partition: 0, records: records.slice(from) });
    await sink.flush();
  };
  try {
    await deliver(0);
    assert.equal(sink.stats.held, 2);
    await waitFor('the commit', () => committed() > 0n, 5_000, 5);
    assert.ok(committed() <= 2n, `committed ${committed()}: never past a held reading`);
    await deliver(Number(committed()));
    assert.equal(sink.stats.held, 2, 'still held: the two outliers alone are no jump');
    const rs = await store.client.query({
      query: `SELECT uniqExact(reading_id) AS n, toUnixTimestamp64Milli(max(event_time)) AS t FROM ${store.table('heart_readings')} FINAL WHERE session_id = 'redeliver-S'`,
      format: 'JSONEachRow',
    });
    const [row] = (await rs.json()) as Array<{ n: string | number; t: string | number }>;
    assert.deepEqual({ readings: Number(row.n), newestBeat: Number(row.t) - T0 }, { readings: 2, newestBeat: 20_000 });
  } finally {
    await sink.stop();
  }
});

/**
 * 3 or 4 sessions in one partition, interleaved at random whatever their event times (so some
 * run minutes behind others), each with 10 s readings and, at random, outliers 15-90 s ahead
 * (never confirmed), real gaps of 30-300 s (confirmed by the readings after them), a late start,
 * heart rates alone, and an end marker.
 */
function randomItems(rand: () => number): Item[] {
  const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const perSession: Item[][] = [];
  const n = pick(3, 4);
  for (let s = 0; s < n; s++) {
    const name = String.fromCharCode(65 + s);
    const seq: Item[] = [];
    let t = rand() < 0.5 ? 10 : pick(5, 40) * 10;
    const count = pick(8, 20);
    for (let k = 0; k < count; k++) {
      const u = rand();
      // (Outliers and heart rates off the 10 s grid: no two readings share a reading id.)
      if (u < 0.1) seq.push(reading(name, t + pick(15, 90) + 0.25, 5, `${name}${k}-outlier`));
      else if (u < 0.17) {
        t += pick(3, 30) * 10;
        seq.push(reading(name, t, 10, `${name}${k}-gap`));
      } else if (u < 0.22) seq.push(reading(name, t + 0.5, 0, `${name}${k}-hr`));
      else {
        t += 10;
        seq.push(reading(name, t, 10, `${name}${k}`));
      }
    }
    if (rand() < 0.4) seq.push({ session: name, end: true });
    perSession.push(seq);
  }
  const items: Item[] = [];
  const next = perSession.map(() => 0);
  while (items.length < perSession.reduce((a, q) => a + q.length, 0)) {
    const open = perSession.map((q, i) => i).filter((i) => next[i] < perSession[i].length);
    const i = open[Math.floor(rand() * open.length)];
    // Runs of one session, so that one gets ahead of the others.
    for (let r = pick(1, 6); r > 0 && next[i] < perSession[i].length; r--) items.push(perSession[i][next[i]++]);
  }
  return items;
}

test('random interleavings: a sink stopped, or crashed after losing its commits, at random points stores and quarantines what the uninterrupted run does', async (t) => {
  // Idle ends of 60 s, so that sessions far behind their partition are let go often and the
  // partition's event time (restored from the progress table) decides.
  const idleMs = Number(process.env.READINGS_SINK_SWEEP_IDLE_MS ?? 60_000);
  let differUnrestored = 0;
  let compared = 0;
  for (let seed = Number(process.env.READINGS_SINK_SWEEP_FROM ?? 1); seed <= Number(process.env.READINGS_SINK_SWEEP_SEEDS ?? 24); seed++) {
    const rand = seededRandom(seed);
    const items = randomItems(rand);
    const cuts = [...new Set([1 + Math.floor(rand() * (items.length - 2)), 1 + Math.floor(rand() * (items.length - 2))])].sort((a, b) => a - b);
    // Even seeds: up to 4 consecutive readings of a session are one batch record (a record
    // holding several readings; a commit at a held one is at its record).
    const batchRuns = seed % 2 === 0;
    const clean = await run(`rnd${seed}-ref`, items, [], { idleMs, batchRuns });
    for (const commitsLost of [false, true]) {
      const got = await run(`rnd${seed}-${commitsLost ? 'lost' : 'stop'}`, items, cuts, { idleMs, commitsLost, batchRuns });
      assert.deepEqual(got, clean, `seed ${seed}, cuts ${cuts}${commitsLost ? ', commits lost' : ''}${batchRuns ? ', batch records' : ''}`);
      compared++;
      const unrestored = await run(`rnd${seed}-${commitsLost ? 'lost' : 'stop'}-unrestored`, items, cuts, { idleMs, commitsLost, batchRuns, progress: false });
      if (JSON.stringify(unrestored) !== JSON.stringify(clean)) differUnrestored++;
    }
  }
  t.diagnostic(`${compared} restarted runs equal to the uninterrupted one; without the progress table ${differUnrestored} differ`);
  // The sweep reaches the case the table settles (without it some runs decide otherwise).
  assert.ok(differUnrestored > 0, 'no run differs without the progress table: the sweep does not reach the case');
});

test("a replayed reading the run before quarantined moves the partition's event time as its first offer did", async () => {
  // V's session started at 500 s, so its guard's clock is 500 s before any beat: its readings,
  // held, moved the partition's event time to 500 s in the run before, and were quarantined at
  // its end marker. A replay skips them (listed as quarantined) and did not move the partition's
  // event time: U's next reading (460 s) then moved it past W's clock plus the idle span, and W's
  // real gap (held, confirmed after it) was quarantined (a review's case, 2026-12-05).
  startedAtOf.set('f1-ref-V', T0 + 500_000);
  startedAtOf.set('f1-cut-V', T0 + 500_000);
  const items: Item[] = [];
  for (let t = 10; t <= 450; t += 10) items.push(reading('U', t, 10, `U${t}`));
  items.push(reading('U', 520.25, 5, 'U520-outlier'));
  for (let t = 10; t <= 50; t += 10) items.push(reading('W', t, 10, `W${t}`));
  items.push(reading('V', 540, 10, 'V540'), reading('V', 550, 10, 'V550'), { session: 'V', end: true });
  items.push(reading('W', 200, 10, 'W200-gap'));
  const cut = items.length;
  items.push(reading('U', 460, 10, 'U460'), reading('W', 210, 10, 'W210'), reading('W', 220, 10, 'W220'), reading('W', 230, 10, 'W230'));
  const clean = await run('f1-ref', items, [], { idleMs: 60_000 });
  assert.ok(clean.stored.includes('W200-gap'), 'the uninterrupted run keeps the gap (confirmed)');
  assert.deepEqual(clean.quarantined, ['U520-outlier', 'V540', 'V550']);
  assert.deepEqual(await run('f1-cut', items, [cut], { idleMs: 60_000 }), clean);
});

/** A bus that hands the test the subscription's handlers and records its commits, in order; while `lose.on` they are lost (rejected). */
function feedingBus(): { bus: Bus; opts: () => SubscribeOptions; commits: bigint[]; lose: { on: boolean } } {
  let opts: SubscribeOptions | null = null;
  const commits: bigint[] = [];
  const lose = { on: false };
  const bus: Bus = {
    kind: 'embedded',
    ensureTopics: async () => {},
    publish: async () => {},
    committed: async () => new Map(),
    partitionCount: async () => 1,
    close: async () => {},
    subscribe: async (o) => {
      opts = o;
      return {
        commit: async (_topic, _partition, offset) => {
          if (lose.on) throw new Error('commit lost (test)');
          commits.push(BigInt(offset));
        },
        stop: async () => {},
      };
    },
  };
  return { bus, opts: () => opts!, commits, lose };
}

async function encodedRecords(run: string, items: Item[]): Promise<BusRecord[]> {
  return Promise.all(
    items.map(async (it, i) => {
      const r = toRecord(run, it as Extract<Item, { endS: number }>);
      return { topic: Topics.heartReadings, partition: 0, offset: String(i), key: r.device_id, value: await codec.encode(Topics.heartReadings, r), timestamp: r.recorded_at, headers: {} };
    }),
  );
}

test('records delivered again in several batches are skipped in every one of them, and the commit never goes back', async () => {
  // The skip mark followed the last batch delivered, so after an older first batch delivered
  // again it moved back, and the next one was offered to the guards a second time (the held
  // outliers made a candidate of four and "confirmed" themselves); the commit moved back too.
  const feed = feedingBus();
  const sink = new ReadingsSink({ bus: feed.bus, codec, store, sessions, progress, groupId: 'redeliver-many-sink', log: silentLogger, writer: { maxDelayMs: 5 } });
  await sink.start();
  const records = await encodedRecords('redeliver-many', [reading('S', 10, 10, 'S10'), reading('S', 20, 10, 'S20'), reading('S', 30, 10, 'S30'), reading('S', 80.25, 5, 'S80-outlier'), reading('S', 85.25, 5, 'S85-outlier')]);
  const deliver = async (from: number, to: number) => {
    await feed.opts().eachBatch({ topic: Topics.heartReadings, partition: 0, records: records.slice(from, to) });
    await sink.flush();
  };
  try {
    await feed.opts().onAssignment!([{ topic: Topics.heartReadings, partition: 0 }]);
    await deliver(0, 5);
    assert.equal(sink.stats.held, 2);
    await deliver(0, 2);
    await deliver(2, 4);
    await deliver(4, 5);
    assert.equal(sink.stats.held, 2, 'still held: the two outliers alone are no jump');
    assert.ok(feed.commits.length > 0);
    for (let i = 1; i < feed.commits.length; i++) assert.ok(feed.commits[i] >= feed.commits[i - 1], `commits ${feed.commits.join(', ')}: never back`);
    assert.ok(feed.commits.every((c) => c <= 3n), `commits ${feed.commits.join(', ')}: never past a held reading`);
  } finally {
    await sink.stop();
  }
});

test('the progress row a restart needs survives any number of commits lost after the one the broker holds', async () => {
  // Rows were pruned to the newest 100 whatever the broker held: 150 commits lost after it
  // removed the row a new owner looks up. Now a partition's rows go only below a commit the
  // broker acknowledged.
  const feed = feedingBus();
  const group = 'lost-many-sink';
  const key = { groupId: group, topic: Topics.heartReadings, partition: 0 };
  const sink = new ReadingsSink({ bus: feed.bus, codec, store, sessions, progress, groupId: group, log: silentLogger, writer: { maxDelayMs: 1 } });
  await sink.start();
  const items: Item[] = [];
  for (let t = 10; t <= 3000; t += 10) items.push(reading('S', t, 10, `S${t}`));
  const records = await encodedRecords('lost-many', items);
  const inner = feed.opts();
  try {
    await inner.onAssignment!([{ topic: Topics.heartReadings, partition: 0 }]);
    for (let i = 0; i < records.length; i++) {
      // The first 120 records' commits reach the broker (two prunes), the rest are lost.
      feed.lose.on = i >= 120;
      await inner.eachBatch({ topic: Topics.heartReadings, partition: 0, records: [records[i]] });
      await sink.flush();
    }
  } finally {
    await sink.stop();
  }
  const acknowledged = feed.commits[feed.commits.length - 1];
  assert.ok(acknowledged >= 100n, `acknowledged ${acknowledged}`);
  const row = await progress.at(key, acknowledged);
  assert.equal(row?.commitOffset, acknowledged, 'the row at the commit the broker holds is kept');
  assert.equal(row?.partitionTimeMs, T0 + Number(acknowledged) * 10_000);
  // And rows below an acknowledged commit were pruned.
  assert.equal(await progress.at(key, 50n), undefined);
});

test('a progress row PostgreSQL refuses holds the commit back, and the commit lands once it is written, with no record after it', async () => {
  const feed = feedingBus();
  let refuse = 3;
  const flaky = {
    record: async (...a: Parameters<SinkProgressRepository['record']>) => {
      if (refuse > 0) {
        refuse--;
        throw new Error('connection refused (test)');
      }
      return progress.record(...a);
    },
    at: progress.at.bind(progress),
    prune: progress.prune.bind(progress),
  };
  const sink = new ReadingsSink({ bus: feed.bus, codec, store, sessions, progress: flaky, groupId: 'flaky-progress-sink', log: silentLogger, writer: { maxDelayMs: 1 } });
  await sink.start();
  const records = await encodedRecords('flaky-progress', [reading('S', 10, 10, 'S10'), reading('S', 20, 10, 'S20')]);
  try {
    await feed.opts().onAssignment!([{ topic: Topics.heartReadings, partition: 0 }]);
    await feed.opts().eachBatch({ topic: Topics.heartReadings, partition: 0, records });
    await sink.flush();
    assert.deepEqual(feed.commits, [], 'no commit without its row');
    await waitFor('the commit after the retries', () => feed.commits.length > 0, 10_000, 20);
    assert.deepEqual(feed.commits, [2n]);
    assert.deepEqual(await progress.at({ groupId: 'flaky-progress-sink', topic: Topics.heartReadings, partition: 0 }, 2n), { commitOffset: 2n, partitionTimeMs: T0 + 20_000 });
  } finally {
    await sink.stop();
  }
});
