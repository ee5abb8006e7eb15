// Per-second voice features of a stream of 16 kHz samples, computed as the samples arrive
// (pure: samples in, numbers out; plans and buffers owned by the instance). Frames are the
// feature plan's 30 ms frames every 10 ms; a frame belongs to the second that holds its centre,
// so a second's pitch never mixes frames of its neighbours. Volume is the RMS of the second's own
// samples. Memory grows with the number of seconds (a few dozen bytes each) and the voiced f0
// values kept for session statistics (4 bytes per voiced 10 ms frame), never with the audio.
//
// Pitch comes from one PitchTracker over the whole stream: a frame's f0 and voicing are final
// once the tracker has analysed the plan's lookaheadFrames frames after it (pitch.ts), so every
// per-second result depends only on the audio, never on how it was cut into chunks, and equals
// computeSpeechFeatures on the whole recording. A second is complete once its last frame is
// decided: about lookahead · 10 ms + 15 ms after its end.
import { SPEECH_SAMPLE_RATE } from '../frames.js';
import { type SpeechFeaturePlan, createSpeechFeaturePlan } from '../index.js';
import { PitchTracker } from '../pitch.js';
import { dbfsFromMeanSquare } from '../volume.js';

export interface SecondFeatures {
  /** Which second: [index, index + 1) s from the first sample. */
  index: number;
  /** Mean f0 over the second's voiced frames, Hz; null when none was voiced. */
  pitchMeanHz: number | null;
  /** SD of f0 over the voiced frames, Hz; null with fewer than two. */
  pitchSdHz: number | null;
  /** RMS of the second's samples, dBFS. */
  volumeDbfs: number;
  /** Share of the second's frames judged voiced, 0..1. */
  voicedRatio: number;
  /** Share of the second's samples in chunks the voice activity model scored as speech, 0..1. */
  speechRatio: number;
}

class SecondAccumulator {
  frames = 0;
  voiced = 0;
  f0Sum = 0;
  f0Squares = 0;
  sampleSquares = 0;
  samples = 0;
  speechSamples = 0;
  scoredSamples = 0;
}

/** A growable Float32Array. */
export class FloatList {
  private data: Float32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Float32Array(capacity);
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): Float32Array {
    return this.data.subarray(0, this.length);
  }
}

export class SecondFeatureStream {
  private readonly rate = SPEECH_SAMPLE_RATE;
  private readonly frameSize: number;
  private readonly hop: number;
  /** Samples not yet consumed by a frame start, from absolute index `bufferStart`. */
  private buffer = new Float32Array(0);
  private bufferStart = 0;
  /** Index of the next frame to analyse. */
  private nextFrame = 0;
  /** Frames whose pitch is decided (delivered by the tracker), always a prefix. */
  private decidedFrames = 0;
  private readonly tracker: PitchTracker;
  private readonly lookaheadFrames: number;
  private totalSamples = 0;
  private readonly seconds: SecondAccumulator[] = [];
  /** f0 of every voiced frame so far, for session pitch statistics. */
  readonly voicedF0 = new FloatList(4096);
  /** Level of every frame so far, dBFS (4 bytes per 10 ms), for phonation time (stream/phonation.ts). */
  readonly frameDbfs = new FloatList(4096);

  constructor(plan: SpeechFeaturePlan = createSpeechFeaturePlan()) {
    this.frameSize = plan.pitch.frameSize;
    this.hop = plan.hop;
    this.lookaheadFrames = plan.pitch.lookaheadFrames;
    this.tracker = new PitchTracker(plan.pitch, plan.hop, (index, f0, voiced, _aperiodicity, dbfs) => this.takeFrame(index, f0, voiced, dbfs));
  }

  /** A frame whose pitch is decided, in frame order. */
  private takeFrame(index: number, f0: number, voiced: boolean, dbfs: number): void {
    const centre = index * this.hop + this.frameSize / 2;
    const acc = this.second(Math.floor(centre / this.rate));
    acc.frames++;
    this.frameDbfs.push(dbfs);
    if (voiced && f0 > 0) {
      acc.voiced++;
      acc.f0Sum += f0;
      acc.f0Squares += f0 * f0;
      this.voicedF0.push(f0);
    }
    this.decidedFrames = index + 1;
  }

