// Incremental WAV (RIFF/WAVE) parser for audio uploads. Bytes arrive in chunks of any size
// (a split may fall inside the header or inside a sample); the parser keeps only the few
// bytes it cannot use yet, so a 200 MB upload is never held in memory. Samples come out as
// mono float32 at the file's own rate: channels are averaged, because every later stage
// (voice activity, pitch, recognition) works on one channel.
import { AttuneError, type ReasonFor } from '../../lib/errors.js';

export type WavEncoding = 'pcm' | 'float';

export interface WavFormat {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  encoding: WavEncoding;
  /** Bytes per sample frame (all channels). */
  blockAlign: number;
  /** Bytes the data chunk declares, or null when the writer streamed it (size 0 or 0xFFFFFFFF). */
  dataBytes: number | null;
}

export interface WavStreamOptions {
  /** Refuse (413) once more than this many bytes of the file have arrived. */
  maxBytes?: number;
  /** Refuse (413) once the audio is longer than this. */
  maxDurationS?: number;
  /** Name of the request field in error details. */
  field?: string;
}

export const MIN_SAMPLE_RATE = 8000;
export const MAX_SAMPLE_RATE = 192000;

const FORMAT_PCM = 0x0001;
const FORMAT_IEEE_FLOAT = 0x0003;
const FORMAT_EXTENSIBLE = 0xfffe;
/** A fmt chunk is 16–40 bytes; anything much larger is not a real header. */
const MAX_FMT_BYTES = 1024;
const STREAMED_SIZE = 0xffffffff;

type State = 'riff' | 'chunk-header' | 'fmt' | 'skip' | 'data' | 'after-data';

export class WavStreamParser {
  /** Set once the fmt chunk has been read and the data chunk has started. */
  format: WavFormat | null = null;
  /** Bytes received so far, all of them (header, other chunks, audio). */
  bytesReceived = 0;
  /** Sample frames (per channel) decoded so far. */
  framesDecoded = 0;

  private readonly maxBytes: number;
  private readonly maxDurationS: number;
  private readonly field: string;
  private state: State = 'riff';
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes still to skip of an unknown chunk (including its pad byte). */
  private skipRemaining = 0;
  /** Body size of the fmt chunk being collected, and whether it has a pad byte. */
  private fmtSize = 0;
  private fmtPadded = false;
  private fmtSeen: Omit<WavFormat, 'dataBytes'> | null = null;
  /** Data bytes still expected, or Infinity for a streamed data chunk. */
  private dataRemaining = 0;
  private ended = false;

  constructor(opts: WavStreamOptions = {}) {
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    this.maxDurationS = opts.maxDurationS ?? Number.POSITIVE_INFINITY;
    this.field = opts.field ?? 'file';
  }

