import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRandom } from '../../../lib/prng.js';
import { harmonicSignal } from '../synthetic-audio.test-util.js';
import { SILERO_CHUNK } from '../vad/silero.js';
import { SpeechStreamAnalyzer, type ClosedSegment, type VoiceActivityModel } from './analyzer.js';
import type { SecondFeatures } from './seconds.js';

const RATE = 16_000;

/** A voice activity stand-in: a chunk is speech when its RMS is above -40 dBFS. Streams like Silero. */
class EnergyVad implements VoiceActivityModel {
  private pending: number[] = [];
  async process(samples: Float32Array): Promise<Float32Array> {
    for (const v of samples) this.pending.push(v);
    const chunks = Math.floor(this.pending.length / SILERO_CHUNK);
    const out = new Float32Array(chunks);
    for (let c = 0; c < chunks; c++) {
      let sq = 0;
      for (let i = c * SILERO_CHUNK; i < (c + 1) * SILERO_CHUNK; i++) sq += this.pending[i] ** 2;
      out[c] = 10 * Math.log10(sq / SILERO_CHUNK + 1e-12) > -40 ? 0.95 : 0.02;
    }
    this.pending = this.pending.slice(chunks * SILERO_CHUNK);
    return out;
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const silence = (s: number) => new Float32Array(Math.round(s * RATE));
const voice = (s: number, hz = 200) => harmonicSignal(s, () => hz, [1, 0.6, 0.3], 0.3);

async function run(audio: Float32Array, pieces: number[], opts = {}) {
  const analyzer = new SpeechStreamAnalyzer(new EnergyVad(), opts);
  const segments: ClosedSegment[] = [];
  const seconds: SecondFeatures[] = [];
  let at = 0;
  let k = 0;
  while (at < audio.length) {
    const n = Math.min(pieces[k++ % pieces.length], audio.length - at);
    const step = await analyzer.push(audio.subarray(at, at + n));
    segments.push(...step.segments);
    seconds.push(...step.seconds);
    at += n;
  }
  const last = analyzer.finish();
  segments.push(...last.segments);
  seconds.push(...last.seconds);
  return { analyzer, segments, seconds };
}

test('segments come with their own audio and the seconds with their features, the same in any piece sizes', async () => {
  // 0.5 s silence, 2 s voice at 200 Hz, 1 s silence, 1.5 s voice at 150 Hz, 0.7 s silence.
  const audio = concat([silence(0.5), voice(2, 200), silence(1), voice(1.5, 150), silence(0.7)]);
  const whole = await run(audio, [audio.length], { utteranceGapMs: 500 });
  assert.equal(whole.segments.length, 2);
  const [a, b] = whole.segments;
  assert.deepEqual([a.index, b.index], [0, 1]);
  // Speech edges within one 32 ms chunk of the truth.
  assert.ok(Math.abs(a.speechStartSample - 0.5 * RATE) <= SILERO_CHUNK, `a starts ${a.speechStartSample}`);
  assert.ok(Math.abs(a.speechEndSample - 2.5 * RATE) <= SILERO_CHUNK, `a ends ${a.speechEndSample}`);
  assert.ok(Math.abs(b.speechStartSample - 3.5 * RATE) <= SILERO_CHUNK);
  assert.ok(Math.abs(b.speechEndSample - 5 * RATE) <= SILERO_CHUNK);
  for (const s of whole.segments) {
    assert.equal(s.samples.length, s.endSample - s.startSample);
    assert.deepEqual(s.samples, audio.subarray(s.startSample, s.endSample), 'the segment audio is the input audio');
  }
  // Every second of the 5.7 s is reported once, in order.
  assert.deepEqual(whole.seconds.map((s) => s.index), [0, 1, 2, 3, 4, 5]);
  const sec1 = whole.seconds[1];
  assert.ok(sec1.pitchMeanHz !== null && Math.abs(sec1.pitchMeanHz - 200) < 2, `second 1 pitch ${sec1.pitchMeanHz}`);
  assert.ok(sec1.voicedRatio > 0.95 && sec1.speechRatio > 0.95);
  const sec4 = whole.seconds[4];
  assert.ok(sec4.pitchMeanHz !== null && Math.abs(sec4.pitchMeanHz - 150) < 2, `second 4 pitch ${sec4.pitchMeanHz}`);
  // Second 3 is half silence (3.0-3.5 s), half voice.
  assert.ok(Math.abs(whole.seconds[3].speechRatio - 0.5) < 0.05, `second 3 speech ratio ${whole.seconds[3].speechRatio}`);
  // RMS of the harmonic signal: 0.3 × sqrt((1 + 0.36 + 0.09) / 2) / max-normalisation; compare with the samples directly.
  let sq = 0;
  for (let i = RATE; i < 2 * RATE; i++) sq += audio[i] ** 2;
  assert.ok(Math.abs(sec1.volumeDbfs - 10 * Math.log10(sq / RATE)) < 1e-3);

  const rnd = createRandom(7);
  const pieces = Array.from({ length: 50 }, () => 1 + Math.floor(rnd() * 3000));
  const streamed = await run(audio, pieces, { utteranceGapMs: 500 });
  assert.deepEqual(streamed.segments.map(({ samples: _s, ...rest }) => rest), whole.segments.map(({ samples: _s, ...rest }) => rest));
  // Sums over pieces add in a different order: equal to rounding.
  const rounded = (xs: SecondFeatures[]) => xs.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toFixed(9)) : v])));
  assert.deepEqual(rounded(streamed.seconds), rounded(whole.seconds));
  for (const s of streamed.segments) assert.deepEqual(s.samples, audio.subarray(s.startSample, s.endSample));
});

