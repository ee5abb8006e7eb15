// Silero VAD v5 over 16 kHz audio: one speech probability per 512-sample chunk (32 ms).
//
// The model is recurrent: each run takes the previous chunk's last 64 samples (context), the
// 512 new samples and the state [2, 1, 128], and returns the probability and the next state.
// SileroVad keeps the state, the context and any partial chunk between process() calls, so
// feeding a stream in pieces of any size gives exactly the probabilities of feeding it whole.
//
// Cost: one instance = one onnxruntime session with one intra-op thread: measured here ~11 MB
// RSS and ~50 ms to load each, and ~140 µs of one core per 32 ms chunk (≈230× real time,
// bench/speech-vad.bench.ts). The state belongs to a stream, so each live
// stream needs its own instance (sessions are not shared, because run() calls of different
// streams would otherwise have to be serialised and their states juggled anyway).
import { AttuneError } from '../../../lib/errors.js';
import { type InferenceSession, type Ort, loadOnnxModel, loadOrt, modelPath } from '../../../models/loader.js';

export const SILERO_SAMPLE_RATE = 16_000;
/** New samples per model run at 16 kHz (32 ms). */
export const SILERO_CHUNK = 512;
/** Samples of the previous chunk the model sees in front of each chunk. */
export const SILERO_CONTEXT = 64;
const STATE_SIZE = 2 * 1 * 128;

export const SILERO_INPUTS = ['input', 'state', 'sr'] as const;
export const SILERO_OUTPUTS = ['output', 'stateN'] as const;

export interface SileroVadOptions {
  /** Path of the ONNX file; default: the fetched `silero/silero_vad.onnx`. */
  modelPath?: string;
}

export class SileroVad {
  private readonly session: InferenceSession;
  /** onnxruntime-node, imported when the first model is opened (models/loader.ts). */
  private readonly ort: Ort;
  private readonly sr: InstanceType<Ort['Tensor']>;
  private state = new Float32Array(STATE_SIZE);
  /** Context (first 64) + chunk (next 512): the model's input, rebuilt in place per run. */
  private readonly window = new Float32Array(SILERO_CONTEXT + SILERO_CHUNK);
  /** Samples of the current, not yet complete chunk. */
  private pending = 0;
  private samplesConsumed = 0;

  private constructor(session: InferenceSession, ort: Ort) {
    this.session = session;
    this.ort = ort;
    this.sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(SILERO_SAMPLE_RATE)]), []);
  }

  /** Opens a session on the Silero v5 model (checks its signature). One instance per stream. */
  static async load(opts: SileroVadOptions = {}): Promise<SileroVad> {
    const path = opts.modelPath ?? modelPath('silero', 'silero_vad.onnx');
    const session = await loadOnnxModel(path, { expectInputs: SILERO_INPUTS, expectOutputs: SILERO_OUTPUTS });
    return new SileroVad(session, await loadOrt());
  }

  /** Index of the first sample of the next chunk whose probability process() will return. */
  get nextChunkStartSample(): number {
    return this.samplesConsumed - this.pending;
  }

  /** Forgets the stream: zero state, zero context, no partial chunk. */
  reset(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.window.fill(0);
    this.pending = 0;
    this.samplesConsumed = 0;
  }

  /**
   * Feeds the next 16 kHz samples of the stream. Returns the speech probability (0..1) of each
   * chunk completed by them, in order; a trailing partial chunk waits for the next call.
   */
  async process(samples16k: Float32Array): Promise<Float32Array> {
    const total = this.pending + samples16k.length;
    const out = new Float32Array(Math.floor(total / SILERO_CHUNK));
    let read = 0;
    let produced = 0;
    while (read < samples16k.length) {
      const take = Math.min(SILERO_CHUNK - this.pending, samples16k.length - read);
      this.window.set(samples16k.subarray(read, read + take), SILERO_CONTEXT + this.pending);
      this.pending += take;
      read += take;
      if (this.pending === SILERO_CHUNK) {
        out[produced++] = await this.runChunk();
        // The last 64 samples of this window are the next chunk's context.
        this.window.copyWithin(0, SILERO_CHUNK, SILERO_CHUNK + SILERO_CONTEXT);
        this.pending = 0;
      }
    }
    this.samplesConsumed += samples16k.length;
    return out;
  }

  private async runChunk(): Promise<number> {
    let result: InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run({
        // slice(): the tensor must not alias the window we keep rewriting.
        input: new this.ort.Tensor('float32', this.window.slice(), [1, this.window.length]),
        state: new this.ort.Tensor('float32', this.state, [2, 1, 128]),
        sr: this.sr,
      });
    } catch (err) {
      throw new AttuneError('internal_error', `Silero VAD run failed: ${(err as Error).message}`);
    }
    this.state = new Float32Array(result.stateN.data as Float32Array);
    return (result.output.data as Float32Array)[0];
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
