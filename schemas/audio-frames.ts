// Cutting 16 kHz mono audio into bus records (pure). A record carries PCM16 little-endian
// samples (half the bytes of float32, and what the live socket already receives), a
// per-session sequence number so a consumer can spot gaps and duplicates, and the offset
// of its first sample so every later timestamp is exact in samples, not wall-clock.

/**
 * The sequence of a stream's end marker: a last frame (is_last, no samples) that another ingest
 * process publishes when the one holding the stream stopped renewing its claim (it died; see
 * ingest/audio/stream-leases.ts). It ends the stream after the frames before it on the
 * partition, whatever their count: with aborted_reason (an upload cut short) the stream fails,
 * without (a live connection, whose audio so far is analysed, as when a client goes away) it
 * is finalised. A stream already ended, or never opened, ignores it.
 */
export const STREAM_LOST_SEQUENCE = -1;

/** Hard limit on a bus record's audio payload. */
export const MAX_FRAME_BYTES = 64 * 1024;
/**
 * Default payload: 32 000 samples (2 s at 16 kHz, 64 000 bytes), leaving ~1.5 KB under the
 * 64 KB record limit for the key, headers and Avro framing.
 */
export const DEFAULT_FRAME_SAMPLES = 32000;

export interface AudioFrame {
  /** 0, 1, 2… within one session's stream. */
  sequence: number;
  /** Index of the first sample in the session's audio. */
  sampleOffset: number;
  sampleCount: number;
  sampleRate: number;
  /** PCM16 little-endian, mono. */
  payload: Buffer;
}

export interface FramerOptions {
  sampleRate?: number;
  /** Samples per full frame; 2 bytes each, at most MAX_FRAME_BYTES / 2. */
  frameSamples?: number;
  /** Continue numbering from an earlier stream (e.g. a resumed live session). */
  startSequence?: number;
  startSample?: number;
}

/** Float samples in [-1, 1] to PCM16 LE (scaled by 32768 and clipped, the inverse of the WAV reader). */
export function toPcm16(samples: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length * 2);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.round(samples[i] * 32768);
    out.writeInt16LE(v > 32767 ? 32767 : v < -32768 ? -32768 : Number.isNaN(v) ? 0 : v, i * 2);
  }
  return out;
}

/** PCM16 LE back to floats (v / 32768). */
export function fromPcm16(payload: Uint8Array): Float32Array {
  if (payload.length % 2 !== 0) throw new RangeError(`PCM16 payload has an odd length (${payload.length})`);
  const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  const out = new Float32Array(buf.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2) / 32768;
  return out;
}

/** Accumulates samples and emits full frames; `flush()` emits the short last one. */
export interface AudioFramer {
  push(samples: Float32Array): AudioFrame[];
  flush(): AudioFrame[];
}

export function createAudioFramer(opts: FramerOptions = {}): AudioFramer {
  const sampleRate = opts.sampleRate ?? 16000;
  const frameSamples = opts.frameSamples ?? DEFAULT_FRAME_SAMPLES;
  if (!Number.isInteger(frameSamples) || frameSamples < 1 || frameSamples * 2 > MAX_FRAME_BYTES) {
    throw new RangeError(`frameSamples must be an integer in 1…${MAX_FRAME_BYTES / 2} (got ${frameSamples})`);
  }
  let sequence = opts.startSequence ?? 0;
  let offset = opts.startSample ?? 0;
  const pending = new Float32Array(frameSamples);
  let pendingLen = 0;

  const emit = (samples: Float32Array): AudioFrame => {
    const frame = { sequence, sampleOffset: offset, sampleCount: samples.length, sampleRate, payload: toPcm16(samples) };
    sequence += 1;
    offset += samples.length;
    return frame;
  };

  return {
    push(samples) {
      const frames: AudioFrame[] = [];
      let pos = 0;
      while (pos < samples.length) {
        const n = Math.min(frameSamples - pendingLen, samples.length - pos);
        pending.set(samples.subarray(pos, pos + n), pendingLen);
        pendingLen += n;
        pos += n;
        if (pendingLen === frameSamples) {
          frames.push(emit(pending));
          pendingLen = 0;
        }
      }
      return frames;
    },
    flush() {
      if (pendingLen === 0) return [];
      const last = emit(pending.subarray(0, pendingLen));
      pendingLen = 0;
      return [last];
    },
  };
}

/** Splits a whole signal into frames (the same frames a framer gives for any chunking). */
export function frameAudio(samples: Float32Array, opts: FramerOptions = {}): AudioFrame[] {
  const framer = createAudioFramer(opts);
  return [...framer.push(samples), ...framer.flush()];
}
