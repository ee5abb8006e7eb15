import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleavedOrder, median, summarise } from './stats.js';
import { BenchRun, type ResultFile, resultFileName, runsArg } from './results.js';

test('median is the middle of the sorted runs, whatever order they came in', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([9, 2, 7, 4, 8]), 7);
  assert.equal(median([4]), 4);
});

test('median of an even count is the mean of the two middle runs, not the larger', () => {
  // speech-onecore reported 12.6 for the rounds [12.6, 11]: the larger of two.
  assert.equal(median([12.6, 11]), 11.8);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('median refuses no runs and NaN runs', () => {
  assert.throws(() => median([]), RangeError);
  assert.throws(() => median([1, Number.NaN, 3]), RangeError);
});

test('summary keeps every run in order with min and max, and is quotable only from 3 runs', () => {
  const s = summarise([30, 10, 20]);
  assert.deepEqual(s, { runs: [30, 10, 20], n: 3, median: 20, min: 10, max: 30, quotable: true });
  assert.equal(summarise([1, 2]).quotable, false);
});

test('interleaved order measures every variant each round and rotates who goes first', () => {
  const order = interleavedOrder(['a', 'b', 'c'], 4);
  assert.deepEqual(order, [
    ['a', 'b', 'c'],
    ['b', 'c', 'a'],
    ['c', 'a', 'b'],
    ['a', 'b', 'c'],
  ]);
});

test('result file names carry the UTC second and a tag, and refuse names that would make odd paths', () => {
  const at = new Date('2026-12-02T10:07:24.987Z');
  assert.equal(resultFileName('speech-live', at, '0a1b2c'), 'speech-live-20261202T100724Z-0a1b2c.json');
  assert.throws(() => resultFileName('../x', at, 't'));
  assert.throws(() => resultFileName('Speech Live', at, 't'));
});

test('runs argument defaults to at least 3 and rejects nonsense', () => {
  assert.equal(runsArg(undefined, 5), 5);
  assert.equal(runsArg('7', 5), 7);
  assert.throws(() => runsArg(undefined, 2));
  assert.throws(() => runsArg('0', 5));
  assert.throws(() => runsArg('2.5', 5));
});

test('two runs started in the same second write two files, each with machine, git, runs and median', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-bench-results-'));
  try {
    const paths: string[] = [];
    for (const values of [
      [3, 1, 2],
      [10, 40, 20, 30],
    ]) {
      const run = new BenchRun('unit-test', { description: 'a test', options: { runs: values.length }, dir, command: 'test' });
      run.metric('things_per_s', values, 'things/s', 'higher');
      paths.push(run.write({ note: 'details kept' }));
    }
    assert.notEqual(paths[0], paths[1]);
    assert.equal(readdirSync(dir).length, 2);
    const second = JSON.parse(readFileSync(paths[1], 'utf8')) as ResultFile;
    assert.equal(second.benchmark, 'unit-test');
    assert.deepEqual(second.metrics.things_per_s.runs, [10, 40, 20, 30]);
    assert.equal(second.metrics.things_per_s.median, 25);
    assert.equal(second.metrics.things_per_s.min, 10);
    assert.equal(second.metrics.things_per_s.max, 40);
    assert.equal(second.details.note, 'details kept');
    assert.deepEqual(second.options, { runs: 4 });
    for (const key of ['cpu', 'cores', 'memory_gib', 'os', 'node', 'load_average_start', 'load_average_end']) assert.ok(key in second.machine, key);
    assert.equal(second.machine.load_average_start.length, 3);
    assert.ok('commit' in second.git && Array.isArray(second.git.uncommitted));
    assert.ok(Date.parse(second.finished_at) >= Date.parse(second.started_at));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run is written once and a metric recorded once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-bench-results-'));
  try {
    const run = new BenchRun('unit-test', { description: 'a test', dir, command: 'test' });
    run.metric('m', [1, 2, 3], 'x', 'lower');
    assert.throws(() => run.metric('m', [1], 'x', 'lower'));
    run.write();
    assert.throws(() => run.write());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
