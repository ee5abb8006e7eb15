import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttuneError } from '../../lib/errors.js';
import { ThresholdTracker, type SessionEventDescriptor, type WindowScore } from './threshold.js';

const base = 1_763_700_000_000;

/** Windows 5 s apart from `base`, one per score; null = invalid window. */
function windows(scores: (number | null)[], firstEnd = base + 5000): WindowScore[] {
  return scores.map((s, i) => ({ windowEndMs: firstEnd + i * 5000, valid: s !== null, coherence: s }));
}

function run(tracker: ThresholdTracker, ws: WindowScore[]): SessionEventDescriptor[] {
  return ws.flatMap((w) => tracker.update(w));
}

test('fires once when the score stays at or above the threshold for the hold time', () => {
  const tracker = new ThresholdTracker({ sessionId: 's1', threshold: 0.6, holdMs: 30_000 });
  // 6 windows × 5 s = 30 s span; the 6th qualifying window (index 7) completes it.
  const ws = windows([0.2, 0.5, 0.6, 0.7, 0.8, 0.65, 0.9, 0.61, 0.7, 0.9, 0.95]);
  const events = ws.map((w) => tracker.update(w));
  assert.deepEqual(events.map((e) => e.length), [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  const [event] = events[7];
  assert.deepEqual(event, {
    eventId: `s1:coherence_threshold_reached:${ws[7].windowEndMs}`,
    sessionId: 's1',
    type: 'coherence_threshold_reached',
    occurredAtMs: ws[7].windowEndMs,
    payload: {
      threshold: 0.6,
      holdMs: 30_000,
      streakStartMs: ws[2].windowEndMs - 5000,
      windowEndMs: ws[7].windowEndMs,
      coherence: 0.61,
      windowCount: 6,
    },
  });
  assert.equal(tracker.armed, false);
  assert.equal(tracker.streakSpanMs, 45_000);
});

test('a dip below the threshold breaks the streak before the hold is reached', () => {
  const tracker = new ThresholdTracker({ sessionId: 's1', threshold: 0.6, holdMs: 20_000 });
  const events = run(tracker, windows([0.7, 0.7, 0.7, 0.59, 0.7, 0.7, 0.7, 0.7]));
  assert.equal(events.length, 1);
  assert.equal(events[0].occurredAtMs, base + 8 * 5000);
  assert.equal(events[0].payload.windowCount, 4);
});

test('re-arms after the score drops below the threshold and fires again on the next crossing', () => {
  const tracker = new ThresholdTracker({ sessionId: 's2', threshold: 0.5, holdMs: 10_000 });
  const events = run(tracker, windows([0.6, 0.6, 0.6, 0.6, 0.4, 0.6, 0.6, 0.6]));
  assert.deepEqual(
    events.map((e) => e.occurredAtMs),
    [base + 2 * 5000, base + 7 * 5000],
  );
  assert.notEqual(events[0].eventId, events[1].eventId);
});

test('with hysteresis a shallow dip breaks the streak but does not re-arm', () => {
  const tracker = new ThresholdTracker({ sessionId: 's3', threshold: 0.5, holdMs: 10_000, hysteresis: 0.1 });
  const scores = [0.6, 0.6, 0.45, 0.6, 0.6, 0.6, 0.39, 0.6, 0.6];
  const events = run(tracker, windows(scores));
  assert.deepEqual(
    events.map((e) => e.occurredAtMs),
    [base + 2 * 5000, base + 9 * 5000],
  );
  // Without hysteresis the 0.45 dip re-arms and the second streak fires too.
  const plain = run(new ThresholdTracker({ sessionId: 's3', threshold: 0.5, holdMs: 10_000 }), windows(scores));
  assert.equal(plain.length, 3);
});

test('invalid windows break the streak and do not re-arm', () => {
  const tracker = new ThresholdTracker({ sessionId: 's4', threshold: 0.5, holdMs: 15_000 });
  // Two qualifying, invalid, two qualifying: never 15 s in a row.
  assert.deepEqual(run(tracker, windows([0.8, 0.8, null, 0.8, 0.8, null])), []);
  // Three in a row fire; an invalid window afterwards does not re-arm.
  const events = run(tracker, windows([0.8, 0.8, 0.8, null, 0.8, 0.8, 0.8], base + 100_000));
  assert.equal(events.length, 1);
  assert.equal(events[0].occurredAtMs, base + 110_000);
});

test('a gap between windows (no beats) breaks the streak', () => {
  const tracker = new ThresholdTracker({ sessionId: 's5', threshold: 0.5, holdMs: 15_000 });
  const ws = [...windows([0.9, 0.9]), ...windows([0.9, 0.9], base + 60_000)];
  assert.deepEqual(run(tracker, ws), []);
  assert.equal(tracker.streakSpanMs, 10_000);
  assert.equal(tracker.update({ windowEndMs: base + 70_000, valid: true, coherence: 0.9 }).length, 1);
});

test('windows at or before the last one fed are ignored (replays), so ids stay unique', () => {
  const tracker = new ThresholdTracker({ sessionId: 's6', threshold: 0.5, holdMs: 10_000 });
  const ws = windows([0.9, 0.9, 0.9, 0.1, 0.9]);
  const first = run(tracker, ws);
  assert.equal(first.length, 1);
  assert.deepEqual(run(tracker, ws), []);
  // A fresh tracker fed the same windows makes the same event, with the same id.
  assert.deepEqual(run(new ThresholdTracker({ sessionId: 's6', threshold: 0.5, holdMs: 10_000 }), ws), first);
});

test('options are checked', () => {
  assert.throws(
    () => new ThresholdTracker({ sessionId: 's', threshold: Number.NaN, holdMs: 0 }),
    (e) => e instanceof AttuneError && e.code === 'validation_error' && e.details.length === 2,
  );
  assert.throws(() => new ThresholdTracker({ sessionId: 's', threshold: 0.5, holdMs: 1000, hysteresis: -0.1 }), AttuneError);
});
