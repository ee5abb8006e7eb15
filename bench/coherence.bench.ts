// Throughput of computeWindowMetrics (clean → time domain → 4 Hz spline → 512-point PSD →
// coherence) on one core: 64 s windows every 5 s over every real RR recording in
// ../shared/data/rr (about 60–110 beats per window), one plan reused, single thread.
//
//   npm run bench:coherence -- [runs=7] [runMs=1000]
//
// Each run computes windows round-robin for runMs after one warm-up; prints the windows/s of
// each run and their median, and writes bench/results/coherence-<time>-<tag>.json.
// Target: ≥ 20,000 windows/s.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { computeWindowMetrics, createWindowPlan } from '../pipelines/hrv/index.js';
import { beatTimesFromRr } from '../pipelines/hrv/synthetic-rr.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';

const TARGET_WINDOWS_PER_S = 20_000;
const WINDOW_MS = 64_000;
const STEP_MS = 5_000;
const rounds = runsArg(process.argv[2], 7);
const roundMs = Number(process.argv[3] ?? 1000);
const bench = new BenchRun('coherence', {
  description: 'computeWindowMetrics (clean, time domain, 4 Hz spline, 512-point PSD, coherence), single thread, one reused WindowPlan, 64 s windows every 5 s over every ../shared/data/rr recording',
  options: { runs: rounds, run_ms: roundMs, warm_up_ms: 1500 },
});

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
const m = bench.metric('windows_per_s', perRound, 'windows/s', 'higher');
const meets = m.median >= TARGET_WINDOWS_PER_S;
console.log(`windows/s: ${describeMetric(m, 0)}; ${(1e6 / m.median).toFixed(1)} µs/window on one core; target ${TARGET_WINDOWS_PER_S.toLocaleString('en-US')}: ${meets ? 'met' : 'NOT met'}`);

const file = bench.write({
  windows: {
    length_ms: WINDOW_MS,
    step_ms: STEP_MS,
    distinct: windows.length,
    mean_beats: Math.round((beatsInWindows / windows.length) * 10) / 10,
    valid_share: Math.round((validWindows / windows.length) * 1000) / 1000,
  },
  microseconds_per_window_at_median: Math.round(1e7 / m.median) / 10,
  target_windows_per_s: TARGET_WINDOWS_PER_S,
  meets_target: meets,
  checksum,
});
console.log(`wrote ${relativeResultPath(file)}`);
