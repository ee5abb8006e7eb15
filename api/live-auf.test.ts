// The live coherence sockets' issue-12 parts, against a whole embedded Attune (records are
// handed to its live hub as the bus would): the coherence platform's `auf-protocol-v1`
// message shapes (breathing phase from the pacer at the session's start), the session-sync
// envelope staying the default, client heartbeats answered with ping (and a silence past the timeout
// closing the socket, on injected timers), and resume from the last message id (`?last_id=`
// and `subscribe` with lastVersion) before live messages, from a bounded buffer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket, WebSocketServer } from 'ws';
import { Topics } from '../schemas/topics.js';
import { silentLogger } from '../lib/log.js';
import type { CoherenceWindowRecord, SessionEventRecord } from '../schemas/records.js';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { ClientHeartbeat, DEFAULT_CLIENT_HEARTBEAT_TIMEOUT_MS, LiveHub, type LiveClient } from '../http/live-hub.js';
import type { HeartbeatTimers } from '../http/ws-heartbeat.js';
import { AUF_PROTOCOL, aufMessage, breathingGuidance } from './live.js';

const ORG = 'o-auf';
const USER = 'u-auf';

function window(sessionId: string, i: number, userId = USER): CoherenceWindowRecord {
  return {
    session_id: sessionId, user_id: userId, org_id: ORG, device_id: 'd', window_start: 1_000_000 + i * 5000, window_end: 1_064_000 + i * 5000,
    valid: true, coherence: 0.72, coherence_ratio: 2.57, peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 66, rmssd_ms: 48,
    sdnn_ms: 50, pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0,
    invalid_reason: null, partial: false, coverage: 1, longest_gap_ms: 1100,
  };
}

/** A socket and everything it received, parsed. */
async function open(url: string, protocols?: string[]): Promise<{ ws: WebSocket; inbox: any[] }> {
  const ws = new WebSocket(url, protocols);
  const inbox: any[] = [];
  ws.on('message', (m) => inbox.push(JSON.parse(m.toString())));
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  return { ws, inbox };
}

/** Manual timers: nothing fires until advance(). */
function fakeTimers(): HeartbeatTimers & { advance(ms: number): void } {
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(h) {
      pending.delete(h as number);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > until) break;
        pending.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = until;
    },
  };
}

test('aufMessage: the document shapes, the pacer at the session start, duration_above for hold_s', () => {
  const start = Date.parse('2026-01-31T19:00:00Z');
  const env = { id: 's1:1', type: 'coherence_update', timestamp: '2026-01-31T19:05:23.456Z', payload: { session_id: 's1', coherence: 0.72, hrv: 48, hr: 66, valid: true } };
  const m = aufMessage(env, () => start) as any;
  assert.deepEqual(Object.keys(m), ['type', 'id', 'timestamp', 'data']);
  // 323.456 s in, 10 s breaths: 3.456 s into the 33rd breath, inhale (first 5 s), progress 0.691.
  assert.deepEqual([m.data.coherence, m.data.hrv, m.data.hr, m.data.breathing_phase, m.data.breathing_progress], [0.72, 48, 66, 'inhale', 0.691]);
  assert.deepEqual(breathingGuidance(start, start + 7_500), { breathing_phase: 'exhale', breathing_progress: 0.5 });
  assert.deepEqual(breathingGuidance(undefined, start), { breathing_phase: null, breathing_progress: null });
  const ev = aufMessage({ id: 'e1', type: 'session_event', timestamp: env.timestamp, payload: { event: 'coherence_threshold_reached', threshold: 0.7, hold_s: 30 } }, () => start) as any;
  assert.deepEqual([ev.type, ev.event, ev.data.threshold, ev.data.duration_above], ['session_event', 'coherence_threshold_reached', 0.7, 30]);
});

test('ClientHeartbeat: off until the first heartbeat; each one re-arms; the session-sync document\'s 120 s without one close with 4408', () => {
  const timers = fakeTimers();
  const closes: Array<[number, string]> = [];
  const errors: string[] = [];
  const socket = { readyState: 1, OPEN: 1, close: (code: number, reason: string) => closes.push([code, reason]) } as any;
  assert.equal(DEFAULT_CLIENT_HEARTBEAT_TIMEOUT_MS, 120_000, 'the document\'s limits table: connection timeout 120 s (no heartbeat)');
  const hb = new ClientHeartbeat(socket, DEFAULT_CLIENT_HEARTBEAT_TIMEOUT_MS, timers, (t) => errors.push(t));
  timers.advance(10 * 30_000);
  assert.equal(closes.length, 0, 'a client that never sends one is not timed out by them');
  hb.beat();
  timers.advance(2 * 30_000);
  hb.beat();
  timers.advance(100_000);
  assert.equal(closes.length, 0, 'three 30 s heartbeats missed, but not yet the document\'s 120 s');
  timers.advance(19_999);
  assert.equal(closes.length, 0, 'just under 120 s since the last heartbeat');
  timers.advance(1);
  assert.deepEqual(closes, [[4408, 'heartbeat_timeout: no heartbeat for 120 s']]);
  assert.equal(errors.length, 1);
});

