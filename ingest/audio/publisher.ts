// One audio stream (an upload or a live connection) onto the bus as SpeechAudioFrame
// records: samples at the client's rate go through the resampler to 16 kHz, are cut into
// PCM16 frames and published keyed by session, so one session's frames stay in order on
// one partition. Every write resolves only once the bus has its frames: a caller that
// awaits each write (the upload route reading the HTTP body, the live socket reading its
// messages) never holds more than a batch of audio in memory.
import { type Bus, type OutgoingRecord } from '../../bus/types.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import type { Codec } from '../../schemas/registry/codec.js';
import type { SpeechAudioFrame, SpeechAudioSource } from '../../schemas/registry/schemas.js';
import { AttuneError, isAttuneError } from '../../lib/errors.js';
import { createResampler, type Resampler } from './resample.js';
import { createAudioFramer, type AudioFrame, type AudioFramer } from '../../schemas/audio-frames.js';

/** Rate of every sample on the bus. */
export const BUS_SAMPLE_RATE = 16000;

export interface SpeechStreamInfo {
  sessionId: string;
  orgId: string;
  userId: string;
  /** The upload id, or `live-<uuid>` for a live connection. */
  streamId: string;
  source: SpeechAudioSource;
  /** Epoch ms of the stream's first sample. */
  audioStartedAt: number;
  /** Rate of the samples given to write(). */
  sourceSampleRateHz: number;
  /** Length of the whole stream at 16 kHz when known in advance (uploads). */
  expectedSamples?: number | null;
  /** The session's settings as JSON, repeated on every frame. */
  settingsJson: string;
}

export interface SpeechPublisherDeps {
  bus: Bus;
  topics: TopicNames;
  codec: Codec;
  /** Wall clock for sent_at (default Date.now). */
  now?: () => number;
}

export interface SpeechFraming {
  /** 16 kHz samples per full frame (at most 32 768: 64 KB of PCM16). */
  frameSamples: number;
  /** Frames gathered into one bus publish call. */
  batchFrames: number;
  /** Publish what each write brought at once, even a part frame (live: low latency). */
  flushEachWrite: boolean;
}

/** Uploads: 2 s frames, four to a publish call, nothing published before a frame is full. */
export const UploadFraming: SpeechFraming = { frameSamples: 32000, batchFrames: 4, flushEachWrite: false };
/** Live: at most 250 ms a frame, each client message's audio published as soon as it is resampled. */
export const LiveFraming: SpeechFraming = { frameSamples: 4000, batchFrames: 1, flushEachWrite: true };

export class SpeechAudioPublisher {
  readonly info: SpeechStreamInfo;
  private readonly deps: SpeechPublisherDeps;
  private readonly framing: SpeechFraming;
  private readonly resampler: Resampler;
  private readonly framer: AudioFramer;
  /** Frames cut but not yet handed to the bus (fewer than batchFrames). */
  private batch: AudioFrame[] = [];
  private published = 0;
  private framesOut = 0;
  /** Sequence and offset of the next frame the framer will cut. */
  private nextSequence = 0;
  private nextOffset = 0;
  private done = false;

  constructor(deps: SpeechPublisherDeps, info: SpeechStreamInfo, framing: SpeechFraming) {
    this.deps = deps;
    this.info = info;
    this.framing = framing;
    this.resampler = createResampler(info.sourceSampleRateHz, BUS_SAMPLE_RATE);
    this.framer = createAudioFramer({ sampleRate: BUS_SAMPLE_RATE, frameSamples: framing.frameSamples });
  }

  get streamId(): string {
    return this.info.streamId;
  }

  /** 16 kHz samples the bus has accepted. */
  get samplesPublished(): number {
    return this.published;
  }

  /** Records the bus has accepted (the last one included once ended). */
  get framesPublished(): number {
    return this.framesOut;
  }

  /** True once end() or abort() has published the last frame. */
  get ended(): boolean {
    return this.done;
  }

