// The example receiver (examples/webhook-receiver.mjs) against what the dispatcher sends:
// Attune's timestamped signature is accepted now, refused from another secret, on a changed body
// and when replayed past the tolerance; a repeated event id reaches the handler once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { timestampedSignatureOf } from '../pipelines/webhooks/dispatcher.js';
// @ts-expect-error an example in plain JavaScript, without types
import { createReceiver, verify } from './webhook-receiver.mjs';

const SECRET = 'whsec_example';

test("the example's verify accepts the dispatcher's signature within 5 minutes, and nothing else", () => {
  const body = JSON.stringify({ id: 'evt_1', type: 'session.started', created: '2026-12-04T06:00:00.000Z', data: {} });
  const at = Date.parse('2026-12-04T06:00:00Z');
  const header = timestampedSignatureOf(body, SECRET, at);
  for (const [now, ok] of [[at, true], [at + 299_000, true], [at - 299_000, true], [at + 301_000, false]] as const) {
    assert.equal(verify(body, header, SECRET, now), ok, `${(now - at) / 1000} s`);
  }
  assert.equal(verify(body, header, 'other', at), false);
  assert.equal(verify(body + ' ', header, SECRET, at), false);
  assert.equal(verify(body, undefined, SECRET, at), false);
});

test('the example receiver: 204 and one handler call per event id; 401 for a bad or stale signature', async () => {
  const events: Array<{ id: string }> = [];
  const server = createReceiver({ secret: SECRET, onEvent: (e: { id: string }) => events.push(e) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const post = (body: string, header: string) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-attune-signature': header } }).then((r) => r.status);
  try {
    const body = JSON.stringify({ id: 'evt_2', type: 'session.started', data: {} });
    assert.equal(await post(body, timestampedSignatureOf(body, SECRET, Date.now())), 204);
    assert.equal(await post(body, timestampedSignatureOf(body, SECRET, Date.now())), 204, 'a retry is acknowledged');
    assert.equal(await post(body, timestampedSignatureOf(body, SECRET, Date.now() - 3600_000)), 401, 'an hour-old capture');
    assert.equal(await post(body, timestampedSignatureOf(body, 'other', Date.now())), 401);
    assert.deepEqual(events.map((e) => e.id), ['evt_2']);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
