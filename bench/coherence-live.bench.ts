// What the provisional windows cost at live pace (README, Known limitations: at a live device's
// pace, about one reading a second, the coherence worker computes about every window twice,
// once provisional and once final; bench:kafka's 1,000-reading uploads compute one provisional
// window per ~200 final ones, so it cannot show this).
//
// One process: the embedded bus (memory), PGlite for the sessions, the real CoherenceWorker
// with its metrics thread. N sessions of RSA beats (seeded; a reading of two beats about every
// 1.8 s, test/attune.ts rsaReadings) are published one second of event time at a time, every
// session's readings of that second in one publish, and the next second only once the worker
// has read it and published what it made of it (CoherenceWorker.flush): each batch holds at
// most one reading per session, as live devices uploading every second or two give. Variants,
// interleaved, each run a fresh worker on fresh topics and sessions: ATTUNE_PROVISIONAL_WINDOWS
// on (`provisional`) and off (`final_only`). Measured over the whole run (process CPU: the main
// thread, the metrics thread and the GC's): CPU µs per session-second, and the windows each
// variant computed. The publishing side (encoding the readings) is the same in both.
//
//   npm run bench:coherence-live -- [runs=3] [sessions=200] [seconds=300]
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createEmbeddedBus } from '../bus/embedded.js';
import type { OutgoingRecord } from '../bus/types.js';
import { silentLogger } from '../lib/log.js';
import { CoherenceWorker } from '../pipelines/coherence/worker.js';
import { createCodec, type Codec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import { readingId, type HeartReadingRecord } from '../schemas/records.js';
import { Topics, prefixedTopics } from '../schemas/topics.js';
import { createPgliteClient } from '../store/postgres/client.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { DevicesRepository, SessionsRepository } from '../store/postgres/sessions-repo.js';
import { rsaReadings } from '../test/attune.js';
import { loadAverage } from './lib/machine.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';
import { interleavedOrder, round } from './lib/stats.js';

const runs = runsArg(process.argv[2], 3);
const sessionCount = Number(process.argv[3] ?? 200);
const seconds = Number(process.argv[4] ?? 300);
if (!(sessionCount >= 1 && seconds >= 70)) throw new Error('usage: [runs] [sessions >= 1] [seconds >= 70]');

const bench = new BenchRun('coherence-live', {
  description:
    'CoherenceWorker CPU per session-second at live pace (one ~1 s reading per session per bus batch), provisional windows on and off, interleaved; embedded bus in memory, PGlite sessions, one process',
  options: { runs, sessions: sessionCount, seconds },
});

const START = Date.UTC(2026, 10, 1, 9, 0, 0);
type Variant = 'provisional' | 'final_only';

/** Each session's readings, grouped by the second of event time they end in. */
const perSecond: Array<Array<{ session: number; reading: { timestamp: string; hr: number; rr_intervals_ms: number[] } }>> = Array.from({ length: seconds }, () => []);
for (let s = 0; s < sessionCount; s++) {
  for (const r of rsaReadings({ startMs: START + 250, durationS: seconds - 1, breathHz: 0.08 + 0.04 * ((s * 0.618) % 1), seed: 1000 + s })) {
    const k = Math.floor((Date.parse(r.timestamp) - START) / 1000);
    if (k < seconds) perSecond[k].push({ session: s, reading: r });
  }
}

const codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
const sql = await createPgliteClient();
await migratePostgres(sql);
const devices = new DevicesRepository(sql);
const sessions = new SessionsRepository(sql);
const bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 6, memoryBytesPerPartition: 256 * 1024 * 1024 });

