// The live speech stream: SpeechEvent records published on the embedded bus reach the real
// WebSocket clients of their session only; someone else's (or no) session is refused with
// 4404, a missing scope with 4403; a client that stops reading is dropped (4008) while a
// reading client gets every event.
import { Topics } from '../schemas/topics.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { stalledClient } from '../test/stalled-client.js';
import type { SpeechEvent } from '../schemas/registry/schemas.js';
import { SPEECH_READ, startSpeechTestServer, waitUntil, type SpeechTestServer } from './speech-api.test-util.js';
import type { SpeechSession } from '../store/postgres/speech-sessions-repo.js';

let srv: SpeechTestServer;
before(async () => {
  srv = await startSpeechTestServer({ maxBufferedMessages: 64 });
});
after(async () => {
  await srv?.close();
});

interface Received {
  messages: Array<{ id: string; type: string; timestamp: string; payload: Record<string, unknown>; data?: Record<string, unknown> }>;
  closed: { code: number; reason: string } | null;
  ws: WebSocket;
  /** The session-sync document's `connected` messages, apart (each checked to follow the socket's first `subscribed`). */
  connected: Array<{ type: string; payload?: Record<string, unknown> }>;
}

/** A client that records every message and its close. */
function client(path: string, headers: Record<string, string> = {}): Received {
  const ws = new WebSocket(`${srv.wsUrl}${path}`, { headers });
  const r: Received = { messages: [], closed: null, ws, connected: [] };
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.type !== 'connected') return r.messages.push(m);
    assert.deepEqual([r.messages.map((x) => x.type), r.connected.length], [['subscribed'], 0], 'connected comes once, right after the first subscribed');
    assert.deepEqual(Object.keys(m.payload).sort(), ['serverTime', 'sessionId']);
    r.connected.push(m);
  });
  ws.on('close', (code, reason) => (r.closed = { code, reason: reason.toString() }));
  return r;
}

const events = (r: Received) => r.messages.filter((m) => m.type !== 'subscribed' && m.type !== 'heartbeat');

function event(s: SpeechSession, n: number, type: SpeechEvent['type'], payload: Record<string, unknown>): SpeechEvent {
  return { event_id: `${s.id}:${type}:${n}`, session_id: s.id, user_id: s.userId, org_id: s.orgId, type, occurred_at: Date.UTC(2025, 6, 1, 12, 0, n), payload_json: JSON.stringify(payload) };
}

