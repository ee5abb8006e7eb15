// One-core parts of bench/speech.bench.ts, run in a child process that the entry pins with
// `taskset -c 0` (the whole process: the main thread, libuv's pool and onnxruntime's threads).
//
//   taskset -c 0 node --import tsx bench/speech-onecore.bench.ts features [rounds=7]
//   taskset -c 0 node --import tsx bench/speech-onecore.bench.ts pipeline moonshine-tiny [rounds=3]
//
// features: SpeechStreamAnalyzer (per-second features + Silero VAD + utterances) fed 20 ms pieces.
// pipeline: the same, then every utterance through RecognitionQueue (Moonshine, forced alignment,
//   filled pauses), assembleSessionResults and ScoreModel scoring: an uploaded stream's whole path
//   minus the bus and the store. Each utterance is awaited as it closes, so every stage's time is
//   its own (on one core nothing could overlap anyway).
// Both measure `rounds` runs after one warm-up and report true medians over them (with an even
// count, the mean of the two middle runs). Both write bench/results/speech-onecore-<part>-<time>-<tag>.json
// and print progress lines and, last, one line `RESULT {json}` for the entry to read.
import { readFileSync } from 'node:fs';
import { SileroVad } from '../pipelines/speech/vad/silero.js';
import { SpeechStreamAnalyzer, type VoiceActivityModel } from '../pipelines/speech/stream/analyzer.js';
import { RecognitionQueue, splitWords, type SegmentTranscript } from '../pipelines/speech/stream/recognition.js';
import { assembleSessionResults, scoreInput } from '../pipelines/speech/stream/results.js';
import type { SecondFeatures } from '../pipelines/speech/stream/seconds.js';
import { MoonshineRecognizer } from '../pipelines/speech/asr/moonshine.js';
import { WordAligner } from '../pipelines/speech/align/index.js';
import { ScoreModel, scoreFeatures } from '../pipelines/speech/scoring/index.js';
import { wordErrors } from '../pipelines/speech/asr/wer.js';
import { SAMPLE_RATE, loadSpeechClips, speechAudio, speechDir } from './speech-audio.bench.js';
import { BenchRun, relativeResultPath, runsArg } from './lib/results.js';
import { median } from './lib/stats.js';

const PIECE = 320; // 20 ms
const MIN_SECONDS = 60;

/** Wall and CPU (all threads of the process) of one measured stretch. */
class Meter {
  private wall0 = 0n;
  private cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };
  start(): void {
    this.cpu0 = process.cpuUsage();
    this.wall0 = process.hrtime.bigint();
  }
  stop(): { wallS: number; cpuS: number } {
    const wallS = Number(process.hrtime.bigint() - this.wall0) / 1e9;
    const cpu = process.cpuUsage(this.cpu0);
    return { wallS, cpuS: (cpu.user + cpu.system) / 1e6 };
  }
}

const now = () => performance.now();
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** A voice activity model that adds the time spent in Silero to `ms.vad`. */
function timedVad(vad: SileroVad, ms: { vad: number }): VoiceActivityModel {
  return {
    async process(samples) {
      const t = now();
      const probs = await vad.process(samples);
      ms.vad += now() - t;
      return probs;
    },
  };
}

const clips = loadSpeechClips();
const { samples: audio, clips: used } = speechAudio(clips, MIN_SECONDS);
const audioSeconds = audio.length / SAMPLE_RATE;
const reference = used.map((f) => readFileSync(speechDir + f.replace(/\.wav$/, '.txt'), 'utf8').trim()).join(' ');

