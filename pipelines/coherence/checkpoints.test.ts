// The coherence worker's restart state on the bus: what a checkpoint carries, that a tracker
// restored from one continues exactly as the original, and that a reader's barrier sees every
// checkpoint another process had acknowledged before it, whatever the topic's partitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { partitionForKey } from '../../bus/partitioner.js';
import { silentLogger } from '../../lib/log.js';
import { CheckpointTable, barrierKeys, decodeCheckpoint, encodeCheckpoint, type SessionCheckpoint } from './checkpoints.js';
import { ThresholdTracker, type WindowScore } from './threshold.js';

test('barrier keys: one per partition, each on its own partition', () => {
  for (let n = 1; n <= 24; n++) {
    const keys = barrierKeys(n);
    assert.equal(keys.length, n);
    assert.deepEqual(keys.map((k) => partitionForKey(k, n)), Array.from({ length: n }, (_, i) => i), `${n} partitions`);
  }
});

test('a checkpoint survives the wire; other values are ignored, never thrown', () => {
  const c: SessionCheckpoint = { sessionId: 's1', emittedThroughMs: 1_700_000_005_000, threshold: { armed: false, lastEndMs: 1_700_000_005_000, streakFirstEndMs: 1_699_999_990_000, streakWindowCount: 4 }, ended: true };
  assert.deepEqual(decodeCheckpoint(encodeCheckpoint(c, 1)), c);
  const none: SessionCheckpoint = { sessionId: 's2', emittedThroughMs: null, threshold: null, ended: false };
  assert.deepEqual(decodeCheckpoint(encodeCheckpoint(none, 1)), none);
  assert.equal(decodeCheckpoint(Buffer.from('not json')), null);
  assert.equal(decodeCheckpoint(Buffer.from('{"v":2,"session_id":"x"}')), null);
  assert.equal(decodeCheckpoint(Buffer.from('[]')), null);
  // The coherence worker's guard anchors (oldest first); a malformed list reads as none.
  const anchored: SessionCheckpoint = {
    ...none,
    guard: [
      { offset: '120', afterOffset: null, clockMs: 1_700_000_001_234, held: false, lateBeats: 17, quietFromMs: 1_700_000_002_000, sentLast: false, dueFromMs: 1_700_000_002_500, partitionMaxMs: 1_700_000_003_000 },
      { offset: null, afterOffset: '9007199254740993', clockMs: null, held: true, lateBeats: 0, quietFromMs: null, sentLast: true, dueFromMs: null, partitionMaxMs: null },
    ],
  };
  assert.deepEqual(decodeCheckpoint(encodeCheckpoint(anchored, 1)), anchored);
  // An anchor written before late_beats was kept reads with none (the replay counts from 0).
  const older = JSON.parse(encodeCheckpoint(anchored, 1).toString());
  for (const g of older.guard) delete g.late_beats;
  assert.deepEqual((decodeCheckpoint(Buffer.from(JSON.stringify(older))) as SessionCheckpoint).guard?.map((a) => a.lateBeats), [null, null]);
  const wire = JSON.parse(encodeCheckpoint(anchored, 1).toString());
  for (const bad of [[{ offset: '1', after_offset: '2', clock_ms: 1, held: false }], [{ offset: '-1', after_offset: null, clock_ms: 1, held: false }], [{ offset: '1', after_offset: null, clock_ms: 'x', held: false }], [], 'x']) {
    assert.equal((decodeCheckpoint(Buffer.from(JSON.stringify({ ...wire, guard: bad }))) as SessionCheckpoint).guard, null, JSON.stringify(bad));
  }
});

test('a threshold tracker restored from a snapshot fires as the one that never stopped, at every cut', () => {
  // Scores with streaks, a re-arm and a gap: the event fires twice over the series.
  const scores = [0.2, 0.6, 0.7, 0.8, 0.7, 0.9, 0.8, 0.3, 0.6, 0.6, null, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8, 0.9];
  const windows: WindowScore[] = scores.map((s, i) => ({ windowEndMs: 100_000 + i * 5000 + (i >= 11 ? 5000 : 0), valid: s !== null, coherence: s }));
  const opts = { sessionId: 's', threshold: 0.5, holdMs: 20_000 };
  const reference = new ThresholdTracker(opts);
  const fired = windows.flatMap((w) => reference.update(w).map((e) => e.eventId));
  assert.equal(fired.length, 2, JSON.stringify(fired));
  for (let cut = 0; cut <= windows.length; cut++) {
    const a = new ThresholdTracker(opts);
    const before = windows.slice(0, cut).flatMap((w) => a.update(w).map((e) => e.eventId));
    const b = new ThresholdTracker(opts);
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    // The replay feeds some windows again (they are ignored), then the rest.
    const after = windows.slice(Math.max(0, cut - 3)).flatMap((w) => b.update(w).map((e) => e.eventId));
    assert.deepEqual([...before, ...after], fired, `cut at ${cut}`);
  }
  // The control: a tracker that starts afresh at a cut mid-streak (no checkpoint) fires otherwise.
  const fresh = new ThresholdTracker(opts);
  const first = new ThresholdTracker(opts);
  const firstPart = windows.slice(0, 3).flatMap((w) => first.update(w).map((e) => e.eventId));
  assert.notDeepEqual([...firstPart, ...windows.slice(3).flatMap((w) => fresh.update(w).map((e) => e.eventId))], fired);
});

for (const partitions of [1, 3]) {
  test(`a reader's barrier sees every checkpoint written before it (${partitions} partition${partitions > 1 ? 's' : ''})`, async () => {
    const bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: partitions });
    const topic = `cp-${partitions}`;
    const writer = new CheckpointTable({ bus, topic, groupId: 'writer', log: silentLogger, partitions });
    await writer.start();
    try {
      const written: SessionCheckpoint[] = [];
      for (let i = 0; i < 50; i++) written.push({ sessionId: `s${i}`, emittedThroughMs: 1000 * i, threshold: null, ended: i % 2 === 0 });
      await writer.write(written.slice(0, 25));
      await writer.write(written.slice(25).map((c) => ({ ...c, emittedThroughMs: 1 })));
      // A newer checkpoint of the same session replaces the older one.
      await writer.write(written.slice(25));
      const reader = new CheckpointTable({ bus, topic, groupId: 'reader', log: silentLogger, partitions });
      await reader.start();
      try {
        await reader.sync();
        assert.equal(reader.size, 50);
        for (const c of written) assert.deepEqual(reader.get(c.sessionId), c);
        // Written after the reader caught up: the next barrier brings it in.
        await writer.write([{ sessionId: 'late', emittedThroughMs: 7, threshold: null, ended: false }]);
        await reader.sync();
        assert.equal(reader.get('late')?.emittedThroughMs, 7);
        assert.equal(reader.stats.barriers, 2);
      } finally {
        await reader.stop();
      }
    } finally {
      await writer.stop();
      await bus.close();
    }
  });
}
