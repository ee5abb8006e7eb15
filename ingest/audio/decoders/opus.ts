// Opus packets to samples through opus-decoder: libopus compiled to WebAssembly, from the
// wasm-audio-decoders project (maintained; the decoder ogg-opus-decoder itself uses). Ogg
// (ogg.ts) and WebM (webm.ts) only differ in how the packets and the OpusHead reach it.
// Output is at 48 kHz, Opus's own rate; the upload's resampler takes it to 16 kHz as it does
// any other rate. The decoder drops the stream's pre-skip (encoder delay) itself.
import { OpusDecoder } from 'opus-decoder';
import { mixToMono } from './types.js';
import { MAX_CHANNELS, undecodable, unsupportedChannels } from './errors.js';

export const OPUS_RATE = 48000;

export interface OpusHead {
  channels: number;
  preSkip: number;
  streamCount: number;
  coupledStreamCount: number;
  channelMappingTable: number[];
}

/** The OpusHead packet (RFC 7845 §5.1): WebM's CodecPrivate, Ogg's first packet. Null when it is not one. */
export function parseOpusHead(b: Uint8Array): OpusHead | null {
  if (b.length < 19 || String.fromCharCode(...b.subarray(0, 8)) !== 'OpusHead') return null;
  const channels = b[9];
  const preSkip = b[10] | (b[11] << 8);
  const family = b[18];
  if (channels < 1) return null;
  if (family === 0) {
    if (channels > 2) return null;
    return { channels, preSkip, streamCount: 1, coupledStreamCount: channels - 1, channelMappingTable: channels === 1 ? [0] : [0, 1] };
  }
  if (b.length < 21 + channels) return null;
  return { channels, preSkip, streamCount: b[19], coupledStreamCount: b[20], channelMappingTable: [...b.subarray(21, 21 + channels)] };
}

/** One Opus stream: packets in, mono samples at 48 kHz out. */
export class OpusPacketDecoder {
  private decoder: OpusDecoder | null = null;

  constructor(
    private readonly field: string,
    private readonly format: string,
  ) {}

  async open(head: OpusHead): Promise<void> {
    // Refused before the first packet: a multichannel stream (up to 255) decodes every channel.
    if (head.channels > MAX_CHANNELS) throw unsupportedChannels(this.field, head.channels);
    this.decoder = new OpusDecoder({ ...head });
    await this.decoder.ready;
  }

  get opened(): boolean {
    return this.decoder !== null;
  }

  decode(packets: Uint8Array[]): Float32Array[] {
    if (packets.length === 0) return [];
    const r = this.decoder!.decodeFrames(packets);
    if (r.errors.length > 0) throw undecodable(this.field, this.format, `Opus: ${r.errors[0].message}`);
    return r.samplesDecoded > 0 ? [mixToMono(r.channelData, r.samplesDecoded)] : [];
  }

  free(): void {
    this.decoder?.free();
    this.decoder = null;
  }
}
