// Live speech events over socket.io (api/speech-socketio.ts), with the socket.io-client library
// as the speech-coaching document's client uses it: io(url, {auth: {token}}). Events published
// on the embedded bus reach the socket.io clients of their session (namespace or subscribe
// message) through the speech live hub; a bad token, a missing scope and someone else's
// session are refused with coded errors and no data. (A real streamed clip to a socket.io
// client: test/conformance/speech-coaching.test.ts.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import type { SpeechEvent } from '../schemas/registry/schemas.js';
import type { SpeechSession } from '../store/postgres/speech-sessions-repo.js';
import { SPEECH_READ, startSpeechTestServer, waitUntil, type SpeechTestServer } from './speech-api.test-util.js';

let srv: SpeechTestServer;
const sockets: Socket[] = [];
before(async () => {
  srv = await startSpeechTestServer();
});
after(async () => {
  for (const s of sockets) s.close();
  await srv?.close();
});

interface Got {
  socket: Socket;
  events: Array<{ name: string; body: any }>;
  connectError: (Error & { data?: any }) | null;
  connected: boolean;
}

/** A socket.io client that records every event, as the document writes it: io(url, {auth: {token}}). */
function connect(path: string, token: string | null, transports?: string[], extraHeaders?: Record<string, string>): Got {
  const socket = io(`${srv.baseUrl}${path}`, { auth: token === null ? {} : { token }, reconnection: false, forceNew: true, ...(transports ? { transports } : {}), ...(extraHeaders ? { extraHeaders } : {}) });
  sockets.push(socket);
  const got: Got = { socket, events: [], connectError: null, connected: false };
  socket.onAny((name, body) => got.events.push({ name, body }));
  socket.on('connect', () => (got.connected = true));
  socket.on('connect_error', (err) => (got.connectError = err));
  return got;
}

function event(s: SpeechSession, n: number, type: SpeechEvent['type'], payload: Record<string, unknown>): SpeechEvent {
  return { event_id: `${s.id}:${type}:${n}`, session_id: s.id, user_id: s.userId, org_id: s.orgId, type, occurred_at: Date.UTC(2025, 6, 1, 12, 0, n), payload_json: JSON.stringify(payload) };
}

const three = (s: SpeechSession) => [
  event(s, 1, 'asr:token', { text: 'hello', isFinal: false, segmentIndex: 0, startMs: 1500, endMs: 2250, confidence: 0.75 }),
  event(s, 2, 'metrics:update', { second: 1, atMs: 2000, rollingWpm: 120, pitchHz: 131.5, volumeDbfs: -21.25, newPauses: [{ startMs: 1200, endMs: 1500, durationMs: 300, kind: 'natural' }] }),
  event(s, 3, 'processing:status', { stage: 'transcription', progress: 0.5, etaS: 3, status: 'processing' }),
];
const speechEvents = (g: Got) => g.events.filter((e) => ['asr:token', 'metrics:update', 'processing:status'].includes(e.name));

test("a client in a session's namespace, and one that subscribes on the default namespace, get its three events with the document's data; another session's do not reach them", async () => {
  const a = await srv.speechSessions.create({ orgId: 'o-sio', userId: 'u-a', type: 'speech' });
  const other = await srv.speechSessions.create({ orgId: 'o-sio', userId: 'u-a', type: 'speech' });
  const token = srv.token('u-a', 'o-sio', SPEECH_READ);
  // The session's websocketUrl as io()'s URL (namespace /v1/speech-sessions/<id>/stream), over
  // the default transports (polling, then the upgrade to WebSocket); the bare session path over WebSocket only.
  const byUrl = connect(`/v1/speech-sessions/${a.id}/stream`, token);
  const byPath = connect(`/v1/speech-sessions/${a.id}`, token, ['websocket']);
  const bySubscribe = connect('/', token);
  await waitUntil('the default-namespace client connected', () => bySubscribe.connected);
  const ack = await bySubscribe.socket.timeout(5000).emitWithAck('subscribe', { sessionId: a.id });
  assert.deepEqual(ack, { ok: true, session_id: a.id, status: 'created' });
  await waitUntil('all three subscribed', () => [byUrl, byPath, bySubscribe].every((g) => g.events.some((e) => e.name === 'subscribed')));
  assert.deepEqual(byUrl.events[0], { name: 'subscribed', body: { session_id: a.id, status: 'created' } });
  assert.equal(srv.speechLive.listeners, 3, 'one hub listener per client and session');

  await srv.publishEvents([event(other, 9, 'asr:token', { text: 'not yours', isFinal: true }), ...three(a)]);
  for (const g of [byUrl, byPath, bySubscribe]) {
    await waitUntil('three events', () => speechEvents(g).length >= 3);
    const got = speechEvents(g);
    assert.deepEqual(got.map((e) => e.name), ['asr:token', 'metrics:update', 'processing:status']);
    // The document's {type, data}, inside the envelope the WebSocket route sends.
    assert.deepEqual(got.map((e) => [e.body.type, e.body.data]), [
      ['asr:token', { token: 'hello', confidence: 0.75, start: 1.5, end: 2.25, isFinal: false }],
      ['metrics:update', { timestamp: 2, wpm: 120, pitch: 131.5, volume: -21.25, pauses: [{ start: 1.2, end: 1.5, duration: 0.3, type: 'natural' }] }],
      ['processing:status', { stage: 'transcription', progress: 50, estimatedTime: 3, status: 'processing' }],
    ]);
    assert.equal(got[0].body.id, `${a.id}:asr:token:1`);
    assert.equal(got[0].body.payload.text, 'hello');
  }
  for (const g of [byUrl, byPath, bySubscribe]) g.socket.close();
  await waitUntil('the hub listeners removed', () => srv.speechLive.listeners === 0);
});

