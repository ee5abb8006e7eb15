// Upload-path throughput for the worst common case, 48 kHz stereo PCM16: WAV bytes in
// 64 KB pieces (what a multipart stream delivers) → parse to mono → resample to 16 kHz →
// PCM16 bus frames. Reports each stage and the whole path as multiples of real time on
// one core. Run: node --import tsx bench/audio-ingest.bench.ts [seconds]
import { createRandom } from '../lib/prng.js';
import { WavStreamParser } from '../ingest/audio/wav-stream.js';
import { createResampler } from '../ingest/audio/resample.js';
import { createAudioFramer } from '../ingest/audio/frames.js';

const seconds = Number(process.argv[2] ?? 120);
const rate = 48000;
const frames = seconds * rate;

// A speech-like test signal: two tones and noise, different per channel.
const rnd = createRandom(1);
const data = Buffer.alloc(frames * 4);
for (let i = 0; i < frames; i++) {
  const t = i / rate;
  const l = 0.3 * Math.sin(2 * Math.PI * 180 * t) + 0.1 * Math.sin(2 * Math.PI * 2400 * t) + 0.05 * (rnd() - 0.5);
  const r = 0.3 * Math.sin(2 * Math.PI * 220 * t) + 0.05 * (rnd() - 0.5);
  data.writeInt16LE(Math.round(l * 32767), i * 4);
  data.writeInt16LE(Math.round(r * 32767), i * 4 + 2);
}
const header = Buffer.alloc(44);
header.write('RIFF', 0);
header.writeUInt32LE(36 + data.length, 4);
header.write('WAVEfmt ', 8);
header.writeUInt32LE(16, 16);
header.writeUInt16LE(1, 20);
header.writeUInt16LE(2, 22);
header.writeUInt32LE(rate, 24);
header.writeUInt32LE(rate * 4, 28);
header.writeUInt16LE(4, 32);
header.writeUInt16LE(16, 34);
header.write('data', 36);
header.writeUInt32LE(data.length, 40);
const wav = Buffer.concat([header, data]);
const pieces: Buffer[] = [];
for (let p = 0; p < wav.length; p += 65536) pieces.push(wav.subarray(p, p + 65536));

function run(stages: 'parse' | 'parse+resample' | 'all'): { ms: number; out: number } {
  const t0 = performance.now();
  const parser = new WavStreamParser({ maxBytes: 200 * 1024 * 1024 });
  const resampler = createResampler(rate, 16000);
  const framer = createAudioFramer();
  let out = 0;
  for (const piece of pieces) {
    for (const mono of parser.push(piece)) {
      if (stages === 'parse') {
        out += mono.length;
        continue;
      }
      const y = resampler.push(mono);
      if (stages === 'all') out += framer.push(y).length;
      else out += y.length;
    }
  }
  parser.end();
  if (stages !== 'parse') {
    const y = resampler.flush();
    if (stages === 'all') out += framer.push(y).length + framer.flush().length;
    else out += y.length;
  }
  return { ms: performance.now() - t0, out };
}

for (const stage of ['parse', 'parse+resample', 'all'] as const) {
  run(stage); // warm-up
  const ms: number[] = [];
  let out = 0;
  for (let k = 0; k < 3; k++) {
    const r = run(stage);
    ms.push(r.ms);
    out = r.out;
  }
  const best = Math.min(...ms);
  console.log(
    `${stage.padEnd(15)} ${seconds} s of 48 kHz stereo PCM16 (${(wav.length / 1e6).toFixed(1)} MB): ` +
      `${best.toFixed(0)} ms best of 3 → ${((seconds * 1000) / best).toFixed(0)}× real time, ` +
      `${(wav.length / 1e6 / (best / 1000)).toFixed(0)} MB/s (out: ${out})`,
  );
}
