// The bus and store instruments behind GET /metrics (issue 9): records in and out per topic,
// dead letters by reason, consumer lag per partition (end − committed, from the embedded log,
// or on Kafka from the highest offset the consumers received), and the sinks' inserts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreClient } from '../store/clickhouse.js';
import { createEmbeddedBus, type EmbeddedBus } from '../bus/embedded.js';
import type { Bus, RecordBatch, Subscription } from '../bus/types.js';
import { silentLogger } from '../lib/log.js';
import { Metrics } from '../lib/metrics.js';
import { Topics } from '../schemas/topics.js';
import { waitFor } from '../test/attune.js';
import { instrumentBus, instrumentStore, registerWorkerMetrics } from './metrics.js';

const TOPIC = 'metrics-test.v1';
const buses: Bus[] = [];
after(async () => {
  for (const b of buses) await b.close();
});

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** All series of one metric: labels text → value. */
function series(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(l);
    if (m) out.set(m[1] ?? '', Number(m[2]));
  }
  return out;
}

async function embeddedBus(): Promise<EmbeddedBus> {
  const bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  buses.push(bus);
  await bus.ensureTopics([{ topic: TOPIC, partitions: 2 }]);
  return bus;
}

/** A consumer that records what it got and commits only when told. */
async function consumer(bus: Bus, groupId: string) {
  const got: RecordBatch[] = [];
  const sub: Subscription = await bus.subscribe({ groupId, topics: [TOPIC], fromBeginning: true, eachBatch: async (b) => void got.push(b) });
  const received = () => got.reduce((n, b) => n + b.records.length, 0);
  /** Commits, per partition, the offset after the last record received. */
  const commitAll = async () => {
    const last = new Map<number, bigint>();
    for (const b of got) for (const r of b.records) last.set(b.partition, BigInt(r.offset) + 1n);
    for (const [p, next] of last) await sub.commit(TOPIC, p, next.toString());
  };
  return { sub, received, commitAll, got };
}

const records = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, value: Buffer.from(`v${i}`) }));

test('embedded bus: records in and out per topic, lag per partition from the log\'s end, dead letters by reason', async () => {
  const metrics = new Metrics({ defaultMetrics: false });
  const bus = instrumentBus(await embeddedBus(), metrics, Topics);
  assert.equal(bus.kind, 'embedded');
  assert.equal(typeof bus.stats, 'function', 'the embedded bus\'s own members pass through');

  const c = await consumer(bus, 'g-lag');
  await bus.publish(TOPIC, records(40, 'k'));
  await waitFor('40 records received', () => c.received() === 40, 10_000, 10);
  let text = await metrics.text();
  assert.equal(value(text, `attune_bus_records_published_total{topic="${TOPIC}"}`), 40);
  assert.equal(value(text, `attune_bus_records_consumed_total{topic="${TOPIC}",group="g-lag"}`), 40);
  // Nothing committed: every record of both partitions is lag.
  const lag = series(text, 'attune_consumer_lag');
  const ends = new Map(bus.stats().filter((s) => s.topic === TOPIC).map((s) => [s.partition, s.nextOffset]));
  assert.deepEqual([...lag.keys()].sort(), [`{group="g-lag",topic="${TOPIC}",partition="0"}`, `{group="g-lag",topic="${TOPIC}",partition="1"}`]);
  assert.equal([...lag.values()].reduce((a, b) => a + b, 0), 40);
  for (const [p, end] of ends) assert.equal(lag.get(`{group="g-lag",topic="${TOPIC}",partition="${p}"}`), end);

  // Committed up to what was received: no lag. Then 10 more published, not yet committed: 10.
  await c.commitAll();
  text = await metrics.text();
  assert.deepEqual([...series(text, 'attune_consumer_lag').values()], [0, 0]);
  await bus.publish(TOPIC, records(10, 'more'));
  await waitFor('50 records received', () => c.received() === 50, 10_000, 10);
  text = await metrics.text();
  assert.equal([...series(text, 'attune_consumer_lag').values()].reduce((a, b) => a + b, 0), 10);

  // A live fan-out group (ephemeral) is counted but has no lag.
  const live = await bus.subscribe({ groupId: 'g-live', topics: [TOPIC], fromBeginning: false, ephemeral: true, eachBatch: async () => undefined });
  await bus.publish(TOPIC, records(5, 'live'));
  await waitFor('the live group to get 5', async () => value(await metrics.text(), `attune_bus_records_consumed_total{topic="${TOPIC}",group="g-live"}`) === 5, 10_000, 10);
  text = await metrics.text();
  assert.ok(![...series(text, 'attune_consumer_lag').keys()].some((k) => k.includes('g-live')));
  await live.stop();

  // Dead letters are counted by their attune-reason header.
  await bus.publish(Topics.deadLetter, [
    { key: 'a', value: Buffer.from('x'), headers: { 'attune-reason': 'future_beat', 'attune-consumer-group': 'g-lag' } },
    { key: 'b', value: Buffer.from('y'), headers: { 'attune-reason': 'future_beat', 'attune-consumer-group': 'g-lag' } },
    { key: 'c', value: Buffer.from('z'), headers: { 'attune-reason': 'undecodable', 'attune-consumer-group': 'other' } },
  ]);
  text = await metrics.text();
  assert.equal(value(text, 'attune_dead_letters_total{reason="future_beat",group="g-lag"}'), 2);
  assert.equal(value(text, 'attune_dead_letters_total{reason="undecodable",group="other"}'), 1);

  // A stopped consumer's partitions are no longer this process's to report.
  await c.sub.stop();
  assert.equal(series(await metrics.text(), 'attune_consumer_lag').size, 0);
});

