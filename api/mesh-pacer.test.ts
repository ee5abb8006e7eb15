// The pacer's phase and progress: a pure function of the breathing rate, the session's start
// and the instant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pacerAt } from './mesh-pacer.js';

const start = Date.UTC(2026, 11, 2, 21, 0, 0);

test('6 breaths a minute: 5 s in, 5 s out, from the session start', () => {
  assert.equal(pacerAt(start, 6, start - 1), null, 'nothing before the start');
  assert.deepEqual(pacerAt(start, 6, start), { phase: 'inhale', progress: 0, cycle: 0, period_s: 10 });
  assert.deepEqual(pacerAt(start, 6, start + 2500), { phase: 'inhale', progress: 0.5, cycle: 0, period_s: 10 });
  assert.deepEqual(pacerAt(start, 6, start + 5000), { phase: 'exhale', progress: 0, cycle: 0, period_s: 10 });
  assert.deepEqual(pacerAt(start, 6, start + 7500), { phase: 'exhale', progress: 0.5, cycle: 0, period_s: 10 });
  assert.deepEqual(pacerAt(start, 6, start + 10_000), { phase: 'inhale', progress: 0, cycle: 1, period_s: 10 });
  // An hour in: exactly 360 breaths.
  assert.deepEqual(pacerAt(start, 6, start + 3_600_000 + 6_000), { phase: 'exhale', progress: 0.2, cycle: 360, period_s: 10 });
});

test('other rates: 4.5 breaths a minute is a 13.33 s breath; progress rises through each phase', () => {
  const period = 60_000 / 4.5;
  const half = pacerAt(start, 4.5, start + Math.round(period / 2) + 1)!;
  assert.equal(half.phase, 'exhale');
  assert.ok(half.progress < 0.001);
  let last = -1;
  for (let t = start; t < start + period / 2; t += 250) {
    const p = pacerAt(start, 4.5, t)!;
    assert.equal(p.phase, 'inhale');
    assert.ok(p.progress > last && p.progress < 1, `progress rises (${p.progress})`);
    last = p.progress;
  }
  assert.throws(() => pacerAt(start, 0, start), RangeError);
});
