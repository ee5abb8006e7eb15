// Needs the fetched models: `node models/fetch.mjs --only silero,moonshine-tiny`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAttuneError } from '../lib/errors.js';
import { fetchCommand, loadOnnxModel, loadOrt, modelPath, type InferenceSession } from './loader.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';

const speechWav = new URL('../../shared/data/speech/jfk_1961_inaugural_M.wav', import.meta.url).pathname;
const ort = await loadOrt();

const readPcm16Wav = (path: string) => readWavFile(path);

const sileroInputs = ['input', 'state', 'sr'];
const sileroOutputs = ['output', 'stateN'];

/**
 * Silero v5 at 16 kHz: each call takes 512 new samples behind the previous call's last 64
 * samples, plus the recurrent state [2, 1, 128]; returns one speech probability per chunk.
 */
async function sileroProbabilities(session: InferenceSession, samples: Float32Array): Promise<number[]> {
  const chunk = 512;
  const context = 64;
  let state = new Float32Array(2 * 128);
  const window = new Float32Array(context + chunk);
  const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  const probs: number[] = [];
  for (let start = 0; start + chunk <= samples.length; start += chunk) {
    window.copyWithin(0, chunk, chunk + context); // last 64 samples of the previous window
    window.set(samples.subarray(start, start + chunk), context);
    const out = await session.run({
      input: new ort.Tensor('float32', window.slice(), [1, window.length]),
      state: new ort.Tensor('float32', state, [2, 1, 128]),
      sr,
    });
    probs.push((out.output.data as Float32Array)[0]);
    state = new Float32Array(out.stateN.data as Float32Array);
  }
  return probs;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('Silero VAD loads with its v5 signature and tells speech from silence', async () => {
  const session = await loadOnnxModel(modelPath('silero', 'silero_vad.onnx'), { expectInputs: sileroInputs, expectOutputs: sileroOutputs });
  try {
    assert.deepEqual([...session.inputNames].sort(), [...sileroInputs].sort());
    assert.deepEqual([...session.outputNames].sort(), [...sileroOutputs].sort());

    const { sampleRate, samples } = readPcm16Wav(speechWav);
    assert.equal(sampleRate, 16000);
    const speech = await sileroProbabilities(session, samples);
    const silence = await sileroProbabilities(session, new Float32Array(16000));
    assert.equal(speech.length, Math.floor(samples.length / 512));
    assert.equal(silence.length, 31);
    for (const p of [...speech, ...silence]) assert.ok(p >= 0 && p <= 1, `probability ${p}`);

    const speechMean = mean(speech);
    const speechyShare = speech.filter((p) => p > 0.5).length / speech.length;
    console.log(`silero: speech mean p=${speechMean.toFixed(3)}, share>0.5=${speechyShare.toFixed(2)}; silence max p=${Math.max(...silence).toFixed(4)}`);
    assert.ok(Math.max(...silence) < 0.1, `silence max ${Math.max(...silence)}`);
    // The clip is an oration with clear pauses, so not every chunk is speech, but most are.
    assert.ok(speechyShare > 0.5, `share of speech chunks ${speechyShare}`);
    assert.ok(speechMean > mean(silence) + 0.4, `speech mean ${speechMean} vs silence mean ${mean(silence)}`);
  } finally {
    await session.release();
  }
});

// Moonshine tiny has 6 decoder layers; each carries decoder and encoder key/value caches.
const layers = 6;
const cacheNames = (prefix: string) =>
  Array.from({ length: layers }, (_, i) => ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'].map((k) => `${prefix}.${i}.${k}`)).flat();

test('Moonshine tiny encoder and merged decoder load with the expected signature', async () => {
  const encoder = await loadOnnxModel(modelPath('moonshine-tiny', 'encoder_model.onnx'), {
    expectInputs: ['input_values'],
    expectOutputs: ['last_hidden_state'],
  });
  const decoder = await loadOnnxModel(modelPath('moonshine-tiny', 'decoder_model_merged.onnx'), {
    expectInputs: ['input_ids', 'encoder_hidden_states', 'use_cache_branch', ...cacheNames('past_key_values')],
    expectOutputs: ['logits', ...cacheNames('present')],
  });
  try {
    console.log(`moonshine-tiny encoder: in ${encoder.inputNames.join(', ')}; out ${encoder.outputNames.join(', ')}`);
    console.log(`moonshine-tiny decoder: in ${decoder.inputNames.join(', ')}; out ${decoder.outputNames.join(', ')}`);
    // One second of audio through the encoder gives hidden states of width 288 (tiny).
    const out = await encoder.run({ input_values: new ort.Tensor('float32', new Float32Array(16000), [1, 16000]) });
    const dims = out.last_hidden_state.dims;
    assert.equal(dims.length, 3);
    assert.equal(dims[0], 1);
    assert.ok(dims[1] > 30 && dims[1] < 60, `frames for 1 s: ${dims[1]}`);
    assert.equal(dims[2], 288);
  } finally {
    await encoder.release();
    await decoder.release();
  }
});

test('a model with other names is refused with a coded error naming the difference', async () => {
  await assert.rejects(
    loadOnnxModel(modelPath('silero', 'silero_vad.onnx'), { expectInputs: ['input', 'h', 'c', 'sr'], expectOutputs: sileroOutputs }),
    (err: unknown) => {
      assert.ok(isAttuneError(err));
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /missing inputs h, c/);
      assert.match(err.message, /unexpected inputs state/);
      return true;
    },
  );
});

test('a missing model file names the command that fetches it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-models-test-'));
  try {
    const check = (err: unknown) => {
      assert.ok(isAttuneError(err));
      assert.equal(err.code, 'unavailable');
      assert.equal(err.statusCode, 503);
      assert.ok(err.message.includes('node models/fetch.mjs --only moonshine-base'), err.message);
      assert.equal(err.details[0].command, fetchCommand('moonshine-base'));
      return true;
    };
    assert.throws(() => modelPath('moonshine-base', 'encoder_model.onnx', { dir }), check);
    // Through the environment variable too, as the pipeline uses it.
    const saved = process.env.ATTUNE_MODELS_DIR;
    process.env.ATTUNE_MODELS_DIR = dir;
    try {
      assert.throws(() => modelPath('moonshine-base', 'encoder_model.onnx'), check);
    } finally {
      if (saved === undefined) delete process.env.ATTUNE_MODELS_DIR;
      else process.env.ATTUNE_MODELS_DIR = saved;
    }
    // A file that is there resolves to its path.
    mkdirSync(join(dir, 'moonshine-base'));
    writeFileSync(join(dir, 'moonshine-base', 'encoder_model.onnx'), 'x');
    assert.equal(modelPath('moonshine-base', 'encoder_model.onnx', { dir }), join(dir, 'moonshine-base', 'encoder_model.onnx'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not ONNX is a coded error, not a crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-models-test-'));
  try {
    const path = join(dir, 'broken.onnx');
    writeFileSync(path, Buffer.from('this is not a protobuf model'));
    await assert.rejects(loadOnnxModel(path), (err: unknown) => isAttuneError(err) && err.code === 'unavailable' && err.message.includes(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model ids and file names cannot leave the models folder', () => {
  assert.throws(() => modelPath('../etc', 'passwd'), (err: unknown) => isAttuneError(err) && err.code === 'validation_error');
  assert.throws(() => modelPath('silero', '../../package.json'), (err: unknown) => isAttuneError(err) && err.code === 'validation_error');
});
