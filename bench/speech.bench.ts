// The speech pipeline benchmarks of issue 3 §10, on real speech (../shared/data/speech, whole
// clips with 400 ms silences between them, see speech-audio.bench.ts):
//
//   features  features + voice activity (SpeechStreamAnalyzer with Silero), one core; target ≥ 100×
//   pipeline  the whole pipeline with Moonshine tiny and base, one core; target tiny ≥ 8×
//   live      concurrent live streams through a whole Attune in one process, at real-time pace,
//             N = 1, 2, 4, 8, 10, 12 until no run of an N keeps up; target ≥ 8 with
//             metrics:update within 1 s. Below 8, a diagnosis: 8 streams with and without partial
//             results, interleaved.
//
//   npm run bench:speech -- [features|pipeline|live|all] [live stream counts=1,2,4,8,10,12] [live runs=3] [live seconds=30] [--baseline=<git rev>]
//
// "One core" parts run in a child process pinned with `taskset -c 0` (main thread, libuv pool and
// onnxruntime's threads alike), 7 rounds (features) or 3 (pipeline) after a warm-up; they report
// wall and CPU time (process.cpuUsage, all threads): audio seconds / wall seconds is the real-time
// factor. CPU / wall below 0.85 means the core was shared with another process: the part is then
// marked `disturbed` (not run again and picked: every round counts in its median).
// Each live run is a fresh, unpinned child process; every stream count gets `live runs` of them
// (default 3) and its figures are medians over those runs.
//
// With --baseline=<rev>, each one-core part is also measured on that commit's code (bench/lib/baseline.ts:
// a git archive of it, measured by this bench/), in the same run, interleaved: three processes
// each, candidate and baseline alternating (which goes first rotates). The metrics then pool the
// rounds of the three processes of each side.
//
// Every child writes its own result file; this entry writes bench/results/speech-<time>-<tag>.json
// with the medians over runs, the load averages, and the child files' names, and prints a table.
import { runChild } from './lib/child.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';
import { interleavedOrder, median, round } from './lib/stats.js';
import { loadAverage } from './lib/machine.js';
import { type Baseline, baselineEnv, prepareBaseline } from './lib/baseline.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const baselineRev = process.argv.slice(2).find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
const part = args[0] ?? 'all';
if (!['features', 'pipeline', 'live', 'all'].includes(part)) throw new Error(`unknown part ${part}: features | pipeline | live | all`);
const liveCounts = (args[1] || '1,2,4,8,10,12').split(',').map(Number);
const liveRuns = runsArg(args[2], 3);
const LIVE_SECONDS = Number(args[3] || 30);
/** Processes per side when comparing with a baseline. */
const BASELINE_PROCESSES = 3;
const baseline: Baseline | null = baselineRev ? prepareBaseline(baselineRev) : null;
const FEATURE_ROUNDS = 7;
const PIPELINE_ROUNDS = 3;
const PIPELINE_MODELS = ['moonshine-tiny', 'moonshine-base'];
/** CPU / wall of a pinned run below this: the core was shared with another process. */
const DISTURBED_CPU_SHARE = 0.85;

const bench = new BenchRun('speech', {
  description: 'speech pipeline (issue 3 §10): features + VAD and full pipeline on one core, concurrent live streams; medians over runs',
  options: {
    part,
    live_counts: liveCounts,
    live_runs: liveRuns,
    live_seconds: LIVE_SECONDS,
    feature_rounds: FEATURE_ROUNDS,
    pipeline_rounds: PIPELINE_ROUNDS,
    pipeline_models: PIPELINE_MODELS,
    baseline: baseline ? { rev: baselineRev, commit: baseline.commit, processes_per_side: BASELINE_PROCESSES } : null,
    audio: 'real 16 kHz clips of ../shared/data/speech, whole, with 400 ms silences between them: ≥ 60 s one-core, ≥ 30 s per live stream (each stream from a different first clip)',
    live_client: 'same process as Attune; N ingest sockets (20 ms PCM16 messages at real-time pace) and N event sockets; stream starts spread over 1 s',
  },
});
const node = (script: string, ...args: string[]) => ['node', '--import', 'tsx', script, ...args];
const liveArgs = (n: number, ...extra: string[]) => ['--max-semi-space-size=64', '--import', 'tsx', 'bench/speech-live.bench.ts', String(n), String(LIVE_SECONDS), ...extra];
const childFiles: string[] = [];

/** A pinned run (once: every round counts), marked when its core was visibly shared; in the baseline's checkout with `base`. */
async function pinned(args: string[], base: Baseline | null = null): Promise<any> {
  const loadBefore = loadAverage();
  const r = await runChild('taskset', ['-c', '0', ...args], base ? { cwd: base.dir, env: baselineEnv(base) } : {});
  childFiles.push(r.result_file);
  const share = median(r.runs.cpu_over_wall);
  const disturbed = share < DISTURBED_CPU_SHARE;
  if (disturbed) console.log(`  CPU / wall median ${share.toFixed(2)} < ${DISTURBED_CPU_SHARE}: core 0 was shared (load ${loadBefore.join(' ')}); the figure says little about the code`);
  return { ...r, load_average_before: loadBefore, disturbed };
}

