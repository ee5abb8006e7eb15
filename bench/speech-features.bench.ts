// Real-time factor of the speech frame features (RMS dBFS + YIN pitch with voicing, 30 ms frames
// every 10 ms) on one core: 60 s of real 16 kHz speech (the clips in ../shared/data/speech and
// the PTDB-TUG 16 kHz clip, repeated in turn to fill 60 s), one plan and one output track reused,
// single thread. Voice activity (Silero) is not part of this yet.
//
//   npm run bench:speech-features -- [runs=7]
//
// Prints the seconds per run and the median real-time factor (audio seconds / compute seconds),
// and writes bench/results/speech-features-<time>-<tag>.json.
// Target for features plus voice activity: ≥ 100× real time.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { computeSpeechFeatures, createPitchTrack, createSpeechFeaturePlan, frameCount } from '../pipelines/speech/index.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';

const AUDIO_SECONDS = 60;
const SAMPLE_RATE = 16_000;
const rounds = runsArg(process.argv[2], 7);
const bench = new BenchRun('speech-features', {
  description: 'speech frame features: 30 ms frames every 10 ms, RMS dBFS + YIN pitch with voicing, one thread, 60 s of the real 16 kHz clips (../shared/data/speech and the PTDB-TUG clip) repeated in turn',
  options: { runs: rounds, audio_seconds: AUDIO_SECONDS },
});

const dataDir = fileURLToPath(new URL('../../shared/data/', import.meta.url));
const clips = [
  ...readdirSync(dataDir + 'speech')
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .map((f) => dataDir + 'speech/' + f),
  dataDir + 'pitch/mic_F01_sa1_16k.wav',
]
  .map((p) => readWavFile(p))
  .filter((w) => w.sampleRate === SAMPLE_RATE);
if (clips.length === 0) throw new Error(`no 16 kHz clips in ${dataDir}`);

const audio = new Float32Array(AUDIO_SECONDS * SAMPLE_RATE);
for (let filled = 0, c = 0; filled < audio.length; c++) {
  const clip = clips[c % clips.length].samples;
  const take = Math.min(clip.length, audio.length - filled);
  audio.set(clip.subarray(0, take), filled);
  filled += take;
}

const plan = createSpeechFeaturePlan();
const out = createPitchTrack(frameCount(audio.length, { frameSize: plan.pitch.frameSize, hop: plan.hop }));
computeSpeechFeatures(audio, plan, out); // warm-up: JIT

const factors: number[] = [];
let voiced = 0;
for (let r = 0; r < rounds; r++) {
  const t0 = process.hrtime.bigint();
  const features = computeSpeechFeatures(audio, plan, out);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  voiced = features.voiced.reduce((a, v) => a + v, 0) / features.frames;
  factors.push(AUDIO_SECONDS / seconds);
  console.log(`round ${r + 1}: ${(seconds * 1000).toFixed(1)} ms for ${AUDIO_SECONDS} s, ${(AUDIO_SECONDS / seconds).toFixed(0)}× real time`);
}
const m = bench.metric('real_time_factor', factors, '× real time (audio s / compute s)', 'higher');
console.log(
  `speech features: ${describeMetric(m, 0, '×')} real time on one core (${clips.length} clips, ` +
    `${(100 * voiced).toFixed(0)} % frames voiced; target for features + VAD ≥ 100×)`,
);
const file = bench.write({ clips: clips.length, voiced_share: Number(voiced.toFixed(3)) });
console.log(`wrote ${relativeResultPath(file)}`);
