// Ingest readings limits: a device past its burst gets coded 429s with Retry-After, on HTTP
// and on the live WebSocket; other devices are not affected. The same budget holds per user
// over all their devices (ATTUNE_RATE_LIMIT_USER_*), and only accepted readings are charged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune({
    env: { ATTUNE_RATE_LIMIT_READINGS_PER_S: '100', ATTUNE_RATE_LIMIT_BURST: '10000', ATTUNE_RATE_LIMIT_USER_READINGS_PER_S: '100', ATTUNE_RATE_LIMIT_USER_BURST: '15000' },
  });
});
after(async () => {
  await app?.cleanup();
});

const readings = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ timestamp: from + i * 1000, hr: 60 }));

test('a device past its burst gets 429 rate_limited with Retry-After; another device does not', async () => {
  const token = app.token('u-rl', 'o-rl');
  for (const d of ['dev-busy', 'dev-calm']) assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: d } })).status, 201);
  const start = Date.now() - 86_400_000;
  const t0 = Date.now();
  const first = await app.request('POST', '/v1/devices/dev-busy/sync', { token, body: { readings: readings(10_000, start) } });
  assert.equal(first.status, 202);
  const res = await fetch(`${app.baseUrl}/v1/devices/dev-busy/sync`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ readings: readings(500, start + 10_000_000) }),
  });
  assert.equal(res.status, 429);
  const body = (await res.json()) as { error: { code: string; details: Array<{ retry_after_s: number }> } };
  assert.equal(body.error.code, 'rate_limited');
  // 500 readings at 100/s on an empty bucket is 5 s, less what refilled between the two takes
  // (at most the time both requests took: the first one's 10,000 readings may take seconds on a busy machine).
  const retryAfter = Number(res.headers.get('retry-after'));
  const elapsedS = (Date.now() - t0) / 1000;
  assert.ok(retryAfter >= Math.floor(5 - elapsedS) && retryAfter <= 5, `retry-after ${retryAfter} after ${elapsedS} s`);
  assert.equal(body.error.details[0].retry_after_s, retryAfter);
  assert.equal((await app.request('POST', '/v1/devices/dev-calm/sync', { token, body: { readings: readings(100, start) } })).status, 202);

  // The live socket of the busy device is refused too, and stays open.
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/dev-busy?token=${token}`);
  const inbox: any[] = [];
  ws.on('message', (d) => inbox.push(JSON.parse(d.toString())));
  await waitFor('authenticated', () => inbox.find((m) => m.type === 'authenticated'), 10_000);
  // 1,700 readings (under the 64 KB message limit): 17 s of refill, so the device is still over
  // its budget however long the requests above took on a busy machine.
  ws.send(JSON.stringify({ type: 'readings', id: 'x', readings: readings(1_700, start + 20_000_000) }));
  const err = await waitFor('the refusal', () => inbox.find((m) => m.type === 'error'), 10_000);
  assert.equal(err.error.code, 'rate_limited');
  assert.equal(ws.readyState, WebSocket.OPEN);
  ws.close();
});

test("a user's devices share the user's budget: a fresh device is refused once the user's burst is spent", async () => {
  const token = app.token('u-rl-user', 'o-rl');
  for (const d of ['dev-u1', 'dev-u2', 'dev-u3']) assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: d } })).status, 201);
  const start = Date.now() - 86_400_000;
  const t0 = Date.now();
  assert.equal((await app.request('POST', '/v1/devices/dev-u1/sync', { token, body: { readings: readings(10_000, start) } })).status, 202);
  // dev-u2 has its whole device burst (10,000), but its user only ~5,000 left of 15,000.
  const res = await fetch(`${app.baseUrl}/v1/devices/dev-u2/sync`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ readings: readings(8_000, start + 20_000_000) }),
  });
  assert.equal(res.status, 429);
  const body = (await res.json()) as { error: { code: string; details: Array<{ reason: string; scope: string; retry_after_s: number }> } };
  assert.equal(body.error.code, 'rate_limited');
  assert.equal(body.error.details[0].scope, 'user');
  // 3,000 short at 100/s: 30 s, less what refilled while the requests ran.
  const elapsedS = (Date.now() - t0) / 1000;
  assert.ok(body.error.details[0].retry_after_s >= Math.floor(30 - elapsedS) && body.error.details[0].retry_after_s <= 30, `retry_after_s ${body.error.details[0].retry_after_s} after ${elapsedS} s`);
  assert.equal(res.headers.get('retry-after'), String(body.error.details[0].retry_after_s));
  // What the user has left still passes, from any of their devices.
  assert.equal((await app.request('POST', '/v1/devices/dev-u3/sync', { token, body: { readings: readings(4_000, start + 40_000_000) } })).status, 202);
  // Another user is not affected.
  const other = app.token('u-rl-user2', 'o-rl');
  assert.equal((await app.request('POST', '/v1/devices', { token: other, body: { device_id: 'dev-v1' } })).status, 201);
  assert.equal((await app.request('POST', '/v1/devices/dev-v1/sync', { token: other, body: { readings: readings(10_000, start) } })).status, 202);
});

test('refused readings are not charged: a batch refused with 400 leaves the budget whole', async () => {
  const token = app.token('u-rl-refund', 'o-rl');
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: 'dev-refund' } })).status, 201);
  const start = Date.now() - 86_400_000;
  // Three whole bursts naming a session that does not exist: refused after the budget was taken.
  for (let i = 0; i < 3; i++) {
    const refused = await app.request('POST', '/v1/devices/dev-refund/sync', { token, body: { session_id: 'no-such-session', readings: readings(10_000, start) } });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.details[0].reason, 'unknown_session');
  }
  // The whole device burst is still there.
  const ok = await app.request('POST', '/v1/devices/dev-refund/sync', { token, body: { readings: readings(10_000, start) } });
  assert.equal(ok.status, 202);
  assert.equal(ok.body.accepted, 10_000);
  // ... and now it is spent.
  assert.equal((await app.request('POST', '/v1/devices/dev-refund/sync', { token, body: { readings: readings(500, start + 20_000_000) } })).status, 429);
});
