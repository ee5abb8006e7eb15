// How long `attune token` takes from the shell (issue 8: "starts in well under a second"), and
// which packages it loads: a whole `node bin/attune.js token --user u --org o` process, from
// spawn to exit, on the compiled dist/. `node -e ""` is measured beside it: the floor any Node
// command pays.
//
//   node --import tsx bench/cli-start.bench.ts [runs=15] [--baseline=<git rev>] [--build]
//
// With --baseline, the same command also runs on that commit's code (bench/lib/baseline.ts:
// a git archive in a temporary directory, compiled there), in the same run, interleaved.
// --build compiles this checkout's dist/ first (`npm run build`); without it, dist/ is measured
// as it is (details.dist_built_at says when it was built).
// Wall time is measured here around the spawn (it includes /usr/bin/time's own exec, ~1 ms);
// CPU (user + system, all the child's threads, 10 ms resolution) comes from /usr/bin/time. The package list
// comes from one extra process per variant with test/load-recorder.mjs (not timed: the recorder
// slows loading).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchRun, describeMetric, relativeResultPath, REPO_ROOT, runsArg } from './lib/results.js';
import { interleavedOrder } from './lib/stats.js';
import { prepareBaseline, type Baseline } from './lib/baseline.js';
import { LOAD_RECORDER, readLoadLog } from '../test/loaded-modules.js';

const argv = process.argv.slice(2);
const baselineRev = argv.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
const build = argv.includes('--build');
const positional = argv.filter((a) => !a.startsWith('--'));
const runs = runsArg(positional[0], 15);

/** Packages whose loading `token` should not pay for (the server, stores, bus and models). */
const HEAVY = ['fastify', 'kafkajs', '@kafkajs/confluent-schema-registry', '@clickhouse/client', 'chdb', 'pg', '@electric-sql/pglite', 'onnxruntime-node', 'soundswallower', 'avsc'];

function compile(dir: string): { tsc_status: number | null } {
  // tsc emits even with type errors elsewhere in a shared working tree; its status is recorded.
  const tsc = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(process.execPath, ['scripts/copy-assets.mjs'], { cwd: dir, stdio: 'inherit' });
  if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) throw new Error(`no dist/cli/main.js in ${dir} after compiling`);
  return { tsc_status: tsc.status };
}

interface Variant {
  name: string;
  cwd: string;
  args: string[];
}

const baseline: Baseline | null = baselineRev ? prepareBaseline(baselineRev) : null;
const builds: Record<string, unknown> = {};
if (build) builds.current = compile(REPO_ROOT);
if (baseline) builds.baseline = compile(baseline.dir);
if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` or pass --build');

const dataDir = mkdtempSync(join(tmpdir(), 'attune-cli-start-'));
const tokenArgs = ['bin/attune.js', 'token', '--user', 'u', '--org', 'o', '--data-dir', dataDir];
const variants: Variant[] = [
  { name: 'node_bare', cwd: REPO_ROOT, args: ['-e', ''] },
  { name: 'token', cwd: REPO_ROOT, args: tokenArgs },
  ...(baseline ? [{ name: 'baseline_token', cwd: baseline.dir, args: tokenArgs }] : []),
];
// The environment of a plain `attune token`: no servers configured.
const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'error' };
for (const name of ['CLICKHOUSE_URL', 'DATABASE_URL', 'KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL', 'NODE_OPTIONS']) delete env[name];

function timed(v: Variant): { wall_ms: number; cpu_ms: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', process.execPath, ...v.args], { cwd: v.cwd, env, encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${v.name} exited with ${r.status}: ${r.stderr}`);
  if (v.name.endsWith('token') && !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(r.stdout.trim())) throw new Error(`${v.name} printed no token: ${r.stdout}`);
  const m = /TIME [\d.]+ ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  if (!m) throw new Error(`no timing from /usr/bin/time: ${r.stderr}`);
  return { wall_ms: wall, cpu_ms: (Number(m[1]) + Number(m[2])) * 1000 };
}

function loaded(v: Variant) {
  const log = join(dataDir, `${v.name}.load.log`);
  const r = spawnSync(process.execPath, ['--import', LOAD_RECORDER, ...v.args], { cwd: v.cwd, env: { ...env, ATTUNE_LOAD_LOG: log }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${v.name} (recorded) exited with ${r.status}: ${r.stderr}`);
  const l = readLoadLog(log);
  const ours = l.files.filter((f) => !f.includes('/node_modules/') && f.startsWith(v.cwd)).length;
  return {
    module_files: l.files.length - l.natives.length,
    attune_files: ours,
    packages: [...l.packages].sort(),
    heavy_packages: HEAVY.filter((p) => l.packages.has(p)),
    natives: l.natives.filter((n) => n.includes('/node_modules/')).map((n) => n.slice(n.lastIndexOf('/node_modules/') + 1)),
  };
}

const run = new BenchRun('cli-start', {
  description:
    'Wall and CPU time of a whole `node bin/attune.js token --user u --org o` process on the compiled dist/ (spawn to exit, /usr/bin/time), beside `node -e ""`; with --baseline, the same on an earlier commit, interleaved; and the packages each loads',
  options: { runs, baseline: baseline ? { rev: baselineRev, commit: baseline.commit } : null, build, variants: variants.map((v) => v.name) },
});

for (const v of variants) timed(v); // warm-up: the data-dir secret, the file cache
const samples: Record<string, { wall_ms: number[]; cpu_ms: number[] }> = Object.fromEntries(variants.map((v) => [v.name, { wall_ms: [], cpu_ms: [] }]));
for (const order of interleavedOrder(variants, runs)) {
  for (const v of order) {
    const t = timed(v);
    samples[v.name].wall_ms.push(t.wall_ms);
    samples[v.name].cpu_ms.push(t.cpu_ms);
  }
}
for (const v of variants) {
  const wall = run.metric(`${v.name}_wall_ms`, samples[v.name].wall_ms, 'ms (spawn to exit)', 'lower');
  const cpu = run.metric(`${v.name}_cpu_ms`, samples[v.name].cpu_ms, 'ms CPU (user + system)', 'lower');
  console.log(`${v.name}: wall ${describeMetric(wall, 0, ' ms')}; CPU ${describeMetric(cpu, 0, ' ms')}`);
}
const loads = Object.fromEntries(variants.filter((v) => v.name !== 'node_bare').map((v) => [v.name, loaded(v)]));
for (const [name, l] of Object.entries(loads)) {
  console.log(`${name}: ${l.module_files} module files (${l.attune_files} of Attune), ${l.packages.length} packages; heavy: ${l.heavy_packages.join(', ') || 'none'}; native: ${l.natives.join(', ') || 'none'}`);
}
const path = run.write({
  builds,
  dist_built_at: statSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')).mtime.toISOString(),
  loaded: loads,
});
rmSync(dataDir, { recursive: true, force: true });
console.log(`result: ${relativeResultPath(path)}`);
