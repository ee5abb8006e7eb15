// WAV files for tests and benchmarks: read whole through the product's streaming parser
// (ingest/audio/wav-stream.ts; channels averaged to mono), and a PCM16 encoder.
import { WavStreamParser } from '../../ingest/audio/wav-stream.js';
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

/** Decodes a whole WAV file with the product's streaming parser (ingest/audio). */
export function parseWav(buf: Buffer): WavAudio {
  const parser = new WavStreamParser({});
  const pieces = parser.push(buf);
  parser.end();
  const format = parser.format!;
  let length = 0;
  for (const p of pieces) length += p.length;
  const samples = new Float32Array(length);
  let at = 0;
  for (const p of pieces) {
    samples.set(p, at);
    at += p.length;
  }
  return { sampleRate: format.sampleRate, channels: format.channels, samples };
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
