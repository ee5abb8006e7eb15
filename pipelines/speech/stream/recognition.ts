// Recognition of closed speech segments, and partial results of open ones, for every stream
// a worker carries. One queue per worker: recognition is the expensive step (Moonshine tiny
// ≈ 49× real time on one core), so segments are recognised one at a time in arrival order and
// never compete with each other for the CPU. Final segments always go before partials; a
// stream has at most one partial waiting (a newer request replaces it), so partials use idle
// time and can never delay a final or pile up.
//
// A final segment is: recognised → split into words → word times by forced alignment with
// optional filled pauses in every gap (the syllable spread when alignment fails) → filled pauses:
// the acoustic rules' hits and the aligned fillers the audio bears out (fillers/evidence.ts),
// over the utterance and the silences around it that no other utterance has.
import type { MoonshineRecognizer } from '../asr/moonshine.js';
import { spreadBySyllables, type AlignedFiller, type WordAligner, type WordTimingMethod } from '../align/index.js';
import { findFilledPauses, type FilledPause } from '../fillers/index.js';
import { tokenWords, utteranceConfidence } from '../asr/confidence.js';
import type { ClosedSegment } from './analyzer.js';
import { splitWords } from '../../../lib/words.js';

export interface TranscriptWord {
  /** As recognised, with its punctuation ("Americans,"): the filler rules read punctuation. */
  text: string;
  /** Lower case, without punctuation: what is stored and aligned. */
  norm: string;
  startMs: number;
  endMs: number;
  method: WordTimingMethod;
  /** The recogniser's confidence in the word, 0..1 (asr/confidence.ts); null (or absent) when its tokens could not be matched to it. */
  confidence?: number | null;
}

export interface SegmentTranscript {
  index: number;
  startMs: number;
  endMs: number;
  /** Unpadded speech bounds (voice activity), ms. */
  speechStartMs: number;
  speechEndMs: number;
  text: string;
  words: TranscriptWord[];
  /** exp(mean log p) over the utterance's tokens; null (or absent) without any. */
  confidence?: number | null;
  model: string;
  /** forced_alignment when the aligner placed the words, else syllable_estimate. */
  timingMethod: WordTimingMethod;
  /** Why alignment fell back, when it did. */
  alignmentNote?: string;
  filledPauses: FilledPause[];
  /** Filled pauses the forced alignment placed between the words (candidates; see fillers/). */
  alignedFillers?: AlignedFiller[];
  /** Wall-clock ms spent recognising, aligning and detecting. */
  computeMs: number;
}

// The word split lives in lib/ (the API finds stored words in their segment's text with it).
export { normaliseWord, splitWords } from '../../../lib/words.js';

/**
 * Each word of splitWords(text) with the confidence of the token word it came from (a token
 * word that splits into several words gives each its confidence); all null when the two do not
 * line up (never seen: both split the same decoded text at its spaces).
 */
export function wordConfidences(words: ReadonlyArray<{ text: string }>, tokens: readonly number[], logProbs: readonly number[] | undefined): Array<number | null> {
  if (!logProbs || logProbs.length !== tokens.length) return words.map(() => null);
  const out: number[] = [];
  for (const tw of tokenWords(tokens, logProbs)) for (const _ of splitWords(tw.text)) out.push(tw.confidence);
  return out.length === words.length ? out : words.map(() => null);
}

export interface RecognitionOptions {
  /** Opens (once) and returns the recogniser of a model. */
  recognizer: (model: string) => Promise<MoonshineRecognizer>;
  aligner: WordAligner | null;
  /** For tests and benchmarks: a clock for computeMs (default performance.now). */
  now?: () => number;
}

interface FinalJob {
  kind: 'final';
  segment: ClosedSegment;
  model: string;
  resolve: (t: SegmentTranscript) => void;
  reject: (e: unknown) => void;
}

/** A partial result: the open utterance's text so far and the recogniser's confidence in it (exp mean token log p). */
export interface PartialResult {
  text: string;
  confidence: number | null;
}

interface PartialJob {
  kind: 'partial';
  stream: string;
  samples: Float32Array;
  model: string;
  resolve: (result: PartialResult | null) => void;
}

export class RecognitionQueue {
  private readonly finals: FinalJob[] = [];
  private readonly partials = new Map<string, PartialJob>();
  private running = false;
  private queuedSamples = 0;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly now: () => number;

