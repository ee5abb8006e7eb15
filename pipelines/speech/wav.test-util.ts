// Minimal WAV reader for tests only: RIFF/WAVE with PCM16 (format 1, or WAVE_FORMAT_EXTENSIBLE
// carrying 16-bit PCM), mono or stereo; stereo is averaged to mono. The product's streaming WAV
// parser is a separate piece of work.
import { readFileSync } from 'node:fs';

export interface WavAudio {
  sampleRate: number;
  channels: number;
  /** Mono samples in [-1, 1). */
  samples: Float32Array;
}

export function readWavFile(path: string): WavAudio {
  return parseWav(readFileSync(path));
}

export function parseWav(buf: Buffer): WavAudio {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let offset = 12;
  let format: { code: number; channels: number; sampleRate: number; bits: number } | null = null;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      let code = buf.readUInt16LE(body);
      // Extensible: the real format code is the first two bytes of the sub-format GUID.
      if (code === 0xfffe && size >= 26) code = buf.readUInt16LE(body + 24);
      format = { code, channels: buf.readUInt16LE(body + 2), sampleRate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!format) throw new Error('data chunk before fmt chunk');
      if (format.code !== 1 || format.bits !== 16) throw new Error(`unsupported encoding: format ${format.code}, ${format.bits} bits`);
      if (format.channels !== 1 && format.channels !== 2) throw new Error(`unsupported channel count ${format.channels}`);
      const bytes = Math.min(size, buf.length - body);
      const frames = Math.floor(bytes / (2 * format.channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let acc = 0;
        for (let c = 0; c < format.channels; c++) acc += buf.readInt16LE(body + 2 * (i * format.channels + c));
        samples[i] = acc / format.channels / 32768;
      }
      return { sampleRate: format.sampleRate, channels: format.channels, samples };
    }
    offset = body + size + (size & 1); // chunks are padded to even length
  }
  throw new Error('no data chunk');
}

/** PCM16 WAV bytes of mono or interleaved samples, for round-trip tests. */
export function encodeWavPcm16(interleaved: Float32Array, sampleRate: number, channels: number): Buffer {
  const dataBytes = interleaved.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'latin1');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'latin1');
  buf.write('fmt ', 12, 'latin1');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(channels, 22);
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * channels * 2, 28);
  buf.writeUInt16LE(channels * 2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'latin1');
  buf.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < interleaved.length; i++) {
    buf.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(interleaved[i] * 32768))), 44 + 2 * i);
  }
  return buf;
}
