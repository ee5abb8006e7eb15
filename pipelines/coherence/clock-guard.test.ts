import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionClockGuard } from './clock-guard.js';

// Readings of one second each, contiguous: reading i covers [i s, i+1 s).
const offerSecond = (g: SessionClockGuard<string>, startS: number, offset: number, name = `r${offset}`) =>
  g.offer(startS * 1000, (startS + 1) * 1000, BigInt(offset), name);

test('a reading far ahead of the clock is held, then quarantined when the next reading continues the old clock', () => {
  const g = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: 0 });
  for (let i = 0; i < 5; i++) assert.deepEqual(offerSecond(g, i, i), { release: [`r${i}`], quarantine: [] });
  assert.deepEqual(offerSecond(g, 245, 5, 'outlier'), { release: [], quarantine: [] });
  assert.equal(g.heldCount, 1);
  assert.equal(g.heldMinOffset(), 5n);
  assert.equal(g.clockMs, 5000, 'the held reading did not move the clock');
  assert.deepEqual(offerSecond(g, 5, 6), { release: ['r6'], quarantine: ['outlier'] });
  assert.equal(g.heldCount, 0);
  assert.equal(g.heldMinOffset(), null);
  assert.equal(g.clockMs, 6000);
});

test('a jump the next readings agree with is released whole, in order, and moves the clock', () => {
  const g = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: 0 });
  offerSecond(g, 0, 0);
  assert.deepEqual(offerSecond(g, 600, 1), { release: [], quarantine: [] });
  assert.deepEqual(offerSecond(g, 601, 2), { release: [], quarantine: [] });
  assert.equal(g.heldMinOffset(), 1n);
  assert.deepEqual(offerSecond(g, 602, 3), { release: ['r1', 'r2', 'r3'], quarantine: [] });
  assert.equal(g.clockMs, 603_000);
  assert.deepEqual(offerSecond(g, 603, 4), { release: ['r4'], quarantine: [] });
});

test('two outliers that disagree with each other are both quarantined', () => {
  const g = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: 0 });
  offerSecond(g, 0, 0);
  offerSecond(g, 300, 1, 'a');
  assert.deepEqual(offerSecond(g, 90_000, 2, 'b'), { release: [], quarantine: ['a'] });
  assert.deepEqual(offerSecond(g, 1, 3), { release: ['r3'], quarantine: ['b'] });
});

test('the session start is the clock before any beat; drop() hands back what is held; confirmReadings 1 turns it off', () => {
  const g = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: 0 });
  assert.deepEqual(offerSecond(g, 86_400 * 365, 0, 'year-ahead'), { release: [], quarantine: [] });
  assert.deepEqual(g.drop(), ['year-ahead']);
  assert.equal(g.heldCount, 0);
  const off = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: 0, confirmReadings: 1 });
  assert.deepEqual(offerSecond(off, 245, 0), { release: ['r0'], quarantine: [] });
  const unknownStart = new SessionClockGuard<string>({ horizonMs: 0 });
  assert.deepEqual(offerSecond(unknownStart, 1e6, 0), { release: ['r0'], quarantine: [] });
});

test('a late or re-uploaded reading while one is held decides nothing', () => {
  const g = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: 0 });
  for (let i = 0; i < 5; i++) offerSecond(g, i, i);
  offerSecond(g, 600, 5, 'resumed');
  assert.deepEqual(offerSecond(g, 2, 6, 'again'), { release: ['again'], quarantine: [] });
  assert.equal(g.heldCount, 1);
  offerSecond(g, 601, 7);
  assert.deepEqual(offerSecond(g, 602, 8), { release: ['resumed', 'r7', 'r8'], quarantine: [] });
});
