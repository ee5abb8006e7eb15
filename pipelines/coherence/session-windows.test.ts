import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AttuneError } from '../../lib/errors.js';
import { beatTimes, defaultContextMs, SessionWindows, type ClosedWindow } from './session-windows.js';
import { ADJACENT_TOLERANCE_MS, LOOKAHEAD_BEATS, LOOKAHEAD_MS } from '../hrv/artifacts.js';

const rrDir = new URL('../../../shared/data/rr/', import.meta.url);
const loadRr = (name: string): number[] =>
  readFileSync(new URL(name, rrDir), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map(Number);

interface Reading {
  recordedAt: number;
  rr: number[];
  offset: bigint;
}

/** Groups a beat series starting after `startMs` into readings of `perReading` beats. */
function readingsFrom(rr: number[], startMs: number, perReading: number, firstOffset = 0n): Reading[] {
  const out: Reading[] = [];
  let t = startMs;
  let offset = firstOffset;
  for (let i = 0; i < rr.length; i += perReading) {
    const chunk = rr.slice(i, i + perReading);
    for (const r of chunk) t += r;
    out.push({ recordedAt: t, rr: chunk, offset: offset++ });
  }
  return out;
}

function feed(sw: SessionWindows, readings: Reading[]): { windows: ClosedWindow[]; late: number } {
  const windows: ClosedWindow[] = [];
  let late = 0;
  for (const r of readings) {
    late += sw.add(beatTimes(r.recordedAt, r.rr), r.rr, r.offset);
    windows.push(...sw.closeReady());
  }
  return { windows, late };
}

/** All beats of the readings, ascending: the brute-force reference. */
function allBeats(readings: Reading[]): { t: number; rr: number }[] {
  const beats: { t: number; rr: number }[] = [];
  for (const r of readings) {
    const ts = beatTimes(r.recordedAt, r.rr);
    ts.forEach((t, i) => beats.push({ t, rr: r.rr[i] }));
  }
  return beats.sort((a, b) => a.t - b.t);
}

/**
 * The window hands over exactly its own beats, preceded by every beat of the `contextMs`
 * before its start (context for artifact cleaning) and followed by the first LOOKAHEAD_BEATS
 * beats from its end on (lookahead for the cleaning; `beats` must be what was held when it closed).
 */
function assertWindowHolds(w: ClosedWindow, beats: { t: number; rr: number }[], contextMs = defaultContextMs): void {
  const context = beats.filter((b) => b.t >= w.windowStartMs - contextMs && b.t < w.windowStartMs);
  const own = beats.filter((b) => b.t >= w.windowStartMs && b.t < w.windowEndMs);
  // Up to the first gap (an interval that does not reach back to the beat before it).
  const after = beats.filter((b) => b.t >= w.windowEndMs && b.t < w.windowEndMs + LOOKAHEAD_MS).slice(0, LOOKAHEAD_BEATS);
  const lastOwn = own.length > 0 ? own[own.length - 1] : context[context.length - 1];
  const lookahead: typeof beats = [];
  for (const b of after) {
    const previous = lookahead.length > 0 ? lookahead[lookahead.length - 1] : lastOwn;
    if (previous === undefined || Math.abs(b.t - b.rr - previous.t) > ADJACENT_TOLERANCE_MS) break;
    lookahead.push(b);
  }
  const expected = [...context, ...own, ...lookahead];
  assert.equal(w.contextCount, context.length, `context beats of window ending ${w.windowEndMs}`);
  assert.equal(w.lookaheadCount, lookahead.length, `lookahead beats of window ending ${w.windowEndMs}`);
  assert.equal(w.count, expected.length, `beat count of window ending ${w.windowEndMs}`);
  assert.equal(w.beatTimesMs.length, w.count);
  assert.deepEqual(Array.from(w.beatTimesMs), expected.map((b) => b.t));
  assert.deepEqual(Array.from(w.rrMs), expected.map((b) => b.rr));
}

const t0 = 1_763_700_001_234; // deliberately not on a 5 s boundary

test('beatTimes: the last RR interval ends at recorded_at', () => {
  assert.deepEqual(Array.from(beatTimes(10_000, [800, 900, 1000])), [8_100, 9_000, 10_000]);
  assert.deepEqual(Array.from(beatTimes(10_000, [])), []);
  assert.throws(() => beatTimes(10_000, [800, 0]), (e) => e instanceof AttuneError && e.code === 'validation_error');
  assert.throws(() => beatTimes(Number.NaN, [800]), AttuneError);
});

test('in-order beats (real meditation recording) give a window every 5 s with exactly its beats', () => {
  const readings = readingsFrom(loadRr('meditation_Y3med_kundalini_slowbreath.rr_ms.txt'), t0, 5);
  const sw = new SessionWindows();
  const { windows, late } = feed(sw, readings);
  const beats = allBeats(readings);
  assert.equal(late, 0);
  assert.equal(sw.lateBeatCount, 0);
  // First window is the first aligned one holding the first beat; then one per step.
  assert.equal(windows[0].windowEndMs, Math.floor(beats[0].t / 5000) * 5000 + 5000);
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    assert.equal(w.windowEndMs % 5000, 0, 'window ends are multiples of 5 s');
    assert.equal(w.windowEndMs - w.windowStartMs, 64_000);
    if (i > 0) assert.equal(w.windowEndMs - windows[i - 1].windowEndMs, 5000);
    assertWindowHolds(w, beats);
  }
  // Everything whose end plus its lookahead span (5 s) the watermark has passed is closed,
  // nothing after it.
  const lastEnd = windows[windows.length - 1].windowEndMs;
  assert.equal(lastEnd, Math.floor((beats[beats.length - 1].t - 10_000 - LOOKAHEAD_MS) / 5000) * 5000);
  // ~680 s recording → roughly 680/5 windows minus the 10 s lateness.
  assert.ok(windows.length > 130 && windows.length < 140, `got ${windows.length} windows`);
});

