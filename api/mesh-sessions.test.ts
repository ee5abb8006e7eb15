// The mesh sessions API (issue 11 item 1) on PGlite: the coherence platform document's shapes
// (list, join), capacity (409 mesh_full), private sessions (403 not_invited), joining
// twice, leaving, ending (host only), join requirements, and the group's state and timeline
// from group windows as the group worker will store them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tables, type GroupParticipantWindowRow, type GroupWindowRow } from '../store/rows.js';
import { MESH_ALL, startMeshTestServer, type MeshTestServer } from './mesh-api.test-util.js';
import { CURRENT_WINDOW_MAX_AGE_MS } from './mesh-sessions.js';

let srv: MeshTestServer;
before(async () => {
  srv = await startMeshTestServer({ defaultTier: 'free' });
});
after(async () => {
  await srv?.close();
});

const ORG = 'org-mesh';
const create = (token: string, body: object) => srv.request('POST', '/v1/mesh/sessions', { token, body });
const join = (token: string, id: string, body?: object) => srv.request('POST', `/v1/mesh/sessions/${id}/join`, { token, body });
const reason = (res: { body: any }) => res.body?.error?.details?.[0]?.reason;

describe('mesh sessions API (PGlite)', () => {
  test('create: 201 with the session; the body is validated; the scope mesh:create is required', async () => {
    const host = srv.token('host', ORG, MESH_ALL);
    const res = await create(host, {
      name: 'Family Evening Calm', visibility: 'private', max_participants: 8, scheduled_start: new Date(srv.clock.now + 3_600_000).toISOString(),
      duration: 1200, protocol: 'gratitude_focus', invitation_emails: ['family1@example.com', 'family2@example.com'], invited_user_ids: ['kid'],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const s = res.body;
    assert.deepEqual(
      [s.name, s.type, s.visibility, s.status, s.participant_count, s.max_participants, s.duration, s.protocol, s.breathing_rate_bpm, s.average_coherence],
      ['Family Evening Calm', 'scheduled', 'private', 'scheduled', 0, 8, 1200, 'gratitude_focus', 6, null],
    );
    assert.equal(s.scheduled_end, new Date(srv.clock.now + 3_600_000 + 1_200_000).toISOString());
    assert.deepEqual(s.host, { id: 'host', display_name: 'host', verified: false });
    assert.match(s.websocket_url, new RegExp(`^ws://127\\.0\\.0\\.1:\\d+/v1/mesh/sessions/${s.id}/stream$`));
    const invitations = await srv.entities.client.query<{ n: string | number }>('SELECT count(*) AS n FROM mesh_invitations WHERE mesh_id = $1', [s.id]);
    assert.equal(Number(invitations.rows[0].n), 3);

    for (const [body, field] of [
      [{ visibility: 'public' }, 'name'],
      [{ name: 'x', protocol: 'levitation' }, '/protocol'],
      [{ name: 'x', max_participants: 0 }, '/max_participants'],
      [{ name: 'x', breathing_rate_bpm: 60 }, '/breathing_rate_bpm'],
      [{ name: 'x', invitation_emails: ['not-an-address'] }, '/invitation_emails/0'],
      [{ name: 'x', scheduled_start: '1999-12-31T23:59:59Z' }, '/scheduled_start'],
      [{ name: 'x', scheduled_start: new Date(srv.clock.now + 367 * 86_400_000).toISOString() }, '/scheduled_start'],
      [{ name: 'x', join_requirements: { min_tier: 'gold' } }, '/join_requirements/min_tier'],
    ] as const) {
      const bad = await create(host, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.error.code, 'validation_error');
      assert.ok(JSON.stringify(bad.body.error.details).includes(field), `${JSON.stringify(body)}: ${JSON.stringify(bad.body.error.details)}`);
    }
    const noScope = await create(srv.token('host', ORG, ['mesh:join']), { name: 'x' });
    assert.deepEqual([noScope.status, reason(noScope)], [403, 'missing_scope']);
    assert.equal((await create('', { name: 'x' })).status, 401);
  });

  test("list: the document's shape, ?type=public&status=active, paging with meta; private sessions only for those invited", async () => {
    const org = 'org-mesh-list';
    const host = srv.token('host', org);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await create(host, { name: `Circle ${i}`, max_participants: 10, host_display_name: 'Sarah Kim', join_requirements: { min_tier: i === 0 ? 'pro' : null, min_coherence_history: i === 0 ? 0.6 : null } });
      ids.push(r.body.id);
    }
    const priv = (await create(host, { name: 'Private', visibility: 'private', invited_user_ids: ['friend'] })).body.id;
    await create(host, { name: 'Later', scheduled_start: srv.clock.now + 3_600_000 });
    await srv.request('POST', `/v1/mesh/sessions/${ids[3]}/end`, { token: host });
    const guest = srv.token('guest', org);
    await join(guest, ids[0]).then((r) => assert.equal(r.status, 403, 'the free tier may not join a pro session'));
    await join(srv.token('guest', org, MESH_ALL, 'pro'), ids[1]);

    const res = await srv.request('GET', '/v1/mesh/sessions?type=public&status=active', { token: guest });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['meta', 'sessions']);
    assert.deepEqual(res.body.meta, { total: 3, page: 1, per_page: 10 });
    assert.deepEqual(res.body.sessions.map((s: any) => s.name).sort(), ['Circle 0', 'Circle 1', 'Circle 2']);
    const first = res.body.sessions.find((s: any) => s.name === 'Circle 0');
    for (const k of ['id', 'name', 'type', 'visibility', 'participant_count', 'average_coherence', 'started_at', 'scheduled_end', 'host', 'join_requirements']) {
      assert.ok(k in first, `list item has ${k}`);
    }
    assert.deepEqual(first.host, { id: 'host', display_name: 'Sarah Kim', verified: false });
    assert.deepEqual(first.join_requirements, { min_tier: 'pro', min_coherence_history: 0.6 });
    assert.equal(res.body.sessions.find((s: any) => s.name === 'Circle 1').participant_count, 1);

    const friend = srv.token('friend', org);
    const friendList = await srv.request('GET', '/v1/mesh/sessions?status=active&per_page=2&page=2', { token: friend });
    assert.deepEqual(friendList.body.meta, { total: 4, page: 2, per_page: 2 });
    const privateOnly = await srv.request('GET', '/v1/mesh/sessions?type=private', { token: friend });
    assert.deepEqual(privateOnly.body.sessions.map((s: any) => s.id), [priv]);
    assert.equal((await srv.request('GET', '/v1/mesh/sessions?type=private', { token: guest })).body.meta.total, 0);
    assert.deepEqual((await srv.request('GET', '/v1/mesh/sessions?status=scheduled', { token: guest })).body.sessions.map((s: any) => s.name), ['Later']);
    assert.deepEqual((await srv.request('GET', '/v1/mesh/sessions?status=ended', { token: guest })).body.sessions.map((s: any) => s.name), ['Circle 3']);
    const contradiction = await srv.request('GET', '/v1/mesh/sessions?type=public&visibility=private', { token: guest });
    assert.deepEqual([contradiction.status, reason(contradiction)], [400, 'invalid_value']);
    assert.equal((await srv.request('GET', '/v1/mesh/sessions?per_page=101', { token: guest })).status, 400);
    assert.equal((await srv.request('GET', '/v1/mesh/sessions', { token: srv.token('guest', 'org-elsewhere') })).body.meta.total, 0);
  });

  test("join: the document's fields; joining twice is the same participant; 409 mesh_full at capacity; leave frees the seat", async () => {
    const org = 'org-mesh-join';
    const s = (await create(srv.token('host', org), { name: 'Two seats', max_participants: 2 })).body;
    const a = await join(srv.token('ua', org), s.id, { intention: 'Global peace and harmony', anonymous: false });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(Object.keys(a.body).sort(), ['already_joined', 'group_coherence', 'joined', 'participant_count', 'participant_id', 'position', 'websocket_url', 'your_contribution_weight']);
    assert.deepEqual([a.body.joined, a.body.position, a.body.group_coherence, a.body.your_contribution_weight, a.body.participant_count, a.body.already_joined], [true, 1, null, 0, 1, false]);
    assert.equal(a.body.websocket_url, s.websocket_url);
    const again = await join(srv.token('ua', org), s.id);
    assert.deepEqual([again.status, again.body.participant_id, again.body.position, again.body.already_joined], [200, a.body.participant_id, 1, true]);
    const b = await join(srv.token('ub', org), s.id, { anonymous: true });
    assert.deepEqual([b.body.position, b.body.participant_count], [2, 2]);
    const full = await join(srv.token('uc', org), s.id);
    assert.equal(full.status, 409);
    assert.deepEqual([full.body.error.code, reason(full), full.body.error.details[0].max_participants], ['mesh_full', 'mesh_full', 2]);
    assert.equal((await join(srv.token('ua', org), s.id)).status, 200, 'a present participant is answered at capacity');

    const left = await srv.request('POST', `/v1/mesh/sessions/${s.id}/leave`, { token: srv.token('ub', org) });
    assert.deepEqual([left.status, left.body.left, left.body.participant_id], [200, true, b.body.participant_id]);
    const c = await join(srv.token('uc', org), s.id);
    assert.deepEqual([c.status, c.body.position], [200, 3]);
    assert.equal((await srv.request('POST', `/v1/mesh/sessions/${s.id}/leave`, { token: srv.token('never', org) })).status, 404);
    const detail = await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: srv.token('ub', org) });
    assert.deepEqual(detail.body.you, { participant_id: b.body.participant_id, position: 2, present: false, anonymous: true });
    assert.equal(detail.body.participant_count, 2);

    const other = await join(srv.token('ua', 'org-other'), s.id);
    assert.deepEqual([other.status, reason(other)], [404, 'not_found']);
    const scopeless = await join(srv.token('ud', org, ['mesh:create']), s.id);
    assert.deepEqual([scopeless.status, reason(scopeless)], [403, 'missing_scope']);
    const badDevice = await join(srv.token('ud', org), s.id, { device_id: 'not-mine' });
    assert.deepEqual([badDevice.status, reason(badDevice)], [400, 'not_registered']);
  });

  test('leaving an ended session changes nothing: its participant count stays, left_at is the end for one there to the end', async () => {
    const org = 'org-mesh-leave-ended';
    const host = srv.token('host', org);
    const s = (await create(host, { name: 'Ends', max_participants: 5 })).body;
    await join(srv.token('ua', org), s.id);
    await join(srv.token('ub', org), s.id);
    const ended = await srv.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: host });
    assert.equal(ended.status, 200);
    assert.equal(ended.body.participant_count, 2);
    const late = await srv.request('POST', `/v1/mesh/sessions/${s.id}/leave`, { token: srv.token('ub', org) });
    assert.deepEqual([late.status, late.body.left, late.body.left_at], [200, true, ended.body.ended_at]);
    const after = await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: host });
    assert.equal(after.body.participant_count, 2, 'who was there at the end is its record');
    assert.equal((await srv.request('POST', `/v1/mesh/sessions/${s.id}/leave`, { token: srv.token('never', org) })).status, 404);
  });

  test('concurrent joins for the last seat in one process: exactly one admitted', async () => {
    const org = 'org-mesh-race';
    for (let round = 0; round < 5; round++) {
      const s = (await create(srv.token('host', org), { name: `race ${round}`, max_participants: 1 })).body;
      const results = await Promise.all(['r1', 'r2', 'r3'].map((u) => join(srv.token(u, org), s.id)));
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 409, 409], JSON.stringify(results.map((r) => r.body)));
      const count = await srv.entities.client.query<{ n: string | number }>('SELECT count(*) AS n FROM mesh_participants WHERE mesh_id = $1', [s.id]);
      assert.equal(Number(count.rows[0].n), 1);
    }
  });

  test('private: 403 not_invited to join or read for members not invited; the host and invitees join; 404 for other organisations', async () => {
    const org = 'org-mesh-private';
    const host = srv.token('host', org);
    const s = (await create(host, { name: 'Family', visibility: 'private', invited_user_ids: ['kid'], invitation_emails: ['aunt@example.com'] })).body;
    const stranger = await join(srv.token('stranger', org), s.id);
    assert.deepEqual([stranger.status, stranger.body.error.code, reason(stranger)], [403, 'forbidden', 'not_invited']);
    const read = await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: srv.token('stranger', org) });
    assert.deepEqual([read.status, reason(read)], [403, 'not_invited']);
    assert.equal((await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: srv.token('stranger', 'org-x') })).status, 404);
    assert.equal((await join(host, s.id)).body.position, 1);
    assert.equal((await join(srv.token('kid', org), s.id)).body.position, 2);
    const admin = await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: srv.token('boss', org, [...MESH_ALL, 'admin:org']) });
    assert.equal(admin.status, 200, 'an organisation admin may read it');
  });

  test('end: host (or admin) only, idempotent; an ended session cannot be joined (409 mesh_ended)', async () => {
    const org = 'org-mesh-end';
    const host = srv.token('host', org);
    const s = (await create(host, { name: 'To end' })).body;
    await join(srv.token('ua', org), s.id);
    const notHost = await srv.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: srv.token('ua', org) });
    assert.deepEqual([notHost.status, reason(notHost)], [403, 'not_host']);
    srv.clock.now += 60_000;
    const ended = await srv.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: host });
    assert.deepEqual([ended.status, ended.body.status, ended.body.ended_at, ended.body.participant_count], [200, 'ended', new Date(srv.clock.now).toISOString(), 1]);
    srv.clock.now += 1000;
    assert.deepEqual((await srv.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: host })).body, ended.body);
    const late = await join(srv.token('ub', org), s.id);
    assert.deepEqual([late.status, reason(late)], [409, 'mesh_ended']);
    const admin = srv.token('boss', org, [...MESH_ALL, 'admin:org']);
    const s2 = (await create(host, { name: 'Admin ends it' })).body;
    assert.equal((await srv.request('POST', `/v1/mesh/sessions/${s2.id}/end`, { token: admin })).body.status, 'ended');
  });

  test('join requirements: min_tier against the token tier (default tier without one); min_coherence_history against the last 30 days of valid windows', async () => {
    const org = 'org-mesh-req';
    const host = srv.token('host', org);
    const s = (await create(host, { name: 'Pro only', join_requirements: { min_tier: 'pro' } })).body;
    const free = await join(srv.token('ua', org), s.id);
    assert.deepEqual([free.status, reason(free), free.body.error.details[0].current_tier], [403, 'insufficient_tier', 'free']);
    assert.equal((await join(srv.token('ua', org, MESH_ALL, 'plus'), s.id)).status, 403);
    assert.equal((await join(srv.token('ua', org, MESH_ALL, 'enterprise'), s.id)).status, 200);
    assert.equal((await join(host, s.id)).status, 200, 'the host needs no tier');

    const h = (await create(host, { name: 'Experienced', join_requirements: { min_coherence_history: 0.6 } })).body;
    const none = await join(srv.token('novice', org), h.id);
    assert.deepEqual([none.status, reason(none)], [403, 'insufficient_coherence_history']);
    const windows = (user: string, coherence: number, ageDays: number) =>
      [0, 1, 2].map((i) => ({
        session_id: `s-${user}`, user_id: user, org_id: org, device_id: 'd', window_start: srv.clock.now - ageDays * 86_400_000 - 64_000 + i * 5000,
        window_end: srv.clock.now - ageDays * 86_400_000 + i * 5000, valid: true, invalid_reason: null, partial: false, coverage: 0.99, longest_gap_ms: 1000,
        coherence, coherence_ratio: coherence / (1 - coherence), peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 60, rmssd_ms: 40, sdnn_ms: 50,
        pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0, computed_at: srv.clock.now,
      }));
    await srv.insertRows(Tables.coherenceWindows, [...windows('calm', 0.7, 2), ...windows('tense', 0.4, 2), ...windows('tense', 0.9, 40)]);
    assert.equal((await join(srv.token('calm', org), h.id)).status, 200);
    const tense = await join(srv.token('tense', org), h.id);
    assert.deepEqual([tense.status, tense.body.error.details[0].current], [403, 0.4], 'windows older than 30 days do not count');
  });

  test("get: the group's state and timeline from group_windows; the list's average_coherence and join's weights from the latest windows", async () => {
    const org = 'org-mesh-timeline';
    const host = srv.token('host', org);
    const s = (await create(host, { name: 'Live group', max_participants: 10 })).body;
    const a = (await join(srv.token('ua', org), s.id)).body;
    const empty = await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: host });
    assert.deepEqual([empty.body.timeline, empty.body.state.coherence, empty.body.state.window_end, empty.body.you], [[], null, null, null]);

    const end = Math.floor(srv.clock.now / 5000) * 5000;
    const gw = (windowEnd: number, coherence: number, r: number): GroupWindowRow => ({
      org_id: org, group_id: s.id, window_start: windowEnd - 64_000, window_end: windowEnd, participant_count: 2, present_count: 2, coherence, sync_r: r, plv: r - 0.1,
      sync_z: 3.2, sync_p: 0.0099, surrogate_count: 100, breathing_sync: 0.8, xcorr_max: null, xcorr_lag_s: null, computed_at: windowEnd + 100,
    });
    await srv.insertRows(Tables.groupWindows, [gw(end - 10_000, 0.5, 0.6), gw(end - 5000, 0.6, 0.7), gw(end, 0.7, 0.8)]);
    // Written twice (a replayed input): the same answers.
    await srv.insertRows(Tables.groupWindows, [gw(end, 0.7, 0.8)]);
    const pw: GroupParticipantWindowRow = {
      org_id: org, group_id: s.id, participant_id: a.participant_id, user_id: 'ua', window_end: end, counted: true, coherence: 0.72, contribution_weight: 0.55,
      phase_locking: 0.9, breathing_rate_bpm: 6, breathing_sync: 0.9, artifact_ratio: 0.01, coverage: 0.99, computed_at: end + 100,
    };
    await srv.insertRows(Tables.groupParticipantWindows, [pw]);

    const got = await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: srv.token('ua', org) });
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.deepEqual(got.body.timeline.map((p: any) => [p.timestamp, p.coherence, p.sync_r]), [
      [new Date(end - 10_000).toISOString(), 0.5, 0.6],
      [new Date(end - 5000).toISOString(), 0.6, 0.7],
      [new Date(end).toISOString(), 0.7, 0.8],
    ]);
    assert.deepEqual(got.body.state, { window_end: new Date(end).toISOString(), participant_count: 2, coherence: 0.7, sync_r: 0.8, plv: 0.7, sync_z: 3.2, sync_p: 0.0099, breathing_sync: 0.8 });
    assert.equal(got.body.average_coherence, 0.7, 'active: the latest window');
    const again = await join(srv.token('ua', org), s.id);
    assert.deepEqual([again.body.group_coherence, again.body.your_contribution_weight], [0.7, 0.55]);
    const listed = await srv.request('GET', '/v1/mesh/sessions?status=active', { token: host });
    assert.equal(listed.body.sessions.find((x: any) => x.id === s.id).average_coherence, 0.7);

    srv.clock.now = end + CURRENT_WINDOW_MAX_AGE_MS;
    assert.equal((await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: host })).body.average_coherence, 0.7, 'still current at the bound');
    srv.clock.now = end + CURRENT_WINDOW_MAX_AGE_MS + 1_000;
    assert.equal((await srv.request('GET', `/v1/mesh/sessions/${s.id}`, { token: host })).body.average_coherence, null, 'no window within CURRENT_WINDOW_MAX_AGE_MS');
    assert.equal((await join(srv.token('ua', org), s.id)).body.your_contribution_weight, 0);
    const ended = await srv.request('POST', `/v1/mesh/sessions/${s.id}/end`, { token: host });
    assert.equal(ended.body.average_coherence, 0.6, 'ended: the mean over its windows');
  });

  test("the coherence platform document's mesh examples, sent as written, answer every documented field", async () => {
    const org = 'org-mesh-doc';
    const pro = srv.token('usr_host123', org, MESH_ALL, 'pro');
    // Create Mesh Session (Pro+): the document's body, unchanged (its start is in the past: the session is over).
    const created = await srv.request('POST', '/v1/mesh/sessions', {
      token: pro,
      body: JSON.parse(`{
  "name": "Family Evening Calm",
  "visibility": "private",
  "max_participants": 8,
  "scheduled_start": "2026-01-31T21:00:00Z",
  "duration": 1200,
  "protocol": "gratitude_focus",
  "invitation_emails": [
    "family1@example.com",
    "family2@example.com"
  ]
}`),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual([created.body.started_at, created.body.scheduled_end, created.body.status], ['2026-01-31T21:00:00.000Z', '2026-01-31T21:20:00.000Z', 'ended']);

    const open = (await create(pro, { name: 'Morning Coherence Circle', host_display_name: 'Sarah Kim', join_requirements: { min_tier: 'pro', min_coherence_history: null } })).body;
    // List Active Mesh Sessions: ?type=public&status=active.
    const list = await srv.request('GET', '/v1/mesh/sessions?type=public&status=active', { token: pro });
    assert.equal(list.status, 200);
    const item = list.body.sessions.find((x: any) => x.id === open.id);
    const types: Record<string, string> = {
      id: 'string', name: 'string', type: 'string', visibility: 'string', participant_count: 'number', started_at: 'string', scheduled_end: 'object',
      host: 'object', join_requirements: 'object',
    };
    for (const [k, t] of Object.entries(types)) assert.equal(typeof item[k], t, `sessions[].${k}`);
    assert.ok('average_coherence' in item, 'sessions[].average_coherence (null until the group worker writes a window)');
    assert.deepEqual(Object.keys(item.host).sort(), ['display_name', 'id', 'verified']);
    assert.deepEqual(Object.keys(item.join_requirements).sort(), ['min_coherence_history', 'min_tier']);
    assert.deepEqual(Object.keys(list.body.meta).sort(), ['page', 'per_page', 'total']);

    // Join Mesh Session: the document's body, unchanged.
    const joined = await srv.request('POST', `/v1/mesh/sessions/${open.id}/join`, { token: srv.token('usr_abc', org, MESH_ALL, 'pro'), body: JSON.parse('{\n  "intention": "Global peace and harmony",\n  "anonymous": false\n}') });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    for (const [k, t] of Object.entries({ joined: 'boolean', participant_id: 'string', position: 'number', websocket_url: 'string', your_contribution_weight: 'number' })) {
      assert.equal(typeof joined.body[k], t, k);
    }
    assert.ok('group_coherence' in joined.body);
  });
});
