// What one Kafka record per reading costs (issue 10, bench:kafka): CPU per reading to publish
// and to consume the same readings as one record each (what the gateway publishes today) or
// packed 1,000 to a record (the same bytes: 1,000 encoded HeartReading records concatenated, a
// stand-in for a batch record), through the bus with each client against the real broker.
// Publishing mirrors the gateway (8 publishes in flight, one per 1,000 readings of one device);
// consuming is one group reading everything and touching every value. No ClickHouse, no HTTP:
// the Kafka client's share of bench:kafka's pipeline, measured apart.
//
//   KAFKA_BROKERS=127.0.0.1:9092 node --import tsx bench/kafka-records.bench.ts [readings=200000 runs=3 clients=kafkajs,platformatic]
//
// Figures are CPU microseconds per reading (this process, all threads; robust to a loaded
// machine, unlike wall time, which is recorded too), medians over interleaved runs.
import { randomUUID } from 'node:crypto';
import { createKafkaBus } from '../bus/kafka-open.js';
import type { Bus, OutgoingRecord } from '../bus/types.js';
import { silentLogger } from '../lib/log.js';
import { createCodec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import { Topics } from '../schemas/topics.js';
import { readingId, type HeartReadingRecord } from '../schemas/records.js';
import { startLocalKafka } from '../test/services.js';
import { BenchRun, relativeResultPath, runsArg } from './lib/results.js';
import { interleavedOrder, round } from './lib/stats.js';

type Client = 'kafkajs' | 'platformatic';
type Shape = 'per_reading' | 'per_1000';
const DEVICES = 8;
const PER_REQUEST = 1000;
const CONCURRENCY = 8;
const PARTITIONS = 6;

const args = new Map(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const total = Number(args.get('readings') ?? 200_000);
const runs = runsArg(args.get('runs'), 3);
const clients = (args.get('clients') ?? 'kafkajs,platformatic').split(',') as Client[];
const brokers = process.env.KAFKA_BROKERS?.split(',') ?? (await startLocalKafka());
const codec = await createCodec(LocalSchemaRegistry.fromManifest());

// The gateway's records for the load generator's readings (bench/lib/sync-load.ts), encoded once.
const startMs = Date.now() - 30 * 86_400_000;
const requests: Array<{ device: string; values: Buffer[] }> = [];
for (let r = 0; r < Math.ceil(total / (DEVICES * PER_REQUEST)); r++) {
  for (let d = 0; d < DEVICES; d++) {
    const device = `bench-device-${d}`;
    const values: Buffer[] = [];
    for (let i = 0; i < PER_REQUEST; i++) {
      const n = r * PER_REQUEST + i;
      const rr = 800 + Math.round(60 * Math.sin(n / 2.5));
      const t = startMs + n * 1000;
      const rec: HeartReadingRecord = {
        reading_id: readingId('bench-org', device, t),
        device_id: device,
        user_id: 'bench-user',
        org_id: 'bench-org',
        session_id: '0b6f7c1e-8d7e-4c59-9d4e-2f5f1d8c9a11',
        recorded_at: t,
        received_at: Date.now(),
        hr_bpm: Math.round(60000 / rr),
        rr_intervals_ms: [rr],
        device_hrv_ms: null,
        device_coherence: null,
        battery_level_pct: null,
        source: 'sync',
      };
      values.push(codec.encode(Topics.heartReadings, rec));
    }
    requests.push({ device, values });
  }
}
const readings = requests.length * PER_REQUEST;

const cpuSince = (c0: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};

async function once(client: Client, shape: Shape) {
  const bus: Bus = await createKafkaBus({ client, brokers, clientId: `bench-records-${randomUUID().slice(0, 6)}`, log: silentLogger });
  try {
    const topic = `bench.records.${randomUUID().slice(0, 8)}`;
    await bus.ensureTopics([{ topic, partitions: PARTITIONS }]);
    const toRecords = (q: (typeof requests)[number]): OutgoingRecord[] =>
      shape === 'per_reading'
        ? q.values.map((value) => ({ key: q.device, value, timestamp: Date.now() }))
        : [{ key: q.device, value: Buffer.concat(q.values), timestamp: Date.now() }];
    // Publish: CONCURRENCY publishes in flight, as the gateway under bench:kafka's load.
    let next = 0;
    let c0 = process.cpuUsage();
    let t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) await bus.publish(topic, toRecords(requests[next++]));
      }),
    );
    const publishCpu = cpuSince(c0);
    const publishWall = (performance.now() - t0) / 1000;
    // Consume: one group, every value touched.
    const expected = shape === 'per_reading' ? readings : requests.length;
    let seen = 0;
    let bytes = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    c0 = process.cpuUsage();
    t0 = performance.now();
    const sub = await bus.subscribe({
      groupId: `bench-records-${randomUUID().slice(0, 8)}`,
      topics: [topic],
      fromBeginning: true,
      eachBatch: async (batch) => {
        for (const r of batch.records) bytes += r.value.length;
        seen += batch.records.length;
        if (seen >= expected) done();
      },
    });
    await Promise.race([finished, new Promise((_, reject) => setTimeout(() => reject(new Error(`consumed ${seen} of ${expected} after 300 s`)), 300_000))]);
    const consumeCpu = cpuSince(c0);
    const consumeWall = (performance.now() - t0) / 1000;
    await sub.stop();
    const us = (s: number) => round((s * 1e6) / readings, 2);
    return { publish_cpu_us: us(publishCpu), consume_cpu_us: us(consumeCpu), publish_wall_s: round(publishWall, 2), consume_wall_s: round(consumeWall, 2), bytes };
  } finally {
    await bus.close();
  }
}

const bench = new BenchRun('kafka-records', {
  description: 'CPU per reading to publish (8 in flight, 1,000 readings a publish) and consume (one group) the same HeartReading records, one Kafka record per reading or 1,000 per record, per client, against the real broker',
  options: { readings, runs, clients, devices: DEVICES, readings_per_publish: PER_REQUEST, concurrency: CONCURRENCY, partitions: PARTITIONS },
});
const variants = clients.flatMap((client) => (['per_reading', 'per_1000'] as const).map((shape) => ({ client, shape })));
const out: Record<string, Array<Awaited<ReturnType<typeof once>>>> = {};
for (const round_ of interleavedOrder(variants, runs)) {
  for (const v of round_) {
    const r = await once(v.client, v.shape);
    console.log(`${v.client} ${v.shape}: publish ${r.publish_cpu_us} µs/reading CPU (${r.publish_wall_s} s), consume ${r.consume_cpu_us} µs/reading CPU (${r.consume_wall_s} s)`);
    (out[`${v.client}_${v.shape}`] ??= []).push(r);
  }
}
for (const [k, rs] of Object.entries(out)) {
  bench.metric(`${k}_publish_cpu_us_per_reading`, rs.map((r) => r.publish_cpu_us), 'µs', 'lower');
  bench.metric(`${k}_consume_cpu_us_per_reading`, rs.map((r) => r.consume_cpu_us), 'µs', 'lower');
}
const file = bench.write({ runs: out });
console.log(`wrote ${relativeResultPath(file)}`);
process.exit(0);
