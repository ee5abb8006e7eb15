// The layer rules of .dependency-cruiser.cjs: the tree obeys them, and each rule catches the
// import it forbids (a rule that matched nothing would pass every tree). Each case builds a
// two-file tree in a temporary directory and runs the real depcruise CLI with the real config.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const depcruise = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function cruise(cwd: string, paths: string[]): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [depcruise, '--config', '.dependency-cruiser.cjs', '--output-type', 'err', ...paths], { cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** Files: path → source. Every file exports `x`. */
async function cruiseTree(files: Record<string, string>): Promise<{ status: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'attune-depcruise-'));
  try {
    copyFileSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    // The real packages, for the rules about npm dependencies.
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }));
    for (const [path, src] of Object.entries(files)) {
      mkdirSync(join(dir, dirname(path)), { recursive: true });
      writeFileSync(join(dir, path), src);
    }
    const tops = [...new Set(Object.keys(files).map((p) => p.split('/')[0]))];
    return await cruise(dir, tops);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const leaf = 'export const x = 1;\n';
const importer = (spec: string) => `import { x } from '${spec}';\nexport const y = x;\n`;

test('the repository obeys its layer rules', async () => {
  const { status, out } = await cruise(root, ['lib', 'schemas', 'store', 'bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli', 'simulator', 'bench', 'scripts', 'test']);
  assert.equal(status, 0, out);
  assert.match(out, /no dependency violations found/);
});

const forbidden: { edge: string; rule: string; files: Record<string, string> }[] = [
  { edge: 'pipelines → api', rule: 'pipelines-below-http', files: { 'pipelines/w.ts': importer('../api/a.js'), 'api/a.ts': leaf } },
  { edge: 'pipelines → ingest', rule: 'pipelines-below-http', files: { 'pipelines/w.ts': importer('../ingest/a.js'), 'ingest/a.ts': leaf } },
  { edge: 'api → ingest', rule: 'api-not-ingest', files: { 'api/r.ts': importer('../ingest/g.js'), 'ingest/g.ts': leaf } },
  { edge: 'ingest → api', rule: 'ingest-not-api', files: { 'ingest/g.ts': importer('../api/r.js'), 'api/r.ts': leaf } },
  { edge: 'http → api', rule: 'http-below-routes', files: { 'http/h.ts': importer('../api/r.js'), 'api/r.ts': leaf } },
  { edge: 'store → http', rule: 'store-below-pipelines', files: { 'store/s.ts': importer('../http/h.js'), 'http/h.ts': leaf } },
  { edge: 'schemas → bus', rule: 'schemas-below-all', files: { 'schemas/s.ts': importer('../bus/b.js'), 'bus/b.ts': leaf } },
  { edge: 'lib → schemas', rule: 'lib-is-the-bottom', files: { 'lib/l.ts': importer('../schemas/s.js'), 'schemas/s.ts': leaf } },
  { edge: 'product → test utility', rule: 'product-not-tooling', files: { 'api/r.ts': importer('./r.test-util.js'), 'api/r.test-util.ts': leaf } },
  { edge: 'api → models', rule: 'api-not-ingest', files: { 'api/r.ts': importer('../models/m.js'), 'models/m.ts': leaf } },
  { edge: 'bus → store', rule: 'bus-below-pipelines', files: { 'bus/b.ts': importer('../store/s.js'), 'store/s.ts': leaf } },
  { edge: 'models → store', rule: 'models-below-pipelines', files: { 'models/m.ts': importer('../store/s.js'), 'store/s.ts': leaf } },
  { edge: 'simulator → api', rule: 'simulator-is-a-client', files: { 'simulator/d.ts': importer('../api/r.js'), 'api/r.ts': leaf } },
  { edge: 'a folder with no place in the layers', rule: 'known-folders', files: { 'api/r.ts': importer('../workers/w.js'), 'workers/w.ts': leaf } },
  { edge: 'an import of nothing', rule: 'no-unresolvable', files: { 'api/r.ts': importer('./missing.js') } },
  {
    edge: 'a static import of a native module',
    rule: 'native-modules-on-demand',
    files: { 'store/s.ts': `import { PGlite } from '@electric-sql/pglite';\nexport const x = PGlite;\n` },
  },
  {
    edge: 'a dev dependency in product code',
    rule: 'product-not-dev-deps',
    files: { 'store/s.ts': `import { tsImport } from 'tsx/esm/api';\nexport const x = tsImport;\n` },
  },
  {
    edge: 'a cycle',
    rule: 'no-circular',
    files: { 'api/a.ts': `import { y } from './b.js';\nexport const x = 1 + (y ?? 0);\n`, 'api/b.ts': `import { x } from './a.js';\nexport const y = x;\n` },
  },
];

// Each case is its own depcruise process (about a second of CPU): several at once.
describe('each rule refuses the import it forbids', { concurrency: 4 }, () => {
  for (const c of forbidden) {
    test(`the rules refuse ${c.edge} (${c.rule})`, async () => {
      const { status, out } = await cruiseTree(c.files);
      assert.notEqual(status, 0, `depcruise accepted ${c.edge}:\n${out}`);
      assert.match(out, new RegExp(`error ${c.rule}:`), out);
    });
  }
});

test('the rules allow the layers’ own direction, and tests reaching anywhere', async () => {
  const { status, out } = await cruiseTree({
    'cli/main.ts': importer('../api/r.js'),
    'api/r.ts': importer('../http/h.js'),
    'http/h.ts': importer('../store/s.js'),
    'store/s.ts': importer('../schemas/t.js'),
    'schemas/t.ts': importer('../lib/l.js'),
    'lib/l.ts': leaf,
    'pipelines/w.ts': importer('../store/s.js'),
    'ingest/g.test.ts': importer('../api/r.js'),
    // Native modules by dynamic import, or for their types only.
    'store/p.ts': `import type { PGlite } from '@electric-sql/pglite';\nexport async function open(): Promise<PGlite> { const m = await import('@electric-sql/pglite'); return m.PGlite.create(); }\n`,
  });
  assert.equal(status, 0, out);
});
