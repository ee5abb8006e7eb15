// Trends and overall fluency (the speech-coaching document's derived figures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearTrend, lessIsBetter, overallFluency, pitchTrend, volumeTrend } from './speech-coaching-metrics.js';
import { docFluency } from './speech-doc.js';

test('linearTrend: the fitted change over the span against the threshold; noise around a flat line is stable', () => {
  const line = (slope: number) => Array.from({ length: 11 }, (_, t) => ({ t, v: slope * t + (t % 2 === 0 ? 0.4 : -0.4) }));
  assert.equal(linearTrend(line(0.1), 1), 'increasing', '+1.0 over 10 s');
  assert.equal(linearTrend(line(0.09), 1), 'stable', '+0.9 over 10 s');
  assert.equal(linearTrend(line(-0.2), 1), 'decreasing');
  assert.equal(linearTrend(line(0), 1), 'stable');
  assert.equal(linearTrend([{ t: 0, v: 0 }, { t: 1, v: 100 }], 1), 'stable', 'two points say nothing');
  assert.equal(linearTrend([{ t: 3, v: 0 }, { t: 3, v: 5 }, { t: 3, v: 9 }], 1), 'stable', 'no time span');
});

test('pitchTrend works in semitones (1 st), unvoiced seconds ignored; volumeTrend in dB (3 dB)', () => {
  // 100 Hz to 106 Hz is ~1.01 semitones; to 105 Hz ~0.84.
  const ramp = (to: number) => Array.from({ length: 6 }, (_, t) => ({ t, hz: t === 2 ? null : 100 * (to / 100) ** (t / 5) }));
  assert.equal(pitchTrend(ramp(106)), 'increasing');
  assert.equal(pitchTrend(ramp(105)), 'stable');
  assert.equal(pitchTrend(ramp(94)), 'decreasing');
  assert.equal(volumeTrend([0, 1, 2, 3].map((t) => ({ t, dbfs: -30 + t }))), 'increasing', '+3 dB');
  assert.equal(volumeTrend([0, 1, 2, 3].map((t) => ({ t, dbfs: -30 + 0.9 * t }))), 'stable', '+2.7 dB');
});

test('overallFluency: 100 x mean of the three rate sub-scores on the rubric bands', () => {
  assert.equal(lessIsBetter(2, 2, 12), 1);
  assert.equal(lessIsBetter(7, 2, 12), 0.5);
  assert.equal(lessIsBetter(12, 2, 12), 0);
  assert.equal(overallFluency({ durationS: 60, fillerCount: 0, repetitionCount: 0, longPauseCount: 0 }), 100);
  // 2 minutes: fillers 14 -> 7/min -> 0.5; repetitions 7 -> 3.5/min -> 0.5; long pauses 10 -> 5/min -> 0.5.
  assert.equal(overallFluency({ durationS: 120, fillerCount: 14, repetitionCount: 7, longPauseCount: 10 }), 50);
  assert.equal(overallFluency({ durationS: 60, fillerCount: 30, repetitionCount: 10, longPauseCount: 10 }), 0);
  assert.equal(overallFluency({ durationS: 0, fillerCount: 0, repetitionCount: 0, longPauseCount: 0 }), null);
});

test('the fluency of a recording without a word is null, not 100: silence is not perfect fluency', () => {
  const silent = { duration_s: 5, word_count: 0, pauses: { long_count: 0 }, fillers: { by_filler: [] }, repetitions: { count: 0 }, repeatedWords: [] };
  assert.equal(docFluency(silent).overallFluency, null);
  assert.equal(docFluency({ ...silent, word_count: 12 }).overallFluency, 100);
});