async function oneRun(variant: Variant, run: number) {
  const prefix = `r${run}-${variant}-`;
  const topics = prefixedTopics(prefix);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 6 })));
  const ids: Array<{ sessionId: string; deviceId: string }> = [];
  for (let s = 0; s < sessionCount; s++) {
    const deviceId = `${prefix}dev-${s}`;
    await devices.register({ id: deviceId, orgId: 'o1', userId: `u${s}` });
    const session = await sessions.create({ orgId: 'o1', userId: `u${s}`, deviceId, startedAt: START, coherenceThreshold: 0.5, thresholdDurationS: 30 });
    ids.push({ sessionId: session.id, deviceId });
  }
  const worker = new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId: `${prefix}group`, provisionalWindows: variant === 'provisional' });
  await worker.start();
  let published = 0;
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (const second of perSecond) {
    const records: OutgoingRecord[] = [];
    for (const { session, reading } of second) {
      const { sessionId, deviceId } = ids[session];
      const recordedAt = Date.parse(reading.timestamp);
      const rec: HeartReadingRecord = {
        reading_id: readingId('o1', deviceId, recordedAt),
        device_id: deviceId,
        user_id: `u${session}`,
        org_id: 'o1',
        session_id: sessionId,
        recorded_at: recordedAt,
        received_at: recordedAt,
        hr_bpm: reading.hr,
        rr_intervals_ms: reading.rr_intervals_ms,
        device_hrv_ms: null,
        device_coherence: null,
        battery_level_pct: null,
        source: 'sync',
      };
      records.push({ key: deviceId, value: codec.encode(Topics.heartReadings, rec), timestamp: recordedAt });
    }
    await bus.publish(topics.heartReadings, records);
    published += records.length;
    // The next second only once this one is read (as a live second would be, a second later).
    while (worker.stats.readings < published) await yieldToLoop();
    // And its provisional round (computed and published after the commit) is out: a second
    // later, live, it would be.
    await worker.flush();
  }
  await worker.stop();
  const wall = performance.now() - w0;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const st = worker.stats;
  const r = {
    cpu_ms: round(cpuMs, 0),
    wall_ms: round(wall, 0),
    cpu_us_per_session_second: round((cpuMs * 1000) / (sessionCount * seconds), 2),
    readings: st.readings,
    final_windows: st.windows,
    provisional_windows: st.provisionalWindows,
    provisional_dropped: st.provisionalDropped,
    provisional_failures: st.provisionalFailures,
    // Final windows that took their provisional window's metrics (the same beats), since 2026-12-04.
    final_windows_from_provisional: st.provisionalReused,
  };
  console.log(`run ${run} ${variant}: ${JSON.stringify(r)} (load ${loadAverage()[0]})`);
  return r;
}

// Warm-up (V8, the metrics thread, PGlite): one run of each, not recorded.
for (const v of ['provisional', 'final_only'] as const) await oneRun(v, 0);
const measured: Record<Variant, Array<Awaited<ReturnType<typeof oneRun>>>> = { provisional: [], final_only: [] };
let run = 0;
for (const order of interleavedOrder(['provisional', 'final_only'] as const, runs)) {
  run++;
  for (const v of order) measured[v].push(await oneRun(v, run));
}

const cpu = {
  provisional: bench.metric('provisional_cpu_us_per_session_second', measured.provisional.map((r) => r.cpu_us_per_session_second), 'µs', 'lower'),
  final_only: bench.metric('final_only_cpu_us_per_session_second', measured.final_only.map((r) => r.cpu_us_per_session_second), 'µs', 'lower'),
};
const ratios = measured.provisional.map((r, i) => r.cpu_us_per_session_second / measured.final_only[i].cpu_us_per_session_second);
const ratio = bench.metric('provisional_over_final_only_cpu', ratios.map((x) => round(x, 3)), 'ratio', 'lower');
console.log(`CPU per session-second: provisional ${describeMetric(cpu.provisional, 2, ' µs')}; final only ${describeMetric(cpu.final_only, 2, ' µs')}; ratio (same round) ${describeMetric(ratio, 3)}`);
const file = bench.write({
  runs_detail: measured,
  windows_per_session_second: {
    final: round(measured.final_only[0].final_windows / (sessionCount * seconds), 4),
    provisional: round(measured.provisional[0].provisional_windows / (sessionCount * seconds), 4),
  },
});
console.log(`wrote ${relativeResultPath(file)}`);
await bus.close();
await sql.close();
