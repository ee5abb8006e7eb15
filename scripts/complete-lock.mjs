#!/usr/bin/env node
// chdb lists a native library package per platform as optional dependencies. A lock file
// written on a machine whose registry does not serve the other platforms' packages lacks
// their entries, and `npm ci` then refuses the lock as out of sync. This adds the missing
// entries (platform-restricted and optional, so npm skips them elsewhere). Run it after any
// `npm install` that rewrites package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const chdb = JSON.parse(readFileSync(new URL('../node_modules/chdb/package.json', import.meta.url), 'utf8'));
const platforms = {
  'lib-darwin-arm64': [['darwin'], ['arm64']],
  'lib-darwin-x64': [['darwin'], ['x64']],
  'lib-linux-arm64-gnu': [['linux'], ['arm64']],
  'lib-linux-x64-gnu': [['linux'], ['x64']],
};
let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const base = name.split('/')[1];
  const [os, cpu] = platforms[base] ?? [[], []];
  lock.packages[key] = {
    version,
    resolved: `https://registry.npmjs.org/${name}/-/${base}-${version}.tgz`,
    cpu,
    os,
    optional: true,
    license: chdb.license,
  };
  added++;
}
const sorted = { '': lock.packages[''] };
for (const k of Object.keys(lock.packages).filter((k) => k !== '').sort()) sorted[k] = lock.packages[k];
lock.packages = sorted;
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`complete-lock: added ${added} platform entr${added === 1 ? 'y' : 'ies'}`);
