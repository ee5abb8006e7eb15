// Recognition in a worker thread. onnxruntime-node runs a session synchronously on the calling
// thread, and forced alignment is synchronous WebAssembly: on the main thread one utterance's
// recognition blocks every live stream's frames, events and sockets for up to a second
// (measured by bench/speech-live.bench.ts). Here the RecognitionQueue (models, alignment,
// filled pauses, finals before partials) lives in its own thread, on the other core, and the
// main thread only posts utterances and receives transcripts.
import { Worker } from 'node:worker_threads';
import { AttuneError } from '../../../lib/errors.js';
import type { ClosedSegment } from './analyzer.js';
import type { PartialResult, SegmentTranscript } from './recognition.js';
import type { StageTimes } from './stage-clock.js';

export interface RecognitionThreadOptions {
  /** Model opened at start, so a missing file fails the start (with the fetch command). */
  defaultModel: string;
  alignment: boolean;
}

/** Messages to the thread. */
export type ToThread =
  | { type: 'init'; defaultModel: string; alignment: boolean }
  | { type: 'final'; id: number; segment: Omit<ClosedSegment, 'samples'>; samples: Float32Array; model: string }
  | { type: 'partial'; id: number; stream: string; samples: Float32Array; model: string }
  | { type: 'stage-times'; id: number; reset: boolean }
  | { type: 'close' };

/** Messages from the thread. */
export type FromThread =
  | { type: 'ready' }
  | { type: 'final'; id: number; transcript: SegmentTranscript }
  | { type: 'partial'; id: number; text: string | null; confidence?: number | null }
  | { type: 'stage-times'; id: number; stages: StageTimes }
  | { type: 'failed'; id: number | null; code: string; message: string };

/** Compiled, the thread's .js sits beside this file; from sources it registers tsx first (workers do not inherit loader flags). */
function spawnRecognitionThread(): Worker {
  const here = new URL(import.meta.url);
  if (!here.pathname.endsWith('.ts')) return new Worker(new URL('./recognition-thread-main.js', here));
  const tsx = import.meta.resolve('tsx/esm/api');
  const thread = new URL('./recognition-thread-main.ts', here).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(thread)}); })`, { eval: true });
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
  samples: number;
  kind: ToThread['type'];
}

export class RecognitionThread {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queuedSamples = 0;
  private doneWaiters: Array<() => void> = [];
  private closing = false;

  constructor(private readonly opts: RecognitionThreadOptions) {}

  /** Starts the thread and waits until its models are open. */
  start(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const worker = spawnRecognitionThread();
      this.worker = worker;
      let started = false;
      worker.on('message', (m: FromThread) => {
        if (m.type === 'ready') {
          started = true;
          resolve();
        } else if (m.type === 'failed' && m.id === null) {
          reject(new AttuneError(m.code as never, m.message));
        } else this.settle(m);
      });
      worker.on('error', (err) => {
        if (!started) reject(err);
        this.failAll(err);
      });
      worker.on('exit', (code) => {
        if (!started) reject(new AttuneError('unavailable', `recognition thread exited with code ${code} before it was ready`));
        this.failAll(new AttuneError('unavailable', `recognition thread exited with code ${code}`));
        // The next request starts a fresh thread.
        this.worker = null;
        this.ready = null;
      });
      worker.postMessage({ type: 'init', defaultModel: this.opts.defaultModel, alignment: this.opts.alignment } satisfies ToThread);
    });
    return this.ready;
  }

  /** Seconds of final-utterance audio sent and not yet transcribed. */
  get backlogSeconds(): number {
    return this.queuedSamples / 16_000;
  }

  async backlogBelow(seconds: number): Promise<void> {
    while (this.backlogSeconds > seconds) await new Promise<void>((r) => this.doneWaiters.push(r));
  }

  async final(segment: ClosedSegment, model: string): Promise<SegmentTranscript> {
    const { samples, ...rest } = segment;
    return this.request('final', samples.length, (id) => ({ type: 'final', id, segment: rest, samples, model }));
  }

  async partial(stream: string, samples: Float32Array, model: string): Promise<PartialResult | null> {
    return this.request<PartialResult | null>('partial', 0, (id) => ({ type: 'partial', id, stream, samples, model })).catch(() => null);
  }

  /**
   * Wall time inside each recognition stage, measured in the thread where they run (see
   * stage-clock.ts): final_recognition, final_alignment, final_total (a final's whole run, filled
   * pauses included), partial_recognition. With `reset`, the thread's totals restart from zero.
   * Answered between two utterances: a running one is counted when it ends.
   */
  async stageTimes(reset = false): Promise<StageTimes> {
    return this.request<StageTimes>('stage-times', 0, (id) => ({ type: 'stage-times', id, reset }));
  }

  async close(): Promise<void> {
    this.closing = true;
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((r) => worker.once('exit', () => r()));
    worker.postMessage({ type: 'close' } satisfies ToThread);
    await exited;
  }

  private async request<T>(kind: ToThread['type'], samples: number, message: (id: number) => ToThread): Promise<T> {
    if (this.closing) throw new AttuneError('unavailable', 'the recognition thread is closed');
    await this.start();
    const id = this.nextId++;
    const msg = message(id);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, samples, kind });
      this.queuedSamples += samples;
      // The audio is a copy made for this request: hand its memory over instead of copying again.
      const buffer = 'samples' in msg ? (msg.samples.buffer as ArrayBuffer) : null;
      this.worker!.postMessage(msg, buffer && buffer.byteLength === (msg as { samples: Float32Array }).samples.byteLength ? [buffer] : []);
    });
  }

  private settle(m: Exclude<FromThread, { type: 'ready' }>): void {
    if (m.id === null) return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.queuedSamples -= p.samples;
    if (m.type === 'final') p.resolve(m.transcript);
    else if (m.type === 'partial') p.resolve(m.text === null ? null : { text: m.text, confidence: m.confidence ?? null });
    else if (m.type === 'stage-times') p.resolve(m.stages);
    else p.reject(new AttuneError(m.code as never, m.message));
    for (const w of this.doneWaiters.splice(0)) w();
  }

  private failAll(err: unknown): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      this.queuedSamples -= p.samples;
      p.reject(err);
    }
    for (const w of this.doneWaiters.splice(0)) w();
  }
}