test('windows close on event time only: the same records give the same windows however they are batched', () => {
  const readings = readingsFrom(loadRr('nsrdb_16539_seg09_5min.rr_ms.txt'), t0, 3);
  const perRecord = feed(new SessionWindows(), readings).windows;
  const sw = new SessionWindows();
  for (const r of readings) sw.add(beatTimes(r.recordedAt, r.rr), r.rr, r.offset);
  assert.ok(sw.pendingWindowCount > 0);
  const atOnce = sw.closeReady();
  assert.deepEqual(atOnce, perRecord);
  assert.deepEqual(sw.closeReady(), []);
});

test('provisionalWindow: the newest window the beats have passed, before it is final; asking changes no final window', () => {
  const readings = readingsFrom(loadRr('nsrdb_16539_seg09_5min.rr_ms.txt'), t0, 3);
  const plain = feed(new SessionWindows(), readings).windows;
  const sw = new SessionWindows();
  const finals: ClosedWindow[] = [];
  const provisional = new Map<number, ClosedWindow>();
  for (const r of readings) {
    sw.add(beatTimes(r.recordedAt, r.rr), r.rr, r.offset);
    finals.push(...sw.closeReady());
    const p = sw.provisionalWindow();
    if (p === null) continue;
    // Passed by the beats with its lookahead span (end + 5 s ≤ newest beat), never final yet.
    assert.ok(p.windowEndMs + LOOKAHEAD_MS <= sw.maxEventTimeMs && p.windowEndMs > sw.closedThroughMs, `${p.windowEndMs}`);
    assert.equal(p.windowEndMs, Math.floor((sw.maxEventTimeMs - LOOKAHEAD_MS) / 5000) * 5000);
    assert.ok(p.lookaheadCount >= 3, `${p.lookaheadCount} lookahead beats`);
    assert.equal(p.windowEndMs - p.windowStartMs, 64_000);
    provisional.set(p.windowEndMs, p);
  }
  assert.deepEqual(finals, plain);
  // Every final window but the first few (before 64 s of beats) had a provisional reading,
  // and in-order beats leave it equal to the final one: nothing came late.
  let compared = 0;
  for (const f of finals) {
    const p = provisional.get(f.windowEndMs);
    if (!p) continue;
    compared++;
    assert.deepEqual([...p.beatTimesMs], [...f.beatTimesMs]);
    assert.equal(p.contextCount, f.contextCount);
    assert.equal(p.lookaheadCount, f.lookaheadCount);
  }
  assert.ok(compared >= finals.length - 2, `${compared} of ${finals.length}`);
  // Once everything is closed there is nothing provisional.
  sw.closeAll();
  assert.equal(sw.provisionalWindow(), null);
});

