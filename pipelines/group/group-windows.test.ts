// GroupWindows (pure): who counts per group window, when a window is final, and that the
// result does not depend on the arrival order of the participants' windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSynchronyPlan } from './synchrony.js';
import { GroupWindows, type ClosedGroupWindow, type ParticipantWindowInput } from './group-windows.js';
import { FIXTURE_PARTICIPANTS, FIXTURE_WINDOWS, fixtureEnd, fixtureWindows, participantInput, shuffledRounds, windowMajor } from './group-fixture.test-util.js';
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

test("a participant whose windows arrive 30 s behind the others': left out with the default lateness, counted as in order with a 40 s one", () => {
  const inOrder = run(windowMajor(windows));
  // p2's phone uploads in 30 s batches: each of its windows reaches the group worker after the
  // others' ending 30 s later. The beats are the same; only their arrival differs.
  const lagged10 = run(lagging(windows, 1, 6));
  const counted = (c: ClosedGroupWindow[]) => c.map((x) => x.participants.filter((p) => p.counted).map((p) => p.participantId).join(','));
  assert.equal(lagged10.length, inOrder.length);
  // The arrival decides: p2 is late for every window but the last two (still open once the
  // others' input has run out: nothing moves the group 10 s past them before p2's windows);
  // everyone else counts as in order.
  const withoutP2 = counted(inOrder).map((ids) => ids.split(',').filter((id) => id !== 'p2').join(','));
  assert.deepEqual(counted(lagged10).slice(0, -2), withoutP2.slice(0, -2));
  assert.deepEqual(counted(lagged10).slice(-2), counted(inOrder).slice(-2));
  assert.notDeepEqual(lagged10, inOrder);
  // ATTUNE_GROUP_ALLOWED_LATENESS_MS above the lag: the same windows as the in-order run.
  assert.deepEqual(run(lagging(windows, 1, 6), 40_000), inOrder);
  assert.deepEqual(run(windowMajor(windows), 40_000), inOrder);
});

test('a window is final once the group (or its partition) is the lateness past it, whoever has sent it', () => {
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
    '10 s past window 0: final',
  );
  g.add(input(p1[3]!, 4));
  const [c1] = g.closeReady();
  assert.equal(c1.windowEndMs, fixtureEnd(1));
  assert.equal(c1.result.participantCount, 1, "p2's window 1 had not come: it was 10 s behind p1");
  assert.equal(g.add(input(p2[1]!, 5)), false, "p2's window 1 is late now");
  assert.equal(g.lateCount, 1);
  assert.equal(g.retainedMinOffset(), 3n);
  // The partition's event time closes what this group's own input no longer moves.
  assert.equal(g.advance(fixtureEnd(20)), true);
  assert.deepEqual(
    g.closeReady().map((c) => c.windowEndMs),
    [fixtureEnd(2), fixtureEnd(3)],
  );
  assert.equal(g.retainedMinOffset(), null);
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
  // Taken as event time (before), p1's flushed windows closed two windows p2's had not reached.
  const before = feed(false);
  assert.equal(before.late, 2);
  assert.equal(counted(before.out).filter((n) => n === 1).length, 2);
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
  const firstOf = (k: number) => order.findIndex((it) => it && 'w' in it && it.w.window_end === fixtureEnd(k));
  let previous = -1;
  for (let k = 2; k < FIXTURE_WINDOWS; k++) {
    // p4, silent from 15, might still send windows for 15..18 (its newest, 14, is within the
    // lateness plus the run gap): those wait for the lateness rule, the first window at k + 2;
    // windows close in order (19 after 18).
    const expected = Math.max(previous, k >= 15 && k <= 18 ? firstOf(k + 2) : lastOf(k));
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
