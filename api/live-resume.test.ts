// The coherence live hub's resume buffer is kept lazily (http/live-hub.ts): an envelope is
// built only when a client resumes through it (or listens when it arrives), once for the
// session's and the user's keys together, and its timestamp is still when the record was read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import { Topics } from '../schemas/topics.js';
import type { CoherenceWindowRecord } from '../schemas/records.js';
import { LiveHub, type LiveDelivery } from '../http/live-hub.js';
import { createCoherenceLiveHub } from './live.js';

function window(i: number): CoherenceWindowRecord {
  return {
    session_id: 's-lazy', user_id: 'u', org_id: 'o', device_id: 'd', window_start: 1_000_000 + i * 5000, window_end: 1_064_000 + i * 5000,
    valid: true, coherence: 0.5, coherence_ratio: 1.2, peak_frequency_hz: 0.1, breathing_rate_bpm: 6, mean_hr_bpm: 66, rmssd_ms: 48,
    sdnn_ms: 50, pnn50_pct: 10, beat_count: 64, artifact_ratio: 0, late_beat_count: 0,
    invalid_reason: null, partial: false, coverage: 1, longest_gap_ms: 1100,
  };
}

test('a kept window is built at the resume, once for both keys, stamped with when it was read', () => {
  let now = Date.parse('2026-12-03T10:00:00Z');
  const hub = createCoherenceLiveHub({ log: silentLogger, maxBufferedMessages: 100, heartbeatMs: 30_000, clock: () => now });
  // Count the builds: wrap the feed's route (the hub's one way to an envelope).
  const feed = (hub as unknown as { feed: { route: (r: unknown, t: string) => LiveDelivery | null } }).feed;
  const route = feed.route.bind(feed);
  let builds = 0;
  feed.route = (r, t) => {
    const d = route(r, t)!;
    return { ...d, envelope: () => (builds++, d.envelope()) };
  };
  const readAt: string[] = [];
  for (let i = 0; i < 3; i++) {
    readAt.push(new Date(now).toISOString());
    hub.publish(window(i), Topics.coherenceWindows);
    now += 5_000;
  }
  assert.equal(builds, 0, 'nobody listens and nobody resumed: nothing built');
  now += 60_000; // the resume comes a minute later
  const bySession = (hub as LiveHub).buffered('session:s-lazy');
  assert.equal(builds, 3);
  assert.deepEqual(bySession.map((e) => e.timestamp), readAt, 'timestamps are the receipt times, not the resume time');
  assert.deepEqual(bySession.map((e) => e.id), [0, 1, 2].map((i) => `s-lazy:${window(i).window_end}`));
  const byUser = (hub as LiveHub).buffered('user:o/u');
  assert.equal(builds, 3, "the user's key shares the session's envelopes");
  assert.equal(byUser[1], bySession[1]);
});
