// Joins, drop-outs and returns give the expected counts per group window (issue 11, "Done when").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupMembership, type ParticipantObservation } from './membership.js';

const STEP = 5_000;
/**
 * One participant's coherence windows for ends in [fromEnd, toEnd]: beats every second while
 * they send (until `silentFrom`, from `resumeAt`), windows valid once 64 s of data lie behind
 * them and no gap is inside (as window-metrics would judge: partial at a data edge).
 */
function observations(id: string, joinMs: number, toEnd: number, opts: { silentFrom?: number; resumeAt?: number } = {}): ParticipantObservation[] {
  const out: ParticipantObservation[] = [];
  const sending = (t: number) => t >= joinMs && !(opts.silentFrom !== undefined && t >= opts.silentFrom && (opts.resumeAt === undefined || t < opts.resumeAt));
  for (let end = Math.ceil(joinMs / STEP) * STEP; end <= toEnd; end += STEP) {
    let last: number | null = null;
    let gap = false;
    for (let t = end - 64_000; t < end; t += 1000) {
      if (sending(t)) last = t;
      else gap = true;
    }
    out.push({ participantId: id, windowEndMs: end, valid: !gap, lastBeatMs: last });
  }
  return out;
}

function run(streams: ParticipantObservation[][], ends: number[], leaves: [string, number][] = []) {
  const m = new GroupMembership();
  // Interleave all participants' windows by end (the order a worker sees them), then close.
  const all = streams.flat().sort((a, b) => a.windowEndMs - b.windowEndMs || a.participantId.localeCompare(b.participantId));
  const out = new Map<number, ReturnType<GroupMembership['close']>>();
  for (const end of ends) {
    for (const o of all.filter((o) => o.windowEndMs === end)) m.observe(o);
    for (const [id, at] of leaves) if (at <= end && at > end - STEP) m.leave(id, at);
    out.set(end, m.close(end));
  }
  return { m, out };
}

test('late joiner counts from their first valid window; a silent participant is inactive after 15 s and counts again when back', () => {
  const T0 = 1_000_000; // a multiple of 5 s
  const ends = Array.from({ length: 60 }, (_, i) => T0 + 65_000 + i * STEP);
  const last = ends[ends.length - 1];
  const a = observations('a', T0, last); // from the start
  const b = observations('b', T0 + 60_000, last); // joins a minute late
  const c = observations('c', T0, last, { silentFrom: T0 + 150_000, resumeAt: T0 + 200_000 }); // 50 s silent
  const { out } = run([a, b, c], ends);
  const at = (t: number) => out.get(t)!;

  // b's first valid window ends at T0 + 60 s + 64 s → 125 s (first end with 64 s of data behind it).
  assert.deepEqual(at(T0 + 120_000).contributing, ['a', 'c']);
  assert.equal(at(T0 + 120_000).counts.waiting, 1);
  assert.deepEqual(at(T0 + 125_000).contributing, ['a', 'b', 'c']);
  assert.ok(at(T0 + 125_000).changes.some((ch) => ch.participantId === 'b' && ch.from === 'waiting' && ch.to === 'active'));

  // c's last beat is at 149 s: active (but with an invalid window: a gap) until 15 s pass.
  assert.equal(at(T0 + 155_000).counts.active, 3);
  assert.deepEqual(at(T0 + 155_000).contributing, ['a', 'b']);
  assert.equal(at(T0 + 160_000).counts.inactive, 0); // 11 s without data
  assert.equal(at(T0 + 165_000).counts.inactive, 1); // 16 s: inactive
  assert.deepEqual(at(T0 + 165_000).contributing, ['a', 'b']);
  assert.ok(at(T0 + 165_000).changes.some((ch) => ch.participantId === 'c' && ch.to === 'inactive'));
  // Back at 200 s: active at once (data within 15 s), contributing once a window is valid again (264 s).
  assert.equal(at(T0 + 205_000).counts.active, 3);
  assert.deepEqual(at(T0 + 205_000).contributing, ['a', 'b']);
  assert.deepEqual(at(T0 + 260_000).contributing, ['a', 'b']);
  assert.deepEqual(at(T0 + 265_000).contributing, ['a', 'b', 'c']);

  // Contributing counts over the whole run: a 60 windows; b from 125 s; c all but 155–260 s.
  const counts = ends.map((e) => at(e).counts.contributing);
  assert.equal(counts.reduce((s, x) => s + x, 0), 60 + ends.filter((e) => e >= T0 + 125_000).length + ends.filter((e) => e <= T0 + 150_000 || e >= T0 + 265_000).length);
});

