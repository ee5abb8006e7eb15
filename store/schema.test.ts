// The heart schema as a product: documented, idempotent under replay, and its daily rollup
// right. Run against every available store implementation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { queryRows, toNumber, type StoreClient } from './clickhouse.js';
import { migrate } from './migrate.js';
import {
  COHERENCE_WINDOW_STEP_S,
  HIGH_COHERENCE_THRESHOLD,
  Tables,
  type CoherenceWindowRow,
  type HeartReadingRow,
  type SessionEventRow,
  type SessionRow,
} from './rows.js';
import { storeImplementations } from './test-stores.test-util.js';

const t0 = Date.UTC(2026, 10, 20, 23, 59, 50); // ten seconds before midnight UTC: windows span two days

function heartRows(): HeartReadingRow[] {
  const rr = [812.5, 845, 901.25];
  const recordedAt = t0 + 3000;
  const beats = rr.map((rr_ms, beat_index) => ({
    event_time: Math.round(recordedAt - rr.slice(beat_index + 1).reduce((a, b) => a + b, 0)),
    org_id: 'org-a',
    user_id: 'user-1',
    device_id: 'dev-1',
    session_id: 'sess-1',
    reading_id: 'r-1',
    beat_index,
    rr_ms,
    hr_bpm: 70,
    device_hrv_ms: null,
    device_coherence: null,
    battery_level_pct: 88,
    source: 'sync' as const,
    received_at: recordedAt + 250,
  }));
  const hrOnly: HeartReadingRow = {
    ...beats[0],
    event_time: recordedAt + 1000,
    session_id: '',
    reading_id: 'r-2',
    beat_index: 0,
    rr_ms: null,
    hr_bpm: 71.5,
  };
  return [...beats, hrOnly];
}

function window(
  user_id: string,
  windowEnd: number,
  metrics: { coherence: number; ratio: number; hr: number | null; rmssd: number | null } | null,
  invalid: { reason: string; partial: boolean; coverage: number; gapMs: number } = { reason: 'too_many_artifacts', partial: false, coverage: 0.97, gapMs: 1200 },
): CoherenceWindowRow {
  return {
    session_id: `sess-${user_id}`,
    user_id,
    org_id: 'org-a',
    device_id: `dev-${user_id}`,
    window_start: windowEnd - 64_000,
    window_end: windowEnd,
    valid: metrics !== null,
    invalid_reason: metrics ? null : invalid.reason,
    partial: metrics ? false : invalid.partial,
    coverage: metrics ? 0.98 : invalid.coverage,
    longest_gap_ms: metrics ? 1100 : invalid.gapMs,
    coherence: metrics?.coherence ?? null,
    coherence_ratio: metrics?.ratio ?? null,
    peak_frequency_hz: metrics ? 0.1 : null,
    breathing_rate_bpm: metrics ? 6 : null,
    mean_hr_bpm: metrics?.hr ?? null,
    rmssd_ms: metrics?.rmssd ?? null,
    sdnn_ms: metrics ? 50 : null,
    pnn50_pct: metrics ? 12.5 : null,
    beat_count: 70,
    artifact_ratio: metrics ? 0.01 : 0.6,
    late_beat_count: 0,
    computed_at: windowEnd + 40,
  };
}

function sessionRow(updated_at: number, status: 'active' | 'ended', version: number): SessionRow {
  return {
    session_id: 'sess-1',
    org_id: 'org-a',
    user_id: 'user-1',
    device_id: 'dev-1',
    kind: 'coherence',
    title: 'Morning practice',
    status,
    started_at: t0,
    ended_at: status === 'ended' ? updated_at : null,
    coherence_threshold: 0.5,
    threshold_duration_s: 30,
    created_at: t0,
    updated_at,
    metadata_json: '{"app":"test"}',
    version,
  };
}

const eventRows = (): SessionEventRow[] => [
  {
    event_id: 'ev-1',
    session_id: 'sess-1',
    org_id: 'org-a',
    user_id: 'user-1',
    type: 'coherence_threshold_reached',
    occurred_at: t0 + 30_000,
    payload_json: '{"held_s":30}',
  },
];

async function insert(store: StoreClient, table: string, values: object[]): Promise<void> {
  await store.client.insert({ table: store.table(table), values, format: 'JSONEachRow' });
}

/** What the API and data scientists would read: every column of every row, with FINAL. */
async function snapshot(store: StoreClient, table: string, orderBy: string): Promise<unknown[]> {
  return queryRows(store.client, `SELECT * FROM ${store.table(table)} FINAL ORDER BY ${orderBy}`);
}

