import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeSpeechFeatures, createSpeechFeaturePlan } from '../index.js';
import { SHARED_DATA_DIR } from '../pitch-eval.test-util.js';
import { readWavFile } from '../wav.test-util.js';
import { type SecondFeatures, SecondFeatureStream } from './seconds.js';

const jfk = readWavFile(SHARED_DATA_DIR + 'speech/jfk_1961_inaugural_M.wav').samples;

/** Streams `samples` in pieces of the given sizes (cycled), collecting seconds as they complete. */
function stream(samples: Float32Array, sizes: number[]): { seconds: SecondFeatures[]; s: SecondFeatureStream } {
  const s = new SecondFeatureStream();
  const seconds: SecondFeatures[] = [];
  let emitted = 0;
  for (let at = 0, k = 0; at < samples.length; k++) {
    const take = Math.min(sizes[k % sizes.length], samples.length - at);
    s.push(samples.subarray(at, at + take));
    at += take;
    const complete = s.completeSeconds();
    // A second is reported complete when, and only when, its samples and its look-ahead are in.
    if (complete > 0) assert.ok(s.sampleCount >= s.samplesToComplete(complete - 1), `second ${complete - 1} complete at ${at}`);
    assert.ok(s.sampleCount < s.samplesToComplete(complete), `second ${complete} not complete at ${at}`);
    for (; emitted < complete; emitted++) seconds.push(s.features(emitted));
  }
  const complete = s.completeSeconds(true);
  for (; emitted < complete; emitted++) seconds.push(s.features(emitted));
  return { seconds, s };
}

test('per-second pitch of a real recording is the same whatever the chunk sizes, and equals the whole-recording analysis', () => {
  const reference = stream(jfk, [jfk.length]);
  assert.equal(reference.seconds.length, Math.ceil(jfk.length / 16_000));
  for (const sizes of [[160], [1, 7, 4096], [333], [16_000], [7919, 2, 480]]) {
    const other = stream(jfk, sizes);
    assert.deepEqual(other.seconds, reference.seconds, `chunks ${JSON.stringify(sizes)}`);
    assert.deepEqual(other.s.voicedF0.view(), reference.s.voicedF0.view(), `chunks ${JSON.stringify(sizes)}`);
    assert.deepEqual(other.s.frameDbfs.view(), reference.s.frameDbfs.view(), `chunks ${JSON.stringify(sizes)}`);
  }
  // The same frames as computeSpeechFeatures on the whole recording.
  const whole = computeSpeechFeatures(jfk, createSpeechFeaturePlan());
  const voicedF0 = whole.f0Hz.filter((f, i) => whole.voiced[i] === 1 && f > 0);
  assert.deepEqual(reference.s.voicedF0.view(), voicedF0);
  assert.equal(reference.s.frameDbfs.length, whole.frames);
  // JFK is mostly voiced speech: most seconds have a pitch.
  assert.ok(reference.seconds.filter((x) => x.pitchMeanHz !== null).length >= 8);
});

test('a second is complete once the look-ahead after it is in, not before', () => {
  const s = new SecondFeatureStream();
  const oneSecondPlus = s.samplesToComplete(0);
  // 99 frames are centred in the first second; with 30 frames of look-ahead (300 ms) the first
  // second is decided once frame 128 (samples 20 480 .. 20 960) is in.
  assert.equal(oneSecondPlus, 20_960);
  s.push(jfk.subarray(0, oneSecondPlus - 1));
  assert.equal(s.completeSeconds(), 0);
  s.push(jfk.subarray(oneSecondPlus - 1, oneSecondPlus));
  assert.equal(s.completeSeconds(), 1);
  // At the end of the stream the frames waiting for look-ahead are decided.
  assert.equal(s.completeSeconds(true), 2);
  assert.ok(s.features(1).voicedRatio > 0);
});
