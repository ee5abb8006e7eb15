// GroupWindows (pure): who counts per group window, when a window is final, and that the
// result does not depend on the arrival order of the participants' windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSynchronyPlan } from './synchrony.js';
import { Mulberry32 } from '../../lib/prng.js';
import { GroupWindows, type ClosedGroupWindow, type ParticipantWindowInput } from './group-windows.js';
import { FIXTURE_PARTICIPANTS, FIXTURE_WINDOWS, delayedFrom, fixtureEnd, fixtureWindows, outage, participantInput, shuffledRounds, windowMajor } from './group-fixture.test-util.js';
import type { GroupParticipantWindowRecord } from '../../schemas/records.js';

const plan = createSynchronyPlan();

function input(w: GroupParticipantWindowRecord, offset: number): ParticipantWindowInput {
  return { ...participantInput(w), offset: BigInt(offset) };
}

function run(records: GroupParticipantWindowRecord[], allowedLatenessMs?: number): ClosedGroupWindow[] {
  const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, allowedLatenessMs });
  const out: ClosedGroupWindow[] = [];
  records.forEach((r, i) => {
    g.add(input(r, i));
    out.push(...g.closeReady());
  });
  out.push(...g.closeAll());
  return out;
}

const windows = fixtureWindows('mesh-1', 'org-1');

test('a phase-locked group: R high and significant, late joiner and drop-out counted as expected, the inactive rule after 15 s', () => {
  const closed = run(windowMajor(windows));
  assert.equal(closed.length, FIXTURE_WINDOWS);
  assert.deepEqual(
    closed.map((c) => c.windowEndMs),
    Array.from({ length: FIXTURE_WINDOWS }, (_, k) => fixtureEnd(k)),
  );
  // p5 joins late (counted from its first valid window, 8); p4 sends nothing in 15..20.
  const expectedCount = (k: number) => 3 + (k >= 8 ? 1 : 0) + (k >= 15 && k <= 20 ? 0 : 1);
  assert.deepEqual(
    closed.map((c) => c.result.participantCount),
    closed.map((_, k) => expectedCount(k)),
  );
  // p4 is still active (not counted) 5 and 10 s after its last beat, inactive from 15 s.
  assert.deepEqual(
    [15, 16, 17, 20, 21].map((k) => closed[k].membership.statuses.find((s) => s.participantId === 'p4')!.status),
    ['active', 'active', 'inactive', 'inactive', 'active'],
  );
  assert.equal(closed[0].membership.statuses.find((s) => s.participantId === 'p5')!.status, 'waiting');
  for (const c of closed) {
    assert.ok(c.result.syncR! > 0.9, `R ${c.result.syncR} at ${c.windowEndMs}`);
    assert.ok(c.result.syncP! < 0.05, `p ${c.result.syncP} at ${c.windowEndMs}`);
    assert.ok(c.result.surrogateCount >= 100);
    assert.equal(c.result.breathingSync, 1);
    const w = c.participants.filter((p) => p.counted).reduce((s, p) => s + p.weight, 0);
    assert.ok(Math.abs(w - 1) < 1e-12);
  }
});

test('another arrival order (each participant still in order) gives identical group windows', () => {
  const a = run(windowMajor(windows));
  for (const seed of [1, 2, 3]) assert.deepEqual(run(shuffledRounds(windows, seed)), a);
});

/** Window-major order, with participant j's windows reaching the worker `rounds` windows (5 s each) behind everyone else's. */
function lagging<T>(w: (T | null)[][], j: number, rounds: number): T[] {
  const out: T[] = [];
  for (let k = 0; k < FIXTURE_WINDOWS + rounds; k++) {
    w.forEach((row, i) => {
      const x = i === j ? row[k - rounds] : row[k];
      if (x) out.push(x);
    });
  }
  return out;
}

/** Feeds records in order; the closed windows and the late count. */
function runCounting(records: GroupParticipantWindowRecord[], opts: { allowedLatenessMs?: number; earlyClose?: boolean; silentAfterMs?: number } = {}) {
  const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, ...opts });
  const out: ClosedGroupWindow[] = [];
  records.forEach((r, i) => {
    g.add(input(r, i));
    out.push(...g.closeReady());
  });
  out.push(...g.closeAll());
  return { out, late: g.lateCount };
}

