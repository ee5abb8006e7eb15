// The speech-coaching document's metrics from Attune's rows (pure): which seconds the volume's
// min, max and trend are taken over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { docMetrics, type MetricsIn } from './speech-doc.js';

const metrics = (durationS: number, seconds: MetricsIn['seconds']): MetricsIn => ({
  summary: { duration_s: durationS, speaking_rate_wpm: 120, pause_count: 0, filler_count: 0, pitch: { mean_hz: null, sd_hz: null, min_hz: null, max_hz: null }, volume: { mean_dbfs: -21, sd_db: 0.82 } },
  buckets: [],
  seconds,
  pauses: [],
  prosody: true,
  fluency: true,
});
const second = (s: number, dbfs: number, ratio: number) => ({ second: s, pitch_mean_hz: null, volume_dbfs: dbfs, speech_ratio: ratio });

test('volume min, max and trend: a last second of a few ms is not a second of speech, whatever its ratio', () => {
  const whole = [second(0, -20, 1), second(1, -22, 0.9), second(2, -21, 0.6), second(3, -20, 1)];
  // 14 ms of silence after 4 s of speech: voice activity's hangover scores 57 % of it speech.
  const v = docMetrics(metrics(4.014, [...whole, second(4, -120, 0.57)])).volume;
  assert.deepEqual([v?.min, v?.max, v?.trend], [-22, -20, 'stable']);
  // A last second of 0.7 s, 90 % speech, counts.
  const w = docMetrics(metrics(4.7, [...whole, second(4, -26, 0.9)])).volume;
  assert.deepEqual([w?.min, w?.max], [-26, -20]);
});
