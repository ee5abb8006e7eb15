#!/usr/bin/env node
// Runs every *.test.ts beside the code with node's own test runner (through tsx), one process
// per file so that each file may own its chDB data directory, two files at a time.
// Usage: npm test [-- path-substring ...]
//
// The files are scheduled here, not by `node --test`: node 20 sorts the files it is given by
// path, so the longest ones (the Kafka suites, minutes each) ran wherever their names fell, and
// the two Kafka end-to-end suites (test/e2e.kafka, test/speech-e2e.kafka) never side by side.
// Here the longest start first (the end-to-end pair together, then the other Kafka suites,
// then the rest by path), so they run beside each other and the short files fill in around
// them, and issue 10's "both Kafka end-to-end suites in parallel" is what every `npm test` does
// (each has its own topic prefix, and consumer group ids carry it: pipelines/group-id.ts).
// A file's output is printed whole when it ends, so two files' lines never interleave.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const skipDirs = new Set(['node_modules', 'dist', 'data', '.git', '.cache']);
const CONCURRENCY = 2;

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (skipDirs.has(name)) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}

const FIRST = ['test/e2e.kafka.test.ts', 'test/speech-e2e.kafka.test.ts'];
const rank = (f) => (FIRST.includes(f) ? FIRST.indexOf(f) : f.includes('.kafka.') ? FIRST.length : FIRST.length + 1);

const filters = process.argv.slice(2);
const files = walk(root, [])
  .sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// --test-force-exit: a file whose tests have ended (passed, failed or timed out) exits even if
// something it started still holds the event loop (a Kafka client retrying against a stopped
// broker, a child's pipe): in CI such a file once held its lane for 10 minutes after its
// before-hook failed. FILE_TIMEOUT_MS is the last resort for a file that never ends at all.
const nodeArgs = (f) => ['--import', 'tsx', '--test', '--test-force-exit', '--test-reporter=spec', ...f];
const FILE_TIMEOUT_MS = Number(process.env.ATTUNE_TEST_FILE_TIMEOUT_MS ?? 15 * 60_000);

if (files.length === 1) {
  // One file: its output as it comes.
  const res = spawnSync(process.execPath, nodeArgs(files), { stdio: 'inherit', cwd: root });
  process.exit(res.status ?? 1);
}

const results = [];
let next = 0;
async function runOne(file) {
  const started = Date.now();
  console.log(`▷ ${file} (started)`);
  const child = spawn(process.execPath, nodeArgs([file]), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => out.push(d));
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    out.push(Buffer.from(`\n✖ ${file}: still running after ${FILE_TIMEOUT_MS / 1000} s, killed (ATTUNE_TEST_FILE_TIMEOUT_MS)\n`));
    child.kill('SIGKILL');
  }, FILE_TIMEOUT_MS);
  const code = await new Promise((resolve) => child.once('close', (c, signal) => resolve(timedOut ? 1 : (c ?? (signal ? 1 : 0)))));
  clearTimeout(killer);
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`\n━━ ${file} (${seconds.toFixed(1)} s, ${code === 0 ? 'passed' : `FAILED, exit ${code}`})\n`);
  process.stdout.write(Buffer.concat(out));
  results.push({ file, code, seconds });
}
async function lane() {
  while (next < files.length && !interrupted) await runOne(files[next++]);
}
let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true;
});
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, lane));
const failed = results.filter((r) => r.code !== 0);
console.log(`\n${results.length} files, ${results.length - failed.length} passed, ${failed.length} failed`);
for (const r of failed) console.log(`  ✖ ${r.file} (exit ${r.code}, ${r.seconds.toFixed(1)} s)`);
process.exit(failed.length > 0 || interrupted ? 1 : 0);