test("the same participant windows in event order, with one participant's 30 s behind the others', and after an outage participant by participant: identical group windows", () => {
  const inOrder = runCounting(windowMajor(windows));
  assert.equal(inOrder.late, 0);
  const counted = (c: ClosedGroupWindow[]) => c.map((x) => x.participants.filter((p) => p.counted).map((p) => p.participantId).join(','));
  // p2's phone uploads in 30 s batches from window 2 on: each of its windows reaches the group
  // worker after the others' ending 30 s later. The beats are the same; only their arrival
  // differs. The group waits for p2 (known, neither ended nor silent) at every window.
  const delayed = runCounting(delayedFrom(windows, 1, 2, 6));
  assert.equal(delayed.late, 0);
  assert.deepEqual(counted(delayed.out), counted(inOrder.out));
  assert.deepEqual(delayed.out, inOrder.out, 'participant counts, R, PLV, z, p, weights: all the same');
  // p4 (whose own data stops for 15..20) lagging instead, and 60 s behind.
  assert.deepEqual(runCounting(delayedFrom(windows, 3, 1, 6)).out, inOrder.out);
  assert.deepEqual(runCounting(delayedFrom(windows, 1, 1, 12)).out, inOrder.out);
  // A 50 s outage (windows 10..19): on restart each participant's backlog arrives whole, one
  // participant after another (the first to resend jumps the group's time by 50 s).
  for (const order of [
    [0, 1, 2, 3, 4],
    [4, 3, 2, 1, 0],
    [3, 0, 4, 2, 1],
  ]) {
    const o = runCounting(outage(windows, 10, 20, order));
    assert.equal(o.late, 0, `order ${order}`);
    assert.deepEqual(o.out, inOrder.out, `order ${order}`);
  }
  // With early close as well (the same windows as its own in-order run).
  const early = runCounting(windowMajor(windows), { earlyClose: true });
  assert.deepEqual(runCounting(delayedFrom(windows, 1, 2, 6), { earlyClose: true }).out, early.out);
  assert.deepEqual(runCounting(outage(windows, 10, 20, [2, 0, 4, 1, 3]), { earlyClose: true }).out, early.out);
  // What the group cannot wait for: a participant it has not heard of. p2's windows lagging 30 s
  // from its very first: the windows the others close before p2's first one arrives lack p2
  // (the lateness rule still bounds this case, as before).
  const unknown = runCounting(lagging(windows, 1, 6));
  assert.ok(unknown.late > 0);
  assert.ok(counted(unknown.out)[0].split(',').every((id) => id !== 'p2'));
  assert.deepEqual(counted(unknown.out).slice(8), counted(inOrder.out).slice(8), 'once p2 is known, it is waited for');
});

test('any interleaving of the participants\' windows (each participant\'s in order, everyone heard from at the start) gives the in-order group windows', () => {
  // The merges below put a participant up to 26 windows (130 s) behind another: the silence
  // bound is set above the whole fixture (150 s), so nobody is taken as gone.
  const silentAfterMs = 600_000;
  for (const earlyClose of [false, true]) {
    const inOrder = runCounting(windowMajor(windows), { earlyClose }).out;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      // Every participant's first window, then a random merge of the rest: any participant may
      // run any distance ahead of the others (arbitrary delays, stalls, backlogs).
      const rng = new Mulberry32(seed);
      const rest = windows.map((row) => row.filter((w): w is GroupParticipantWindowRecord => w !== null));
      const order: GroupParticipantWindowRecord[] = rest.map((row) => row.shift()!);
      while (rest.some((row) => row.length > 0)) {
        const open = rest.filter((row) => row.length > 0);
        const row = open[Math.floor(rng.next() * open.length)];
        const n = 1 + Math.floor(rng.next() * 8);
        order.push(...row.splice(0, n));
      }
      const got = runCounting(order, { earlyClose, silentAfterMs });
      assert.equal(got.late, 0, `seed ${seed}, earlyClose ${earlyClose}`);
      assert.deepEqual(got.out, inOrder, `seed ${seed}, earlyClose ${earlyClose}`);
    }
  }
});

