// Sums a V8 CPU profile's (node --cpu-prof) self time per function and per file, to see where
// a benchmark's time goes without a profiler UI:
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/kafka.bench.ts --child=kafkajs,pipeline readings=200000
//   node --import tsx bench/lib/cpu-profile-summary.ts /tmp/prof/*.cpuprofile [top=30] [stages=1] [per=200000]
//
// stages=1 also sums the samples per stage of the Kafka pipeline (STAGES): a sample belongs to
// the stage of the nearest repository frame on its stack that names one (so a library called by
// the coherence worker counts as the worker's), else to the first library stage on its stack
// (kafkajs's own network and consumer loops have no repository caller), else to `other`;
// per=N divides each stage by N (readings) to give µs per reading.
//
// Self time is attributed from the samples (each sample's node, weighted by its time delta).
// Files are shortened to the package (node_modules/<pkg>) or the repository path.
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from './results.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortFile(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return 'npm:' + (rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]);
  }
  if (url.startsWith('node:')) return url;
  const path = url.replace(/^file:\/\//, '');
  return path.startsWith(REPO_ROOT) ? path.slice(REPO_ROOT.length) : path;
}

/** Stages of bench:kafka's pipeline, by the file of a frame: repository files first, then libraries. */
const STAGES: Array<[string, RegExp]> = [
  ['gateway (ingest/, http/)', /\/(ingest|http)\/(?!live-hub)/],
  ['readings sink', /\/pipelines\/readings-sink\./],
  ['coherence worker', /\/pipelines\/coherence\//],
  ['result sinks', /\/pipelines\/(sinks|table-sink)/],
  ['live hub', /\/http\/live-hub\.|\/api\/live\./],
];
const LIBRARY_STAGES: Array<[string, RegExp]> = [
  ['fastify', /node_modules\/(fastify|secure-json-parse|find-my-way|@fastify)\//],
  ['batch writer, ClickHouse client, chDB', /\/store\/batch-writer\.|node_modules\/(@clickhouse|chdb)\//],
  ['kafkajs producer', /kafkajs\/src\/(producer|protocol\/requests\/produce)\//],
  ['kafkajs consumer', /kafkajs\/src\/(consumer|protocol\/requests\/fetch)\//],
  ['kafkajs network', /kafkajs\/src\/network\//],
  ['@platformatic/kafka', /node_modules\/@platformatic\/kafka\//],
  ['PGlite', /node_modules\/@electric-sql\/pglite\//],
];

function stageOf(urls: string[]): string {
  for (const u of urls) {
    if (!u.startsWith('file://') || u.includes('node_modules')) continue;
    for (const [name, re] of STAGES) if (re.test(u)) return name;
  }
  for (const u of urls) for (const [name, re] of LIBRARY_STAGES) if (re.test(u)) return name;
  return 'other';
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('top='))?.slice(4) ?? 30);
const stages = args.includes('stages=1');
const per = Number(args.find((a) => a.startsWith('per='))?.slice(4) ?? 0);
for (const file of args.filter((a) => !a.includes('='))) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const f = shortFile(n.callFrame.url);
    const name = `${n.callFrame.functionName || '(anonymous)'} ${f}${n.callFrame.url ? ':' + (n.callFrame.lineNumber + 1) : ''}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const idle = [...fns].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
  const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
  const ms = (us: number) => (us / 1000).toFixed(0).padStart(7) + ' ms';
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(idle / 1e6).toFixed(1)} s idle`);
  console.log(`-- self time by file (top ${top})`);
  for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
  console.log(`-- self time by function (top ${top})`);
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
  if (stages) {
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const byStage = new Map<string, number>();
    for (const [id, us] of selfUs) {
      const fn = byId.get(id)!.callFrame.functionName;
      let stage: string;
      if (fn === '(idle)' || fn === '(garbage collector)' || fn === '(program)') stage = fn;
      else {
        const urls: string[] = [];
        for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) urls.push(byId.get(c)!.callFrame.url);
        stage = stageOf(urls);
      }
      byStage.set(stage, (byStage.get(stage) ?? 0) + us);
    }
    console.log(`-- self time by stage${per ? ` (µs per reading of ${per})` : ''}`);
    for (const [k, v] of [...byStage].sort((a, b) => b[1] - a[1])) console.log(`${ms(v)} ${pct(v)}${per ? ((v / per).toFixed(1) + ' µs').padStart(10) : ''}  ${k}`);
  }
}