/** A hub's client on a real socket: `fn` gets the client (server side), the peer and what it received. */
async function withHubClient(
  hub: LiveHub<CoherenceWindowRecord>,
  fn: (client: LiveClient, peer: { ws: WebSocket; inbox: any[] }) => Promise<void>,
): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  try {
    const serverSide = new Promise<import('ws').WebSocket>((resolve) => wss.once('connection', resolve));
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const { port } = wss.address() as { port: number };
    const peer = await open(`ws://127.0.0.1:${port}`);
    await fn(hub.attach(await serverSide, ['k'])!, peer);
  } finally {
    await new Promise((r) => wss.close(r));
  }
}

test('a LiveHub socket that heartbeats gets ping, and is closed with 4408 and a coded error after the heartbeat timeout (injected timers)', async () => {
  const timers = fakeTimers();
  const hub = new LiveHub<CoherenceWindowRecord>(
    { log: silentLogger, maxBufferedMessages: 64, heartbeatMs: 600_000, clock: () => Date.parse('2026-02-12T12:00:00Z'), heartbeatTimers: timers, clientHeartbeatTimeoutMs: 3_000 },
    { name: 'test', topics: [], route: () => null },
  );
  await withHubClient(hub, async (client, { ws, inbox }) => {
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    hub.heartbeat(client);
    const ping = await waitFor('ping', () => inbox.find((m) => m.type === 'ping'), 5_000, 10);
    assert.deepEqual([typeof ping.id, ping.timestamp, ping.payload.timestamp], ['string', '2026-02-12T12:00:00.000Z', '2026-02-12T12:00:00.000Z']);
    timers.advance(3 * 1_000);
    assert.equal(await closed, 4408);
    const err = inbox.find((m) => m.type === 'error');
    assert.deepEqual([err?.error.code, err?.error.details[0].reason], ['request_timeout', 'heartbeat_timeout']);
  });
});

test('a message superseded by one the client already had is dropped, also when it was held during a replay', async () => {
  const hub = new LiveHub<CoherenceWindowRecord>({ log: silentLogger, maxBufferedMessages: 64, heartbeatMs: 600_000, clock: () => 0 }, { name: 'test', topics: [], route: () => null });
  await withHubClient(hub, async (client, { ws, inbox }) => {
    client.send('"F1"', 'F1');
    client.send('"P1"', 'P1', false, 'F1'); // its final went out first: dropped
    client.send('"P2"', 'P2', false, 'F2'); // no final yet: sent
    client.hold();
    client.send('"P3"', 'P3', false, 'F3'); // held...
    client.send('"F3"', 'F3', true); // ...while a replay sends its final
    client.release();
    client.send('"end"', 'end');
    await waitFor('the last message', () => inbox.includes('end'), 5_000, 10);
    assert.deepEqual(inbox, ['F1', 'P2', 'F3', 'end']);
    ws.close();
  });
});