test('revision: appends and evictions keep it, a beat inserted before the newest bumps it; a window cut again with the same revision holds the same beats', () => {
  const readings = readingsFrom(loadRr('nsrdb_16539_seg09_5min.rr_ms.txt'), t0, 3);
  const sw = new SessionWindows();
  const provisional = new Map<number, ClosedWindow>();
  let closed = 0;
  let sameRevision = 0;
  const check = (finals: ClosedWindow[]) => {
    for (const f of finals) {
      closed++;
      const p = provisional.get(f.windowEndMs);
      if (!p || p.revision !== f.revision) continue;
      sameRevision++;
      // The worker's condition for taking the provisional window's metrics: the same beats.
      assert.equal(p.count, f.count);
      assert.deepEqual([...p.beatTimesMs], [...f.beatTimesMs]);
      assert.deepEqual([...p.rrMs], [...f.rrMs]);
    }
  };
  // In order (evictions happen all along: 5 min of beats, windows of 64 s plus 60 s of context).
  const half = Math.floor(readings.length / 2);
  for (const r of readings.slice(0, half)) {
    sw.add(beatTimes(r.recordedAt, r.rr), r.rr, r.offset);
    check(sw.closeReady());
    const p = sw.provisionalWindow();
    if (p) provisional.set(p.windowEndMs, p);
  }
  assert.equal(sw.revision, 0);
  assert.ok(sameRevision >= closed - 2 && closed > 10, `${sameRevision} of ${closed}`);
  // A beat inside the newest provisional window, before the newest beat: bumped, and that
  // window's final cut holds it, so the revisions differ.
  const newest = Math.max(...provisional.keys());
  const before = sw.revision;
  sw.add([newest - 1500.5], [700], 10_000n);
  assert.equal(sw.revision, before + 1);
  const duplicate = sw.revision;
  sw.add([newest - 1500.5], [700], 10_001n);
  assert.equal(sw.revision, duplicate, 'a duplicate beat changes nothing');
  const first = provisional.get(newest)!;
  const later: ClosedWindow[] = [];
  const comparedBefore = sameRevision;
  for (const r of readings.slice(half)) {
    sw.add(beatTimes(r.recordedAt, r.rr), r.rr, r.offset);
    const finals = sw.closeReady();
    later.push(...finals);
    check(finals);
    const p = sw.provisionalWindow();
    if (p) provisional.set(p.windowEndMs, p);
  }
  // Cut again after the bump (the later provisional windows), same revision: same beats again.
  assert.ok(sameRevision - comparedBefore > 10, `${sameRevision - comparedBefore} compared after the bump`);
  const final = later.find((f) => f.windowEndMs === newest)!;
  assert.ok([...final.beatTimesMs].includes(newest - 1500.5));
  assert.ok(!first.beatTimesMs.includes(newest - 1500.5));
  assert.notEqual(final.revision, first.revision, 'different beats, different revision');
  const emptied = sw.revision;
  sw.closeAll();
  assert.equal(sw.revision, emptied + 1, 'emptying the buffers bumps it');
});

test('provisionalWindow: a window whose own span holds no beat (the beats jumped past it) has none', () => {
  const b = Math.ceil(t0 / 5000) * 5000;
  // No lookahead, so that single beats decide (the lookahead has its own test below).
  const sw = new SessionWindows({ lookaheadBeats: 0 });
  sw.add([b + 1000, b + 2000], [1000, 1000], 0n);
  // The newest beat 30 s on: the window ending there holds the first two beats.
  sw.add([b + 30_000], [1000], 1n);
  assert.equal(sw.provisionalWindow()?.windowEndMs, b + 30_000);
  // The newest beat 200 s on, exactly at a step: it belongs to the window after the one ending
  // at it, and that one's own 64 s hold no beat.
  sw.add([b + 200_000], [1000], 2n);
  assert.equal(sw.provisionalWindow(), null);
  // One beat inside it: now it has one.
  sw.add([b + 199_000], [1000], 3n);
  assert.equal(sw.provisionalWindow()?.windowEndMs, b + 200_000);
});

