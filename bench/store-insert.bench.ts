// Insert throughput of heart_readings through chDB with JSONEachRow, in batches of 10,000
// rows, and the cost of the DateTime64(3) encodings that work without per-query settings.
// Rows are built from a real RR recording (meditation, subject Y3) replayed for many users.
//
//   node --import tsx bench/store-insert.bench.ts [totalRows=100000] [runs=3]   (npm run bench:store-insert)
//
// Set CLICKHOUSE_URL to run the same against a ClickHouse server as well. The encodings are
// compared in the same run, interleaved; every figure is the median over runs. Writes
// bench/results/store-insert-<time>-<tag>.json.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { createStoreClient, queryRows, toNumber, type StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { BatchWriter } from '../store/batch-writer.js';
import type { HeartReadingRow } from '../store/rows.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from './lib/results.js';
import { interleavedOrder } from './lib/stats.js';

const totalRows = Number(process.argv[2] ?? 100_000);
const rounds = runsArg(process.argv[3], 3);
const bench = new BenchRun('store-insert', {
  description: 'heart_readings inserts through chDB (and a ClickHouse server when CLICKHOUSE_URL is set) with JSONEachRow in batches of 10,000 rows, three DateTime64(3) encodings, and through BatchWriter; rows from a real RR recording replayed for many users',
  options: { total_rows: totalRows, runs: rounds, batch_rows: 10_000, clickhouse_server: Boolean(process.env.CLICKHOUSE_URL) },
});
const batchRows = 10_000;
const rrFile = new URL('../../shared/data/rr/meditation_Y3med_kundalini_slowbreath.rr_ms.txt', import.meta.url);
const rr = readFileSync(rrFile, 'utf8')
  .split('\n')
  .map((l) => Number(l.trim()))
  .filter((x) => Number.isFinite(x) && x > 0);

/** Heart rows as the stream worker makes them: readings of 5 beats, beat times from the RRs. */
function buildRows(n: number): HeartReadingRow[] {
  const out: HeartReadingRow[] = [];
  const start = Date.UTC(2026, 10, 1);
  for (let user = 0; out.length < n; user++) {
    let t = start + user * 997;
    for (let i = 0; i + 5 <= rr.length && out.length < n; i += 5) {
      const beats = rr.slice(i, i + 5);
      const recordedAt = Math.round(t + beats.reduce((a, b) => a + b, 0));
      const end = recordedAt;
      const times = beats.map((_, j) => Math.round(recordedAt - beats.slice(j + 1).reduce((a, b) => a + b, 0)));
      for (let j = 0; j < beats.length && out.length < n; j++) {
        out.push({
          event_time: times[j],
          org_id: `org-${user % 3}`,
          user_id: `user-${user}`,
          device_id: `dev-${user}`,
          session_id: `sess-${user}`,
          reading_id: `${user}-${i}`,
          beat_index: j,
          rr_ms: beats[j],
          hr_bpm: Math.round(60_000 / beats[j]),
          device_hrv_ms: null,
          device_coherence: null,
          battery_level_pct: 80,
          source: 'live',
          received_at: end + 120,
        });
      }
      t = end;
    }
  }
  return out;
}

type Encoding = 'epoch_ms_number' | 'formatted_string' | 'epoch_seconds_string';
const pad = (n: number, w = 2) => String(n).padStart(w, '0');
function formatDateTime64(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}
function encodeRow(row: HeartReadingRow, enc: Encoding): object {
  if (enc === 'epoch_ms_number') return row;
  const f = enc === 'formatted_string' ? formatDateTime64 : (ms: number) => (ms / 1000).toFixed(3);
  return { ...row, event_time: f(row.event_time), received_at: f(row.received_at) };
}