test('a window is final once every participant present has got to it (or ended, or gone silent) and the group is the lateness past it', () => {
  const g = new GroupWindows({ groupId: 'mesh-2', plan, pacerRateBpm: null, allowedLatenessMs: 10_000 });
  const [p1, p2] = [windows[0], windows[1]];
  g.add(input(p1[0]!, 0));
  g.add(input(p2[0]!, 1));
  g.add(input(p1[1]!, 2));
  assert.equal(g.closeReady().length, 0, '5 s past window 0: not final');
  g.add(input(p1[2]!, 3));
  assert.deepEqual(
    g.closeReady().map((c) => c.windowEndMs),
    [fixtureEnd(0)],
    '10 s past window 0, and both have sent it: final',
  );
  g.add(input(p1[3]!, 4));
  assert.equal(g.closeReady().length, 0, "p1 is 10 s past window 1, but p2 has not got there: p2's window 1 is awaited");
  assert.equal(g.add(input(p2[1]!, 5)), true, "p2's window 1 is not late");
  const [c1] = g.closeReady();
  assert.equal(c1.windowEndMs, fixtureEnd(1));
  assert.equal(c1.result.participantCount, 2);
  assert.equal(g.lateCount, 0);
  // Open: windows 2 and 3 (p1's offsets 3 and 4); p2's newest record (offset 5) is kept too, so a
  // restart knows to wait for p2 again.
  assert.equal(g.retainedMinOffset(), 3n);
  // The partition's event time moving on closes nothing p2 may still send (p2 silent for 95 s).
  assert.equal(g.advance(fixtureEnd(20)), false);
  // p2 silent for silentAfterMs (120 s of the group's event time): it no longer holds windows.
  assert.equal(g.advance(fixtureEnd(1) + 120_000), true);
  assert.deepEqual(
    g.closeReady().map((c) => c.windowEndMs),
    [fixtureEnd(2), fixtureEnd(3)],
  );
  assert.equal(g.retainedMinOffset(), 4n, "nothing open; p1's newest record, p1 still live");
  g.advance(fixtureEnd(3) + 120_000);
  assert.equal(g.retainedMinOffset(), null);
});

