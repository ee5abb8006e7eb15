// A session whose device sends the coherence platform document's readings ({timestamp, hrv, hr,
// coherence}, no RR intervals) through a whole embedded Attune: its detail shows what the device
// reported (metrics_source device: means over the session's 5 s steps, a timeline point a step),
// and so does its session.completed webhook. Before, every figure was null and the timeline
// empty: Attune computes its own figures from RR intervals only. A session with RR intervals
// keeps Attune's figures, whatever its device also reported. The document's battery_level beside
// the readings (the battery at sync time) sends device.low_battery.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { ALL_SCOPES, rsaReadings, startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

const ORG = 'org-device-figures';
let port = 0;
let app: TestAttune;
let receiver: Server;
const received: Array<{ type: string; data: Record<string, any> }> = [];

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as { port: number }).port;
  app = await startTestAttune({ env: { ATTUNE_WEBHOOKS_ALLOW_HOSTS: '127.0.0.1', ATTUNE_WEBHOOKS_SETTLE_MS: '3000' } });
});
after(async () => {
  await app?.cleanup();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

test("the document's readings (hr, hrv, coherence; no RR): the session shows what the device reported, and so does session.completed", async () => {
  const admin = app.token('admin-df', ORG, [...ALL_SCOPES, 'admin:org']);
  const hook = await app.request('POST', '/v1/webhooks', { token: admin, body: { url: `http://127.0.0.1:${port}/hook`, events: ['session.completed', 'device.low_battery'], secret: 'device-figures-secret' } });
  assert.equal(hook.status, 201, JSON.stringify(hook.body));
  const user = app.token('u-doc', ORG);
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: 'doc-strap' } })).status, 201);
  const start = Math.floor((Date.now() - 5 * 60_000) / 5000) * 5000;
  const s = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', protocol: 'heart_breath_sync', started_at: new Date(start).toISOString() } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const sid: string = s.body.id;

  // One reading in the middle of each 5 s step for 2 minutes, and a second one in step 3, as the
  // document's example writes them (ISO timestamp, hrv, hr, coherence).
  const readings: Array<{ timestamp: string; hrv: number; hr: number; coherence: number }> = [];
  for (let k = 0; k < 24; k++) readings.push({ timestamp: new Date(start + k * 5000 + 2500).toISOString(), hrv: 40 + k, hr: 70 + (k % 4), coherence: k < 12 ? 0.3 : 0.7 });
  readings.push({ timestamp: new Date(start + 3 * 5000 + 4000).toISOString(), hrv: 100, hr: 90, coherence: 0.9 });
  // And one 3 s before the session's start (the allowed lateness lets it in): the step before.
  readings.push({ timestamp: new Date(start - 3000).toISOString(), hrv: 30, hr: 60, coherence: 0.1 });
  // Naming the session (the reading before its start is not in it by time alone).
  const synced = await app.request('POST', '/v1/devices/doc-strap/sync', { token: user, body: { session_id: sid, readings, battery_level: 87, last_worn: new Date().toISOString() } });
  assert.equal(synced.status, 202, JSON.stringify(synced.body));
  assert.deepEqual(synced.body.session_ids, [sid]);

  // Expected, from the readings above: per step the mean of its readings, then the mean of the steps.
  const steps = new Map<number, typeof readings>();
  for (const r of readings) {
    const k = Math.floor((Date.parse(r.timestamp) - start) / 5000);
    steps.set(k, [...(steps.get(k) ?? []), r]);
  }
  const stepMean = (k: number, f: 'hr' | 'hrv' | 'coherence') => steps.get(k)!.reduce((a, r) => a + r[f], 0) / steps.get(k)!.length;
  const overall = (f: 'hr' | 'hrv' | 'coherence') => [...steps.keys()].reduce((a, k) => a + stepMean(k, f), 0) / steps.size;

  const detail = await waitFor('the device figures', async () => {
    const res = await app.request('GET', `/v1/sessions/${sid}`, { token: user });
    return res.body.metrics?.device_reading_count === readings.length ? res.body : null;
  }, 30_000, 200);
  const m = detail.metrics;
  assert.equal(m.metrics_source, 'device');
  assert.ok(Math.abs(m.average_hr - overall('hr')) < 0.01, `average_hr ${m.average_hr} vs ${overall('hr')}`);
  assert.ok(Math.abs(m.average_hrv - overall('hrv')) < 0.01, `average_hrv ${m.average_hrv} vs ${overall('hrv')}`);
  assert.ok(Math.abs(m.average_coherence - overall('coherence')) < 1e-4, `average_coherence ${m.average_coherence} vs ${overall('coherence')}`);
  assert.equal(m.peak_coherence, 0.7, 'a step mean: step 3 is 0.6 (0.3 and 0.9), the last 12 are 0.7');
  // Steps at or above 0.5: the last 12, and step 3: 13 steps of 5 s.
  assert.equal(m.time_in_high_coherence, 13 * 5);
  assert.deepEqual([m.mean_coherence_ratio, m.average_breathing_rate, m.window_count, m.valid_window_count], [null, null, 0, 0]);
  // The document's coherence_ratio: the share of the session's time (to now: it is active) in high coherence.
  assert.ok(Math.abs(m.coherence_ratio - (13 * 5) / detail.duration) < 2e-3, `coherence_ratio ${m.coherence_ratio}, ${13 * 5} s of ${detail.duration}`);
  assert.equal(detail.timeline.length, 25);
  assert.deepEqual(detail.timeline.slice(0, 3).map((p: { time: number }) => p.time), [0, 5, 10], 'a point at the end of each 5 s step, the one before the start too');
  assert.deepEqual([detail.timeline[0].hr, detail.timeline[0].coherence], [60, 0.1]);
  assert.equal(detail.timeline[4].coherence, 0.6);
  assert.equal(detail.timeline[4].hr, 81.5);

  assert.equal((await app.request('POST', `/v1/sessions/${sid}/end`, { token: user, body: { ended_at: new Date(start + 125_000).toISOString() } })).status, 200);
  const completed = await waitFor('session.completed', () => received.find((p) => p.type === 'session.completed' && p.data.session_id === sid), 60_000, 200);
  assert.deepEqual(
    [completed.data.metrics_source, completed.data.average_coherence, completed.data.peak_coherence, completed.data.valid_window_count],
    ['device', m.average_coherence, 0.7, 0],
  );
});