test('Kafka-like bus (no log in the process): lag from the highest offset received and the offsets committed', async () => {
  const metrics = new Metrics({ defaultMetrics: false });
  const inner = await embeddedBus();
  // The embedded bus seen as a remote one: no stats(), so the end is what the consumers received.
  const remote = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'kind') return 'kafka';
      if (prop === 'stats') return undefined;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as unknown as Bus;
  const bus = instrumentBus(remote, metrics, Topics);
  const topicRecords = records(30, 'r');
  await bus.publish(TOPIC, topicRecords);
  const c = await consumer(bus, 'g-remote');
  await waitFor('30 records received', () => c.received() === 30, 10_000, 10);
  let lag = series(await metrics.text(), 'attune_consumer_lag');
  assert.equal(lag.size, 2);
  assert.equal([...lag.values()].reduce((a, b) => a + b, 0), 30);
  // Half of partition 0's records committed.
  const p0 = c.got.filter((b) => b.partition === 0).flatMap((b) => b.records);
  const half = Math.floor(p0.length / 2);
  await c.sub.commit(TOPIC, 0, String(BigInt(p0[half - 1].offset) + 1n));
  lag = series(await metrics.text(), 'attune_consumer_lag');
  assert.equal(lag.get(`{group="g-remote",topic="${TOPIC}",partition="0"}`), p0.length - half);
  await c.commitAll();
  assert.deepEqual([...series(await metrics.text(), 'attune_consumer_lag').values()], [0, 0]);
  await c.sub.stop();
});

test('store inserts: batches, rows, latency and failures by table; other calls pass through', async () => {
  const metrics = new Metrics({ defaultMetrics: false });
  let fail = false;
  const calls: string[] = [];
  const client = {
    async insert(params: { table: string; values: unknown[] }) {
      calls.push(`insert ${params.table}`);
      if (fail) throw new Error('ClickHouse is down');
      return { executed: true };
    },
    async query() {
      calls.push('query');
      return 'rows';
    },
  };
  const store = instrumentStore({ client, kind: 'server', database: 'db', table: (n: string) => `db.${n}` } as unknown as StoreClient, metrics);
  await store.client.insert({ table: 'db.heart_readings', values: [{}, {}, {}], format: 'JSONEachRow' });
  await store.client.insert({ table: 'db.heart_readings', values: [{}], format: 'JSONEachRow' });
  fail = true;
  await assert.rejects(store.client.insert({ table: 'db.heart_readings', values: [{}], format: 'JSONEachRow' }), /down/);
  assert.equal(await (store.client as unknown as typeof client).query(), 'rows');
  assert.equal(store.table('x'), 'db.x');
  assert.deepEqual(calls, ['insert db.heart_readings', 'insert db.heart_readings', 'insert db.heart_readings', 'query']);
  const text = await metrics.text();
  assert.equal(value(text, 'attune_sink_batches_total{table="db.heart_readings"}'), 2);
  assert.equal(value(text, 'attune_sink_rows_total{table="db.heart_readings"}'), 4);
  assert.equal(value(text, 'attune_sink_failures_total{table="db.heart_readings"}'), 1);
  assert.equal(value(text, 'attune_sink_batch_duration_seconds_count{table="db.heart_readings"}'), 3);
  assert.equal(value(text, 'attune_sink_batch_rows_sum{table="db.heart_readings"}'), 4);
});

