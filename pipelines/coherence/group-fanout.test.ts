// GroupFanout.lookup (issue 11, G): which participations a window belongs to, and whose end
// (a leave, the group session's end) it is the first window past: the marker the group worker
// closes a participant's input with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshParticipation } from '../../store/postgres/mesh-repo.js';
import { computeWindowMetrics, createWindowPlan } from '../hrv/window-metrics.js';
import { GroupFanout } from './group-fanout.js';
import { SessionWindows } from './session-windows.js';

const T = Date.UTC(2026, 11, 3, 6, 0, 0);
const part = (over: Partial<MeshParticipation>): MeshParticipation => ({
  meshId: 'm1',
  orgId: 'o',
  participantId: 'p1',
  userId: 'u',
  deviceId: null,
  joinedAt: T,
  leftAt: null,
  startedAt: T,
  endedAt: null,
  breathingRateBpm: 6,
  coherenceThreshold: 0.5,
  thresholdDurationS: 30,
  protocol: 'heart_breath_sync',
  ...over,
});

function fanout(list: MeshParticipation[]) {
  // Fetched "now" = far after every window: every answer is fresh.
  return new GroupFanout({ source: { participationsOf: async () => list }, clock: () => T + 86_400_000 });
}

test('a leave: windows up to it belong to the group, the first window past it (and only that one) carries the end', async () => {
  const leftAt = T + 62_300;
  const f = fanout([part({ leftAt })]);
  const at = async (end: number) => f.lookup('o', 'u', 'd1', end);
  assert.equal((await at(T + 60_000)).current.length, 1);
  assert.equal((await at(T + 60_000)).ends.length, 0);
  const first = await at(T + 65_000);
  assert.equal(first.current.length, 0);
  assert.deepEqual(first.ends.map((e) => [e.participation.participantId, e.atMs, e.left]), [['p1', leftAt, true]]);
  assert.equal((await at(T + 70_000)).ends.length, 0, 'one marker per end');
});

test("the group session's end is an end too (not a leave); a leave after the session ended is the session's end; another device's windows carry none", async () => {
  const endedAt = T + 120_000;
  const f = fanout([part({ endedAt }), part({ meshId: 'm2', participantId: 'p2', endedAt, leftAt: endedAt + 3000 }), part({ meshId: 'm3', participantId: 'p3', deviceId: 'd2', endedAt })]);
  const { current, ends } = await f.lookup('o', 'u', 'd1', T + 125_000);
  assert.equal(current.length, 0);
  assert.deepEqual(ends.map((e) => [e.participation.meshId, e.atMs, e.left]), [['m1', endedAt, false], ['m2', endedAt, false]]);
  // An end exactly on a window end: that window is still the group's, the next one carries the end.
  assert.equal((await f.lookup('o', 'u', 'd1', T + 120_000)).ends.length, 0);
  assert.equal((await f.lookup('o', 'u', 'd1', T + 120_000)).current.length, 2);
});

test('marker records are invalid, empty windows of the participation, its end in the header', () => {
  const f = fanout([]);
  const p = part({ leftAt: T + 62_300 });
  const w = { windowStartMs: T + 1000, windowEndMs: T + 65_000 } as Parameters<GroupFanout['endMarkers']>[1];
  const [m] = f.endMarkers({ sessionId: 's', userId: 'u', orgId: 'o', deviceId: 'd1' }, w, [{ participation: p, atMs: T + 62_300, left: true }]);
  assert.equal(m.header, `left:${T + 62_300}`);
  assert.equal(m.rec.mesh_id, 'm1');
  assert.equal(m.rec.participant_id, 'p1');
  assert.equal(m.rec.window_end, T + 65_000);
  assert.equal(m.rec.valid, false);
  assert.deepEqual(m.rec.series, []);
});

test("a window's last_beat_at is its own newest beat, not one of the lookahead beats handed over after its end", () => {
  const f = fanout([]);
  const sw = new SessionWindows();
  // One beat a second for 100 s: the window ending at T + 65 s closes with 5 beats after it.
  for (let k = 1; k <= 100; k++) sw.add([T + k * 1000 - 500], [1000], BigInt(k));
  const w = sw.closeReady().find((x) => x.windowEndMs === T + 65_000)!;
  assert.equal(w.lookaheadCount, 5);
  const m = computeWindowMetrics(w.beatTimesMs, w.rrMs, w.count, w.windowStartMs, w.windowEndMs, createWindowPlan());
  const [rec] = f.records({ sessionId: 's', userId: 'u', orgId: 'o', deviceId: 'd1' }, w, m, [part({})]);
  assert.equal(rec.last_beat_at, T + 64_500);
});

test('lookupForDisplay (provisional windows): the cached answer whatever its age, one query only when there is none', async () => {
  let now = T;
  let queries = 0;
  let list = [part({})];
  const f = new GroupFanout({ source: { participationsOf: async () => (queries++, list) }, clock: () => now });
  // Provisional windows end after the last fetch: lookup() would query for each one.
  assert.equal((await f.lookupForDisplay('o', 'u', 'd1', T + 10_000)).length, 1);
  assert.equal(queries, 1);
  now = T + 30_000;
  list = [];
  assert.equal((await f.lookupForDisplay('o', 'u', 'd1', T + 35_000)).length, 1, 'the cached answer, not a query');
  assert.equal(queries, 1);
  // A final window's lookup refreshes the answer the provisional ones then use.
  assert.equal((await f.lookup('o', 'u', 'd1', T + 20_000)).current.length, 0);
  assert.equal(queries, 2);
  assert.equal((await f.lookupForDisplay('o', 'u', 'd1', T + 40_000)).length, 0);
  assert.equal(queries, 2);
  // Joined after the window's end: not in it, cached or not.
  list = [part({ joinedAt: T + 50_000 })];
  now = T + 60_000;
  await f.lookup('o', 'u', 'd1', T + 35_000);
  assert.equal(queries, 3);
  assert.equal((await f.lookupForDisplay('o', 'u', 'd1', T + 45_000)).length, 0);
  assert.equal((await f.lookupForDisplay('o', 'u', 'd1', T + 55_000)).length, 1);
});
