// Throughput of computeWindowMetrics (clean → time domain → 4 Hz spline → 512-point PSD →
// coherence) on one core: 64 s windows every 5 s over every real RR recording in
// ../shared/data/rr (about 60–110 beats per window), one plan reused, single thread.
//
//   node --import tsx bench/coherence.bench.ts [rounds=7] [roundMs=1000]
//
// Prints the windows/s of each round and their median, and writes
// bench/results/coherence-<YYYY-MM-DD>.json. Target: ≥ 20,000 windows/s.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { computeWindowMetrics, createWindowPlan } from '../pipelines/hrv/index.js';
import { beatTimesFromRr } from '../pipelines/hrv/synthetic-rr.js';

const TARGET_WINDOWS_PER_S = 20_000;
const WINDOW_MS = 64_000;
const STEP_MS = 5_000;
const rounds = Number(process.argv[2] ?? 7);
const roundMs = Number(process.argv[3] ?? 1000);

interface Window {
  t: Float64Array;
  rr: Float64Array;
  start: number;
}

const dataDir = fileURLToPath(new URL('../../shared/data/rr/', import.meta.url));
const windows: Window[] = [];
let beatsInWindows = 0;
for (const name of readdirSync(dataDir).filter((f) => f.endsWith('.rr_ms.txt')).sort()) {
  const rr = Float64Array.from(readFileSync(dataDir + name, 'utf8').trim().split(/\s+/).map(Number));
  const t = beatTimesFromRr(rr);
  for (let start = 0; start + WINDOW_MS <= t[t.length - 1]; start += STEP_MS) {
    windows.push({ t, rr, start });
    for (let i = 0; i < t.length; i++) if (t[i] >= start && t[i] < start + WINDOW_MS) beatsInWindows++;
  }
}
if (windows.length === 0) throw new Error(`no recordings found in ${dataDir}`);

const plan = createWindowPlan();
let checksum = 0; // consumed below so the work cannot be optimised away
let validWindows = 0;
for (const w of windows) if (computeWindowMetrics(w.t, w.rr, w.rr.length, w.start, w.start + WINDOW_MS, plan).valid) validWindows++;

/** Runs windows round-robin for at least `ms`; returns windows per second. */
function run(ms: number): number {
  let done = 0;
  const began = performance.now();
  let now = began;
  while (now - began < ms) {
    for (let k = 0; k < 256; k++) {
      const w = windows[(done + k) % windows.length];
      const m = computeWindowMetrics(w.t, w.rr, w.rr.length, w.start, w.start + WINDOW_MS, plan);
      if (m.valid) checksum += m.coherence!;
    }
    done += 256;
    now = performance.now();
  }
  return (done * 1000) / (now - began);
}

run(1500); // warm-up: let V8 optimise the hot path
const perRound: number[] = [];
for (let r = 0; r < rounds; r++) {
  const rate = run(roundMs);
  perRound.push(Math.round(rate));
  console.log(`round ${r + 1}: ${Math.round(rate).toLocaleString('en-US')} windows/s`);
}
const sorted = [...perRound].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];
const meets = median >= TARGET_WINDOWS_PER_S;
console.log(
  `median ${median.toLocaleString('en-US')} windows/s (${(1e6 / median).toFixed(1)} µs/window) on one core; target ${TARGET_WINDOWS_PER_S.toLocaleString('en-US')}: ${meets ? 'met' : 'NOT met'}`,
);

const at = new Date();
const result = {
  at: at.toISOString(),
  benchmark: 'coherence: computeWindowMetrics, single thread, one reused WindowPlan',
  windows: {
    lengthMs: WINDOW_MS,
    stepMs: STEP_MS,
    distinct: windows.length,
    meanBeats: Math.round((beatsInWindows / windows.length) * 10) / 10,
    source: 'every ../shared/data/rr/*.rr_ms.txt, 64 s windows every 5 s',
  },
  rounds: perRound,
  roundMs,
  medianWindowsPerS: median,
  microsecondsPerWindow: Math.round((1e7 / median)) / 10,
  targetWindowsPerS: TARGET_WINDOWS_PER_S,
  meetsTarget: meets,
  validShare: Math.round((validWindows / windows.length) * 1000) / 1000,
  checksum,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    os: `${platform()} ${release()}`,
    loadavg1m: Math.round(loadavg()[0] * 100) / 100,
  },
};
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const file = `${resultsDir}coherence-${at.toISOString().slice(0, 10)}.json`;
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${file}`);
