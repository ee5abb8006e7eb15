// The synchronous speech-to-text service on a real clip: the transcript with word times in
// seconds inside the clip and the utterances; requests beyond those allowed to wait are refused
// with 503 stt_busy while the others are answered; a closed service refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readWavFile } from './wav.test-util.js';
import { wordErrors } from './asr/wer.js';
import { AttuneError } from '../../lib/errors.js';
import { SpeechToText, sttResult } from './stt.js';
import { bareWord } from '../../lib/words.js';

const data = new URL('../../../shared/data/speech/', import.meta.url).pathname;

test('a real clip: its transcript, words in seconds within the clip, one request at a time, 503 stt_busy past the waiting limit', async (tc) => {
  const clip = readWavFile(`${data}librispeech_251-118436-0001_M.wav`);
  assert.equal(clip.sampleRate, 16000);
  const stt = new SpeechToText({ model: 'moonshine-tiny', maxWaiting: 1 });
  try {
    // One runs, one waits, the third is refused at once.
    const first = stt.transcribe(clip.samples);
    const second = stt.transcribe(clip.samples);
    await assert.rejects(stt.transcribe(clip.samples), (err: unknown) => {
      assert.ok(err instanceof AttuneError);
      assert.equal(err.statusCode, 503);
      assert.equal(err.details[0].reason, 'stt_busy');
      assert.equal(err.details[0].retry_after_s, 5);
      return true;
    });
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(a, b, 'the same clip, the same answer');
    const durationS = clip.samples.length / 16000;
    const truth = 'I tell you it is not poison she cried';
    const wer = wordErrors(truth, a.text).wer;
    tc.diagnostic(`"${a.text}" WER ${(wer * 100).toFixed(1)} %, confidence ${a.confidence}, ${a.segments.length} segment(s)`);
    assert.ok(wer <= 0.15, `WER ${wer}`);
    assert.equal(a.language, 'en');
    assert.equal(a.model, 'moonshine-tiny');
    assert.equal(a.duration_seconds, Math.round(durationS * 1000) / 1000);
    assert.ok(a.segments.length >= 1 && a.segments.every((s) => s.start >= 0 && s.end <= durationS + 1e-3 && s.end > s.start));
    let previous = 0;
    for (const w of a.words) {
      assert.ok(w.start >= previous && w.end > w.start && w.end <= durationS + 1e-3, `${w.word} ${w.start}-${w.end}`);
      previous = w.start;
    }
    assert.deepEqual(stt.load, { running: 0, waiting: 0 });
  } finally {
    await stt.close();
  }
  await assert.rejects(stt.transcribe(new Float32Array(16000)), (err: unknown) => err instanceof AttuneError && err.statusCode === 503);
});

test('sttResult: utterances joined into one text, words in seconds, confidence the mean of the words only when every word has one', () => {
  const word = (text: string, startMs: number, endMs: number, confidence?: number) => ({ text, norm: text.toLowerCase(), startMs, endMs, method: 'forced_alignment' as const, ...(confidence === undefined ? {} : { confidence }) });
  const seg = (index: number, text: string, words: ReturnType<typeof word>[]) =>
    ({ index, startMs: words[0]?.startMs ?? 0, endMs: words.at(-1)?.endMs ?? 0, speechStartMs: 0, speechEndMs: 0, text, words, model: 'm', timingMethod: 'forced_alignment', filledPauses: [], computeMs: 0 }) as never;
  const r = sttResult([seg(0, 'Hello there.', [word('Hello', 120, 480, 0.9), word('there.', 500, 910, 0.7)]), seg(1, '', []), seg(2, 'Bye', [word('Bye', 2000, 2345, 0.5)])], 3.2, 'm');
  assert.equal(r.text, 'Hello there. Bye');
  // The document's words carry no punctuation ("Hello, welcome" → "Hello"); `text` keeps it.
  assert.deepEqual(r.words.map((w) => [w.word, w.text, w.start, w.end]), [['Hello', 'Hello', 0.12, 0.48], ['there', 'there.', 0.5, 0.91], ['Bye', 'Bye', 2, 2.345]]);
  assert.deepEqual(["you,", '"Quoted!"', "don't", 'well-known.', '—', "'90s"].map(bareWord), ['you', 'Quoted', "don't", 'well-known', '—', '90s']);
  assert.equal(r.confidence, 0.7);
  assert.equal(r.segments.length, 2, 'an empty utterance is not a segment');
  const partial = sttResult([seg(0, 'Hi you', [word('Hi', 0, 100, 0.9), word('you', 100, 200)])], 1, 'm');
  assert.equal(partial.confidence, null, 'a word without confidence: no mean over the others');
});
