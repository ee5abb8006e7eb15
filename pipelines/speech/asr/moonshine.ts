// Moonshine speech recognition (encoder + merged decoder with a KV cache) through
// onnxruntime-node, with greedy decoding written here. One recognizer holds two sessions;
// transcribe() calls on one recognizer are serialised, because the sessions are single-threaded
// and the pipeline scales by running one recognizer per worker rather than sharing one.
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { AttuneError } from '../../../lib/errors.js';
import { loadOnnxModel, loadOrt, modelPath, type InferenceSession, type Ort } from '../../../models/loader.js';
import { BOS_TOKEN, EOS_TOKEN, decodePartial, decodeTokens } from './tokenizer.js';

export const SAMPLE_RATE = 16000;
/** Longest segment accepted: Moonshine was trained on utterances up to about 30 s. */
export const MAX_SEGMENT_S = 30;
/** Shortest segment worth decoding; below this the encoder yields too few frames. */
export const MIN_SEGMENT_S = 0.1;
/** Moonshine's own cap on output length: about 6 tokens per second of audio. */
export const TOKENS_PER_SECOND = 6;

export type MoonshineModelName = 'moonshine-tiny' | 'moonshine-base';

export interface MoonshineLoadOptions {
  /** A fetched model id (tiny is the default) or a folder holding encoder_model.onnx and decoder_model_merged.onnx. */
  model?: MoonshineModelName | (string & {});
}

export interface TranscribeOptions {
  /** Called with the text so far each time a token arrives (not after EOS). */
  onPartial?: (text: string) => void;
  /** Cap on generated tokens; default ceil(seconds × 6), at least 8. */
  maxTokens?: number;
}

export interface Transcription {
  text: string;
  /** Generated ids, without the start token and without EOS. */
  tokens: number[];
  /** False when decoding stopped at the length cap instead of EOS. */
  finished: boolean;
  /**
   * Natural log of the probability the decoder gave each generated token (softmax of its logits
   * at that step), one per entry of `tokens`: the basis of word confidences (asr/confidence.ts).
   */
  tokenLogProbs: number[];
}

/** Decoder shape read from the model's input metadata. */
export interface MoonshineShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  hiddenSize: number;
}

const ENCODER_FILE = 'encoder_model.onnx';
const DECODER_FILE = 'decoder_model_merged.onnx';
const cacheParts = ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'] as const;

function resolveModelFiles(model: string): { encoder: string; decoder: string } {
  // A name like "moonshine-tiny" is a fetched model id; anything with a path separator is a folder.
  if (!isAbsolute(model) && !model.includes('/') && !model.includes('\\')) {
    return { encoder: modelPath(model, ENCODER_FILE), decoder: modelPath(model, DECODER_FILE) };
  }
  const dir = resolve(model);
  const files = { encoder: join(dir, ENCODER_FILE), decoder: join(dir, DECODER_FILE) };
  for (const path of Object.values(files)) {
    if (!existsSync(path)) {
      throw new AttuneError('unavailable', `Moonshine model file ${path} is missing`, [{ field: 'model', reason: 'model_missing', path }]);
    }
  }
  return files;
}

/** Layer count and cache geometry, from the names and shapes of the decoder's inputs. */
export function readDecoderShape(decoder: InferenceSession): MoonshineShape {
  const layerIds = new Set<number>();
  for (const name of decoder.inputNames) {
    const m = /^past_key_values\.(\d+)\.decoder\.key$/.exec(name);
    if (m) layerIds.add(Number(m[1]));
  }
  const layers = layerIds.size;
  const meta = (name: string) => decoder.inputMetadata.find((m) => m.name === name);
  const key = meta('past_key_values.0.decoder.key');
  const hidden = meta('encoder_hidden_states');
  const keyShape = key && key.isTensor ? key.shape : [];
  const hiddenShape = hidden && hidden.isTensor ? hidden.shape : [];
  const kvHeads = keyShape[1];
  const headDim = keyShape[3];
  const hiddenSize = hiddenShape[2];
  if (layers === 0 || [...Array(layers).keys()].some((i) => !layerIds.has(i)) || typeof kvHeads !== 'number' || typeof headDim !== 'number' || typeof hiddenSize !== 'number') {
    throw new AttuneError('unavailable', 'Moonshine decoder does not declare its cache geometry (past_key_values.<layer>.decoder.key as [batch, heads, past, head_dim])', [
      { field: 'signature', reason: 'model_unusable', message: 'unknown cache shape', layers, keyShape: JSON.stringify(keyShape) },
    ]);
  }
  return { layers, kvHeads, headDim, hiddenSize };
}

function cacheNames(prefix: 'past_key_values' | 'present', layers: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < layers; i++) for (const part of cacheParts) names.push(`${prefix}.${i}.${part}`);
  return names;
}

/** log softmax of row `row` of a [rows, width] float array, at `index` (max-shifted, so large logits do not overflow). */
export function logSoftmaxAt(data: Float32Array, row: number, width: number, index: number): number {
  const start = row * width;
  let max = -Infinity;
  for (let j = 0; j < width; j++) if (data[start + j] > max) max = data[start + j];
  let sum = 0;
  for (let j = 0; j < width; j++) sum += Math.exp(data[start + j] - max);
  return data[start + index] - max - Math.log(sum);
}