test('a session with RR intervals keeps the figures Attune computes from them, whatever the device reported beside them', async () => {
  const user = app.token('u-rr', ORG);
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: 'rr-strap' } })).status, 201);
  const start = Math.floor((Date.now() - 5 * 60_000) / 5000) * 5000;
  const s = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', started_at: new Date(start).toISOString() } });
  const sid: string = s.body.id;
  const readings = rsaReadings({ startMs: start + 250, durationS: 150, breathHz: 0.1, seed: 11 }).map((r) => ({ ...r, coherence: 0.01, hrv: 5 }));
  assert.equal((await app.request('POST', '/v1/devices/rr-strap/sync', { token: user, body: { session_id: sid, readings } })).status, 202);
  // Before its windows are in, never the device's figures (they would switch source later).
  const early = await app.request('GET', `/v1/sessions/${sid}`, { token: user });
  assert.notEqual(early.body.metrics.metrics_source, 'device');
  assert.equal((await app.request('POST', `/v1/sessions/${sid}/end`, { token: user, body: { ended_at: new Date(start + 150_000).toISOString() } })).status, 200);
  const detail = await waitFor('valid windows', async () => {
    const res = await app.request('GET', `/v1/sessions/${sid}`, { token: user });
    return res.body.metrics?.valid_window_count > 0 ? res.body : null;
  }, 60_000, 200);
  assert.equal(detail.metrics.metrics_source, 'rr');
  assert.equal(detail.metrics.device_reading_count, 0);
  assert.ok(detail.metrics.average_coherence > 0.5, `a 0.1 Hz rhythm is coherent: ${detail.metrics.average_coherence}, not the device's 0.01`);
  assert.ok(detail.metrics.average_hrv > 20, `RMSSD from the RR intervals, not the device's 5: ${detail.metrics.average_hrv}`);
});

test("the document's battery_level beside the readings sends device.low_battery when it falls below 15 %", async () => {
  const user = app.token('u-battery', ORG);
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: 'doc-strap-2' } })).status, 201);
  const sync = async (minutesAgo: number, battery: number) => {
    const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
    const res = await app.request('POST', '/v1/devices/doc-strap-2/sync', { token: user, body: { readings: [{ timestamp: at, hrv: 44, hr: 71, coherence: 0.5 }], battery_level: battery, last_worn: at } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return at;
  };
  await sync(2, 87);
  const at = await sync(1, 10);
  const alert = await waitFor('device.low_battery', () => received.find((p) => p.type === 'device.low_battery' && p.data.device_id === 'doc-strap-2'), 30_000, 200);
  assert.deepEqual([alert.data.battery_level, alert.data.threshold, alert.data.recorded_at], [10, 15, at]);
  assert.equal(received.filter((p) => p.type === 'device.low_battery' && p.data.device_id === 'doc-strap-2').length, 1, 'once: 87 % was no alert');
});

test("a device whose coherence is not on the 0..1 score: its values as sent, and no time in high coherence (0.5 is a point of the score, not of its scale)", async () => {
  const user = app.token('u-scale', ORG);
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: 'pct-strap' } })).status, 201);
  const start = Math.floor((Date.now() - 5 * 60_000) / 5000) * 5000;
  const sid: string = (await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', started_at: new Date(start).toISOString() } })).body.id;
  const readings = [40, 60, 62, 70].map((c, k) => ({ timestamp: new Date(start + k * 5000 + 2500).toISOString(), hr: 70, coherence: c }));
  assert.equal((await app.request('POST', '/v1/devices/pct-strap/sync', { token: user, body: { readings } })).status, 202);
  const m = await waitFor('the device figures', async () => {
    const res = await app.request('GET', `/v1/sessions/${sid}`, { token: user });
    return res.body.metrics?.device_reading_count === 4 ? res.body.metrics : null;
  }, 30_000, 200);
  assert.deepEqual([m.metrics_source, m.average_coherence, m.peak_coherence, m.time_in_high_coherence, m.average_hrv], ['device', 58, 70, null, null]);
});
