// A live socket sent more control messages at once than it keeps waiting (heartbeats,
// subscribes) is closed with 4029; like every coded close it gets the error message first
// (docs/websocket-protocols.md, "Close codes"). Before, the socket closed with no message.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { Socket } from 'node:net';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

test('a burst of control messages over the limit gets the rate_limited error message before the 4029 close', async () => {
  const token = app.token('u-burst', 'o-burst', ['read:coherence']);
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/coherence?token=${token}`);
  const msgs: Array<{ type: string; payload?: { code?: string } }> = [];
  let closed: { code: number; reason: string } | null = null;
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  ws.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
  await waitFor('subscribed', () => msgs.some((m) => m.type === 'subscribed'), 10_000, 10);
  // Many frames in one TCP write, so the server reads them in one go.
  const raw = (ws as unknown as { _socket: Socket })._socket;
  raw.cork();
  for (let i = 0; i < 40; i++) ws.send(JSON.stringify({ type: 'heartbeat' }));
  raw.uncork();
  const c = await waitFor('the close', () => closed, 10_000, 10);
  const errors = msgs.filter((m) => m.type === 'error').map((m) => m.payload?.code);
  assert.deepEqual({ code: c.code, reason: c.reason, errors }, { code: 4029, reason: 'rate_limited', errors: ['rate_limited'] });
});