  /** Samples seen so far. */
  get sampleCount(): number {
    return this.totalSamples;
  }

  private second(i: number): SecondAccumulator {
    while (this.seconds.length <= i) this.seconds.push(new SecondAccumulator());
    return this.seconds[i];
  }

  /** Feeds the next samples of the stream. */
  push(samples: Float32Array): void {
    // Volume from the samples themselves.
    let at = this.totalSamples;
    let i = 0;
    while (i < samples.length) {
      const sec = Math.floor(at / this.rate);
      const take = Math.min(samples.length - i, (sec + 1) * this.rate - at);
      const acc = this.second(sec);
      let squares = 0;
      for (let k = i; k < i + take; k++) squares += samples[k] * samples[k];
      acc.sampleSquares += squares;
      acc.samples += take;
      i += take;
      at += take;
    }
    this.totalSamples += samples.length;

    // Append to the frame buffer and analyse every frame that is now complete.
    const merged = new Float32Array(this.buffer.length + samples.length);
    merged.set(this.buffer);
    merged.set(samples, this.buffer.length);
    this.buffer = merged;
    while (this.nextFrame * this.hop + this.frameSize <= this.bufferStart + this.buffer.length) {
      this.tracker.pushFrame(this.buffer, this.nextFrame * this.hop - this.bufferStart);
      this.nextFrame++;
    }
    // Keep only what the next frame needs.
    const keepFrom = this.nextFrame * this.hop;
    this.buffer = this.buffer.slice(keepFrom - this.bufferStart);
    this.bufferStart = keepFrom;
  }

  /** Marks `count` samples from `startSample` as scored by voice activity, speech or not. */
  markVoiceActivity(startSample: number, count: number, isSpeech: boolean): void {
    let at = startSample;
    const end = startSample + count;
    while (at < end) {
      const sec = Math.floor(at / this.rate);
      const take = Math.min(end - at, (sec + 1) * this.rate - at);
      const acc = this.second(sec);
      acc.scoredSamples += take;
      if (isSpeech) acc.speechSamples += take;
      at += take;
    }
  }

  /**
   * Seconds whose samples and frames are all in: second s is complete once every frame centred
   * in it is decided (the first undecided frame's centre lies beyond s). With `final`, the stream
   * has ended: the frames still waiting for look-ahead are decided now, and every second that has
   * samples is complete.
   */
  completeSeconds(final = false): number {
    if (final) {
      this.tracker.finish();
      return Math.ceil(this.totalSamples / this.rate);
    }
    return Math.floor((this.decidedFrames * this.hop + this.frameSize / 2) / this.rate);
  }

  /**
   * Stream length, samples, at which second `index` becomes complete (without `final`): every
   * frame centred in it analysed, plus the tracker's look-ahead of frames after the last.
   */
  samplesToComplete(index: number): number {
    const framesCentredBefore = Math.ceil(((index + 1) * this.rate - this.frameSize / 2) / this.hop);
    return (framesCentredBefore - 1 + this.lookaheadFrames) * this.hop + this.frameSize;
  }

  /** Features of second `index` (zeros for a second with no samples). */
  features(index: number): SecondFeatures {
    const acc = this.seconds[index] ?? new SecondAccumulator();
    const mean = acc.voiced > 0 ? acc.f0Sum / acc.voiced : null;
    const sd = acc.voiced > 1 && mean !== null ? Math.sqrt(Math.max(0, acc.f0Squares / acc.voiced - mean * mean)) : null;
    return {
      index,
      pitchMeanHz: mean,
      pitchSdHz: sd,
      volumeDbfs: dbfsFromMeanSquare(acc.samples > 0 ? acc.sampleSquares / acc.samples : 0),
      voicedRatio: acc.frames > 0 ? acc.voiced / acc.frames : 0,
      speechRatio: acc.scoredSamples > 0 ? acc.speechSamples / acc.scoredSamples : 0,
    };
  }
}
