// Session metrics from the stored windows: only trusted windows enter an average; the others
// stay on the timeline with their reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppContext } from '../http/context.js';
import type { Session } from '../store/postgres/sessions-repo.js';
import { sessionMetrics } from './sessions.js';

const session = { id: 's1', orgId: 'o1', userId: 'u1', startedAt: 0 } as Session;

/** A context whose ClickHouse answers every query with `rows` (what the session's windows hold). */
function contextWith(rows: object[]): AppContext {
  const clickhouse = { query: async () => ({ json: async () => rows }) };
  return { clickhouse, database: 'attune' } as unknown as AppContext;
}

const trusted = (endS: number, coherence: number) => ({
  window_end_ms: endS * 1000, valid: 1, invalid_reason: null, partial: 0, coverage: 0.985, longest_gap_ms: 1010.4,
  coherence, coherence_ratio: coherence / (1 - coherence), hr: 60, hrv: 40, breathing_rate: 6, sdnn: 50, pnn50: 12, late_beat_count: 0,
});
const untrusted = (endS: number, reason: string, partial: boolean, coverage: number | null) => ({
  window_end_ms: endS * 1000, valid: 0, invalid_reason: reason, partial: partial ? 1 : 0, coverage, longest_gap_ms: 12_000,
  coherence: null, coherence_ratio: null, hr: null, hrv: null, breathing_rate: null, sdnn: null, pnn50: null, late_beat_count: 0,
});

test('averages use only trusted windows; partial and gapped windows are counted by reason and shown on the timeline', async () => {
  const rows = [
    untrusted(5, 'partial', true, 0.07),
    untrusted(60, 'partial', true, 0.93),
    trusted(65, 0.8),
    untrusted(70, 'long_gap', false, 0.92),
    untrusted(75, 'low_coverage', false, 0.7),
    trusted(80, 0.4),
    // A row no worker of this version writes (valid yet partial, say from an older writer): not trusted.
    { ...trusted(85, 0.99), partial: 1 },
  ];
  const { metrics, timeline } = await sessionMetrics(contextWith(rows), session);
  assert.equal(metrics.average_coherence, 0.6);
  assert.equal(metrics.peak_coherence, 0.8);
  assert.equal(metrics.time_in_high_coherence, 5);
  assert.deepEqual([metrics.window_count, metrics.valid_window_count, metrics.partial_window_count], [7, 2, 3]);
  assert.deepEqual(metrics.invalid_reasons, { partial: 3, long_gap: 1, low_coverage: 1 });
  assert.deepEqual(timeline.map((p) => p.valid), [false, false, true, false, false, true, false]);
  assert.deepEqual(timeline[0], {
    time: 5, timestamp: new Date(5000).toISOString(), coherence: null, coherence_ratio: null, hr: null, hrv: null, breathing_rate: null, sdnn: null, pnn50: null,
    valid: false, invalid_reason: 'partial', partial: true, coverage: 0.07, longest_gap_ms: 12_000,
  });
  assert.deepEqual([timeline[2].coverage, timeline[2].longest_gap_ms, timeline[2].invalid_reason], [0.985, 1010, null]);
  assert.deepEqual(timeline.map((p) => p.time), [5, 60, 65, 70, 75, 80, 85], 'seconds from the start');
  assert.equal(metrics.breathing_sync_score, null, 'no protocol, no pace');
});

test('SDNN and pNN50 are averaged over the trusted windows like RMSSD; late_beat_count is the newest window\'s (cumulative per session)', async () => {
  const rows = [
    { ...trusted(65, 0.5), sdnn: 40, pnn50: 10, late_beat_count: 0 },
    { ...untrusted(70, 'long_gap', false, 0.6), sdnn: 300, pnn50: 90, late_beat_count: 3 },
    { ...trusted(75, 0.5), sdnn: 60, pnn50: 20, late_beat_count: 3 },
    { ...trusted(80, 0.5), sdnn: 50, pnn50: 30, late_beat_count: 7 },
  ];
  const { metrics, timeline } = await sessionMetrics(contextWith(rows), session);
  assert.deepEqual([metrics.average_sdnn, metrics.average_pnn50, metrics.late_beat_count], [50, 20, 7]);
  assert.deepEqual(timeline.map((p) => [p.sdnn, p.pnn50]), [[40, 10], [300, 90], [60, 20], [50, 30]]);
});

test("breathing_sync_score: the trusted windows' breathing rate against the protocol's pace", async () => {
  const rows = [{ ...trusted(65, 0.8), breathing_rate: 6 }, { ...trusted(70, 0.8), breathing_rate: 6.45 }, { ...untrusted(75, 'long_gap', false, 0.5), breathing_rate: 15 }];
  const { metrics } = await sessionMetrics(contextWith(rows), session, 6);
  assert.equal(metrics.breathing_sync_score, 0.875, 'mean of 1 and 0.75; the untrusted window left out');
});

test('windows stored before the trust columns existed (NULL coverage) keep the verdict they were stored with', async () => {
  const old = { ...trusted(65, 0.5), coverage: null, longest_gap_ms: null, partial: false };
  const { metrics, timeline } = await sessionMetrics(contextWith([old]), session);
  assert.deepEqual([metrics.valid_window_count, metrics.average_coherence], [1, 0.5]);
  assert.deepEqual([timeline[0].coverage, timeline[0].longest_gap_ms], [null, null]);
});

test("average_breathing_rate is the median of the trusted windows' breathing rates: windows where slow drift outweighs the breathing do not pull it down", async () => {
  // Breathing paced at 15/min; two windows whose highest spectral point is drift at the band's edge.
  const rates = [15, 14.8, 15.2, 2.4, 15, 2.6, 15.1];
  const rows = [...rates.map((b, i) => ({ ...trusted(65 + 5 * i, 0.6), breathing_rate: b })), { ...untrusted(105, 'long_gap', false, 0.5), breathing_rate: 3 }];
  const { metrics } = await sessionMetrics(contextWith(rows), session);
  assert.equal(metrics.average_breathing_rate, 15, 'the middle of the seven trusted windows; the untrusted one left out');
  const even = await sessionMetrics(contextWith(rows.slice(0, 6)), session);
  assert.equal(even.metrics.average_breathing_rate, 14.9, 'an even count: the mean of the two middle values (14.8 and 15)');
});

test("coherence_ratio is the coherence platform document's share of the session's time in high coherence (its example: 412 s of 623, 0.66); the mean McCraty ratio is mean_coherence_ratio", async () => {
  const ended = { ...session, endedAt: 623_000 } as Session;
  // 82 trusted windows at 0.8 (high: 410 s) and 20 at 0.3.
  const rows = [...Array.from({ length: 82 }, (_, i) => trusted(70 + 5 * i, 0.8)), ...Array.from({ length: 20 }, (_, i) => trusted(480 + 5 * i, 0.3))];
  const { metrics } = await sessionMetrics(contextWith(rows), ended);
  assert.equal(metrics.time_in_high_coherence, 410);
  assert.equal(metrics.coherence_ratio, Number((410 / 623).toFixed(4)));
  // McCraty ratios of the windows: 0.8 / 0.2 = 4 and 0.3 / 0.7.
  assert.equal(metrics.mean_coherence_ratio, Number(((82 * 4 + 20 * (0.3 / 0.7)) / 102).toFixed(4)));
  // An active session: to now.
  const active = await sessionMetrics({ ...contextWith(rows), clock: () => 820_000 } as unknown as AppContext, session);
  assert.equal(active.metrics.coherence_ratio, 0.5);
});