  /** Feeds the next bytes; returns the mono samples they completed (possibly none). */
  push(chunk: Uint8Array): Float32Array[] {
    if (this.ended) throw new Error('WavStreamParser.push after end()');
    this.bytesReceived += chunk.length;
    if (this.bytesReceived > this.maxBytes) {
      throw this.tooLarge('too_large', { max_bytes: this.maxBytes });
    }
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, input]) : input;
    const out: Float32Array[] = [];
    let pos = 0;
    for (;;) {
      const avail = buf.length - pos;
      if (this.state === 'riff') {
        if (avail < 12) break;
        this.readRiffHeader(buf.subarray(pos, pos + 12));
        pos += 12;
        this.state = 'chunk-header';
      } else if (this.state === 'chunk-header') {
        if (avail < 8) break;
        this.readChunkHeader(buf.subarray(pos, pos + 8));
        pos += 8;
      } else if (this.state === 'fmt') {
        const need = this.fmtSize + (this.fmtPadded ? 1 : 0);
        if (avail < this.fmtSize) break;
        this.fmtSeen = this.readFmt(buf.subarray(pos, pos + this.fmtSize));
        // The pad byte may not have arrived yet: skip it like any other chunk body.
        pos += this.fmtSize;
        this.skipRemaining = need - this.fmtSize;
        this.state = this.skipRemaining > 0 ? 'skip' : 'chunk-header';
      } else if (this.state === 'skip') {
        const n = Math.min(avail, this.skipRemaining);
        pos += n;
        this.skipRemaining -= n;
        if (this.skipRemaining > 0) break;
        this.state = 'chunk-header';
      } else if (this.state === 'data') {
        const fmt = this.format!;
        const usable = Math.min(avail, this.dataRemaining);
        const frames = Math.floor(usable / fmt.blockAlign);
        if (frames > 0) {
          out.push(this.decode(buf, pos, frames));
          pos += frames * fmt.blockAlign;
          this.dataRemaining -= frames * fmt.blockAlign;
        }
        if (this.dataRemaining === 0) {
          this.state = 'after-data';
          continue;
        }
        // Partial sample frame (or an odd trailing byte of a damaged file): keep it.
        break;
      } else {
        // Chunks after the audio (LIST, id3…) carry nothing we need.
        pos = buf.length;
        break;
      }
    }
    // Keep only what could not be used yet; copy it so the caller's buffer can be reused.
    this.pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
    return out;
  }

  /** Declares the input finished; throws when the header or the audio was cut short. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.state === 'riff') throw this.invalid('truncated_header', { bytes: this.bytesReceived });
    if (this.format === null) throw this.invalid(this.fmtSeen ? 'missing_data_chunk' : 'missing_fmt_chunk');
    if (this.state === 'data') {
      if (Number.isFinite(this.dataRemaining)) {
        throw this.invalid('truncated_data', {
          expected_bytes: this.format.dataBytes,
          missing_bytes: this.dataRemaining - this.pending.length,
        });
      }
      if (this.pending.length > 0) {
        throw this.invalid('partial_sample_frame', { trailing_bytes: this.pending.length });
      }
    }
  }

  /** Seconds of audio decoded so far. */
  get durationS(): number {
    return this.format ? this.framesDecoded / this.format.sampleRate : 0;
  }

  private readRiffHeader(h: Buffer): void {
    const id = h.toString('latin1', 0, 4);
    if (id === 'RIFX' || id === 'RF64' || id === 'BW64') {
      throw new AttuneError('unsupported_media_type', `${id} WAV files are not supported; send little-endian RIFF WAV`, [
        { field: this.field, reason: 'unsupported_container', container: id },
      ]);
    }
    if (id !== 'RIFF') throw this.invalid('not_riff', { magic: printable(id) });
    const form = h.toString('latin1', 8, 12);
    if (form !== 'WAVE') throw this.invalid('not_wave', { form: printable(form) });
  }

  private readChunkHeader(h: Buffer): void {
    const id = h.toString('latin1', 0, 4);
    const size = h.readUInt32LE(4);
    if (id === 'fmt ') {
      if (this.fmtSeen) throw this.invalid('duplicate_fmt_chunk');
      if (size < 16 || size > MAX_FMT_BYTES) throw this.invalid('bad_fmt_size', { size });
      this.fmtSize = size;
      this.fmtPadded = size % 2 === 1;
      this.state = 'fmt';
    } else if (id === 'data') {
      if (!this.fmtSeen) throw this.invalid('missing_fmt_chunk');
      const streamed = size === 0 || size === STREAMED_SIZE;
      this.format = { ...this.fmtSeen, dataBytes: streamed ? null : size };
      this.dataRemaining = streamed ? Number.POSITIVE_INFINITY : size;
      if (!streamed) this.checkDeclaredSize(size);
      this.state = 'data';
    } else {
      if (!/^[\x20-\x7e]{4}$/.test(id)) throw this.invalid('bad_chunk_id', { chunk: printable(id) });
      // RIFF chunks are word-aligned: an odd-sized body is followed by one pad byte.
      this.skipRemaining = size + (size % 2);
      this.state = this.skipRemaining > 0 ? 'skip' : 'chunk-header';
    }
  }

  private readFmt(b: Buffer): Omit<WavFormat, 'dataBytes'> {
    let formatTag = b.readUInt16LE(0);
    const channels = b.readUInt16LE(2);
    const sampleRate = b.readUInt32LE(4);
    const blockAlign = b.readUInt16LE(12);
    const bitsPerSample = b.readUInt16LE(14);
    if (formatTag === FORMAT_EXTENSIBLE) {
      // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the GUID's first two bytes
      // are the plain format tag.
      if (b.length < 40) throw this.invalid('bad_extensible_fmt', { size: b.length });
      formatTag = b.readUInt16LE(24);
    }
    let encoding: WavEncoding;
    if (formatTag === FORMAT_PCM && [8, 16, 24, 32].includes(bitsPerSample)) encoding = 'pcm';
    else if (formatTag === FORMAT_IEEE_FLOAT && (bitsPerSample === 32 || bitsPerSample === 64)) encoding = 'float';
    else {
      throw new AttuneError(
        'unsupported_media_type',
        `unsupported WAV encoding (format tag ${formatTag}, ${bitsPerSample} bits); send PCM (8/16/24/32-bit) or IEEE float (32/64-bit)`,
        [{ field: this.field, reason: 'unsupported_encoding', format_tag: formatTag, bits_per_sample: bitsPerSample }],
      );
    }
    if (channels < 1) throw this.invalid('bad_channel_count', { channels });
    if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
      throw new AttuneError(
        'unsupported_media_type',
        `sample rate ${sampleRate} Hz is outside ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz`,
        [{ field: this.field, reason: 'unsupported_sample_rate', sample_rate: sampleRate, min: MIN_SAMPLE_RATE, max: MAX_SAMPLE_RATE }],
      );
    }
    if (blockAlign !== channels * (bitsPerSample / 8)) {
      throw this.invalid('bad_block_align', { block_align: blockAlign, expected: channels * (bitsPerSample / 8) });
    }
    return { sampleRate, channels, bitsPerSample, encoding, blockAlign };
  }

  /** A declared data size already tells whether the file is too large or too long. */
  private checkDeclaredSize(dataBytes: number): void {
    const fmt = this.format!;
    if (dataBytes > this.maxBytes) {
      throw this.tooLarge('too_large', { max_bytes: this.maxBytes, declared_bytes: dataBytes });
    }
    const seconds = dataBytes / fmt.blockAlign / fmt.sampleRate;
    if (seconds > this.maxDurationS) {
      throw this.tooLarge('too_long', { max_duration_s: this.maxDurationS, declared_duration_s: round3(seconds) });
    }
  }

  private decode(buf: Buffer, start: number, frames: number): Float32Array {
    const fmt = this.format!;
    const out = new Float32Array(frames);
    const ch = fmt.channels;
    const bytes = fmt.bitsPerSample / 8;
    const scale = 1 / ch;
    let p = start;
    if (fmt.encoding === 'pcm' && bytes === 2) {
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < ch; c++, p += 2) s += buf.readInt16LE(p);
        out[i] = (s * scale) / 32768;
      }
    } else {
      const read = sampleReader(fmt.encoding, bytes);
      const float = fmt.encoding === 'float';
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < ch; c++, p += bytes) s += read(buf, p);
        out[i] = s * scale;
        // NaN or ±Infinity in a channel (or a float64 beyond float32's range) would poison every
        // later stage: refused, naming the first such sample's time.
        if (float && !Number.isFinite(out[i])) throw this.nonFinite(buf, this.framesDecoded + i, p - fmt.blockAlign);
      }
    }
    this.framesDecoded += frames;
    if (this.framesDecoded / fmt.sampleRate > this.maxDurationS) {
      throw this.tooLarge('too_long', { max_duration_s: this.maxDurationS });
    }
    return out;
  }

  /** The refusal of sample frame `frame` (starting at byte `at` of `buf`), naming its time and value. */
  private nonFinite(buf: Buffer, frame: number, at: number): AttuneError {
    const fmt = this.format!;
    const bytes = fmt.bitsPerSample / 8;
    const read = sampleReader(fmt.encoding, bytes);
    const values: number[] = [];
    for (let c = 0; c < fmt.channels; c++) values.push(read(buf, at + c * bytes));
    const bad = values.find((v) => !Number.isFinite(v));
    const what = bad === undefined ? 'out of float32 range' : Number.isNaN(bad) ? 'NaN' : bad > 0 ? 'Infinity' : '-Infinity';
    const atS = round3(frame / fmt.sampleRate);
    return new AttuneError('validation_error', `sample ${frame} (at ${atS} s) is ${what}: a float WAV must hold finite samples`, [
      { field: this.field, reason: 'non_finite_sample', sample: frame, at_s: atS, value: what },
    ]);
  }

  private invalid(reason: ReasonFor<'validation_error'>, extra: Record<string, unknown> = {}): AttuneError {
    return new AttuneError('validation_error', `not a readable WAV file: ${reason.replace(/_/g, ' ')}`, [
      { field: this.field, reason, ...extra },
    ]);
  }

  private tooLarge(reason: 'too_large' | 'too_long', extra: Record<string, unknown>): AttuneError {
    const message = reason === 'too_large' ? `file is larger than ${this.maxBytes} bytes` : `audio is longer than ${this.maxDurationS} s`;
    return new AttuneError('payload_too_large', message, [{ field: this.field, reason, ...extra }]);
  }
}