test('lookahead: a window carries the first beats of the 5 s after its end, is provisional once they are passed, and closes once the watermark passes them', () => {
  const b = Math.ceil(t0 / 5000) * 5000;
  const sw = new SessionWindows();
  // One beat a second from b + 1 s: the window ending at b + 5 s has beats at b + 1..4 s, and
  // the beats at b + 5..9 s as its lookahead.
  for (let k = 1; k <= 9; k++) {
    sw.add([b + k * 1000], [1000], BigInt(k));
    assert.equal(sw.provisionalWindow(), null, `after the beat at ${k} s`);
  }
  sw.add([b + 10_000], [1000], 10n);
  const p = sw.provisionalWindow()!;
  assert.equal(p.windowEndMs, b + 5000);
  assert.equal(p.lookaheadCount, LOOKAHEAD_BEATS);
  assert.deepEqual(Array.from(p.beatTimesMs), [1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => b + k * 1000));
  // It closes when the watermark (newest − 10 s) passes b + 5 s + 5 s, with the same beats.
  let finals: ClosedWindow[] = [];
  let k = 11;
  for (; finals.length === 0; k++) {
    sw.add([b + k * 1000], [1000], BigInt(k));
    finals = sw.closeReady();
  }
  assert.equal(k - 1, 20, 'closed by the beat at b + 20 s');
  assert.equal(finals[0].windowEndMs, b + 5000);
  assert.deepEqual(Array.from(finals[0].beatTimesMs), Array.from(p.beatTimesMs));
  assert.equal(finals[0].revision, p.revision);
  // closeAll hands the tail windows over with what is held after them: the last has none.
  const tail = sw.closeAll();
  assert.equal(tail[tail.length - 1].lookaheadCount, 0);
  // At 40 bpm the 5 s after an end hold fewer beats: those are all the lookahead.
  const slow = new SessionWindows();
  for (let i = 1; i <= 40; i++) slow.add([b + i * 1500], [1500], BigInt(i));
  for (const w of slow.closeReady()) assert.ok(w.lookaheadCount >= 3 && w.lookaheadCount <= 4 && w.beatTimesMs[w.count - 1] < w.windowEndMs + LOOKAHEAD_MS);
  // lookaheadBeats: 0 hands over none and closes at the watermark; a negative count is refused.
  const none = new SessionWindows({ lookaheadBeats: 0 });
  for (let i = 1; i <= 20; i++) none.add([b + i * 1000], [1000], BigInt(i));
  const closed = none.closeReady();
  assert.equal(closed[closed.length - 1].windowEndMs, b + 10_000);
  assert.ok(closed.every((w) => w.lookaheadCount === 0 && w.beatTimesMs.every((time) => time < w.windowEndMs)));
  assert.throws(() => new SessionWindows({ lookaheadBeats: -1 }), AttuneError);
});

test('a beat of a window\'s lookahead span that comes out of order, within the allowed lateness, is in its lookahead', () => {
  // The review's case: a beat just after a window's end held back by almost the allowed
  // lateness. Closing at the end itself handed the window over without it.
  const readings = readingsFrom(loadRr('nsrdb_16272_seg116_5min.rr_ms.txt'), t0, 1);
  const inOrder = feed(new SessionWindows(), readings).windows;
  // Every reading whose beat is the first after a 5 s boundary comes after the readings of the
  // next 9.3 s (under the 10 s lateness).
  const shuffled: Reading[] = [];
  const held: { r: Reading; until: number }[] = [];
  let previous = -Infinity;
  for (const r of readings) {
    while (held.length > 0 && held[0].until <= r.recordedAt) shuffled.push(held.shift()!.r);
    if (Math.floor(r.recordedAt / 5000) !== Math.floor(previous / 5000)) held.push({ r, until: r.recordedAt + 9300 });
    else shuffled.push(r);
    previous = r.recordedAt;
  }
  shuffled.push(...held.map((h) => h.r));
  assert.equal(shuffled.length, readings.length);
  const sw = new SessionWindows();
  const outOfOrder = feed(sw, shuffled);
  assert.equal(outOfOrder.late, 0);
  const beatsOf = ({ revision: _r, ...w }: ClosedWindow) => w;
  assert.deepEqual(outOfOrder.windows.map(beatsOf), inOrder.map(beatsOf));
});

test('with the lookahead: a beat of a closed window\'s lookahead span is late (that window would have read it), one after the span is not; nothing within the allowed lateness is', () => {
  const base = 1_763_700_000_000; // on a 5 s boundary
  const sw = new SessionWindows();
  // One beat a second, base+1 s .. base+100 s, from offset 1.
  for (let k = 1; k <= 100; k++) sw.add([base + k * 1000], [1000], BigInt(k));
  sw.closeReady();
  // Watermark base+90 s: windows whose end + 5 s ≤ base+90 s are closed, through base+85 s.
  assert.equal(sw.closedThroughMs, base + 85_000);
  // In [base+85 s, base+90 s): the closed window ending at base+85 s read that span.
  assert.equal(sw.add([base + 87_500], [500], 101n), 1);
  assert.equal(sw.lateBeatCount, 1);
  // At base+90.5 s: past the span, not late (10 s behind the newest beat at most).
  assert.equal(sw.add([base + 90_500], [500], 102n), 0);
  // Both still land in the open windows that hold them.
  let later: ClosedWindow[] = [];
  for (let k = 101; k <= 110 && later.length === 0; k++) {
    sw.add([base + k * 1000], [1000], BigInt(k + 2));
    later = sw.closeReady();
  }
  assert.equal(later[0].windowEndMs, base + 90_000);
  assert.ok(Array.from(later[0].beatTimesMs).includes(base + 87_500), 'the late beat is in its own window');
  assert.equal(later[0].contextCount + later[0].lookaheadCount < later[0].count, true);
  // The retained offset still covers what open windows and their context need.
  assert.ok(sw.retainedMinOffset()! <= 31n);
});