describe('live sockets of a whole Attune', () => {
  let app: TestAttune;
  let token = '';
  let sessionId = '';
  let startedAt = 0;
  let wsBase = '';

  before(async () => {
    app = await startTestAttune({ entities: 'pglite' });
    wsBase = app.baseUrl.replace(/^http/, 'ws');
    token = app.token(USER, ORG, ['read:coherence', 'read:sessions', 'write:sessions']);
    const s = await app.request('POST', '/v1/sessions', { token, body: { type: 'solo', protocol: 'heart_breath_sync', target_duration: 600 } });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    sessionId = s.body.id;
    startedAt = Date.parse(s.body.started_at);
  });
  after(async () => {
    await app?.cleanup();
  });

  test('auf-protocol-v1 with an authenticate message: {type, timestamp, data} updates with the pacer, session_event with event', async () => {
    const { ws, inbox } = await open(`${wsBase}/v1/coherence`, [AUF_PROTOCOL]);
    assert.equal(ws.protocol, AUF_PROTOCOL);
    ws.send(JSON.stringify({ type: 'authenticate', token }));
    const sub = await waitFor('subscribed', () => inbox.find((m) => m.type === 'subscribed'), 10_000, 10);
    assert.equal(sub.data.user_id, USER);
    // The first message of a session this process has not looked up may carry null phases; the lookup then fills them.
    let i = 1000;
    const update = await waitFor('an update with the pacer', () => {
      app.live!.publish(window(sessionId, i++), Topics.coherenceWindows);
      return inbox.find((m) => m.type === 'coherence_update' && m.data.breathing_phase !== null);
    }, 10_000, 50);
    assert.deepEqual(Object.keys(update).sort(), ['data', 'id', 'timestamp', 'type']);
    assert.deepEqual([update.data.coherence, update.data.hrv, update.data.hr], [0.72, 48, 66]);
    assert.deepEqual({ breathing_phase: update.data.breathing_phase, breathing_progress: update.data.breathing_progress }, breathingGuidance(startedAt, Date.parse(update.timestamp)));
    const event: SessionEventRecord = { event_id: 'ev-auf-1', session_id: sessionId, org_id: ORG, user_id: USER, type: 'coherence_threshold_reached', occurred_at: Date.now(), payload_json: JSON.stringify({ threshold: 0.7, hold_s: 30, coherence: 0.74 }) } as SessionEventRecord;
    app.live!.publish(event, Topics.sessionEvents);
    const ev = await waitFor('session_event', () => inbox.find((m) => m.type === 'session_event'), 5_000, 10);
    assert.deepEqual([ev.event, ev.data.threshold, ev.data.duration_above, typeof ev.timestamp], ['coherence_threshold_reached', 0.7, 30, 'string']);
    ws.close();
  });

  test('without the subprotocol the {id, type, timestamp, payload} envelope stays; heartbeat gets ping', async () => {
    const { ws, inbox } = await open(`${wsBase}/v1/coherence?token=${token}`);
    await waitFor('subscribed', () => inbox.find((m) => m.type === 'subscribed'), 10_000, 10);
    app.live!.publish(window(sessionId, 2000), Topics.coherenceWindows);
    const u = await waitFor('update', () => inbox.find((m) => m.type === 'coherence_update'), 5_000, 10);
    assert.deepEqual(Object.keys(u).sort(), ['id', 'payload', 'timestamp', 'type']);
    assert.equal(u.payload.coherence, 0.72);
    ws.send(JSON.stringify({ id: 'c1', type: 'heartbeat', timestamp: new Date().toISOString(), payload: {} }));
    const ping = await waitFor('ping', () => inbox.find((m) => m.type === 'ping'), 5_000, 10);
    assert.equal(typeof ping.payload.timestamp, 'string');
    ws.close();
  });

  test('resume: ?last_id= and subscribe with lastVersion get what was missed, in order, before live messages, none twice', async () => {
    const s = await app.request('POST', '/v1/sessions', { token, body: { type: 'coherence' } });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const sid = s.body.id as string;
    const first = await open(`${wsBase}/v1/sessions/${sid}/stream?token=${token}`);
    await waitFor('subscribed', () => first.inbox.find((m) => m.type === 'subscribed'), 10_000, 10);
    for (let i = 1; i <= 3; i++) app.live!.publish(window(sid, i), Topics.coherenceWindows);
    await waitFor('three updates', () => first.inbox.filter((m) => m.type === 'coherence_update').length === 3, 5_000, 10);
    const lastSeen = first.inbox.filter((m) => m.type === 'coherence_update')[1].id; // the client saw up to #2
    first.ws.close();
    // Published while nobody listens.
    for (let i = 4; i <= 5; i++) app.live!.publish(window(sid, i), Topics.coherenceWindows);

    const again = await open(`${wsBase}/v1/sessions/${sid}/stream?token=${token}&last_id=${encodeURIComponent(lastSeen)}`);
    const sub = await waitFor('subscribed', () => again.inbox.find((m) => m.type === 'subscribed'), 10_000, 10);
    assert.deepEqual([sub.payload.last_id, sub.payload.replayed, sub.payload.complete], [lastSeen, 3, true]);
    app.live!.publish(window(sid, 6), Topics.coherenceWindows);
    await waitFor('four updates', () => again.inbox.filter((m) => m.type === 'coherence_update').length === 4, 5_000, 10);
    const ends = (inbox: any[]) => inbox.filter((m) => m.type === 'coherence_update').map((m) => Date.parse(m.payload.window_end));
    assert.deepEqual(ends(again.inbox), [3, 4, 5, 6].map((i) => window(sid, i).window_end), 'missed ones first, then live');
    assert.equal(again.inbox[0].type, 'subscribed');

    // subscribe with lastVersion (envelope form) on the same socket: only what it has not had (nothing), no repeats.
    again.ws.send(JSON.stringify({ id: 'c2', type: 'subscribe', timestamp: new Date().toISOString(), payload: { sessionId: sid, lastVersion: lastSeen } }));
    const second = await waitFor('second subscribed', () => again.inbox.filter((m) => m.type === 'subscribed')[1], 5_000, 10);
    assert.deepEqual([second.payload.replayed, second.payload.complete], [0, true]);
    assert.equal(ends(again.inbox).length, 4);
    again.ws.close();

    // On /v1/coherence, subscribe names the session; an id the buffer no longer has: all of it, complete false.
    const user = await open(`${wsBase}/v1/coherence?token=${token}`);
    await waitFor('subscribed', () => user.inbox.find((m) => m.type === 'subscribed'), 10_000, 10);
    user.ws.send(JSON.stringify({ type: 'subscribe', sessionId: sid, lastVersion: 'no-such-id' }));
    const r = await waitFor('resumed', () => user.inbox.filter((m) => m.type === 'subscribed')[1], 5_000, 10);
    assert.deepEqual([r.payload.session_id, r.payload.replayed, r.payload.complete], [sid, 6, false]);
    // Another user's session is not found (and replays nothing).
    const other = await app.request('POST', '/v1/sessions', { token: app.token('u-other', ORG, ['write:sessions']), body: { type: 'coherence' } });
    user.ws.send(JSON.stringify({ type: 'subscribe', sessionId: other.body.id, lastVersion: 'x' }));
    const err = await waitFor('error', () => user.inbox.find((m) => m.type === 'error'), 5_000, 10);
    assert.equal(err.payload.code, 'not_found');
    user.ws.close();
  });

  test('provisional windows: only to sockets that ask (?provisional=true), with an id of their own; none after its final window; not kept for resume', async () => {
    const s = await app.request('POST', '/v1/sessions', { token, body: { type: 'coherence' } });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const sid = s.body.id as string;
    const plain = await open(`${wsBase}/v1/sessions/${sid}/stream?token=${token}`);
    const live = await open(`${wsBase}/v1/sessions/${sid}/stream?token=${token}&provisional=true`);
    const auf = await open(`${wsBase}/v1/coherence?token=${token}&provisional=1`, [AUF_PROTOCOL]);
    for (const c of [plain, live, auf]) await waitFor('subscribed', () => c.inbox.find((m) => m.type === 'subscribed'), 10_000, 10);
    assert.equal(live.inbox[0].payload.provisional, true);
    assert.equal(plain.inbox[0].payload.provisional, undefined);
    const P = Topics.coherenceWindowsProvisional;
    const F = Topics.coherenceWindows;
    app.live!.publish({ ...window(sid, 10), coherence: 0.5 }, P);
    for (const i of [8, 9, 10]) app.live!.publish(window(sid, i), F);
    // Read late from its topic: the final window of both ends went out already.
    app.live!.publish(window(sid, 10), P);
    app.live!.publish(window(sid, 9), P);
    app.live!.publish(window(sid, 11), P);
    // A worker that took the partition over reads it again: an older provisional window after a newer one.
    app.live!.publish(window(sid, 11), P);
    app.live!.publish(window(sid, 12), F);
    const updates = (c: { inbox: any[] }) => c.inbox.filter((m) => m.type === 'coherence_update');
    for (const c of [plain, live, auf]) await waitFor('the last final window', () => updates(c).some((m) => m.id === `${sid}:${window(sid, 12).window_end}`), 5_000, 10);
    const seen = (c: { inbox: any[] }) => updates(c).map((m) => `${(m.payload ?? m.data).provisional ? 'P' : 'F'}${((Date.parse((m.payload ?? m.data).window_end) - 1_064_000) / 5000).toFixed(0)}`);
    assert.deepEqual(seen(plain), ['F8', 'F9', 'F10', 'F12']);
    assert.deepEqual(seen(live), ['P10', 'F8', 'F9', 'F10', 'P11', 'F12']);
    assert.deepEqual(seen(auf), seen(live));
    const p10 = updates(live)[0];
    assert.equal(p10.id, `${sid}:${window(sid, 10).window_end}:provisional`);
    assert.equal(p10.payload.coherence, 0.5);
    assert.equal(updates(live)[3].id, `${sid}:${window(sid, 10).window_end}`);
    assert.equal(updates(live)[3].payload.provisional, false);
    const kept = (app.live as unknown as LiveHub).buffered(`session:${sid}`);
    assert.deepEqual(kept.map((e) => e.id), [8, 9, 10, 12].map((i) => `${sid}:${window(sid, i).window_end}`));
    for (const c of [plain, live, auf]) c.ws.close();
  });

  test('the resume buffer is bounded per session', async () => {
    const sid = 'bounded-session';
    for (let i = 0; i < 500; i++) app.live!.publish(window(sid, i), Topics.coherenceWindows);
    const kept = (app.live as unknown as LiveHub).buffered(`session:${sid}`);
    assert.equal(kept.length, 60);
    assert.equal(kept[0].id, `${sid}:${window(sid, 440).window_end}`);
  });
});