test('voice segments closer than the utterance gap are recognised together, as one utterance with its silence', async () => {
  const audio = concat([silence(0.5), voice(2, 200), silence(1), voice(1.5, 150), silence(2), voice(1, 170), silence(0.5)]);
  const { segments, analyzer } = await run(audio, [1600]); // default gap 1.5 s
  assert.equal(analyzer.allSegments.length, 3, 'three voice segments for pauses');
  assert.deepEqual(segments.map((s) => s.parts), [2, 1], 'the 1 s silence joins, the 2 s one splits');
  assert.equal(segments[0].speechStartSample, analyzer.allSegments[0].speechStartSample);
  assert.equal(segments[0].speechEndSample, analyzer.allSegments[1].speechEndSample);
  for (const s of segments) assert.deepEqual(s.samples, audio.subarray(s.startSample, s.endSample));
  assert.deepEqual(segments.map((s) => s.index), [0, 1]);
});

test('each utterance carries the silences around it that no other utterance has, for the filler search: a quiet hum voice activity leaves out is inside one', async () => {
  // A hum at about -46 dBFS (under the stand-in voice activity's -40) 0.8 s after the first
  // utterance's speech, in a 3 s silence: longer than the utterance gap, so two utterances.
  const hum = harmonicSignal(0.6, () => 100, [1, 0.5], 0.007);
  const audio = concat([silence(0.5), voice(1.5, 200), silence(0.8), hum, silence(1.6), voice(1, 170), silence(0.4)]);
  const humStart = 2.8 * RATE;
  const humEnd = humStart + hum.length;
  for (const pieces of [[audio.length], [320], [1000, 7777, 123]]) {
    const { segments } = await run(audio, pieces);
    assert.equal(segments.length, 2, 'the hum is not speech to voice activity');
    const [a, b] = segments;
    for (const s of segments) {
      const c = s.context!;
      assert.ok(c.startSample <= s.startSample && c.startSample + c.samples.length >= s.endSample, 'the context holds the utterance');
      assert.equal((s.startSample - c.startSample) % 160, 0, 'whole 10 ms frames before the utterance');
      assert.deepEqual(c.samples, audio.subarray(c.startSample, c.startSample + c.samples.length), 'the context is the input audio');
    }
    assert.equal(a.context!.startSample, 0, 'the first utterance reaches back to the start (0.5 s < 1 s)');
    const aEnd = a.context!.startSample + a.context!.samples.length;
    assert.ok(aEnd <= b.context!.startSample, 'contexts do not overlap');
    assert.ok(a.context!.startSample <= humStart && aEnd >= humEnd, `the hum (${humStart}–${humEnd}) is in the first utterance's context (to ${aEnd})`);
    assert.ok(b.startSample - b.context!.startSample <= RATE, 'at most 1 s before an utterance');
  }
});

test('speech longer than the recogniser takes is cut into segments under the limit that cover it without gaps', async () => {
  // 45 s of voice with a slight dip in level every 3 s (the quietest chunks are the cut points).
  const parts: Float32Array[] = [silence(0.3)];
  for (let i = 0; i < 15; i++) parts.push(voice(2.9, 180), harmonicSignal(0.1, () => 180, [1], 0.05));
  parts.push(silence(0.5));
  const audio = concat(parts);
  const { segments, analyzer } = await run(audio, [4000], { maxSegmentMs: 29_500 });
  assert.ok(segments.length >= 2, `${segments.length} segments`);
  for (const s of segments) assert.ok(s.endSample - s.startSample <= 29.5 * RATE + SILERO_CHUNK, `segment ${s.index} is ${(s.endSample - s.startSample) / RATE} s`);
  for (let i = 1; i < segments.length; i++) assert.equal(segments[i].startSample, segments[i - 1].endSample, 'contiguous');
  const covered = segments[segments.length - 1].speechEndSample - segments[0].speechStartSample;
  assert.ok(covered > 44.5 * RATE, `covers ${covered / RATE} s`);
  for (const s of segments) assert.deepEqual(s.samples, audio.subarray(s.startSample, s.endSample));
  assert.equal(analyzer.allSegments.length, segments.length);
});

test('retained audio stays bounded on a long stream of silences and short speech', async () => {
  const analyzer = new SpeechStreamAnalyzer(new EnergyVad());
  const block = concat([silence(4), voice(1)]);
  for (let i = 0; i < 60; i++) await analyzer.push(block); // 5 minutes
  // Only the open segment (none here) plus a second of margin is kept: far less than 5 minutes.
  const retained = (analyzer as unknown as { audioLength: number }).audioLength;
  assert.ok(retained < 8 * RATE, `retained ${retained / RATE} s of audio`);
});