  constructor(private readonly opts: RecognitionOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** Seconds of final-segment audio waiting (the backlog a worker throttles on). */
  get backlogSeconds(): number {
    return this.queuedSamples / 16_000;
  }

  /** Recognises a closed segment; results come back in the order segments were queued. */
  final(segment: ClosedSegment, model: string): Promise<SegmentTranscript> {
    return new Promise((resolve, reject) => {
      this.finals.push({ kind: 'final', segment, model, resolve, reject });
      this.queuedSamples += segment.samples.length;
      this.pump();
    });
  }

  /**
   * Text of an open segment so far, when the queue has time for it: null when a newer partial
   * of the stream replaced this one, or it could not run. Never rejects.
   */
  partial(stream: string, samples: Float32Array, model: string): Promise<PartialResult | null> {
    return new Promise((resolve) => {
      this.partials.get(stream)?.resolve(null);
      this.partials.set(stream, { kind: 'partial', stream, samples, model, resolve });
      this.pump();
    });
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && this.finals.length === 0 && this.partials.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves once the final backlog is at most `seconds`. */
  async backlogBelow(seconds: number): Promise<void> {
    while (this.backlogSeconds > seconds) await this.nextDone();
  }

  private doneWaiters: Array<() => void> = [];
  private nextDone(): Promise<void> {
    return new Promise((resolve) => this.doneWaiters.push(resolve));
  }

  private pump(): void {
    if (this.running) return;
    const job = this.finals.shift() ?? this.takePartial();
    if (!job) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    this.running = true;
    const done = () => {
      this.running = false;
      for (const w of this.doneWaiters.splice(0)) w();
      this.pump();
    };
    if (job.kind === 'final') {
      this.queuedSamples -= job.segment.samples.length;
      this.runFinal(job.segment, job.model).then(job.resolve, job.reject).finally(done);
    } else {
      this.runPartial(job).then(job.resolve, () => job.resolve(null)).finally(done);
    }
  }

  private takePartial(): PartialJob | undefined {
    const first = this.partials.entries().next();
    if (first.done) return undefined;
    this.partials.delete(first.value[0]);
    return first.value[1];
  }

  private async runPartial(job: PartialJob): Promise<PartialResult | null> {
    const recognizer = await this.opts.recognizer(job.model);
    const { text, tokens, tokenLogProbs } = await recognizer.transcribe(job.samples);
    return { text: text.trim(), confidence: tokenLogProbs ? utteranceConfidence(tokens, tokenLogProbs) : null };
  }

  private async runFinal(segment: ClosedSegment, model: string): Promise<SegmentTranscript> {
    const started = this.now();
    const recognizer = await this.opts.recognizer(model);
    const { text, tokens, tokenLogProbs } = await recognizer.transcribe(segment.samples);
    const words = splitWords(text.trim());
    const confidences = wordConfidences(words, tokens, tokenLogProbs);
    const startMs = Math.round(segment.startMs);
    const endMs = Math.round(segment.endMs);
    let timed: TranscriptWord[] = [];
    let timingMethod: WordTimingMethod = 'syllable_estimate';
    let alignmentNote: string | undefined;
    let alignedFillers: AlignedFiller[] = [];
    if (words.length > 0) {
      const aligned = this.opts.aligner
        ? await this.opts.aligner.align(segment.samples, words.map((w) => w.norm), startMs, { optionalFillers: true })
        : { words: spreadBySyllables(words.map((w) => w.norm), startMs, endMs), method: 'syllable_estimate' as const, reason: 'no aligner' };
      timingMethod = aligned.method;
      alignedFillers = aligned.fillers ?? [];
      alignmentNote = aligned.reason;
      timed = words.map((w, i) => ({
        text: w.text,
        norm: w.norm,
        startMs: Math.round(aligned.words[i].startMs),
        endMs: Math.round(aligned.words[i].endMs),
        method: aligned.words[i].method,
        confidence: confidences[i],
      }));
    }
    // Filled pauses: the acoustic rules and the alignment's fillers where the audio agrees
    // (fillers/evidence.ts), searched over the utterance with the silences around it (the
    // analyzer's context): voice activity leaves quiet hums and the tails of hesitations out.
    const search = segment.context ?? { startSample: segment.startSample, samples: segment.samples };
    const filledPauses = findFilledPauses(search.samples, alignedFillers, { offsetMs: (search.startSample * 1000) / 16_000 });
    return {
      index: segment.index,
      startMs,
      endMs,
      speechStartMs: Math.round((segment.speechStartSample * 1000) / 16_000),
      speechEndMs: Math.round((segment.speechEndSample * 1000) / 16_000),
      text: text.trim(),
      words: timed,
      confidence: tokenLogProbs ? utteranceConfidence(tokens, tokenLogProbs) : null,
      model,
      timingMethod,
      alignmentNote,
      filledPauses,
      alignedFillers,
      computeMs: this.now() - started,
    };
  }
}