test('out-of-order readings within the allowed lateness land in the right windows', () => {
  const readings = readingsFrom(loadRr('nsrdb_16272_seg116_5min.rr_ms.txt'), t0, 2);
  // Hold back every third reading by two readings (a few seconds, well inside 10 s).
  const shuffled = [...readings];
  for (let i = 0; i + 2 < shuffled.length; i += 3) {
    const [held] = shuffled.splice(i, 1);
    shuffled.splice(i + 2, 0, held);
  }
  assert.notDeepEqual(shuffled, readings);
  const inOrder = feed(new SessionWindows(), readings);
  const sw = new SessionWindows();
  const outOfOrder = feed(sw, shuffled);
  assert.equal(outOfOrder.late, 0);
  // The same windows; only the instance's beat revision (how often beats came out of order) differs.
  const beatsOf = ({ revision: _r, ...w }: ClosedWindow) => w;
  assert.deepEqual(outOfOrder.windows.map(beatsOf), inOrder.windows.map(beatsOf));
  assert.ok(sw.revision > 0);
  assert.ok(inOrder.windows.every((w) => w.revision === 0));
  const beats = allBeats(readings);
  for (const w of outOfOrder.windows) assertWindowHolds(w, beats);
});

test('beats later than the allowed lateness are counted as late, and kept only for windows still open', () => {
  // Lateness alone: no context before windows (the context test below covers that), no
  // lookahead after them (the lookahead tests above cover that).
  const sw = new SessionWindows({ contextMs: 0, lookaheadBeats: 0 });
  const base = 1_763_700_000_000; // on a 5 s boundary
  // One beat a second from base+1 s to base+100 s.
  for (let k = 1; k <= 100; k++) sw.add([base + k * 1000], [1000], BigInt(k));
  const before = sw.closeReady();
  // Watermark base+90 s: windows up to end base+90 s are closed.
  assert.equal(sw.closedThroughMs, base + 90_000);
  assert.equal(before[before.length - 1].windowEndMs, base + 90_000);

  // A reading recorded at base+88.5 s (inside closed window base+90 s but also in open ones).
  const lateA = sw.add([base + 88_500], [500], 101n);
  assert.equal(lateA, 1);
  // A reading from base+20.5 s: every window holding it (ends ≤ base+85 s) is closed → dropped.
  const lateB = sw.add([base + 20_500], [700], 102n);
  assert.equal(lateB, 1);
  // The oldest open window is [base+31 s, base+95 s): a beat just before it is dropped, one
  // inside it is kept.
  assert.equal(sw.add([base + 30_999], [600], 103n), 1);
  assert.equal(sw.add([base + 31_200], [200], 104n), 1);
  assert.equal(sw.lateBeatCount, 4);

  // Move on and close the windows that should now hold the late beat at 88.5 s.
  for (let k = 101; k <= 120; k++) sw.add([base + k * 1000], [1000], BigInt(k + 4));
  const after = sw.closeReady();
  assert.equal(after[0].windowEndMs, base + 95_000);
  assert.deepEqual(Array.from(after[0].beatTimesMs.subarray(0, 2)), [base + 31_000, base + 31_200]);
  for (const w of after) {
    const times = Array.from(w.beatTimesMs);
    assert.ok(times.includes(base + 88_500), `late beat kept in open window ending ${w.windowEndMs}`);
    assert.ok(!times.includes(base + 20_500) && !times.includes(base + 30_999));
    assert.equal(w.lateBeatCount, 4);
  }
  for (const w of before) assert.ok(!Array.from(w.beatTimesMs).includes(base + 88_500));
});

