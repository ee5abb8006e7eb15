// Ogg Opus: codec-parser (wasm-audio-decoders' container parser, the one ogg-opus-decoder is
// built on) cuts the bytes into Ogg pages and Opus packets as they arrive, keeping at most one
// page (< 64 KB) back, and opus.ts decodes the packets. Used directly rather than through
// ogg-opus-decoder because the pages say what the upload route must check: the codec of the
// first packet (Vorbis, FLAC or Speex in Ogg are a 415, not a decoder error) and whether the
// stream's last page (end-of-stream flag) arrived, which tells a cut-off file from a whole one.
// The first logical stream is decoded; pages of any other (a chained or multiplexed file) are
// skipped.
//
// codec-parser keeps, for every logical stream that has not ended, an object and the packet it
// is reassembling across pages, with no bound on either: 27-byte pages of ever new serial numbers
// grew the heap by 1 GB from 77 MB, and one packet continued over 1000 full pages held 65 MB
// (copied whole at every page). So OggPageGate reads the page headers as the bytes pass, before
// codec-parser sees them, and refuses a file with more than MAX_OGG_STREAMS streams open at once
// or a packet longer than MAX_OGG_PACKET_BYTES.
import CodecParser, { type OggPage } from 'codec-parser';
import { type AudioFormatDecoder, type AudioSink, type DecodedAudioInfo } from './types.js';
import { truncated, undecodable, unsupportedCodec } from './errors.js';
import { OPUS_RATE, OpusPacketDecoder, parseOpusHead } from './opus.js';

const FORMAT = 'Ogg Opus';

/** Logical streams open at once (begun, not ended): an upload has one, with a Skeleton or a video stream at most a few. */
export const MAX_OGG_STREAMS = 8;
/** A packet reassembled across pages: an Opus packet is under 64 KB; 1 MB leaves room for an OpusTags packet with a picture. */
export const MAX_OGG_PACKET_BYTES = 1024 * 1024;

/**
 * The Ogg pages of the bytes as they arrive, read the way codec-parser reads them ("OggS", the
 * flag byte's upper five bits zero, then the segment table), keeping only a page header's bytes.
 * Anything else where a page should start is refused (codec-parser would skip ahead byte by byte
 * and read pages this gate had not counted). Tracks what codec-parser keeps per stream: the
 * streams not ended, and each one's unfinished packet.
 */
export class OggPageGate {
  private readonly head = Buffer.alloc(27 + 255);
  private headLen = 0;
  private bodyLeft = 0;
  private offset = 0;
  /** Serial number → bytes of its packet continued to the next page. */
  private readonly open = new Map<number, number>();

  constructor(private readonly field: string) {}

  check(chunk: Buffer): void {
    let p = 0;
    while (p < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - p);
        p += n;
        this.offset += n;
        this.bodyLeft -= n;
        continue;
      }
      const need = this.headLen < 27 ? 27 : 27 + this.head[26];
      const n = Math.min(need - this.headLen, chunk.length - p);
      chunk.copy(this.head, this.headLen, p, p + n);
      this.headLen += n;
      p += n;
      this.offset += n;
      if (this.headLen === 27 && (this.head.toString('latin1', 0, 4) !== 'OggS' || (this.head[5] & 0xf8) !== 0)) {
        throw undecodable(this.field, FORMAT, `no Ogg page at byte ${this.offset - 27}`);
      }
      if (this.headLen >= 27 && this.headLen === 27 + this.head[26]) this.page();
    }
  }

  private page(): void {
    const h = this.head;
    const serial = h.readInt32LE(14);
    const segments = h[26];
    let body = 0;
    let trailing = 0;
    for (let i = 0; i < segments; i++) {
      body += h[27 + i];
      trailing = h[27 + i] === 255 ? trailing + 255 : 0;
    }
    this.headLen = 0;
    this.bodyLeft = body;
    if (!this.open.has(serial) && this.open.size >= MAX_OGG_STREAMS) {
      throw undecodable(this.field, FORMAT, `more than ${MAX_OGG_STREAMS} logical streams open at once (a new one at byte ${this.offset - 27 - segments})`, { max_streams: MAX_OGG_STREAMS });
    }
    if (h[5] & 4) {
      // The stream's last page: codec-parser forgets the stream and its unfinished packet.
      this.open.delete(serial);
      return;
    }
    // A page all of whose segments are 255 continues the packet it began with; otherwise the
    // packet held back is the run of 255s at its end.
    const continued = segments > 0 && trailing === body ? (this.open.get(serial) ?? 0) + trailing : trailing;
    if (continued > MAX_OGG_PACKET_BYTES) {
      throw undecodable(this.field, FORMAT, `a packet continued over pages beyond ${MAX_OGG_PACKET_BYTES} bytes (stream ${serial >>> 0}, page at byte ${this.offset - 27 - segments})`, { max_packet_bytes: MAX_OGG_PACKET_BYTES });
    }
    this.open.set(serial, continued);
  }
}

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
  private readonly gate: OggPageGate;
  private serial: number | null = null;
  private lastPageSeen = false;
  private pages = 0;
  /** Samples decoded so far (48 kHz, after the pre-skip), and the stream's pre-skip. */
  private samples = 0;
  private preSkip = 0;

  constructor(private readonly field: string) {
    this.opus = new OpusPacketDecoder(field, FORMAT);
    this.gate = new OggPageGate(field);
  }

  async push(chunk: Buffer, emit?: AudioSink): Promise<Float32Array[]> {
    this.gate.check(chunk);
    return this.take(drain(this.parser.parseChunk(chunk)), emit);
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

  private async take(pages: OggPage[], emit?: AudioSink): Promise<Float32Array[]> {
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
      if (emit) await emit(pieces);
      else out.push(...pieces);
    }
    return out;
  }
}
