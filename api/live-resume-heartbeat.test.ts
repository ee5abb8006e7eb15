// Resume from the last message seen, when that message is a `heartbeat` (one comes with every
// ping) or the `ping` answering the client's heartbeat: the client gets what came after it,
// not the whole buffer again with `complete: false` (before, every window it already had was
// sent a second time).
import { Topics } from '../schemas/topics.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import type { CoherenceWindowRecord } from '../schemas/records.js';
import { silentLogger } from '../lib/log.js';
import { LiveHub, type LiveClient } from '../http/live-hub.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune({ env: { ATTUNE_WS_HEARTBEAT_MS: '300' } });
});
after(async () => {
  await app?.cleanup();
});

function window(session: string, i: number): CoherenceWindowRecord {
  return {
    session_id: session, user_id: 'u-hb', org_id: 'o-hb', device_id: 'd', window_start: 1_000_000 + i * 5000, window_end: 1_064_000 + i * 5000,
    valid: true, coherence: 0.5, coherence_ratio: 1, peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 60, rmssd_ms: 40,
    sdnn_ms: 50, pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0,
    invalid_reason: null, partial: false, coverage: 0.98, longest_gap_ms: 1100,
  };
}

interface Msg { id: string; type: string; payload: Record<string, unknown> }

function client(path: string) {
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}${path}`);
  const msgs: Msg[] = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  return { ws, msgs, updates: () => msgs.filter((m) => m.type === 'coherence_update').map((m) => m.id) };
}

for (const kind of ['ping', 'heartbeat'] as const) {
  test(`a client resuming from a ${kind} gets only the messages after it`, async () => {
    const session = `s-hb-${kind}`;
    const token = app.token('u-hb', 'o-hb', ['read:coherence']);
    const a = client(`/v1/coherence?token=${token}`);
    await waitFor('subscribed', () => a.msgs.some((m) => m.type === 'subscribed'), 10_000, 10);
    for (let i = 0; i < 5; i++) app.live!.publish(window(session, i), Topics.coherenceWindows);
    await waitFor('the first windows', () => a.updates().length === 5, 10_000, 10);
    const before = a.msgs.length;
    if (kind === 'ping') a.ws.send(JSON.stringify({ type: 'heartbeat' }));
    const last = await waitFor(`a ${kind} after the windows`, () => a.msgs.slice(before).find((m) => m.type === kind), 10_000, 10);
    a.ws.close();
    await waitFor('the first socket gone', () => app.live!.stats.clients === 0, 10_000, 10);

    for (let i = 5; i < 8; i++) app.live!.publish(window(session, i), Topics.coherenceWindows);
    const b = client(`/v1/coherence?token=${token}&last_id=${encodeURIComponent(last.id)}`);
    const subscribed = await waitFor('resumed', () => b.msgs.find((m) => m.type === 'subscribed'), 10_000, 10);
    const missed = [5, 6, 7].map((i) => `${session}:${window(session, i).window_end}`);
    await waitFor('the missed windows', () => b.updates().length >= missed.length, 10_000, 10);
    assert.deepEqual({ replayed: subscribed.payload.replayed, complete: subscribed.payload.complete, updates: b.updates() }, { replayed: 3, complete: true, updates: missed });
    b.ws.close();
    await waitFor('the second socket gone', () => app.live!.stats.clients === 0, 10_000, 10);
  });
}

test('a resume from a ping is complete unless its own key lost envelopes after it (other keys let go do not matter)', () => {
  const sent: string[] = [];
  const hub = new LiveHub<{ key: string; id: string }>(
    { log: silentLogger, maxBufferedMessages: 100, heartbeatMs: 30_000, clock: () => 0, resumeMaxKeys: 2, resumePerKey: 2 },
    { name: 'test', resume: true, topics: [], route: (r) => ({ keys: [r.key], resumeKeys: [r.key], envelope: () => ({ id: r.id, type: 'x', timestamp: '', payload: {} }) }) },
  );
  const client = { sendEnvelope: (e: { id: string }) => sent.push(e.id), hasSent: () => false } as unknown as LiveClient;
  const ping = () => {
    hub.heartbeat(client);
    return sent.at(-1)!;
  };
  hub.publish({ key: 'A', id: 'a1' }, 't');
  const p1 = ping();
  hub.publish({ key: 'A', id: 'a2' }, 't');
  hub.publish({ key: 'B', id: 'b1' }, 't');
  hub.publish({ key: 'C', id: 'c1' }, 't'); // A, written least recently, is let go with a2
  const plan = (key: string, id: string) => {
    const m = hub.missed(client, key, id);
    return { ids: m.envelopes.map((e) => e.id), found: m.found };
  };
  assert.deepEqual(plan('C', p1), { ids: ['c1'], found: true });
  assert.deepEqual(plan('A', p1), { ids: [], found: false });
  const p2 = ping();
  hub.publish({ key: 'C', id: 'c2' }, 't');
  hub.publish({ key: 'C', id: 'c3' }, 't'); // C keeps 2: c1 dropped, but it came before p2
  assert.deepEqual(plan('C', p2), { ids: ['c2', 'c3'], found: true });
  hub.publish({ key: 'C', id: 'c4' }, 't'); // c2, after p2, dropped
  assert.deepEqual(plan('C', p2), { ids: ['c3', 'c4'], found: false });
});
