// Forced-alignment speed (× real time, one core: wall clock and CPU time of the process, which
// differ when other work shares the cores) and how far cheaper decoder settings move the
// word boundaries from the default ones, on the real clips of /work/shared/data/speech.
// Run: node --import tsx pipelines/speech/align/align.bench.ts [repeats]
//
// Measured here (2 shared cores, load average ≈ 5 from other work; 31.7 s of audio × 3):
//   default        49× RT wall, 65× CPU   load ≈ 0.3 s, +38 MB RSS
//   topn=2         56× wall, 77× CPU      boundaries move ≤ 30 ms (mean 3 ms)
//   beams 1e-30    no faster              ≤ 20 ms
//   beams 1e-20    no faster              one clip falls back to the syllable spread
//   no alt prons   60× wall, 62× CPU      ≤ 50 ms
//   ds=2          101× wall, 106× CPU     one word moved by 1030 ms: not acceptable
// The default is kept: it is already well above the 25× the pipeline budget asks of alignment.
// (RSS deltas after the first instance are unreliable: the previous instance is being collected.)
import { readFileSync } from 'node:fs';
import { readWavFile } from '../wav.test-util.js';
import { type AlignOutcome, WordAligner } from './aligner.js';

const dir = '/work/shared/data/speech';
const clips = [
  'jfk_1961_inaugural_M', 'librispeech_251-137823-0002_M', 'librispeech_251-118436-0001_M',
  'librispeech_3536-23268-0010_F', 'ami_ES2011a_headset0_40-46s_F_spontaneous', 'speechcommands_yes_no_go_stop_4spk',
].map((name) => ({
  name,
  samples: readWavFile(`${dir}/${name}.wav`).samples,
  words: readFileSync(`${dir}/${name}.txt`, 'utf8').toLowerCase().replace(/[^a-z' ]+/g, ' ').split(/\s+/).filter(Boolean),
}));
const repeats = Number(process.argv[2] ?? 3);

const settings: Array<[string, Record<string, number | string | boolean>]> = [
  ['default', {}],
  ['topn=2', { topn: 2 }],
  ['beams 1e-30', { beam: 1e-30, pbeam: 1e-30, wbeam: 1e-20 }],
  ['beams 1e-20', { beam: 1e-20, pbeam: 1e-20, wbeam: 1e-15 }],
  ['no alt prons', { fsgusealtpron: false }],
  ['ds=2', { ds: 2 }],
];

let reference: AlignOutcome[] = [];
const totalSeconds = clips.reduce((s, c) => s + c.samples.length / 16000, 0);
for (const [label, decoderConfig] of settings) {
  const rss0 = process.memoryUsage().rss;
  const aligner = await WordAligner.load({ decoderConfig });
  const rss = process.memoryUsage().rss - rss0;
  const outcomes: AlignOutcome[] = [];
  // Warm-up: WebAssembly starts in the baseline compiler and tiers up while it runs.
  for (const c of clips) await aligner.align(c.samples, c.words, 0);
  let ms = 0;
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < repeats; r++) {
    for (const [i, c] of clips.entries()) {
      const t = performance.now();
      const out = await aligner.align(c.samples, c.words, 0);
      ms += performance.now() - t;
      if (r === 0) outcomes[i] = out;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (label === 'default') reference = outcomes;
  const diffs: number[] = [];
  let failed = 0;
  for (const [i, o] of outcomes.entries()) {
    if (o.method !== 'forced_alignment') failed++;
    else if (reference[i].method === 'forced_alignment')
      for (const [j, w] of o.words.entries()) diffs.push(Math.abs(w.startMs - reference[i].words[j].startMs), Math.abs(w.endMs - reference[i].words[j].endMs));
  }
  diffs.sort((a, b) => a - b);
  const mean = diffs.reduce((a, b) => a + b, 0) / Math.max(1, diffs.length);
  console.log(
    `${label.padEnd(14)} ${((totalSeconds * 1000 * repeats) / ms).toFixed(1).padStart(6)}× RT wall, ${((totalSeconds * 1000 * repeats) / cpuMs).toFixed(1).padStart(6)}× RT CPU  load ${aligner.loadMs.toFixed(0)} ms, +${(rss / 1e6).toFixed(0)} MB RSS  ` +
      `fallbacks ${failed}/${clips.length}  boundary shift vs default: mean ${mean.toFixed(0)} ms, p90 ${diffs[Math.floor(diffs.length * 0.9)] ?? 0} ms, max ${diffs.at(-1) ?? 0} ms`,
  );
  aligner.release();
}
