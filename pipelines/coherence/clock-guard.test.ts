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
  assert.deepEqual(offerSecond(g, 602, 3), { release: ['r1', 'r2', 'r3'], quarantine: [], jumped: true });
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
  assert.deepEqual(offerSecond(off, 245, 0), { release: ['r0'], quarantine: [], jumped: true });
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
  assert.deepEqual(offerSecond(g, 602, 8), { release: ['resumed', 'r7', 'r8'], quarantine: [], jumped: true });
});

test('passes() then offer() decides exactly as offer() alone, on random sequences with jumps, outliers and late readings', () => {
  // A seeded generator, so a failure names a reproducible sequence.
  let seed = 12345;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
  for (const confirmReadings of [1, 2, 3]) {
    for (let run = 0; run < 50; run++) {
      const opts = { horizonMs: 10_000, startMs: random() < 0.2 ? undefined : 0, confirmReadings };
      const alone = new SessionClockGuard<string>(opts);
      const fast = new SessionClockGuard<string>(opts);
      let t = 0;
      let passed = 0;
      for (let i = 0; i < 300; i++) {
        const r = random();
        // Mostly contiguous seconds; sometimes a jump ahead, a late re-upload, or a far outlier.
        let startS: number;
        if (r < 0.05) startS = t = t + 60 + Math.floor(random() * 600); // a real gap: later readings go on from it
        else if (r < 0.1) startS = Math.max(0, t - 1 - Math.floor(random() * 30)); // late, the clock stays
        else if (r < 0.15) startS = t + 86_400 + Math.floor(random() * 600); // an outlier nothing continues
        else startS = t;
        if (startS === t) t++;
        const start = startS * 1000;
        const end = start + 1000;
        const name = `r${i}`;
        const expected = alone.offer(start, end, BigInt(i), name);
        let got: { release: string[]; quarantine: string[] };
        if (fast.passes(start, end)) {
          got = { release: [name], quarantine: [] };
          passed++;
        } else got = fast.offer(start, end, BigInt(i), name);
        assert.deepEqual(got, expected, `confirm ${confirmReadings}, run ${run}, reading ${i}`);
        assert.equal(fast.clockMs, alone.clockMs);
        assert.equal(fast.heldCount, alone.heldCount);
        assert.equal(fast.heldMinOffset(), alone.heldMinOffset());
      }
      assert.ok(passed > 100, `the common case takes the fast path (${passed} of 300)`);
    }
  }
});

test('readings that came ahead of the ones before them, by less than the horizon, are released when those arrive; an outlier held with them is not', () => {
  // Horizon 2 s, as with ATTUNE_ALLOWED_LATENESS_MS=2000. Readings of one second each.
  const g = new SessionClockGuard<string>({ horizonMs: 2000, startMs: 0 });
  for (let i = 0; i < 18; i++) offerSecond(g, i, i);
  assert.equal(g.clockMs, 18_000);
  // r21 and r22 come before r18..r20: both start more than 2 s past the clock, so both are held
  // (they agree with each other, but two are short of the three that confirm a jump).
  assert.deepEqual(offerSecond(g, 21, 21), { release: [], quarantine: [] });
  assert.deepEqual(offerSecond(g, 22, 22), { release: [], quarantine: [] });
  // r18 continues the clock (now 19 s): r21 starts 2 s past it and comes along, then r22.
  // Not a jump of the clock (the worker's confirmedJumps counts only those).
  assert.deepEqual(offerSecond(g, 18, 18), { release: ['r18', 'r21', 'r22'], quarantine: [] });
  assert.equal(g.clockMs, 23_000);
  assert.equal(g.heldCount, 0);
  // r19 and r20 arrive after: within the windows' lateness, they go through.
  assert.deepEqual(offerSecond(g, 19, 19), { release: ['r19'], quarantine: [] });
  assert.deepEqual(offerSecond(g, 20, 20), { release: ['r20'], quarantine: [] });
  // An outlier, then a reading that only came early: the outlier is quarantined by it (it does
  // not join the outlier), and the early one released when the reading before it arrives.
  assert.deepEqual(offerSecond(g, 300, 26, 'outlier'), { release: [], quarantine: [] });
  assert.deepEqual(offerSecond(g, 26, 27), { release: [], quarantine: ['outlier'] });
  assert.deepEqual(offerSecond(g, 23, 23), { release: ['r23', 'r27'], quarantine: [] });
  assert.equal(g.heldCount, 0);
  assert.deepEqual(offerSecond(g, 24, 24), { release: ['r24'], quarantine: [] });
});
