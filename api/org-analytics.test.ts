// GET /v1/organizations/{org_id}/analytics against a whole embedded Attune (chDB, PGlite):
// the figures follow the documented rules on windows written straight into coherence_windows
// (this period, the previous one, another organisation, invalid ones) and sessions started
// through the API with their protocols; the token's own organisation only, admin:org only; and
// ClickHouse answers the coherence query from the org_daily_users projection (0010), not
// the windows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import type { CoherenceWindowRow } from '../store/rows.js';
import { coherenceReader, engagementTrend, orgCoherenceQuery, periodBounds, validCoherence } from './org-analytics.js';
import { OrgAnalyticsRepository } from '../store/postgres/org-analytics-repo.js';

const DAY = 86_400_000;
const ORG = 'org-analytics';
const ADMIN_SCOPES = ['admin:org', 'read:sessions', 'write:sessions', 'read:user'];

function window(org: string, user: string, session: string, windowEnd: number, coherence: number | null): CoherenceWindowRow {
  return {
    session_id: session,
    user_id: user,
    org_id: org,
    device_id: `dev-${user}`,
    window_start: windowEnd - 64_000,
    window_end: windowEnd,
    valid: coherence !== null,
    invalid_reason: coherence === null ? 'too_many_artifacts' : null,
    partial: false,
    coverage: 0.98,
    longest_gap_ms: 1100,
    coherence,
    coherence_ratio: coherence === null ? null : coherence / (1 - coherence),
    peak_frequency_hz: coherence === null ? null : 0.1,
    breathing_rate_bpm: coherence === null ? null : 6,
    mean_hr_bpm: coherence === null ? null : 62,
    rmssd_ms: coherence === null ? null : 45,
    sdnn_ms: coherence === null ? null : 50,
    pnn50_pct: coherence === null ? null : 12,
    beat_count: 70,
    artifact_ratio: coherence === null ? 0.6 : 0.01,
    late_beat_count: 0,
    computed_at: windowEnd + 40,
  };
}

/** `n` windows 5 s apart ending at `end`. */
const run = (org: string, user: string, session: string, end: number, n: number, coherence: number | null) =>
  Array.from({ length: n }, (_, i) => window(org, user, session, end - (n - 1 - i) * 5000, coherence));

test('engagementTrend: stable within ±10 %, increasing from nothing, else by the sign', () => {
  assert.deepEqual(
    [engagementTrend(0, 0), engagementTrend(3, 0), engagementTrend(110, 100), engagementTrend(90, 100), engagementTrend(111, 100), engagementTrend(89, 100)],
    ['stable', 'increasing', 'stable', 'stable', 'increasing', 'decreasing'],
  );
});

test('periodBounds: the last N UTC days with today, and the N days before', () => {
  const now = Date.parse('2026-03-10T15:00:00Z');
  const b = periodBounds('7d', now);
  assert.deepEqual([b.prevFrom, b.from, b.to].map((t) => new Date(t).toISOString()), ['2026-02-25T00:00:00.000Z', '2026-03-04T00:00:00.000Z', '2026-03-11T00:00:00.000Z']);
});

