// The speech pipeline benchmarks of issue 3 §10, on real speech (../shared/data/speech, whole
// clips with 400 ms silences between them, see speech-audio.bench.ts):
//
//   features  features + voice activity (SpeechStreamAnalyzer with Silero), one core; target ≥ 100×
//   pipeline  the whole pipeline with Moonshine tiny and base, one core; target tiny ≥ 8×
//   live      concurrent live streams through a whole Attune in one process, at real-time pace,
//             N = 1, 2, 4, 8, 10, 12 until one fails; target ≥ 8 with metrics:update within 1 s.
//             Below 8, a diagnosis run: 8 streams with partial results switched off.
//
//   npm run bench:speech -- [features|pipeline|live|all] [live stream counts, e.g. 8,10]
//
// "One core" parts run in a child process pinned with `taskset -c 0` (main thread, libuv pool and
// onnxruntime's threads alike); they report wall and CPU time (process.cpuUsage, all threads):
// audio seconds / wall seconds is the real-time factor, and CPU / wall below 1 means the core was
// shared with something else (then the part is run once more and the better run kept, both
// recorded). Each live count runs in a fresh, unpinned child process. Prints a table and writes
// bench/results/speech-<date>T<HHMM>.json with the machine and load averages.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { machine } from './lib/machine.js';

const part = process.argv[2] ?? 'all';
if (!['features', 'pipeline', 'live', 'all'].includes(part)) throw new Error(`unknown part ${part}: features | pipeline | live | all`);
const liveCounts = (process.argv[3] ?? '1,2,4,8,10,12').split(',').map(Number);
const LIVE_SECONDS = 30;
/** CPU / wall of a pinned run below this: the core was shared, run it again. */
const DISTURBED_CPU_SHARE = 0.85;

const root = fileURLToPath(new URL('..', import.meta.url));
const started = new Date();
const load = () => loadavg().map((x) => Number(x.toFixed(2)));

/** Runs a child, echoes its output, resolves with its `RESULT {json}` line. */
function child(command: string, args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let result: any = null;
    let buffered = '';
    p.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
        else console.log('  ' + line);
      }
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

const node = (script: string, ...args: string[]) => ['node', '--import', 'tsx', script, ...args];

/** A pinned run, once more when the core was visibly shared; the better (higher median RTF) is kept. */
async function pinned(args: string[]): Promise<any> {
  const run = async () => ({ load_average_before: load(), ...(await child('taskset', ['-c', '0', ...args])) });
  const first = await run();
  if (first.cpu_over_wall_median >= DISTURBED_CPU_SHARE) return first;
  console.log(`  CPU / wall ${first.cpu_over_wall_median} < ${DISTURBED_CPU_SHARE}: core 0 was shared (load ${first.load_average_before.join(' ')}); running again`);
  const second = await run();
  const best = second.rtf_wall_median > first.rtf_wall_median ? second : first;
  return { ...best, reruns: [first, second].map((r) => ({ rtf_wall_median: r.rtf_wall_median, cpu_over_wall_median: r.cpu_over_wall_median, load_average_before: r.load_average_before })) };
}

const results: Record<string, any> = {};

if (part === 'features' || part === 'all') {
  console.log('features + voice activity, one core (taskset -c 0):');
  results.features = await pinned(node('bench/speech-onecore.bench.ts', 'features', '7'));
}
if (part === 'pipeline' || part === 'all') {
  results.pipeline = {};
  for (const [model, rounds] of [['moonshine-tiny', '3'], ['moonshine-base', '2']]) {
    console.log(`full pipeline with ${model}, one core (taskset -c 0):`);
    results.pipeline[model] = await pinned(node('bench/speech-onecore.bench.ts', 'pipeline', model, rounds));
  }
}
if (part === 'live' || part === 'all') {
  results.live = [];
  for (const n of liveCounts) {
    console.log(`${n} live stream(s), whole Attune in one process, unpinned:`);
    const args = ['--max-semi-space-size=64', '--import', 'tsx', 'bench/speech-live.bench.ts', String(n), String(LIVE_SECONDS)];
    let r = await child('node', args);
    if (!r.all_keep_up && r.load_average_before[0] > 1) {
      // Two cores shared with other engineers' runs: a failure under load gets a second chance.
      console.log(`  failed with load average ${r.load_average_before.join(' ')} at its start; running again`);
      const again = await child('node', args);
      r = { ...(again.all_keep_up ? again : r), rerun_of_disturbed: { first: summariseLive(r), second: summariseLive(again) } };
    }
    results.live.push(r);
    if (!r.all_keep_up) break;
  }
  const sustained = Math.max(0, ...results.live.filter((l: any) => l.all_keep_up).map((l: any) => l.streams));
  if (sustained < 8) {
    // Diagnosis: the same 8 streams with partial results switched off, to see what they cost.
    console.log('diagnosis: 8 live streams with partial results switched off:');
    results.live_diagnosis_no_partials = await child('node', ['--max-semi-space-size=64', '--import', 'tsx', 'bench/speech-live.bench.ts', '8', String(LIVE_SECONDS), 'no-partials']);
  }
}

