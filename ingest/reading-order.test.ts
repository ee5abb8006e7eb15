// The order of the readings inside one sync request does not change a session's answer. The
// coherence worker reads a partition's readings one by one and the newest moves the session's
// watermark, so a request listing its readings newest first had every beat but the newest
// judged late: 4 windows instead of 60 for a 5-minute record, every reading accepted (a
// walkthrough). The gateway now publishes a request's readings in time order.
// Also: the late beats a session did have are in its detail (late_beat_count), and so are the
// SDNN and pNN50 the windows store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rsaReadings, startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { createRandom } from '../pipelines/hrv/synthetic-rr.js';
import { inTimeOrder } from './publisher.js';
import { syncBattery } from './gateway.js';

const ORG = 'org-reading-order';
let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

test('inTimeOrder puts each session\'s records in time order (the given order among equal times), sessions as they first appear, and returns the same array when already in order', () => {
  const r = (t: number, id: string, session = 's1') => ({ recorded_at: t, id, session_id: session }) as never as Parameters<typeof inTimeOrder>[0][number];
  const ids = (xs: Parameters<typeof inTimeOrder>[0]) => xs.map((x) => (x as unknown as { id: string }).id);
  const sorted = [r(1, 'a'), r(2, 'b'), r(2, 'c'), r(5, 'd')];
  assert.equal(inTimeOrder(sorted), sorted);
  const mixed = [r(5, 'd'), r(2, 'b'), r(1, 'a'), r(2, 'c')];
  assert.deepEqual(ids(inTimeOrder(mixed)), ['a', 'b', 'c', 'd']);
  assert.deepEqual(ids(mixed), ['d', 'b', 'a', 'c'], 'the given array is left as it was');
  // Two sessions: each in time order, kept together (one batch record each), in order of first appearance.
  const two = [r(9, 'y2', 's2'), r(3, 'x2'), r(1, 'y1', 's2'), r(2, 'x1')];
  assert.deepEqual(ids(inTimeOrder(two)), ['y1', 'y2', 'x1', 'x2']);
  const interleavedInOrder = [r(1, 'x1'), r(1, 'y1', 's2'), r(2, 'x2'), r(2, 'y2', 's2')];
  assert.equal(inTimeOrder(interleavedInOrder), interleavedInOrder, 'each session already in order: unchanged');
});

test("a 5-minute record sent in one request gives the same windows and answer whether its readings are in order, newest first or shuffled", async () => {
  const user = app.token('u-order', ORG);
  const start = Math.floor((Date.now() - 10 * 60_000) / 5000) * 5000;
  const readings = rsaReadings({ startMs: start + 250, durationS: 300, breathHz: 0.1, seed: 5 });
  const rand = createRandom(17);
  const shuffled = readings.slice();
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const orders = { sorted: readings, newest_first: readings.slice().reverse(), shuffled };
  const answers: Record<string, { metrics: Record<string, unknown>; timeline: unknown[] }> = {};
  for (const [name, list] of Object.entries(orders)) {
    const device = `order-${name}`;
    assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: device } })).status, 201);
    const s = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', device_id: device, started_at: new Date(start).toISOString() } });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const synced = await app.request('POST', `/v1/devices/${device}/sync`, { token: user, body: { session_id: s.body.id, readings: list } });
    assert.deepEqual([synced.status, synced.body.accepted], [202, readings.length], JSON.stringify(synced.body));
    assert.equal((await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token: user, body: { ended_at: new Date(start + 301_000).toISOString() } })).status, 200);
    // The end closes the last windows: the answer is final once its last one (ending after the last beat) is in.
    const lastBeat = Date.parse(readings[readings.length - 1].timestamp);
    const detail = await waitFor(`${name}: the last window`, async () => {
      const res = await app.request('GET', `/v1/sessions/${s.body.id}`, { token: user });
      const tl = res.body.timeline as Array<{ timestamp: string }> | undefined;
      return tl && tl.length > 0 && Date.parse(tl[tl.length - 1].timestamp) > lastBeat ? res.body : null;
    }, 60_000, 200);
    answers[name] = { metrics: detail.metrics, timeline: detail.timeline.map((p: Record<string, unknown>) => ({ ...p, time: undefined })) };
  }
  const ref = answers.sorted;
  assert.ok((ref.metrics.window_count as number) >= 55, `the in-order session has ${ref.metrics.window_count} windows`);
  assert.ok((ref.metrics.valid_window_count as number) >= 40);
  assert.equal(ref.metrics.late_beat_count, 0);
  // SDNN and pNN50 of the windows are in the answer, and averaged like RMSSD.
  assert.ok((ref.metrics.average_sdnn as number) > 20 && (ref.metrics.average_pnn50 as number) >= 0, JSON.stringify(ref.metrics));
  for (const name of ['newest_first', 'shuffled']) {
    assert.deepEqual(answers[name].metrics, ref.metrics, `${name}: metrics`);
    assert.deepEqual(answers[name].timeline, ref.timeline, `${name}: timeline`);
  }
});

test('beats sent later than the allowed lateness are counted in the session detail (late_beat_count), not silently missing', async () => {
  const user = app.token('u-late', ORG);
  const device = 'late-strap';
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: device } })).status, 201);
  const start = Math.floor((Date.now() - 10 * 60_000) / 5000) * 5000;
  const s = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', device_id: device, started_at: new Date(start).toISOString() } });
  const readings = rsaReadings({ startMs: start + 250, durationS: 200, breathHz: 0.1, seed: 9 });
  // An 8 s stretch at 60-68 s held back and sent after everything else (130 s late).
  const heldBack = readings.filter((r) => Date.parse(r.timestamp) >= start + 60_000 && Date.parse(r.timestamp) < start + 68_000);
  const first = readings.filter((r) => !heldBack.includes(r));
  for (const list of [first, heldBack]) {
    assert.equal((await app.request('POST', `/v1/devices/${device}/sync`, { token: user, body: { session_id: s.body.id, readings: list } })).status, 202);
  }
  assert.equal((await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token: user, body: { ended_at: new Date(start + 201_000).toISOString() } })).status, 200);
  const lateBeats = heldBack.reduce((n, r) => n + r.rr_intervals_ms.length, 0);
  const lastBeat = Date.parse(readings[readings.length - 1].timestamp);
  const detail = await waitFor('the last window', async () => {
    const res = await app.request('GET', `/v1/sessions/${s.body.id}`, { token: user });
    const tl = res.body.timeline as Array<{ timestamp: string }> | undefined;
    return tl && tl.length > 0 && Date.parse(tl[tl.length - 1].timestamp) > lastBeat ? res.body : null;
  }, 60_000, 200);
  assert.equal(detail.metrics.late_beat_count, lateBeats, JSON.stringify(detail.metrics));
});

test("a sync's battery is the body's, else its newest reading's by time that has one (not the last in the request)", () => {
  const r = (t: number, battery: number | null) => ({ recorded_at: t, battery_level_pct: battery }) as never as Parameters<typeof syncBattery>[0][number];
  // Newest first in the request: the newest reading's 40, not the last-listed (oldest) 90.
  assert.equal(syncBattery([r(3, 40), r(2, null), r(1, 90)], undefined), 40);
  assert.equal(syncBattery([r(1, 90), r(3, null), r(2, 55)], undefined), 55, 'the newest with one');
  assert.equal(syncBattery([r(1, 90)], 12), 12, "the body's first");
  assert.equal(syncBattery([r(1, null)], undefined), null);
});