test('events published on the bus reach the clients of their session only, as envelopes', async () => {
  const a = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-a', type: 'speech' });
  const b = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-b', type: 'speech' });
  await srv.speechSessions.claimForAudio(a.id, { source: 'live', startedAt: Date.now(), sampleRateHz: 16_000 });
  const ca = client(`/v1/speech-sessions/${a.id}/stream?token=${srv.token('u-a', 'o-live', SPEECH_READ)}`);
  const cb = client(`/v1/speech-sessions/${b.id}/stream`, { authorization: `Bearer ${srv.token('u-b', 'o-live', SPEECH_READ)}` });
  await waitUntil('both clients subscribed', () => ca.messages.length > 0 && cb.messages.length > 0);
  assert.equal(ca.messages[0].type, 'subscribed');
  assert.deepEqual(ca.messages[0].payload, { session_id: a.id, status: 'recording' });
  assert.deepEqual(cb.messages[0].payload, { session_id: b.id, status: 'created' });

  await srv.publishEvents([
    event(a, 1, 'asr:token', { text: 'hello', isFinal: false, segmentIndex: 0, startMs: 1500, endMs: 2250, confidence: null }),
    event(b, 1, 'metrics:update', { second: 0, volumeDbfs: -30 }),
    event(a, 2, 'metrics:update', { second: 1, atMs: 2000, rollingWpm: 120, pitchHz: 131.5, volumeDbfs: -21.25, newPauses: [{ startMs: 1200, endMs: 1500, durationMs: 300, kind: 'natural' }] }),
    event(a, 3, 'processing:status', { stage: 'transcription', progress: 0.5, etaS: 3, status: 'processing' }),
    event(b, 2, 'asr:token', { text: 'bye', isFinal: true, segmentIndex: 0 }),
  ]);
  await waitUntil("a's three events and b's two", () => events(ca).length >= 3 && events(cb).length >= 2);
  // Attune's payload as the worker sent it, and the speech-coaching document's names and units in data.
  assert.deepEqual(events(ca), [
    {
      id: `${a.id}:asr:token:1`, type: 'asr:token', timestamp: '2025-07-01T12:00:01.000Z',
      payload: { text: 'hello', isFinal: false, segmentIndex: 0, startMs: 1500, endMs: 2250, confidence: null },
      data: { token: 'hello', confidence: null, start: 1.5, end: 2.25, isFinal: false },
    },
    {
      id: `${a.id}:metrics:update:2`, type: 'metrics:update', timestamp: '2025-07-01T12:00:02.000Z',
      payload: { second: 1, atMs: 2000, rollingWpm: 120, pitchHz: 131.5, volumeDbfs: -21.25, newPauses: [{ startMs: 1200, endMs: 1500, durationMs: 300, kind: 'natural' }] },
      data: { timestamp: 2, wpm: 120, pitch: 131.5, volume: -21.25, pauses: [{ start: 1.2, end: 1.5, duration: 0.3, type: 'natural' }] },
    },
    {
      id: `${a.id}:processing:status:3`, type: 'processing:status', timestamp: '2025-07-01T12:00:03.000Z',
      payload: { stage: 'transcription', progress: 0.5, etaS: 3, status: 'processing' },
      data: { stage: 'transcription', progress: 50, estimatedTime: 3, status: 'processing' },
    },
  ]);
  assert.deepEqual(events(cb).map((m) => m.id), [`${b.id}:metrics:update:1`, `${b.id}:asr:token:2`]);

  // After both clients leave, nothing is kept for them.
  ca.ws.close();
  cb.ws.close();
  await waitUntil('clients removed', () => srv.speechLive.stats.clients === 0);
});

test('a client may authenticate with a first message instead of the URL', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-m', type: 'interview' });
  const c = client(`/v1/speech-sessions/${s.id}/stream`);
  await new Promise((r) => c.ws.once('open', r));
  c.ws.send(JSON.stringify({ type: 'authenticate', token: srv.token('u-m', 'o-live', SPEECH_READ) }));
  await waitUntil('subscribed', () => c.messages.length > 0);
  assert.deepEqual(c.messages[0].payload, { session_id: s.id, status: 'created' });
  await srv.publishEvents([event(s, 1, 'processing:status', { stage: 'receiving', progress: 0 })]);
  await waitUntil('the event', () => events(c).length === 1);
  c.ws.close();
});

test("another user's or org's session, an unknown session and a missing scope are refused with close codes", async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-live', userId: 'owner', type: 'speech' });
  const cases: Array<[string, string, number, string]> = [
    [s.id, srv.token('intruder', 'o-live', SPEECH_READ), 4404, 'not_found'],
    [s.id, srv.token('owner', 'another-org', SPEECH_READ), 4404, 'not_found'],
    ['no-such-session', srv.token('owner', 'o-live', SPEECH_READ), 4404, 'not_found'],
    [s.id, srv.token('owner', 'o-live', ['read:sessions']), 4403, 'forbidden'],
    [s.id, 'not-a-jwt', 4401, 'unauthorized'],
  ];
  for (const [id, token, code, errorCode] of cases) {
    const c = client(`/v1/speech-sessions/${id}/stream?token=${token}`);
    await waitUntil(`close ${code}`, () => c.closed);
    assert.equal(c.closed!.code, code);
    assert.equal(c.messages.length, 1);
    assert.equal(c.messages[0].type, 'error');
    assert.equal((c.messages[0] as unknown as { error: { code: string } }).error.code, errorCode);
  }
  assert.equal(srv.speechLive.stats.clients, 0, 'no refused client was registered');
  // The org admin may watch the session.
  const admin = client(`/v1/speech-sessions/${s.id}/stream?token=${srv.token('boss', 'o-live', [...SPEECH_READ, 'admin:org'])}`);
  await waitUntil('admin subscribed', () => admin.messages.length > 0);
  assert.equal(admin.messages[0].type, 'subscribed');
  admin.ws.close();
  await waitUntil('admin removed', () => srv.speechLive.stats.clients === 0);
});


