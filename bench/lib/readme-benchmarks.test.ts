// The README's Benchmarks table quotes only recorded runs: every row cites at least one result
// file in bench/results/, every cited file exists, and a cited file in the current format holds
// medians over at least 3 runs. (Whether the quoted number matches the file is for the reviewer:
// the citation makes that a look-up.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, type ResultFile } from './results.js';

function benchmarksSection(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Benchmarks');
  assert.ok(start >= 0, 'README.md has a "## Benchmarks" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

const cited = (text: string) => [...text.matchAll(/bench\/results\/[A-Za-z0-9._-]+\.json/g)].map((m) => m[0]);

test('every row of the README Benchmarks table cites a result file', () => {
  const rows = benchmarksSection()
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[\s|:-]+\|$/.test(l.trim()));
  const body = rows.slice(1); // the first row is the header
  assert.ok(body.length > 0, 'the section has a table');
  const uncited = body.filter((r) => cited(r).length === 0);
  assert.deepEqual(uncited, []);
});

test('every result file the README cites exists, and new-format ones hold medians over at least 3 runs', () => {
  const files = [...new Set(cited(benchmarksSection()))];
  assert.ok(files.length > 0);
  for (const f of files) {
    assert.ok(existsSync(join(REPO_ROOT, f)), `${f} exists`);
    const r = JSON.parse(readFileSync(join(REPO_ROOT, f), 'utf8')) as Partial<ResultFile>;
    if (r.format !== undefined) {
      assert.ok(Object.values(r.metrics ?? {}).some((m) => m.quotable), `${f} has a metric over ≥ 3 runs`);
    }
  }
});
