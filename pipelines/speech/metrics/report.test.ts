import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectFillers } from './fillers.js';
import { fillerReport } from './report.js';
import { timedWords } from './timed-words.test-util.js';

test('fillerReport: counts, timestamps and rate per minute for each filler, and totals', () => {
  // 12 words of 500 ms: 6 s. Fillers: um (0), you know (3–4), um (7), like (10).
  const words = timedWords('um we went , you know , um home and , like , slept', 500);
  const hits = detectFillers(words);
  const report = fillerReport(hits, 30_000);
  assert.equal(report.totalCount, 4);
  assert.equal(report.totalPerMinute, 8);
  assert.deepEqual(report.fillers, [
    { filler: 'um', count: 2, perMinute: 4, timestamps: [{ startMs: 0, endMs: 500 }, { startMs: 3500, endMs: 4000 }] },
    { filler: 'like', count: 1, perMinute: 2, timestamps: [{ startMs: 5500, endMs: 6000 }] },
    { filler: 'you know', count: 1, perMinute: 2, timestamps: [{ startMs: 2000, endMs: 3000 }] },
  ]);
});

test('fillerReport: no hits or zero duration give zero rates', () => {
  assert.deepEqual(fillerReport([], 60_000), { durationMs: 60_000, totalCount: 0, totalPerMinute: 0, fillers: [] });
  const r = fillerReport(detectFillers(timedWords('um uh')), 0);
  assert.equal(r.totalCount, 2);
  assert.equal(r.totalPerMinute, 0);
  assert.ok(r.fillers.every((f) => f.perMinute === 0));
});

test('fillerReport: timestamps are in time order even when hits are not', () => {
  const hits = detectFillers(timedWords('uh a uh b uh', 100)).reverse();
  const [uh] = fillerReport(hits, 60_000).fillers;
  assert.deepEqual(uh.timestamps.map((t) => t.startMs), [0, 200, 400]);
  assert.equal(uh.perMinute, 3);
});
