import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAttuneError } from '../../../lib/errors.js';
import { pitchStats } from '../pitch-stats.js';
import { FEATURE_NAMES, NO_SPEECH_DBFS, scoreFeatures, type ScoreFeatureInput, type ScoreFeatures } from './features.js';

const close = (actual: number, expected: number, what: string, tol = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

function assertFeatures(actual: ScoreFeatures, expected: ScoreFeatures): void {
  assert.deepEqual(Object.keys(actual).sort(), [...FEATURE_NAMES].sort());
  for (const name of FEATURE_NAMES) close(actual[name], expected[name], name);
}

// One minute, 150 words, 45 s of speech; pauses 1.5 s (long), 0.5 s, 0.4 s.
const minute: ScoreFeatureInput = {
  durationMs: 60_000,
  speechMs: 45_000,
  wordCount: 150,
  pauses: [
    { durationMs: 1500, kind: 'long' },
    { durationMs: 500, kind: 'natural' },
    { durationMs: 400, kind: 'natural' },
  ],
  fillerCount: 3,
  repetitionCount: 1,
  // Voiced 50, 100, 100, 200 Hz (median 100: −12, 0, 0, +12 semitones); 0, NaN and −5 are not voiced values.
  pitchHz: [100, 0, 200, Number.NaN, 50, -5, 100],
  secondVolumesDbfs: [-20, -24, -22, -18],
};

test('a hand-made minute gives the exact feature vector', () => {
  assertFeatures(scoreFeatures(minute), {
    speaking_rate_wpm: 150,
    articulation_rate_wpm: 200, // 150 words / 0.75 min
    pause_ratio: 2400 / 60_000,
    long_pauses_per_min: 1,
    mean_pause_s: 0.8,
    filler_rate_per_min: 3,
    repetition_rate_per_min: 1,
    pitch_variability_st: Math.sqrt(72), // population SD of −12, 0, 0, 12
    pitch_range_st: 20.4, // p5 = −12 + 0.15·12 = −10.2, p95 = 0 + 0.85·12 = 10.2 (linear between ranks)
    volume_variability_db: Math.sqrt(5), // deviations ±1, ±3 around −21
    mean_volume_dbfs: -21,
    speech_ratio: 0.75,
  });
});

test('per-minute rates scale with the total time; ratios and pitch do not', () => {
  const half = scoreFeatures({ ...minute, durationMs: 30_000, speechMs: 22_500 });
  const full = scoreFeatures(minute);
  close(half.speaking_rate_wpm, 300, 'speaking rate');
  close(half.articulation_rate_wpm, 400, 'articulation rate');
  close(half.long_pauses_per_min, 2, 'long pauses');
  close(half.filler_rate_per_min, 6, 'fillers');
  close(half.repetition_rate_per_min, 2, 'repetitions');
  close(half.pause_ratio, 2 * full.pause_ratio, 'pause ratio');
  close(half.speech_ratio, full.speech_ratio, 'speech ratio');
  close(half.mean_pause_s, full.mean_pause_s, 'mean pause');
  close(half.pitch_variability_st, full.pitch_variability_st, 'pitch variability');
});

test('nothing said: neutral values instead of NaN', () => {
  const f = scoreFeatures({
    durationMs: 10_000,
    speechMs: 0,
    wordCount: 0,
    pauses: [],
    fillerCount: 0,
    repetitionCount: 0,
    pitchHz: new Float32Array(0),
    secondVolumesDbfs: [],
  });
  for (const name of FEATURE_NAMES) assert.ok(Number.isFinite(f[name]), name);
  assert.equal(f.articulation_rate_wpm, 0);
  assert.equal(f.mean_pause_s, 0);
  assert.equal(f.pitch_variability_st, 0);
  assert.equal(f.pitch_range_st, 0);
  assert.equal(f.volume_variability_db, 0);
  assert.equal(f.mean_volume_dbfs, NO_SPEECH_DBFS);
  assert.equal(f.speech_ratio, 0);
});

test('one voiced value and one speech second: no spread, but a mean volume', () => {
  const f = scoreFeatures({ ...minute, pitchHz: new Float32Array([0, 180, 0]), secondVolumesDbfs: [-17] });
  assert.equal(f.pitch_variability_st, 0);
  assert.equal(f.pitch_range_st, 0);
  assert.equal(f.volume_variability_db, 0);
  assert.equal(f.mean_volume_dbfs, -17);
});

test('pitch variability is the same number pitchStats reports for the track', () => {
  // A glide with vibrato, some unvoiced frames.
  const f0 = new Float32Array(500);
  const voiced = new Uint8Array(500);
  for (let i = 0; i < f0.length; i++) {
    voiced[i] = i % 7 === 3 ? 0 : 1;
    f0[i] = voiced[i] ? 120 * 2 ** ((i / 500) * 0.75 + 0.1 * Math.sin(i / 9)) : 0;
  }
  const f = scoreFeatures({ ...minute, pitchHz: f0 });
  close(f.pitch_variability_st, pitchStats(f0, voiced).variabilitySemitones!, 'variability', 1e-12);
  // The glide covers 0.75 octaves plus vibrato: a 5–95% range a bit under 9 + 2.4 semitones.
  assert.ok(f.pitch_range_st > 7 && f.pitch_range_st < 11.4, `range ${f.pitch_range_st}`);
});

test('impossible inputs are refused with a coded error', () => {
  const bad: Partial<ScoreFeatureInput>[] = [
    { durationMs: 0 },
    { durationMs: Number.NaN },
    { speechMs: -1 },
    { wordCount: Number.POSITIVE_INFINITY },
    { fillerCount: -2 },
    { pauses: [{ durationMs: -10, kind: 'natural' }] },
    { secondVolumesDbfs: [-20, Number.NEGATIVE_INFINITY] },
  ];
  for (const change of bad) {
    assert.throws(
      () => scoreFeatures({ ...minute, ...change }),
      (err: unknown) => isAttuneError(err) && err.code === 'validation_error',
      JSON.stringify(change),
    );
  }
});
