import { test } from 'node:test';
import { createRandom } from '../hrv/synthetic-rr.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AttuneError } from '../../lib/errors.js';
import { maxOffset, parseOffset, PartitionOffsetTracker } from './offsets.js';
import { beatTimes, SessionWindows, type ClosedWindow } from './session-windows.js';

test('parseOffset accepts 0..2^63−1 as decimal strings or bigints and refuses the rest', () => {
  assert.equal(parseOffset('0'), 0n);
  assert.equal(parseOffset('9223372036854775807'), maxOffset);
  assert.equal(parseOffset(42n), 42n);
  for (const bad of ['9223372036854775808', '-1', '1.5', '', ' 1', '0x10', -1n]) {
    assert.throws(() => parseOffset(bad), (e) => e instanceof AttuneError && e.code === 'validation_error', String(bad));
  }
});

test('the commit offset is the oldest retained offset, else the next after the last processed', () => {
  const tracker = new PartitionOffsetTracker('attune.heart.readings.v1', 3);
  assert.equal(tracker.commitOffset(), null);
  tracker.processed('9223372036854775800');
  assert.equal(tracker.commitOffset(), '9223372036854775801');
  tracker.setRetained('a', '9223372036854775790');
  tracker.setRetained('b', 9223372036854775795n);
  assert.equal(tracker.commitOffset(), '9223372036854775790');
  assert.equal(tracker.retainingSessionCount, 2);
  tracker.setRetained('a', null);
  assert.equal(tracker.commitOffset(), '9223372036854775795');
  tracker.forgetSession('b');
  assert.equal(tracker.retainingSessionCount, 0);
  assert.equal(tracker.commitOffset(), '9223372036854775801');
  // A redelivered batch neither moves the high-water mark back nor gets applied twice.
  assert.equal(tracker.isProcessed('9223372036854775799'), true);
  assert.equal(tracker.isProcessed('9223372036854775801'), false);
  tracker.processed('9223372036854775000');
  assert.equal(tracker.nextOffset(), '9223372036854775801');
  // The last possible offset: its successor is still representable as a commit point.
  tracker.processed(maxOffset);
  assert.equal(tracker.commitOffset(), (maxOffset + 1n).toString());
});

// ---------------------------------------------------------------------------------------
// Replay property: a worker that crashes at random points, restarts with fresh state from
// the committed offset and suppresses windows at or before the last one it stored, stores
// exactly the windows of a run without crashes.

const rrDir = new URL('../../../shared/data/rr/', import.meta.url);
const recordings = [
  'meditation_Y3med_kundalini_slowbreath.rr_ms.txt',
  'meditation_M2_metronomic_0p25Hz.rr_ms.txt',
  'mitdb_100_NN.rr_ms.txt',
  'nsrdb_19140_seg073_5min.rr_ms.txt',
].map((name) => readFileSync(new URL(name, rrDir), 'utf8').split('\n').filter((l) => l.trim()).map(Number));

/** Seeded, so a failing seed can be rerun. */
const prng = createRandom;

interface BusReading {
  sessionId: string;
  recordedAt: number;
  rr: number[];
  offset: bigint;
}

/** One partition's records: a few sessions' readings, some delayed past the lateness, some repeated, with gaps. */
function partitionRecords(rand: () => number, firstOffset: bigint): BusReading[] {
  const sessions = 2 + Math.floor(rand() * 3);
  const arrivals: { arrival: number; reading: Omit<BusReading, 'offset'> }[] = [];
  for (let s = 0; s < sessions; s++) {
    const rr = recordings[Math.floor(rand() * recordings.length)];
    let i = Math.floor(rand() * rr.length);
    let t = 1_763_700_000_000 + Math.floor(rand() * 120_000);
    const beats = 250 + Math.floor(rand() * 400);
    for (let done = 0; done < beats; ) {
      if (rand() < 0.02) t += 70_000 + rand() * 200_000; // a gap longer than a window
      else if (rand() < 0.03) t += 5000 + rand() * 30_000; // a short dropout
      const n = 1 + Math.floor(rand() * 8);
      const chunk: number[] = [];
      for (let k = 0; k < n; k++) {
        const interval = rr[i++ % rr.length];
        chunk.push(interval);
        t += interval;
      }
      done += n;
      const reading = { sessionId: `session-${s}`, recordedAt: t, rr: chunk };
      const roll = rand();
      const delay = roll < 0.06 ? 10_000 + rand() * 60_000 : roll < 0.2 ? 3000 + rand() * 7000 : rand() * 1500;
      arrivals.push({ arrival: t + delay, reading });
      if (rand() < 0.03) arrivals.push({ arrival: t + delay + rand() * 30_000, reading }); // redelivered upload
    }
  }
  arrivals.sort((a, b) => a.arrival - b.arrival);
  return arrivals.map((a, k) => ({ ...a.reading, offset: firstOffset + BigInt(k) }));
}

type Stored = Map<string, ClosedWindow[]>;

interface WorkerRun {
  stored: Stored;
  replayedRecords: number;
  /** Times the committed offset lay behind the next offset to read (state held it back). */
  heldBack: number;
}

/**
 * Simulates the worker on one partition: apply record, store closed windows (suppressing
 * ends ≤ the last stored end of the session), report retained offsets, commit every
 * `commitEvery` records. After processing record index c in `crashAfter` (first time only)
 * it loses all memory and resumes from the committed offset. `naiveCommit` commits the next
 * offset after the last processed record instead, which a replay cannot recover from.
 */
