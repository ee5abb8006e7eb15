// MP3 (MPEG-1/2/2.5 Layer III, and Layers I/II) through mpg123-decoder: libmpg123 compiled to
// WebAssembly, from the wasm-audio-decoders project (maintained; no native code, no ffmpeg).
// It is fed the bytes as they arrive and keeps its own small input buffer, so the file is never
// held whole. Gapless decoding (the default) drops the encoder's delay and padding as the
// LAME/Xing header declares them, so the output has the original's length.
//
// What libmpg123 does not say is whether a file was cut short: it decodes the frames it has.
// The Xing/Info header that LAME and ffmpeg write into the first frame declares the number of
// frames; with it a file that ends early is refused (truncated_audio), and a file longer than
// the route's limit is refused (413) before any audio is decoded.
import { MPEGDecoder } from 'mpg123-decoder';
import { mixToMono, type AudioFormatDecoder, type DecodedAudioInfo } from './types.js';
import { truncated, undecodable } from './errors.js';

/** Bytes of the first frame read for its header and a Xing/Info tag (the tag sits within the first 40 bytes after the side info). */
const FIRST_FRAME_PROBE = 192;
/** An ID3v2 tag larger than this (cover art) is skipped without the Xing check. */
const MAX_ID3_BYTES = 1024 * 1024;

export interface Mp3FrameHeader {
  sampleRate: number;
  channels: number;
  samplesPerFrame: number;
  /** Frames the Xing/Info tag declares (null without a tag or without its frame count). */
  declaredFrames: number | null;
}

const MPEG1_RATES = [44100, 48000, 32000];

/**
 * The header of the MPEG audio frame at the start of `b` and its Xing/Info tag, or null when
 * `b` does not start with a frame header. Layer III only for the tag (Layers I/II have none).
 */
export function readMp3FrameHeader(b: Uint8Array): Mp3FrameHeader | null {
  if (b.length < 4 || b[0] !== 0xff || (b[1] & 0xe0) !== 0xe0) return null;
  const versionBits = (b[1] >> 3) & 3; // 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5, 1 reserved
  const layerBits = (b[1] >> 1) & 3; // 1 Layer III, 2 Layer II, 3 Layer I, 0 reserved
  const rateIndex = (b[2] >> 2) & 3;
  if (versionBits === 1 || layerBits === 0 || rateIndex === 3) return null;
  const mpeg1 = versionBits === 3;
  const sampleRate = MPEG1_RATES[rateIndex] / (mpeg1 ? 1 : versionBits === 2 ? 2 : 4);
  const mono = b[3] >> 6 === 3;
  const layer3 = layerBits === 1;
  const samplesPerFrame = layerBits === 3 ? 384 : layer3 && !mpeg1 ? 576 : 1152;
  let declaredFrames: number | null = null;
  if (layer3) {
    const sideInfo = mpeg1 ? (mono ? 17 : 32) : mono ? 9 : 17;
    const at = 4 + sideInfo;
    if (b.length >= at + 12) {
      const tag = String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);
      if (tag === 'Xing' || tag === 'Info') {
        const flags = (b[at + 4] << 24) | (b[at + 5] << 16) | (b[at + 6] << 8) | b[at + 7];
        if (flags & 1) declaredFrames = ((b[at + 8] << 24) >>> 0) + ((b[at + 9] << 16) | (b[at + 10] << 8) | b[at + 11]);
      }
    }
  }
  return { sampleRate, channels: mono ? 1 : 2, samplesPerFrame, declaredFrames };
}

/** Size of an ID3v2 tag at the start of `b` (header, body and footer), 0 without one, null when more bytes are needed. */
function id3Size(b: Uint8Array): number | null {
  if (b.length < 3) return null;
  if (b[0] !== 0x49 || b[1] !== 0x44 || b[2] !== 0x33) return 0; // "ID3"
  if (b.length < 10) return null;
  const body = ((b[6] & 0x7f) << 21) | ((b[7] & 0x7f) << 14) | ((b[8] & 0x7f) << 7) | (b[9] & 0x7f);
  return 10 + body + (b[5] & 0x10 ? 10 : 0);
}

export class Mp3Decoder implements AudioFormatDecoder {
  readonly format = 'MP3';
  info: DecodedAudioInfo | null = null;
  private decoder: MPEGDecoder | null = null;
  /** The file's first bytes, kept until the first frame's header has been read. */
  private probe: Buffer | null = Buffer.alloc(0);
  private header: Mp3FrameHeader | null = null;
  private framesOut = 0;
  private decodedAny = false;

  constructor(private readonly field: string) {}

  async push(chunk: Buffer): Promise<Float32Array[]> {
    if (!this.decoder) {
      this.decoder = new MPEGDecoder();
      await this.decoder.ready;
    }
    if (this.probe) this.readProbe(chunk);
    const out = this.decoded(this.decoder.decode(chunk));
    return out;
  }

  async end(): Promise<Float32Array[]> {
    if (this.probe) this.readProbe(Buffer.alloc(0), true);
    if (!this.decodedAny) throw undecodable(this.field, this.format, 'no MPEG audio frame found');
    const declared = this.header?.declaredFrames ?? null;
    if (declared !== null && this.header) {
      // Gapless output is the declared frames less the encoder delay and padding (under two
      // frames together); a file short by more than two frames more than that lost its end.
      const expected = declared * this.header.samplesPerFrame;
      if (this.framesOut + 4 * this.header.samplesPerFrame < expected) {
        throw truncated(this.field, this.format, `${this.framesOut} of ${expected} samples`, { decoded_s: round3(this.framesOut / this.header.sampleRate), declared_s: round3(expected / this.header.sampleRate) });
      }
    }
    return [];
  }

  free(): void {
    this.decoder?.free();
    this.decoder = null;
  }

  private decoded(r: { channelData: Float32Array[]; samplesDecoded: number; sampleRate: number; errors: { message: string }[] }): Float32Array[] {
    if (r.errors.length > 0) throw undecodable(this.field, this.format, r.errors[0].message);
    if (r.samplesDecoded === 0) return [];
    if (!this.info) {
      this.info = {
        sampleRate: r.sampleRate,
        channels: this.header?.channels ?? r.channelData.length,
        encoding: 'mp3',
        // Gapless output drops the encoder's delay and padding: the frame count is not exact.
        declaredFrames: null,
        declaredS: this.header?.declaredFrames != null ? (this.header.declaredFrames * this.header.samplesPerFrame) / this.header.sampleRate : null,
      };
    } else if (r.sampleRate !== this.info.sampleRate) {
      throw undecodable(this.field, this.format, `the sample rate changes from ${this.info.sampleRate} to ${r.sampleRate} Hz within the file`);
    }
    this.decodedAny = true;
    this.framesOut += r.samplesDecoded;
    // libmpg123 here always gives two channels (a mono file's twice): their mean is the signal.
    return [mixToMono(r.channelData, r.samplesDecoded)];
  }

  /** Collects the first bytes until the first frame's header (after any ID3v2 tag) can be read. */
  private readProbe(chunk: Buffer, atEnd = false): void {
    const probe = (this.probe = Buffer.concat([this.probe!, chunk]));
    const tag = id3Size(probe);
    if (tag === null && !atEnd) return;
    const start = tag ?? 0;
    if (start > MAX_ID3_BYTES) {
      this.probe = null;
      return;
    }
    if (probe.length < start + FIRST_FRAME_PROBE && !atEnd) return;
    this.header = readMp3FrameHeader(probe.subarray(start));
    this.probe = null;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