test('a re-sent copy of a beat still held is not late (a retried upload); one no longer held counts as late', () => {
  const sw = new SessionWindows({ lookaheadBeats: 0 });
  const base = 1_763_700_000_000;
  for (let k = 1; k <= 200; k++) sw.add([base + k * 1000], [1000], BigInt(k));
  assert.equal(sw.closedThroughMs, base + 190_000);
  // The last 20 s again, the first 10 of them behind the closed windows' end: the same times.
  const again = Array.from({ length: 20 }, (_, i) => base + (181 + i) * 1000);
  assert.equal(sw.add(again, new Array(20).fill(1000), 201n), 0);
  assert.equal(sw.duplicateBeatCount, 20);
  // A new beat among them is late as before.
  assert.equal(sw.add([base + 185_500], [500], 202n), 1);
  // A copy of the first beat: no window (or context) holds it any more, so it cannot be told
  // from a late one.
  assert.equal(sw.add([base + 1000], [1000], 203n), 1);
  assert.equal(sw.lateBeatCount, 2);
  assert.equal(sw.duplicateBeatCount, 20);
});

test('gaps longer than a window are skipped, not filled with empty windows', () => {
  const rr = loadRr('nsrdb_19140_seg073_5min.rr_ms.txt');
  const first = readingsFrom(rr.slice(0, 120), t0, 4, 0n);
  const lastOfFirst = first[first.length - 1].recordedAt;
  const second = readingsFrom(rr.slice(120, 300), lastOfFirst + 10 * 60_000, 4, BigInt(first.length));
  const readings = [...first, ...second];
  const sw = new SessionWindows();
  const { windows } = feed(sw, readings);
  windows.push(...sw.closeAll());
  const beats = allBeats(readings);
  for (const w of windows) {
    assert.ok(w.count > 0);
    assertWindowHolds(w, beats);
  }
  const resume = second[0].recordedAt - second[0].rr.reduce((a, b) => a + b, 0) + second[0].rr[0];
  // Windows holding the tail of the first part run up to the last one whose start is at or
  // before the last beat; the next is the first window holding the first beat after the gap.
  const jumpAt = windows.findIndex((w, i) => i > 0 && w.windowEndMs - windows[i - 1].windowEndMs > 5000);
  assert.ok(jumpAt > 0);
  assert.equal(windows[jumpAt - 1].windowEndMs, Math.floor((lastOfFirst + 64_000) / 5000) * 5000);
  assert.equal(windows[jumpAt].windowEndMs, Math.floor(resume / 5000) * 5000 + 5000);
  assert.equal(windows.filter((w, i) => i > 0 && w.windowEndMs - windows[i - 1].windowEndMs > 5000).length, 1);
});

test('closeAll flushes every remaining window up to the last beat and releases the state', () => {
  const readings = readingsFrom(loadRr('nsrdb_16539_seg09_5min.rr_ms.txt').slice(0, 150), t0, 5);
  const sw = new SessionWindows();
  const { windows } = feed(sw, readings);
  assert.ok(sw.retainedMinOffset() !== null);
  const flushed = sw.closeAll();
  const beats = allBeats(readings);
  const lastBeat = beats[beats.length - 1].t;
  assert.ok(flushed.length >= 2);
  assert.equal(flushed[0].windowEndMs, windows[windows.length - 1].windowEndMs + 5000);
  assert.equal(flushed[flushed.length - 1].windowEndMs, Math.floor(lastBeat / 5000) * 5000 + 5000);
  for (const w of flushed) assertWindowHolds(w, beats);
  assert.equal(sw.retainedBeatCount, 0);
  assert.equal(sw.retainedMinOffset(), null);
  assert.deepEqual(sw.closeAll(), []);
  // A straggler from before the flushed end is late and dropped if no window can hold it,
  // nor use it as context.
  assert.equal(sw.add([lastBeat - 70_000 - defaultContextMs], [800], 999n), 1);
  assert.equal(sw.retainedBeatCount, 0);
});