test('worker stats are read at each scrape: totals as counters, live sockets and queues as gauges', async () => {
  const metrics = new Metrics({ defaultMetrics: false });
  const worker = { stats: { readings: 5, windows: 4, validWindows: 3, lateBeats: 2, quarantinedReadings: 1, implausibleReadings: 0, provisionalWindows: 6, provisionalFailures: 1, provisionalDropped: 2, provisionalReused: 5 }, openSessionCount: 1 };
  const live = { stats: { clients: 2, delivered: 9, slowDisconnects: 1 } };
  const speechWorker = {
    stats: { frames: 10, streams: 2, finalized: 1, failed: 0, skipped: 4 },
    queue: { recognitionBacklogS: 3.5, openStreams: 1, finalizing: 0 },
    timing: { live: { audioS: 0, processingS: 0, lastRealTimeFactor: 0 }, upload: { audioS: 60, processingS: 6, lastRealTimeFactor: 0.1 } },
  };
  registerWorkerMetrics(metrics, { sink: null, worker: worker as any, speechWorker: speechWorker as any, sessionChanges: null, sessionDimension: null, live: live as any, speechLive: null });
  let text = await metrics.text();
  assert.match(text, /# TYPE attune_coherence_late_beats_total counter/);
  assert.equal(value(text, 'attune_coherence_late_beats_total'), 2);
  assert.equal(value(text, 'attune_coherence_quarantined_readings_total'), 1);
  assert.equal(value(text, 'attune_coherence_windows_total{valid="false"}'), 1);
  assert.equal(value(text, 'attune_coherence_provisional_windows_total{outcome="published"}'), 6);
  assert.equal(value(text, 'attune_coherence_provisional_windows_total{outcome="failed"}'), 1);
  assert.equal(value(text, 'attune_coherence_provisional_windows_total{outcome="dropped"}'), 2);
  assert.equal(value(text, 'attune_coherence_final_windows_from_provisional_total'), 5);
  assert.match(text, /# TYPE attune_live_sockets gauge/);
  assert.equal(value(text, 'attune_live_sockets{hub="coherence"}'), 2);
  assert.equal(value(text, 'attune_live_evictions_total{hub="coherence",reason="slow"}'), 1);
  assert.equal(value(text, 'attune_speech_recognition_backlog_seconds'), 3.5);
  assert.equal(value(text, 'attune_speech_frames_skipped_total'), 4);
  assert.equal(value(text, 'attune_speech_real_time_factor{source="upload"}'), 0.1);
  // The next scrape reads the new values (a counter never shows less than its source).
  worker.stats.lateBeats = 7;
  live.stats.clients = 0;
  text = await metrics.text();
  assert.equal(value(text, 'attune_coherence_late_beats_total'), 7);
  assert.equal(value(text, 'attune_live_sockets{hub="coherence"}'), 0);
});

test('the coherence checkpoint reader on Kafka (a group of its own that never commits) reports no lag; its records are counted', async () => {
  const { CheckpointTable } = await import('../pipelines/coherence/checkpoints.js');
  const metrics = new Metrics({ defaultMetrics: false });
  const inner = await embeddedBus();
  // The table picks its Kafka behaviour from bus.kind: the embedded log seen as Kafka.
  const asKafka = new Proxy(inner, { get: (t, p) => (p === 'kind' ? 'kafka' : typeof Reflect.get(t, p) === 'function' ? Reflect.get(t, p).bind(t) : Reflect.get(t, p)) }) as Bus;
  const bus = instrumentBus(asKafka, metrics, Topics);
  const table = new CheckpointTable({ bus, topic: 'metrics-test.checkpoints.v1', groupId: 'g-cp', log: silentLogger, partitions: 2 });
  await table.start();
  try {
    await table.write(Array.from({ length: 30 }, (_, i) => ({ sessionId: `s${i}`, emittedThroughMs: 1_700_000_000_000 + i, threshold: null, ended: false })));
    await table.sync();
    assert.equal(table.size, 30);
    const text = await metrics.text();
    const consumed = [...series(text, 'attune_bus_records_consumed_total').entries()].filter(([k]) => k.includes('g-cp-'));
    assert.ok(consumed.reduce((n, [, v]) => n + v, 0) >= 30, `its records are counted: ${JSON.stringify(consumed)}`);
    const lag = [...series(text, 'attune_consumer_lag').entries()].filter(([k]) => k.includes('g-cp'));
    assert.deepEqual(lag, [], 'no lag series for a reader that never commits');
  } finally {
    await table.stop();
  }
});
