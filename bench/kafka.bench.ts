// The Kafka clients compared (issue 10): readings per second from POST /v1/devices/{id}/sync
// to rows in ClickHouse (heart_readings) through Kafka with the real workers (`pipeline`), and a
// bare baseline with the same client (`baseline`): the same records already on a topic,
// consumed and inserted into ClickHouse, one row per reading, no processing, through the same
// BatchWriter with the readings sink's settings (WRITER). The baseline's clock starts when its
// consumer has its partitions, as the pipeline's starts with its workers in their groups (join
// time is reported as join_s). Targets: pipeline >= 0.7 of its baseline and >= 50,000 readings/s.
//
// The baseline is like-for-like with the gateway's records since the batched-readings merge
// (37fb4fd): it publishes, with the gateway's own publishReadings, the HeartReadingBatch records
// the gateway would for the load generator's requests (per device, 1,000 readings a request and
// a record), decodes each value with the codec and expands its batch (Avro has no partial
// decoding, and a heart_readings row needs every field of the reading), turns each reading into
// its heart_readings rows with the sink's readingToRows, and inserts them into a table created
// AS heart_readings (see baseline()). `baseline_single` is the baseline before that change, kept
// so older results stay comparable: one HeartReading record per reading, one 5-column row per
// record, nothing decoded (modes=pipeline,baseline,baseline_single). The summary's ratio is
// against `baseline`. `pipeline_final_only` is the pipeline with ATTUNE_PROVISIONAL_WINDOWS=false
// (no provisional windows for live display, as before they existed), for what they cost.
//
// Each run also records the CPU seconds of the Attune process (all threads) and of the load
// generator during the measured phase, and CPU µs per reading; on Linux also the Attune
// process's main thread alone (main_thread_cpu_us_per_reading: the event loop that runs the
// gateway, the workers and the Kafka client, and so bounds the rate). BENCH_CPU_PROF=<dir>
// writes a CPU profile of that phase (bench/lib/phase-profile.ts);
// bench/lib/cpu-profile-summary.ts sums it per file/function and (stages=1) per pipeline stage.
//
//   npm run bench:kafka [-- readings=300000 runs=3 warmup=1 clients=platformatic,kafkajs modes=pipeline,baseline]
//
// Every measurement runs in a child process of its own (chDB and PGlite open once per
// process), interleaved across clients and modes, on port 18660 with a topic prefix of its own
// (bench-<random>.). Kafka comes from KAFKA_BROKERS or is started with infra/kafka/kafka.sh.
// @confluentinc/kafka-javascript is not measured: its install builds librdkafka from source and
// fails offline by default (see the README).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import { startLocalKafka } from '../test/services.js';
import { BatchWriter } from '../store/batch-writer.js';
import { silentLogger } from '../lib/log.js';
import { Topics } from '../schemas/topics.js';
import { readingId, type HeartReadingRecord } from '../schemas/records.js';
import { decodeReadingsValue, defaultReadingsPerRecord } from '../schemas/reading-batches.js';
import { publishReadings } from '../ingest/publisher.js';
import { readingToRows } from '../pipelines/readings-sink.js';
import { HeartReadingColumns, Tables, type HeartReadingRow } from '../store/rows.js';
import type { RecordBatch as BusBatch } from '../bus/types.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';
import { runChild } from './lib/child.js';
import { interleavedOrder, round } from './lib/stats.js';
import { measuredPhase, type PhaseCpu } from './lib/phase-profile.js';

const TARGET_READINGS_PER_S = 50_000;
const TARGET_RATIO = 0.7;
const DEVICES = 8;
const READINGS_PER_REQUEST = 1000;
const CONCURRENCY = 8;
const PARTITIONS = 6;
/** The readings sink's BatchWriter settings in the pipeline runs, and the baseline's writer's. */
const WRITER = { maxRows: 50_000, maxDelayMs: 1000 };
const WRITER_ENV = { ATTUNE_WRITE_BATCH_ROWS: String(WRITER.maxRows), ATTUNE_WRITE_FLUSH_MS: String(WRITER.maxDelayMs) };
type Client = 'platformatic' | 'kafkajs';
type Mode = 'pipeline' | 'pipeline_final_only' | 'baseline' | 'baseline_single';
/** The Attune process's port (the bench's own range; one measured process at a time). */
const PORT = '18660';