test('closeTail closes the tail but keeps the beats: resumed input gives the windows of an uninterrupted run after the tail', () => {
  const readings = readingsFrom(loadRr('nsrdb_16539_seg09_5min.rr_ms.txt'), t0, 5);
  const whole = feed(new SessionWindows(), readings);
  const cut = Math.floor(readings.length / 2);
  const sw = new SessionWindows();
  const before = feed(sw, readings.slice(0, cut));
  const tail = sw.closeTail();
  const lastBeforePause = readings[cut - 1].recordedAt;
  assert.equal(tail[tail.length - 1].windowEndMs, Math.floor(lastBeforePause / 5000) * 5000 + 5000);
  assert.ok(sw.retainedBeatCount > 0 && sw.retainedMinOffset() !== null, 'the beats stay');
  const after = feed(sw, readings.slice(cut));
  const got = [...before.windows, ...tail, ...after.windows];
  // Every window of the uninterrupted run, once each and in order, up to its own last closed one.
  assert.deepEqual(got.map((w) => w.windowEndMs).slice(0, whole.windows.length), whole.windows.map((w) => w.windowEndMs));
  const beats = allBeats(readings);
  const beatsBeforePause = allBeats(readings.slice(0, cut));
  for (const w of got.slice(0, whole.windows.length)) {
    // The one window closed early, ending after the last beat before the pause, holds what
    // had come; every other one holds exactly its beats, as if there had been no pause.
    // Windows just before it whose lookahead reaches past the pause hold what had come too.
    const lookaheadCut = beatsBeforePause.filter((b) => b.t >= w.windowEndMs).length < LOOKAHEAD_BEATS;
    if ((w.windowEndMs > lastBeforePause && w.windowEndMs - 5000 <= lastBeforePause) || (lookaheadCut && w.windowEndMs <= lastBeforePause)) assertWindowHolds(w, beatsBeforePause);
    else assertWindowHolds(w, beats);
  }
  // The beats after the pause that the early window missed, or would have read as its
  // lookahead, are counted as late.
  const missed = beats.filter((b) => b.t > lastBeforePause && b.t < tail[tail.length - 1].windowEndMs + LOOKAHEAD_MS).length;
  assert.equal(after.late, missed);
});

test('a redelivered reading does not double its beats', () => {
  const readings = readingsFrom(loadRr('nsrdb_16539_seg09_5min.rr_ms.txt'), t0, 4);
  const withRepeats: Reading[] = [];
  readings.forEach((r, i) => {
    withRepeats.push(r);
    if (i % 7 === 3) withRepeats.push(readings[i - 1]); // the previous one again, still open
  });
  const sw = new SessionWindows();
  const { windows } = feed(sw, withRepeats);
  assert.ok(sw.duplicateBeatCount > 0);
  assert.deepEqual(windows, feed(new SessionWindows(), readings).windows);
});

test('retainedMinOffset is the oldest offset of a beat some open window still needs', () => {
  // No context and no lookahead: windows close when the watermark passes their end.
  const sw = new SessionWindows({ contextMs: 0, lookaheadBeats: 0 });
  const base = 1_763_700_000_000;
  for (let k = 1; k <= 100; k++) sw.add([base + k * 1000], [1000], BigInt(1000 + k));
  sw.closeReady();
  // closed through base+90 s; open windows start at base+95−64 = base+31 s → beat 31.
  assert.equal(sw.retainedMinOffset(), 1031n);
  // An out-of-order beat from an older record offset lowers it.
  sw.add([base + 40_500], [500], 7n);
  assert.equal(sw.retainedMinOffset(), 7n);
  // Not yet handed-over windows count too: close windows holding beat 40.5 s without draining.
  for (let k = 101; k <= 200; k++) sw.add([base + k * 1000], [1000], BigInt(1000 + k));
  assert.ok(sw.pendingWindowCount > 0);
  assert.equal(sw.retainedMinOffset(), 7n);
  sw.closeReady();
  assert.equal(sw.retainedMinOffset(), BigInt(1000 + 131));
  assert.equal(sw.add([base + 201_000], [1000], '9223372036854775806'), 0);
  assert.throws(() => sw.add([base + 202_000], [1000], '9223372036854775808'), AttuneError);
});

test("a closed window's oldest offset is exact across 64-bit offsets (32-bit halves, past 2^53)", () => {
  // The window cut compares offsets by their 32-bit halves: an older offset that differs only
  // in its low half, or has a lower high half with a larger low half, or differs by 1 where a
  // double cannot tell them apart, must still win.
  const cases: Array<{ inOrder: bigint; older: bigint }> = [
    { inOrder: 2n ** 32n + 5n, older: 2n ** 32n - 1n },
    { inOrder: 2n ** 53n + 10n, older: 2n ** 53n + 1n },
    { inOrder: 5n * 2n ** 40n + 100n, older: 5n * 2n ** 40n + 3n },
    { inOrder: (1n << 63n) - 300n, older: (1n << 63n) - 299n - 200n },
  ];
  for (const { inOrder, older } of cases) {
    const sw = new SessionWindows({ contextMs: 0, lookaheadBeats: 0 });
    const base = 1_763_700_000_000;
    for (let k = 1; k <= 100; k++) sw.add([base + k * 1000], [1000], inOrder + BigInt(k));
    sw.closeReady();
    // A beat from an older record, out of order, inside the windows still open.
    sw.add([base + 40_500], [500], older);
    // Windows holding it close and are not handed over; the ring lets go of the beat itself.
    for (let k = 101; k <= 200; k++) sw.add([base + k * 1000], [1000], inOrder + BigInt(k));
    assert.ok(sw.pendingWindowCount > 0);
    assert.equal(sw.retainedMinOffset(), older, `older ${older} among ${inOrder}+k`);
    sw.closeReady();
    assert.equal(sw.retainedMinOffset(), inOrder + 131n);
  }
});