test("a participant who leaves, or whose session ends, does not hold the others' windows; one silent without an end does until silentAfterMs", () => {
  // p3 stops after window 12 and the others stream on; nothing is flushed (no closeAll).
  const j = FIXTURE_PARTICIPANTS.indexOf('p3');
  const stop = (last: Item | null): (Item | null)[][] => {
    const items = asItems(windows);
    for (let k = 13; k < FIXTURE_WINDOWS; k++) items[j][k] = null;
    if (last) items[j][13] = last;
    return items;
  };
  // Without p3 from 13 on, the others' windows close on the lateness rule (the first window at
  // k + 2), except 15..20, which p4 (no data there, no end) holds until its window 21.
  const indexOf = (order: (Item | GroupParticipantWindowRecord | null)[], k: number, id?: string) =>
    order.findIndex((it) => {
      const w = it && ('w' in it ? it.w : 'window_end' in it ? it : null);
      return w !== null && w.window_end === fixtureEnd(k) && (id === undefined || w.participant_id === id);
    });
  const byLateness = (k: number, order: (Item | GroupParticipantWindowRecord | null)[]) => Math.max(indexOf(order, k + 2), k >= 15 && k <= 20 ? indexOf(order, 21, 'p4') : -1);
  for (const earlyClose of [false, true]) {
    // It left 2 s after window 12 (the fan-out's marker at 13).
    const left = stop({ end: { participant_id: 'p3', window_end: fixtureEnd(13), at: fixtureEnd(12) + 2000, left: true } });
    const l = feedItems(windowMajor(left), { earlyClose, flush: false });
    assert.equal(l.out.at(-1)!.windowEndMs, fixtureEnd(earlyClose ? FIXTURE_WINDOWS - 1 : FIXTURE_WINDOWS - 3), `left, earlyClose ${earlyClose}`);
    if (!earlyClose) for (let k = 13; k < FIXTURE_WINDOWS - 2; k++) assert.equal(l.closedAt.get(fixtureEnd(k)), byLateness(k, windowMajor(left)), `left: window ${k}`);
    // Its session ended with window 12 (the coherence worker's last-window header).
    const ended = windows.map((row) => row.slice());
    for (let k = 13; k < FIXTURE_WINDOWS; k++) ended[j][k] = null;
    const endedOrder = windowMajor(ended);
    const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, earlyClose });
    const out: ClosedGroupWindow[] = [];
    const closedAt = new Map<number, number>();
    endedOrder.forEach((w, i) => {
      g.add({ ...input(w, i), ends: w.participant_id === 'p3' && w.window_end === fixtureEnd(12) });
      for (const c of g.closeReady()) {
        closedAt.set(c.windowEndMs, i);
        out.push(c);
      }
    });
    assert.equal(out.at(-1)!.windowEndMs, fixtureEnd(earlyClose ? FIXTURE_WINDOWS - 1 : FIXTURE_WINDOWS - 3), `ended, earlyClose ${earlyClose}`);
    if (!earlyClose) for (let k = 13; k < FIXTURE_WINDOWS - 2; k++) assert.equal(closedAt.get(fixtureEnd(k)), byLateness(k, endedOrder), `ended: window ${k}`);
  }
  // Silent without an end (no marker, no last window): it holds window 13 on...
  const silent = windows.map((row) => row.slice());
  for (let k = 13; k < FIXTURE_WINDOWS; k++) silent[j][k] = null;
  const feedSilent = (silentAfterMs?: number) => {
    const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, silentAfterMs });
    const out: ClosedGroupWindow[] = [];
    windowMajor(silent).forEach((w, i) => {
      g.add(input(w, i));
      out.push(...g.closeReady());
    });
    return { out, g };
  };
  const held = feedSilent();
  assert.equal(held.out.at(-1)!.windowEndMs, fixtureEnd(12));
  assert.equal(held.g.openEndCount, FIXTURE_WINDOWS - 13);
  // ...until the group's event time is silentAfterMs past its newest window (here 30 s: from
  // window 18 on), then the lateness rule again.
  const bounded = feedSilent(30_000);
  assert.equal(bounded.out.at(-1)!.windowEndMs, fixtureEnd(FIXTURE_WINDOWS - 3));
  assert.deepEqual(
    bounded.out.map((c) => c.result),
    held.out.map((c) => c.result).concat(held.g.closeAll().map((c) => c.result)).slice(0, FIXTURE_WINDOWS - 2),
    'the same windows',
  );
});

test('two windows of one participant for one end keep the same one whatever their order', () => {
  const w = windows[0][12]!;
  const other = { ...w, session_id: 'session-0', coverage: w.coverage, coherence: 0.1 };
  const a = new GroupWindows({ groupId: 'mesh-3', plan, pacerRateBpm: 6 });
  const b = new GroupWindows({ groupId: 'mesh-3', plan, pacerRateBpm: 6 });
  a.add(input(w, 0));
  a.add(input(other, 1));
  b.add(input(other, 0));
  b.add(input(w, 1));
  const [ca] = a.closeAll();
  const [cb] = b.closeAll();
  assert.equal(ca.result.coherence, 0.1, 'the smaller session id, at equal validity and coverage');
  assert.equal(cb.result.coherence, ca.result.coherence);
  assert.equal(a.duplicateCount, 1);
});

