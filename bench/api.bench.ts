// Issue 12's query latency: p99 of the coherence history (GET /v1/users/me/coherence), the
// session detail (GET /v1/sessions/{id}) and the organisation analytics
// (GET /v1/organizations/{org_id}/analytics) routes on 10 million generated coherence windows,
// one Attune process (API role, chDB, PGlite), the load generator in the same process, one
// request at a time (latency, not throughput).
//
//   npm run bench:api -- [runs=3] [windows=10000000] [requests=200]
//
// Data, generated in the stores directly (no pipeline): one organisation of 500 users; sessions
// of 20 minutes (240 windows of 5 s) spread evenly over the last 90 days, each with a protocol
// (PostgreSQL sessions + session_practice, ended; inserted through the triggers that keep the
// daily sessions rollup of migration 0007), and their windows in coherence_windows (5 %
// invalid, scores spread 0.2–0.9) inserted with INSERT … SELECT FROM numbers() (ClickHouse
// generates them), then OPTIMIZE … FINAL so the parts are merged as a long-running store's
// would be. Each run: per route, `requests` requests after 20 of warm-up, routes interleaved in
// a rotating order; the history and session requests pick users and sessions at random
// (seeded), the analytics requests rotate over 7d, 30d and 90d. Metrics: p50 and p99 latency
// per route (ms, wall clock around fetch), median over runs.
//
// Three analytics routes: `analytics` on data that do not change between requests (the
// coherence answers are then served from the route's cache, api/org-analytics.ts, after one
// cheap version read); `analytics_uncached`, the same with the cache emptied (untimed) before
// each request, so each answer is computed afresh (version read, then the projection query) on
// the same merged parts: what the route cost before the cache, in the same run; and
// `analytics_fresh`, each request preceded (untimed) by the insert of one window of the
// organisation, today, as a store taking live windows sees: the version has changed and the
// table holds one more small part each time (about 30 inserts a second, faster than the
// windows sink writes; the active parts are recorded). Each route's run also records the garbage collections and the event-loop delay while
// its requests ran, to tell a tail from GC or a blocked loop from one from the queries.
import { performance, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { BenchRun, describeMetric, runsArg } from './lib/results.js';
import { interleavedOrder } from './lib/stats.js';
import { seededRandom } from '../test/seeded-random.js';

const ORG = 'bench-org';
const USERS = 500;
const WINDOWS_PER_SESSION = 240;
const PROTOCOLS = ['heart_breath_sync', 'gratitude_focus', 'coherence_building', 'intention_amplify', 'manifestation_basic', 'manifestation_advanced'];

const runs = runsArg(process.argv[2], 3);
const windows = Number(process.argv[3] ?? 10_000_000);
const requests = Number(process.argv[4] ?? 200);

/** Deterministic UUID of session number n (the same text in ClickHouse and PostgreSQL). */
const sessionUuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

const rng = seededRandom;

async function main(): Promise<void> {
  const { startTestAttune } = await import('../test/attune.js');
  const app = await startTestAttune({
    entities: 'pglite',
    roles: { ingest: false, api: true, worker: false },
    env: { ATTUNE_RATE_LIMIT: 'off' },
  });
  const run = new BenchRun('api', {
    description: `p50/p99 latency of the history, session and organisation analytics routes on ${windows.toLocaleString('en')} generated coherence windows, one process (API role, chDB, PGlite), one request at a time`,
    options: { runs, windows, requests, users: USERS, windows_per_session: WINDOWS_PER_SESSION },
  });
  try {
    const sessions = Math.ceil(windows / WINDOWS_PER_SESSION);
    const now = Date.now();
    const spanMs = 90 * 86_400_000;
    const first = now - spanMs;
    const stepMs = Math.floor(spanMs / sessions);
    const t0 = performance.now();
    // PostgreSQL: users, sessions (ended, 20 min), practice protocols.
    await app.sql.query(
      `INSERT INTO users (org_id, user_id, created_at, updated_at)
       SELECT $1, 'user-' || u, to_timestamp($2 / 1000.0), to_timestamp($2 / 1000.0) FROM generate_series(0, $3 - 1) AS u`,
      [ORG, first, USERS],
    );
    await app.sql.query(
      `INSERT INTO sessions (session_id, org_id, user_id, kind, status, started_at, ended_at, created_at, updated_at)
       SELECT ('00000000-0000-4000-8000-' || lpad(s::text, 12, '0'))::uuid, $1, 'user-' || (s % $2), 'coherence', 'ended',
              to_timestamp(($3 + s::bigint * $4) / 1000.0), to_timestamp(($3 + s::bigint * $4 + $5) / 1000.0),
              to_timestamp(($3 + s::bigint * $4) / 1000.0), to_timestamp(($3 + s::bigint * $4 + $5) / 1000.0)
         FROM generate_series(0, $6 - 1) AS s`,
      [ORG, USERS, first, stepMs, WINDOWS_PER_SESSION * 5000 + 59_000, sessions],
    );
    await app.sql.query(
      `INSERT INTO session_practice (session_id, protocol, target_duration_s)
       SELECT ('00000000-0000-4000-8000-' || lpad(s::text, 12, '0'))::uuid, ($1::text[])[1 + (s % 6)], 1200 FROM generate_series(0, $2 - 1) AS s`,
      [PROTOCOLS, sessions],
    );
    // The outbox rows the session inserts queued (no relay runs in this process).
    await app.sql.query('DELETE FROM session_changes').catch(() => {});
    const tPg = performance.now();
    // ClickHouse: the windows, generated by ClickHouse itself.
    const db = app.database;
    await app.store.client.command({
      // Columns named: 0004 added invalid_reason, partial, coverage and longest_gap_ms after
      // valid, so an INSERT by position put mean_hr_bpm (55-85) into coherence (runs before
      // 2026-12-03T06:50Z had every valid window "high" and means near 70).
      query: `INSERT INTO ${db}.coherence_windows (session_id, user_id, org_id, device_id, window_start, window_end, valid, coherence,
          coherence_ratio, peak_frequency_hz, breathing_rate_bpm, mean_hr_bpm, rmssd_ms, sdnn_ms, pnn50_pct, beat_count, artifact_ratio,
          late_beat_count, computed_at, invalid_reason, partial, coverage, longest_gap_ms)
        SELECT
          concat('00000000-0000-4000-8000-', leftPad(toString(s), 12, '0')) AS session_id,
          concat('user-', toString(s % ${USERS})) AS user_id,
          '${ORG}' AS org_id,
          concat('dev-', toString(s % ${USERS})) AS device_id,
          fromUnixTimestamp64Milli(toInt64(${first} + s * ${stepMs} + w * 5000), 'UTC') AS window_start,
          fromUnixTimestamp64Milli(toInt64(${first} + s * ${stepMs} + w * 5000 + 64000), 'UTC') AS window_end,
          (cityHash64(number) % 100) >= 5 AS valid,
          if(valid, 0.2 + (cityHash64(number, 1) % 7000) / 10000.0, NULL) AS coherence,
          if(valid, coherence / (1 - coherence), NULL) AS coherence_ratio,
          if(valid, 0.1, NULL) AS peak_frequency_hz,
          if(valid, 6.0, NULL) AS breathing_rate_bpm,
          if(valid, 55 + (cityHash64(number, 2) % 300) / 10.0, NULL) AS mean_hr_bpm,
          if(valid, 25 + (cityHash64(number, 3) % 500) / 10.0, NULL) AS rmssd_ms,
          if(valid, 50.0, NULL) AS sdnn_ms,
          if(valid, 12.0, NULL) AS pnn50_pct,
          toUInt32(70) AS beat_count,
          if(valid, 0.01, 0.6) AS artifact_ratio,
          toUInt32(0) AS late_beat_count,
          fromUnixTimestamp64Milli(toInt64(${first} + s * ${stepMs} + w * 5000 + 64040), 'UTC') AS computed_at,
          if(valid, NULL, 'too_many_artifacts') AS invalid_reason,
          false AS partial,
          if(valid, 0.98, 0.9) AS coverage,
          toUInt32(1100) AS longest_gap_ms
        FROM (SELECT number, intDiv(number, ${WINDOWS_PER_SESSION}) AS s, number % ${WINDOWS_PER_SESSION} AS w FROM numbers(${windows}))`,
    });
    await app.store.client.command({ query: `OPTIMIZE TABLE ${db}.coherence_windows FINAL` });
    const tCh = performance.now();
    const stored = await app.store.client.query({ query: `SELECT count() AS n FROM ${db}.coherence_windows`, format: 'JSONEachRow' });
    const storedWindows = Number(((await stored.json()) as Array<{ n: string }>)[0].n);
    console.log(`generated ${sessions} sessions (PostgreSQL ${((tPg - t0) / 1000).toFixed(1)} s) and ${storedWindows} windows (ClickHouse ${((tCh - tPg) / 1000).toFixed(1)} s)`);

    const admin = app.token('bench-admin', ORG, ['admin:org']);
    const userToken = (u: number) => app.token(`user-${u}`, ORG, ['read:coherence', 'read:sessions']);
    const day = (t: number) => new Date(t).toISOString().slice(0, 10);
    const random = rng(12);
    const periods = ['7d', '30d', '90d'];
    const routes: Record<string, (i: number) => { path: string; token: string; before?: () => Promise<void> }> = {
      history: () => {
        const u = Math.floor(random() * USERS);
        return { path: `/v1/users/me/coherence?start_date=${day(now - 30 * 86_400_000)}&end_date=${day(now)}`, token: userToken(u) };
      },
      session: () => {
        const s = Math.floor(random() * sessions);
        return { path: `/v1/sessions/${sessionUuid(s)}`, token: userToken(s % USERS) };
      },
      analytics: (i) => ({ path: `/v1/organizations/${ORG}/analytics?period=${periods[i % 3]}`, token: admin }),
      analytics_uncached: (i) => ({ path: `/v1/organizations/${ORG}/analytics?period=${periods[i % 3]}`, token: admin, before: async () => reader.clear() }),
      analytics_fresh: (i) => ({ path: `/v1/organizations/${ORG}/analytics?period=${periods[i % 3]}`, token: admin, before: insertWindow }),
    };
    // One more valid window of a bench user, ending now (a new part of coherence_windows).
    let inserted = 0;
    const insertWindow = async () => {
      const end = Date.now();
      const n = inserted++;
      await app.store.client.insert({
        table: `${db}.coherence_windows`,
        format: 'JSONEachRow',
        values: [{ session_id: sessionUuid(sessions - 1), user_id: `user-${n % USERS}`, org_id: ORG, device_id: `dev-${n % USERS}`, window_start: end - 64_000, window_end: end,
          valid: true, invalid_reason: null, partial: false, coverage: 0.98, longest_gap_ms: 1100, coherence: 0.6, coherence_ratio: 1.5, peak_frequency_hz: 0.1,
          breathing_rate_bpm: 6, mean_hr_bpm: 62, rmssd_ms: 45, sdnn_ms: 50, pnn50_pct: 12, beat_count: 70, artifact_ratio: 0.01, late_beat_count: 0, computed_at: end + 40 }],
      });
    };
    const { coherenceReader } = await import('../api/org-analytics.js');
    const activeParts = async () => {
      const rs = await app.store.client.query({ query: `SELECT count() AS n FROM system.parts WHERE database = '${db}' AND table = 'coherence_windows' AND active`, format: 'JSONEachRow' });
      return Number(((await rs.json()) as Array<{ n: number | string }>)[0].n);
    };
    const reader = coherenceReader({ clickhouse: app.store.client, database: db });
    const names = Object.keys(routes);
    const samples: Record<string, { p50: number[]; p99: number[] }> = Object.fromEntries(names.map((n) => [n, { p50: [], p99: [] }]));
    const time = async (r: { path: string; token: string; before?: () => Promise<void> }) => {
      await r.before?.();
      const start = performance.now();
      const res = await fetch(app.baseUrl + r.path, { headers: { authorization: `Bearer ${r.token}` } });
      await res.arrayBuffer();
      const ms = performance.now() - start;
      if (res.status !== 200) throw new Error(`${r.path}: ${res.status}`);
      return ms;
    };
    const orders = interleavedOrder(names, runs);
    // Per route and run: GC pauses and event-loop delay while its measured requests ran, and the
    // analytics cache's hits and misses.
    const perRun: Array<Record<string, unknown>> = [];
    for (let k = 0; k < runs; k++) {
      for (const name of orders[k]) {
        for (let i = 0; i < 20; i++) await time(routes[name](i));
        const ms: number[] = [];
        const gc: number[] = [];
        const obs = new PerformanceObserver((list) => {
          for (const e of list.getEntries()) gc.push(e.duration);
        });
        obs.observe({ entryTypes: ['gc'] });
        const eld = monitorEventLoopDelay({ resolution: 1 });
        eld.enable();
        const cache0 = { ...reader.stats };
        for (let i = 0; i < requests; i++) ms.push(await time(routes[name](i)));
        eld.disable();
        obs.disconnect();
        ms.sort((a, b) => a - b);
        samples[name].p50.push(quantile(ms, 0.5));
        samples[name].p99.push(quantile(ms, 0.99));
        const slowest = ms.slice(-Math.max(1, Math.ceil(ms.length / 100)));
        const entry = {
          run: k + 1,
          route: name,
          p50_ms: quantile(ms, 0.5),
          p99_ms: quantile(ms, 0.99),
          slowest_ms: slowest,
          gc_count: gc.length,
          gc_total_ms: gc.reduce((a, b) => a + b, 0),
          gc_max_ms: Math.max(0, ...gc),
          event_loop_delay_p99_ms: eld.percentile(99) / 1e6,
          event_loop_delay_max_ms: eld.max / 1e6,
          cache_hits: reader.stats.hits - cache0.hits,
          cache_misses: reader.stats.misses - cache0.misses,
          active_parts: await activeParts(),
        };
        perRun.push(entry);
        console.log(
          `run ${k + 1} ${name}: p50 ${entry.p50_ms.toFixed(1)} ms, p99 ${entry.p99_ms.toFixed(1)} ms; GC ${entry.gc_count} (max ${entry.gc_max_ms.toFixed(1)} ms), ` +
            `loop delay p99 ${entry.event_loop_delay_p99_ms.toFixed(1)} ms, max ${entry.event_loop_delay_max_ms.toFixed(1)} ms; cache ${entry.cache_hits} hits, ${entry.cache_misses} misses; ${entry.active_parts} parts`,
        );
      }
    }
    // Where the analytics time goes: its ClickHouse query and its PostgreSQL queries alone (30 each per period, median ms).
    const { OrgAnalyticsRepository } = await import('../store/postgres/org-analytics-repo.js');
    const { orgCoherenceQuery, coherenceVersionQuery, periodBounds } = await import('../api/org-analytics.js');
    const repo = new OrgAnalyticsRepository(app.sql);
    const breakdown: Record<string, number> = {};
    const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    // The floor of one chDB query in this process, and the version read the cache does first.
    const floor: number[] = [];
    const version: number[] = [];
    for (let i = 0; i < 30; i++) {
      let t = performance.now();
      await (await app.store.client.query({ query: 'SELECT 1', format: 'JSONEachRow' })).json();
      floor.push(performance.now() - t);
      t = performance.now();
      await (await app.store.client.query({ query: coherenceVersionQuery(db), format: 'JSONEachRow' })).json();
      version.push(performance.now() - t);
    }
    breakdown.clickhouse_select_1_ms = med(floor);
    breakdown.clickhouse_version_read_ms = med(version);
    for (const period of ['7d', '30d', '90d'] as const) {
      const { prevFrom, from, to } = periodBounds(period, Date.now());
      const pgOne: number[] = [];
      const ch: number[] = [];
      const pg: number[] = [];
      const pgDirect: number[] = [];
      for (let i = 0; i < 30; i++) {
        let t = performance.now();
        const rs = await app.store.client.query({ query: orgCoherenceQuery(db), query_params: { org: ORG, prevFrom: day(prevFrom), from: day(from), to: day(to) }, format: 'JSONEachRow' });
        await rs.json();
        ch.push(performance.now() - t);
        t = performance.now();
        await Promise.all([repo.userCount(ORG), repo.sessionFigures(ORG, prevFrom, from, to)]);
        pg.push(performance.now() - t);
        // What the route now runs: both in one statement.
        t = performance.now();
        await repo.orgFigures(ORG, prevFrom, from, to);
        pgOne.push(performance.now() - t);
        // The same figures computed from the sessions themselves (before the 0007 rollup), for comparison.
        t = performance.now();
        await Promise.all([repo.userCount(ORG), repo.sessionFiguresDirect(ORG, prevFrom, from, to)]);
        pgDirect.push(performance.now() - t);
      }
      breakdown[`analytics_${period}_clickhouse_ms`] = med(ch);
      breakdown[`analytics_${period}_postgres_ms`] = med(pg);
      breakdown[`analytics_${period}_postgres_one_statement_ms`] = med(pgOne);
      breakdown[`analytics_${period}_postgres_direct_ms`] = med(pgDirect);
    }
    console.log(`analytics breakdown (median ms): ${JSON.stringify(breakdown)}`);
    // Whether ClickHouse plans the analytics query on the projection (migration 0010).
    const { prevFrom: pf, from: fr, to: tt } = periodBounds('90d', Date.now());
    const plan = await app.store.client.query({ query: `EXPLAIN ${orgCoherenceQuery(db)}`, query_params: { org: ORG, prevFrom: day(pf), from: day(fr), to: day(tt) }, format: 'JSONEachRow' });
    const planText = ((await plan.json()) as Array<{ explain: string }>).map((r) => r.explain).join('\n');
    const usesProjection = planText.includes('org_daily_users');
    console.log(`analytics query reads the projection: ${usesProjection}`);
    for (const name of names) {
      console.log(`${name} p50 ${describeMetric(run.metric(`${name}_p50_ms`, samples[name].p50, 'ms', 'lower'), 1, ' ms')}`);
      console.log(`${name} p99 ${describeMetric(run.metric(`${name}_p99_ms`, samples[name].p99, 'ms', 'lower'), 1, ' ms')}`);
    }
    const file = run.write({ per_run: perRun, windows_inserted_by_analytics_fresh: inserted, breakdown, uses_projection: usesProjection, plan: planText, sessions, stored_windows: storedWindows, generate_s: { postgres: (tPg - t0) / 1000, clickhouse: (tCh - tPg) / 1000 }, target: 'analytics p99 < 50 ms (issue 12)' });
    console.log(`wrote ${file}`);
  } finally {
    await app.cleanup();
  }
}

await main();