function runWorker(records: BusReading[], crashAfter: Set<number>, commitEvery: number, naiveCommit = false): WorkerRun {
  const stored: Stored = new Map();
  const firstOffset = records[0].offset;
  let committed = firstOffset;
  let replayedRecords = 0;
  let heldBack = 0;
  let highest = -1;
  let sessions = new Map<string, SessionWindows>();
  let tracker = new PartitionOffsetTracker('attune.heart.readings.v1', 0);
  const store = (sessionId: string, windows: ClosedWindow[]) => {
    const list = stored.get(sessionId) ?? [];
    stored.set(sessionId, list);
    for (const w of windows) {
      const lastEnd = list.length > 0 ? list[list.length - 1].windowEndMs : -Infinity;
      if (w.windowEndMs > lastEnd) list.push(w);
    }
  };
  for (let pos = 0; pos < records.length; ) {
    const r = records[pos];
    if (pos <= highest) replayedRecords++;
    highest = Math.max(highest, pos);
    let windows = sessions.get(r.sessionId);
    if (!windows) sessions.set(r.sessionId, (windows = new SessionWindows()));
    windows.add(beatTimes(r.recordedAt, r.rr), r.rr, r.offset);
    tracker.processed(r.offset);
    store(r.sessionId, windows.closeReady());
    tracker.setRetained(r.sessionId, windows.retainedMinOffset());
    if ((pos + 1) % commitEvery === 0) {
      const safe = BigInt(tracker.commitOffset()!);
      if (safe < r.offset + 1n) heldBack++;
      committed = naiveCommit ? r.offset + 1n : safe;
    }
    if (crashAfter.delete(pos)) {
      sessions = new Map();
      tracker = new PartitionOffsetTracker('attune.heart.readings.v1', 0);
      pos = Number(committed - firstOffset);
      continue;
    }
    pos++;
  }
  // End of the stream: the sessions end, flush what is left.
  for (const [sessionId, windows] of sessions) store(sessionId, windows.closeAll());
  return { stored, replayedRecords, heldBack };
}

/** Window contents only: lateBeatCount counts what one worker instance saw, so it is not replay-stable. */
const contents = (stored: Stored) =>
  [...stored.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, ws]) => [id, ws.map((w) => [w.windowStartMs, w.windowEndMs, w.count, w.contextCount, w.lookaheadCount, Array.from(w.beatTimesMs), Array.from(w.rrMs)])]);

test('replay from the committed offset after crashes reproduces exactly the windows of an uninterrupted run', () => {
  let replayed = 0;
  let heldBack = 0;
  let naiveDiffers = 0;
  let lateSeen = 0;
  const seeds = 60;
  for (let seed = 1; seed <= seeds; seed++) {
    const rand = prng(seed);
    const firstOffset = seed % 2 === 0 ? maxOffset - 100_000n : BigInt(Math.floor(rand() * 1e6));
    const records = partitionRecords(rand, firstOffset);
    const straight = runWorker(records, new Set(), 1);
    for (const ws of straight.stored.values()) {
      for (const w of ws) {
        const c = w.contextCount;
        const own = w.count - w.lookaheadCount;
        assert.ok(own > c && w.beatTimesMs[c] >= w.windowStartMs && w.beatTimesMs[own - 1] < w.windowEndMs);
        assert.ok(w.lookaheadCount === 0 || w.beatTimesMs[own] >= w.windowEndMs);
        assert.ok(c === 0 || (w.beatTimesMs[c - 1] < w.windowStartMs && w.beatTimesMs[0] >= w.windowStartMs - 60_000));
        for (let i = 1; i < w.count; i++) assert.ok(w.beatTimesMs[i] > w.beatTimesMs[i - 1]);
      }
    }
    const windowCount = [...straight.stored.values()].reduce((n, ws) => n + ws.length, 0);
    assert.ok(windowCount > 50, `seed ${seed}: only ${windowCount} windows`);
    lateSeen += Math.max(...[...straight.stored.values()].map((ws) => ws[ws.length - 1]?.lateBeatCount ?? 0));

    const crashes = new Set<number>();
    const crashCount = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < crashCount; k++) crashes.add(Math.floor(rand() * records.length));
    const commitEvery = 1 + Math.floor(rand() * 20);
    const crashed = runWorker(records, new Set(crashes), commitEvery);
    assert.deepEqual(contents(crashed.stored), contents(straight.stored), `seed ${seed}, crashes ${[...crashes]}, commit every ${commitEvery}`);
    replayed += crashed.replayedRecords;
    heldBack += crashed.heldBack;

    // Control: committing "last processed + 1" loses windows' state, and the test sees it.
    const naive = runWorker(records, new Set(crashes), commitEvery, true);
    if (JSON.stringify(contents(naive.stored)) !== JSON.stringify(contents(straight.stored))) naiveDiffers++;
  }
  assert.ok(replayed > seeds * 10, `replays re-read ${replayed} records`);
  assert.ok(heldBack > 0, 'retained state held the commit back');
  assert.ok(lateSeen > 0, 'the generated streams contain late beats');
  assert.ok(naiveDiffers > seeds / 2, `naive commits broke ${naiveDiffers} of ${seeds} runs`);
});