test("once every participant's input has ended (their session's last window), the group's last windows close", () => {
  const last = (r: GroupParticipantWindowRecord) => r.window_end === fixtureEnd(FIXTURE_WINDOWS - 1);
  const feed = (records: GroupParticipantWindowRecord[], endsOf: (r: GroupParticipantWindowRecord) => boolean) => {
    const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6 });
    const out: ClosedGroupWindow[] = [];
    records.forEach((r, i) => {
      g.add({ ...input(r, i), ends: endsOf(r) });
      out.push(...g.closeReady());
    });
    return out;
  };
  const all = feed(windowMajor(windows), last);
  assert.equal(all.length, FIXTURE_WINDOWS, 'all 30 close without closeAll()');
  assert.deepEqual(all, run(windowMajor(windows)), 'the same windows as a flush');
  assert.deepEqual(feed(shuffledRounds(windows, 4), last), all);
  // One participant still sending (no end): the last two wait for the lateness as before.
  assert.equal(feed(windowMajor(windows), (r) => last(r) && r.participant_id !== 'p3').length, FIXTURE_WINDOWS - 2);
});

test("participants ending their sessions seconds apart: the first one's flushed last windows do not close windows the other's have yet to reach", () => {
  // Two participants in lockstep. Each one's coherence worker publishes its window ending at E
  // once its watermark passes E + 20 s (lateness and look-ahead), except at its session's end,
  // when every window not yet out goes at once (flushed), the last marked `ends`. p1 ends 0.5 s
  // after its last window's end, p2 3 s later.
  const two = windows.slice(0, 2) as GroupParticipantWindowRecord[][];
  const delayMs = 20_000;
  const endAt = [fixtureEnd(FIXTURE_WINDOWS - 1) + 500, fixtureEnd(FIXTURE_WINDOWS - 1) + 3500];
  const published = two.flatMap((row, j) =>
    row.map((w, k) => {
      const due = w.window_end + delayMs;
      const flushed = due > endAt[j];
      return { w, j, at: flushed ? endAt[j] : due, flushed, ends: k === row.length - 1 };
    }),
  );
  published.sort((x, y) => x.at - y.at || x.j - y.j || x.w.window_end - y.w.window_end);
  const feed = (asFlushed: boolean, earlyClose = false) => {
    const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, earlyClose });
    const out: ClosedGroupWindow[] = [];
    published.forEach((x, i) => {
      g.add({ ...input(x.w, i), ends: x.ends, flushed: asFlushed && x.flushed });
      out.push(...g.closeReady());
    });
    return { out, late: g.lateCount };
  };
  const counted = (c: ClosedGroupWindow[]) => c.map((x) => x.result.participantCount);
  const ideal = run(windowMajor(two));
  assert.deepEqual(counted(ideal), Array(FIXTURE_WINDOWS).fill(2));
  const got = feed(true);
  assert.equal(got.late, 0);
  assert.deepEqual(got.out, ideal, 'the same group windows as an in-order arrival');
  // With early close too: the windows of an in-order arrival with early close.
  const early = feed(true, true);
  assert.equal(early.late, 0);
  const inOrderEarly = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, earlyClose: true });
  const idealEarly: ClosedGroupWindow[] = [];
  windowMajor(two).forEach((r, i) => {
    inOrderEarly.add({ ...input(r, i), ends: r.window_end === fixtureEnd(FIXTURE_WINDOWS - 1) });
    idealEarly.push(...inOrderEarly.closeReady());
  });
  assert.deepEqual(early.out, idealEarly);
  // Taken as event time, p1's flushed windows move the group 10 s past two windows p2's have
  // not reached; p2 (still streaming: not ended) holds them all the same.
  const asEventTime = feed(false);
  assert.equal(asEventTime.late, 0);
  assert.deepEqual(asEventTime.out, ideal);
});

// Issue 11 (G): early close, and the end of a participant's input (a leave, the group session's end).

type Item = { w: GroupParticipantWindowRecord } | { end: { participant_id: string; window_end: number; at: number; left: boolean } };

/** Feeds items (windows and end markers) in order; returns the closed windows and, per window end, the index of the item that closed it. */
function feedItems(items: Item[], opts: { earlyClose: boolean; flush?: boolean }) {
  const g = new GroupWindows({ groupId: 'mesh-1', plan, pacerRateBpm: 6, earlyClose: opts.earlyClose });
  const out: ClosedGroupWindow[] = [];
  const closedAt = new Map<number, number>();
  items.forEach((it, i) => {
    if ('w' in it) g.add(input(it.w, i));
    else g.endInput({ participantId: it.end.participant_id, windowEndMs: it.end.window_end, atMs: it.end.at, left: it.end.left, offset: BigInt(i) });
    for (const c of g.closeReady()) {
      closedAt.set(c.windowEndMs, i);
      out.push(c);
    }
  });
  if (opts.flush !== false) out.push(...g.closeAll());
  return { out, closedAt, g };
}

