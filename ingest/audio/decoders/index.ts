// Audio files of any accepted format, as mono float samples at the file's rate: the format is
// found from the first bytes (magic numbers), not from the content type or the file name, which
// clients set loosely (a browser's MediaRecorder blob is "audio/webm;codecs=opus", curl's -F
// guesses from the extension, many send application/octet-stream). Then the bytes stream
// through that format's decoder as they arrive, with the route's limits applied to every format
// alike: bytes received, and seconds of audio (declared in the header where the file says, so
// a WAV or a LAME MP3 that is too long is refused before its audio is decoded).
//
// Accepted: WAV (RIFF/WAVE, PCM16 or float32; wav-stream.ts), MP3 (mp3.ts), Ogg Opus (ogg.ts),
// WebM Opus (webm.ts). Recognised and refused with 415 naming those: MP4/M4A/AAC (no
// maintained WebAssembly or JS AAC decoder on the registry), ADTS AAC, FLAC, and anything else
// whose first bytes match no accepted format.
import { AttuneError } from '../../../lib/errors.js';
import { WavStreamParser, type WavFormat } from '../wav-stream.js';
import { type AudioEncoding, type AudioFormatDecoder, type AudioSink, type DecodedAudioInfo } from './types.js';
import { Mp3Decoder } from './mp3.js';
import { OggOpusDecoder } from './ogg.js';
import { WebmOpusDecoder } from './webm.js';
import { MAX_CHANNELS, undecodable, unsupportedChannels, unsupportedFormat } from './errors.js';

export { ACCEPTED_AUDIO_FORMATS, ACCEPTED_AUDIO_TYPES } from './errors.js';
export type { AudioEncoding, AudioSink, DecodedAudioInfo } from './types.js';

export type AudioContainer = 'wav' | 'mp3' | 'ogg' | 'webm';

/** Bytes needed to tell the formats apart (ftyp sits at bytes 4-7). */
const SNIFF_BYTES = 12;

export type Sniffed = { container: AudioContainer } | { unsupported: string } | { unknown: true };

/** The format of a file from its first bytes (at least SNIFF_BYTES, or the whole file when shorter). */
export function sniffAudioFormat(b: Uint8Array): Sniffed {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, Math.min(to, b.length)));
  const head = ascii(0, 4);
  if (head === 'RIFF' || head === 'RIFX' || head === 'RF64' || head === 'BW64') return { container: 'wav' };
  if (head === 'OggS') return { container: 'ogg' };
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return { container: 'webm' };
  if (ascii(0, 3) === 'ID3') return { container: 'mp3' };
  if (ascii(4, 8) === 'ftyp') return { unsupported: 'MP4/M4A (AAC)' };
  if (head === 'fLaC') return { unsupported: 'FLAC' };
  if (ascii(0, 6) === '#!AMR') return { unsupported: 'AMR' };
  if (head === 'FORM') return { unsupported: 'AIFF' };
  if (b.length >= 2 && b[0] === 0xff && (b[1] & 0xe0) === 0xe0) {
    // MPEG audio frame sync; layer bits 00 are ADTS (AAC), the others Layers III, II, I.
    return ((b[1] >> 1) & 3) === 0 ? { unsupported: 'AAC (ADTS)' } : { container: 'mp3' };
  }
  return { unknown: true };
}

export interface AudioFileDecoderOptions {
  /** Refuse (413) once more than this many bytes of the file have arrived. */
  maxBytes: number;
  /** Refuse (413) once the audio is longer than this (or declares it is). */
  maxDurationS: number;
  /** Name of the request field in error details. */
  field?: string;
  /** How a 413 for too long audio reads (the speech-to-text route points at the upload route). */
  tooLong?: (maxDurationS: number, declaredS: number | null) => AttuneError;
}

/** WAV through the incremental parser, with the encodings the speech pipeline takes. */
class WavDecoder implements AudioFormatDecoder {
  readonly format = 'WAV';
  info: DecodedAudioInfo | null = null;
  readonly parser: WavStreamParser;

  constructor(opts: { maxBytes: number; maxDurationS: number; field: string }) {
    this.parser = new WavStreamParser(opts);
  }

  async push(chunk: Buffer): Promise<Float32Array[]> {
    const out = this.parser.push(chunk);
    if (!this.info && this.parser.format) {
      const f = this.parser.format;
      const frames = f.dataBytes === null ? null : Math.floor(f.dataBytes / f.blockAlign);
      this.info = { sampleRate: f.sampleRate, channels: f.channels, encoding: wavEncoding(f), declaredFrames: frames, declaredS: frames === null ? null : frames / f.sampleRate };
    }
    return out;
  }

  async end(): Promise<Float32Array[]> {
    this.parser.end();
    return [];
  }

  free(): void {}
}

/** The WAV encodings the speech pipeline takes (wav-stream.ts reads more, for other callers). */
function wavEncoding(f: WavFormat): AudioEncoding {
  if (f.encoding === 'pcm' && f.bitsPerSample === 16) return 'pcm16';
  if (f.encoding === 'float' && f.bitsPerSample === 32) return 'float32';
  throw new AttuneError('unsupported_media_type', `unsupported WAV encoding (${f.encoding === 'pcm' ? 'PCM' : 'float'} ${f.bitsPerSample}-bit); send PCM16 or float32`, [
    { field: 'file', reason: 'unsupported_encoding', encoding: f.encoding, bits_per_sample: f.bitsPerSample },
  ]);
}