async function features(rounds: number) {
  const vad = await SileroVad.load();
  const run = async () => {
    vad.reset();
    const ms = { vad: 0, total: 0 };
    const analyzer = new SpeechStreamAnalyzer(timedVad(vad, ms));
    let seconds = 0;
    let utterances = 0;
    const t = now();
    for (let i = 0; i < audio.length; i += PIECE) {
      const step = await analyzer.push(audio.subarray(i, i + PIECE));
      seconds += step.seconds.length;
      utterances += step.segments.length;
    }
    const last = analyzer.finish();
    ms.total = now() - t;
    return { ms, seconds: seconds + last.seconds.length, utterances: utterances + last.segments.length, voiceSegments: analyzer.allSegments.length };
  };
  await run(); // warm-up: JIT, onnxruntime's first runs
  const meter = new Meter();
  const perRound = [];
  for (let r = 0; r < rounds; r++) {
    meter.start();
    const out = await run();
    const m = meter.stop();
    perRound.push({ ...m, ...out });
    console.log(
      `features+VAD round ${r + 1}: ${(m.wallS * 1000).toFixed(0)} ms wall, ${(m.cpuS * 1000).toFixed(0)} ms CPU for ${audioSeconds.toFixed(1)} s: ` +
        `${(audioSeconds / m.wallS).toFixed(0)}× real time (VAD ${((100 * out.ms.vad) / out.ms.total).toFixed(0)} % of it)`,
    );
  }
  await vad.release();
  const last = perRound[perRound.length - 1];
  return {
    part: 'features',
    what: 'SpeechStreamAnalyzer: per-second volume + YIN pitch + Silero VAD v5 + segments/utterances, 20 ms pieces',
    audio_seconds: r1(audioSeconds),
    rounds: rounds,
    rtf_wall_rounds: perRound.map((p) => Math.round(audioSeconds / p.wallS)),
    rtf_wall_median: Math.round(median(perRound.map((p) => audioSeconds / p.wallS))),
    rtf_cpu_median: Math.round(median(perRound.map((p) => audioSeconds / p.cpuS))),
    cpu_over_wall_median: r3(median(perRound.map((p) => p.cpuS / p.wallS))),
    vad_share_of_wall: r3(median(perRound.map((p) => p.ms.vad / p.ms.total))),
    seconds_emitted: last.seconds,
    voice_segments: last.voiceSegments,
    utterances: last.utterances,
    runs: {
      rtf_wall: perRound.map((p) => audioSeconds / p.wallS),
      rtf_cpu: perRound.map((p) => audioSeconds / p.cpuS),
      cpu_over_wall: perRound.map((p) => p.cpuS / p.wallS),
    },
  };
}

async function pipeline(model: string, rounds: number) {
  const vad = await SileroVad.load();
  const recognizer = await MoonshineRecognizer.load({ model });
  const aligner = await WordAligner.load();
  const scorer = await ScoreModel.load();
  const ms = { vad: 0, analyzer: 0, transcribe: 0, align: 0, final: 0, assemble: 0, score: 0 };
  // Stage clocks around the real objects (the queue and the analyzer take them as parameters).
  const timedRecognizer = {
    transcribe: async (samples: Float32Array) => {
      const t = now();
      const out = await recognizer.transcribe(samples);
      ms.transcribe += now() - t;
      return out;
    },
  } as unknown as MoonshineRecognizer;
  const timedAligner = {
    align: async (samples: Float32Array, words: readonly string[], offsetMs: number) => {
      const t = now();
      const out = await aligner.align(samples, words, offsetMs);
      ms.align += now() - t;
      return out;
    },
  } as unknown as WordAligner;

  const run = async () => {
    for (const k of Object.keys(ms) as Array<keyof typeof ms>) ms[k] = 0;
    vad.reset();
    const analyzer = new SpeechStreamAnalyzer(timedVad(vad, ms));
    const queue = new RecognitionQueue({ recognizer: async () => timedRecognizer, aligner: timedAligner });
    const transcripts: SegmentTranscript[] = [];
    const recognise = async (segments: Parameters<typeof queue.final>[0][]) => {
      for (const seg of segments) {
        const t = now();
        transcripts.push(await queue.final(seg, model));
        ms.final += now() - t;
      }
    };
    for (let i = 0; i < audio.length; i += PIECE) {
      const t = now();
      const step = await analyzer.push(audio.subarray(i, i + PIECE));
      ms.analyzer += now() - t;
      await recognise(step.segments);
    }
    let t = now();
    const last = analyzer.finish();
    ms.analyzer += now() - t;
    await recognise(last.segments);
    t = now();
    const seconds: SecondFeatures[] = [];
    for (let i = 0; i < analyzer.features.completeSeconds(true); i++) seconds.push(analyzer.features.features(i));
    const durationMs = Math.round((analyzer.sampleCount * 1000) / SAMPLE_RATE);
    const voicedF0 = analyzer.features.voicedF0.view();
    const frameDbfs = analyzer.features.frameDbfs.view();
    const results = assembleSessionResults({ durationMs, transcripts, speechSegments: analyzer.allSegments, seconds, voicedF0, frameDbfs });
    ms.assemble = now() - t;
    t = now();
    const input = scoreInput(results, voicedF0);
    if (!input) throw new Error('nothing was recognised in the benchmark audio');
    const scores = await scorer.score(scoreFeatures(input));
    ms.score = now() - t;
    return { transcripts, results, scores, ms: { ...ms } };
  };

  // Warm-up on the first clip alone: JIT, onnxruntime's first runs, the aligner's first search.
  {
    const warmVad = new SpeechStreamAnalyzer(vad);
    vad.reset();
    await warmVad.push(clips[0].samples);
    const { text } = await recognizer.transcribe(clips[0].samples);
    await aligner.align(clips[0].samples, splitWords(text).map((w) => w.norm), 0);
  }
  const meter = new Meter();
  const perRound: Array<{ wallS: number; cpuS: number } & Awaited<ReturnType<typeof run>>> = [];
  for (let r = 0; r < rounds; r++) {
    meter.start();
    const out = await run();
    const m = meter.stop();
    perRound.push({ ...m, ...out });
    console.log(
      `${model} pipeline round ${r + 1}: ${(m.wallS * 1000).toFixed(0)} ms wall, ${(m.cpuS * 1000).toFixed(0)} ms CPU for ${audioSeconds.toFixed(1)} s: ` +
        `${(audioSeconds / m.wallS).toFixed(1)}× real time (recognition ${(out.ms.transcribe / 1000).toFixed(2)} s, alignment ${(out.ms.align / 1000).toFixed(2)} s)`,
    );
  }
  await Promise.all([vad.release(), recognizer.release(), scorer.release()]);
  aligner.release();
  const last = perRound[perRound.length - 1];
  const stage = (pick: (m: typeof ms) => number) => r3(median(perRound.map((p) => pick(p.ms) / 1000)));
  const utteranceS = last.transcripts.map((t) => (t.endMs - t.startMs) / 1000);
  const methods: Record<string, number> = {};
  for (const w of last.results.words) methods[w.timingMethod] = (methods[w.timingMethod] ?? 0) + 1;
  return {
    part: `pipeline:${model}`,
    what: 'analyzer + RecognitionQueue finals (Moonshine greedy + KV cache, soundswallower alignment, filled pauses) + assembleSessionResults + ScoreModel; no partials, no bus, no store',
    model,
    audio_seconds: r1(audioSeconds),
    rounds,
    rtf_wall_rounds: perRound.map((p) => r1(audioSeconds / p.wallS)),
    rtf_wall_median: r1(median(perRound.map((p) => audioSeconds / p.wallS))),
    rtf_cpu_median: r1(median(perRound.map((p) => audioSeconds / p.cpuS))),
    cpu_over_wall_median: r3(median(perRound.map((p) => p.cpuS / p.wallS))),
    stage_seconds_median: {
      analyzer: stage((m) => m.analyzer),
      of_which_vad: stage((m) => m.vad),
      recognition: stage((m) => m.transcribe),
      alignment: stage((m) => m.align),
      filled_pauses_and_rest: stage((m) => m.final - m.transcribe - m.align),
      assemble: stage((m) => m.assemble),
      score: stage((m) => m.score),
    },
    utterances: last.transcripts.length,
    utterance_seconds: utteranceS.map(r1),
    words: last.results.words.length,
    word_timing_methods: methods,
    wer_vs_manifest: r3(wordErrors(reference, last.results.text).wer),
    scores: last.scores.scores,
    runs: {
      rtf_wall: perRound.map((p) => audioSeconds / p.wallS),
      rtf_cpu: perRound.map((p) => audioSeconds / p.cpuS),
      cpu_over_wall: perRound.map((p) => p.cpuS / p.wallS),
      recognition_s: perRound.map((p) => p.ms.transcribe / 1000),
      alignment_s: perRound.map((p) => p.ms.align / 1000),
      analyzer_s: perRound.map((p) => p.ms.analyzer / 1000),
    },
  };
}

