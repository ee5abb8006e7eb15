// Issue 9's memory test: 1,000 sessions with maximum-size metadata (16 KB of JSON each, the
// default ATTUNE_MAX_STORED_JSON_BYTES), listed 100 at a time, must keep the server's RSS
// growth under 100 MB. Each run starts a fresh Attune (API role, PGlite entities, chDB) in a
// child process and reads its RSS from /proc: after a warm-up (baseline, with the peak reset
// through /proc/<pid>/clear_refs), then the peak (VmHWM) and the end RSS after creating the
// sessions and listing them all, 10 passes of 10 pages each way: the default list (no metadata
// in the items) and include=metadata (every item's 16 KB).
//
//   node --import tsx bench/stored-json-memory.bench.ts [runs=3] [sessions=1000]
//
// The child is this file with --server.
import { spawn, type ChildProcess } from 'node:child_process';
// procWrite only writes /proc/<pid>/clear_refs (resets the peak RSS); results go through BenchRun.
import { readFileSync, writeFileSync as procWrite } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BenchRun, describeMetric, runsArg } from './lib/results.js';
import { DEFAULT_MAX_STORED_JSON_BYTES } from '../lib/json-limits.js';

const PAGE = 100;
const PASSES = 10;

if (process.argv.includes('--server')) {
  const { startTestAttune } = await import('../test/attune.js');
  const app = await startTestAttune({ entities: 'pglite', roles: { ingest: false, api: true, worker: false } });
  console.log(`READY ${JSON.stringify({ url: app.baseUrl, token: app.token('mem-user', 'mem-org') })}`);
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await app.cleanup();
    process.exit(0);
  });
} else {
  await main();
}

function procStatus(pid: number): { rssMb: number; hwmMb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

async function startServer(): Promise<{ child: ChildProcess; url: string; token: string }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^READY (.*)$/m.exec(out);
      if (m) resolve({ child, ...JSON.parse(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code} before it was ready`)));
  });
}

async function call(url: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return { json: JSON.parse(text), bytes: text.length };
}

/** All pages of the list; returns the items seen and the largest page in bytes. */
async function listAll(url: string, token: string, include: boolean): Promise<{ items: number; maxPageBytes: number }> {
  let cursor: string | null = null;
  let items = 0;
  let maxPageBytes = 0;
  do {
    const q: string = `?limit=${PAGE}${include ? '&include=metadata' : ''}${cursor ? `&cursor=${cursor}` : ''}`;
    const { json, bytes } = await call(url, token, 'GET', `/v1/sessions${q}`);
    items += json.data.length;
    maxPageBytes = Math.max(maxPageBytes, bytes);
    cursor = json.pagination.next_cursor;
  } while (cursor);
  return { items, maxPageBytes };
}

async function main(): Promise<void> {
  const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const runs = runsArg(positional[0], 3);
  const sessions = Number(positional[1] ?? 1000);
  const metadata = { notes: 'x'.repeat(DEFAULT_MAX_STORED_JSON_BYTES - '{"notes":""}'.length) };
  if (Buffer.byteLength(JSON.stringify(metadata)) !== DEFAULT_MAX_STORED_JSON_BYTES) throw new Error('metadata is not at the cap');

  const run = new BenchRun('stored-json-memory', {
    description: `Server RSS growth (MB) over a warmed-up API process while ${sessions} sessions with 16 KB metadata are created and listed ${PAGE} at a time (${PASSES} passes without and ${PASSES} with include=metadata).`,
    options: { runs, sessions, page: PAGE, passes: PASSES, metadata_bytes: DEFAULT_MAX_STORED_JSON_BYTES },
  });
  const peak: number[] = [];
  const end: number[] = [];
  const baselineRss: number[] = [];
  const details: Record<string, unknown>[] = [];
  for (let r = 0; r < runs; r++) {
    const { child, url, token } = await startServer();
    try {
      // Warm-up: every route used below, a few times, then the baseline.
      for (let i = 0; i < 20; i++) await call(url, token, 'POST', '/v1/sessions', { title: `warm ${i}`, metadata: { i } });
      for (let i = 0; i < 5; i++) {
        await listAll(url, token, false);
        await listAll(url, token, true);
      }
      // chDB and PGlite give memory back for seconds after start: the baseline is taken once
      // RSS has moved less than 2 MB in a second (at most 20 s).
      let prev = procStatus(child.pid!).rssMb;
      for (let waited = 0; waited < 20; waited++) {
        await new Promise((res) => setTimeout(res, 1000));
        const now = procStatus(child.pid!).rssMb;
        if (Math.abs(now - prev) < 2) break;
        prev = now;
      }
      const base = procStatus(child.pid!);
      procWrite(`/proc/${child.pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
      for (let i = 0; i < sessions; i++) await call(url, token, 'POST', '/v1/sessions', { title: `s${i}`, metadata });
      let plain = { items: 0, maxPageBytes: 0 };
      let full = { items: 0, maxPageBytes: 0 };
      for (let p = 0; p < PASSES; p++) {
        plain = await listAll(url, token, false);
        full = await listAll(url, token, true);
      }
      if (plain.items !== sessions + 20 || full.items !== sessions + 20) throw new Error(`listed ${plain.items}/${full.items} of ${sessions + 20}`);
      const after = procStatus(child.pid!);
      baselineRss.push(base.rssMb);
      peak.push(after.hwmMb - base.rssMb);
      end.push(after.rssMb - base.rssMb);
      details.push({ baseline_rss_mb: base.rssMb, end_rss_mb: after.rssMb, peak_rss_mb: after.hwmMb, page_bytes_without_metadata: plain.maxPageBytes, page_bytes_with_metadata: full.maxPageBytes });
      console.log(`run ${r + 1}: baseline ${base.rssMb.toFixed(0)} MB, peak +${(after.hwmMb - base.rssMb).toFixed(1)} MB, end +${(after.rssMb - base.rssMb).toFixed(1)} MB; pages ${plain.maxPageBytes} B without, ${full.maxPageBytes} B with metadata`);
    } finally {
      child.stdin!.end();
      await new Promise((res) => child.once('exit', res));
    }
  }
  const pk = run.metric('rss_growth_peak_mb', peak, 'MB', 'lower');
  const en = run.metric('rss_growth_end_mb', end, 'MB', 'lower');
  run.metric('baseline_rss_mb', baselineRss, 'MB', 'lower');
  const path = run.write({ runs: details, limit_mb: 100 });
  console.log(`RSS growth, peak: ${describeMetric(pk, 1, ' MB')}`);
  console.log(`RSS growth, end:  ${describeMetric(en, 1, ' MB')}`);
  console.log(path);
}
