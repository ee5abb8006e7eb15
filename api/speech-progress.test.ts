// GET /v1/analytics/progress over HTTP against chDB: sessions seeded in the current and the
// previous window (one unscored), the document's overallScore, categoryScores, practiceTime
// and improvements by the documented rules, computed here from the seeded values; another
// user's and another org's sessions left out; metrics selection; a period with no sessions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SPEECH_READ, startSpeechTestServer, type SpeechTestServer } from './speech-api.test-util.js';
import { seedAnalysedSessions, type SeededSession } from './speech-reports.test-util.js';

let srv: SpeechTestServer;
const ORG = 'o-prog';
const DAY = 86_400_000;
let prev: SeededSession[];
let cur: SeededSession[];
let token: string;

before(async () => {
  srv = await startSpeechTestServer();
  token = srv.token('u-p', ORG, SPEECH_READ);
  const now = Date.now();
  // Sessions 0-3: 45 days ago (the previous month); 4-9: 10 days ago (this month, not this week); 9 unscored.
  const all = await seedAnalysedSessions(srv, {
    orgId: ORG, userId: 'u-p', n: 10, startAt: 0, stepMs: 0, startOf: (i) => (i < 4 ? now - 45 * DAY : now - 10 * DAY) + i * 3_600_000, scored: (i) => i !== 9,
  });
  prev = all.slice(0, 4);
  cur = all.slice(4);
  // Much better scores for another user of the org and for u-p in another org: must not count.
  await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-other', n: 5, startAt: now - 5 * DAY, stepMs: 3_600_000 });
  await seedAnalysedSessions(srv, { orgId: 'o-elsewhere', userId: 'u-p', n: 5, startAt: now - 5 * DAY, stepMs: 3_600_000 });
});
after(async () => {
  await srv?.close();
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const r1 = (x: number) => Number(x.toFixed(1));

test('month: the current and previous windows by the documented rules', async () => {
  const res = await srv.request('GET', '/v1/analytics/progress?period=month', { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const a = res.body.data.analytics;
  assert.equal(a.period, 'month');
  const scoredCur = cur.filter((s) => s.overall !== null).map((s) => s.overall!);
  const scoredPrev = prev.map((s) => s.overall!);
  const change = mean(scoredCur) - mean(scoredPrev);
  assert.ok(change >= 1, 'the seed improves');
  assert.deepEqual(a.overallScore, { current: r1(mean(scoredCur)), previous: r1(mean(scoredPrev)), change: r1(change), trend: 'improving' });
  // The seed's categories are the overall score shifted: clarity +1, pace -1, engagement +2, confidence -2.
  assert.deepEqual(a.categoryScores.clarity, { current: r1(mean(scoredCur) + 1), previous: r1(mean(scoredPrev) + 1), change: r1(change) });
  assert.deepEqual(a.categoryScores.confidence, { current: r1(mean(scoredCur) - 2), previous: r1(mean(scoredPrev) - 2), change: r1(change) });
  const total = cur.reduce((x, s) => x + s.durationMs, 0) / 1000;
  assert.deepEqual(a.practiceTime, { total, average: r1(total / cur.length), sessions: cur.length });
  assert.equal(a.improvements.length, 4);
  assert.ok(a.improvements.every((i: { improvement: number; sessions: number }) => i.improvement === r1(change) && i.sessions === scoredCur.length));
});

test('week: nothing in the current week, the month-old sessions are the previous week; no change, no trend', async () => {
  const a = (await srv.request('GET', '/v1/analytics/progress?period=week', { token })).body.data.analytics;
  assert.equal(a.overallScore.current, null);
  assert.equal(a.overallScore.previous, r1(mean(cur.filter((s) => s.overall !== null).map((s) => s.overall!))));
  assert.equal(a.overallScore.change, null);
  assert.equal(a.overallScore.trend, null);
  assert.deepEqual(a.practiceTime, { total: 0, average: null, sessions: 0 });
  assert.deepEqual(a.improvements, []);
});

test('metrics selects the fields; an unknown metric is 400; another user needs admin:org', async () => {
  const a = (await srv.request('GET', '/v1/analytics/progress?metrics=practiceTime', { token })).body.data.analytics;
  assert.deepEqual(Object.keys(a).sort(), ['period', 'practiceTime', 'window']);
  const bad = await srv.request('GET', '/v1/analytics/progress?metrics=practiceTime,mood', { token });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.details[0].field, '?metrics');
  assert.equal((await srv.request('GET', '/v1/analytics/progress?user_id=u-other', { token })).status, 403);
  const admin = srv.token('boss', ORG, ['read:speech', 'admin:org']);
  const other = (await srv.request('GET', '/v1/analytics/progress?user_id=u-other', { token: admin })).body.data.analytics;
  assert.equal(other.practiceTime.sessions, 5);
});
