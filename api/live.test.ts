// Live fan-out under a client that stops reading: it is disconnected once its bounded
// queue overflows, and a client that reads gets every message meanwhile.
import { Topics } from '../schemas/topics.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { stalledClient } from '../test/stalled-client.js';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { coherenceEnvelope } from './live.js';
import type { CoherenceWindowRecord } from '../schemas/records.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune({ env: { ATTUNE_WS_MAX_BUFFERED: '64' } });
});
after(async () => {
  await app?.cleanup();
});


function window(i: number): CoherenceWindowRecord {
  return {
    session_id: 's-live', user_id: 'u-live', org_id: 'o-live', device_id: 'd', window_start: i * 5000, window_end: i * 5000 + 64_000,
    valid: true, coherence: 0.5, coherence_ratio: 1, peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 60, rmssd_ms: 40,
    sdnn_ms: 50, pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0,
    invalid_reason: null, partial: false, coverage: 0.98, longest_gap_ms: 1100,
  };
}

test('coherence_update keeps the documented fields and says why a window is not trusted', () => {
  const firstMinute: CoherenceWindowRecord = {
    ...window(0), valid: false, coherence: null, coherence_ratio: null, peak_frequency_hz: null, breathing_rate_bpm: null,
    mean_hr_bpm: null, rmssd_ms: null, sdnn_ms: null, pnn50_pct: null, beat_count: 20,
    invalid_reason: 'partial', partial: true, coverage: 0.31, longest_gap_ms: 44_000,
  };
  const e = coherenceEnvelope(firstMinute, 0);
  assert.equal(e.type, 'coherence_update');
  // The coherence platform's documented data fields stay, under their names (null while untrusted).
  for (const k of ['coherence', 'hrv', 'hr']) assert.ok(k in e.payload, k);
  assert.deepEqual(
    [e.payload.valid, e.payload.invalid_reason, e.payload.partial, e.payload.coverage, e.payload.longest_gap_ms, e.payload.coherence],
    [false, 'partial', true, 0.31, 44_000, null],
  );
  const trusted = coherenceEnvelope(window(20), 0).payload;
  assert.deepEqual([trusted.valid, trusted.invalid_reason, trusted.partial, trusted.coherence], [true, null, false, 0.5]);
});

test('a client that stops reading is dropped; the one that reads gets everything', async () => {
  const token = app.token('u-live', 'o-live', ['read:coherence']);
  const slow = await stalledClient(app.baseUrl, `/v1/coherence?token=${token}`);
  let slowClosed = false;
  slow.on('close', () => (slowClosed = true));

  const fast = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/coherence?token=${token}`);
  let updates = 0;
  fast.on('message', (d) => {
    if (JSON.parse(d.toString()).type === 'coherence_update') updates++;
  });
  await waitFor('both clients registered', () => app.live!.stats.clients === 2, 10_000, 20);

  // ~20 MB of updates in bursts, far beyond what the stalled client's TCP buffers hold.
  const total = 50_000;
  for (let i = 0; i < total; i += 500) {
    for (let k = i; k < i + 500; k++) app.live!.publish(window(k), Topics.coherenceWindows);
    await new Promise((r) => setImmediate(r));
  }
  await waitFor('the stalled client to be dropped', () => app.live!.stats.slowDisconnects === 1 && app.live!.stats.clients === 1, 20_000, 20);
  await waitFor('the reading client to get every update', () => updates === total, 30_000, 20);
  slow.resume();
  await waitFor('the stalled socket to close', () => slowClosed, 10_000, 20);
  assert.equal(fast.readyState, WebSocket.OPEN);
  fast.close();
});