async function liveRun(n: number, ...extra: string[]): Promise<any> {
  const r = await runChild('node', liveArgs(n, ...extra));
  childFiles.push(r.result_file);
  return r;
}

/** What one live run says, for the summary (its own file has everything). */
function summariseLive(r: any) {
  const stages = r.stage_wall_ms_while_playing ?? {};
  return {
    result_file: r.result_file,
    all_keep_up: r.all_keep_up,
    streams_keeping_up: r.streams_keeping_up,
    metrics_latency_ms: r.metrics_latency_ms,
    seconds_missing: r.seconds_missing,
    event_loop_delay_ms: r.event_loop_delay_ms,
    cpu_cores_used_while_playing: r.cpu_cores_used_while_playing,
    client_pacing_lag_p99_ms: r.client_pacing_lag_ms?.p99,
    stage_ms_per_audio_s_while_playing: Object.fromEntries(Object.entries<any>(stages).map(([k, v]) => [k, v.per_audio_s])),
    load_average_before: r.load_average_before,
  };
}

/** Medians over live runs of one stream count, recorded as metrics `live_<n>_…`. */
function liveMetrics(prefix: string, runs: any[]) {
  const stageNames = [...new Set(runs.flatMap((r) => Object.keys(r.stage_wall_ms_while_playing ?? {})))];
  return {
    p99: bench.metric(`${prefix}_metrics_latency_p99_ms`, runs.map((r) => r.metrics_latency_ms.p99), 'ms', 'lower'),
    max: bench.metric(`${prefix}_metrics_latency_max_ms`, runs.map((r) => r.metrics_latency_ms.max), 'ms', 'lower'),
    keeping: bench.metric(`${prefix}_streams_keeping_up`, runs.map((r) => r.streams_keeping_up), 'streams', 'higher'),
    loop: bench.metric(`${prefix}_event_loop_delay_p99_ms`, runs.map((r) => r.event_loop_delay_ms.p99), 'ms', 'lower'),
    cores: bench.metric(`${prefix}_cpu_cores_used`, runs.map((r) => r.cpu_cores_used_while_playing), 'cores', 'lower'),
    stages: Object.fromEntries(
      stageNames.map((s) => [s, bench.metric(`${prefix}_stage_${s}_ms_per_audio_s`, runs.map((r) => r.stage_wall_ms_while_playing?.[s]?.per_audio_s ?? 0), 'wall ms per audio s', 'lower')]),
    ),
  };
}

/**
 * A one-core part: one pinned process, or with a baseline, BASELINE_PROCESSES of each side
 * interleaved. Records `<key>_rtf_wall` (and `<key>_baseline_rtf_wall`) over every round, and
 * returns the candidate's last process (for its stage times and WER) with the comparison.
 */
async function onecore(key: string, args: string[]): Promise<{ last: any; m: ReturnType<typeof bench.metric>; vs: string }> {
  if (!baseline) {
    const r = await pinned(args);
    return { last: r, m: bench.metric(`${key}_rtf_wall`, r.runs.rtf_wall, '× real time', 'higher'), vs: '' };
  }
  const sides: Record<'candidate' | 'baseline', any[]> = { candidate: [], baseline: [] };
  for (const order of interleavedOrder(['candidate', 'baseline'] as const, BASELINE_PROCESSES))
    for (const side of order) {
      console.log(`  ${side}${side === 'baseline' ? ` (${baseline.commit.slice(0, 7)})` : ''}:`);
      sides[side].push(await pinned(args, side === 'baseline' ? baseline : null));
    }
  const m = bench.metric(`${key}_rtf_wall`, sides.candidate.flatMap((r) => r.runs.rtf_wall), '× real time', 'higher');
  const b = bench.metric(`${key}_baseline_rtf_wall`, sides.baseline.flatMap((r) => r.runs.rtf_wall), '× real time', 'higher');
  comparisons[key] = {
    candidate_processes: sides.candidate.map((r) => ({ result_file: r.result_file, rtf_wall_median: r.rtf_wall_median, disturbed: r.disturbed })),
    baseline_processes: sides.baseline.map((r) => ({ result_file: r.result_file, rtf_wall_median: r.rtf_wall_median, disturbed: r.disturbed })),
    candidate_over_baseline: round(m.median / b.median, 3),
  };
  return { last: sides.candidate[sides.candidate.length - 1], m, vs: `; baseline ${baseline.commit.slice(0, 7)} ${describeMetric(b, 1, '×')} in the same run (candidate / baseline ${round(m.median / b.median, 2)})` };
}

const results: Record<string, any> = {};
const comparisons: Record<string, any> = {};
const rows: string[][] = [['measurement', 'result (median over runs)', 'target', 'notes']];

