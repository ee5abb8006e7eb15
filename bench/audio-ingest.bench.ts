// Upload-path throughput for the worst common case, 48 kHz stereo PCM16: WAV bytes in
// 64 KB pieces (what a multipart stream delivers) → parse to mono → resample to 16 kHz →
// PCM16 bus frames. Reports each stage and the whole path as multiples of real time on
// one core.
//
//   npm run bench:audio-ingest -- [seconds=120] [runs=5]
//
// The three nested stage sets (parse; parse + resample; all) are measured in the same run,
// interleaved (their order rotates each run), after one warm-up each; each figure is the median
// over runs. Writes bench/results/audio-ingest-<time>-<tag>.json.
import { createRandom } from '../lib/prng.js';
import { WavStreamParser } from '../ingest/audio/wav-stream.js';
import { createResampler } from '../ingest/audio/resample.js';
import { createAudioFramer } from '../schemas/audio-frames.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';
import { interleavedOrder } from './lib/stats.js';

const seconds = Number(process.argv[2] ?? 120);
const runs = runsArg(process.argv[3], 5);
const bench = new BenchRun('audio-ingest', {
  description: 'WAV upload path for 48 kHz stereo PCM16 in 64 KB pieces: parse to mono, resample to 16 kHz, PCM16 bus frames; synthetic tones + noise; one thread',
  options: { seconds, runs },
});
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

const stages = ['parse', 'parse+resample', 'all'] as const;
for (const stage of stages) run(stage); // warm-up
const factors: Record<(typeof stages)[number], number[]> = { parse: [], 'parse+resample': [], all: [] };
const outputs: Record<string, number> = {};
for (const order of interleavedOrder(stages, runs)) {
  for (const stage of order) {
    const r = run(stage);
    factors[stage].push((seconds * 1000) / r.ms);
    outputs[stage] = r.out;
  }
}
for (const stage of stages) {
  const m = bench.metric(`${stage.replace('+', '_')}_real_time_factor`, factors[stage], '× real time (audio s / compute s)', 'higher');
  console.log(
    `${stage.padEnd(15)} ${seconds} s of 48 kHz stereo PCM16 (${(wav.length / 1e6).toFixed(1)} MB): ${describeMetric(m, 0, '×')} real time, ` +
      `${((wav.length / 1e6) * (m.median / seconds)).toFixed(0)} MB/s at the median (out: ${outputs[stage]})`,
  );
}
const file = bench.write({ wav_bytes: wav.length, outputs });
console.log(`wrote ${relativeResultPath(file)}`);
