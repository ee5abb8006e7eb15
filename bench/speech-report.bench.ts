// Issue 13: the session report of 10,000 sessions streams as CSV with the heap growing under
// 50 MB. One process: the speech API (chDB in a temporary directory, the entity database as the
// tests pick it), N analysed sessions over a year seeded in bulk, then the CSV report of that
// year read over HTTP chunk by chunk (nothing kept but a byte and line count) while the
// process's memory is sampled at every chunk. Growth is over a baseline taken after a warm-up
// report and a full GC. The client reading the reply is in the same process, so its memory
// counts too (the figure is an upper bound for the server).
//
// A CSV of 10,000 sessions is only a few MB, so a server that built it whole would pass the
// 50 MB target too; run with more sessions (e.g. 100000) to see that the growth does not
// follow the size of the report.
//
//   node --expose-gc --import tsx bench/speech-report.bench.ts [runs=5] [sessions=10000]
import { BenchRun, describeMetric, runsArg } from './lib/results.js';
import { SPEECH_READ, startSpeechTestServer } from '../api/speech-api.test-util.js';
import { seedAnalysedSessions } from '../api/speech-reports.test-util.js';
import { REPORT_COLUMNS } from '../api/speech-reports.js';

const MB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const runs = runsArg(positional[0], 5);
const sessions = Number(positional[1] ?? 10_000);
const YEAR_START = Date.UTC(2025, 0, 1);
const YEAR_MS = 365 * 86_400_000;

const run = new BenchRun('speech-report', {
  description:
    `Memory growth (MB) of one process serving and reading GET /v1/reports/sessions?format=csv for a year with ${sessions} analysed sessions ` +
    '(chDB + the entity database), sampled at every chunk read, over a baseline taken after a warm-up report and a full GC.',
  options: { runs, sessions },
});

const srv = await startSpeechTestServer();
try {
  const t0 = performance.now();
  await seedAnalysedSessions(srv, {
    orgId: 'bench-org', userId: 'bench-user', n: sessions, startAt: YEAR_START, stepMs: Math.floor(YEAR_MS / sessions),
    title: (i) => `Practice "${i}", take ${i % 3}`,
  });
  console.log(`seeded ${sessions} sessions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const token = srv.token('bench-user', 'bench-org', SPEECH_READ);
  const url = `${srv.baseUrl}/v1/reports/sessions?startDate=2025-01-01&endDate=2025-12-31&format=csv`;

  async function report(sample: () => void): Promise<{ bytes: number; lines: number; ms: number }> {
    const started = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`report: ${res.status} ${await res.text()}`);
    let bytes = 0;
    let lines = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.byteLength;
      for (const b of chunk) if (b === 10) lines++;
      sample();
    }
    return { bytes, lines, ms: performance.now() - started };
  }

  await report(() => {}); // warm-up: code paths, query caches, connection pools
  const heap: number[] = [];
  const heapAndBuffers: number[] = [];
  const rss: number[] = [];
  const durations: number[] = [];
  const details: Record<string, unknown>[] = [];
  for (let r = 0; r < runs; r++) {
    gc();
    const base = process.memoryUsage();
    let peak = { heap: base.heapUsed, buffers: base.heapUsed + base.external, rss: base.rss };
    const sample = () => {
      const m = process.memoryUsage();
      peak = { heap: Math.max(peak.heap, m.heapUsed), buffers: Math.max(peak.buffers, m.heapUsed + m.external), rss: Math.max(peak.rss, m.rss) };
    };
    const got = await report(sample);
    sample();
    if (got.lines !== sessions + 1) throw new Error(`the CSV has ${got.lines} lines, not ${sessions + 1} (header + ${sessions})`);
    heap.push((peak.heap - base.heapUsed) / MB);
    heapAndBuffers.push((peak.buffers - base.heapUsed - base.external) / MB);
    rss.push((peak.rss - base.rss) / MB);
    durations.push(got.ms);
    details.push({ baseline_heap_mb: base.heapUsed / MB, baseline_external_mb: base.external / MB, baseline_rss_mb: base.rss / MB, csv_bytes: got.bytes, csv_lines: got.lines });
    console.log(
      `run ${r + 1}: ${got.bytes} bytes, ${got.lines} lines in ${got.ms.toFixed(0)} ms; heap +${heap[r].toFixed(1)} MB, heap+external +${heapAndBuffers[r].toFixed(1)} MB, RSS +${rss[r].toFixed(1)} MB`,
    );
  }
  const h = run.metric('heap_growth_peak_mb', heap, 'MB', 'lower');
  const hb = run.metric('heap_and_external_growth_peak_mb', heapAndBuffers, 'MB', 'lower');
  run.metric('rss_growth_peak_mb', rss, 'MB', 'lower');
  run.metric('report_ms', durations, 'ms', 'lower');
  const path = run.write({ runs: details, target_heap_growth_mb: 50, columns: REPORT_COLUMNS });
  console.log(`heap growth, peak:          ${describeMetric(h, 1, ' MB')}`);
  console.log(`heap+external growth, peak: ${describeMetric(hb, 1, ' MB')}`);
  console.log(path);
} finally {
  await srv.close();
}
