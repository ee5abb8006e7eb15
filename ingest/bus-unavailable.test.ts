// A bus that cannot take readings: the sync answers 503 `unavailable` with the documented
// reason (bus_publish_failed), retry_after_s and Retry-After, and the live socket's error
// message carries the same details (README, Delivery guarantees). Until 12-06 both answered
// `details: []` (an operator walkthrough with the broker stopped).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, type TestAttune } from '../test/attune.js';

const SCOPES = ['write:devices', 'write:readings'];
let app: TestAttune;
before(async () => {
  app = await startTestAttune({ roles: { ingest: true, api: false, worker: false, sink: false }, entities: 'pglite' });
});
after(async () => {
  await app?.cleanup();
});

test('bus closed: sync 503 bus_publish_failed with retry_after_s and Retry-After; the live socket says the same', async () => {
  const token = app.token('u-bus', 'o-bus', SCOPES);
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-bus' } })).status, 201);
  const reading = () => ({ timestamp: Date.now(), hr: 62, rr_intervals_ms: [967, 1012] });
  assert.equal((await app.request('POST', '/v1/devices/strap-bus/sync', { token, body: { readings: [reading()] } })).status, 202);
  await app.bus.close();

  const res = await fetch(`${app.baseUrl}/v1/devices/strap-bus/sync`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ readings: [reading()] }),
  });
  const body: any = await res.json();
  assert.equal(res.status, 503, JSON.stringify(body));
  assert.equal(body.error.code, 'unavailable');
  assert.equal(body.error.details[0]?.reason, 'bus_publish_failed', JSON.stringify(body));
  assert.equal(typeof body.error.details[0].retry_after_s, 'number');
  assert.equal(res.headers.get('retry-after'), String(body.error.details[0].retry_after_s));

  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/strap-bus?token=${token}`);
  const messages: any[] = [];
  const error = new Promise<any>((resolve, reject) => {
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      messages.push(msg);
      if (msg.type === 'authenticated') ws.send(JSON.stringify({ type: 'readings', id: 'm1', readings: [reading()] }));
      if (msg.type === 'error') resolve(msg);
    });
    ws.once('close', () => reject(new Error(`closed before an error: ${JSON.stringify(messages)}`)));
  });
  try {
    const msg = await error;
    assert.equal(msg.id, 'm1');
    assert.equal(msg.payload.code, 'unavailable');
    assert.equal(msg.payload.details[0]?.reason, 'bus_publish_failed', JSON.stringify(msg));
    assert.equal(msg.error.details[0]?.reason, 'bus_publish_failed');
  } finally {
    ws.close();
  }
});
