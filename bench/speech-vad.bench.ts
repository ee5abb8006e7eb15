// Real-time factor of voice activity (Silero VAD v5, one onnxruntime session with one intra-op
// thread) plus segmenting and pauses on one core: 60 s of real 16 kHz speech (the clips in
// ../shared/data/speech, repeated in turn to fill 60 s), fed in 20 ms pieces as a live stream
// would be, one session reused (reset per round).
//
//   taskset -c 0 node --import tsx bench/speech-vad.bench.ts [runs=5]      (npm run bench:speech-vad)
//
// Prints the seconds per run and the median real-time factor (audio seconds / compute seconds),
// and writes bench/results/speech-vad-<time>-<tag>.json.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SegmentTracker, findPauses } from '../pipelines/speech/vad/segments.js';
import { SileroVad } from '../pipelines/speech/vad/silero.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';

const AUDIO_SECONDS = 60;
const SAMPLE_RATE = 16_000;
const PIECE = 320; // 20 ms
const rounds = runsArg(process.argv[2], 5);
const bench = new BenchRun('speech-vad', {
  description: 'Silero VAD v5 (one onnxruntime session, one intra-op thread) + segments and pauses, 60 s of the real 16 kHz clips in 20 ms pieces; meant to run pinned to one core (taskset -c 0)',
  options: { runs: rounds, audio_seconds: AUDIO_SECONDS },
});

const dataDir = fileURLToPath(new URL('../../shared/data/', import.meta.url));
const clips = readdirSync(dataDir + 'speech')
  .filter((f) => f.endsWith('.wav'))
  .sort()
  .map((f) => readWavFile(dataDir + 'speech/' + f))
  .filter((w) => w.sampleRate === SAMPLE_RATE);
if (clips.length === 0) throw new Error(`no 16 kHz clips in ${dataDir}speech`);

const audio = new Float32Array(AUDIO_SECONDS * SAMPLE_RATE);
for (let filled = 0, c = 0; filled < audio.length; c++) {
  const clip = clips[c % clips.length].samples;
  const take = Math.min(clip.length, audio.length - filled);
  audio.set(clip.subarray(0, take), filled);
  filled += take;
}

const vad = await SileroVad.load();

async function run(): Promise<{ segments: number; pauses: number }> {
  vad.reset();
  const tracker = new SegmentTracker();
  const segments = [];
  for (let i = 0; i < audio.length; i += PIECE) {
    const start = vad.nextChunkStartSample;
    const probs = await vad.process(audio.subarray(i, i + PIECE));
    if (probs.length) segments.push(...tracker.push(probs, start));
  }
  segments.push(...tracker.flush(audio.length));
  return { segments: segments.length, pauses: findPauses(segments).length };
}

await run(); // warm-up
const factors: number[] = [];
let counts = { segments: 0, pauses: 0 };
for (let r = 0; r < rounds; r++) {
  const t0 = process.hrtime.bigint();
  counts = await run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  factors.push(AUDIO_SECONDS / seconds);
  console.log(`round ${r + 1}: ${(seconds * 1000).toFixed(1)} ms for ${AUDIO_SECONDS} s, ${(AUDIO_SECONDS / seconds).toFixed(0)}× real time`);
}
await vad.release();
const m = bench.metric('real_time_factor', factors, '× real time (audio s / compute s)', 'higher');
const perChunkUs = (1e6 * AUDIO_SECONDS) / m.median / Math.floor(audio.length / 512);
console.log(
  `speech VAD: ${describeMetric(m, 0, '×')} real time on one core, ${perChunkUs.toFixed(0)} µs per 32 ms chunk at the median ` +
    `(${counts.segments} segments, ${counts.pauses} pauses in ${AUDIO_SECONDS} s)`,
);
const file = bench.write({ microseconds_per_32ms_chunk_at_median: Math.round(perChunkUs), segments: counts.segments, pauses: counts.pauses });
console.log(`wrote ${relativeResultPath(file)}`);
