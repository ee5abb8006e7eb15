// What every audio file decoder gives the upload and speech-to-text routes: mono float samples
// at the file's own rate, pushed through as the bytes arrive (each decoder keeps only what it
// cannot use yet), and what the file says about itself.

/** How the upload row records the file's audio (speech_uploads.encoding). */
export type AudioEncoding = 'pcm16' | 'float32' | 'mp3' | 'opus';

export interface DecodedAudioInfo {
  /** Rate of the samples push() and end() return, Hz. */
  sampleRate: number;
  /** Channels in the file; the output is their mean (every later stage works on one channel). */
  channels: number;
  encoding: AudioEncoding;
  /** Sample frames (per channel, at sampleRate) the file declares exactly (WAV), else null. */
  declaredFrames: number | null;
  /** Seconds of audio the file declares, exactly or near (an MP3's Xing frame count): for refusing a file too long before decoding it. */
  declaredS: number | null;
}

/** Where a decoder may hand samples as it goes, rather than collect a whole chunk's. */
export type AudioSink = (pieces: Float32Array[]) => Promise<void> | void;

export interface AudioFormatDecoder {
  /** For messages: WAV, MP3, Ogg Opus, WebM Opus. */
  readonly format: string;
  /** Set once the header has been read (before that, push() may return nothing). */
  readonly info: DecodedAudioInfo | null;
  /**
   * Feeds the next bytes; resolves with the mono samples they completed. A decoder whose
   * output can far outgrow its input (Opus) gives each page's or block's samples to `emit`,
   * when there is one, as it decodes them.
   */
  push(chunk: Buffer, emit?: AudioSink): Promise<Float32Array[]>;
  /** The input is over: the rest of the samples; throws a coded 400 when the file was cut short. */
  end(): Promise<Float32Array[]>;
  /** Releases WebAssembly memory; safe to call twice. */
  free(): void;
}

/** The mean of the channels (all the same length). */
export function mixToMono(channels: Float32Array[], length = channels[0]?.length ?? 0): Float32Array {
  if (channels.length === 1) return channels[0].length === length ? channels[0] : channels[0].subarray(0, length);
  const out = new Float32Array(length);
  const scale = 1 / channels.length;
  for (const ch of channels) for (let i = 0; i < length; i++) out[i] += ch[i];
  for (let i = 0; i < length; i++) out[i] *= scale;
  return out;
}
