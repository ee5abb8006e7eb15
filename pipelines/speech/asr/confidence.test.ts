// Word confidences from Moonshine's token probabilities: the grouping of tokens into words, the
// log-softmax, and on real speech: every clear clip read with white noise added (0 dB SNR,
// seeded) gets a lower mean word confidence than the clean clip.
// Needs the fetched models: `node models/fetch.mjs --only moonshine-tiny`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readWavFile } from '../wav.test-util.js';
import { MoonshineRecognizer, logSoftmaxAt } from './moonshine.js';
import { encodeText } from './tokenizer.js';
import { tokenWords, utteranceConfidence } from './confidence.js';
import { splitWords, wordConfidences } from '../stream/recognition.js';
import { seededRandom } from '../../../test/seeded-random.js';

const speechDir = new URL('../../../../shared/data/speech/', import.meta.url).pathname;
const CLIPS = ['librispeech_251-137823-0002_M', 'librispeech_251-118436-0001_M', 'librispeech_3536-23268-0010_F', 'jfk_1961_inaugural_M'];

test('logSoftmaxAt is log(exp(x_i) / sum exp(x)), also for logits far from 0', () => {
  const row = new Float32Array([1, 2, 3, 0, 1000, 1001, 999, 1000]);
  const direct = Math.log(Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(0)));
  assert.ok(Math.abs(logSoftmaxAt(row, 0, 4, 2) - direct) < 1e-6);
  // Second row: naive exp(1000) overflows; shifted by the max it is log(e / (1 + e + 1/e + 1)).
  const e = Math.E;
  assert.ok(Math.abs(logSoftmaxAt(row, 1, 4, 1) - Math.log(e / (1 + e + 1 / e + 1))) < 1e-6);
});

test('tokens are grouped into words at ▁ pieces, punctuation stays with its word, confidence is exp(mean log p)', () => {
  const ids = encodeText('Good morning, everyone.');
  const lps = ids.map((_, i) => Math.log(0.5 + 0.1 * (i % 3)));
  const words = tokenWords(ids, lps);
  assert.deepEqual(words.map((w) => w.text), ['Good', 'morning,', 'everyone.']);
  // Recompute each word's tokens independently of the grouping code: encode the words one by one.
  let k = 0;
  for (const w of words) {
    const n = encodeText(w.text).length;
    const mean = lps.slice(k, k + n).reduce((a, b) => a + b, 0) / n;
    assert.ok(Math.abs(w.confidence - Math.exp(mean)) < 1e-12, w.text);
    k += n;
  }
  assert.equal(k, ids.length);
  const text = 'Good morning, everyone.';
  assert.deepEqual(wordConfidences(splitWords(text), ids, lps), words.map((w) => w.confidence));
  assert.deepEqual(wordConfidences(splitWords(text), ids, undefined), [null, null, null], 'no probabilities: unknown, not made up');
  assert.ok(Math.abs(utteranceConfidence(ids, lps)! - Math.exp(lps.reduce((a, b) => a + b, 0) / lps.length)) < 1e-12);
  assert.equal(utteranceConfidence([], []), null);
});

const rng = seededRandom;

/** The clip plus white Gaussian noise at `snrDb` (noise power from the clip's own mean power). */
function withNoise(samples: Float32Array, snrDb: number, seed: number): Float32Array {
  const power = samples.reduce((a, x) => a + x * x, 0) / samples.length;
  const sd = Math.sqrt(power / 10 ** (snrDb / 10));
  const rand = rng(seed);
  return samples.map((x) => {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return x + sd * g;
  });
}

let tiny: MoonshineRecognizer;
before(async () => {
  tiny = await MoonshineRecognizer.load();
});
after(async () => {
  await tiny?.release();
});

test('real speech: each word has a confidence in (0, 1]; with noise added (0 dB SNR) the mean word confidence is lower on every clip', async () => {
  const rows: string[] = [];
  for (const [i, name] of CLIPS.entries()) {
    const { sampleRate, samples } = readWavFile(join(speechDir, `${name}.wav`));
    assert.equal(sampleRate, 16000);
    const clean = await tiny.transcribe(samples);
    const noisy = await tiny.transcribe(withNoise(samples, 0, 1000 + i));
    const cleanWords = wordConfidences(splitWords(clean.text), clean.tokens, clean.tokenLogProbs);
    assert.ok(cleanWords.length > 0, name);
    for (const c of cleanWords) assert.ok(c !== null && c > 0 && c <= 1, `${name}: ${c}`);
    const meanOf = (t: typeof clean) => {
      const ws = tokenWords(t.tokens, t.tokenLogProbs);
      return ws.length === 0 ? 0 : ws.reduce((a, w) => a + w.confidence, 0) / ws.length;
    };
    const c = meanOf(clean);
    const n = meanOf(noisy);
    rows.push(`${name}: clean ${c.toFixed(3)} "${clean.text}" | noisy ${n.toFixed(3)} "${noisy.text}"`);
    assert.ok(n < c, `${name}: noisy ${n} not below clean ${c}`);
  }
  console.log(rows.join('\n'));
});
