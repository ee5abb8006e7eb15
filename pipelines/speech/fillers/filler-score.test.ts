import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gapMs, scoreFillers, type TruthSpan } from './filler-score.js';

const t = (startMs: number, endMs: number, altCount?: [number, number]): TruthSpan => ({ startMs, endMs, filler: 'uh', ...(altCount ? { altCount } : {}) });
const d = (startMs: number, endMs: number) => ({ startMs, endMs });

test('gap between intervals: 0 when they overlap, else the silence between them', () => {
  assert.equal(gapMs(d(0, 100), d(50, 200)), 0);
  assert.equal(gapMs(d(0, 100), d(250, 300)), 150);
  assert.equal(gapMs(d(250, 300), d(0, 100)), 150);
});

test('a detection within 300 ms of a truth filler matches it; farther is false', () => {
  const s = scoreFillers([t(1000, 1500)], [d(1750, 1900), d(2000, 2100)]);
  assert.equal(s.found, 1);
  assert.deepEqual(s.matches, [[0]]);
  assert.equal(s.falseHits, 1);
  assert.deepEqual(s.falseIndexes, [1]);
  assert.equal(scoreFillers([t(1000, 1500)], [d(1801, 1900)]).found, 0);
});

test('each truth filler takes one detection: a second one on it is false', () => {
  const s = scoreFillers([t(1000, 1500)], [d(1000, 1200), d(1250, 1500)]);
  assert.equal(s.found, 1);
  assert.equal(s.falseHits, 1);
});

test('alt_count: a spot counted as one or two fillers takes up to two detections and is found with one', () => {
  const truth = [t(7330, 7900, [1, 2])];
  assert.deepEqual([scoreFillers(truth, [d(7300, 7600)]).found, scoreFillers(truth, [d(7300, 7600)]).falseHits], [1, 0]);
  const two = scoreFillers(truth, [d(7300, 7600), d(7600, 7900)]);
  assert.deepEqual([two.found, two.falseHits], [1, 0]);
  const three = scoreFillers(truth, [d(7300, 7500), d(7500, 7700), d(7700, 7900)]);
  assert.deepEqual([three.found, three.falseHits], [1, 1]);
});

test('the nearest pairs are matched first, so a detection on a filler is not taken by its neighbour', () => {
  // Two fillers 400 ms apart; the detection on the second is within 300 ms of the first as well.
  const s = scoreFillers([t(1000, 1400), t(1800, 2200)], [d(1650, 2000), d(1100, 1300)]);
  assert.equal(s.found, 2);
  assert.deepEqual(s.matches, [[1], [0]]);
});
