// The cost of the JSON body depth scan (issue 9) on the ingest hot path: a 1 MB
// POST /v1/devices/{id}/sync body (readings as the sync load generator makes them) scanned as
// the server does (lib/json-limits.ts jsonBytesDepth over the body's bytes), next to decoding
// and JSON.parse of the same bytes (what every body costs already), and the string scan
// (jsonTextDepth) for comparison. Interleaved in each run; the figures are ms per MB, µs per
// reading and the scan's share of the parse.
//
//   node --import tsx bench/json-depth.bench.ts [runs] [iterations per run]
import { performance } from 'node:perf_hooks';
import { BenchRun, describeMetric } from './lib/results.js';
import { interleavedOrder } from './lib/stats.js';
import { MAX_BODY_JSON_DEPTH, jsonBytesDepth, jsonTextDepth } from '../lib/json-limits.js';

const runs = Math.max(1, Number(process.argv[2] ?? 5));
const iterations = Math.max(1, Number(process.argv[3] ?? 100));

function syncBody(targetBytes: number): string {
  const readings: object[] = [];
  let n = 0;
  let size = 60;
  const start = Date.UTC(2026, 11, 2);
  while (size < targetBytes) {
    const rr = 800 + Math.round(60 * Math.sin(n / 2.5));
    const r = { timestamp: start + n * 1000, hr: Math.round(60000 / rr), rr_intervals_ms: [rr, rr + 3], battery_level: 80, coherence: 0.5 };
    size += JSON.stringify(r).length + 1;
    readings.push(r);
    n++;
  }
  return JSON.stringify({ session_id: '6f1c3a52-5a52-4b7e-9d52-1d4f7c2b9e10', readings });
}

const body = syncBody(1024 * 1024);
const bytes = Buffer.from(body, 'utf8');
const mb = bytes.length / (1024 * 1024);
if (jsonTextDepth(body, MAX_BODY_JSON_DEPTH) !== 4 || jsonBytesDepth(bytes, MAX_BODY_JSON_DEPTH) !== 4) throw new Error('the sync body is 4 levels deep');

function time(fn: () => unknown): number {
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  return (performance.now() - t0) / iterations;
}

// Warm-up: both functions optimised before the clock counts.
for (let i = 0; i < 20; i++) {
  jsonBytesDepth(bytes, MAX_BODY_JSON_DEPTH);
  jsonTextDepth(body, MAX_BODY_JSON_DEPTH);
  JSON.parse(bytes.toString('utf8'));
}

const readingsPerBody = (JSON.parse(body) as { readings: unknown[] }).readings.length;
const run = new BenchRun('json-depth', {
  description: 'jsonBytesDepth (the depth scan of every JSON request body, over its bytes), utf8 decode + JSON.parse, and jsonTextDepth (UTF-8 encode, then the same scan; before 2026-12-02 16:05 a separate scan over the string) on one ~1 MB sync body of readings, ms per MB, interleaved per run.',
  options: { runs, iterations, body_bytes: Buffer.byteLength(body), readings: readingsPerBody, max_depth: MAX_BODY_JSON_DEPTH },
});
const variants: Record<string, () => unknown> = {
  scan: () => jsonBytesDepth(bytes, MAX_BODY_JSON_DEPTH),
  parse: () => JSON.parse(bytes.toString('utf8')),
  text: () => jsonTextDepth(body, MAX_BODY_JSON_DEPTH),
};
const scan: number[] = [];
const parse: number[] = [];
const text: number[] = [];
const share: number[] = [];
for (const order of interleavedOrder(Object.keys(variants), runs)) {
  const t: Record<string, number> = {};
  for (const which of order) t[which] = time(variants[which]);
  scan.push(t.scan / mb);
  parse.push(t.parse / mb);
  text.push(t.text / mb);
  share.push((100 * t.scan) / t.parse);
}
run.metric('text_scan_ms_per_mb', text, 'ms/MB', 'lower');
run.metric('scan_us_per_reading', scan.map((x) => (x * mb * 1000) / readingsPerBody), 'µs', 'lower');
const s = run.metric('scan_ms_per_mb', scan, 'ms/MB', 'lower');
const p = run.metric('parse_ms_per_mb', parse, 'ms/MB', 'lower');
const sh = run.metric('scan_share_of_parse', share, '%', 'lower');
const path = run.write({ note: 'the scan runs once per JSON body, before JSON.parse; a body deeper than max_depth stops the scan at its first max_depth+1 brackets' });
console.log(`depth scan: ${describeMetric(s, 3, ' ms/MB')}`);
console.log(`JSON.parse: ${describeMetric(p, 3, ' ms/MB')}`);
console.log(`scan / parse: ${describeMetric(sh, 1, ' %')}`);
console.log(`per reading (${readingsPerBody} readings in ${mb.toFixed(2)} MB): ${(((s.median * mb) / readingsPerBody) * 1000).toFixed(3)} µs`);
console.log(path);
