// The streaming front half of the speech pipeline for one audio stream: per-second voice
// features, voice activity, and speech segments of at most 30 s with their audio, ready for
// recognition.
//
// Two levels of segments. Voice activity segments (split at 100 ms of silence) give speech
// time and pauses. Recognition gets utterances: consecutive voice activity segments joined
// while the silence between them is shorter than utteranceGapMs (default 1.5 s) and the whole
// stays within 30 s. A recogniser given each short voice segment alone loses the context of
// the sentence and drops short words ("ask not" between two pauses); one given the phrase
// hears it whole, and forced alignment still places every word in time. Feed 16 kHz samples in order with push(); each call returns the seconds it
// completed and the segments it closed. No I/O and no clock: the voice activity model is
// passed in, so tests can drive it with a scripted one.
import { SegmentTracker, type SegmentOptions, type SpeechSegment } from '../vad/segments.js';
import { SILERO_CHUNK } from '../vad/silero.js';
import { SecondFeatureStream, type SecondFeatures } from './seconds.js';

/** What the analyzer needs from a voice activity model (SileroVad has this shape). */
export interface VoiceActivityModel {
  /** Probabilities of each 512-sample chunk completed by these samples; a partial chunk waits. */
  process(samples16k: Float32Array): Promise<Float32Array>;
}

/** An utterance for recognition: one or more voice activity segments and the silences between them. */
export interface ClosedSegment extends SpeechSegment {
  /** Position of the utterance in the stream, 0..n-1. */
  index: number;
  /** The utterance's audio, [startSample, endSample). */
  samples: Float32Array;
  /** Voice activity segments it joins. */
  parts: number;
  /**
   * The utterance's audio with the silences around it that belong to no other utterance (up to
   * CONTEXT_BEFORE_MS before it, and after it up to where the analyzer closed it or the next
   * utterance starts): the filler search looks here, because voice activity leaves out quiet
   * hums ("hmm") and the tails of hesitations. Recognition still reads `samples` only.
   */
  context?: { startSample: number; samples: Float32Array };
}

/** How far before an utterance its filler-search context may reach (audio retained between utterances is about 1 s). */
export const CONTEXT_BEFORE_MS = 1000;
/** The filler analysis's frame hop, samples (10 ms). */
const CONTEXT_FRAME = 160;

export interface AnalyzerStep {
  seconds: SecondFeatures[];
  segments: ClosedSegment[];
}

export interface AnalyzerOptions {
  segments?: SegmentOptions;
  /** A segment is cut before it grows past this (the recogniser's limit is 30 s). */
  maxSegmentMs?: number;
  /** Where to look for the quietest chunk to cut at, before the limit. */
  splitSearchMs?: number;
  /** Speech probability at or above which a chunk counts as speech for speech_ratio. */
  speechThreshold?: number;
  /** Voice activity segments closer than this are recognised together (default 1500 ms). */
  utteranceGapMs?: number;
}

const RATE = 16_000;

export class SpeechStreamAnalyzer {
  readonly features = new SecondFeatureStream();
  private readonly tracker: SegmentTracker;
  private readonly maxSegmentSamples: number;
  private readonly splitSearchChunks: number;
  private readonly speechThreshold: number;
  private readonly utteranceGap: number;
  /** Voice activity segments of the utterance being gathered. */
  private utterance: SpeechSegment[] = [];
  /** Retained audio, from absolute sample `audioStart`. */
  private audio = new Float32Array(RATE * 4);
  private audioLength = 0;
  private audioStart = 0;
  private scoredSamples = 0;
  /** Recent chunk probabilities (for choosing a split point), from chunk index `probStart`. */
  private recentProbs: number[] = [];
  private probStart = 0;
  private emittedSeconds = 0;
  private segmentCount = 0;
  /** Where the next utterance's context may start: the end of the previous one's. */
  private contextFrom = 0;
  readonly allSegments: SpeechSegment[] = [];