describe('organisation analytics over HTTP', () => {
  let app: TestAttune;
  let admin = '';
  const now = Date.now();
  const today = Math.floor(now / DAY) * DAY;

  before(async () => {
    app = await startTestAttune({ entities: 'pglite' });
    admin = app.token('org-admin', ORG, ADMIN_SCOPES);
    // Sessions through the API: 3 started in the last 7 days (2 heart_breath_sync, 1
    // gratitude_focus; two of them ended, 600 s and 900 s), 1 started 10 days ago.
    const users = ['u1', 'u2', 'u3'];
    const start = async (user: string, protocol: string, startedAt: number, endedAt: number | null) => {
      const token = app.token(user, ORG, ADMIN_SCOPES);
      const s = await app.request('POST', '/v1/sessions', { token, body: { type: 'solo', protocol, target_duration: 900, started_at: new Date(startedAt).toISOString() } });
      assert.equal(s.status, 201, JSON.stringify(s.body));
      if (endedAt !== null) {
        const e = await app.request('POST', `/v1/sessions/${s.body.id}/end`, { token, body: { ended_at: new Date(endedAt).toISOString() } });
        assert.equal(e.status, 200, JSON.stringify(e.body));
      }
    };
    const h1 = today - 2 * DAY + 9 * 3600_000;
    await start(users[0], 'heart_breath_sync', h1, h1 + 600_000);
    await start(users[1], 'heart_breath_sync', h1 + 3600_000, h1 + 3600_000 + 900_000);
    await start(users[1], 'gratitude_focus', Math.min(now - 60_000, today + 60_000), null);
    await start(users[0], 'coherence_building', today - 10 * DAY, today - 10 * DAY + 1200_000);
    // A user seen (GET /v1/users/me) who has not practised.
    assert.equal((await app.request('GET', '/v1/users/me', { token: app.token(users[2], ORG, ADMIN_SCOPES) })).status, 200);

    // Windows: this week u1 at 0.6 and u2 at 0.8 (10 each), invalid ones (not counted), the
    // week before u1 at 0.5, another organisation at 0.1 (not counted).
    const rows = [
      ...run(ORG, 'u1', 's1', today - 2 * DAY + 10 * 3600_000, 10, 0.6),
      ...run(ORG, 'u2', 's2', today - DAY + 10 * 3600_000, 10, 0.8),
      ...run(ORG, 'u2', 's2', today - DAY + 11 * 3600_000, 4, null),
      ...run(ORG, 'u1', 's0', today - 10 * DAY + 10 * 3600_000, 10, 0.5),
      ...run('org-other', 'x1', 'sx', today - DAY + 10 * 3600_000, 10, 0.1),
    ];
    await app.store.client.insert({ table: app.store.table('coherence_windows'), values: rows, format: 'JSONEachRow' });
  });
  after(async () => {
    await app?.cleanup();
  });

  test('the documented fields, by the documented rules (7d)', async () => {
    const res = await app.request('GET', `/v1/organizations/${ORG}/analytics?period=7d`, { token: admin });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const b = res.body;
    assert.equal(b.period, '7d');
    // The users table holds u1..u3 (created by their sessions and GET /v1/users/me; the admin token creates no user).
    assert.deepEqual(b.users, { total: 3, active: 2, active_rate: 0.6667 });
    assert.equal(b.sessions.total, 3);
    assert.equal(b.sessions.average_duration, 750, 'mean of 600 s and 900 s; the open session is not counted');
    assert.equal(b.sessions.average_coherence, 0.7);
    assert.equal(b.sessions.time_in_high_coherence, 100, '20 valid windows >= 0.5, 5 s each');
    assert.equal(b.trends.coherence_improvement, 0.2, '0.7 against 0.5 the week before');
    assert.equal(b.trends.engagement_trend, 'increasing', '3 sessions against 1');
    assert.equal(b.trends.top_protocol, 'heart_breath_sync');
    assert.deepEqual(b.wellness_impact, { estimated_stress_reduction: null, productivity_correlation: null }, 'no measurable basis (README), but there for the document\'s clients');
  });

  test('30d and 90d hold both weeks; the default period is 30d', async () => {
    const res = await app.request('GET', `/v1/organizations/${ORG}/analytics`, { token: admin });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.period, '30d');
    assert.equal(res.body.sessions.total, 4);
    assert.equal(res.body.sessions.average_coherence, Number(((10 * 0.6 + 10 * 0.8 + 10 * 0.5) / 30).toFixed(4)));
    assert.equal(res.body.trends.coherence_improvement, null, 'nothing in the 30 days before');
    assert.equal(res.body.trends.engagement_trend, 'increasing');
    const q = await app.request('GET', `/v1/organizations/${ORG}/analytics?period=90d`, { token: admin });
    assert.equal(q.status, 200);
    assert.equal(q.body.sessions.total, 4);
  });

  test('another organisation is 403 other_organisation; without admin:org 403 missing_scope; a bad period 400', async () => {
    const other = await app.request('GET', '/v1/organizations/org-other/analytics', { token: admin });
    assert.deepEqual([other.status, other.body.error.code, other.body.error.details[0].reason], [403, 'forbidden', 'other_organisation']);
    const plain = await app.request('GET', `/v1/organizations/${ORG}/analytics`, { token: app.token('u1', ORG, ['read:sessions']) });
    assert.deepEqual([plain.status, plain.body.error.details[0].reason], [403, 'missing_scope']);
    const bad = await app.request('GET', `/v1/organizations/${ORG}/analytics?period=1y`, { token: admin });
    assert.deepEqual([bad.status, bad.body.error.details[0].reason], [400, 'invalid_value']);
  });

  test('an organisation with nothing: zeros and nulls, not errors', async () => {
    const res = await app.request('GET', '/v1/organizations/org-empty/analytics?period=7d', { token: app.token('a', 'org-empty', ADMIN_SCOPES) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.users, { total: 0, active: 0, active_rate: 0 });
    assert.deepEqual(res.body.sessions, { total: 0, average_duration: null, average_coherence: null, time_in_high_coherence: 0 });
    assert.deepEqual(res.body.trends, { coherence_improvement: null, engagement_trend: 'stable', top_protocol: null });
  });

  test('ClickHouse reads the org_daily_users projection for the coherence query', async () => {
    const { prevFrom, from, to } = periodBounds('30d', now);
    const ymd = (t: number) => new Date(t).toISOString().slice(0, 10);
    const rs = await app.store.client.query({
      query: `EXPLAIN ${orgCoherenceQuery(app.database)}`,
      query_params: { org: ORG, prevFrom: ymd(prevFrom), from: ymd(from), to: ymd(to) },
      format: 'JSONEachRow',
    });
    const plan = ((await rs.json()) as Array<{ explain: string }>).map((r) => r.explain).join('\n');
    assert.match(plan, /org_daily_users/, plan);
  });

  test('a kept coherence answer is served only while coherence_windows is unchanged: after an insert, a replayed window, a merge and a delete each answer equals a fresh computation', async () => {
    const C = 'org-cache';
    const token = app.token('c-admin', C, ADMIN_SCOPES);
    const reader = coherenceReader({ clickhouse: app.store.client, database: app.database });
    const ymd = (t: number) => new Date(t).toISOString().slice(0, 10);
    const table = app.store.table('coherence_windows');
    const insert = (rows: CoherenceWindowRow[]) => app.store.client.insert({ table, values: rows, format: 'JSONEachRow' });
    // What the route answers against the query run now, without the cache, for every period.
    const same = async (what: string) => {
      const answers: Record<string, unknown> = {};
      for (const period of ['7d', '30d', '90d'] as const) {
        const res = await app.request('GET', `/v1/organizations/${C}/analytics?period=${period}`, { token });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const { prevFrom, from, to } = periodBounds(period, Date.now());
        const rows = await reader.fresh({ org: C, prevFrom: ymd(prevFrom), from: ymd(from), to: ymd(to) });
        const cur = validCoherence(rows, true);
        const expected = {
          active: Number(cur?.users ?? 0),
          average_coherence: cur && Number(cur.windows) > 0 ? Number((Number(cur.score_sum) / Number(cur.windows)).toFixed(4)) : null,
          time_in_high_coherence: Number(cur?.high_windows ?? 0) * 5,
        };
        const got = { active: res.body.users.active, average_coherence: res.body.sessions.average_coherence, time_in_high_coherence: res.body.sessions.time_in_high_coherence };
        assert.deepEqual(got, expected, `${what}, ${period}`);
        answers[period] = got;
      }
      return answers['7d'] as { active: number; average_coherence: number | null; time_in_high_coherence: number };
    };
    const w1 = run(C, 'c1', 'sc1', today + 3600_000, 10, 0.6);
    await insert(w1);
    assert.deepEqual(await same('first answers'), { active: 1, average_coherence: 0.6, time_in_high_coherence: 50 });
    const before = { ...reader.stats };
    assert.deepEqual(await same('unchanged'), { active: 1, average_coherence: 0.6, time_in_high_coherence: 50 });
    assert.equal(reader.stats.hits - before.hits, 3, 'nothing changed: the three periods served from the cache');
    // A new window of another user.
    await insert([window(C, 'c2', 'sc2', today + 7200_000, 0.2)]);
    assert.deepEqual(await same('after an insert'), { active: 2, average_coherence: Number((6.2 / 11).toFixed(4)), time_in_high_coherence: 50 });
    // A replayed window (the same session and window_end again, a later computed_at): one more
    // part until a merge drops it; the active users, a set, do not change.
    await insert([{ ...w1[9], computed_at: w1[9].computed_at + 1000 }]);
    const replayed = await same('after a replayed window');
    assert.equal(replayed.active, 2, 'a replayed window is not a second user');
    await app.store.client.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
    assert.deepEqual(await same('after the merge dropped the copy'), { active: 2, average_coherence: Number((6.2 / 11).toFixed(4)), time_in_high_coherence: 50 });
    // A mutation deleting c2's window.
    await app.store.client.command({ query: `ALTER TABLE ${table} DELETE WHERE org_id = '${C}' AND user_id = 'c2' SETTINGS mutations_sync = 2` });
    assert.deepEqual(await same('after a delete'), { active: 1, average_coherence: 0.6, time_in_high_coherence: 50 });
    // A window marked not valid counts nowhere, even with a score.
    await insert([{ ...window(C, 'c3', 'sc3', today + 3 * 3600_000, 0.9), valid: false, invalid_reason: 'too_many_artifacts' }]);
    assert.deepEqual(await same('after a window not valid'), { active: 1, average_coherence: 0.6, time_in_high_coherence: 50 });
  });

  test('the daily sessions rollup (0007) equals the direct computation after creates, ends, replays, moves and a delete', async () => {
    const R = 'org-rollup';
    const repo = new OrgAnalyticsRepository(app.sql);
    // Every (day, protocol) bucket of the rollup against a GROUP BY over the sessions themselves.
    const buckets = async () => {
      const rollup = await app.sql.query<{ k: string }>(
        `SELECT day::text || '|' || protocol || '|' || started || '|' || ended || '|' || duration_sum_s::text AS k
           FROM org_daily_sessions WHERE org_id = $1 AND started > 0 ORDER BY day, protocol`,
        [R],
      );
      const direct = await app.sql.query<{ k: string }>(
        `SELECT (s.started_at AT TIME ZONE 'UTC')::date::text || '|' || COALESCE(p.protocol, '') || '|' || count(*) || '|' ||
                count(s.ended_at) || '|' || COALESCE(sum(EXTRACT(EPOCH FROM (s.ended_at - s.started_at))), 0)::text AS k
           FROM sessions s LEFT JOIN session_practice p ON p.session_id = s.session_id
          WHERE s.org_id = $1 GROUP BY (s.started_at AT TIME ZONE 'UTC')::date, COALESCE(p.protocol, '') ORDER BY (s.started_at AT TIME ZONE 'UTC')::date, COALESCE(p.protocol, '')`,
        [R],
      );
      return { rollup: rollup.rows.map((r) => r.k), direct: direct.rows.map((r) => r.k) };
    };
    const same = async (what: string) => {
      const b = await buckets();
      assert.deepEqual(b.rollup, b.direct, what);
      for (const period of ['7d', '30d', '90d'] as const) {
        const { prevFrom, from, to } = periodBounds(period, now);
        assert.deepEqual(await repo.sessionFigures(R, prevFrom, from, to), await repo.sessionFiguresDirect(R, prevFrom, from, to), `${what}, ${period}`);
      }
      return b.rollup.length;
    };
    const token = (u: string) => app.token(u, R, ADMIN_SCOPES);
    const ids: string[] = [];
    const create = async (u: string, protocol: string | null, startedAt: number) => {
      const body: Record<string, unknown> = { type: 'solo', target_duration: 900, started_at: new Date(startedAt).toISOString() };
      if (protocol) body.protocol = protocol;
      const s = await app.request('POST', '/v1/sessions', { token: token(u), body });
      assert.equal(s.status, 201, JSON.stringify(s.body));
      ids.push(s.body.id);
      return s.body.id as string;
    };
    const end = async (u: string, id: string, endedAt: number) => {
      const e = await app.request('POST', `/v1/sessions/${id}/end`, { token: token(u), body: { ended_at: new Date(endedAt).toISOString(), notes: 'ok', subjective_rating: 4 } });
      assert.equal(e.status, 200, JSON.stringify(e.body));
    };
    // Creates over three periods' worth of days, with, without and with different protocols
    // (a tie on the last day: the first by name wins), then ends with odd durations (ms).
    const d = (days: number, h: number) => today - days * DAY + h * 3600_000;
    const a = await create('r1', 'gratitude_focus', d(1, 8));
    const b = await create('r2', 'coherence_building', d(1, 9));
    const c = await create('r1', null, d(3, 7));
    const e1 = await create('r3', 'heart_breath_sync', d(12, 6));
    const f = await create('r2', 'heart_breath_sync', d(40, 6));
    await create('r3', 'gratitude_focus', d(100, 6));
    assert.equal(await same('after creates'), 6);
    await end('r1', a, d(1, 8) + 601_234);
    await end('r2', b, d(1, 9) + 899_999);
    await end('r1', c, d(3, 7) + 60_001);
    await end('r3', e1, d(12, 6) + 1_200_500);
    await same('after ends');
    const before = await buckets();
    // Replays: the same ends again through the API (idempotent), the same end and practice
    // rows written again in SQL (an outbox relay or a retried request rewriting a row), and a
    // transaction rolled back after changing a session.
    await end('r1', a, d(1, 8) + 601_234);
    await end('r3', e1, d(12, 6) + 1_200_500);
    await app.sql.query(`UPDATE sessions SET ended_at = ended_at, started_at = started_at, status = status WHERE org_id = $1`, [R]);
    await app.sql.query(
      `INSERT INTO session_practice (session_id, protocol) SELECT session_id, protocol FROM session_practice WHERE session_id = ANY($1::uuid[])
       ON CONFLICT (session_id) DO UPDATE SET protocol = EXCLUDED.protocol`,
      [ids],
    );
    await assert.rejects(
      app.sql.transaction(async (tx) => {
        await tx.query(`UPDATE sessions SET started_at = started_at - interval '20 days' WHERE session_id = $1`, [f]);
        throw new Error('rolled back');
      }),
      /rolled back/,
    );
    assert.deepEqual(await buckets(), before, 'a replay or a rolled-back change leaves the rollup as it was');
    await same('after replays');
    // Changes that move sessions between buckets: a later start, a protocol given afterwards
    // and one changed, a session deleted (its practice row goes with it).
    await app.sql.query(`UPDATE sessions SET started_at = started_at + interval '2 days', ended_at = ended_at + interval '2 days' WHERE session_id = $1`, [e1]);
    await app.sql.query(`INSERT INTO session_practice (session_id, protocol) VALUES ($1, 'coherence_building') ON CONFLICT (session_id) DO UPDATE SET protocol = EXCLUDED.protocol`, [c]);
    await app.sql.query(`UPDATE session_practice SET protocol = 'intention_amplify' WHERE session_id = $1`, [a]);
    await app.sql.query(`DELETE FROM sessions WHERE session_id = $1`, [f]);
    await same('after moves and a delete');
    const res = await app.request('GET', `/v1/organizations/${R}/analytics?period=7d`, { token: token('r1') });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.sessions.total, 3);
    assert.equal(res.body.sessions.average_duration, Math.round((601.234 + 899.999 + 60.001) / 3));
    assert.equal(res.body.trends.top_protocol, 'coherence_building', 'b and c: coherence_building 2, intention_amplify 1');
  });
});