export { MAX_CHANNELS } from './errors.js';

/**
 * One audio file, streamed: push() the bytes as they arrive, end() when the body is over.
 * Holds at most the sniffing bytes, one format's pending element or page, and the decoders'
 * own buffers; never the file.
 */
export class AudioFileDecoder {
  /** Bytes received so far. */
  bytesReceived = 0;
  /** Mono samples returned so far, at info.sampleRate. */
  samplesOut = 0;
  private decoder: AudioFormatDecoder | null = null;
  private head: Buffer | null = Buffer.alloc(0);
  private readonly field: string;
  private checkedInfo = false;

  constructor(private readonly opts: AudioFileDecoderOptions) {
    this.field = opts.field ?? 'file';
  }

  /** The detected format (WAV, MP3, Ogg Opus, WebM Opus); null until enough bytes arrived. */
  get format(): string | null {
    return this.decoder?.format ?? null;
  }

  /** Set once the format's header has been read. */
  get info(): DecodedAudioInfo | null {
    return this.decoder?.info ?? null;
  }

  /** Seconds of audio decoded so far. */
  get durationS(): number {
    const info = this.info;
    return info ? this.samplesOut / info.sampleRate : 0;
  }

  /**
   * Feeds the next bytes. With a sink, the samples go to it as each Ogg page or WebM block is
   * decoded (awaited) and push() resolves with the rest; without one, all of them come back. The
   * duration limit is applied to every page or block either way: Opus expands 3 bytes into
   * 120 ms, so one 64 KB chunk can hold hours of audio (400 KB of such Ogg pages held 950 MB
   * of samples at once before they were counted).
   */
  async push(chunk: Buffer, sink?: AudioSink): Promise<Float32Array[]> {
    this.bytesReceived += chunk.length;
    if (this.bytesReceived > this.opts.maxBytes) {
      throw new AttuneError('payload_too_large', `file is larger than ${this.opts.maxBytes} bytes`, [{ field: this.field, reason: 'too_large', max_bytes: this.opts.maxBytes }]);
    }
    if (!this.decoder) {
      this.head = Buffer.concat([this.head!, chunk]);
      if (this.head.length < SNIFF_BYTES) return [];
      chunk = this.head;
      this.head = null;
      this.decoder = this.open(chunk);
    }
    const kept: Float32Array[] = [];
    const emit = async (pieces: Float32Array[]) => {
      this.count(pieces);
      if (sink) await sink(pieces);
      else kept.push(...pieces);
    };
    const rest = this.count(await this.decoder.push(chunk, emit));
    return kept.length > 0 ? [...kept, ...rest] : rest;
  }

  async end(): Promise<Float32Array[]> {
    if (!this.decoder) {
      const head = this.head!;
      this.head = null;
      if (head.length === 0) throw undecodable(this.field, 'audio', 'the file is empty');
      this.decoder = this.open(head);
      const out = this.count(await this.decoder.push(head));
      return [...out, ...this.count(await this.decoder.end())];
    }
    return this.count(await this.decoder.end());
  }

  free(): void {
    this.decoder?.free();
  }

  private open(head: Buffer): AudioFormatDecoder {
    const sniffed = sniffAudioFormat(head);
    if ('unsupported' in sniffed) throw unsupportedFormat(this.field, sniffed.unsupported);
    if ('unknown' in sniffed) throw unsupportedFormat(this.field, 'Unrecognised', ' (the first bytes match none of the accepted formats)');
    const { maxBytes, maxDurationS } = this.opts;
    switch (sniffed.container) {
      case 'wav':
        // The WAV parser applies the limits itself (a declared data size is checked on the header).
        return new WavDecoder({ maxBytes, maxDurationS: this.opts.tooLong ? Number.POSITIVE_INFINITY : maxDurationS, field: this.field });
      case 'mp3':
        return new Mp3Decoder(this.field);
      case 'ogg':
        return new OggOpusDecoder(this.field);
      case 'webm':
        return new WebmOpusDecoder(this.field);
    }
  }

  private count(pieces: Float32Array[]): Float32Array[] {
    const info = this.decoder!.info;
    if (info && !this.checkedInfo) {
      this.checkedInfo = true;
      if (info.channels > MAX_CHANNELS) throw unsupportedChannels(this.field, info.channels);
      if (info.declaredS !== null && info.declaredS > this.opts.maxDurationS) throw this.tooLong(info.declaredS);
    }
    for (const p of pieces) this.samplesOut += p.length;
    if (info && this.samplesOut / info.sampleRate > this.opts.maxDurationS) throw this.tooLong(null);
    return pieces;
  }

  private tooLong(declaredS: number | null): AttuneError {
    if (this.opts.tooLong) return this.opts.tooLong(this.opts.maxDurationS, declaredS);
    return new AttuneError('payload_too_large', `audio is longer than ${this.opts.maxDurationS} s`, [
      { field: this.field, reason: 'too_long', max_duration_s: this.opts.maxDurationS, ...(declaredS === null ? {} : { declared_duration_s: Math.round(declaredS * 1000) / 1000 }) },
    ]);
  }
}
