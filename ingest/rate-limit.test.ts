// Per-device ingest limits: a device past its burst gets coded 429s with Retry-After, on
// HTTP and on the live WebSocket; other devices are not affected.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune({ env: { ATTUNE_RATE_LIMIT_READINGS_PER_S: '100', ATTUNE_RATE_LIMIT_BURST: '10000' } });
});
after(async () => {
  await app?.cleanup();
});

const readings = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ timestamp: from + i * 1000, hr: 60 }));

test('a device past its burst gets 429 rate_limited with Retry-After; another device does not', async () => {
  const token = app.token('u-rl', 'o-rl');
  for (const d of ['dev-busy', 'dev-calm']) assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: d } })).status, 201);
  const start = Date.now() - 86_400_000;
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
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 4 && retryAfter <= 6, `retry-after ${retryAfter}`);
  assert.equal(body.error.details[0].retry_after_s, retryAfter);
  assert.equal((await app.request('POST', '/v1/devices/dev-calm/sync', { token, body: { readings: readings(100, start) } })).status, 202);

  // The live socket of the busy device is refused too, and stays open.
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/dev-busy?token=${token}`);
  const inbox: any[] = [];
  ws.on('message', (d) => inbox.push(JSON.parse(d.toString())));
  await waitFor('authenticated', () => inbox.find((m) => m.type === 'authenticated'), 10_000);
  ws.send(JSON.stringify({ type: 'readings', id: 'x', readings: readings(200, start + 20_000_000) }));
  const err = await waitFor('the refusal', () => inbox.find((m) => m.type === 'error'), 10_000);
  assert.equal(err.error.code, 'rate_limited');
  assert.equal(ws.readyState, WebSocket.OPEN);
  ws.close();
});
