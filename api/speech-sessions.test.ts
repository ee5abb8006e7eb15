// Speech session routes over HTTP against chDB: create (validation, defaults, unknown
// settings kept), read with summary, list (filters, cursor pages), scopes and tenant rules.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SpeechSummaryRow } from '../store/rows.js';
import { SPEECH_READ, startSpeechTestServer, type SpeechSessionSeed, type SpeechTestServer } from './speech-api.test-util.js';

let srv: SpeechTestServer;
before(async () => {
  srv = await startSpeechTestServer();
});
after(async () => {
  await srv?.close();
});

test('POST creates a session with the defaults filled in and unknown settings kept; GET reads it back', async () => {
  const token = srv.token('u1', 'o1');
  const res = await srv.request('POST', '/v1/speech-sessions', {
    token,
    body: { title: 'Quarterly review', description: 'Dry run', type: 'presentation', duration: 600, settings: { min_pause_ms: 300, custom_flag: { x: 1 } } },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const s = res.body;
  assert.match(s.id, /^[0-9a-f-]{36}$/);
  assert.equal(s.title, 'Quarterly review');
  assert.equal(s.description, 'Dry run');
  assert.equal(s.type, 'presentation');
  assert.equal(s.duration, 600);
  assert.deepEqual(s.settings, { min_pause_ms: 300, long_pause_ms: 1000, custom_flag: { x: 1 } });
  assert.equal(s.status, 'created');
  assert.equal(s.source, null);
  assert.equal(s.started_at, null);
  assert.equal(s.audio_duration_s, null);
  assert.equal(s.user_id, 'u1');
  assert.ok(Math.abs(Date.parse(s.created_at) - Date.now()) < 60_000);

  // The speech-coaching document's envelope and session beside Attune's fields.
  assert.equal(s.success, true);
  assert.equal(typeof s.meta.requestId, 'string');
  assert.ok(Math.abs(Date.parse(s.meta.timestamp) - Date.now()) < 60_000);
  const doc = s.data.session;
  assert.deepEqual([doc.id, doc.title, doc.description, doc.type, doc.status, doc.createdAt], [s.id, 'Quarterly review', 'Dry run', 'presentation', 'created', s.created_at]);
  assert.deepEqual(doc.settings, { enableRealTimeProcessing: true, enableProsodyAnalysis: true, enableFluencyAnalysis: true, enableScoring: true }, 'each on unless false');
  assert.equal(doc.duration, 600, 'the expected duration until there is audio');
  assert.equal(doc.uploadUrl, `${srv.baseUrl}/v1/speech-sessions/${s.id}/upload`);
  assert.equal(doc.websocketUrl, `${srv.baseUrl.replace(/^http/, 'ws')}/v1/speech-sessions/${s.id}/stream`);

  const got = await srv.request('GET', `/v1/speech-sessions/${s.id}`, { token });
  assert.equal(got.status, 200);
  const attune = (b: Record<string, unknown>) => ({ ...b, summary: undefined, success: undefined, data: undefined, meta: undefined });
  assert.deepEqual(attune(got.body), attune(s));
  assert.equal(got.body.summary, null, 'no summary before the analysis');
  assert.deepEqual({ ...got.body.data.session, mediaUrl: undefined }, { ...doc, mediaUrl: undefined });
  assert.equal(got.body.data.session.mediaUrl, null, 'Attune keeps no audio');
  assert.ok(!('transcript' in got.body.data.session), 'no results inline before the analysis');

  const off = await srv.request('POST', '/v1/speech-sessions', { token, body: { type: 'speech', settings: { enableScoring: false, enableFluencyAnalysis: false } } });
  assert.deepEqual(off.body.data.session.settings, { enableRealTimeProcessing: true, enableProsodyAnalysis: true, enableFluencyAnalysis: false, enableScoring: false });
  assert.deepEqual(off.body.settings, { min_pause_ms: 250, long_pause_ms: 1000, enableScoring: false, enableFluencyAnalysis: false });

  const minimal = await srv.request('POST', '/v1/speech-sessions', { token, body: { type: 'interview' } });
  assert.equal(minimal.status, 201);
  assert.equal(minimal.body.title, '');
  assert.equal(minimal.body.duration, null);
});

test('POST refuses invalid bodies with validation_error naming the field', async () => {
  const token = srv.token('u1', 'o1');
  const cases: Array<[unknown, string]> = [
    [{}, '/type'],
    [{ type: 'lecture' }, '/type'],
    [{ type: 'speech', duration: 0 }, '/duration'],
    [{ type: 'speech', duration: 14_401 }, '/duration'],
    [{ type: 'speech', duration: 12.5 }, '/duration'],
    [{ type: 'speech', settings: { min_pause_ms: 50 } }, '/settings/min_pause_ms'],
    [{ type: 'speech', settings: { model: 'whisper' } }, '/settings/model'],
    [{ type: 'speech', settings: { language: 'fr' } }, '/settings/language'],
    [{ type: 'speech', settings: { min_pause_ms: 800, long_pause_ms: 500 } }, '/settings/long_pause_ms'],
    [{ type: 'speech', settings: [] }, '/settings'],
    [{ type: 'speech', settings: { enableScoring: 'no' } }, '/settings/enableScoring'],
    [{ type: 'speech', colour: 'red' }, '/colour'],
    [{ type: 'speech', title: 'x'.repeat(201) }, '/title'],
  ];
  for (const [body, field] of cases) {
    const res = await srv.request('POST', '/v1/speech-sessions', { token, body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.error.code, 'validation_error');
    assert.equal(res.body.error.details[0].field, field, JSON.stringify(res.body));
  }
});

test('scopes: no token is 401, a missing scope is 403', async () => {
  assert.equal((await srv.request('POST', '/v1/speech-sessions', { body: { type: 'speech' } })).status, 401);
  const readOnly = srv.token('u1', 'o1', SPEECH_READ);
  const post = await srv.request('POST', '/v1/speech-sessions', { token: readOnly, body: { type: 'speech' } });
  assert.equal(post.status, 403);
  assert.equal(post.body.error.code, 'forbidden');
  const heartOnly = srv.token('u1', 'o1', ['read:sessions']);
  const list = await srv.request('GET', '/v1/speech-sessions', { token: heartOnly });
  assert.equal(list.status, 403);
});

test("tenant rules: another user's or another org's session is a 404; the org admin sees it", async () => {
  const owner = srv.token('owner', 'org-t');
  const created = await srv.request('POST', '/v1/speech-sessions', { token: owner, body: { type: 'speech' } });
  const path = `/v1/speech-sessions/${created.body.id}`;
  assert.equal((await srv.request('GET', path, { token: owner })).status, 200);
  const other = await srv.request('GET', path, { token: srv.token('someone-else', 'org-t') });
  assert.equal(other.status, 404);
  assert.equal(other.body.error.code, 'not_found');
  assert.equal((await srv.request('GET', path, { token: srv.token('owner', 'other-org') })).status, 404, 'same user id in another org');
  assert.equal((await srv.request('GET', path, { token: srv.token('admin', 'org-t', [...SPEECH_READ, 'admin:org']) })).status, 200);
  assert.equal((await srv.request('GET', path, { token: srv.token('admin', 'other-org', [...SPEECH_READ, 'admin:org']) })).status, 404);
  assert.equal((await srv.request('GET', '/v1/speech-sessions/does-not-exist', { token: owner })).status, 404);
});

function sessionRow(i: number, over: Partial<SpeechSessionSeed>): SpeechSessionSeed {
  return { orgId: 'org-l', userId: 'ua', title: `s${i}`, createdAt: Date.UTC(2025, 2, 1 + i, 10, 0, 0), ...over };
}

test('GET list: own sessions newest first, filters by status, type and dates, cursor pages; admins see the org', async () => {
  await srv.seedSpeechSessions([
    sessionRow(0, {}),
    sessionRow(1, { kind: 'interview' }),
    sessionRow(2, { status: 'completed', source: 'upload', startedAt: Date.UTC(2025, 2, 3, 10, 5), sampleRateHz: 44_100, audioDurationS: 61.5 }),
    sessionRow(3, { userId: 'ub' }),
    sessionRow(4, { kind: 'interview', status: 'completed' }),
    sessionRow(5, {}),
  ]);
  // s5 changes status later: it is listed once, as it is now.
  await srv.entities.client.query(`UPDATE speech_sessions SET status = 'failed', updated_at = $1, version = version + 1 WHERE title = 's5'`, [new Date(Date.UTC(2025, 2, 7))]);
  const ua = srv.token('ua', 'org-l', SPEECH_READ);
  const titles = async (q: string, token = ua) => {
    const res = await srv.request('GET', `/v1/speech-sessions${q}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items.map((s: { title: string }) => s.title);
  };
  assert.deepEqual(await titles(''), ['s5', 's4', 's2', 's1', 's0']);
  assert.deepEqual(await titles('?status=completed'), ['s4', 's2']);
  assert.deepEqual(await titles('?status=failed'), ['s5']);
  assert.deepEqual(await titles('?status=created'), ['s1', 's0'], 'the replaced version of s5 is not listed');
  assert.deepEqual(await titles('?type=interview'), ['s4', 's1']);
  assert.deepEqual(await titles('?from=2025-03-02&to=2025-03-05'), ['s4', 's2', 's1'], 'to as a date includes that day');
  assert.deepEqual(await titles('?from=2025-03-03T10:00:00Z&to=2025-03-05T10:00:00Z'), ['s2'], 'to as a timestamp is exclusive');
  assert.deepEqual(await titles('', srv.token('boss', 'org-l', [...SPEECH_READ, 'admin:org'])), ['s5', 's4', 's3', 's2', 's1', 's0']);
  assert.deepEqual(await titles('?user_id=ub', srv.token('boss', 'org-l', [...SPEECH_READ, 'admin:org'])), ['s3']);

  const full = await srv.request('GET', '/v1/speech-sessions?status=completed&type=speech', { token: ua });
  const s2 = full.body.items[0];
  assert.equal(s2.source, 'upload');
  assert.equal(s2.started_at, '2025-03-03T10:05:00.000Z');
  assert.equal(s2.sample_rate_hz, 44_100);
  assert.equal(s2.audio_duration_s, 61.5);

  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const res: { body: { items: Array<{ title: string }>; pagination: { next_cursor: string | null; has_more: boolean; limit: number } } } = await srv.request(
      'GET',
      `/v1/speech-sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      { token: ua },
    );
    pages.push(res.body.items.map((s) => s.title));
    assert.equal(res.body.pagination.limit, 2);
    assert.equal(res.body.pagination.has_more, res.body.pagination.next_cursor !== null);
    cursor = res.body.pagination.next_cursor;
  } while (cursor);
  assert.deepEqual(pages, [['s5', 's4'], ['s2', 's1'], ['s0']]);

  // The speech-coaching document's paging: page and limit, data.sessions and data.pagination.
  const docPage = async (q: string) => {
    const res = await srv.request('GET', `/v1/speech-sessions${q}`, { token: ua });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { titles: res.body.data.sessions.map((s: { title: string }) => s.title), pagination: res.body.data.pagination, items: res.body.items.length };
  };
  assert.deepEqual(await docPage('?page=2&limit=2'), { titles: ['s2', 's1'], pagination: { page: 2, limit: 2, total: 5, pages: 3 }, items: 2 });
  assert.deepEqual(await docPage('?page=3&limit=2'), { titles: ['s0'], pagination: { page: 3, limit: 2, total: 5, pages: 3 }, items: 1 });
  assert.deepEqual(await docPage('?page=4&limit=2'), { titles: [], pagination: { page: 4, limit: 2, total: 5, pages: 3 }, items: 0 });
  assert.deepEqual((await docPage('?page=1')).pagination, { page: 1, limit: 20, total: 5, pages: 1 }, "the document's default limit");
  assert.deepEqual((await docPage('?startDate=2025-03-02&endDate=2025-03-05&status=completed')).titles, ['s4', 's2'], 'startDate and endDate are from and to');
  assert.deepEqual((await docPage('?type=interview')).pagination, { page: 1, limit: 20, total: 2, pages: 1 });
  const listed = (await srv.request('GET', '/v1/speech-sessions?status=completed&type=speech', { token: ua })).body.data.sessions[0];
  assert.equal(listed.duration, 61.5, 'the document\'s duration is the audio\'s once there is some');
  assert.equal(listed.status, 'completed');
  assert.equal(listed.score, null, 'no scores stored');
  assert.match(listed.uploadUrl, /^http:\/\/.+\/v1\/speech-sessions\/[0-9a-f-]+\/upload$/);
  assert.match(listed.websocketUrl, /^ws:\/\/.+\/v1\/speech-sessions\/[0-9a-f-]+\/stream$/);

  const forbidden = await srv.request('GET', '/v1/speech-sessions?user_id=ub', { token: ua });
  assert.equal(forbidden.status, 403);
  for (const q of ['?cursor=nonsense', '?from=2025-02-30', '?to=yesterday', '?status=done', '?limit=0', '?from=2025-03-05&to=2025-03-01', '?page=0', '?page=1&cursor=x', '?from=2025-03-01&startDate=2025-03-01', '?endDate=soon']) {
    const res = await srv.request('GET', `/v1/speech-sessions${q}`, { token: ua });
    assert.equal(res.status, 400, q);
    assert.equal(res.body.error.code, 'validation_error', q);
  }
});

test('GET one: the summary once speech_summaries has a row (the latest version)', async () => {
  const token = srv.token('u-sum', 'o-sum');
  const created = await srv.request('POST', '/v1/speech-sessions', { token, body: { type: 'speech' } });
  const id = created.body.id;
  const base: SpeechSummaryRow = {
    session_id: id, stream_id: 'upload-1', org_id: 'o-sum', user_id: 'u-sum', audio_started_at: Date.UTC(2025, 4, 1), duration_ms: 90_000, speech_ms: 72_000,
    word_count: 210, speaking_rate_wpm: 180, articulation_rate_wpm: 175, pause_count: 12, long_pause_count: 2, pause_ratio: 0.2,
    mean_pause_ms: 640, filler_count: 4, filler_rate_per_min: 2.6666667, repetition_count: 1, pitch_mean_hz: 182.5, pitch_sd_hz: 31.2,
    pitch_min_hz: 130, pitch_max_hz: 250, pitch_variability_st: 2.9, monotone: false, volume_mean_dbfs: -23.4, volume_sd_db: 4.1,
    model: 'moonshine-tiny', computed_at: Date.UTC(2025, 4, 1, 0, 2),
  };
  await srv.insertRows('speech_summaries', [{ ...base, word_count: 1, computed_at: base.computed_at - 1000 }, base]);
  const res = await srv.request('GET', `/v1/speech-sessions/${id}`, { token });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.summary, {
    // Speech from first to last over 70 s of the 90 s of audio (210 words at 180 wpm): the filler
    // rate is per minute of that span, as the speaking rate (the stored row's 2.67 a minute of
    // audio is how rows before 12-06 were written).
    duration_s: 90, span_s: 70, speech_s: 72, word_count: 210, speaking_rate_wpm: 180, articulation_rate_wpm: 175, pause_count: 12, long_pause_count: 2,
    pause_ratio: 0.2, mean_pause_ms: 640, filler_count: 4, filler_rate_per_min: 3.43, repetition_count: 1,
    pitch: { mean_hz: 182.5, sd_hz: 31.2, min_hz: 130, max_hz: 250, variability_st: 2.9, monotone: false },
    volume: { mean_dbfs: -23.4, sd_db: 4.1 },
    model: 'moonshine-tiny', computed_at: '2025-05-01T00:02:00.000Z',
  });
});

// WebSocket routes are left out of the document by @fastify/websocket, like /v1/coherence.
test('the speech HTTP routes are in the OpenAPI document', async () => {
  const res = await srv.request('GET', '/docs/json');
  assert.equal(res.status, 200);
  const paths = Object.keys(res.body.paths);
  for (const p of ['/v1/speech-sessions', '/v1/speech-sessions/{id}', '/v1/speech-sessions/{id}/transcript', '/v1/speech-sessions/{id}/metrics', '/v1/speech-sessions/{id}/fluency', '/v1/speech-sessions/{id}/scores']) {
    assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  }
  const create = res.body.paths['/v1/speech-sessions'].post;
  assert.ok(create.requestBody.content['application/json'].schema.properties.settings.properties.min_pause_ms);
  assert.ok(res.body.paths['/v1/speech-sessions/{id}/scores'].get.responses['404']);
});
