// GET and PATCH /v1/users/me over HTTP: validation, scopes, defaults of a user without data,
// and the end of a session with notes and a rating (the document's examples themselves:
// test/conformance/coherence-platform.test.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAttune, type TestAttune } from '../test/attune.js';

const SCOPES = ['read:user', 'write:user', 'read:sessions', 'write:sessions'];
let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

test('a new user: defaults, zero stats, null baseline, no devices', async () => {
  const me = await app.request('GET', '/v1/users/me', { token: app.token('u-new', 'o-users', SCOPES) });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.deepEqual(me.body.preferences, { notifications_enabled: true, reminder_time: null, timezone: 'UTC' });
  assert.deepEqual(me.body.stats, { total_sessions: 0, total_coherence_minutes: 0, current_streak: 0, longest_streak: 0, average_coherence: null, mesh_sessions_joined: 0 });
  assert.deepEqual(me.body.baseline, { resting_hrv: null, resting_hr: null, coherence_threshold: 0.5, window_count: 0 });
  assert.deepEqual(me.body.devices, []);
  assert.deepEqual([me.body.id, me.body.org_id, me.body.tier], ['u-new', 'o-users', 'enterprise']);
});

test('PATCH: only the fields given change; time zones are IANA names; reminder_time HH:MM or null', async () => {
  const token = app.token('u-patch', 'o-users', SCOPES);
  const a = await app.request('PATCH', '/v1/users/me', { token, body: { preferences: { timezone: 'Europe/Berlin', reminder_time: '21:15' } } });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.deepEqual([a.body.display_name, a.body.preferences], ['', { notifications_enabled: true, reminder_time: '21:15', timezone: 'Europe/Berlin' }]);
  const b = await app.request('PATCH', '/v1/users/me', { token, body: { display_name: 'Kim', preferences: { reminder_time: null } } });
  assert.deepEqual([b.body.display_name, b.body.preferences.reminder_time, b.body.preferences.timezone], ['Kim', null, 'Europe/Berlin']);

  const refused: Array<[unknown, string, string]> = [
    [{ preferences: { timezone: 'Mars/Olympus' } }, '/preferences/timezone', 'invalid_value'],
    [{ preferences: { timezone: '+05:00' } }, '/preferences/timezone', 'invalid_value'],
    [{ preferences: { reminder_time: '7:30' } }, '/preferences/reminder_time', 'invalid_format'],
    [{ preferences: { reminder_time: '24:00' } }, '/preferences/reminder_time', 'invalid_format'],
    [{ preferences: { notifications_enabled: 'yes' } }, '/preferences/notifications_enabled', 'invalid_type'],
    [{ display_name: '' }, '/display_name', 'invalid_length'],
    [{ email: 'x@example.com' }, '/email', 'unknown_field'],
  ];
  for (const [body, field, reason] of refused) {
    const res = await app.request('PATCH', '/v1/users/me', { token, body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.deepEqual([res.body.error.details[0].field, res.body.error.details[0].reason], [field, reason], JSON.stringify(res.body));
  }
  const after = await app.request('GET', '/v1/users/me', { token });
  assert.deepEqual([after.body.display_name, after.body.preferences.timezone, after.body.preferences.reminder_time], ['Kim', 'Europe/Berlin', null], 'refused changes changed nothing');
});

test('scopes: read:user to read, write:user to change; each user sees only themselves', async () => {
  const readOnly = app.token('u-scope', 'o-users', ['read:user']);
  assert.equal((await app.request('GET', '/v1/users/me', { token: readOnly })).status, 200);
  const patch = await app.request('PATCH', '/v1/users/me', { token: readOnly, body: { display_name: 'x' } });
  assert.deepEqual([patch.status, patch.body.error.code], [403, 'forbidden']);
  const none = await app.request('GET', '/v1/users/me', { token: app.token('u-scope', 'o-users', ['read:sessions']) });
  assert.equal(none.status, 403);
  await app.request('PATCH', '/v1/users/me', { token: app.token('u-a', 'o-users', SCOPES), body: { display_name: 'A' } });
  const sameSubjectOtherOrg = await app.request('GET', '/v1/users/me', { token: app.token('u-a', 'o-other', SCOPES) });
  assert.equal(sameSubjectOtherOrg.body.display_name, '', 'the same subject in another organisation is another user');
});

test('sessions: the end stores notes and a rating 1-5; a rating out of range is refused; total_sessions counts them', async () => {
  const token = app.token('u-end', 'o-users', SCOPES);
  const s = await app.request('POST', '/v1/sessions', { token, body: { type: 'solo', protocol: 'gratitude_focus', target_duration: 900, intention: 'calm' } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const bad = await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token, body: { subjective_rating: 6 } });
  assert.equal(bad.status, 400);
  // An unknown session is a 404 naming the path parameter.
  const unknown = await app.request('GET', '/v1/sessions/00000000-0000-4000-8000-000000000000', { token });
  assert.deepEqual([unknown.status, unknown.body.error.code, unknown.body.error.details], [404, 'not_found', [{ field: 'session_id', reason: 'not_found' }]]);
  // An end before the start is refused, naming the field (it was clamped to a 0 s session).
  const early = await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token, body: { ended_at: new Date(Date.parse(s.body.started_at) - 60_000).toISOString() } });
  assert.deepEqual([early.status, early.body.error?.details?.[0]?.field, early.body.error?.details?.[0]?.reason], [400, '/ended_at', 'out_of_range']);
  assert.equal((await app.request('GET', `/v1/sessions/${s.body.id}`, { token })).body.status, 'active', 'a refused end ends nothing');
  const end = await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token, body: { notes: 'ok', subjective_rating: 5 } });
  assert.deepEqual([end.status, end.body.status, end.body.notes, end.body.subjective_rating, end.body.intention], [200, 'completed', 'ok', 5, 'calm']);
  // Ending again without them keeps them.
  const again = await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token });
  assert.deepEqual([again.body.notes, again.body.subjective_rating], ['ok', 5]);
  // A session started without a protocol keeps Attune's vocabulary.
  const plain = await app.request('POST', '/v1/sessions', { token, body: {} });
  const plainEnd = await app.request('POST', `/v1/sessions/${plain.body.id}/end`, { token });
  assert.deepEqual([plainEnd.body.status, plainEnd.body.protocol], ['ended', null]);
  const list = await app.request('GET', '/v1/sessions', { token });
  assert.deepEqual(list.body.data.map((x: { status: string }) => x.status).sort(), ['completed', 'ended']);
  // The list filters by the status it answers: `completed` (the document's word) lists ended sessions, as `ended` does.
  for (const status of ['completed', 'ended']) {
    const ended = await app.request('GET', `/v1/sessions?status=${status}`, { token });
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    assert.deepEqual(ended.body.data.map((x: { id: string }) => x.id).sort(), [s.body.id, plain.body.id].sort(), status);
  }
  assert.deepEqual((await app.request('GET', '/v1/sessions?status=active', { token })).body.data, []);
  assert.equal((await app.request('GET', '/v1/users/me', { token })).body.stats.total_sessions, 2);
});
