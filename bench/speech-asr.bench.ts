// Real-time factor of Moonshine recognition (encoder + greedy decoding with the KV cache,
// one onnxruntime session per model with one intra-op thread) on one core, for tiny and base,
// over every 16 kHz clip in ../shared/data/speech, each transcribed as one segment.
//
//   taskset -c 0 node --import tsx bench/speech-asr.bench.ts [runs=3] [models=moonshine-tiny,moonshine-base]
//
// Prints per model the median over runs of (total audio seconds / total compute seconds),
// and the time per generated token; writes bench/results/speech-asr-<time>-<tag>.json.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MoonshineRecognizer } from '../pipelines/speech/asr/moonshine.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';

const rounds = runsArg(process.argv[2], 3);
const models = (process.argv[3] ?? 'moonshine-tiny,moonshine-base').split(',');
const bench = new BenchRun('speech-asr', {
  description: 'Moonshine recognition (encoder + greedy decoding with the KV cache, one intra-op thread) of every 16 kHz clip in ../shared/data/speech, each as one segment; meant to run pinned to one core (taskset -c 0)',
  options: { runs: rounds, models },
});
const perModel: Record<string, { decoder_steps: number; ms_per_step_last_run: number }> = {};
const dataDir = fileURLToPath(new URL('../../shared/data/speech/', import.meta.url));
const clips = readdirSync(dataDir)
  .filter((f) => f.endsWith('.wav'))
  .sort()
  .map((f) => readWavFile(dataDir + f))
  .filter((w) => w.sampleRate === 16_000)
  .map((w) => w.samples);
const audioSeconds = clips.reduce((s, c) => s + c.length / 16_000, 0);

for (const model of models) {
  const recognizer = await MoonshineRecognizer.load({ model });
  for (const c of clips) await recognizer.transcribe(c); // warm-up
  const factors: number[] = [];
  let tokens = 0;
  let msPerToken = 0;
  for (let r = 0; r < rounds; r++) {
    tokens = 0;
    const t0 = process.hrtime.bigint();
    for (const c of clips) tokens += (await recognizer.transcribe(c)).tokens.length + 1; // + EOS step
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    factors.push(audioSeconds / seconds);
    msPerToken = (seconds * 1000) / tokens;
    console.log(`${model} round ${r + 1}: ${(seconds * 1000).toFixed(0)} ms for ${audioSeconds.toFixed(1)} s of audio, ${(audioSeconds / seconds).toFixed(1)}× real time`);
  }
  await recognizer.release();
  const m = bench.metric(`${model}_real_time_factor`, factors, '× real time (audio s / compute s)', 'higher');
  perModel[model] = { decoder_steps: tokens, ms_per_step_last_run: Number(msPerToken.toFixed(2)) };
  console.log(`${model}: ${describeMetric(m, 1, '×')} real time on one core (${clips.length} clips, ${audioSeconds.toFixed(1)} s, ${tokens} decoder steps, ~${msPerToken.toFixed(1)} ms per step incl. encoder)`);
}
const file = bench.write({ clips: clips.length, audio_seconds: Number(audioSeconds.toFixed(1)), models: perModel });
console.log(`wrote ${relativeResultPath(file)}`);