/** Index of the largest value in row `row` of a [rows, width] float array. */
function argmaxRow(data: Float32Array, row: number, width: number): number {
  const start = row * width;
  let best = 0;
  let bestValue = data[start];
  for (let j = 1; j < width; j++) {
    const v = data[start + j];
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}

export class MoonshineRecognizer {
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  private constructor(
    readonly model: string,
    private readonly encoder: InferenceSession,
    private readonly decoder: InferenceSession,
    readonly shape: MoonshineShape,
    /** onnxruntime-node, imported when the first model is opened (models/loader.ts). */
    private readonly ort: Ort,
  ) {}

  /**
   * Opens the encoder and the merged decoder. Any model whose decoder has the Moonshine
   * names (any number of layers, heads, widths) is accepted; others get AttuneError('unavailable').
   */
  static async load(opts: MoonshineLoadOptions = {}): Promise<MoonshineRecognizer> {
    const model = opts.model ?? 'moonshine-tiny';
    const files = resolveModelFiles(model);
    const encoder = await loadOnnxModel(files.encoder, { expectInputs: ['input_values'], expectOutputs: ['last_hidden_state'] });
    let decoder: InferenceSession | undefined;
    try {
      // Open without names first: the layer count, hence the cache names, comes from the model.
      decoder = await loadOnnxModel(files.decoder);
      const shape = readDecoderShape(decoder);
      const expectInputs = ['input_ids', 'encoder_hidden_states', 'use_cache_branch', ...cacheNames('past_key_values', shape.layers)];
      const expectOutputs = ['logits', ...cacheNames('present', shape.layers)];
      const missing = [...expectInputs.filter((n) => !decoder!.inputNames.includes(n)), ...expectOutputs.filter((n) => !decoder!.outputNames.includes(n))];
      const extra = [...decoder.inputNames.filter((n) => !expectInputs.includes(n)), ...decoder.outputNames.filter((n) => !expectOutputs.includes(n))];
      if (missing.length || extra.length) {
        throw new AttuneError('unavailable', `model ${files.decoder} is not a Moonshine merged decoder: missing ${missing.join(', ') || 'none'}; unexpected ${extra.join(', ') || 'none'}`, [
          { field: 'signature', reason: 'model_unusable', message: 'names differ', path: files.decoder },
        ]);
      }
      return new MoonshineRecognizer(model, encoder, decoder, shape, await loadOrt());
    } catch (err) {
      await encoder.release();
      if (decoder) await decoder.release();
      throw err;
    }
  }

  /**
   * Greedy transcription of one segment of 16 kHz mono audio (0.1 s to 30 s; shorter
   * gives empty text). Calls on one recognizer run one after another.
   */
  transcribe(samples16k: Float32Array, opts: TranscribeOptions = {}): Promise<Transcription> {
    const run = this.queue.then(() => this.decode(samples16k, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async decode(samples: Float32Array, opts: TranscribeOptions): Promise<Transcription> {
    if (this.released) throw new AttuneError('unavailable', 'the Moonshine recognizer has been released');
    const seconds = samples.length / SAMPLE_RATE;
    if (seconds > MAX_SEGMENT_S) {
      throw new AttuneError('validation_error', `speech segment of ${seconds.toFixed(2)} s is longer than ${MAX_SEGMENT_S} s; split it at pauses first`, [
        { field: 'samples', reason: 'invalid_argument', message: 'too long', seconds, max: MAX_SEGMENT_S },
      ]);
    }
    if (seconds < MIN_SEGMENT_S) return { text: '', tokens: [], finished: true, tokenLogProbs: [] };
    const maxTokens = opts.maxTokens ?? Math.max(8, Math.ceil(seconds * TOKENS_PER_SECOND));

    const { last_hidden_state: hidden } = await this.encoder.run({ input_values: new this.ort.Tensor('float32', samples, [1, samples.length]) });

    const { layers, kvHeads, headDim } = this.shape;
    const pastNames = cacheNames('past_key_values', layers);
    const presentNames = cacheNames('present', layers);
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = { encoder_hidden_states: hidden };
    // First step: empty past (length 0) and use_cache_branch false, so the decoder computes
    // the cross-attention keys/values from the encoder output; those stay fixed afterwards.
    const empty = new this.ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    for (const name of pastNames) feeds[name] = empty;
    // One int64 slot and one bool slot reused for every step (the tensors wrap these arrays).
    const inputId = new BigInt64Array(1);
    const inputIds = new this.ort.Tensor('int64', inputId, [1, 1]);
    const useCache = new Uint8Array(1);
    feeds.use_cache_branch = new this.ort.Tensor('bool', useCache, [1]);
    feeds.input_ids = inputIds;

    const tokens: number[] = [];
    const tokenLogProbs: number[] = [];
    let token = BOS_TOKEN;
    let finished = false;
    for (let step = 0; step < maxTokens; step++) {
      inputId[0] = BigInt(token);
      useCache[0] = step > 0 ? 1 : 0;
      const out = await this.decoder.run(feeds);
      const logits = out.logits;
      const width = logits.dims[2];
      const row = logits.dims[1] - 1;
      token = argmaxRow(logits.data as Float32Array, row, width);
      for (let i = 0; i < pastNames.length; i++) {
        // On cached steps the encoder ("cross") outputs are not recomputed; keep the first ones.
        if (step === 0 || cacheParts[i % 4].startsWith('decoder')) feeds[pastNames[i]] = out[presentNames[i]];
      }
      if (token === EOS_TOKEN) {
        finished = true;
        break;
      }
      tokens.push(token);
      tokenLogProbs.push(logSoftmaxAt(logits.data as Float32Array, row, width, token));
      opts.onPartial?.(decodePartial(tokens));
    }
    return { text: decodeTokens(tokens), tokens, finished, tokenLogProbs };
  }

  /** Releases both sessions; later transcribe() calls fail with AttuneError('unavailable'). */
  async release(): Promise<void> {
    await this.queue;
    if (this.released) return;
    this.released = true;
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}
