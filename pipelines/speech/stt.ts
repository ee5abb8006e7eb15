// Synchronous speech-to-text of one short clip (POST /v1/speech/stt): the same front half and
// recognition as an upload's analysis, with nothing stored. Voice activity (Silero) cuts the
// clip into utterances exactly as the speech worker's analyzer does (stream/analyzer.ts), each
// is recognised and force-aligned in a recognition thread of this service's own
// (stream/recognition-thread.ts: off the event loop, so the HTTP server keeps answering), and
// the words come back with their times in seconds.
//
// Why in the serving process and not through the speech worker with a reply: the answer is
// wanted within the request, the clip is short (at most 60 s), and nothing of it is kept; a
// round trip over the bus would need a reply topic, a correlation id and a waiting request,
// and would queue a 5 s clip behind hours of uploads on the worker's partitions. Its own
// recognition thread keeps it from competing with the worker's backlog too. The models open
// on the first request (a process that never serves one never loads them), and clips are
// recognised one at a time: a request finds at most `maxWaiting` others ahead of it, else it
// is refused with 503 and Retry-After (the recogniser is one thread; more waiting would only
// time out).
import { AttuneError } from '../../lib/errors.js';
import { bareWord } from '../../lib/words.js';
import { SpeechStreamAnalyzer, type ClosedSegment } from './stream/analyzer.js';
import { RecognitionThread } from './stream/recognition-thread.js';
import type { SegmentTranscript } from './stream/recognition.js';
import { SileroVad } from './vad/silero.js';
import { DEFAULT_UPLOAD_MODEL } from './default-models.js';

const RATE = 16_000;
/** Samples fed to the analyzer at a time (as the worker gets them: 2 s frames). */
const STEP = 32_000;

export interface SttWord {
  /** The word as recognised, without the punctuation around it ("you," → "you"; the document's "Hello" of "Hello, welcome"). */
  word: string;
  /** As the recogniser wrote it, with its punctuation (Attune's addition). */
  text: string;
  /** Seconds from the start of the clip. */
  start: number;
  end: number;
  /** How the times were found: forced_alignment, or syllable_estimate when alignment failed. */
  timing_method: string;
}

export interface SttResult {
  text: string;
  language: 'en';
  /**
   * The recogniser's confidence in the text, 0..1: the mean of its words' confidences (each
   * the geometric mean of its tokens' probabilities, asr/confidence.ts); null without words.
   */
  confidence: number | null;
  duration_seconds: number;
  words: SttWord[];
  /** Recognition model used. */
  model: string;
  segments: Array<{ start: number; end: number; text: string }>;
}

export interface SpeechToTextOptions {
  /** Recognition model (default moonshine-base, the model of uploads). */
  model?: string;
  /** Forced alignment of the words (default true); off, words get syllable-spread times. */
  alignment?: boolean;
  /** Requests allowed to wait while one is recognised (default 4). */
  maxWaiting?: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class SpeechToText {
  readonly model: string;
  private readonly maxWaiting: number;
  private recognition: RecognitionThread | null = null;
  private vad: Promise<SileroVad> | null = null;
  /** The clip being recognised, then the ones waiting, chained. */
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private running = 0;
  private closed = false;

  constructor(private readonly opts: SpeechToTextOptions = {}) {
    this.model = opts.model ?? DEFAULT_UPLOAD_MODEL;
    this.maxWaiting = opts.maxWaiting ?? 4;
  }

  /** Requests recognised or waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting };
  }

  /** Recognises mono 16 kHz samples; refuses (503) when `maxWaiting` clips are already waiting. */
  transcribe(samples16k: Float32Array): Promise<SttResult> {
    if (this.closed) return Promise.reject(new AttuneError('unavailable', 'the server is shutting down', [{ reason: 'shutting_down' }]));
    if (this.running + this.waiting > this.maxWaiting) {
      return Promise.reject(
        new AttuneError('unavailable', `${this.running + this.waiting} speech-to-text requests are running or waiting here; retry shortly`, [
          { reason: 'stt_busy', waiting: this.waiting, retry_after_s: 5 },
        ]),
      );
    }
    this.waiting += 1;
    const run = this.tail.then(async () => {
      this.waiting -= 1;
      this.running += 1;
      try {
        return await this.recognise(samples16k);
      } finally {
        this.running -= 1;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    await this.recognition?.close();
    const vad = await this.vad?.catch(() => null);
    await vad?.release();
  }

  private async recognise(samples: Float32Array): Promise<SttResult> {
    this.recognition ??= new RecognitionThread({ defaultModel: this.model, alignment: this.opts.alignment !== false });
    this.vad ??= SileroVad.load();
    this.vad.catch(() => (this.vad = null));
    const vad = await this.vad;
    vad.reset();
    const analyzer = new SpeechStreamAnalyzer(vad);
    const segments: ClosedSegment[] = [];
    for (let at = 0; at < samples.length; at += STEP) segments.push(...(await analyzer.push(samples.subarray(at, Math.min(samples.length, at + STEP)))).segments);
    segments.push(...analyzer.finish().segments);
    const transcripts: SegmentTranscript[] = await Promise.all(segments.map((s) => this.recognition!.final(s, this.model)));
    return sttResult(transcripts, samples.length / RATE, this.model);
  }
}

/** The answer of POST /v1/speech/stt from the utterances' transcripts. */
export function sttResult(transcripts: SegmentTranscript[], durationS: number, model: string): SttResult {
  const words: SttWord[] = [];
  const confidences: number[] = [];
  for (const t of transcripts) {
    for (const w of t.words) {
      words.push({ word: bareWord(w.text), text: w.text, start: round3(w.startMs / 1000), end: round3(w.endMs / 1000), timing_method: w.method });
      // Token probabilities, where the recogniser reports them per word.
      const c = (w as { confidence?: unknown }).confidence;
      if (typeof c === 'number' && Number.isFinite(c)) confidences.push(c);
    }
  }
  const texts = transcripts.map((t) => t.text).filter((t) => t.length > 0);
  return {
    text: texts.join(' '),
    language: 'en',
    confidence: confidences.length > 0 && confidences.length === words.length ? round3(confidences.reduce((a, b) => a + b, 0) / confidences.length) : null,
    duration_seconds: round3(durationS),
    words,
    model,
    segments: transcripts.filter((t) => t.text.length > 0).map((t) => ({ start: round3(t.startMs / 1000), end: round3(t.endMs / 1000), text: t.text })),
  };
}
