// WebM (Matroska) Opus: the audio track's blocks pulled out of the EBML stream as it arrives,
// their Opus packets decoded by opus.ts.
//
// The demuxer is written here, in about 150 lines, rather than taken from the registry: the
// EBML parsers there (ebml, ts-ebml, ebml-stream) are Node Transform streams that emit every
// element of the file and bundle a Buffer polyfill, and none of them documents what a browser's
// MediaRecorder writes: a Segment and Clusters of unknown size (all size bits 1), whose end is
// only the start of the next element. An upload needs three things from the file: the audio
// track's number and codec (Tracks/TrackEntry), its OpusHead (CodecPrivate), and the payloads of
// its SimpleBlocks and Blocks (a BlockGroup whole, for its DiscardPadding). So the walker
// descends into the few master elements that lead there (unknown size or not), skips
// everything else by its size without reading it, and keeps
// only the bytes of the element it is reading (a block: at most MAX_BLOCK_BYTES) and the
// tracks' headers (at most MAX_WEBM_TRACKS of them). The blocks' lacing (Xiph, EBML, fixed;
// at most 256 frames) is undone by ebml-block, a small maintained parser of exactly that.
import { createRequire } from 'node:module';
import { type AudioFormatDecoder, type AudioSink, type DecodedAudioInfo } from './types.js';
import { truncated, undecodable, unsupportedCodec } from './errors.js';
import { OPUS_RATE, OpusPacketDecoder, parseOpusHead } from './opus.js';

const FORMAT = 'WebM Opus';

interface ParsedBlock {
  trackNumber: number;
  timecode: number;
  frames: Uint8Array[];
}
/** ebml-block is CommonJS without types: its one function, typed here. */
const parseBlock = createRequire(import.meta.url)('ebml-block') as (block: Buffer) => ParsedBlock;

/** Element ids (with their length marker bits, as written in the file). */
const ID = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  Cluster: 0x1f43b675,
  BlockGroup: 0xa0,
  Block: 0xa1,
  DiscardPadding: 0x75a2,
  SimpleBlock: 0xa3,
} as const;

/** Masters walked into: their children are read in turn, whatever their own size says. */
const DESCEND = new Set<number>([ID.EBML, ID.Segment, ID.Tracks, ID.TrackEntry, ID.Cluster]);
/**
 * Elements whose bodies are read. A BlockGroup is read whole (its size is always known; only
 * Segments and Clusters may have an unknown one) because its DiscardPadding comes after its
 * Block and says how much of the Block's decoded audio is encoder padding.
 */
const READ = new Set<number>([ID.DocType, ID.TrackNumber, ID.TrackType, ID.CodecID, ID.CodecPrivate, ID.BlockGroup, ID.Block, ID.SimpleBlock]);
/** A block larger than this is not audio an upload sends (an Opus packet is at most ~1.3 KB a 20 ms frame). */
const MAX_BLOCK_BYTES = 1024 * 1024;
/** A BlockGroup: its Block plus a few small elements (references, duration, padding). */
const MAX_BLOCK_GROUP_BYTES = MAX_BLOCK_BYTES + 1024;
const MAX_HEADER_ELEMENT_BYTES = 64 * 1024;
/**
 * At most this many TrackEntry elements in a file (all Tracks elements together): a recording
 * has one audio track, a screen or call recording a video track or two besides. Each is kept
 * until the first block (an object, and its CodecPrivate of up to MAX_HEADER_ELEMENT_BYTES):
 * without a bound, 2-byte empty TrackEntries grew the heap by about 75 bytes each, so a 4 MB
 * file by 300 MB and a 200 MB upload past the heap limit.
 */
export const MAX_WEBM_TRACKS = 16;
const TRACK_TYPE_AUDIO = 2;

interface Track {
  number: number | null;
  type: number | null;
  codec: string | null;
  codecPrivate: Uint8Array | null;
}

/** A big-endian two's-complement integer of 1–8 bytes (EBML's signed integer). */
function signedInt(b: Uint8Array): number {
  let v = b[0] >= 0x80 ? b[0] - 0x100 : b[0];
  for (let i = 1; i < b.length; i++) v = v * 256 + b[i];
  return v;
}

/** The pieces without `n` samples at their end (or start). */
function dropSamples(pieces: Float32Array[], n: number, atEnd: boolean): Float32Array[] {
  const total = pieces.reduce((k, x) => k + x.length, 0);
  const keep = Math.max(0, total - n);
  const out: Float32Array[] = [];
  let skip = atEnd ? 0 : total - keep;
  let left = keep;
  for (const x of pieces) {
    const from = Math.min(skip, x.length);
    skip -= from;
    const take = Math.min(left, x.length - from);
    if (take > 0) out.push(x.subarray(from, from + take));
    left -= take;
  }
  return out;
}

