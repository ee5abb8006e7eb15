// A server that stops (SIGTERM: RunningAttune.stop) closes its WebSockets with 1001 "going
// away", so a client can tell a restart (reconnect, resume from the last id) from a refusal;
// and a client that stopped reading, which never answers the closing handshake, does not hold
// the stop for ws's 30 s close timeout (an orchestrator's grace period is often 30 s: the
// process would be killed before its consumers left their groups).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { stalledClient } from '../test/stalled-client.js';
import { startTestAttune, waitFor } from '../test/attune.js';

/** ws's own closing-handshake timeout: what a stop must not wait for. */
const WS_CLOSE_TIMEOUT_MS = 30_000;

test('stopping the server closes live sockets with 1001 and does not wait for a peer that stopped reading', { timeout: 120_000 }, async () => {
  const app = await startTestAttune();
  let stopped = false;
  try {
    const token = app.token('u-stop', 'o-stop', ['read:coherence']);
    const stalled = await stalledClient(app.baseUrl, `/v1/coherence?token=${token}`);
    const reader = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/coherence?token=${token}`);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => reader.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    reader.on('error', () => undefined);
    await waitFor('both sockets attached', () => app.live!.stats.clients === 2, 10_000, 20);

    const t0 = performance.now();
    await app.stop();
    stopped = true;
    const took = performance.now() - t0;
    const { code, reason } = await closed;
    assert.deepEqual(
      { code, reason, stopHeldByTheStalledClient: took >= WS_CLOSE_TIMEOUT_MS / 3 },
      { code: 1001, reason: 'server shutting down', stopHeldByTheStalledClient: false },
      `stop took ${Math.round(took)} ms`,
    );
    stalled.destroy();
  } finally {
    if (!stopped) await app.stop();
    await app.cleanup();
  }
});
