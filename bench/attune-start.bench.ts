// How long a restarted `attune all` takes to listen, and the CPU it spends getting there: the
// process a supervisor starts again after a crash (issue 10: "after a crash, 202s resume within
// 10 s of the restart"). Against Kafka and a PostgreSQL server (KAFKA_BROKERS, DATABASE_URL:
// start them with infra/kafka/kafka.sh and infra/postgres/postgres.sh), chDB in a data dir of
// its own, on the compiled dist/.
//
//   node --import tsx bench/attune-start.bench.ts [runs=7] [--baseline=<git rev>] [--build] [--hogs=N]
//
// Each variant starts once first (its migrations, topics and data dir made), then `runs` times
// as a restart after kill -9: spawn to the 'attune listening' line, and the CPU the process
// had used by then (/proc, 10 ms resolution): its main thread, and its other threads (V8's
// compiler and GC helpers, worker threads, chDB's pools). The CPU is what matters on a busy
// machine: with its two cores shared by others, a start takes about its CPU divided by the
// share it gets. --hogs=N runs N busy-looping processes during the timed starts, to see that
// directly (the fault suite restarts Attune beside two other deployments and another test file).
// With --baseline, the same on that commit's build (bench/lib/baseline.ts), interleaved.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { BenchRun, describeMetric, relativeResultPath, REPO_ROOT, runsArg } from './lib/results.js';
import { interleavedOrder } from './lib/stats.js';
import { prepareBaseline, type Baseline } from './lib/baseline.js';
import { deleteTopicsWithPrefix } from '../test/kafka-topics.js';

const argv = process.argv.slice(2);
const baselineRev = argv.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
const hogs = Number(argv.find((a) => a.startsWith('--hogs='))?.slice('--hogs='.length) ?? 0);
const build = argv.includes('--build');
const runs = runsArg(argv.filter((a) => !a.startsWith('--'))[0], 7);
const brokers = process.env.KAFKA_BROKERS;
const databaseUrl = process.env.DATABASE_URL;
if (!brokers || !databaseUrl) {
  console.error('bench:attune-start needs KAFKA_BROKERS and DATABASE_URL: bash infra/kafka/kafka.sh start; bash infra/postgres/postgres.sh start');
  process.exit(2);
}

function compile(dir: string): { tsc_status: number | null } {
  const tsc = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  spawnSync(process.execPath, ['scripts/copy-assets.mjs'], { cwd: dir, stdio: 'inherit' });
  if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) throw new Error(`no dist/cli/main.js in ${dir} after compiling`);
  return { tsc_status: tsc.status };
}

