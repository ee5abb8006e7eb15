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
  // Empty (or only commas): the default, every metric, as without the parameter.
  const all = (await srv.request('GET', '/v1/analytics/progress', { token })).body.data.analytics;
  for (const q of ['metrics=', 'metrics=,']) assert.deepEqual(Object.keys((await srv.request('GET', `/v1/analytics/progress?${q}`, { token })).body.data.analytics).sort(), Object.keys(all).sort(), q);
  const bad = await srv.request('GET', '/v1/analytics/progress?metrics=practiceTime,mood', { token });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.details[0].field, '?metrics');
  assert.equal((await srv.request('GET', '/v1/analytics/progress?user_id=u-other', { token })).status, 403);
  const admin = srv.token('boss', ORG, ['read:speech', 'admin:org']);
  const other = (await srv.request('GET', '/v1/analytics/progress?user_id=u-other', { token: admin })).body.data.analytics;
  assert.equal(other.practiceTime.sessions, 5);
});

test('change is the difference of the current and previous figures as shown (each to 0.1), and the trend follows it', async () => {
  // One scored session per window and user, with scores whose means round apart: 85.46 and 80.34
  // show as 85.5 and 80.3, so the change shown must be 5.2 (the unrounded difference, 5.12,
  // rounds to 5.1); 80.46 against 79.54 shows as 80.5 and 79.5: a change of 1.0, improving
  // (0.92 unrounded: 0.9, stable).
  const now = Date.now();
  const seed = async (userId: string, scores: Array<{ at: number; overall: number }>) => {
    const rows = scores.map((x, i) => ({ id: `00000000-0000-4000-8000-${userId.padStart(8, '0')}${String(i).padStart(4, '0')}`, ...x }));
    const common = (r: { id: string }) => ({ session_id: r.id, stream_id: 'seeded', org_id: ORG, user_id: userId });
    await srv.insertRows('speech_summaries', rows.map((r) => ({
      ...common(r), audio_started_at: r.at, duration_ms: 60_000, speech_ms: 55_000, word_count: 100, speaking_rate_wpm: 120, articulation_rate_wpm: 130,
      pause_count: 3, long_pause_count: 1, pause_ratio: 0.1, mean_pause_ms: 400, filler_count: 0, filler_rate_per_min: 0, repetition_count: 0,
      pitch_mean_hz: 150, pitch_sd_hz: 20, pitch_min_hz: 100, pitch_max_hz: 200, pitch_variability_st: 2.5, monotone: false, volume_mean_dbfs: -20,
      volume_sd_db: 3, model: 'moonshine-tiny', computed_at: r.at + 60_000,
    })));
    await srv.insertRows('speech_scores', rows.map((r) => ({
      ...common(r), model: 'rubric-v1', overall: r.overall, clarity: r.overall, pace: r.overall, engagement: r.overall, confidence: r.overall,
      features_json: '{}', weights_json: '{}', factors_json: '{}', computed_at: r.at + 60_000,
    })));
  };
  await seed('u-r1', [{ at: now - 40 * DAY, overall: 80.34 }, { at: now - 2 * DAY, overall: 85.46 }]);
  await seed('u-r2', [{ at: now - 40 * DAY, overall: 79.54 }, { at: now - 2 * DAY, overall: 80.46 }]);
  const admin = srv.token('boss', ORG, ['read:speech', 'admin:org']);
  const a1 = (await srv.request('GET', '/v1/analytics/progress?period=month&user_id=u-r1', { token: admin })).body.data.analytics;
  assert.deepEqual(a1.overallScore, { current: 85.5, previous: 80.3, change: 5.2, trend: 'improving' });
  assert.deepEqual(a1.categoryScores.pace, { current: 85.5, previous: 80.3, change: 5.2 });
  assert.ok(a1.improvements.every((i: { improvement: number }) => i.improvement === 5.2));
  const a2 = (await srv.request('GET', '/v1/analytics/progress?period=month&user_id=u-r2', { token: admin })).body.data.analytics;
  assert.deepEqual(a2.overallScore, { current: 80.5, previous: 79.5, change: 1, trend: 'improving' });
  for (const a of [a1, a2]) {
    for (const c of ['clarity', 'pace', 'engagement', 'confidence']) {
      const x = a.categoryScores[c];
      assert.equal(x.change, Number((x.current - x.previous).toFixed(1)), `${c}: change = current - previous as shown`);
    }
  }
});