if (part === 'features' || part === 'all') {
  console.log('features + voice activity, one core (taskset -c 0):');
  const { last: f, m, vs } = await onecore('features', node('bench/speech-onecore.bench.ts', 'features', String(FEATURE_ROUNDS)));
  results.features = { ...f, runs: undefined };
  rows.push(['features + VAD, 1 core', describeMetric(m, 0, '×') + vs, '≥ 100×', `VAD ${(100 * f.vad_share_of_wall).toFixed(0)} % of time, ${f.audio_seconds} s audio${f.disturbed ? ', DISTURBED (core shared)' : ''}; ${f.result_file}`]);
}
if (part === 'pipeline' || part === 'all') {
  results.pipeline = {};
  for (const model of PIPELINE_MODELS) {
    console.log(`full pipeline with ${model}, one core (taskset -c 0):`);
    const short = model.replace('moonshine-', '');
    const { last: p, m, vs } = await onecore(`pipeline_${short}`, node('bench/speech-onecore.bench.ts', 'pipeline', model, String(PIPELINE_ROUNDS)));
    results.pipeline[model] = { ...p, runs: undefined };
    const s = p.stage_seconds_median;
    rows.push([
      `full pipeline ${short}, 1 core`,
      describeMetric(m, 1, '×') + vs,
      model === 'moonshine-tiny' ? '≥ 8×' : '(report)',
      `s: analyzer ${s.analyzer}, asr ${s.recognition}, align ${s.alignment}, fillers ${s.filled_pauses_and_rest}; WER ${(100 * p.wer_vs_manifest).toFixed(1)} %${p.disturbed ? ', DISTURBED (core shared)' : ''}; ${p.result_file}`,
    ]);
  }
}
if (part === 'live' || part === 'all') {
  results.live = [];
  for (const n of liveCounts) {
    const runs = [];
    for (let r = 0; r < liveRuns; r++) {
      console.log(`${n} live stream(s), whole Attune in one process, unpinned, run ${r + 1}/${liveRuns}:`);
      runs.push(await liveRun(n));
    }
    const m = liveMetrics(`live_${n}`, runs);
    const allKeepUp = runs.filter((r) => r.all_keep_up).length;
    results.live.push({ streams: n, runs_where_all_keep_up: allKeepUp, runs: runs.length, medians: m, per_run: runs.map(summariseLive) });
    const st = (k: string) => (m.stages[k] ? round(m.stages[k].median, 0) : '–');
    rows.push([
      `live × ${n}`,
      `${allKeepUp}/${runs.length} runs all keep up; p99 ${describeMetric(m.p99, 0, ' ms')}`,
      'all, p99 ≤ 1000 ms',
      `max ${round(m.max.median, 0)} ms, loop delay p99 ${round(m.loop.median, 0)} ms, ${round(m.cores.median, 2)} cores; wall ms per audio s: analyzer ${st('analyzer_push')}, ` +
        `final asr ${st('final_recognition')}, align ${st('final_alignment')}, whole finals ${st('final_total')}, partials ${st('partial_recognition')}`,
    ]);
    if (allKeepUp === 0) break;
  }
  const sustained = results.live.filter((l: any) => l.runs_where_all_keep_up === l.runs).map((l: any) => l.streams as number);
  results.live_sustained_streams = sustained.length > 0 ? Math.max(...sustained) : 0;
  rows.push(['live sustained', `${results.live_sustained_streams} streams`, '≥ 8', `largest N where every stream kept up in every run (of ${results.live.map((l: any) => l.streams).join(', ')})`]);
  if (results.live_sustained_streams < 8 && liveCounts.some((n) => n >= 8)) {
    // Diagnosis: what partial results cost, 8 streams with and without them in the same run, interleaved.
    const byVariant: Record<string, any[]> = { partials: [], 'no-partials': [] };
    for (const round of interleavedOrder(['partials', 'no-partials'], liveRuns))
      for (const v of round) {
        console.log(`diagnosis: 8 live streams, ${v}:`);
        byVariant[v].push(await liveRun(8, ...(v === 'no-partials' ? ['no-partials'] : [])));
      }
    results.live_diagnosis = Object.fromEntries(
      Object.entries(byVariant).map(([v, runs]) => {
        const m = liveMetrics(`diagnosis_8_${v.replace('-', '_')}`, runs);
        rows.push([`live × 8, ${v} (diagnosis)`, `p99 ${describeMetric(m.p99, 0, ' ms')}`, '', `loop delay p99 ${round(m.loop.median, 0)} ms, ${round(m.cores.median, 2)} cores`]);
        return [v, { medians: m, per_run: runs.map(summariseLive) }];
      }),
    );
  }
}

const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log('');
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));

const file = bench.write({ ...results, ...(baseline ? { baseline_comparisons: comparisons } : {}), child_result_files: childFiles, table: rows });
console.log(`\nwrote ${relativeResultPath(file)}`);