  constructor(private readonly vad: VoiceActivityModel, opts: AnalyzerOptions = {}) {
    this.tracker = new SegmentTracker(opts.segments);
    this.maxSegmentSamples = Math.round(((opts.maxSegmentMs ?? 29_500) * RATE) / 1000);
    this.splitSearchChunks = Math.max(1, Math.round(((opts.splitSearchMs ?? 4000) * RATE) / 1000 / SILERO_CHUNK));
    this.speechThreshold = opts.speechThreshold ?? 0.5;
    this.utteranceGap = Math.round(((opts.utteranceGapMs ?? 1500) * RATE) / 1000);
  }

  get sampleCount(): number {
    return this.features.sampleCount;
  }

  /** Start (samples) of the utterance being gathered or spoken, or null between utterances. */
  get openSegmentStart(): number | null {
    return this.utterance.length > 0 ? this.utterance[0].startSample : this.tracker.openStartSample;
  }

  /** Index the next utterance will get. */
  get nextSegmentIndex(): number {
    return this.segmentCount;
  }

  /** Copy of retained audio [from, to) in absolute samples (clipped to what is retained). */
  audioRange(from: number, to: number): Float32Array {
    const a = Math.max(from, this.audioStart) - this.audioStart;
    const b = Math.min(to, this.audioStart + this.audioLength) - this.audioStart;
    return b > a ? this.audio.slice(a, b) : new Float32Array(0);
  }

  async push(samples: Float32Array): Promise<AnalyzerStep> {
    this.retain(samples);
    this.features.push(samples);
    const probs = await this.vad.process(samples);
    const segments: ClosedSegment[] = [];
    for (let i = 0; i < probs.length; i++) {
      const chunkStart = this.scoredSamples;
      this.features.markVoiceActivity(chunkStart, SILERO_CHUNK, probs[i] >= this.speechThreshold);
      this.scoredSamples += SILERO_CHUNK;
      this.recentProbs.push(probs[i]);
      for (const s of this.tracker.push([probs[i]], chunkStart)) this.gather(s, segments);
      // A voice segment about to outgrow the recogniser is cut at the quietest recent chunk.
      const open = this.tracker.openStartSample;
      if (open !== null && this.scoredSamples - open >= this.maxSegmentSamples) {
        for (const s of this.tracker.splitAt(this.quietestChunkStart(open))) this.gather(s, segments);
      }
      // An utterance ends after utteranceGap of silence, or when speech now open would take it past the limit.
      if (this.utterance.length > 0) {
        const first = this.utterance[0].startSample;
        const lastEnd = this.utterance[this.utterance.length - 1].speechEndSample;
        const openNow = this.tracker.openStartSample;
        if (openNow === null ? this.scoredSamples - lastEnd >= this.utteranceGap : this.scoredSamples - first >= this.maxSegmentSamples) {
          segments.push(this.closeUtterance(this.scoredSamples));
        }
      }
    }
    this.trimProbs();
    this.trimAudio();
    return { seconds: this.takeSeconds(false), segments };
  }

  /** Ends the stream: closes an open segment and returns the last seconds. */
  finish(): AnalyzerStep {
    const segments: ClosedSegment[] = [];
    for (const s of this.tracker.flush(this.sampleCount)) this.gather(s, segments);
    if (this.utterance.length > 0) segments.push(this.closeUtterance(this.sampleCount));
    // Samples after the last whole chunk were never scored: they count as not speech.
    if (this.sampleCount > this.scoredSamples) this.features.markVoiceActivity(this.scoredSamples, this.sampleCount - this.scoredSamples, false);
    return { seconds: this.takeSeconds(true), segments };
  }

  private takeSeconds(final: boolean): SecondFeatures[] {
    // A second is complete for features once frames passed it, and for voice activity once
    // its samples were scored (a chunk straddling the next second is scored as a whole).
    const complete = final ? this.features.completeSeconds(true) : Math.min(this.features.completeSeconds(false), Math.floor(this.scoredSamples / RATE));
    const out: SecondFeatures[] = [];
    for (; this.emittedSeconds < complete; this.emittedSeconds++) out.push(this.features.features(this.emittedSeconds));
    return out;
  }

