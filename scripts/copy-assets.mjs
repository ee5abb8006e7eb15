#!/usr/bin/env node
// Copies the non-TypeScript files the compiled code reads at run time (Avro schemas, the
// local schema-id manifest, SQL migrations) next to it in dist/, so that paths resolved from
// import.meta.url work the same in dist/ as in the sources.
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const assets = [
  ['schemas/avro', /\.avsc$/],
  ['schemas/registry', /\.json$/],
  ['schemas/clickhouse', /\.sql$/],
];
for (const [dir, pattern] of assets) {
  const from = join(root, dir);
  if (!existsSync(from)) continue;
  for (const name of readdirSync(from)) {
    if (!pattern.test(name)) continue;
    const to = join(root, 'dist', dir, name);
    mkdirSync(dirname(to), { recursive: true });
    cpSync(join(from, name), to);
  }
}
