// End-to-end ingest throughput: readings per second from POST /v1/devices/{id}/sync to rows
// in ClickHouse (heart_readings), with every role running (the coherence worker too).
//
//   npm run bench:ingest                       embedded bus + chDB, then Kafka + chDB
//   npm run bench:ingest -- embedded|kafka [readings=1000000] [runs=3]
//
// Kafka comes from KAFKA_BROKERS or is started with infra/kafka/kafka.sh. The load
// generator runs in a child process. Each bus's set of runs goes to
// bench/results/ingest-<bus>-<time>-<tag>.json (every run's figures and their medians).
// Target: at least 50,000 readings/s end to end in embedded mode on the 2-core machine.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import { startLocalKafka } from '../test/services.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';

const TARGET_EMBEDDED = 50_000;
const DEVICES = 8;
const READINGS_PER_REQUEST = 1000;
const CONCURRENCY = 8;

async function rows(app: TestAttune): Promise<number> {
  const rs = await app.store.client.query({ query: `SELECT count() AS n FROM ${app.database}.heart_readings`, format: 'JSONEachRow' });
  return Number(((await rs.json()) as Array<{ n: number | string }>)[0].n);
}

async function runOne(bus: 'embedded' | 'kafka', total: number) {
  const brokers = bus === 'kafka' ? (process.env.KAFKA_BROKERS?.split(',') ?? (await startLocalKafka())) : null;
  const app = await startTestAttune({
    kafkaBrokers: brokers,
    env: { ATTUNE_WRITE_FLUSH_MS: '1000', ATTUNE_TOPIC_PARTITIONS: '6', ATTUNE_RATE_LIMIT_READINGS_PER_S: '0', ...(process.env.ATTUNE_WRITE_BATCH_ROWS ? { ATTUNE_WRITE_BATCH_ROWS: process.env.ATTUNE_WRITE_BATCH_ROWS } : {}) },
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
    const ready = JSON.parse((await lines.next()).value);
    if (!ready.ready) throw new Error('load generator failed to start');
    const began = Date.now();
    const cpuBefore = process.cpuUsage();
    child.stdin!.write('go\n');
    const load = JSON.parse((await lines.next()).value) as { began: number; ended: number; accepted: number; failed: number; p50_ms: number; p99_ms: number };
    // Rows land at most a flush interval after the last request; poll the count until all are in.
    let stored = 0;
    const deadline = Date.now() + 120_000;
    while ((stored = await rows(app)) < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const ended = Date.now();
    const cpu = process.cpuUsage(cpuBefore);
    child.kill();
    if (stored < expected) throw new Error(`only ${stored} of ${expected} rows arrived`);
    const seconds = (ended - began) / 1000;
    return {
      bus,
      readings: expected,
      failed_requests: load.failed,
      readings_per_request: READINGS_PER_REQUEST,
      concurrency: CONCURRENCY,
      accept_seconds: Number(((load.ended - load.began) / 1000).toFixed(2)),
      end_to_end_seconds: Number(seconds.toFixed(2)),
      accepted_readings_per_s: Math.round(expected / ((load.ended - load.began) / 1000)),
      end_to_end_readings_per_s: Math.round(expected / seconds),
      request_latency_p50_ms: load.p50_ms,
      request_latency_p99_ms: load.p99_ms,
      coherence_windows: app.worker?.stats.windows ?? 0,
      // CPU of the Attune process (all its threads, chDB's included) per second of wall time.
      server_cpu_cores: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2)),
    };
  } finally {
    await app.cleanup();
  }
}

const which = process.argv[2] ? [process.argv[2] as 'embedded' | 'kafka'] : (['embedded', 'kafka'] as const);
const total = Number(process.argv[3] ?? 1_000_000);
const runs = runsArg(process.argv[4], 3);
for (const bus of which) {
  // One file per set of runs: results on a shared machine vary, and the history of sets says
  // more than the last one.
  const bench = new BenchRun(`ingest-${bus}`, {
    description: 'ingest: POST /v1/devices/{id}/sync → rows in heart_readings, every role in one process (the coherence worker too); load generator in a child process',
    options: { bus, readings: total, runs, devices: DEVICES, readings_per_request: READINGS_PER_REQUEST, concurrency: CONCURRENCY },
  });
  const results = [];
  for (let i = 0; i < runs; i++) {
    const r = await runOne(bus, total);
    console.log(`${bus} run ${i + 1}/${runs}: ${r.end_to_end_readings_per_s} readings/s end to end (${r.accepted_readings_per_s} accepted/s)`);
    results.push(r);
  }
  const e2e = bench.metric('end_to_end_readings_per_s', results.map((r) => r.end_to_end_readings_per_s), 'readings/s', 'higher');
  bench.metric('accepted_readings_per_s', results.map((r) => r.accepted_readings_per_s), 'readings/s', 'higher');
  bench.metric('request_latency_p99_ms', results.map((r) => r.request_latency_p99_ms), 'ms', 'lower');
  bench.metric('server_cpu_cores', results.map((r) => r.server_cpu_cores), 'cores', 'lower');
  const target = bus === 'embedded' ? TARGET_EMBEDDED : null;
  console.log(`${bus}: end to end ${describeMetric(e2e, 0, ' readings/s')}${target ? `; target ${target}: ${e2e.median >= target ? 'met' : 'NOT met'}` : ''}`);
  const file = bench.write({ target_readings_per_s: target, meets_target: target === null ? null : e2e.median >= target, runs: results });
  console.log(`wrote ${relativeResultPath(file)}`);
}
process.exit(0);