/** Reads an EBML variable-length integer at `p`: [value, length], null when more bytes are needed; value -1 = unknown size. */
function readVint(b: Buffer, p: number, keepMarker: boolean): [number, number] | null {
  if (p >= b.length) return null;
  const first = b[p];
  if (first === 0) return [-2, 1]; // longer than 8 bytes: not EBML
  const len = Math.clz32(first) - 23; // 1 for 0b1xxxxxxx … 8 for 0b00000001
  if (p + len > b.length) return null;
  let value = keepMarker ? first : first & (0xff >> len);
  let allOnes = value === (0xff >> len);
  for (let i = 1; i < len; i++) {
    value = value * 256 + b[p + i];
    if (b[p + i] !== 0xff) allOnes = false;
  }
  if (!keepMarker && allOnes) return [-1, len];
  return [value, len];
}

export class WebmOpusDecoder implements AudioFormatDecoder {
  readonly format = FORMAT;
  info: DecodedAudioInfo | null = null;
  private readonly opus: OpusPacketDecoder;
  private pending: Buffer = Buffer.alloc(0);
  /** Absolute offset of pending[0]. */
  private offset = 0;
  /** Bytes still to skip of an element not needed. */
  private skip = 0;
  /** The element being read: id and body size. */
  private reading: { id: number; size: number } | null = null;
  /** Where a Segment of known size ends (absolute), for telling a cut-off file. */
  private segmentEnd: number | null = null;
  /** Every TrackEntry read so far; the first audio one is decoded. */
  private readonly tracks: Track[] = [];
  private audio: { number: number } | null = null;
  private docType: string | null = null;
  private blocks = 0;

  constructor(private readonly field: string) {
    this.opus = new OpusPacketDecoder(field, FORMAT);
  }