test('a client that stops reading is dropped; the one that reads gets every event', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-slow', type: 'speech' });
  const token = srv.token('u-slow', 'o-live', SPEECH_READ);
  const path = `/v1/speech-sessions/${s.id}/stream?token=${token}`;
  const slow = await stalledClient(srv.baseUrl, path);
  let slowClosed = false;
  slow.on('close', () => (slowClosed = true));
  const fast = client(path);
  await waitUntil('both clients registered', () => srv.speechLive.stats.clients === 2);

  // ~20 MB of events in bursts, far beyond what the stalled client's TCP buffers hold.
  const total = 20_000;
  const filler = 'x'.repeat(1000);
  const startedDropped = srv.speechLive.stats.slowDisconnects;
  for (let i = 0; i < total; i += 500) {
    for (let k = i; k < i + 500; k++) {
      const e = event(s, k, 'asr:token', { text: filler, isFinal: false });
      srv.speechLive.publish({ ...e, payload_json: e.payload_json! }, Topics.speechEvents);
    }
    // The next burst once the reading client has this one: on a loaded machine (CI runs test
    // files side by side) bursts faster than it can read would overflow its queue too, and
    // the test is about the client that does not read at all.
    await waitUntil('the reading client to keep up', () => events(fast).length >= i + 500, 30_000);
  }
  await waitUntil('the stalled client to be dropped', () => srv.speechLive.stats.slowDisconnects === startedDropped + 1 && srv.speechLive.stats.clients === 1, 20_000);
  await waitUntil('the reading client to get every event', () => events(fast).length === total, 30_000);
  assert.equal(events(fast)[total - 1].id, `${s.id}:asr:token:${total - 1}`, 'in order, none lost');
  slow.resume();
  await waitUntil('the stalled socket to close', () => slowClosed, 10_000);
  assert.equal(fast.ws.readyState, WebSocket.OPEN);
  fast.ws.close();
});

test('resume: a client reconnecting with the last id it saw gets the events it missed, in order; heartbeat is answered with ping', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-r', type: 'speech' });
  const token = srv.token('u-r', 'o-live', SPEECH_READ);
  const first = client(`/v1/speech-sessions/${s.id}/stream?token=${token}`);
  await waitUntil('subscribed', () => first.messages.length > 0);
  first.ws.send(JSON.stringify({ type: 'heartbeat' }));
  await waitUntil('ping', () => first.messages.some((m) => m.type === 'ping'));
  await srv.publishEvents([event(s, 1, 'metrics:update', { second: 0 })]);
  await waitUntil('the first event', () => events(first).some((m) => m.type === 'metrics:update'));
  first.ws.close();
  await waitUntil('closed', () => first.closed);
  await srv.publishEvents([event(s, 2, 'asr:token', { text: 'so', isFinal: false }), event(s, 3, 'metrics:update', { second: 1 })]);
  // The events are read by the hub whether or not anyone listens: wait until they are kept.
  await waitUntil('kept', () => srv.speechLive.buffered(`speech-session:${s.id}`).length === 3);
  const back = client(`/v1/speech-sessions/${s.id}/stream?token=${token}&last_id=${encodeURIComponent(`${s.id}:metrics:update:1`)}`);
  await waitUntil('subscribed and two events', () => back.messages.length >= 3);
  assert.deepEqual(back.messages[0].payload, { session_id: s.id, status: 'created', last_id: `${s.id}:metrics:update:1`, replayed: 2, complete: true });
  assert.deepEqual(back.messages.slice(1, 3).map((m) => m.id), [`${s.id}:asr:token:2`, `${s.id}:metrics:update:3`]);
  back.ws.close();
  await waitUntil('closed', () => back.closed);
});