const asItems = (rows: (GroupParticipantWindowRecord | null)[][]): (Item | null)[][] => rows.map((row) => row.map((w) => (w ? { w } : null)));

test('early close: each window closes as soon as its last participant has sent it, with the same windows in any arrival order; a run\'s first 10 s are dropped', () => {
  const items = asItems(windows);
  const { out, closedAt } = feedItems(windowMajor(items), { earlyClose: true, flush: false });
  // All participants start at window 0: windows 0 and 1 are everyone's warm-up.
  assert.deepEqual(
    out.map((c) => c.windowEndMs),
    Array.from({ length: FIXTURE_WINDOWS - 2 }, (_, k) => fixtureEnd(k + 2)),
    'windows 2..29 closed without a flush (the last ones too)',
  );
  // Window-major order: window k is complete with p5's window k (p5 sends every window).
  const order = windowMajor(items);
  const lastOf = (k: number) => order.findIndex((it) => it && 'w' in it && it.w.participant_id === 'p5' && it.w.window_end === fixtureEnd(k));
  const p4At = (k: number) => order.findIndex((it) => it && 'w' in it && it.w.participant_id === 'p4' && it.w.window_end === fixtureEnd(k));
  let previous = -1;
  for (let k = 2; k < FIXTURE_WINDOWS; k++) {
    // p4, silent from 15 without an end, holds 15..20 until its next record (window 21, the
    // warm-up of a new run) shows it has none for them: its windows come in order.
    const expected = Math.max(previous, k >= 15 && k <= 20 ? p4At(21) : lastOf(k));
    assert.equal(closedAt.get(fixtureEnd(k)), expected, `window ${k}`);
    previous = expected;
  }
  // p4 returns at 21 after 30 s: a new run, counted from 23; p5 counted from its first valid window, 8.
  const expectedCount = (k: number) => 3 + (k >= 8 ? 1 : 0) + (k <= 14 || k >= 23 ? 1 : 0);
  assert.deepEqual(out.map((c) => c.result.participantCount), out.map((c) => expectedCount(fixtureIndex(c.windowEndMs))));
  // Outside the warm-ups the maths is the lateness rule's.
  const late = run(windowMajor(windows));
  for (const c of out) {
    const k = fixtureIndex(c.windowEndMs);
    if (k !== 21 && k !== 22) assert.deepEqual(c.result, late[k].result, `window ${k}`);
  }
  for (const seed of [1, 2, 3, 4, 5, 6]) assert.deepEqual(feedItems(shuffledRounds(items, seed), { earlyClose: true, flush: false }).out, out, `seed ${seed}`);
});

const fixtureIndex = (endMs: number) => (endMs - fixtureEnd(0)) / 5000;

/** The fixture with p3 leaving 2 s after window 12 (no windows after; its marker at window 13). */
function withLeave(): (Item | null)[][] {
  const items = asItems(windows);
  const j = FIXTURE_PARTICIPANTS.indexOf('p3');
  for (let k = 13; k < FIXTURE_WINDOWS; k++) items[j][k] = null;
  items[j][13] = { end: { participant_id: 'p3', window_end: fixtureEnd(13), at: fixtureEnd(12) + 2000, left: true } };
  return items;
}