  async push(chunk: Buffer, emit?: AudioSink): Promise<Float32Array[]> {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Float32Array[] = [];
    let p = 0;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - p);
        p += n;
        this.skip -= n;
        if (this.skip > 0) break;
      }
      if (this.reading) {
        const { id, size } = this.reading;
        if (buf.length - p < size) break;
        const pieces = await this.element(id, buf.subarray(p, p + size));
        p += size;
        this.reading = null;
        if (emit && pieces.length > 0) {
          // Kept consistent first: emit may throw (the duration limit), ending the upload.
          this.offset += p;
          buf = buf.subarray(p);
          p = 0;
          await emit(pieces);
        } else out.push(...pieces);
        continue;
      }
      const idv = readVint(buf, p, true);
      if (!idv) break;
      const sizev = readVint(buf, p + idv[1], false);
      if (!sizev) break;
      const [id, idLen] = idv;
      const [size, sizeLen] = sizev;
      if (id === -2 || size === -2 || idLen > 4) throw undecodable(this.field, FORMAT, `not an EBML element at byte ${this.offset + p}`);
      const bodyAt = this.offset + p + idLen + sizeLen;
      p += idLen + sizeLen;
      if (this.offset === 0 && p === idLen + sizeLen && id !== ID.EBML) throw undecodable(this.field, FORMAT, 'no EBML header');
      if (DESCEND.has(id)) {
        if (id === ID.Segment && size >= 0) this.segmentEnd = bodyAt + size;
        if (id === ID.TrackEntry) {
          if (this.tracks.length >= MAX_WEBM_TRACKS) {
            throw undecodable(this.field, FORMAT, `more than ${MAX_WEBM_TRACKS} tracks (TrackEntry at byte ${bodyAt})`, { max_tracks: MAX_WEBM_TRACKS });
          }
          this.tracks.push({ number: null, type: null, codec: null, codecPrivate: null });
        }
        continue;
      }
      if (size < 0) throw undecodable(this.field, FORMAT, `element 0x${id.toString(16)} of unknown size at byte ${bodyAt}`);
      if (READ.has(id)) {
        const max = id === ID.BlockGroup ? MAX_BLOCK_GROUP_BYTES : id === ID.Block || id === ID.SimpleBlock ? MAX_BLOCK_BYTES : MAX_HEADER_ELEMENT_BYTES;
        if (size > max) throw undecodable(this.field, FORMAT, `element 0x${id.toString(16)} of ${size} bytes at byte ${bodyAt}`);
        this.reading = { id, size };
      } else {
        this.skip = size;
      }
    }
    this.offset += p;
    // Keep only the unread bytes (a copy: the caller's buffer may be reused).
    this.pending = p < buf.length ? Buffer.from(buf.subarray(p)) : Buffer.alloc(0);
    return out;
  }

  async end(): Promise<Float32Array[]> {
    const received = this.offset + this.pending.length;
    if (this.docType === null && this.offset < 4) throw undecodable(this.field, FORMAT, 'no EBML header');
    if (this.reading || this.pending.length > 0 || this.skip > 0 || (this.segmentEnd !== null && received < this.segmentEnd)) {
      throw truncated(this.field, FORMAT, `${received} bytes of ${this.segmentEnd ?? 'more'}`, { bytes: received });
    }
    if (!this.audio) throw undecodable(this.field, FORMAT, this.tracks.some((t) => t.type === TRACK_TYPE_AUDIO) ? 'the audio track has no blocks' : 'no audio track');
    if (this.blocks === 0) throw undecodable(this.field, FORMAT, 'the audio track has no blocks');
    return [];
  }

  free(): void {
    this.opus.free();
  }

  private async element(id: number, body: Buffer): Promise<Float32Array[]> {
    const track = this.tracks[this.tracks.length - 1];
    switch (id) {
      case ID.DocType:
        this.docType = body.toString('latin1').replace(/\0+$/, '');
        if (this.docType !== 'webm' && this.docType !== 'matroska') throw undecodable(this.field, FORMAT, `EBML document type "${this.docType}"`);
        return [];
      case ID.TrackNumber:
      case ID.TrackType: {
        let v = 0;
        for (const byte of body) v = v * 256 + byte;
        if (track) track[id === ID.TrackNumber ? 'number' : 'type'] = v;
        return [];
      }
      case ID.CodecID:
        if (track) track.codec = body.toString('latin1').replace(/\0+$/, '');
        return [];
      case ID.CodecPrivate:
        if (track) track.codecPrivate = Buffer.from(body);
        return [];
      case ID.BlockGroup:
        return this.blockGroup(body);
      default:
        // Block or SimpleBlock.
        return this.block(body, 0);
    }
  }

  /**
   * A BlockGroup's Block, less its DiscardPadding: the nanoseconds of the decoded audio that
   * are encoder padding, at the Block's end (positive) or start (negative), as Matroska defines
   * it. ffmpeg writes one on the last block, where the Opus frame runs past the audio (13.5 ms
   * on the JFK clip's WebM, which decoded 14 ms longer than its Ogg); Ogg says the same with
   * the last page's granule position (ogg.ts).
   */
  private async blockGroup(body: Buffer): Promise<Float32Array[]> {
    let block: Buffer | null = null;
    let discardNs = 0;
    for (let p = 0; p < body.length; ) {
      const idv = readVint(body, p, true);
      const sizev = idv ? readVint(body, p + idv[1], false) : null;
      if (!idv || !sizev || idv[0] < 0 || sizev[0] < 0) throw undecodable(this.field, FORMAT, 'a BlockGroup whose elements cannot be read');
      const at = p + idv[1] + sizev[1];
      const end = at + sizev[0];
      if (end > body.length) throw undecodable(this.field, FORMAT, 'a BlockGroup element runs past the group');
      if (idv[0] === ID.Block) block = body.subarray(at, end);
      else if (idv[0] === ID.DiscardPadding && end - at >= 1 && end - at <= 8) discardNs = signedInt(body.subarray(at, end));
      p = end;
    }
    return block === null ? [] : this.block(block, discardNs);
  }

  /** A Block or SimpleBlock of the audio track decoded, with `discardNs` of padding dropped (see blockGroup). */
  private async block(body: Buffer, discardNs: number): Promise<Float32Array[]> {
    if (!this.audio) await this.openTrack();
    let block: ParsedBlock;
    try {
      block = parseBlock(body);
    } catch (err) {
      throw undecodable(this.field, FORMAT, `a block cannot be parsed (${(err as Error).message})`);
    }
    if (block.trackNumber !== this.audio!.number) return [];
    this.blocks += 1;
    const pieces = this.opus.decode(block.frames);
    return discardNs === 0 ? pieces : dropSamples(pieces, Math.round((Math.abs(discardNs) * OPUS_RATE) / 1e9), discardNs > 0);
  }

  /** Opens the first audio track's decoder at the first block (the Tracks element comes before the Clusters). */
  private async openTrack(): Promise<void> {
    const t = this.tracks.find((k) => k.type === TRACK_TYPE_AUDIO && k.number !== null);
    if (!t) throw undecodable(this.field, FORMAT, 'no audio track before the first block');
    if (t.codec !== 'A_OPUS') throw unsupportedCodec(this.field, 'WebM', t.codec ?? 'an unnamed codec');
    const head = t.codecPrivate ? parseOpusHead(t.codecPrivate) : null;
    if (!head) throw undecodable(this.field, FORMAT, 'the Opus track has no valid OpusHead (CodecPrivate)');
    await this.opus.open(head);
    this.audio = { number: t.number! };
    this.info = { sampleRate: OPUS_RATE, channels: head.channels, encoding: 'opus', declaredFrames: null, declaredS: null };
  }
}