test('a bad or missing token and a token without read:speech are refused at connect, with the coded error in connect_error.data', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-sio', userId: 'owner', type: 'speech' });
  const cases: Array<[string | null, string, string]> = [
    ['not-a-jwt', 'unauthorized', 'invalid_token'],
    [null, 'unauthorized', 'missing_token'],
    [srv.token('owner', 'o-sio', ['read:sessions']), 'forbidden', 'missing_scope'],
  ];
  for (const path of [`/v1/speech-sessions/${s.id}`, '/']) {
    for (const [token, code, reason] of cases) {
      const g = connect(path, token);
      await waitUntil(`connect_error ${code}`, () => g.connectError);
      assert.equal(g.connected, false);
      assert.equal(g.connectError!.data.code, code, JSON.stringify(g.connectError!.data));
      assert.equal(g.connectError!.data.details[0].reason, reason);
      assert.deepEqual(g.events, []);
    }
  }
  assert.equal(srv.speechLive.listeners, 0);
});

test('a client connected with an API key is disconnected, with the coded error, once the key is revoked; one connected with a person\'s token stays', async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-sio', userId: 'owner', type: 'speech' });
  const { apiKey, key } = await srv.apiKeys.create({ orgId: 'o-sio', createdBy: 'owner', name: 'dashboard', scopes: ['read:speech'], expiresAt: null });
  const byKey = connect(`/v1/speech-sessions/${s.id}`, key);
  const byPerson = connect(`/v1/speech-sessions/${s.id}`, srv.token('owner', 'o-sio', SPEECH_READ));
  await waitUntil('both connected', () => byKey.connected && byPerson.connected);
  let disconnected = '';
  byKey.socket.on('disconnect', (reason) => (disconnected = reason));
  await srv.apiKeys.revoke('o-sio', apiKey.id);
  // The key is checked again every second (its state cached 500 ms): waitUntil's own bound.
  await waitUntil('the key client disconnected', () => disconnected);
  assert.equal(disconnected, 'io server disconnect');
  const err = byKey.events.find((e) => e.name === 'error');
  assert.deepEqual([err?.body.code, err?.body.details?.[0]?.reason], ['unauthorized', 'invalid_api_key']);
  assert.equal(byPerson.socket.connected, true, "a person's connection is not the key's");
  byPerson.socket.close();
  await waitUntil('listeners removed', () => srv.speechLive.listeners === 0);
});

test("X-AUF-Client-ID on the handshake must name the API key, as on every route and socket: another key's id is refused at connect (invalid_api_key)", async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-sio', userId: 'owner', type: 'speech' });
  const { apiKey, key } = await srv.apiKeys.create({ orgId: 'o-sio', createdBy: 'owner', name: 'client id', scopes: ['read:speech'], expiresAt: null });
  const right = connect(`/v1/speech-sessions/${s.id}`, key, ['polling'], { 'x-auf-client-id': apiKey.id });
  const wrong = connect(`/v1/speech-sessions/${s.id}`, key, ['polling'], { 'x-auf-client-id': 'ak_0000000000000000' });
  await waitUntil('both answered', () => right.connected && wrong.connectError !== null);
  assert.deepEqual([wrong.connected, wrong.connectError?.data?.code, wrong.connectError?.data?.details?.[0]?.reason], [false, 'unauthorized', 'invalid_api_key']);
  right.socket.close();
  await waitUntil('listeners removed', () => srv.speechLive.listeners === 0);
});

test("another organisation's or user's session is an error, not data: not_found at connect in its namespace, an error event for subscribe", async () => {
  const s = await srv.speechSessions.create({ orgId: 'o-sio', userId: 'owner', type: 'speech' });
  for (const token of [srv.token('owner', 'another-org', SPEECH_READ), srv.token('intruder', 'o-sio', SPEECH_READ)]) {
    const g = connect(`/v1/speech-sessions/${s.id}`, token);
    await waitUntil('connect_error', () => g.connectError);
    assert.equal(g.connectError!.data.code, 'not_found');

    const sub = connect('/', token);
    await waitUntil('connected', () => sub.connected);
    const ack = await sub.socket.timeout(5000).emitWithAck('join', { sessionId: s.id });
    assert.equal(ack.ok, false);
    assert.equal(ack.error.code, 'not_found');
    await waitUntil('the error event', () => sub.events.find((e) => e.name === 'error'));
    assert.equal(srv.speechLive.listeners, 0, 'nothing listens for the refused client');
    await srv.publishEvents(three(s));
    // The owner's client (connected after the events) shows they were published and routed; the refused ones got none.
    const owner = connect(`/v1/speech-sessions/${s.id}`, srv.token('owner', 'o-sio', SPEECH_READ));
    await waitUntil('owner subscribed', () => owner.events.some((e) => e.name === 'subscribed'));
    await srv.publishEvents([event(s, 7, 'processing:status', { stage: 'done', progress: 1, status: 'completed' })]);
    await waitUntil("the owner's event", () => speechEvents(owner).length === 1);
    assert.deepEqual(speechEvents(g), []);
    assert.deepEqual(speechEvents(sub), []);
    for (const x of [g, sub, owner]) x.socket.close();
    await waitUntil('listeners removed', () => srv.speechLive.listeners === 0);
  }
});