const [part, ...rest] = process.argv.slice(2);
const model = rest[0] ?? 'moonshine-tiny';
const rounds = part === 'features' ? runsArg(rest[0], 7) : runsArg(rest[1], 3);
if (part !== 'features' && part !== 'pipeline') throw new Error(`unknown part ${part}: features | pipeline <model> [rounds]`);
const bench = new BenchRun(part === 'features' ? 'speech-onecore-features' : `speech-onecore-pipeline-${model}`, {
  description:
    part === 'features'
      ? 'SpeechStreamAnalyzer (per-second features + Silero VAD + utterances) fed 20 ms pieces of real speech; meant to run pinned to one core (taskset -c 0)'
      : `the whole per-stream speech path with ${model} (analyzer, recognition, alignment, filled pauses, results, scores), no bus or store; meant to run pinned to one core (taskset -c 0)`,
  options: { part, ...(part === 'pipeline' ? { model } : {}), rounds, audio_seconds: r1(audioSeconds), clips: used },
});
const { runs, ...result } = part === 'features' ? await features(rounds) : await pipeline(model, rounds);
bench.metric('rtf_wall', runs.rtf_wall, '× real time (audio s / wall s)', 'higher');
bench.metric('rtf_cpu', runs.rtf_cpu, '× real time (audio s / CPU s, all threads)', 'higher');
// Below ~0.85 the pinned core was shared with another process during that round.
bench.metric('cpu_over_wall', runs.cpu_over_wall, 'CPU s / wall s', 'higher');
for (const [k, v] of Object.entries(runs)) if (k.endsWith('_s')) bench.metric(k, v, 's', 'lower');
const file = bench.write(result);
console.log(`wrote ${relativeResultPath(file)}`);
console.log('RESULT ' + JSON.stringify({ ...result, runs, result_file: relativeResultPath(file) }));