  /** Adds a closed voice segment to the utterance, closing the utterance first when the segment would not fit. */
  private gather(s: SpeechSegment, out: ClosedSegment[]): void {
    this.allSegments.push(s);
    if (this.utterance.length > 0) {
      const first = this.utterance[0];
      const last = this.utterance[this.utterance.length - 1];
      if (s.speechStartSample - last.speechEndSample >= this.utteranceGap || s.endSample - first.startSample > this.maxSegmentSamples) {
        out.push(this.closeUtterance(s.startSample));
      }
    }
    this.utterance.push(s);
  }

  /** Closes the utterance gathered so far; its context may reach up to `contextEnd` (the next utterance's start, or the audio seen). */
  private closeUtterance(contextEnd: number): ClosedSegment {
    const parts = this.utterance;
    this.utterance = [];
    const first = parts[0];
    const last = parts[parts.length - 1];
    // Whole 10 ms frames before the utterance: the filler analysis (10 ms hop) then puts the
    // utterance's own frames where it puts them without context (its rules are not re-sampled).
    const earliest = Math.max(this.contextFrom, first.startSample - Math.round((CONTEXT_BEFORE_MS * RATE) / 1000), this.audioStart);
    const contextStart = first.startSample - CONTEXT_FRAME * Math.max(0, Math.floor((first.startSample - earliest) / CONTEXT_FRAME));
    const contextStop = Math.max(last.endSample, Math.min(contextEnd, this.audioStart + this.audioLength));
    this.contextFrom = contextStop;
    return {
      startSample: first.startSample,
      endSample: last.endSample,
      startMs: first.startMs,
      endMs: last.endMs,
      speechStartSample: first.speechStartSample,
      speechEndSample: last.speechEndSample,
      index: this.segmentCount++,
      samples: this.audioRange(first.startSample, last.endSample),
      parts: parts.length,
      context: { startSample: contextStart, samples: this.audioRange(contextStart, contextStop) },
    };
  }

  private quietestChunkStart(openStart: number): number {
    // Search the last splitSearchChunks chunks, but never closer than 1 s to the segment start.
    const lastChunk = this.probStart + this.recentProbs.length - 1;
    const firstAllowed = Math.ceil((openStart + RATE) / SILERO_CHUNK);
    let best = lastChunk;
    let bestP = Infinity;
    for (let c = Math.max(firstAllowed, lastChunk - this.splitSearchChunks + 1); c <= lastChunk; c++) {
      const p = this.recentProbs[c - this.probStart];
      if (p < bestP) {
        bestP = p;
        best = c;
      }
    }
    return best * SILERO_CHUNK;
  }

  private retain(samples: Float32Array): void {
    if (this.audioLength + samples.length > this.audio.length) {
      const next = new Float32Array(Math.max(this.audio.length * 2, this.audioLength + samples.length));
      next.set(this.audio.subarray(0, this.audioLength));
      this.audio = next;
    }
    this.audio.set(samples, this.audioLength);
    this.audioLength += samples.length;
  }

  /** Drops audio no segment can still need: before the open segment, or before the padding reach. */
  private trimAudio(): void {
    const open = this.openSegmentStart;
    // Between segments the next one may start up to one chunk plus the padding before the
    // chunk that opens it; keep a second to be safe. Before that, the next utterance's filler
    // context (up to CONTEXT_BEFORE_MS, never into the previous utterance's context).
    const base = open ?? this.scoredSamples - RATE;
    const keepFrom = Math.max(0, Math.min(base, Math.max(this.contextFrom, base - Math.round((CONTEXT_BEFORE_MS * RATE) / 1000))));
    const drop = keepFrom - this.audioStart;
    if (drop <= RATE) return;
    this.audio.copyWithin(0, drop, this.audioLength);
    this.audioLength -= drop;
    this.audioStart = keepFrom;
  }

  private trimProbs(): void {
    const excess = this.recentProbs.length - this.splitSearchChunks * 2;
    if (excess > 256) {
      this.recentProbs.splice(0, excess);
      this.probStart += excess;
    }
  }
}
