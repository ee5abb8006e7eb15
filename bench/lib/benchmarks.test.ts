// Static checks that keep the benchmarks honest: every benchmark records its runs through
// BenchRun (so every run gets its own result file with the machine and true medians), and none
// writes files of its own (which is how same-day reruns used to overwrite each other).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './results.js';

/** *.bench.ts files that are not benchmarks of record, and why. */
const NOT_RECORDING: Record<string, string> = {
  'bench/speech-audio.bench.ts': 'builds the speech audio for the other speech benchmarks; runs nothing',
  'bus/embedded.bench.ts': 'not converted yet (outside bench/); prints JSON only',
};

function benchFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (['node_modules', 'dist', '.git', 'data', '.cache'].includes(name)) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) benchFiles(full, out);
    else if (name.endsWith('.bench.ts')) out.push(relative(REPO_ROOT, full));
  }
  return out;
}

const files = benchFiles(REPO_ROOT).sort();

test('the benchmarks are found', () => {
  assert.ok(files.includes('bench/speech-live.bench.ts') && files.includes('bench/coherence.bench.ts'), files.join(', '));
});

test('every benchmark records its runs through BenchRun', () => {
  const missing = files.filter((f) => !(f in NOT_RECORDING) && !readFileSync(join(REPO_ROOT, f), 'utf8').includes('new BenchRun('));
  assert.deepEqual(missing, []);
});

test('no benchmark writes files of its own', () => {
  const writers = files.filter((f) => /\bwriteFile(Sync)?\s*\(/.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
  assert.deepEqual(writers, []);
});