async function timeIt(fn: () => Promise<void> | void): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function run(store: StoreClient) {
  await migrate(store);
  const table = store.table('heart_readings');
  const rows = buildRows(totalRows);
  const results: Record<string, unknown> = { backend: store.kind, rows: rows.length, batch_rows: batchRows };

  // Warm-up: the first insert pays for part/file creation.
  await store.client.insert({ table, values: rows.slice(0, 1000), format: 'JSONEachRow' });

  // Rounds interleave the encodings (their order rotating) so that load from other processes
  // spreads over all of them; each figure is the median round.
  const samples: Record<Encoding, { encodeMs: number[]; insertMs: number[]; correct: boolean }> = {
    epoch_ms_number: { encodeMs: [], insertMs: [], correct: true },
    formatted_string: { encodeMs: [], insertMs: [], correct: true },
    epoch_seconds_string: { encodeMs: [], insertMs: [], correct: true },
  };
  const wantLo = rows.reduce((m, r) => Math.min(m, r.event_time), Infinity);
  const wantHi = rows.reduce((m, r) => Math.max(m, r.event_time), -Infinity);
  for (const order of interleavedOrder(Object.keys(samples) as Encoding[], rounds)) {
    for (const enc of order) {
      await store.client.command({ query: `TRUNCATE TABLE ${table}` });
      // JS-side cost alone: turn the rows into the JSONEachRow body the client sends.
      samples[enc].encodeMs.push(
        await timeIt(() => {
          let bytes = 0;
          for (const r of rows) bytes += JSON.stringify(encodeRow(r, enc)).length + 1;
          if (bytes === 0) throw new Error('unreachable');
        }),
      );
      samples[enc].insertMs.push(
        await timeIt(async () => {
          for (let i = 0; i < rows.length; i += batchRows) {
            const values = rows.slice(i, i + batchRows).map((r) => encodeRow(r, enc));
            await store.client.insert({ table, values, format: 'JSONEachRow' });
          }
        }),
      );
      const check = await queryRows<{ n: string | number; lo: string | number; hi: string | number }>(
        store.client,
        `SELECT count() AS n, min(toUnixTimestamp64Milli(event_time)) AS lo, max(toUnixTimestamp64Milli(event_time)) AS hi FROM ${table}`,
      );
      samples[enc].correct &&=
        toNumber(check[0].n) === rows.length && toNumber(check[0].lo) === wantLo && toNumber(check[0].hi) === wantHi;
    }
  }
  const perS = (ms: number[]) => ms.map((x) => rows.length / (x / 1000));
  for (const [enc, s] of Object.entries(samples)) {
    const encode = bench.metric(`${store.kind}_${enc}_encode_rows_per_s`, perS(s.encodeMs), 'rows/s', 'higher');
    const insert = bench.metric(`${store.kind}_${enc}_insert_rows_per_s`, perS(s.insertMs), 'rows/s', 'higher');
    results[enc] = { correct: s.correct };
    console.log(`${store.kind} ${enc}: encode ${describeMetric(encode, 0, ' rows/s')}; insert ${describeMetric(insert, 0, ' rows/s')}; correct ${s.correct}`);
  }

  // End to end through BatchWriter (epoch-ms numbers), rows handed over in consumer-sized batches.
  const writerMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await store.client.command({ query: `TRUNCATE TABLE ${table}` });
    const writer = new BatchWriter<HeartReadingRow>({ store, table: 'heart_readings', maxRows: batchRows, log: silentLogger });
    writerMs.push(
      await timeIt(async () => {
        for (let i = 0; i < rows.length; i += 500) await writer.add(rows.slice(i, i + 500));
        await writer.flush();
      }),
    );
    await writer.close();
  }
  const bw = bench.metric(`${store.kind}_batch_writer_rows_per_s`, perS(writerMs), 'rows/s', 'higher');
  console.log(`${store.kind} batch_writer: ${describeMetric(bw, 0, ' rows/s')}`);
  return results;
}

const all: unknown[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'attune-bench-store-'));
try {
  const store = await createStoreClient({ dataDir, database: 'attune_bench', log: silentLogger });
  all.push(await run(store));
  await store.close();
  if (process.env.CLICKHOUSE_URL) {
    const server = await createStoreClient({ url: process.env.CLICKHOUSE_URL, database: 'attune_bench', log: silentLogger });
    all.push(await run(server));
    await server.client.command({ query: 'DROP DATABASE IF EXISTS attune_bench' });
    await server.close();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
const file = bench.write({ backends: all });
console.log(`wrote ${relativeResultPath(file)}`);
