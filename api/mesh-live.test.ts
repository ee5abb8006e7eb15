// The mesh live stream (issue 11 item 3) on the embedded bus: two API servers of one
// deployment (one bus, one entity database), a socket on one and the joins, leaves and end on
// the other, so participant_joined / participant_left / session_ended can only arrive through
// the bus topic attune.mesh.events.v1; sync_pulse at least once a second with the pacer's
// phase and progress for its instant; group_coherence from the bus feeds the pulse's
// group_sync; a private session refuses strangers (4403), another organisation gets 4404.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Topics } from '../schemas/topics.js';
import type { MeshEvent } from '../schemas/registry/schemas.js';
import { createCodec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import { startMeshTestServer, type MeshTestServer } from './mesh-api.test-util.js';
import { waitUntil } from './speech-api.test-util.js';
import { pacerAt } from './mesh-pacer.js';

let a: MeshTestServer;
let b: MeshTestServer;
before(async () => {
  a = await startMeshTestServer({ realClock: true });
  b = await startMeshTestServer({ realClock: true, shareWith: a });
});
after(async () => {
  await b?.close();
  await a?.close();
});

interface Message {
  id?: string;
  type: string;
  timestamp?: string;
  payload?: Record<string, any>;
  data?: Record<string, any>;
  error?: { code: string; details: Array<{ reason: string }> };
}
interface Client {
  ws: WebSocket;
  messages: Message[];
  received: number[];
  closed: { code: number } | null;
  /** The session-sync document's `connected` messages, apart (each checked to follow the socket's first `subscribed`). */
  connected: Message[];
}

function client(srv: MeshTestServer, path: string, token: string): Client {
  const ws = new WebSocket(`${srv.wsUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const c: Client = { ws, messages: [], received: [], closed: null, connected: [] };
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.type === 'connected') {
      assert.deepEqual([c.messages.map((x) => x.type), c.connected.length], [['subscribed'], 0], 'connected comes once, right after the first subscribed');
      c.connected.push(m);
      return;
    }
    c.messages.push(m);
    c.received.push(Date.now());
  });
  ws.on('close', (code) => (c.closed = { code }));
  return c;
}
const ofType = (c: Client, type: string) => c.messages.filter((m) => m.type === type);

test('participant_joined / participant_left / session_ended cross the bus to another API server; sync_pulse at least once a second, on the pacer', async () => {
  const org = 'org-live';
  const host = a.token('host', org);
  const created = await a.request('POST', '/v1/mesh/sessions', { token: host, body: { name: 'Live circle', breathing_rate_bpm: 6, max_participants: 5 } });
  assert.equal(created.status, 201);
  const s = created.body;
  const watcher = client(b, `/v1/mesh/sessions/${s.id}/stream`, b.token('watcher', org));
  await waitUntil('subscribed', () => watcher.messages.length > 0);
  assert.deepEqual(watcher.messages[0].payload, { mesh_id: s.id, status: 'active', participant_count: 0, breathing_rate_bpm: 6 });

  const joined = await a.request('POST', `/v1/mesh/sessions/${s.id}/join`, { token: a.token('ua', org), body: { display_name: 'Ann', intention: 'calm' } });
  const anon = await a.request('POST', `/v1/mesh/sessions/${s.id}/join`, { token: a.token('ub', org), body: { display_name: 'Bob', anonymous: true } });
  await a.request('POST', `/v1/mesh/sessions/${s.id}/join`, { token: a.token('ua', org) }); // again: no second event
  await waitUntil('two participant_joined', () => ofType(watcher, 'participant_joined').length >= 2);
  const [j1, j2] = ofType(watcher, 'participant_joined');
  assert.deepEqual(j1.payload, { participant_id: joined.body.participant_id, position: 1, user_id: 'ua', display_name: 'Ann', anonymous: false, participant_count: 1 });
  assert.deepEqual(j2.payload, { participant_id: anon.body.participant_id, position: 2, user_id: null, display_name: null, anonymous: true, participant_count: 2 });
  // The same fields in `data`, where the coherence platform document's socket messages carry theirs.
  assert.deepEqual(j1.data, j1.payload);
  assert.match(j1.id!, new RegExp(`^${s.id}:participant_joined:`));

  // Pulses: every one on the pacer for its own instant, none more than a second after the last.
  await waitUntil('5 pulses', () => ofType(watcher, 'sync_pulse').length >= 5, 10_000);
  const pulses = watcher.messages.map((m, i) => ({ m, at: watcher.received[i] })).filter((x) => x.m.type === 'sync_pulse');
  for (const { m } of pulses) {
    const expected = pacerAt(Date.parse(s.started_at), 6, Date.parse(m.timestamp!))!;
    assert.deepEqual(m.payload, { phase: expected.phase, progress: Number(expected.progress.toFixed(4)), group_sync: null, breathing_rate_bpm: 6, cycle: expected.cycle });
    assert.deepEqual(m.data, m.payload);
  }
  const gaps = pulses.slice(1).map((p, i) => Date.parse(p.m.timestamp!) - Date.parse(pulses[i].m.timestamp!));
  assert.ok(Math.max(...gaps) <= 1000, `pulse gaps ${gaps}`);

  // group_coherence from the group worker (published here by hand) reaches the socket and becomes the pulses' group_sync.
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const gc: MeshEvent = {
    event_id: `${s.id}:group_coherence:1`, mesh_id: s.id, org_id: org, type: 'group_coherence', occurred_at: Date.now(),
    payload_json: JSON.stringify({ coherence: 0.78, participant_count: 2, sync_r: 0.82, sync_z: 4.1, sync_p: 0.0099 }),
  };
  await a.bus.publish(Topics.meshEvents, [{ key: s.id, value: codec.encode(Topics.meshEvents, gc) }]);
  await waitUntil('group_coherence', () => ofType(watcher, 'group_coherence').length === 1);
  assert.deepEqual(ofType(watcher, 'group_coherence')[0].payload, { coherence: 0.78, participant_count: 2, sync_r: 0.82, sync_z: 4.1, sync_p: 0.0099 });
  const seen = watcher.messages.length;
  await waitUntil('a pulse after it', () => watcher.messages.slice(seen).some((m) => m.type === 'sync_pulse'), 5_000);
  assert.equal(watcher.messages.slice(seen).find((m) => m.type === 'sync_pulse')!.payload!.group_sync, 0.82);

  await a.request('POST', `/v1/mesh/sessions/${s.id}/leave`, { token: a.token('ub', org) });
  await waitUntil('participant_left', () => ofType(watcher, 'participant_left').length === 1);
  assert.deepEqual(ofType(watcher, 'participant_left')[0].payload, { participant_id: anon.body.participant_id, position: 2, user_id: null, display_name: null, anonymous: true, participant_count: 1 });

  await a.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: host });
  await waitUntil('session_ended', () => ofType(watcher, 'session_ended').length === 1);
  const afterEnd = watcher.messages.length;
  // No pulse after the end (b learnt it from the bus): nothing arrives within two pulse periods.
  await new Promise((r) => setTimeout(r, 1200));
  assert.deepEqual(watcher.messages.slice(afterEnd).filter((m) => m.type === 'sync_pulse'), []);
  assert.equal(ofType(watcher, 'participant_joined').length, 2, 'the repeated join published nothing');
  watcher.ws.close();
  await waitUntil('closed', () => watcher.closed);
});

test('?provisional=true: a socket also gets provisional group_coherence (not once its final one went out); other sockets and the pulses see only final ones', async () => {
  const org = 'org-live-p';
  const host = a.token('host', org);
  const created = await a.request('POST', '/v1/mesh/sessions', { token: host, body: { name: 'Provisional circle', breathing_rate_bpm: 6, max_participants: 5 } });
  assert.equal(created.status, 201);
  const s = created.body;
  const plain = client(b, `/v1/mesh/sessions/${s.id}/stream`, b.token('watcher', org));
  const live = client(b, `/v1/mesh/sessions/${s.id}/stream?provisional=true`, b.token('watcher2', org));
  await waitUntil('both subscribed', () => plain.messages.length > 0 && live.messages.length > 0);
  assert.equal(live.messages[0].payload!.provisional, true);
  assert.equal(plain.messages[0].payload!.provisional, undefined);
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const t0 = Date.now();
  const event = (end: number, provisional: boolean, syncR: number): MeshEvent => ({
    event_id: `${s.id}:group_coherence:${end}${provisional ? ':provisional' : ''}`,
    mesh_id: s.id,
    org_id: org,
    type: 'group_coherence',
    occurred_at: end,
    payload_json: JSON.stringify({ coherence: 0.7, participant_count: 2, sync_r: syncR, sync_p: 0.01, provisional }),
  });
  const send = (e: MeshEvent) => a.bus.publish(Topics.meshEvents, [{ key: s.id, value: codec.encode(Topics.meshEvents, e) }]);
  await send(event(t0, false, 0.8));
  await send(event(t0 + 5000, true, 0.5));
  await waitUntil('the provisional one', () => ofType(live, 'group_coherence').length === 2);
  // The pulses' group_sync stays the final window's.
  const seen = plain.messages.length;
  await waitUntil('a pulse after it', () => plain.messages.slice(seen).some((m) => m.type === 'sync_pulse'), 5_000);
  assert.equal(plain.messages.slice(seen).find((m) => m.type === 'sync_pulse')!.payload!.group_sync, 0.8);
  // A provisional window whose final one was routed (a replay, a slow worker), or older than a
  // provisional one routed: dropped.
  await send(event(t0, true, 0.4));
  await send(event(t0 + 5000, true, 0.45));
  await send(event(t0 + 5000, false, 0.9));
  await waitUntil('the last final one', () => ofType(plain, 'group_coherence').length === 2 && ofType(live, 'group_coherence').length === 3);
  assert.deepEqual(ofType(plain, 'group_coherence').map((m) => m.id), [`${s.id}:group_coherence:${t0}`, `${s.id}:group_coherence:${t0 + 5000}`]);
  assert.deepEqual(ofType(live, 'group_coherence').map((m) => m.id), [`${s.id}:group_coherence:${t0}`, `${s.id}:group_coherence:${t0 + 5000}:provisional`, `${s.id}:group_coherence:${t0 + 5000}`]);
  assert.deepEqual(ofType(live, 'group_coherence').map((m) => m.payload!.provisional), [false, true, false]);
  plain.ws.close();
  live.ws.close();
  await waitUntil('closed', () => plain.closed && live.closed);
});

test('a private session refuses a stranger (4403 not_invited); another organisation gets 4404; a missing scope 4403', async () => {
  const org = 'org-live-private';
  const s = (await a.request('POST', '/v1/mesh/sessions', { token: a.token('host', org), body: { name: 'Private', visibility: 'private', invited_user_ids: ['kid'] } })).body;
  const stranger = client(a, `/v1/mesh/sessions/${s.id}/stream`, a.token('stranger', org));
  const elsewhere = client(a, `/v1/mesh/sessions/${s.id}/stream`, a.token('kid', 'org-else'));
  const noScope = client(a, `/v1/mesh/sessions/${s.id}/stream`, a.token('kid', org, ['mesh:create']));
  const kid = client(a, `/v1/mesh/sessions/${s.id}/stream`, a.token('kid', org));
  await waitUntil('three refused', () => stranger.closed && elsewhere.closed && noScope.closed);
  assert.deepEqual([stranger.closed!.code, stranger.messages[0].error!.details[0].reason], [4403, 'not_invited']);
  // The coded error before the close is a session-sync envelope too: {id, type, timestamp, payload: {code, message, …}}.
  const refusal = stranger.messages[0];
  assert.deepEqual([refusal.type, typeof refusal.id, typeof refusal.timestamp, refusal.payload!.code, refusal.payload!.details[0].reason], ['error', 'string', 'string', 'forbidden', 'not_invited']);
  assert.deepEqual(refusal.payload, refusal.error);
  assert.equal(elsewhere.closed!.code, 4404);
  assert.equal(noScope.closed!.code, 4403);
  await waitUntil('the invitee subscribed', () => kid.messages.some((m) => m.type === 'subscribed'));
  kid.ws.close();
});

test('resume: a socket that reconnects with the last id it saw gets the events it missed, in order, once (not pulses or provisional windows); heartbeat is answered with ping', async () => {
  const org = 'org-live-resume';
  const host = a.token('host', org);
  const s = (await a.request('POST', '/v1/mesh/sessions', { token: host, body: { name: 'Resume circle', breathing_rate_bpm: 6, max_participants: 5 } })).body;
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const t0 = Date.now();
  const window = (end: number, provisional = false): MeshEvent => ({
    event_id: `${s.id}:group_coherence:${end}${provisional ? ':provisional' : ''}`, mesh_id: s.id, org_id: org, type: 'group_coherence', occurred_at: end,
    payload_json: JSON.stringify({ coherence: 0.7, participant_count: 2, sync_r: 0.8, sync_p: 0.01, provisional }),
  });
  const send = (e: MeshEvent) => a.bus.publish(Topics.meshEvents, [{ key: s.id, value: codec.encode(Topics.meshEvents, e) }]);

  const first = client(b, `/v1/mesh/sessions/${s.id}/stream`, b.token('watcher', org));
  const reference = client(b, `/v1/mesh/sessions/${s.id}/stream`, b.token('watcher2', org));
  await waitUntil('subscribed', () => first.messages.length > 0 && reference.messages.length > 0);
  // The session-sync document's heartbeat: answered with ping {timestamp}.
  first.ws.send(JSON.stringify({ id: 'h1', type: 'heartbeat', timestamp: new Date().toISOString(), payload: {} }));
  await waitUntil('ping', () => ofType(first, 'ping').length === 1);
  assert.equal(typeof ofType(first, 'ping')[0].payload!.timestamp, 'string');

  await send(window(t0));
  await waitUntil('the first window', () => ofType(first, 'group_coherence').length === 1);
  const lastSeen = ofType(first, 'group_coherence')[0].id!;
  // What a client most often saw last is a pulse (every 500 ms; pulses are not kept).
  const windowAt = first.messages.findIndex((m) => m.id === lastSeen);
  await waitUntil('a pulse after it', () => first.messages.slice(windowAt).some((m) => m.type === 'sync_pulse'), 5_000);
  const lastPulse = first.messages.slice(windowAt).find((m) => m.type === 'sync_pulse')!.id!;
  first.ws.close();
  await waitUntil('closed', () => first.closed);

  // Missed while away: a join, two windows, a provisional one.
  await a.request('POST', `/v1/mesh/sessions/${s.id}/join`, { token: a.token('ua', org), body: { display_name: 'Ann' } });
  await send(window(t0 + 5000));
  await send(window(t0 + 10_000, true));
  await send(window(t0 + 10_000));
  await waitUntil('the reference saw them', () => ofType(reference, 'group_coherence').length === 3 && ofType(reference, 'participant_joined').length === 1);
  const missed = reference.messages.filter((m) => m.type === 'participant_joined' || m.type === 'group_coherence').slice(1).map((m) => m.id);
  assert.equal(missed.length, 3);

  const back = client(b, `/v1/mesh/sessions/${s.id}/stream?last_id=${encodeURIComponent(lastSeen)}`, b.token('watcher', org));
  await waitUntil('subscribed and the missed events', () => back.messages.filter((m) => m.type !== 'sync_pulse' && m.type !== 'heartbeat').length >= 4);
  const got = back.messages.filter((m) => m.type !== 'sync_pulse' && m.type !== 'heartbeat');
  assert.equal(got[0].type, 'subscribed');
  assert.deepEqual({ ...got[0].payload }, { mesh_id: s.id, status: 'active', participant_count: 1, breathing_rate_bpm: 6, last_id: lastSeen, replayed: 3, complete: true });
  assert.deepEqual(got.slice(1, 4).map((m) => m.id), missed);

  // From the pulse: the events routed from 2 s before it, so the three missed ones, and the
  // window the client had (routed within the margin) again, which its id tells.
  const fromPulse = client(b, `/v1/mesh/sessions/${s.id}/stream?last_id=${encodeURIComponent(lastPulse)}`, b.token('watcher', org));
  await waitUntil('subscribed from the pulse', () => ofType(fromPulse, 'subscribed').length === 1 && fromPulse.messages.filter((m) => m.type === 'group_coherence' || m.type === 'participant_joined').length >= 3);
  const sub = ofType(fromPulse, 'subscribed')[0].payload!;
  assert.deepEqual([sub.last_id, sub.complete], [lastPulse, true]);
  const replayed = fromPulse.messages.filter((m) => m.type === 'group_coherence' || m.type === 'participant_joined').map((m) => m.id);
  assert.deepEqual(replayed.filter((id) => id !== lastSeen), missed, 'every missed event, in order');
  assert.equal(sub.replayed, replayed.length);
  fromPulse.ws.close();

  // The same through a subscribe message: nothing after the newest; an unknown id gets all kept
  // that this socket was not sent (the first window, seen by the socket before), complete false.
  back.ws.send(JSON.stringify({ type: 'subscribe', payload: { lastVersion: missed[2] } }));
  back.ws.send(JSON.stringify({ type: 'subscribe', payload: { lastVersion: 'no-such-id' } }));
  await waitUntil('two more subscribed', () => ofType(back, 'subscribed').length === 3);
  const [, newest, unknown] = ofType(back, 'subscribed');
  assert.deepEqual([newest.payload!.replayed, newest.payload!.complete], [0, true]);
  assert.deepEqual([unknown.payload!.replayed, unknown.payload!.complete], [1, false]);
  await waitUntil('the first window again', () => ofType(back, 'group_coherence').some((m) => m.id === lastSeen));
  assert.equal(ofType(back, 'group_coherence').length, 3, 'each window once on this socket');
  back.ws.close();
  reference.ws.close();
  await waitUntil('closed', () => back.closed && reference.closed && fromPulse.closed);
});

test('a later subscribe reports the group as it is then: participants who joined since, and its end', async () => {
  const org = 'org-resub';
  const host = a.token('host', org);
  const s = (await a.request('POST', '/v1/mesh/sessions', { token: host, body: { name: 'Later', breathing_rate_bpm: 6, max_participants: 5 } })).body;
  const watcher = client(b, `/v1/mesh/sessions/${s.id}/stream`, b.token('watcher', org));
  await waitUntil('subscribed', () => ofType(watcher, 'subscribed').length === 1);
  assert.equal(ofType(watcher, 'subscribed')[0].payload!.participant_count, 0);
  await a.request('POST', `/v1/mesh/sessions/${s.id}/join`, { token: a.token('ua', org) });
  await waitUntil('participant_joined', () => ofType(watcher, 'participant_joined').length === 1);
  watcher.ws.send(JSON.stringify({ type: 'subscribe' }));
  await waitUntil('subscribed again', () => ofType(watcher, 'subscribed').length === 2);
  assert.deepEqual(ofType(watcher, 'subscribed')[1].payload, { mesh_id: s.id, status: 'active', participant_count: 1, breathing_rate_bpm: 6 });
  assert.equal((await a.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: host })).status, 200);
  await waitUntil('session_ended', () => ofType(watcher, 'session_ended').length === 1);
  watcher.ws.send(JSON.stringify({ type: 'subscribe' }));
  await waitUntil('subscribed a third time', () => ofType(watcher, 'subscribed').length === 3);
  assert.equal(ofType(watcher, 'subscribed')[2].payload!.status, 'ended');
  watcher.ws.close();
  await waitUntil('closed', () => watcher.closed);
});

test('a session that ends by its duration (no end call) sends session_ended at its planned end, once, and its pulse stops', async () => {
  const org = 'org-live-duration';
  const host = a.token('host', org);
  // Started 54 s ago, 60 s long: it ends about 6 s from now (time to create, join and attach
  // on a loaded machine).
  const start = Date.now() - 54_000;
  const created = await a.request('POST', '/v1/mesh/sessions', { token: host, body: { name: 'Short circle', breathing_rate_bpm: 6, duration: 60, scheduled_start: new Date(start).toISOString() } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const s = created.body;
  await a.request('POST', `/v1/mesh/sessions/${s.id}/join`, { token: a.token('ua', org) });
  const watcher = client(b, `/v1/mesh/sessions/${s.id}/stream`, b.token('watcher', org));
  await waitUntil('session_ended', () => ofType(watcher, 'session_ended').length >= 1, 20_000);
  const [ended] = ofType(watcher, 'session_ended');
  assert.equal(ended.id, `${s.id}:session_ended`, 'the id the end call would give it');
  assert.deepEqual(ended.payload, { ended_at: s.scheduled_end, participant_count: 1 });
  assert.equal(ended.timestamp, s.scheduled_end);
  const pulses = watcher.messages.filter((m) => m.type === 'sync_pulse');
  assert.ok(pulses.every((m) => Date.parse(m.timestamp!) < Date.parse(s.scheduled_end)), 'pulses only before the end');
  const afterEnd = watcher.messages.length;
  // Nothing more: no second session_ended, no pulse (two pulse periods).
  await new Promise((r) => setTimeout(r, 1200));
  assert.deepEqual(watcher.messages.slice(afterEnd), []);
  watcher.ws.close();
  await waitUntil('closed', () => watcher.closed);
});