test('a leave counts from its event time: left from the next window, in both close rules and any arrival order', () => {
  for (const earlyClose of [false, true]) {
    const items = withLeave();
    const { out } = feedItems(windowMajor(items), { earlyClose });
    const at = (k: number) => out.find((c) => c.windowEndMs === fixtureEnd(k))!;
    assert.equal(at(12).membership.statuses.find((s) => s.participantId === 'p3')!.status, 'active');
    for (const k of [13, 14, 20, 29]) {
      assert.equal(at(k).membership.statuses.find((s) => s.participantId === 'p3')!.status, 'left', `window ${k}, earlyClose ${earlyClose}`);
      assert.ok(!at(k).membership.contributing.includes('p3'));
    }
    assert.equal(at(13).membership.counts.left, 1);
    assert.deepEqual(at(13).membership.changes, [{ participantId: 'p3', from: 'active', to: 'left' }]);
    for (const seed of [1, 2, 3, 4]) assert.deepEqual(feedItems(shuffledRounds(items, seed), { earlyClose }).out, out, `seed ${seed}, earlyClose ${earlyClose}`);
  }
});

test('a participant who leaves and joins again counts again after the return, in both close rules and any arrival order', () => {
  // p3 leaves 2 s after window 12 (marker at 13), sends nothing for 13..17 and joins again: its
  // windows from 18 on belong to the group again (the fan-out publishes them).
  const items = withLeave();
  const j = FIXTURE_PARTICIPANTS.indexOf('p3');
  for (let k = 18; k < FIXTURE_WINDOWS; k++) items[j][k] = { w: windows[j][k]! };
  for (const earlyClose of [false, true]) {
    const { out } = feedItems(windowMajor(items), { earlyClose });
    const at = (k: number) => out.find((c) => c.windowEndMs === fixtureEnd(k))!;
    const status = (k: number) => at(k).membership.statuses.find((s) => s.participantId === 'p3')!.status;
    for (const k of [13, 17]) assert.equal(status(k), 'left', `window ${k}, earlyClose ${earlyClose}`);
    // Back from its first window after the return (with early close, after that run's 10 s warm-up).
    const back = earlyClose ? 20 : 18;
    if (earlyClose) assert.equal(status(19), 'left');
    for (let k = back; k < FIXTURE_WINDOWS; k++) {
      assert.equal(status(k), 'active', `window ${k}, earlyClose ${earlyClose}`);
      assert.ok(at(k).membership.contributing.includes('p3'), `p3 counted at window ${k}, earlyClose ${earlyClose}`);
    }
    assert.ok(at(back).membership.changes.some((c) => c.participantId === 'p3' && c.from === 'left' && c.to === 'active'));
    for (const seed of [1, 2, 3, 4]) assert.deepEqual(feedItems(shuffledRounds(items, seed), { earlyClose }).out, out, `seed ${seed}, earlyClose ${earlyClose}`);
  }
});

test("the group session's end (every participant's end marker) closes the group's last windows at once, in any arrival order", () => {
  for (const earlyClose of [false, true]) {
    const items = asItems(windows);
    const endAt = fixtureEnd(19) + 1000;
    for (const [j, id] of FIXTURE_PARTICIPANTS.entries()) {
      for (let k = 20; k < FIXTURE_WINDOWS; k++) items[j][k] = null;
      items[j][20] = { end: { participant_id: id, window_end: fixtureEnd(20), at: endAt, left: false } };
    }
    const { out } = feedItems(windowMajor(items), { earlyClose, flush: false });
    assert.equal(out.at(-1)!.windowEndMs, fixtureEnd(19), `earlyClose ${earlyClose}: the last window closed without a flush`);
    assert.equal(out.length, earlyClose ? 18 : 20);
    // Not `left`: the session ended.
    assert.equal(out.at(-1)!.membership.counts.left, 0);
    for (const seed of [1, 2, 3]) assert.deepEqual(feedItems(shuffledRounds(items, seed), { earlyClose, flush: false }).out, out, `seed ${seed}`);
    // One participant's marker missing (still streaming elsewhere): with the lateness rule the
    // last window waits (the others' markers, at window 20, moved event time 5 s past 19);
    // early close needs no marker (everyone has sent window 19).
    const partial = items.map((row, j) => (j === 0 ? row.map((it, k) => (k === 20 ? null : it)) : row));
    const n = feedItems(windowMajor(partial), { earlyClose, flush: false }).out.length;
    assert.equal(n, earlyClose ? out.length : out.length - 1);
  }
});
