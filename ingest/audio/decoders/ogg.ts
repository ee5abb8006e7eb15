// Ogg Opus: codec-parser (wasm-audio-decoders' container parser, the one ogg-opus-decoder is
// built on) cuts the bytes into Ogg pages and Opus packets as they arrive, keeping at most one
// page (< 64 KB) back, and opus.ts decodes the packets. Used directly rather than through
// ogg-opus-decoder because the pages say what the upload route must check: the codec of the
// first packet (Vorbis, FLAC or Speex in Ogg are a 415, not a decoder error) and whether the
// stream's last page (end-of-stream flag) arrived, which tells a cut-off file from a whole one.
// The first logical stream is decoded; pages of any other (a chained or multiplexed file) are
// skipped.
import CodecParser, { type OggPage } from 'codec-parser';
import { type AudioFormatDecoder, type DecodedAudioInfo } from './types.js';
import { truncated, undecodable, unsupportedCodec } from './errors.js';
import { OPUS_RATE, OpusPacketDecoder, parseOpusHead } from './opus.js';

const FORMAT = 'Ogg Opus';

/** The codec an Ogg stream's first packet announces (RFC 7845, Vorbis I, Ogg FLAC, Speex). */
function oggCodecOf(packet: Uint8Array): string {
  const id = String.fromCharCode(...packet.subarray(0, 8));
  if (id === 'OpusHead') return 'Opus';
  if (id.startsWith('\x01vorbis')) return 'Vorbis';
  if (id.startsWith('\x7fFLAC')) return 'FLAC';
  if (id.startsWith('Speex')) return 'Speex';
  if (id === 'fishead\0') return 'Skeleton';
  return 'unknown';
}

/** codec-parser's generators are typed as plain iterators. */
function drain<T>(it: Iterator<T>): T[] {
  const out: T[] = [];
  for (let r = it.next(); !r.done; r = it.next()) out.push(r.value);
  return out;
}

/** The first `keep` samples of the pieces (all of them when they are fewer). */
function trimTo(pieces: Float32Array[], keep: number): Float32Array[] {
  const out: Float32Array[] = [];
  let left = Math.max(0, keep);
  for (const p of pieces) {
    if (left <= 0) break;
    out.push(p.length <= left ? p : p.subarray(0, left));
    left -= Math.min(left, p.length);
  }
  return out;
}

export class OggOpusDecoder implements AudioFormatDecoder {
  readonly format = FORMAT;
  info: DecodedAudioInfo | null = null;
  private readonly parser = new CodecParser<OggPage>('application/ogg', { enableFrameCRC32: false });
  private readonly opus: OpusPacketDecoder;
  private serial: number | null = null;
  private lastPageSeen = false;
  private pages = 0;
  /** Samples decoded so far (48 kHz, after the pre-skip), and the stream's pre-skip. */
  private samples = 0;
  private preSkip = 0;

  constructor(private readonly field: string) {
    this.opus = new OpusPacketDecoder(field, FORMAT);
  }

  async push(chunk: Buffer): Promise<Float32Array[]> {
    return this.take(drain(this.parser.parseChunk(chunk)));
  }

  async end(): Promise<Float32Array[]> {
    const out = await this.take(drain(this.parser.flush()));
    if (this.pages === 0) throw undecodable(this.field, FORMAT, 'no complete Ogg page');
    if (!this.info) throw undecodable(this.field, FORMAT, 'no Opus audio in the stream');
    if (!this.lastPageSeen) throw truncated(this.field, FORMAT, 'the stream has no last page (end-of-stream flag)');
    return out;
  }

  free(): void {
    this.opus.free();
  }

  private async take(pages: OggPage[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const page of pages) {
      this.pages += 1;
      if (this.serial === null) {
        // The first page of a stream holds its identification header alone (RFC 3533).
        const codec = oggCodecOf(page.data);
        if (codec === 'Skeleton') continue;
        if (codec !== 'Opus') {
          if (codec === 'unknown') throw undecodable(this.field, FORMAT, 'the first Ogg page holds no codec header');
          throw unsupportedCodec(this.field, 'Ogg', codec);
        }
        const head = parseOpusHead(page.data);
        if (!head) throw undecodable(this.field, FORMAT, 'the OpusHead header is malformed');
        this.serial = page.streamSerialNumber;
        this.preSkip = head.preSkip;
        await this.opus.open(head);
        this.info = { sampleRate: OPUS_RATE, channels: head.channels, encoding: 'opus', declaredFrames: null, declaredS: null };
        continue;
      }
      if (page.streamSerialNumber !== this.serial || this.lastPageSeen) continue;
      let pieces = this.opus.decode(page.codecFrames.map((f) => f.data));
      if (page.isLastPage) {
        this.lastPageSeen = true;
        // The last page's granule position is where the audio ends (RFC 7845 §4.5): the
        // decoder's output past it is the encoder's padding of the last packet.
        const end = Number(page.absoluteGranulePosition) - this.preSkip;
        if (end >= 0) pieces = trimTo(pieces, end - this.samples);
      }
      for (const p of pieces) this.samples += p.length;
      out.push(...pieces);
    }
    return out;
  }
}
