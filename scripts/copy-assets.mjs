#!/usr/bin/env node
// Copies the non-TypeScript files the compiled code reads at run time (Avro schemas, the
// local schema-id manifest, the ClickHouse and PostgreSQL migrations) next to it in dist/, so
// that paths resolved from import.meta.url work the same in dist/ as in the sources.
//   node scripts/copy-assets.mjs [out-dir]     (default: dist)
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = resolve(root, process.argv[2] ?? 'dist');
const assets = [
  ['schemas/avro', /\.avsc$/],
  ['schemas/registry', /\.json$/],
  ['schemas/clickhouse', /\.sql$/],
  ['schemas/postgres', /\.sql$/],
];
for (const [dir, pattern] of assets) {
  const from = join(root, dir);
  if (!existsSync(from)) continue;
  for (const name of readdirSync(from)) {
    if (!pattern.test(name)) continue;
    const to = join(out, dir, name);
    mkdirSync(dirname(to), { recursive: true });
    cpSync(join(from, name), to);
  }
}