  /**
   * Feeds mono samples at the source rate. Resolves once every frame they completed is on
   * the bus (uploads: only when a batch filled up). Calls must not overlap.
   */
  async write(samples: Float32Array): Promise<void> {
    if (this.done) throw new Error('SpeechAudioPublisher.write after the stream ended');
    const frames = this.cut(this.resampler.push(samples), this.framing.flushEachWrite);
    this.batch.push(...frames);
    if (this.batch.length >= this.framing.batchFrames) await this.publishBatch(false, null);
  }

  /** Ends the stream normally: the rest of the audio, the final frame flagged is_last. */
  async end(): Promise<void> {
    if (this.done) return;
    this.batch.push(...this.cut(this.resampler.flush(), true));
    await this.publishBatch(true, null);
  }

  /**
   * Ends the stream abnormally: frames already cut, then an empty last frame carrying
   * `reason`, so the worker drops the stream. Audio still inside the resampler is not sent.
   */
  async abort(reason: string): Promise<void> {
    if (this.done) return;
    await this.publishBatch(true, reason);
  }

  private cut(samples: Float32Array, flush: boolean): AudioFrame[] {
    const frames = this.framer.push(samples);
    if (flush) frames.push(...this.framer.flush());
    if (frames.length > 0) {
      const last = frames[frames.length - 1];
      this.nextSequence = last.sequence + 1;
      this.nextOffset = last.sampleOffset + last.sampleCount;
    }
    return frames;
  }

  /** Publishes the batch; with `last`, the final record is_last (an empty one when needed). */
  private async publishBatch(last: boolean, abortedReason: string | null): Promise<void> {
    const frames = this.batch;
    this.batch = [];
    if (last) {
      // A normal end flags the final audio frame; an abort always adds an empty frame, so
      // the reason is on a frame of its own after everything that was sent.
      if (frames.length === 0 || abortedReason !== null) {
        frames.push({ sequence: this.nextSequence, sampleOffset: this.nextOffset, sampleCount: 0, sampleRate: BUS_SAMPLE_RATE, payload: Buffer.alloc(0) });
        this.nextSequence += 1;
      }
    }
    if (frames.length === 0) return;
    const sentAt = (this.deps.now ?? Date.now)();
    const records: OutgoingRecord[] = new Array(frames.length);
    let samples = 0;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      const isLast = last && i === frames.length - 1;
      records[i] = { key: this.info.sessionId, value: await this.encode(this.record(f, isLast, isLast ? abortedReason : null, sentAt)) };
      samples += f.sampleCount;
    }
    try {
      await this.deps.bus.publish(this.deps.topics.speechAudio, records);
    } catch (err) {
      if (isAttuneError(err) && err.code === 'unavailable') throw err;
      throw new AttuneError('unavailable', 'the bus did not accept the audio; retry later', [{ reason: 'bus_publish_failed', cause: (err as Error).message }]);
    }
    this.published += samples;
    this.framesOut += frames.length;
    if (last) this.done = true;
  }

  private record(f: AudioFrame, isLast: boolean, abortedReason: string | null, sentAt: number): SpeechAudioFrame {
    const i = this.info;
    return {
      session_id: i.sessionId,
      org_id: i.orgId,
      user_id: i.userId,
      stream_id: i.streamId,
      source: i.source,
      sequence: f.sequence,
      sample_offset: f.sampleOffset,
      pcm16: f.payload,
      is_last: isLast,
      aborted_reason: abortedReason,
      audio_started_at: i.audioStartedAt,
      source_sample_rate_hz: i.sourceSampleRateHz,
      expected_samples: i.expectedSamples ?? null,
      sent_at: sentAt,
      settings_json: i.settingsJson,
    };
  }

  private async encode(record: SpeechAudioFrame): Promise<Buffer> {
    const encoded = this.deps.codec.encode(Topics.speechAudio, record);
    return encoded instanceof Promise ? await encoded : encoded;
  }
}

/** Expected 16 kHz length of `frames` sample frames at `rate` (what the resampler emits in total). */
export function samplesAt16k(frames: number, rate: number): number {
  return rate === BUS_SAMPLE_RATE ? frames : Math.ceil((frames * BUS_SAMPLE_RATE) / rate);
}
