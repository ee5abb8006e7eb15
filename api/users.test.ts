// The documented rules behind GET /v1/users/me, the history summary and the session metrics:
// streaks in the user's time zone, IANA zone validation, trend_percentage and
// breathing_sync_score (the routes themselves: test/conformance/coherence-platform.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIanaZone, localDay, streaks } from './users.js';
import { trendPercentage, trendSlope } from './coherence.js';
import { breathingSyncScore, PROTOCOLS } from './sessions.js';

test('streaks: consecutive practice days; the current one ends today or yesterday', () => {
  const days = ['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-10', '2026-01-11'];
  assert.deepEqual(streaks(days, '2026-01-11'), { current: 2, longest: 3 });
  assert.deepEqual(streaks(days, '2026-01-12'), { current: 2, longest: 3 }, 'today without practice yet does not break it');
  assert.deepEqual(streaks(days, '2026-01-13'), { current: 0, longest: 3 }, 'a whole day missed does');
  assert.deepEqual(streaks([], '2026-01-13'), { current: 0, longest: 0 });
  // Across a month end and a leap day, duplicates and any order.
  assert.deepEqual(streaks(['2028-03-01', '2028-02-28', '2028-02-29', '2028-02-29'], '2028-03-01'), { current: 3, longest: 3 });
});

test("localDay: the calendar day in the user's zone, not UTC's", () => {
  const t = Date.UTC(2026, 0, 31, 3, 0, 0); // 03:00 UTC = 19:00 the day before in Los Angeles
  assert.equal(localDay(t, 'UTC'), '2026-01-31');
  assert.equal(localDay(t, 'America/Los_Angeles'), '2026-01-30');
  assert.equal(localDay(t, 'Asia/Tokyo'), '2026-01-31');
  // Practice at 19:00 local two evenings running: a streak of 2 in Los Angeles.
  const evenings = [Date.UTC(2026, 0, 31, 3), Date.UTC(2026, 1, 1, 3)].map((x) => localDay(x, 'America/Los_Angeles'));
  assert.deepEqual(streaks(evenings, localDay(Date.UTC(2026, 1, 1, 6), 'America/Los_Angeles')), { current: 2, longest: 2 });
});

test('isIanaZone: IANA names only', () => {
  for (const ok of ['America/Los_Angeles', 'Europe/Berlin', 'UTC', 'Asia/Kolkata', 'America/Argentina/Buenos_Aires']) assert.equal(isIanaZone(ok), true, ok);
  for (const bad of ['Mars/Olympus_Mons', '+05:00', 'PST8PDT/', '', 'America/Los Angeles', '../etc', 'x'.repeat(80)]) assert.equal(isIanaZone(bad), false, bad);
});

test("trend_percentage: the trend line's change over the range, percent of the period average", () => {
  // 0.60 -> 0.70 in steady steps: +0.1 over the range on an average of 0.65: +15.4 %.
  const rising = [0.6, 0.625, 0.65, 0.675, 0.7];
  const slope = trendSlope(rising);
  assert.ok(Math.abs(slope - 0.025) < 1e-12);
  assert.equal(trendPercentage(slope, rising.length, 0.65), 15.4);
  assert.equal(trendPercentage(-slope, rising.length, 0.65), -15.4);
  assert.equal(trendPercentage(slope, 1, 0.65), 0, 'one period: no trend');
  assert.equal(trendPercentage(slope, 5, null), 0, 'no data');
});

test('breathing_sync_score: 1 at the paced rate, 0.5 at 0.9 breaths/min (the peak band half width), 0 from 1.8 away; null without a pace or data', () => {
  assert.equal(breathingSyncScore([6, 6, 6], 6), 1);
  assert.ok(Math.abs(breathingSyncScore([6.9, 5.1], 6)! - 0.5) < 1e-12);
  assert.equal(breathingSyncScore([8, 4, 12], 6), 0);
  assert.ok(Math.abs(breathingSyncScore([6, 6.45], 6)! - 0.875) < 1e-12, 'mean of 1 and 0.75');
  assert.equal(breathingSyncScore([6], null), null);
  assert.equal(breathingSyncScore([], 6), null);
  // Every documented protocol has a pace.
  assert.deepEqual(Object.keys(PROTOCOLS).sort(), ['coherence_building', 'gratitude_focus', 'heart_breath_sync', 'intention_amplify', 'manifestation_advanced', 'manifestation_basic']);
  for (const p of Object.values(PROTOCOLS)) assert.ok(p.breathingRateBpm > 0 && p.minMinutes < p.maxMinutes);
});
