// Embedded bus throughput: batches of 1,000 HeartReading-sized records (110-byte values,
// 500 device keys) into a 6-partition topic, with one consumer group committing every
// batch. Reports publish rate, publish latency per batch and end-to-end delivery rate, in
// memory and on disk, each over `runs` fresh buses interleaved (memory, disk, memory, ...), and
// writes every run to bench/results/bus-embedded-<time>-<tag>.json (bench/lib).
// Run: node --import tsx bus/embedded.bench.ts [batches=200] [runs=3]   (npm run bench:bus)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { createEmbeddedBus } from './embedded.js';
import type { Subscription } from './types.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from '../bench/lib/results.js';

const batches = Number(process.argv[2] ?? 200);
const rounds = runsArg(process.argv[3], 3);
const batchSize = 1000;
const value = Buffer.alloc(110, 7);

interface RunResult {
  publish_records_per_s: number;
  end_to_end_records_per_s: number;
  publish_batch_ms_p50: number;
  publish_batch_ms_p99: number;
  max_partition_memory_bytes: number;
}

async function run(mode: 'memory' | 'disk'): Promise<RunResult> {
  const dir = mode === 'disk' ? await mkdtemp(join(tmpdir(), 'attune-bus-bench-')) : undefined;
  const bus = await createEmbeddedBus({ dir, log: silentLogger });
  await bus.ensureTopics([{ topic: 'bench', partitions: 6 }]);
  let delivered = 0;
  const total = batches * batchSize;
  let allDelivered!: () => void;
  const done = new Promise<void>((r) => (allDelivered = r));
  let sub!: Subscription;
  sub = await bus.subscribe({
    groupId: 'bench',
    topics: ['bench'],
    eachBatch: async (b) => {
      delivered += b.records.length;
      await sub.commit(b.topic, b.partition, String(Number(b.records[b.records.length - 1].offset) + 1));
      if (delivered === total) allDelivered();
    },
  });
  const records = Array.from({ length: batchSize }, (_, i) => ({ key: `device-${i % 500}`, value, timestamp: 1_700_000_000_000 + i }));
  const latencies: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) {
    const s = process.hrtime.bigint();
    await bus.publish('bench', records);
    latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const publishMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await done;
  const e2eMs = Number(process.hrtime.bigint() - t0) / 1e6;
  latencies.sort((a, b) => a - b);
  const maxMem = Math.max(...bus.stats().map((s) => s.memoryBytes));
  await sub.stop();
  await bus.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  return {
    publish_records_per_s: Math.round(total / (publishMs / 1000)),
    end_to_end_records_per_s: Math.round(total / (e2eMs / 1000)),
    publish_batch_ms_p50: Number(latencies[Math.floor(latencies.length / 2)].toFixed(2)),
    publish_batch_ms_p99: Number(latencies[Math.floor(latencies.length * 0.99)].toFixed(2)),
    max_partition_memory_bytes: maxMem,
  };
}

const bench = new BenchRun('bus-embedded', {
  description: `embedded bus: ${batches} batches of ${batchSize} records (110-byte values, 500 keys) into 6 partitions, one consumer group committing every batch; a fresh bus per run, memory and disk interleaved`,
  options: { batches, batch_size: batchSize, runs: rounds },
});
const modes = ['memory', 'disk'] as const;
const runs: Record<(typeof modes)[number], RunResult[]> = { memory: [], disk: [] };
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? modes : ([...modes].reverse() as typeof modes[number][])) {
    const result = await run(mode);
    runs[mode].push(result);
    console.log(JSON.stringify({ mode, run: r + 1, ...result }));
  }
}
for (const mode of modes) {
  const of = (k: keyof RunResult) => runs[mode].map((x) => x[k]);
  const publish = bench.metric(`${mode}_publish_records_per_s`, of('publish_records_per_s'), 'records/s', 'higher');
  const e2e = bench.metric(`${mode}_end_to_end_records_per_s`, of('end_to_end_records_per_s'), 'records/s', 'higher');
  bench.metric(`${mode}_publish_batch_ms_p50`, of('publish_batch_ms_p50'), 'ms', 'lower');
  bench.metric(`${mode}_publish_batch_ms_p99`, of('publish_batch_ms_p99'), 'ms', 'lower');
  bench.metric(`${mode}_max_partition_memory_bytes`, of('max_partition_memory_bytes'), 'bytes', 'lower');
  console.log(`${mode}: publish ${describeMetric(publish, 0, ' records/s')}; end to end ${describeMetric(e2e, 0, ' records/s')}`);
}
console.log(`recorded in ${relativeResultPath(bench.write())}`);
