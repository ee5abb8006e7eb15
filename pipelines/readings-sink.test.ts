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
import { endMarkerRecord } from './coherence/end-markers.js';
import { ReadingsSink } from './readings-sink.js';
import type { SessionsRepository } from '../store/postgres/sessions-repo.js';

const T0 = Date.UTC(2026, 10, 1, 9, 0, 0);
let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
// Every session started at T0 (the guard's clock before its first reading).
const sessions = { get: async () => ({ startedAt: T0 }) } as unknown as Pick<SessionsRepository, 'get'>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-readings-sink-'));
  store = await createStoreClient({ dataDir: dir, database: 'readings_sink_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 1 });
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
});

after(async () => {
  await bus.close();
  await store.close();
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
async function run(name: string, items: Item[], cuts: number[]) {
  const topics = prefixedTopics(`${name}.`);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
  const tagOf = new Map<string, string>();
  for (const it of items) if (!('end' in it)) tagOf.set(toRecord(name, it).reading_id, it.tag);
  const bounds = [0, ...cuts, items.length];
  for (let c = 1; c < bounds.length; c++) {
    const sink = new ReadingsSink({ bus, topics, codec, store, sessions, log: silentLogger, groupId: `${name}-sink`, writer: { maxDelayMs: 20 } });
    await sink.start();
    try {
      const records = [];
      for (const it of items.slice(bounds[c - 1], bounds[c])) {
        if ('end' in it) records.push(await endMarkerRecord(codec, { sessionId: `${name}-${it.session}`, deviceId: `${name}-${it.session}`, userId: 'u1', orgId: 'o1', endedAtMs: T0 }));
        else {
          const r = toRecord(name, it);
          records.push({ key: r.device_id, value: await codec.encode(Topics.heartReadings, r), timestamp: r.recorded_at });
        }
      }
      await bus.publish(topics.heartReadings, records);
      // (A replay's records count too, so a sink may stop a little before its cut: that only
      // moves the restart point.)
      await waitFor(`${name}: records up to ${bounds[c]} handled`, () => sink.stats.records >= bounds[c] - bounds[c - 1], 30_000, 10);
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

test("a sink restarted while a session far behind the partition holds a real gap decides it as the uninterrupted run", { todo: "the partition's event time is not restored after a restart (README, Known limitations)" }, async () => {
  // R leads the partition to 480 s and ends; Q is at 350 s; W starts late (a backlog from 10 s)
  // and jumps 200 s (a real gap), confirmed by the readings after it. The partition's event time
  // stays at 480 s, so the uninterrupted run never lets W go. A replay that rebuilds the
  // partition's event time from the sessions it reads again (Q's next reading moves it
  // to 360 s) lets W go and quarantines the gap's first reading (a review's case, 2026-12-05;
  // kept as a todo: see the sink's header for why it is not fixed).
  const items: Item[] = [];
  for (let t = 10; t <= 480; t += 10) items.push(reading('R', t, 10, `R${t}`));
  items.push({ session: 'R', end: true });
  for (let t = 10; t <= 350; t += 10) items.push(reading('Q', t, 10, `Q${t}`));
  items.push(reading('W', 10, 10, 'W10'), reading('W', 210, 10, 'W210-gap'));
  const cut = items.length;
  items.push(reading('Q', 360, 10, 'Q360'), reading('W', 220, 10, 'W220'), reading('W', 230, 10, 'W230'), reading('W', 240, 10, 'W240'));
  const clean = await run('idle-ref', items, []);
  assert.ok(clean.stored.includes('W210-gap'), 'the uninterrupted run keeps the gap (confirmed)');
  assert.deepEqual(clean.quarantined, []);
  const restarted = await run('idle-cut', items, [cut]);
  assert.deepEqual(restarted, clean);
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
  let opts: SubscribeOptions | null = null;
  let committed = 0n;
  const feeding: Bus = {
    kind: 'embedded',
    ensureTopics: async () => {},
    publish: async () => {},
    committed: async () => new Map(),
    close: async () => {},
    subscribe: async (o) => {
      opts = o;
      return {
        commit: async (_topic, _partition, offset) => {
          committed = BigInt(offset);
        },
        stop: async () => {},
      };
    },
  };
  const sink = new ReadingsSink({ bus: feeding, codec, store, sessions, log: silentLogger, writer: { maxDelayMs: 5 } });
  await sink.start();
  const items = [reading('S', 10, 10, 'S10'), reading('S', 20, 10, 'S20'), reading('S', 80, 5, 'S80-outlier'), reading('S', 85, 5, 'S85-outlier')];
  const records: BusRecord[] = await Promise.all(
    items.map(async (it, i) => {
      const r = toRecord('redeliver', it as Extract<Item, { endS: number }>);
      return { topic: Topics.heartReadings, partition: 0, offset: String(i), key: 'redeliver-S', value: await codec.encode(Topics.heartReadings, r), timestamp: r.recorded_at, headers: {} };
    }),
  );
  const deliver = async (from: number) => {
    await opts!.onAssignment!([{ topic: Topics.heartReadings, partition: 0 }]);
    await opts!.eachBatch({ topic: Topics.heartReadings, partition: 0, records: records.slice(from) });
    await sink.flush();
  };
  try {
    await deliver(0);
    assert.equal(sink.stats.held, 2);
    await waitFor('the commit', () => committed > 0n, 5_000, 5);
    assert.ok(committed <= 2n, `committed ${committed}: never past a held reading`);
    await deliver(Number(committed));
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