test('a later subscribe reports the session as it is then (created → recording); a deleted session gets an error message', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-rs', type: 'speech' });
  const c = client(`/v1/speech-sessions/${s.id}/stream?token=${srv.token('u-rs', 'o-live', SPEECH_READ)}`);
  await waitUntil('subscribed', () => c.messages.length > 0);
  assert.deepEqual(c.messages[0].payload, { session_id: s.id, status: 'created' });
  await srv.speechSessions.claimForAudio(s.id, { source: 'live', startedAt: Date.now(), sampleRateHz: 16_000 });
  await srv.publishEvents([event(s, 1, 'metrics:update', { second: 0 }), event(s, 2, 'metrics:update', { second: 1 })]);
  await waitUntil('two events', () => events(c).length === 2);
  c.ws.send(JSON.stringify({ type: 'subscribe', payload: { lastVersion: `${s.id}:metrics:update:1` } }));
  await waitUntil('subscribed again', () => c.messages.length >= 4);
  // Nothing replayed: the event after the id went out live on this socket already.
  assert.deepEqual(c.messages[3].payload, { session_id: s.id, status: 'recording', last_id: `${s.id}:metrics:update:1`, replayed: 0, complete: true });
  await srv.speechSessions.delete(s.id);
  c.ws.send(JSON.stringify({ type: 'subscribe' }));
  await waitUntil('an error message', () => c.messages.some((m) => m.type === 'error'));
  const err = c.messages.find((m) => m.type === 'error')!;
  assert.equal((err.payload as { code: string }).code, 'not_found');
  c.ws.close();
  await waitUntil('closed', () => c.closed);
});

test('unsubscribe stops the session\'s events on this socket until the next subscribe, which replays what came meanwhile from lastVersion', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-live', userId: 'u-un', type: 'speech' });
  const c = client(`/v1/speech-sessions/${s.id}/stream?token=${srv.token('u-un', 'o-live', SPEECH_READ)}`);
  await waitUntil('connected', () => c.connected.length === 1);
  await srv.publishEvents([event(s, 1, 'metrics:update', { second: 0 })]);
  await waitUntil('the first event', () => events(c).length === 1);
  c.ws.send(JSON.stringify({ type: 'unsubscribe', payload: { sessionId: s.id } }));
  c.ws.send(JSON.stringify({ type: 'heartbeat' }));
  await waitUntil('ping', () => c.messages.some((m) => m.type === 'ping'));
  await srv.publishEvents([event(s, 2, 'metrics:update', { second: 1 })]);
  await waitUntil('kept', () => srv.speechLive.buffered(`speech-session:${s.id}`).length === 2);
  c.ws.send(JSON.stringify({ type: 'subscribe', payload: { lastVersion: `${s.id}:metrics:update:1` } }));
  await waitUntil('subscribed again, with the missed event', () => events(c).filter((m) => m.type === 'metrics:update').length === 2);
  const types = c.messages.filter((m) => m.type !== 'heartbeat').map((m) => m.type);
  // Nothing between the unsubscribe and the second subscribed: the event came by the replay.
  assert.deepEqual(types, ['subscribed', 'metrics:update', 'ping', 'subscribed', 'metrics:update']);
  assert.equal(c.messages.filter((m) => m.type === 'subscribed')[1].payload!.replayed, 1);
  c.ws.close();
  await waitUntil('closed', () => c.closed);
});