function summariseLive(r: any) {
  return { all_keep_up: r.all_keep_up, streams_keeping_up: r.streams_keeping_up, metrics_latency_ms: r.metrics_latency_ms, load_average_before: r.load_average_before };
}

// ---- table ----
const rows: string[][] = [['measurement', 'result', 'target', 'notes']];
if (results.features) {
  const f = results.features;
  rows.push(['features + VAD, 1 core', `${f.rtf_wall_median}× real time`, '≥ 100×', `CPU-time RTF ${f.rtf_cpu_median}×, VAD ${(100 * f.vad_share_of_wall).toFixed(0)} % of time, ${f.audio_seconds} s audio`]);
}
for (const [model, p] of Object.entries<any>(results.pipeline ?? {})) {
  const s = p.stage_seconds_median;
  rows.push([
    `full pipeline ${model.replace('moonshine-', '')}, 1 core`,
    `${p.rtf_wall_median}× real time`,
    model === 'moonshine-tiny' ? '≥ 8×' : '(report)',
    `CPU-time RTF ${p.rtf_cpu_median}×; s: analyzer ${s.analyzer}, asr ${s.recognition}, align ${s.alignment}, fillers ${s.filled_pauses_and_rest}; WER ${(100 * p.wer_vs_manifest).toFixed(1)} %`,
  ]);
}
for (const l of results.live ?? []) {
  const m = l.metrics_latency_ms;
  rows.push([
    `live × ${l.streams}`,
    `${l.streams_keeping_up}/${l.streams} keep up`,
    'all, p99 ≤ 1000 ms',
    `latency p50/p95/p99/max ${m.p50}/${m.p95}/${m.p99}/${m.max} ms, missing s ${l.seconds_missing}, partials ${l.partials_while_playing}, finals ${l.finals_while_playing}, loop delay p99 ${l.event_loop_delay_ms.p99} max ${l.event_loop_delay_ms.max} ms, ${l.cpu_cores_used_while_playing} cores, pacing p99 ${l.client_pacing_lag_ms.p99} ms`,
  ]);
}
if (results.live_diagnosis_no_partials) {
  const l = results.live_diagnosis_no_partials;
  const m = l.metrics_latency_ms;
  rows.push([
    `live × 8, no partials`,
    `${l.streams_keeping_up}/8 keep up`,
    '(diagnosis)',
    `latency p50/p95/p99/max ${m.p50}/${m.p95}/${m.p99}/${m.max} ms, loop delay p99 ${l.event_loop_delay_ms.p99} max ${l.event_loop_delay_ms.max} ms, ${l.cpu_cores_used_while_playing} cores`,
  ]);
}
if (results.live) {
  const ok = results.live.filter((l: any) => l.all_keep_up).map((l: any) => l.streams);
  results.live_sustained_streams = ok.length > 0 ? Math.max(...ok) : 0;
  rows.push(['live sustained', `${results.live_sustained_streams} streams`, '≥ 8', `largest N tried where every stream kept up (of ${results.live.map((l: any) => l.streams).join(', ')})`]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log('');
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));

const resultsDir = new URL('./results/', import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const stamp = started.toISOString().slice(0, 16).replace(':', '');
const file = new URL(`speech-${stamp}.json`, resultsDir);
writeFileSync(
  file,
  JSON.stringify(
    {
      benchmark: 'speech pipeline (issue 3 §10): features + VAD and full pipeline on one core, concurrent live streams',
      at: started.toISOString(),
      part,
      machine: machine(),
      load_average_at_end: load(),
      audio: 'real 16 kHz clips of ../shared/data/speech, whole, with 400 ms silences between them: ≥ 60 s one-core, ≥ 30 s per live stream (each stream from a different first clip)',
      live_client: 'same process as Attune; N ingest sockets (20 ms PCM16 messages at real-time pace) and N event sockets; stream starts spread over 1 s',
      ...results,
    },
    null,
    2,
  ) + '\n',
);
console.log(`\nwrote ${fileURLToPath(file)}`);
