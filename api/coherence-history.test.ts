// GET /v1/users/me/coherence: the summary is computed from the periods' unrounded figures, so
// the same windows give the same period_average by day, by week and in /v1/users/me's stats.
// Before, period_average averaged the days' 4-decimal averages: three days of one session each
// (a walkthrough against the coherence platform document) read 0.5617 by day and 0.5618 by week
// and in the user's stats.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import type { CoherenceWindowRow } from '../store/rows.js';

const DAY = 86_400_000;
let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

function window(user: string, session: string, windowEnd: number, coherence: number): CoherenceWindowRow {
  return {
    session_id: session, user_id: user, org_id: 'o-hist', device_id: 'dev-hist',
    window_start: windowEnd - 64_000, window_end: windowEnd,
    valid: true, invalid_reason: null, partial: false, coverage: 0.98, longest_gap_ms: 1100,
    coherence, coherence_ratio: coherence / (1 - coherence), peak_frequency_hz: 0.1, breathing_rate_bpm: 6,
    mean_hr_bpm: 62, rmssd_ms: 45, sdnn_ms: 50, pnn50_pct: 12, beat_count: 70, artifact_ratio: 0.01,
    late_beat_count: 0, computed_at: windowEnd + 40,
  };
}

test('period_average is the same by day and by week (from unrounded period means)', async () => {
  // Three days in one ISO week (Tuesday to Thursday), one window each: each day's average rounds
  // down at 4 decimals (…4), their exact mean rounds up (0.561773…).
  const tue = Date.parse('2026-03-03T06:00:00Z');
  const scores = [0.40174, 0.61484, 0.66874];
  const rows = scores.map((c, i) => window('u-hist', `s-hist-${i}`, tue + i * DAY, c));
  await app.store.client.insert({ table: app.store.table('coherence_windows'), values: rows, format: 'JSONEachRow' });
  const token = app.token('u-hist', 'o-hist', ['read:coherence', 'read:user']);
  const exact = Number((scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(4));
  assert.equal(exact, 0.5618);
  const byDay = await app.request('GET', '/v1/users/me/coherence?start_date=2026-03-02&end_date=2026-03-08&granularity=day', { token });
  const byWeek = await app.request('GET', '/v1/users/me/coherence?start_date=2026-03-02&end_date=2026-03-08&granularity=week', { token });
  assert.equal(byDay.status, 200, JSON.stringify(byDay.body));
  assert.deepEqual(byDay.body.data.map((d: { average_coherence: number }) => d.average_coherence), [0.4017, 0.6148, 0.6687]);
  assert.equal(byWeek.body.data.length, 1);
  assert.equal(byWeek.body.summary.period_average, exact);
  assert.equal(byDay.body.summary.period_average, exact, 'by day as by week');
  assert.equal(byDay.body.summary.average_coherence, exact);
  // the trend line through the unrounded means: +0.1335 a day
  assert.equal(byDay.body.summary.trend_slope, 0.1335);
  assert.equal(byDay.body.summary.trend, 'improving');
});

test('the trend counts periods without data as the time they are: the same windows give the same trend by day and by week', async () => {
  // Monday 2026-04-06 and Tuesday 04-07, then Monday 04-27 (three weeks later), one window each.
  const mon = Date.parse('2026-04-06T06:00:00Z');
  const days = [0, 1, 21];
  const scores = [0.6148, 0.5515, 0.5793];
  const rows = days.map((d, i) => window('u-trend', `s-trend-${i}`, mon + d * DAY, scores[i]));
  await app.store.client.insert({ table: app.store.table('coherence_windows'), values: rows, format: 'JSONEachRow' });
  const token = app.token('u-trend', 'o-hist', ['read:coherence']);
  const q = (g: string) => app.request('GET', `/v1/users/me/coherence?start_date=2026-04-06&end_date=2026-04-30&granularity=${g}`, { token });
  const byDay = (await q('day')).body.summary;
  const byWeek = (await q('week')).body.summary;
  // by day: x = 0, 1, 21: slope -0.00030 a day; by the point index it was -0.0177 a day ("declining", -6.1 %)
  assert.equal(byDay.trend, 'stable', JSON.stringify(byDay));
  assert.equal(byDay.trend_slope, -0.0003);
  // change over the 21 days the data spans: -0.0063 of 0.5819: -1.1 %
  assert.equal(byDay.trend_percentage, -1.1);
  // by week: weeks 0 (two windows, 0.58315) and 3 (0.5793): -0.0013 a week, -0.0039 over the span
  assert.equal(byWeek.trend, 'stable', JSON.stringify(byWeek));
  assert.equal(byWeek.trend_slope, -0.0013);
  assert.equal(byWeek.trend_percentage, -0.7);
});