test('eviction keeps a session small over 24 h of beats', () => {
  const rr = loadRr('pyhrv_SampleNNISeriesLong_60min.rr_ms.txt');
  const sw = new SessionWindows();
  let t = t0;
  let offset = 0n;
  let windowCount = 0;
  let maxRetained = 0;
  let chunk: number[] = [];
  const dayEnd = t0 + 24 * 3600_000;
  for (let i = 0; t < dayEnd; i++) {
    const r = rr[i % rr.length];
    t += r;
    chunk.push(r);
    if (chunk.length === 5) {
      sw.add(beatTimes(t, chunk), chunk, offset++);
      chunk = [];
      const closed = sw.closeReady();
      windowCount += closed.length;
      for (const w of closed) {
        // Full windows (after the first 64 s) hold 64 s of a 50–107 bpm recording.
        const full = w.windowStartMs >= t0;
        const own = w.count - w.contextCount;
        assert.ok(own < 120 && (!full || own > 50), `window ending ${w.windowEndMs} holds ${own} beats`);
        assert.ok(w.contextCount < 115, `window ending ${w.windowEndMs} has ${w.contextCount} context beats`);
      }
      maxRetained = Math.max(maxRetained, sw.retainedBeatCount);
    }
  }
  const expected = Math.floor((24 * 3600_000 - 10_000 - LOOKAHEAD_MS) / 5000);
  assert.ok(Math.abs(windowCount - expected) <= 2, `${windowCount} windows, expected ≈ ${expected}`);
  // 60 s of context + 64 + 10 + 5 + 5 (lookahead) s of beats at most (this recording stays below ~120 bpm).
  assert.ok(maxRetained < 280, `max retained ${maxRetained}`);
  assert.ok(sw.capacity <= 512, `capacity ${sw.capacity}`);
});

test('a late beat no open window holds is kept as context for the next windows while it can still be context', () => {
  // No lookahead: windows close when the watermark passes their end (the times below).
  const sw = new SessionWindows({ lookaheadBeats: 0 });
  const base = 1_763_700_000_000;
  for (let k = 1; k <= 100; k++) sw.add([base + k * 1000], [1000], BigInt(k));
  sw.closeReady();
  // Closed through base+90 s: the oldest open window is [base+31 s, base+95 s), and its
  // context reaches back to base−29 s.
  assert.equal(sw.closedThroughMs, base + 90_000);
  assert.equal(sw.add([base + 20_500], [500], 101n), 1); // late, context of open windows
  assert.equal(sw.add([base - 29_500], [500], 102n), 1); // late, too old even for context
  for (let k = 101; k <= 110; k++) sw.add([base + k * 1000], [1000], BigInt(k + 2));
  const next = sw.closeReady();
  assert.equal(next[0].windowEndMs, base + 95_000);
  const context = Array.from(next[0].beatTimesMs.subarray(0, next[0].contextCount));
  assert.ok(context.includes(base + 20_500), 'late beat handed over as context');
  assert.ok(!context.includes(base - 29_500));
  assert.equal(context[0], base + 1000);
  assert.ok(context.every((t) => t >= base + 31_000 - defaultContextMs && t < base + 31_000));
  assert.equal(sw.retainedMinOffset(), 1n, 'the context beats hold the commit back');
});

test('invalid input is refused with coded errors', () => {
  const sw = new SessionWindows();
  assert.throws(() => sw.add([1, 2], [1], 0n), (e) => e instanceof AttuneError && e.code === 'validation_error');
  assert.throws(() => sw.add([Number.NaN], [1], 0n), AttuneError);
  assert.throws(() => sw.add([1], [1], '-1'), AttuneError);
  assert.throws(() => new SessionWindows({ stepMs: 0 }), AttuneError);
  assert.throws(() => new SessionWindows({ stepMs: 70_000 }), AttuneError);
  assert.throws(() => new SessionWindows({ allowedLatenessMs: -1 }), AttuneError);
  assert.throws(() => new SessionWindows({ contextMs: -1 }), AttuneError);
});
