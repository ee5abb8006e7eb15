// PATCH /v1/sessions/{id} with coherence_threshold / threshold_duration_s while the session is
// streaming: the running worker judges the windows it closes after the change by the new
// settings (the change reaches its readings partition as a settings marker). Before, a running
// worker kept the settings it had read when it first saw the session, and only a restart
// switched them (a determinism walkthrough: 0 events where the new settings give 3-5).
//
// The end call closes a session's last windows whether or not the session names a device. The
// platform document starts sessions without one (`{type, protocol, target_duration,
// intention}`) and its devices sync readings that name no session; such a session takes any of
// its user's devices, so its end marker goes to every readings partition. Before, it got none
// and its last windows waited for the partition's event time to move 5 minutes: in a partition
// where nothing else moved, never (a walkthrough: 56 windows of 62, for good).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rsaReadings, startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

for (const named of [true, false]) test(`a threshold changed mid-session fires coherence_threshold_reached by the new settings for the windows after the change (a session ${named ? 'with' : 'without'} a device)`, async () => {
  const user = app.token(`u-settings-${named}`, 'o-settings');
  const device = `settings-strap-${named}`;
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: device } })).status, 201);
  const start = Math.floor((Date.now() - 10 * 60_000) / 5000) * 5000;
  const s = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', ...(named ? { device_id: device } : {}), started_at: new Date(start).toISOString(), coherence_threshold: 0.99, threshold_duration_s: 30 } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const sid: string = s.body.id;
  const readings = rsaReadings({ startMs: start + 250, durationS: 300, breathHz: 0.1, seed: 13 });
  const half = readings.findIndex((r) => Date.parse(r.timestamp) > start + 150_000);
  const worker = app.worker!;
  const readBefore = worker.stats.readings;
  assert.equal((await app.request('POST', `/v1/devices/${device}/sync`, { token: user, body: { session_id: sid, readings: readings.slice(0, half) } })).status, 202);
  await waitFor('the first half read', () => worker.stats.readings - readBefore >= half, 30_000, 50);

  const appliedBefore = worker.stats.settingsApplied;
  const patched = await app.request('PATCH', `/v1/sessions/${sid}`, { token: user, body: { coherence_threshold: 0.3, threshold_duration_s: 10 } });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  // The change reaches the worker through its readings partition, after the first half (a
  // session without a device: through every partition, the one with its readings among them).
  await waitFor('the settings applied', () => worker.stats.settingsApplied > appliedBefore, 30_000, 50);
  assert.equal((await app.request('POST', `/v1/devices/${device}/sync`, { token: user, body: { session_id: sid, readings: readings.slice(half) } })).status, 202);
  assert.equal((await app.request('POST', `/v1/sessions/${sid}/end`, { token: user, body: { ended_at: new Date(start + 301_000).toISOString() } })).status, 200);

  const events = await waitFor('threshold events', async () => {
    const rs = await app.store.client.query({
      query: `SELECT toUnixTimestamp64Milli(occurred_at) AS at_ms, payload_json FROM ${app.store.database}.session_events FINAL WHERE session_id = {s:String} AND type = 'coherence_threshold_reached' ORDER BY occurred_at`,
      query_params: { s: sid },
      format: 'JSONEachRow',
    });
    const rows = (await rs.json()) as Array<{ at_ms: string | number; payload_json: string }>;
    return rows.length > 0 ? rows : null;
  }, 60_000, 200);
  for (const e of events) {
    const p = JSON.parse(e.payload_json);
    assert.deepEqual([p.threshold, p.hold_s], [0.3, 10], e.payload_json);
    assert.ok(Number(e.at_ms) > start + 150_000 - 20_000, `an event at ${(Number(e.at_ms) - start) / 1000} s, before the change`);
  }
});

test("a session started without a device, as the platform document does, has its last windows closed by the end call, as one with a device", async () => {
  const start = Math.floor((Date.now() - 10 * 60_000) / 5000) * 5000;
  const readings = rsaReadings({ startMs: start + 250, durationS: 240, breathHz: 0.1, seed: 17 });
  const lastBeatMs = Date.parse(readings[readings.length - 1].timestamp);
  async function run(user: string, device: string, named: boolean) {
    const token = app.token(user, 'o-end');
    assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: device } })).status, 201);
    const body = { type: 'solo', protocol: 'heart_breath_sync', started_at: new Date(start).toISOString(), ...(named ? { device_id: device } : {}) };
    const s = await app.request('POST', '/v1/sessions', { token, body });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    // The readings name no session: each goes to the user's session active at its time.
    const sync = await app.request('POST', `/v1/devices/${device}/sync`, { token, body: { readings } });
    assert.equal(sync.status, 202, JSON.stringify(sync.body));
    assert.deepEqual(sync.body.session_ids, [s.body.id]);
    assert.equal((await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token, body: { ended_at: new Date(lastBeatMs + 1000).toISOString() } })).status, 200);
    // The end closes windows up to the first one ending after the last beat (ends on a 5 s
    // grid); the watermark alone closes those ending before the last beat − 15 s.
    const lastEndS = (Math.floor(lastBeatMs / 5000) * 5000 + 5000 - start) / 1000;
    return waitFor(`${user}: the window ending ${lastEndS} s in`, async () => {
      const got = await app.request('GET', `/v1/sessions/${s.body.id}`, { token });
      const timeline = got.body.timeline as Array<{ time: number }>;
      return timeline.length > 0 && timeline.at(-1)!.time >= lastEndS ? got.body : null;
    }, 60_000, 200);
  }
  const withDevice = await run('u-end-named', 'end-strap-named', true);
  const without = await run('u-end-bare', 'end-strap-bare', false);
  assert.deepEqual(without.timeline, withDevice.timeline);
  assert.deepEqual(without.metrics, withDevice.metrics);
  assert.ok(without.metrics.valid_window_count > 20);
});
