// Needs the fetched models: `node models/fetch.mjs --only moonshine-tiny,moonshine-base`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAttuneError } from '../../../lib/errors.js';
import { modelPath } from '../../../models/loader.js';
import { readWavFile } from '../wav.test-util.js';
import { MoonshineRecognizer, type Transcription } from './moonshine.js';
import { encodeText } from './tokenizer.js';
import { wordErrors } from './wer.js';

const speechDir = new URL('../../../../shared/data/speech/', import.meta.url).pathname;
const clip = (name: string) => {
  const { sampleRate, samples } = readWavFile(join(speechDir, `${name}.wav`));
  assert.equal(sampleRate, 16000);
  return { samples, reference: readFileSync(join(speechDir, `${name}.txt`), 'utf8').trim() };
};

const clearReadClips = ['librispeech_251-137823-0002_M', 'librispeech_251-118436-0001_M', 'librispeech_3536-23268-0010_F', 'jfk_1961_inaugural_M'];
const otherClips = ['ami_ES2011a_headset0_40-46s_F_spontaneous', 'speechcommands_yes_no_go_stop_4spk'];

let tiny: MoonshineRecognizer;
before(async () => {
  tiny = await MoonshineRecognizer.load(); // tiny is the default
});
after(async () => {
  await tiny.release();
});

test('tiny: decoder geometry is read from the model', () => {
  assert.equal(tiny.model, 'moonshine-tiny');
  assert.deepEqual(tiny.shape, { layers: 6, kvHeads: 8, headDim: 36, hiddenSize: 288 });
});

for (const name of clearReadClips) {
  test(`tiny transcribes ${name} with WER ≤ 15 %`, async () => {
    const { samples, reference } = clip(name);
    const partials: string[] = [];
    const result = await tiny.transcribe(samples, { onPartial: (t) => partials.push(t) });
    const errors = wordErrors(reference, result.text);
    console.log(`tiny ${name}: WER ${(errors.wer * 100).toFixed(1)} % (S${errors.substitutions} D${errors.deletions} I${errors.insertions} / ${errors.referenceWords}) "${result.text}"`);
    assert.ok(errors.wer <= 0.15, `WER ${errors.wer} for "${result.text}" vs "${reference}"`);
    assert.equal(result.finished, true, 'stopped at EOS, not at the length cap');
    // One partial per generated token, growing towards the final text.
    assert.equal(partials.length, result.tokens.length);
    assert.equal(partials.at(-1), result.text);
    for (let i = 1; i < partials.length; i++) assert.ok(partials[i].startsWith(partials[i - 1]), `partial ${i - 1} "${partials[i - 1]}" → "${partials[i]}"`);
    // The ids Moonshine emits are the LLaMA vocabulary's own: re-encoding the text gives them back.
    assert.deepEqual(encodeText(result.text), result.tokens);
  });
}

for (const name of otherClips) {
  test(`tiny on ${name} (WER reported, not asserted)`, async () => {
    const { samples, reference } = clip(name);
    const result = await tiny.transcribe(samples);
    const errors = wordErrors(reference, result.text);
    console.log(`tiny ${name}: WER ${(errors.wer * 100).toFixed(1)} % (S${errors.substitutions} D${errors.deletions} I${errors.insertions} / ${errors.referenceWords}) "${result.text}"`);
    assert.ok(result.tokens.length <= Math.max(8, Math.ceil((samples.length / 16000) * 6)));
  });
}

test('the length cap stops decoding and reports it', async () => {
  const { samples } = clip('jfk_1961_inaugural_M');
  const result = await tiny.transcribe(samples, { maxTokens: 5 });
  assert.equal(result.tokens.length, 5);
  assert.equal(result.finished, false);
  assert.ok('And so, my fellow Americans'.startsWith(result.text), result.text);
});

test('silence and very short audio give no words; segments over 30 s are refused', async () => {
  assert.deepEqual(await tiny.transcribe(new Float32Array(800)), { text: '', tokens: [], finished: true, tokenLogProbs: [] });
  const silence = await tiny.transcribe(new Float32Array(16000 * 2));
  assert.ok(silence.tokens.length <= 12, `tokens for silence: ${silence.tokens.length}`);
  await assert.rejects(tiny.transcribe(new Float32Array(16000 * 31)), (err: unknown) => isAttuneError(err) && err.code === 'validation_error' && /30 s/.test(err.message));
});

test('concurrent calls on one recognizer are serialised and give the same text as alone', async () => {
  const a = clip('librispeech_251-137823-0002_M');
  const b = clip('librispeech_3536-23268-0010_F');
  const alone = await tiny.transcribe(a.samples);
  const [x, y] = await Promise.all([tiny.transcribe(a.samples), tiny.transcribe(b.samples)]);
  assert.deepEqual(x, alone);
  assert.ok(wordErrors(b.reference, y.text).wer <= 0.15, y.text);
});

test('base loads from a folder path, has its own geometry and transcribes JFK', async () => {
  // A folder with the two files under any name: the loader takes any model with the same signature.
  const dir = mkdtempSync(join(tmpdir(), 'attune-moonshine-'));
  let base: MoonshineRecognizer | undefined;
  try {
    for (const f of ['encoder_model.onnx', 'decoder_model_merged.onnx']) symlinkSync(modelPath('moonshine-base', f), join(dir, f));
    base = await MoonshineRecognizer.load({ model: dir });
    assert.deepEqual(base.shape, { layers: 8, kvHeads: 8, headDim: 52, hiddenSize: 416 });
    const { samples, reference } = clip('jfk_1961_inaugural_M');
    const result: Transcription = await base.transcribe(samples);
    const wer = wordErrors(reference, result.text).wer;
    console.log(`base jfk_1961_inaugural_M: WER ${(wer * 100).toFixed(1)} % "${result.text}"`);
    assert.ok(wer <= 0.15, result.text);
  } finally {
    await base?.release();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a folder without the model files, and a model with other names, are coded errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-moonshine-'));
  try {
    await assert.rejects(MoonshineRecognizer.load({ model: dir }), (err: unknown) => isAttuneError(err) && err.code === 'unavailable' && err.message.includes('encoder_model.onnx'));
    // Silero in place of the decoder: loads as ONNX but has none of the decoder's names.
    symlinkSync(modelPath('moonshine-tiny', 'encoder_model.onnx'), join(dir, 'encoder_model.onnx'));
    symlinkSync(modelPath('silero', 'silero_vad.onnx'), join(dir, 'decoder_model_merged.onnx'));
    await assert.rejects(MoonshineRecognizer.load({ model: dir }), (err: unknown) => isAttuneError(err) && err.code === 'unavailable' && /cache geometry|not a Moonshine/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(MoonshineRecognizer.load({ model: 'moonshine-huge' }), (err: unknown) => isAttuneError(err) && err.code === 'unavailable' && err.message.includes('node models/fetch.mjs --only moonshine-huge'));
});

test('a released recognizer refuses work', async () => {
  const r = await MoonshineRecognizer.load({ model: 'moonshine-tiny' });
  await r.release();
  await assert.rejects(r.transcribe(new Float32Array(16000)), (err: unknown) => isAttuneError(err) && err.code === 'unavailable');
});