test('a participant who leaves is excluded from then on, even if their device keeps sending, until they join again', () => {
  const T0 = 2_000_000;
  const ends = Array.from({ length: 30 }, (_, i) => T0 + 65_000 + i * STEP);
  const last = ends[ends.length - 1];
  const m = new GroupMembership();
  const obs = [observations('a', T0, last), observations('b', T0, T0 + 100_000), observations('c', T0, last)].flat();
  const out = new Map<number, ReturnType<GroupMembership['close']>>();
  for (const end of ends) {
    for (const o of obs.filter((o) => o.windowEndMs === end)) m.observe(o);
    if (end === T0 + 100_000) {
      m.leave('b', T0 + 100_000); // b leaves and stops sending
      m.leave('c', T0 + 98_000); // c leaves, its device goes on
    }
    if (end === T0 + 150_000) m.join('c');
    out.set(end, m.close(end));
  }
  assert.deepEqual(out.get(T0 + 95_000)!.contributing, ['a', 'b', 'c']);
  assert.deepEqual(out.get(T0 + 100_000)!.contributing, ['a']);
  assert.equal(out.get(T0 + 100_000)!.counts.left, 2);
  assert.ok(out.get(T0 + 100_000)!.changes.some((ch) => ch.participantId === 'c' && ch.from === 'active' && ch.to === 'left'));
  assert.deepEqual(out.get(T0 + 145_000)!.contributing, ['a']);
  // c joins again with fresh, valid data: contributing at once; b stays left.
  assert.deepEqual(out.get(T0 + 150_000)!.contributing, ['a', 'c']);
  assert.equal(out.get(last)!.counts.left, 1);
});

test('the windows depend on the observations, not on when they arrived before the close; late ones are ignored', () => {
  const T0 = 3_000_000;
  const ends = Array.from({ length: 12 }, (_, i) => T0 + 65_000 + i * STEP);
  const last = ends[ends.length - 1];
  const obs = [observations('a', T0, last), observations('b', T0 + 20_000, last)].flat();
  const inOrder = new GroupMembership();
  const early = new GroupMembership();
  for (const o of [...obs].reverse()) early.observe(o); // everything before any close, reversed
  const r1: unknown[] = [];
  const r2: unknown[] = [];
  for (const end of ends) {
    for (const o of obs.filter((o) => o.windowEndMs === end)) inOrder.observe(o);
    r1.push(inOrder.close(end));
    r2.push(early.close(end));
  }
  assert.deepEqual(r2, r1);
  assert.equal(inOrder.observe({ participantId: 'a', windowEndMs: ends[3], valid: true, lastBeatMs: ends[3] - 1 }), false);
  assert.equal(inOrder.lateObservations, 1);
  assert.throws(() => inOrder.close(ends[5]), /increasing/);
});

test('a return dated in event time (join(id, atMs)): left until it, back from it, whether it was learnt before or after the windows in between closed', () => {
  const T0 = 4_000_000;
  const ends = Array.from({ length: 32 }, (_, i) => T0 + 65_000 + i * STEP);
  const last = ends[ends.length - 1];
  const leaveAt = T0 + 90_000;
  const backAt = T0 + 120_000;
  // b leaves at 90 s and sends again from 120 s.
  const obs = [observations('a', T0, last), observations('b', T0, leaveAt - 1), observations('b', backAt, last)].flat();
  const statuses = (learnEarly: boolean) => {
    const m = new GroupMembership();
    const out: string[] = [];
    if (learnEarly) {
      for (const o of obs) m.observe(o);
      m.leave('b', leaveAt);
      m.join('b', backAt);
    }
    for (const end of ends) {
      if (!learnEarly) {
        for (const o of obs.filter((o) => o.windowEndMs === end)) m.observe(o);
        if (end === leaveAt) m.leave('b', leaveAt);
        if (end === backAt) m.join('b', backAt);
      }
      const w = m.close(end);
      out.push(`${w.statuses.find((s) => s.participantId === 'b')!.status}:${w.contributing.includes('b')}`);
    }
    return out;
  };
  const early = statuses(true);
  assert.deepEqual(early, statuses(false));
  ends.forEach((end, i) => {
    if (end < leaveAt) assert.equal(early[i], 'active:true', `${end - T0}`);
    else if (end < backAt) assert.equal(early[i], 'left:false', `${end - T0}`);
    else if (end < backAt + 64_000) assert.ok(!early[i].startsWith('left'), `${end - T0}: ${early[i]}`); // back; its windows partial at first
    else assert.equal(early[i], 'active:true', `${end - T0}`);
  });
  // A return at or before the leave changes nothing.
  const m = new GroupMembership();
  m.leave('c', leaveAt);
  m.join('c', leaveAt);
  assert.equal(m.leftAt('c'), leaveAt);
});
