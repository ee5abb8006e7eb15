// The device-integration example (examples/sync-recording.mjs) against a whole embedded Attune:
// the metronome-paced recording (breathing set to 15/min by its protocol, an independent label),
// all of its ten minutes, goes in through the public API, every reading is accepted, the
// session's last windows appear after its end, and what comes back is the recording's: the
// breathing rate of its valid windows and the session's average_breathing_rate are the
// metronome's (a few windows read slow drift: their mean was 12.3/min), its heart rate the beats'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startTestAttune, waitFor } from '../test/attune.js';
// @ts-expect-error an example in plain JavaScript, without types
import { readIntervals, readingsOf, syncRecording } from './sync-recording.mjs';

/** The whole recording (its beats span 597 s). */
const MINUTES = 9.95;
const M2 = fileURLToPath(new URL('../../shared/data/rr/meditation_M2_metronomic_0p25Hz.rr_ms.txt', import.meta.url));

test('readingsOf lays the intervals end to end from the start, five to a reading, and leaves out beats after the end', () => {
  const readings = readingsOf([1000.4, 999.6, 1000, 1000, 1000, 1000, 1000, 5000], 10_000, 17_500);
  assert.deepEqual(readings, [
    { timestamp: 15_000, rr_intervals_ms: [1000, 1000, 1000, 1000, 1000] },
    { timestamp: 17_000, rr_intervals_ms: [1000, 1000] },
  ]);
});

test('the example sends a real recording and reads back its breathing rate and heart rate', { timeout: 180_000 }, async () => {
  const attune = await startTestAttune();
  try {
    const token = attune.token('example-user', 'example-org', ['write:devices', 'write:sessions', 'write:readings', 'read:sessions']);
    const rrMs: number[] = readIntervals(M2);
    const now = Date.now();
    const { readings, accepted, session } = await syncRecording({ url: attune.baseUrl, token, rrMs, minutes: MINUTES, deviceId: 'm2-strap', now });
    assert.equal(accepted, readings, 'every reading accepted');
    assert.equal(session.status, 'completed');
    // 10 min of beats: windows of 64 s every 5 s, the first ones partial.
    assert.ok(session.metrics.valid_window_count >= 80, `${session.metrics.valid_window_count} valid windows`);
    const rates = session.timeline.filter((p: { valid: boolean }) => p.valid).map((p: { breathing_rate: number }) => p.breathing_rate).sort((a: number, b: number) => a - b);
    const median = rates[Math.floor(rates.length / 2)];
    assert.ok(Math.abs(median - 15) <= 0.6, `median breathing rate ${median}/min, the metronome 15/min (within 0.01 Hz)`);
    assert.ok(Math.abs(session.metrics.average_breathing_rate - 15) <= 0.6, `average_breathing_rate ${session.metrics.average_breathing_rate}/min, the metronome 15/min`);
    // The beats sent: the recording, the same way the example lays them out.
    const sent = readingsOf(rrMs, now - Math.round(MINUTES * 60_000), now).flatMap((r: { rr_intervals_ms: number[] }) => r.rr_intervals_ms);
    const meanHr = 60_000 / (sent.reduce((a: number, b: number) => a + b, 0) / sent.length);
    assert.ok(Math.abs(session.metrics.average_hr - meanHr) <= 1.5, `average_hr ${session.metrics.average_hr}, the beats' ${meanHr.toFixed(2)} bpm`);
  } finally {
    await attune.cleanup();
  }
});

test('synced after the end call (a device back in range): the request that reaches the end closes the last windows, and the session reads as when synced before the end', { timeout: 180_000 }, async () => {
  const attune = await startTestAttune();
  try {
    const token = attune.token('example-user', 'example-org', ['write:devices', 'write:sessions', 'write:readings', 'read:sessions']);
    const rrMs: number[] = readIntervals(M2);
    const now = Date.now();
    const before = await syncRecording({ url: attune.baseUrl, token, rrMs, minutes: 5, deviceId: 'strap-before', now });
    // Before 2026-12-06 the last windows of a session synced after its end closed only at an
    // idle end in event time: in a quiet partition never (this wait failed).
    // The sync comes after the end has reached the worker, as a device back in range minutes later.
    const markersBefore = attune.worker!.stats.endMarkers;
    const ended = () => waitFor('the end marker read', () => attune.worker!.stats.endMarkers > markersBefore, 30_000, 20);
    const after = await syncRecording({ url: attune.baseUrl, token, rrMs, minutes: 5, deviceId: 'strap-after', now, afterEnd: true, waitMs: 30_000, ended });
    assert.equal(after.accepted, after.readings);
    // coherence_ratio is the share of the session's duration in high coherence, and the two end
    // at different instants: the one synced before its end is ended when its uploads are done
    // (the server's clock), the other at \`now\`; 0.5 s between them made a duration of 301 s
    // against 300 s, and 0.1827 against 0.1833. Each is checked against its own duration.
    const strip = (s: { timeline: unknown[]; metrics: Record<string, unknown> }) => {
      const { coherence_ratio: _c, ...metrics } = s.metrics;
      return { timeline: s.timeline, metrics };
    };
    assert.deepEqual(strip(after.session), strip(before.session));
    for (const s of [before.session, after.session]) {
      assert.equal(s.metrics.coherence_ratio, Number((s.metrics.time_in_high_coherence / s.duration).toFixed(4)), `${s.metrics.time_in_high_coherence} s of ${s.duration}`);
    }
  } finally {
    await attune.cleanup();
  }
});