const baseline: Baseline | null = baselineRev ? prepareBaseline(baselineRev) : null;
const builds: Record<string, unknown> = {};
if (build) builds.current = compile(REPO_ROOT);
if (baseline) builds.baseline = compile(baseline.dir);
if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` or pass --build');

interface Variant {
  name: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  dataDir: string;
  prefix: string;
  database: string;
}

const admin = new pg.Client({ connectionString: databaseUrl });
await admin.connect();
const variants: Variant[] = [];
for (const [name, cwd] of [['current', REPO_ROOT], ...(baseline ? [['baseline', baseline.dir]] : [])] as [string, string][]) {
  const database = `bench_start_${name}_${randomUUID().replace(/-/g, '').slice(0, 8)}`;
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(databaseUrl);
  url.pathname = `/${database}`;
  const dataDir = mkdtempSync(join(tmpdir(), `attune-start-${name}-`));
  const prefix = `bench-start-${name}-${randomUUID().slice(0, 8)}.`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    ATTUNE_DATA_DIR: dataDir,
    DATABASE_URL: url.toString(),
    KAFKA_BROKERS: brokers,
    ATTUNE_BUS: 'kafka',
    ATTUNE_TOPIC_PREFIX: prefix,
    ATTUNE_TOPIC_PARTITIONS: '3',
    CLICKHOUSE_DATABASE: database,
    JWT_SECRET: 'bench-attune-start-secret-0123456789abcdef',
  };
  delete env.NODE_OPTIONS;
  variants.push({ name, cwd, env, dataDir, prefix, database });
}

interface Start {
  wall_ms: number;
  main_cpu_ms: number;
  other_cpu_ms: number;
  phases: Record<string, number>;
}

/** CPU (ms) of a live process's threads, from /proc: the main thread and the rest. */
function threadCpu(pid: number): { main: number; other: number } {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // a thread that ended meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(f[11]) + Number(f[12])) * 10; // utime + stime, clock ticks of 10 ms
    if (tid === String(pid)) main += ms;
    else other += ms;
  }
  return { main, other };
}

/** Starts the variant, waits for 'attune listening', reads its CPU, then kill -9 (a crash). */
async function start(v: Variant): Promise<Start> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['bin/attune.js', 'all'], { cwd: v.cwd, env: v.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-3000)));
  const result = await new Promise<Start>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('attune listening'));
      if (!line || !line.endsWith('}')) return;
      const wall = performance.now() - t0;
      const cpu = threadCpu(child.pid!);
      resolve({ wall_ms: wall, main_cpu_ms: cpu.main, other_cpu_ms: cpu.other, phases: JSON.parse(line).startupMs ?? {} });
    });
    child.once('exit', (code) => reject(new Error(`${v.name}: attune exited with ${code} before listening:\n${err}\n${out.slice(-1500)}`)));
  });
  await kill9(child);
  return result;
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

const run = new BenchRun('attune-start', {
  description:
    'A restart of `attune all` after kill -9 (migrations, topics and data dir already there), on dist/, against Kafka and a PostgreSQL server, chDB: spawn to the "attune listening" line, and the CPU of the main thread and of the other threads by then (/proc); with --hogs, N busy-looping processes run during the timed starts; with --baseline, an earlier commit interleaved',
  options: { runs, hogs, baseline: baseline ? { rev: baselineRev, commit: baseline.commit } : null, build, variants: variants.map((v) => v.name) },
});

// First starts: migrations, topics, the data dir (not timed).
for (const v of variants) await start(v);
const hogProcs: ChildProcess[] = [];
for (let i = 0; i < hogs; i++) hogProcs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
const samples: Record<string, Start[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
const loads: number[] = [];
try {
  for (const order of interleavedOrder(variants, runs)) {
    for (const v of order) {
      loads.push(loadavg()[0]);
      samples[v.name].push(await start(v));
    }
  }
} finally {
  for (const h of hogProcs) h.kill('SIGKILL');
}

const phasesOf = (list: Start[]) => {
  const keys = [...new Set(list.flatMap((s) => Object.keys(s.phases)))];
  return Object.fromEntries(keys.map((k) => [k, list.map((s) => s.phases[k]).filter((x) => x !== undefined)]));
};
const phaseMedians: Record<string, Record<string, number>> = {};
for (const v of variants) {
  const list = samples[v.name];
  const wall = run.metric(`${v.name}_wall_ms`, list.map((s) => s.wall_ms), 'ms (spawn to listening)', 'lower');
  const main = run.metric(`${v.name}_main_cpu_ms`, list.map((s) => s.main_cpu_ms), 'ms CPU, main thread', 'lower');
  const other = run.metric(`${v.name}_other_cpu_ms`, list.map((s) => s.other_cpu_ms), 'ms CPU, other threads', 'lower');
  const total = run.metric(`${v.name}_cpu_ms`, list.map((s) => s.main_cpu_ms + s.other_cpu_ms), 'ms CPU, all threads', 'lower');
  phaseMedians[v.name] = Object.fromEntries(Object.entries(phasesOf(list)).map(([k, xs]) => [k, [...xs].sort((a, b) => a - b)[xs.length >> 1]]));
  console.log(`${v.name}: wall ${describeMetric(wall, 0, ' ms')}; CPU main ${describeMetric(main, 0, ' ms')}, other ${describeMetric(other, 0, ' ms')}, all ${describeMetric(total, 0, ' ms')}`);
  console.log(`${v.name}: phase medians (ms from the start call) ${JSON.stringify(phaseMedians[v.name])}`);
}
const path = run.write({
  builds,
  dist_built_at: statSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')).mtime.toISOString(),
  load_average_at_each_start: loads.map((l) => Math.round(l * 10) / 10),
  phase_medians_ms: phaseMedians,
  samples,
});
console.log(`result: ${relativeResultPath(path)}`);

for (const v of variants) {
  rmSync(v.dataDir, { recursive: true, force: true });
  await admin.query(`DROP DATABASE IF EXISTS ${v.database} WITH (FORCE)`).catch(() => undefined);
  await deleteTopicsWithPrefix(brokers.split(','), v.prefix).catch(() => undefined);
}
await admin.end();
