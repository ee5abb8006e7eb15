// ProvisionalGroupWindows (pure): when a provisional group window comes out, and that at a live
// pace (the same participant windows as the final path gets) its figures are the final ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSynchronyPlan } from './synchrony.js';
import { GroupWindows } from './group-windows.js';
import { ProvisionalGroupWindows, type ProvisionalGroupWindow, type ProvisionalParticipantWindow } from './provisional-windows.js';
import { FIXTURE_WINDOWS, fixtureEnd, fixtureWindows, participantInput, windowMajor } from './group-fixture.test-util.js';
import type { GroupParticipantWindowRecord } from '../../schemas/records.js';

const plan = createSynchronyPlan();
const windows = fixtureWindows('mesh-p', 'org-1');

const input = participantInput;

/** Feeds the records in order; for each window given, the index of the record that released it. */
function feed(g: ProvisionalGroupWindows, records: GroupParticipantWindowRecord[]): Array<{ at: number; w: ProvisionalGroupWindow }> {
  const out: Array<{ at: number; w: ProvisionalGroupWindow }> = [];
  records.forEach((r, i) => {
    for (const w of g.add(input(r))) out.push({ at: i, w });
  });
  return out;
}

const kOf = (end: number) => (end - fixtureEnd(0)) / 5000;

test('every end given once, in order; with everyone sending, as soon as the last participant has sent it', () => {
  const records = windowMajor(windows);
  const given = feed(new ProvisionalGroupWindows({ groupId: 'mesh-p', plan, pacerRateBpm: 6 }), records);
  assert.deepEqual(
    given.map((x) => x.w.windowEndMs),
    Array.from({ length: FIXTURE_WINDOWS }, (_, k) => fixtureEnd(k)),
  );
  for (const { at, w } of given) {
    const k = kOf(w.windowEndMs);
    const lastAtK = records.map((r) => r.window_end).lastIndexOf(w.windowEndMs);
    const firstPast = records.findIndex((r) => r.window_end > w.windowEndMs);
    if (k < 3) {
      // The group's first 15 s: each end also waits for a window past it.
      assert.equal(at, firstPast, `end ${k} given at record ${at}, the first window past it is record ${firstPast}`);
    } else if (k < 15 || k > 20) {
      // p4 (absent in 15..20) is waited for until the lateness runs out; at k 21 it is back.
      assert.equal(at, lastAtK, `end ${k} given at record ${at}, its last window is record ${lastAtK}`);
    } else {
      // p4 has stopped: an end is given at the latest when the group is 10 s past it.
      const tenSecondsOn = records.findIndex((r) => r.window_end >= w.windowEndMs + 10_000);
      assert.ok(at >= lastAtK && at <= tenSecondsOn, `end ${k} given at record ${at} (its last window ${lastAtK}, 10 s on ${tenSecondsOn})`);
    }
    assert.equal(w.presentCount, records.filter((r) => r.window_end === w.windowEndMs).length);
  }
});

test("where everyone present counts in the final window, the provisional figures are the final window's", () => {
  const records = windowMajor(windows);
  const given = new Map(feed(new ProvisionalGroupWindows({ groupId: 'mesh-p', plan, pacerRateBpm: 6 }), records).map((x) => [x.w.windowEndMs, x.w]));
  const final = new GroupWindows({ groupId: 'mesh-p', plan, pacerRateBpm: 6 });
  for (const r of records) final.add({ ...input(r), offset: 0n });
  let compared = 0;
  for (const c of final.closeAll()) {
    const p = given.get(c.windowEndMs);
    if (!p) continue;
    const counted = c.participants.filter((q) => q.counted).map((q) => q.participantId);
    const present = records.filter((r) => r.window_end === c.windowEndMs && r.valid).map((r) => r.participant_id);
    if (counted.length !== present.length) {
      // GroupMembership's history (late joiners, inactivity) differs from "everyone valid here": the
      // provisional window counts every valid window, so it must count more here, never fewer.
      assert.ok(p.result.participantCount > c.result.participantCount, `end ${kOf(c.windowEndMs)}`);
      continue;
    }
    compared++;
    assert.equal(p.result.participantCount, c.result.participantCount);
    assert.equal(p.result.coherence, c.result.coherence);
    assert.equal(p.result.syncR, c.result.syncR);
    assert.equal(p.result.syncP, c.result.syncP);
    assert.equal(p.result.breathingSync, c.result.breathingSync);
    assert.deepEqual(p.result.participants, c.result.participants);
  }
  assert.ok(compared >= 20, `${compared} windows compared`);
});

test('a newer read of a window replaces the older; ends already given, or final, take nothing more', () => {
  const g = new ProvisionalGroupWindows({ groupId: 'mesh-p', plan, pacerRateBpm: 6 });
  const [a, b] = [windows[0][0]!, windows[1][0]!];
  assert.deepEqual(g.add({ ...input(a), coherence: 0.1 }), []);
  assert.deepEqual(g.add(input(a)), [], 'a young group: end 0 waits for a window past it');
  assert.deepEqual(g.add(input(b)), []);
  const [w0] = g.add(input(windows[0][1]!));
  assert.equal(w0.windowEndMs, fixtureEnd(0));
  // Both counted, and the newer read of p1's window (coherence 0.4, not 0.1) is the one used.
  assert.equal(w0.result.participantCount, 2);
  assert.equal(w0.result.coherence, 0.4);
  assert.deepEqual(g.add(input(windows[2][0]!)), [], 'end 0 was given: a late window for it is dropped');
  g.finalThrough(fixtureEnd(2));
  assert.deepEqual(g.add(input(windows[1][1]!)), [], 'end 1 is final');
  assert.deepEqual(g.add(input(windows[1][2]!)), [], 'end 2 is final');
  assert.equal(g.openEndCount, 0);
  // Past the young group's 15 s, p3's window at end 0 (dropped above) made it a participant.
  assert.equal(g.add(input(windows[0][3]!)).length, 0, 'p2 and p3 have not sent end 3');
  assert.equal(g.add(input(windows[1][3]!)).length, 0, 'p3 has not sent end 3');
  assert.equal(g.add(input(windows[2][3]!)).length, 1);
});

test('memory stays bounded over a long run: ends are let go once given', () => {
  const g = new ProvisionalGroupWindows({ groupId: 'mesh-p', plan, pacerRateBpm: 6 });
  let max = 0;
  for (const r of windowMajor(windows)) {
    g.add(input(r));
    max = Math.max(max, g.openEndCount);
  }
  // At most the ends within the lateness of the newest one (10 s: 3 ends) are open.
  assert.ok(max <= 3, `${max} open ends`);
});

test("one participant streaming two sessions: the final windows' rule picks one window at an end, whatever the order", () => {
  const results = [false, true].map((invalidFirst) => {
    const g = new ProvisionalGroupWindows({ groupId: 'mesh-p', plan, pacerRateBpm: 6 });
    const valid = input(windows[0][0]!);
    const invalid = { ...valid, sessionId: 'session-other', valid: false, coherence: null, series: [] };
    for (const w of invalidFirst ? [invalid, valid] : [valid, invalid]) g.add(w);
    g.add(input(windows[1][0]!));
    const [w0] = g.add(input(windows[0][1]!));
    return w0.result;
  });
  assert.equal(results[0].participantCount, 2);
  assert.deepEqual(results[1], results[0]);
});
