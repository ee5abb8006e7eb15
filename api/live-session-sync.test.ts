// The session-sync document's client messages on the live coherence sockets (README "Live
// messages"): the server's `connected` {sessionId, serverTime} once a socket is authenticated,
// `unsubscribe` {sessionId} stopping a session's messages until the next `subscribe`, and
// `ack` {messageId} taken without an answer. Before 2026-12-06 no `connected` came (a client
// written from the document that waits for it waited for ever) and `unsubscribe` changed nothing.
import { Topics } from '../schemas/topics.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import type { CoherenceWindowRecord } from '../schemas/records.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

const USER = 'u-sync';
const ORG = 'o-sync';

function window(session: string, i: number): CoherenceWindowRecord {
  return {
    session_id: session, user_id: USER, org_id: ORG, device_id: 'd', window_start: 1_000_000 + i * 5000, window_end: 1_064_000 + i * 5000,
    valid: true, coherence: 0.5, coherence_ratio: 1, peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 60, rmssd_ms: 40,
    sdnn_ms: 50, pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0,
    invalid_reason: null, partial: false, coverage: 0.98, longest_gap_ms: 1100,
  };
}

interface Msg { id: string; type: string; timestamp: string; payload: Record<string, unknown> }

function client(path: string) {
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}${path}`);
  const msgs: Msg[] = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const updates = (session?: string) => msgs.filter((m) => m.type === 'coherence_update' && (session === undefined || m.payload.session_id === session)).map((m) => m.id);
  /** The document's envelope, as its example sends it. */
  const send = (type: string, payload: Record<string, unknown>) => ws.send(JSON.stringify({ id: crypto.randomUUID(), type, timestamp: new Date().toISOString(), payload }));
  return { ws, msgs, updates, send };
}

async function createSession(token: string): Promise<string> {
  const res = await app.request('POST', '/v1/sessions', { token, body: { type: 'solo' } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

test('a socket of one session gets connected {sessionId, serverTime} right after subscribed; a socket of all the user\'s sessions gets it without sessionId', async () => {
  const token = app.token(USER, ORG, ['read:coherence', 'read:sessions', 'write:sessions']);
  const session = await createSession(token);
  const one = client(`/v1/sessions/${session}/stream?token=${token}`);
  const all = client(`/v1/coherence?token=${token}`);
  await waitFor('connected on both', () => one.msgs.length >= 2 && all.msgs.length >= 2, 10_000, 10);
  assert.deepEqual(one.msgs.slice(0, 2).map((m) => m.type), ['subscribed', 'connected']);
  assert.deepEqual(Object.keys(one.msgs[1].payload).sort(), ['serverTime', 'sessionId']);
  assert.equal(one.msgs[1].payload.sessionId, session);
  assert.ok(Math.abs(Date.parse(String(one.msgs[1].payload.serverTime)) - Date.now()) < 60_000, 'serverTime is the server\'s clock, ISO 8601');
  assert.deepEqual(all.msgs.slice(0, 2).map((m) => m.type), ['subscribed', 'connected']);
  assert.deepEqual(Object.keys(all.msgs[1].payload), ['serverTime']);
  // Once per socket: a later subscribe answers subscribed only.
  one.send('subscribe', { sessionId: session });
  await waitFor('subscribed again', () => one.msgs.filter((m) => m.type === 'subscribed').length === 2, 10_000, 10);
  one.send('heartbeat', {});
  await waitFor('ping', () => one.msgs.some((m) => m.type === 'ping'), 10_000, 10);
  assert.equal(one.msgs.filter((m) => m.type === 'connected').length, 1);
  one.ws.close();
  all.ws.close();
  await waitFor('sockets gone', () => app.live!.stats.clients === 0, 10_000, 10);
});

test('unsubscribe stops a session\'s messages on the user\'s socket (not the other sessions\'), subscribe lets them through again; ack gets no answer', async () => {
  const token = app.token(USER, ORG, ['read:coherence', 'read:sessions', 'write:sessions']);
  const [a, b] = [await createSession(token), await createSession(token)];
  const c = client(`/v1/coherence?token=${token}`);
  await waitFor('connected', () => c.msgs.some((m) => m.type === 'connected'), 10_000, 10);
  app.live!.publish(window(a, 0), Topics.coherenceWindows);
  await waitFor('a window of a', () => c.updates(a).length === 1, 10_000, 10);
  c.send('ack', { messageId: c.msgs.at(-1)!.id });
  c.send('unsubscribe', { sessionId: a });
  // The control messages are read in order: the ping answering this heartbeat comes after both.
  c.send('heartbeat', {});
  await waitFor('ping', () => c.msgs.some((m) => m.type === 'ping'), 10_000, 10);
  app.live!.publish(window(a, 1), Topics.coherenceWindows);
  app.live!.publish(window(b, 1), Topics.coherenceWindows);
  // Sent in order on one socket: once b's window is here, a's would have been too.
  await waitFor('b\'s window', () => c.updates(b).length === 1, 10_000, 10);
  assert.deepEqual(c.updates(a), [`${a}:${window(a, 0).window_end}`], 'nothing of a after unsubscribe');
  c.send('subscribe', { sessionId: a });
  await waitFor('subscribed to a', () => c.msgs.filter((m) => m.type === 'subscribed').length === 2, 10_000, 10);
  app.live!.publish(window(a, 2), Topics.coherenceWindows);
  await waitFor('a again', () => c.updates(a).length === 2, 10_000, 10);
  assert.deepEqual(c.updates(a), [0, 2].map((i) => `${a}:${window(a, i).window_end}`));
  assert.equal(c.msgs.filter((m) => m.type === 'error').length, 0, 'ack and unsubscribe answered with no error');
  c.ws.close();
  await waitFor('socket gone', () => app.live!.stats.clients === 0, 10_000, 10);
});

test('unsubscribe on a session\'s own socket stops its messages (final and provisional) until subscribe', async () => {
  const token = app.token(USER, ORG, ['read:coherence', 'read:sessions', 'write:sessions']);
  const s = await createSession(token);
  const c = client(`/v1/sessions/${s}/stream?token=${token}&provisional=true`);
  await waitFor('connected', () => c.msgs.some((m) => m.type === 'connected'), 10_000, 10);
  c.send('unsubscribe', { sessionId: s });
  c.send('heartbeat', {});
  await waitFor('ping', () => c.msgs.some((m) => m.type === 'ping'), 10_000, 10);
  app.live!.publish(window(s, 0), Topics.coherenceWindowsProvisional);
  app.live!.publish(window(s, 0), Topics.coherenceWindows);
  // Nothing to wait for that would come: the next subscribe's answer is sent after both.
  c.send('subscribe', {});
  await waitFor('subscribed again', () => c.msgs.filter((m) => m.type === 'subscribed').length === 2, 10_000, 10);
  const afterSubscribe = c.msgs.findIndex((m, i) => m.type === 'subscribed' && i > 0);
  assert.deepEqual(c.msgs.slice(0, afterSubscribe).filter((m) => m.type === 'coherence_update'), [], 'nothing while unsubscribed');
  app.live!.publish(window(s, 1), Topics.coherenceWindows);
  await waitFor('a window after subscribe', () => c.updates().length === 1, 10_000, 10);
  assert.deepEqual(c.updates(), [`${s}:${window(s, 1).window_end}`]);
  c.ws.close();
  await waitFor('socket gone', () => app.live!.stats.clients === 0, 10_000, 10);
});

test("unsubscribe without a session on the user's socket stops all of its sessions; a subscribe of one lets the stream through again", async () => {
  const token = app.token(USER, ORG, ['read:coherence', 'read:sessions', 'write:sessions']);
  const a = await createSession(token);
  const c = client(`/v1/coherence?token=${token}`);
  await waitFor('connected', () => c.msgs.some((m) => m.type === 'connected'), 10_000, 10);
  c.send('unsubscribe', {});
  c.send('heartbeat', {});
  await waitFor('ping', () => c.msgs.some((m) => m.type === 'ping'), 10_000, 10);
  app.live!.publish(window(a, 0), Topics.coherenceWindows);
  c.send('subscribe', { sessionId: a });
  await waitFor('subscribed to a', () => c.msgs.filter((m) => m.type === 'subscribed').length === 2, 10_000, 10);
  assert.deepEqual(c.updates(a), [], 'nothing while unsubscribed');
  app.live!.publish(window(a, 1), Topics.coherenceWindows);
  await waitFor("a's window after subscribe", () => c.updates(a).length === 1, 10_000, 10);
  c.ws.close();
  await waitFor('socket gone', () => app.live!.stats.clients === 0, 10_000, 10);
});