function sampleReader(encoding: WavEncoding, bytes: number): (b: Buffer, p: number) => number {
  if (encoding === 'float') return bytes === 4 ? (b, p) => b.readFloatLE(p) : (b, p) => b.readDoubleLE(p);
  switch (bytes) {
    case 1:
      return (b, p) => (b[p] - 128) / 128; // 8-bit WAV is unsigned
    case 2:
      return (b, p) => b.readInt16LE(p) / 32768;
    case 3:
      return (b, p) => b.readIntLE(p, 3) / 8388608;
    default:
      return (b, p) => b.readInt32LE(p) / 2147483648;
  }
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface WavPiece {
  format: WavFormat;
  samples: Float32Array;
}

/**
 * Parses a byte stream (a Node Readable, a multipart file stream, any async iterable of
 * bytes) into mono sample pieces. Stopping early (break, or a thrown AttuneError) ends the
 * iteration of the source, which destroys a Readable.
 */
export async function* parseWavStream(
  source: AsyncIterable<Uint8Array | string>,
  opts: WavStreamOptions = {},
): AsyncGenerator<WavPiece, WavFormat> {
  const parser = new WavStreamParser(opts);
  for await (const chunk of source) {
    if (typeof chunk === 'string') throw new TypeError('parseWavStream needs a byte stream, not text');
    for (const samples of parser.push(chunk)) yield { format: parser.format!, samples };
  }
  parser.end();
  return parser.format!;
}
