// The error catalogue: every reason product code sends is catalogued under one code and
// status, every entry is described, the README table is the script's output, and a reason
// outside the catalogue (or under another code) does not compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ErrorCodes, Reasons, catalogueMarkdown, catalogueRows, isReason, type Reason } from './error-catalogue.js';
import { AttuneError, type ErrorDetail } from './errors.js';

const root = new URL('..', import.meta.url).pathname;
const productDirs = ['api', 'ingest', 'http', 'store', 'pipelines', 'schemas', 'bus', 'lib', 'models', 'cli'];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) sources(full, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.test-util.ts')) out.push(full);
  }
  return out;
}

test('every entry has a known code, the status of its code, and a one-line description', () => {
  const names = Object.keys(Reasons);
  assert.ok(names.length >= 50, `only ${names.length} reasons`);
  for (const [reason, e] of Object.entries(Reasons)) {
    assert.match(reason, /^[a-z][a-z0-9_]*$/, reason);
    assert.ok(Object.hasOwn(ErrorCodes, e.code), `${reason}: unknown code ${e.code}`);
    assert.equal(e.status, ErrorCodes[e.code].status, reason);
    assert.ok(e.description.length >= 10 && !e.description.includes('\n'), `${reason}: description`);
  }
  // The codes clients know stay, each with its status (README, ../shared/seeds 000).
  const documented = { unauthorized: 401, forbidden: 403, not_found: 404, validation_error: 400, conflict: 409, payload_too_large: 413, unsupported_media_type: 415, rate_limited: 429, unavailable: 503, internal_error: 500 };
  for (const [code, status] of Object.entries(documented)) assert.equal(ErrorCodes[code as keyof typeof ErrorCodes]?.status, status, code);
  // Every status has one generic code; the coherence platform's specific codes (mesh_full,
  // insufficient_tier, device_not_connected, insufficient_coherence_level) share a status with
  // one, and nothing else does.
  const specific = ['insufficient_tier', 'mesh_full', 'device_not_connected', 'insufficient_coherence_level'];
  const statuses = Object.entries(ErrorCodes).filter(([code]) => !specific.includes(code)).map(([, c]) => c.status);
  assert.equal(new Set(statuses).size, statuses.length);
  assert.deepEqual(specific.map((c) => ErrorCodes[c as keyof typeof ErrorCodes]?.status), [403, 409, 400, 403]);
});

test('every reason literal in product code is catalogued', () => {
  // `reason: '…'`, `reasonCode: '…'` and a reason passed to a helper as the only argument.
  const literal = /\breason(?:Code)?\s*:\s*(['"`])([^'"`]*)\1/g;
  // Fields named reason that are not error details: a bus log record's decode result and a
  // forced alignment's fallback note (AlignOutcome.reason), a live hub's eviction label in
  // /metrics (attune_live_evictions_total{reason}). Listed by file, so a new one fails.
  const notDetails: Record<string, number> = { 'bus/record-format.ts': 3, 'pipelines/speech/stream/recognition.ts': 1, 'cli/metrics.ts': 1 };
  const seenNotDetails: Record<string, number> = {};
  const found = new Map<string, string>();
  const unknown: string[] = [];
  for (const dir of productDirs) {
    for (const file of sources(join(root, dir))) {
      if (file.endsWith('error-catalogue.ts')) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(literal)) {
        const rel = relative(root, file);
        const where = `${rel}:${text.slice(0, m.index).split('\n').length}`;
        if (isReason(m[2])) found.set(m[2], where);
        else if (rel in notDetails) seenNotDetails[rel] = (seenNotDetails[rel] ?? 0) + 1;
        else unknown.push(`${where} ${m[0]}`);
      }
    }
  }
  assert.deepEqual(unknown, []);
  assert.deepEqual(seenNotDetails, notDetails);
  // The scan sees the code (it would pass vacuously on an empty match).
  for (const r of ['version_conflict', 'missing_scope', 'undecodable', 'invalid_reading', 'unsupported_encoding']) assert.ok(found.has(r), r);
});

test('the README table is what scripts/error-catalogue.ts prints', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/error-catalogue.ts')], { cwd: root, encoding: 'utf8' });
  assert.equal(out, catalogueMarkdown());
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], '| code | status | reason | description |');
  assert.equal(lines.length - 2, Object.keys(Reasons).length);
  // Sorted by status, code, reason; every reason once.
  const rows = catalogueRows();
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1], rows[i]];
    assert.ok(a.status < b.status || (a.status === b.status && (a.code < b.code || (a.code === b.code && a.reason < b.reason))), `${a.reason} before ${b.reason}`);
  }
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('<!-- error-catalogue:start -->');
  const end = readme.indexOf('<!-- error-catalogue:end -->');
  if (start >= 0 || end >= 0) {
    assert.ok(start >= 0 && end > start, 'both markers, start before end');
    const block = readme.slice(start + '<!-- error-catalogue:start -->'.length, end).trim();
    assert.equal(block, out.trim(), 'README error catalogue differs: paste `npx tsx scripts/error-catalogue.ts`');
  }
  assert.ok(existsSync(join(root, 'scripts/error-catalogue.ts')));
});

test('a reason outside the catalogue, or under another code, does not compile', () => {
  // Typechecked by `tsc -p tsconfig.json` (this file is included): each line must be an error.
  // @ts-expect-error: not a catalogued reason
  const notCatalogued: ErrorDetail = { reason: 'must be >= 250' };
  // @ts-expect-error: version_conflict is a conflict (409), not a validation_error
  const wrongCode = new AttuneError('validation_error', 'x', [{ reason: 'version_conflict' }]);
  const fine = new AttuneError('conflict', 'x', [{ reason: 'version_conflict', message: 'free text goes here' }]);
  assert.equal(fine.statusCode, 409);
  assert.equal(wrongCode.statusCode, 400);
  assert.equal(notCatalogued.reason, 'must be >= 250');
  const r: Reason = 'invalid_type';
  assert.equal(Reasons[r].status, 400);
});