async function brokers(): Promise<string[]> {
  return process.env.KAFKA_BROKERS?.split(',') ?? (await startLocalKafka());
}

async function count(app: TestAttune, table: string): Promise<number> {
  const rs = await app.store.client.query({ query: `SELECT count() AS n FROM ${app.database}.${table}`, format: 'JSONEachRow' });
  return Number(((await rs.json()) as Array<{ n: number | string }>)[0].n);
}

/** Sync endpoint → Kafka → readings sink and coherence worker → heart_readings. */
async function pipeline(client: Client, total: number, provisionalWindows = true) {
  const app = await startTestAttune({
    kafkaBrokers: await brokers(),
    topicPrefix: `bench-${randomUUID().slice(0, 8)}.`,
    entities: 'pglite',
    env: {
      ATTUNE_KAFKA_CLIENT: client,
      PORT,
      ...WRITER_ENV,
      ATTUNE_TOPIC_PARTITIONS: String(PARTITIONS),
      ATTUNE_RATE_LIMIT_READINGS_PER_S: '0',
      ATTUNE_RATE_LIMIT: 'off',
      ATTUNE_PROVISIONAL_WINDOWS: String(provisionalWindows),
    },
  });
  try {
    const token = app.token('bench-user', 'bench-org');
    const devices = Array.from({ length: DEVICES }, (_, i) => `bench-device-${i}`);
    const sessions: string[] = [];
    const startMs = Date.now() - 30 * 86_400_000;
    for (const d of devices) {
      await app.request('POST', '/v1/devices', { token, body: { device_id: d } });
      const s = await app.request('POST', '/v1/sessions', { token, body: { device_id: d, started_at: startMs } });
      sessions.push(s.body.id);
    }
    const requestsPerDevice = Math.ceil(total / (DEVICES * READINGS_PER_REQUEST));
    const expected = requestsPerDevice * DEVICES * READINGS_PER_REQUEST;
    const job = { baseUrl: app.baseUrl, token, devices, sessions, requestsPerDevice, readingsPerRequest: READINGS_PER_REQUEST, startMs, concurrency: CONCURRENCY };
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lib/sync-load.ts', import.meta.url)), JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    if (!JSON.parse((await lines.next()).value).ready) throw new Error('load generator failed to start');
    const phase = await measuredPhase(`${client}-pipeline`);
    const began = Date.now();
    child.stdin!.write('go\n');
    const load = JSON.parse((await lines.next()).value) as { began: number; ended: number; accepted: number; failed: number; p50_ms: number; p99_ms: number; cpu_s: number };
    // A request refused with 503 (publish past ATTUNE_PUBLISH_TIMEOUT_MS on a loaded machine)
    // is counted, not retried: the rate is of the accepted readings, which must all arrive.
    const accepted = load.accepted;
    // Done when the rows are in heart_readings, checked with count() every 50 ms. A count()
    // costs the measured process ~1.4 ms of CPU on chDB (the baseline counts nothing), so it
    // is asked only once the readings sink has taken every accepted reading (an in-memory
    // counter): the end is detected the same way, without polling through the whole run.
    let stored = 0;
    const deadline = Date.now() + 300_000;
    for (;;) {
      if ((app.sink?.stats.readings ?? Infinity) >= accepted && (stored = await count(app, 'heart_readings')) >= accepted) break;
      if (Date.now() > deadline) {
        stored = await count(app, 'heart_readings');
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (Date.now() - began) / 1000;
    const cpu = await phase.end();
    child.kill();
    if (stored < accepted) throw new Error(`only ${stored} of ${accepted} accepted readings arrived; readings sink stats ${JSON.stringify(app.sink?.stats ?? null)}`);
    return {
      readings: accepted,
      failed_requests: load.failed,
      readings_per_s: Math.round(accepted / seconds),
      accepted_readings_per_s: Math.round(accepted / ((load.ended - load.began) / 1000)),
      request_latency_p50_ms: load.p50_ms,
      request_latency_p99_ms: load.p99_ms,
      seconds: round(seconds, 2),
      attune_cpu_s: cpu.cpu_s,
      cpu_us_per_reading: round((cpu.cpu_s * 1e6) / accepted, 1),
      ...mainThread(cpu.main_thread_cpu_s, accepted),
      load_generator_cpu_s: load.cpu_s,
      ...machineAndBroker(cpu, seconds, accepted),
      threads_cpu_s: cpu.threads_cpu_s,
    };
  } finally {
    await app.cleanup();
  }
}

/**
 * The whole machine's busy cores in the phase and the local broker's CPU (where /proc has them):
 * whether the 2 cores were the bound, and what the broker took of them.
 */
function machineAndBroker(cpu: PhaseCpu, seconds: number, readings: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (cpu.machine_busy_cpu_s !== null) out.machine_busy_cores = round(cpu.machine_busy_cpu_s / seconds, 2);
  if (cpu.broker_cpu_s !== null) {
    out.broker_cpu_s = cpu.broker_cpu_s;
    out.broker_cpu_us_per_reading = round((cpu.broker_cpu_s * 1e6) / readings, 1);
  }
  return out;
}

/**
 * The Attune process's main thread alone (where the gateway, the workers and the Kafka client
 * run, so what bounds the rate: 50,000 readings/s leaves it 20 µs a reading), where /proc has it.
 */
function mainThread(cpuS: number | null, readings: number): Record<string, number> {
  return cpuS === null ? {} : { main_thread_cpu_s: cpuS, main_thread_cpu_us_per_reading: round((cpuS * 1e6) / readings, 1) };
}

/** The readings of the load generator's requests (bench/lib/sync-load.ts), as the gateway's HeartReading records. */
function gatewayRecords(startMs: number, device: string, session: string, request: number, receivedAt: number): HeartReadingRecord[] {
  const out: HeartReadingRecord[] = new Array(READINGS_PER_REQUEST);
  for (let i = 0; i < READINGS_PER_REQUEST; i++) {
    const n = request * READINGS_PER_REQUEST + i;
    const rr = 800 + Math.round(60 * Math.sin(n / 2.5));
    const t = startMs + n * 1000;
    out[i] = {
      reading_id: readingId('bench-org', device, t),
      device_id: device,
      user_id: 'bench-user',
      org_id: 'bench-org',
      session_id: session,
      recorded_at: t,
      // One acceptance time per request, as the gateway's (ctx.clock() once per request).
      received_at: receivedAt,
      hr_bpm: Math.round(60000 / rr),
      rr_intervals_ms: [rr],
      device_hrv_ms: null,
      device_coherence: null,
      battery_level_pct: null,
      source: 'sync',
    };
  }
  return out;
}

/**
 * The same client's bare path: records on a topic → consumer → BatchWriter → ClickHouse.
 *
 * `baseline` (like-for-like since the batched-readings merge): the gateway's records for the
 * load generator's readings, published by the gateway's own publishReadings (so the same
 * HeartReadingBatch records: one per device per request of READINGS_PER_REQUEST readings,
 * ATTUNE_READINGS_PER_RECORD as configured, the same Avro codec, the same key and timestamp),
 * one publish per request. The consumer decodes each value with the codec and expands the batch
 * (decodeReadingsValue: Avro has no partial decoding, and a row needs every field) and turns
 * each reading into its heart_readings rows (readingToRows, one row per beat: one per reading
 * here) inserted into a table created AS heart_readings (same engine, key and columns), through
 * a BatchWriter with the readings sink's settings. No plausibility checks, no clock guard, no
 * dead-lettering, no windows: what the pipeline does beyond that is what the ratio measures.
 *
 * `baseline_single` (the baseline before batches, kept so its older results stay comparable):
 * one HeartReading record per reading, inserted as one 5-column row per record with no
 * decoding at all (partition, offset, key, timestamp, value size).
 */
async function baseline(client: Client, total: number, single: boolean) {
  const app = await startTestAttune({
    kafkaBrokers: await brokers(),
    topicPrefix: `bench-${randomUUID().slice(0, 8)}.`,
    entities: 'pglite',
    roles: { ingest: false, api: true, worker: false },
    env: { ATTUNE_KAFKA_CLIENT: client, ATTUNE_TOPIC_PARTITIONS: String(PARTITIONS), PORT: PORT },
  });
  try {
    const topic = `${app.topicPrefix}bench.baseline.${randomUUID().slice(0, 8)}`;
    await app.bus.ensureTopics([{ topic, partitions: PARTITIONS }]);
    const startMs = Date.now() - 30 * 86_400_000;
    const requestsPerDevice = Math.ceil(total / (DEVICES * READINGS_PER_REQUEST));
    total = requestsPerDevice * DEVICES * READINGS_PER_REQUEST;
    const sessions = Array.from({ length: DEVICES }, () => randomUUID());
    // The gateway's default (ATTUNE_READINGS_PER_RECORD is not passed to the pipeline's process either).
    const readingsPerRecord = single ? 1 : defaultReadingsPerRecord;
    for (let r = 0; r < requestsPerDevice; r++) {
      for (let d = 0; d < DEVICES; d++) {
        const records = gatewayRecords(startMs, `bench-device-${d}`, sessions[d], r, Date.now());
        // The gateway's own publisher (ingest/publisher.ts) on a topic of the bench's.
        await publishReadings(app.bus, { ...Topics, heartReadings: topic }, app.codec, records, readingsPerRecord);
      }
    }
    let durable = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    /** Records delivered per partition, for the error when not all become durable. */
    const consumed = new Map<number, number>();
    let began = 0;
    const start = () => {
      if (began === 0) began = Date.now();
    };
    let table: string;
    let eachBatch: (batch: BusBatch, commit: (n: number) => void) => Promise<void>;
    let closeWriter: () => Promise<void>;
    if (single) {
      table = 'bench_baseline';
      await app.store.client.command({
        query: `CREATE TABLE IF NOT EXISTS ${app.database}.${table} (partition UInt16, offset UInt64, key String, ts DateTime64(3), bytes UInt32) ENGINE = MergeTree ORDER BY (partition, offset)`,
      });
      const writer = new BatchWriter<{ partition: number; offset: string; key: string; ts: number; bytes: number }>({
        store: app.store,
        table,
        columns: ['partition', 'offset', 'key', 'ts', 'bytes'],
        compact: true,
        maxRows: WRITER.maxRows,
        maxDelayMs: WRITER.maxDelayMs,
        log: silentLogger,
      });
      closeWriter = () => writer.close();
      eachBatch = (batch, commit) =>
        writer.add(
          batch.records.map((r) => ({ partition: r.partition, offset: r.offset, key: r.key, ts: r.timestamp, bytes: r.value.length })),
          () => commit(batch.records.length),
        );
    } else {
      table = 'bench_baseline_readings';
      await app.store.client.command({ query: `CREATE TABLE IF NOT EXISTS ${app.database}.${table} AS ${app.store.table(Tables.heartReadings)}` });
      const writer = new BatchWriter<HeartReadingRow>({
        store: app.store,
        table,
        columns: HeartReadingColumns,
        compact: true,
        maxRows: WRITER.maxRows,
        maxDelayMs: WRITER.maxDelayMs,
        log: silentLogger,
      });
      closeWriter = () => writer.close();
      eachBatch = async (batch, commit) => {
        const rows: HeartReadingRow[] = [];
        let readings = 0;
        for (const rec of batch.records) {
          let v = decodeReadingsValue(app.codec, rec.value);
          if (v instanceof Promise) v = await v;
          const rs = v.kind === 'batch' ? v.readings : [v.value as HeartReadingRecord];
          for (const reading of rs) readingToRows(reading, rows);
          readings += rs.length;
        }
        await writer.add(rows, () => commit(readings));
      };
    }
    const phase = await measuredPhase(`${client}-${single ? 'baseline_single' : 'baseline'}`);
    // The clock starts once the consumer has its partitions, as the pipeline's starts with its
    // workers already in their groups: joining a group is not throughput (it is reported apart).
    const subscribed = Date.now();
    const sub = await app.bus.subscribe({
      groupId: `${app.topicPrefix}bench-baseline-${randomUUID().slice(0, 8)}`,
      topics: [topic],
      onAssignment: (assigned) => {
        if (assigned.length > 0) start();
      },
      eachBatch: async (batch) => {
        start();
        consumed.set(batch.partition, (consumed.get(batch.partition) ?? 0) + batch.records.length);
        const last = batch.records[batch.records.length - 1];
        await eachBatch(batch, (readings) => {
          durable += readings;
          void sub.commit(batch.topic, batch.partition, String(BigInt(last.offset) + 1n)).catch(() => undefined);
          if (durable >= total) done();
        });
      },
    });
    await Promise.race([finished, new Promise((_, reject) => setTimeout(() => reject(new Error(`baseline: ${durable} of ${total} readings durable after 300 s; records delivered per partition ${JSON.stringify(Object.fromEntries([...consumed].sort((a, b) => a[0] - b[0])))}`)), 300_000))]);
    const seconds = (Date.now() - began) / 1000;
    const cpu = await phase.end();
    await sub.stop();
    await closeWriter();
    const stored = await count(app, table);
    if (stored < total) throw new Error(`baseline: ${stored} of ${total} rows stored`);
    return { readings: total, records: [...consumed.values()].reduce((a, b) => a + b, 0), readings_per_s: Math.round(total / seconds), seconds: round(seconds, 2), join_s: round((began - subscribed) / 1000, 2), attune_cpu_s: cpu.cpu_s, cpu_us_per_reading: round((cpu.cpu_s * 1e6) / total, 1), ...mainThread(cpu.main_thread_cpu_s, total), ...machineAndBroker(cpu, seconds, total), threads_cpu_s: cpu.threads_cpu_s };
  } finally {
    await app.cleanup();
  }
}

const args = new Map(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
if (args.has('--child')) {
  const [client, mode] = args.get('--child')!.split(',') as [Client, Mode];
  const total = Number(args.get('readings'));
  const r = mode === 'pipeline' || mode === 'pipeline_final_only' ? await pipeline(client, total, mode === 'pipeline') : await baseline(client, total, mode === 'baseline_single');
  console.log('RESULT ' + JSON.stringify(r));
  process.exit(0);
}

const total = Number(args.get('readings') ?? 300_000);
const runs = runsArg(args.get('runs'), 3);
const clients = (args.get('clients') ?? 'platformatic,kafkajs').split(',') as Client[];
const modes = (args.get('modes') ?? 'pipeline,baseline').split(',') as Mode[];
const warmup = args.get('warmup') !== '0';
const variants = clients.flatMap((c) => modes.map((m) => ({ client: c, mode: m })));
const bench = new BenchRun('kafka', {
  description:
    'Kafka clients behind the bus: sync endpoint → Kafka → real workers → heart_readings rows (pipeline), and records on a topic → consumer → BatchWriter → ClickHouse, no processing (baseline), per client; each measurement in its own process (chDB, PGlite), interleaved',
  options: { readings: total, runs, warmup, clients, devices: DEVICES, readings_per_request: READINGS_PER_REQUEST, concurrency: CONCURRENCY, partitions: PARTITIONS },
});
type RunResult = Record<string, number> & { threads_cpu_s?: Record<string, number> };
const results: Record<string, RunResult[]> = {};
const failures: Record<string, string[]> = {};
const warmups: Record<string, RunResult | { failed: string }> = {};
const runVariant = (v: { client: Client; mode: Mode }) =>
  runChild(process.execPath, ['--max-semi-space-size=64', '--import', 'tsx', fileURLToPath(import.meta.url), `--child=${v.client},${v.mode}`, `readings=${total}`]) as Promise<RunResult>;
// Warm-up: one run of each variant first, recorded apart (details.warmup) and in no median. The
// broker is a JVM: the first runs after it starts pay its JIT compilation (measured 12-04: a
// pipeline run on a broker just started 38,181 readings/s with the broker at 13.2 µs of CPU a
// reading, the next ones 42,643 (12.7 µs) and 47,485 (8.2 µs), then 2.6-5.6 µs), which a broker
// in service has long paid. Each measured run is still a fresh Attune process, its own JIT
// warm-up included. warmup=0 skips it.
if (warmup) {
  for (const v of variants) {
    const key = `${v.client}_${v.mode}`;
    const r = await runVariant(v).catch((err: Error) => ({ failed: err.message }));
    warmups[key] = r;
    console.log(`${key} (warm-up, not counted): ${'failed' in r ? `FAILED ${r.failed}` : `${r.readings_per_s} readings/s (${r.seconds} s)`}`);
  }
}
for (const round_ of interleavedOrder(variants, runs)) {
  for (const v of round_) {
    const key = `${v.client}_${v.mode}`;
    // A run that fails (e.g. the rows never all arrive) is kept as a failure, not retried:
    // how often a client fails is part of the comparison.
    const r = await runVariant(v).catch((err: Error) => {
      console.log(`${key}: FAILED ${err.message}`);
      (failures[key] ??= []).push(err.message);
      return null;
    });
    if (!r) continue;
    console.log(`${key}: ${r.readings_per_s} readings/s (${r.seconds} s)`);
    (results[key] ??= []).push(r);
  }
}
const summary: Record<string, unknown> = {};
const rates: Record<string, ReturnType<typeof bench.metric>> = {};
for (const c of clients) {
  for (const m of modes) {
    if (!results[`${c}_${m}`]) continue;
    rates[`${c}_${m}`] = bench.metric(`${c}_${m}_readings_per_s`, results[`${c}_${m}`].map((r) => r.readings_per_s), 'readings/s', 'higher');
    bench.metric(`${c}_${m}_cpu_us_per_reading`, results[`${c}_${m}`].map((r) => r.cpu_us_per_reading), 'µs', 'lower');
    const main = results[`${c}_${m}`].map((r) => r.main_thread_cpu_us_per_reading).filter((v) => typeof v === 'number');
    if (main.length === results[`${c}_${m}`].length) bench.metric(`${c}_${m}_main_thread_cpu_us_per_reading`, main, 'µs', 'lower');
    const busy = results[`${c}_${m}`].map((r) => r.machine_busy_cores).filter((v) => typeof v === 'number');
    if (busy.length === results[`${c}_${m}`].length) bench.metric(`${c}_${m}_machine_busy_cores`, busy, 'cores', 'lower');
    const broker = results[`${c}_${m}`].map((r) => r.broker_cpu_us_per_reading).filter((v) => typeof v === 'number');
    if (broker.length === results[`${c}_${m}`].length) bench.metric(`${c}_${m}_broker_cpu_us_per_reading`, broker, 'µs', 'lower');
  }
  if (!results[`${c}_pipeline`]) {
    summary[c] = { failed: true };
    console.log(`${c}: no successful pipeline run`);
    continue;
  }
  const p = rates[`${c}_pipeline`];
  bench.metric(`${c}_pipeline_request_p99_ms`, results[`${c}_pipeline`].map((r) => r.request_latency_p99_ms), 'ms', 'lower');
  bench.metric(`${c}_pipeline_failed_requests`, results[`${c}_pipeline`].map((r) => r.failed_requests), 'requests', 'lower');
  const s: Record<string, unknown> = { pipeline_median: p.median, meets_rate: p.median >= TARGET_READINGS_PER_S };
  let line = `${c}: pipeline ${describeMetric(p, 0, ' readings/s')} (${TARGET_READINGS_PER_S}/s: ${p.median >= TARGET_READINGS_PER_S ? 'met' : 'NOT met'})`;
  // The target's ratio is against the like-for-like baseline; baseline_single's is for older results.
  for (const m of ['baseline', 'baseline_single'] as const) {
    const b = rates[`${c}_${m}`];
    if (!b) continue;
    const ratio = round(p.median / b.median, 2);
    s[`${m}_median`] = b.median;
    s[m === 'baseline' ? 'ratio' : 'ratio_to_single'] = ratio;
    if (m === 'baseline') s.meets_ratio = ratio >= TARGET_RATIO;
    line += `, ${m} ${describeMetric(b, 0, ' readings/s')}, ratio ${ratio}` + (m === 'baseline' ? ` (target ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'})` : '');
  }
  const f = rates[`${c}_pipeline_final_only`];
  if (f) {
    s.final_only_median = f.median;
    s.ratio_to_final_only = round(p.median / f.median, 2);
    line += `, final windows only ${describeMetric(f, 0, ' readings/s')} (with provisional windows: ${s.ratio_to_final_only} of it)`;
  }
  summary[c] = s;
  console.log(line);
}
const file = bench.write({ target_readings_per_s: TARGET_READINGS_PER_S, target_ratio: TARGET_RATIO, summary, failures, warmup: warmups, runs: results });
console.log(`wrote ${relativeResultPath(file)}`);
process.exit(0);