for (const impl of await storeImplementations()) {
  describe(`heart schema (${impl.kind})`, () => {
    let store: StoreClient;
    before(async () => {
      store = await impl.open();
      await migrate(store);
    });
    after(() => impl.dispose());

    test('every table and every column has a comment', async () => {
      const tables = await queryRows<{ name: string; engine: string; comment: string }>(
        store.client,
        'SELECT name, engine, comment FROM system.tables WHERE database = {db:String} ORDER BY name',
        { db: store.database },
      );
      assert.ok(tables.length >= 8);
      for (const t of tables) assert.ok(t.comment.trim().length > 0, `table ${t.name} has a comment`);
      // A view stores nothing: its columns are documented in its comment (user_daily_coherence,
      // computed from coherence_windows FINAL since 0006, and group_daily_coherence from
      // group_windows FINAL, 0007; the one materialized view left copies segments' words into
      // transcript search's ReplacingMergeTree index, 0011, with the stream id since 0012, and
      // counts nothing).
      const views = new Set(tables.filter((t) => t.engine === 'MaterializedView' || t.engine === 'View').map((t) => t.name));
      assert.deepEqual([...views], ['group_daily_coherence', 'speech_terms_words_mv', 'user_daily_coherence']);
      const columns = await queryRows<{ table: string; name: string; comment: string }>(
        store.client,
        'SELECT table, name, comment FROM system.columns WHERE database = {db:String}',
        { db: store.database },
      );
      const stored = columns.filter((c) => !views.has(c.table));
      assert.ok(stored.length > 60);
      const undocumented = stored.filter((c) => c.comment.trim().length === 0).map((c) => `${c.table}.${c.name}`);
      assert.deepEqual(undocumented, []);
    });

    test('timestamps are DateTime64(3, UTC) and org ids LowCardinality', async () => {
      const columns = await queryRows<{ table: string; name: string; type: string }>(
        store.client,
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} AND (name LIKE '%\\_at' OR name IN ('event_time', 'window_start', 'window_end', 'org_id'))",
        { db: store.database },
      );
      for (const c of columns) {
        if (c.table === 'user_daily_coherence_mv') continue;
        if (c.name === 'org_id') assert.equal(c.type, 'LowCardinality(String)', `${c.table}.${c.name}`);
        else assert.match(c.type, /^(Nullable\()?DateTime64\(3, 'UTC'\)\)?$/, `${c.table}.${c.name}`);
      }
    });

    test('replaying the same rows leaves every query answer unchanged', async () => {
      const windows = [window('user-1', t0, { coherence: 0.7, ratio: 2.33, hr: 64, rmssd: 42 }), window('user-1', t0 + 5000, null)];
      const fixtures: Array<[string, object[], string]> = [
        [Tables.heartReadings, heartRows(), 'reading_id, beat_index'],
        [Tables.sessions, [sessionRow(t0, 'active', 1)], 'session_id'],
        [Tables.sessionEvents, eventRows(), 'event_id'],
        [Tables.coherenceWindows, windows, 'session_id, window_end'],
      ];
      for (const [table, rows, orderBy] of fixtures) {
        await insert(store, table, rows);
        const once = await snapshot(store, table, orderBy);
        assert.equal(once.length, rows.length, `${table} holds the rows`);
        // coherence_windows is replayed too here: ReplacingMergeTree collapses it; only the
        // rollup (tested below) relies on the worker never inserting a window twice.
        await insert(store, table, rows);
        await insert(store, table, rows);
        assert.deepEqual(await snapshot(store, table, orderBy), once, `${table} after replay`);
      }
      const beats = await queryRows<{ event_time: string; rr_ms: number | null; session_id: string }>(
        store.client,
        `SELECT event_time, rr_ms, session_id FROM ${store.table(Tables.heartReadings)} FINAL ORDER BY reading_id, beat_index`,
      );
      assert.deepEqual(beats.map((b) => b.rr_ms), [812.5, 845, 901.25, null]);
      assert.equal(beats[3].session_id, '');
    });

    test('the sessions dimension: a newer version replaces the older one under FINAL, whatever order they arrive in', async () => {
      await insert(store, Tables.sessions, [sessionRow(t0 + 60_000, 'ended', 3)]);
      await insert(store, Tables.sessions, [sessionRow(t0 + 1, 'active', 2)]); // a late, stale copy
      const rows = await queryRows<{ status: string; ended_at: string | null; version: number; n: number | string }>(
        store.client,
        `SELECT status, ended_at, version, count() OVER () AS n FROM ${store.table(Tables.sessions)} FINAL WHERE session_id = 'sess-1'`,
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0].status, 'ended');
      assert.equal(Number(rows[0].version), 3);
      assert.equal(rows[0].ended_at, '2026-11-21 00:00:50.000');
    });

    test('the daily rollup computes the expected values from known windows', async () => {
      const m = (coherence: number, ratio: number, hr: number | null, rmssd: number | null) => ({ coherence, ratio, hr, rmssd });
      const day1 = Date.UTC(2026, 10, 21, 9, 0, 0);
      const day2 = Date.UTC(2026, 10, 22, 9, 0, 0);
      const windows = [
        window('user-2', day1, m(0.2, 0.25, 61, 30)),
        window('user-2', day1 + 5000, m(0.5, 1, 62, 35)), // exactly the threshold: counts as high
        window('user-2', day1 + 10_000, m(0.8, 4, 63, null)), // a NULL metric is skipped by its average
        window('user-2', day1 + 15_000, null), // invalid: not in the rollup at all
        window('user-2', day1 - 5000, null, { reason: 'partial', partial: true, coverage: 0.6, gapMs: 25_600 }), // a session's first minute: not counted
        window('user-2', day1 + 20_000, null, { reason: 'long_gap', partial: false, coverage: 0.91, gapMs: 4800 }), // a dropout inside: not counted
        window('user-2', day2, m(0.6, 1.5, 70, 50)),
        window('user-3', day1, m(0.45, 0.818, 80, 20)),
      ];
      // Two inserts, so the rollup has to merge states across parts.
      await insert(store, Tables.coherenceWindows, windows.slice(0, 2));
      await insert(store, Tables.coherenceWindows, windows.slice(2));

      const expected = new Map<string, Record<string, number | null>>();
      const groups = new Map<string, CoherenceWindowRow[]>();
      for (const w of windows.filter((x) => x.valid)) {
        const key = `${w.user_id} ${new Date(w.window_end).toISOString().slice(0, 10)}`;
        groups.set(key, [...(groups.get(key) ?? []), w]);
      }
      const mean = (xs: Array<number | null>) => {
        const v = xs.filter((x): x is number => x !== null);
        return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
      };
      for (const [key, ws] of groups) {
        expected.set(key, {
          avg_coherence: mean(ws.map((w) => w.coherence)),
          max_coherence: Math.max(...ws.map((w) => w.coherence!)),
          window_count: ws.length,
          high_coherence_s: ws.filter((w) => w.coherence! >= HIGH_COHERENCE_THRESHOLD).length * COHERENCE_WINDOW_STEP_S,
          avg_coherence_ratio: mean(ws.map((w) => w.coherence_ratio)),
          avg_mean_hr_bpm: mean(ws.map((w) => w.mean_hr_bpm)),
          avg_rmssd_ms: mean(ws.map((w) => w.rmssd_ms)),
        });
      }

      const rows = await queryRows<Record<string, string | number | null>>(
        store.client,
        `SELECT user_id, toString(day) AS day,
                avgMerge(avg_coherence_state) AS avg_coherence,
                maxMerge(max_coherence_state) AS max_coherence,
                countMerge(window_count_state) AS window_count,
                sumMerge(high_coherence_s_state) AS high_coherence_s,
                avgMerge(avg_coherence_ratio_state) AS avg_coherence_ratio,
                avgMerge(avg_mean_hr_bpm_state) AS avg_mean_hr_bpm,
                avgMerge(avg_rmssd_ms_state) AS avg_rmssd_ms
         FROM ${store.table(Tables.userDailyCoherence)}
         WHERE org_id = {org:String} AND user_id IN ('user-2', 'user-3')
         GROUP BY org_id, user_id, day
         ORDER BY user_id, day`,
        { org: 'org-a' },
      );
      assert.deepEqual(rows.map((r) => `${r.user_id} ${r.day}`), [...expected.keys()].sort());
      for (const r of rows) {
        const want = expected.get(`${r.user_id} ${r.day}`)!;
        for (const [field, value] of Object.entries(want)) {
          const got = r[field] === null ? null : toNumber(r[field] as string | number);
          if (value === null) assert.equal(got, null, `${r.user_id} ${r.day} ${field}`);
          else assert.ok(Math.abs(got! - value) < 1e-9, `${r.user_id} ${r.day} ${field}: ${got} != ${value}`);
        }
      }
      // The anchors of the fixture, spelled out: user-2 on day 1 had 3 valid windows, two at
      // or above 0.5, so 10 s of high coherence; the invalid, partial and gapped windows were left out.
      const u2d1 = rows.find((r) => r.user_id === 'user-2' && r.day === '2026-11-21')!;
      assert.equal(toNumber(u2d1.window_count as number), 3);
      assert.equal(toNumber(u2d1.high_coherence_s as number), 10);
    });
  });
}
