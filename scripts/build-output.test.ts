// What `npm run build` puts in dist/ (issue 8): the product code and the files it reads at run
// time, and no tests, test utilities, contract suites or benchmarks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The sources tsc compiles for the build (every one is emitted to dist/), relative to the repository. */
function buildSources(): string[] {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: root, encoding: 'utf8' });
  const files = res.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(root) && !l.includes('/node_modules/'))
    .map((l) => relative(root, l));
  assert.ok(files.includes('cli/main.ts'), `tsc listed the build's files (status ${res.status}): ${res.stderr.slice(0, 500)}`);
  return files;
}

test('the build compiles no tests, test utilities, contract suites or benchmarks', () => {
  const files = buildSources();
  // By name: the conventions (x.test.ts, x.test-util.ts, x.contract.ts, x.bench.ts), the tooling
  // folders, and names that say "test" or "contract" in any other way (test-stores.ts, contract.ts).
  const byName = files.filter((f) => /^(test|bench|scripts)\//.test(f) || /(^|[-./])(tests?|contract|bench|fixtures?)([-./]|$)/.test(f.split('/').at(-1)!.replace(/\.ts$/, '')));
  assert.deepEqual(byName, []);
  // By content: product code does not run tests or assertions.
  const byContent = files.filter((f) => /from\s+'node:(test|assert)(\/strict)?'/.test(readFileSync(join(root, f), 'utf8')));
  assert.deepEqual(byContent, []);
});

test('the build compiles every product folder, http/ included', () => {
  const files = buildSources();
  for (const dir of ['lib', 'schemas', 'store', 'bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli', 'simulator']) {
    assert.ok(files.some((f) => f.startsWith(`${dir}/`)), `${dir}/ is compiled`);
  }
  // A product file nothing imports yet is still built: every non-test .ts file of http/ is listed.
  const http = readdirSync(join(root, 'http')).filter((f) => f.endsWith('.ts') && !/\.(test|test-util|contract|bench)\.ts$/.test(f));
  assert.deepEqual(http.filter((f) => !files.includes(`http/${f}`)), []);
});

test('copy-assets puts the Avro schemas, the schema-id manifest and both migration folders beside the compiled code', () => {
  const out = mkdtempSync(join(tmpdir(), 'attune-assets-'));
  try {
    const res = spawnSync(process.execPath, [join(root, 'scripts', 'copy-assets.mjs'), out], { cwd: root, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const expected: Record<string, RegExp> = {
      'schemas/avro': /\.avsc$/,
      'schemas/registry': /\.json$/,
      'schemas/clickhouse': /\.sql$/,
      'schemas/postgres': /\.sql$/,
    };
    for (const [dir, pattern] of Object.entries(expected)) {
      const sources = readdirSync(join(root, dir)).filter((n) => pattern.test(n));
      assert.ok(sources.length > 0, `${dir} has files to copy`);
      const missing = sources.filter((n) => !existsSync(join(out, dir, n)) || readFileSync(join(out, dir, n), 'utf8') !== readFileSync(join(root, dir, n), 'utf8'));
      assert.deepEqual(missing, [], `${dir} copied`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
