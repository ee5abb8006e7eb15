// The schemas a user reads name every reason the worker can give for an invalid window: the Avro
// record's doc and the ClickHouse column comment (the newest migration that sets it), so a data
// scientist who finds a reason in coherence_windows.invalid_reason finds what it means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { INVALID_REASONS } from './window-metrics.js';

const repo = new URL('../../', import.meta.url);

test('every invalid reason is documented in the Avro record and the ClickHouse column comment', () => {
  const avro = JSON.parse(readFileSync(new URL('schemas/avro/CoherenceWindow.avsc', repo), 'utf8')) as { fields: Array<{ name: string; doc?: string }> };
  const avroDoc = avro.fields.find((f) => f.name === 'invalid_reason')?.doc ?? '';
  const dir = new URL('schemas/clickhouse/', repo);
  const comments = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .flatMap((f) => [...readFileSync(new URL(f, dir), 'utf8').matchAll(/(?:COMMENT COLUMN invalid_reason|invalid_reason [^\n]*? COMMENT) '((?:[^']|'')*)'/g)].map((m) => m[1]));
  assert.ok(comments.length >= 2, 'the column is commented by 0004 and since');
  const newest = comments[comments.length - 1];
  for (const reason of INVALID_REASONS) {
    assert.ok(avroDoc.includes(reason), `CoherenceWindow.avsc invalid_reason doc names ${reason}`);
    assert.ok(newest.includes(reason), `the newest invalid_reason column comment names ${reason}`);
  }
});
