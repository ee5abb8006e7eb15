// Every test of a file is registered before its first test ends. scripts/run-tests.mjs runs files
// with --test-force-exit, which ends a file as soon as the tests registered so far have ended:
// a suite registered after a top-level `await` that follows a top-level test() was never run,
// silently (store/clickhouse, store/migrate and store/speech-schema ran 4 of 8, 3 of 7 and 1 of 6
// tests until this check). The rule: no top-level `await` after the first top-level test(),
// describe() or it() — await first, then register.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'coverage']);

function testFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) testFiles(join(dir, entry.name), out);
    } else if (entry.name.endsWith('.test.ts')) out.push(join(dir, entry.name));
  }
  return out;
}

/** The 1-based line of the first top-level `await` after the first top-level registration, or null. */
export function lateTopLevelAwait(source: string): number | null {
  const lines = source.split('\n');
  let registered = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^(test|describe|it|suite)\s*\(/.test(line)) registered = true;
    else if (registered && /^[^\s/*].*\bawait\b/.test(line)) return i + 1;
  }
  return null;
}

test('the check flags an await after a top-level test, and not one before it or inside a test', () => {
  assert.equal(lateTopLevelAwait("test('a', () => {});\n\nfor (const x of await load()) {\n  describe('b', () => {});\n}\n"), 3);
  assert.equal(lateTopLevelAwait("const xs = await load();\ntest('a', () => {});\nfor (const x of xs) describe('b', () => {});\n"), null);
  assert.equal(lateTopLevelAwait("test('a', async () => {\n  await load();\n});\n// await in a comment\n"), null);
});

test('no test file registers tests after a top-level await that follows its first test', () => {
  const late = testFiles(root)
    .map((f) => [relative(root, f), lateTopLevelAwait(readFileSync(f, 'utf8'))] as const)
    .filter(([, line]) => line !== null)
    .map(([f, line]) => `${f}:${line}`);
  assert.deepEqual(late, []);
});
