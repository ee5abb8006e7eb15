// What a data scientist is told (README "ClickHouse tables (for data scientists)",
// store/README.md, the table and column comments) against what the tables hold: every SQL
// example of the two READMEs runs on a migrated store and gives what its text says, with a
// window stored twice counted once; timestamps in the examples are pinned to UTC; and the
// comments that 0021 corrected say what the code writes. Run against every available store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { queryRows, type StoreClient } from './clickhouse.js';
import { migrate } from './migrate.js';
import { splitSqlStatements } from './sql-split.js';
import { Tables, type CoherenceWindowRow, type HeartReadingRow } from './rows.js';
import { storeImplementations } from './test-stores.test-util.js';
import { thresholdReachedPayloadJson } from '../pipelines/coherence/threshold.js';
import { SessionClockGuard } from '../pipelines/coherence/clock-guard.js';
import { detectRepetitions } from '../pipelines/speech/metrics/repetitions.js';

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const storeReadme = readFileSync(fileURLToPath(new URL('./README.md', import.meta.url)), 'utf8');
/** The README's section for data scientists, up to the next section of its level. */
const dsSection = readme.slice(readme.indexOf('## ClickHouse tables (for data scientists)'), readme.indexOf('\n## ', readme.indexOf('## ClickHouse tables (for data scientists)') + 1));

const sqlBlocks = (md: string) => [...md.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]);

// Recent, so the README's "last week" example sees them; on the 5 s grid, in one UTC day.
const day = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
const t0 = Math.max(day + 3_600_000, Math.floor((Date.now() - 3_600_000) / 5000) * 5000 - 600_000);

function win(session: string, end: number, coherence: number | null, extra: Partial<CoherenceWindowRow> = {}): CoherenceWindowRow {
  const valid = coherence !== null;
  return {
    session_id: session,
    user_id: 'sim-user-3',
    org_id: 'sim-org',
    device_id: 'strap',
    window_start: end - 64_000,
    window_end: end,
    valid,
    invalid_reason: valid ? null : 'partial',
    partial: !valid,
    coverage: valid ? 0.98 : 0.5,
    longest_gap_ms: valid ? 1000 : 30_000,
    coherence,
    coherence_ratio: valid ? coherence! / (1 - coherence!) : null,
    peak_frequency_hz: valid ? 0.1 : null,
    breathing_rate_bpm: valid ? 6 + coherence! : null,
    mean_hr_bpm: valid ? 60 : null,
    rmssd_ms: valid ? 40 : null,
    sdnn_ms: valid ? 50 : null,
    pnn50_pct: valid ? 10 : null,
    beat_count: 70,
    artifact_ratio: 0,
    late_beat_count: 0,
    computed_at: end + 20_000,
    ...extra,
  };
}

const windows = [
  win('s-1', t0 - 5000, null), // a session's first minute: partial, in no figure
  win('s-1', t0, 0.3),
  win('s-1', t0 + 5000, 0.6),
  win('s-1', t0 + 10_000, 0.5),
  win('s-2', t0 + 600_000, 0.7),
  win('s-2', t0 + 605_000, 0.2),
];
// The same window again, written by a restarted worker: counted once under FINAL.
const replayed = [win('s-1', t0 + 5000, 0.6, { computed_at: t0 + 90_000 })];

/** The beats of one upload of a reading dated `recordedAt`, as the readings sink stores them. */
function upload(readingId: string, recordedAt: number, rr: number[], receivedAt: number): HeartReadingRow[] {
  return rr.map((rr_ms, beat_index) => ({
    event_time: recordedAt - rr.slice(beat_index + 1).reduce((a, b) => a + b, 0),
    org_id: 'sim-org',
    user_id: 'sim-user-3',
    device_id: 'strap',
    session_id: 's-1',
    reading_id: readingId,
    beat_index,
    rr_ms,
    hr_bpm: null,
    device_hrv_ms: null,
    device_coherence: null,
    battery_level_pct: null,
    source: 'sync' as const,
    received_at: receivedAt,
  }));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

for (const impl of await storeImplementations()) {
  describe(`what data scientists are told (${impl.kind})`, () => {
    let store: StoreClient;
    const run = (sql: string, params: Record<string, unknown> = {}) =>
      queryRows<Record<string, unknown>>(store.client, sql.replaceAll('attune.', `${store.database}.`), params);
    before(async () => {
      store = await impl.open();
      await migrate(store);
      await store.client.insert({ table: store.table(Tables.coherenceWindows), values: windows, format: 'JSONEachRow' });
      await store.client.insert({ table: store.table(Tables.coherenceWindows), values: replayed, format: 'JSONEachRow' });
    });
    after(() => impl.dispose());

    test("the README's examples run and give each session's and day's figures, a window stored twice counted once", async () => {
      const blocks = sqlBlocks(dsSection);
      assert.equal(blocks.length, 1, 'one sql block in the section');
      const [perSession, daily] = splitSqlStatements(blocks[0]);
      assert.ok(perSession && daily);
      const valid = windows.filter((w) => w.valid);
      const bySession = await run(perSession);
      assert.deepEqual(
        bySession.map((r) => r.session_id),
        ['s-1', 's-2'],
      );
      for (const r of bySession) {
        const ws = valid.filter((w) => w.session_id === r.session_id);
        assert.ok(Math.abs(Number(r.avg_coherence) - mean(ws.map((w) => w.coherence!))) < 1e-9, `${r.session_id} avg`);
        assert.equal(Number(r.peak), Math.max(...ws.map((w) => w.coherence!)));
        assert.equal(Number(r.seconds_high), ws.filter((w) => w.coherence! >= 0.5).length * 5);
        // The median, as GET /v1/sessions/{id}'s average_breathing_rate (two middle values: their mean).
        assert.ok(Math.abs(Number(r.breaths_per_min) - median(ws.map((w) => w.breathing_rate_bpm!))) < 1e-9);
      }
      const days = await run(daily);
      assert.equal(days.length, 1);
      assert.ok(Math.abs(Number(days[0].avg_coherence) - mean(valid.map((w) => w.coherence!))) < 1e-9);
      assert.equal(Number(days[0].seconds_high), valid.filter((w) => w.coherence! >= 0.5).length * 5);
    });

    test("store/README's daily rollup example runs with its parameters", async () => {
      const blocks = sqlBlocks(storeReadme);
      assert.equal(blocks.length, 1);
      const from = new Date(day).toISOString().slice(0, 10);
      const rows = await run(blocks[0], { org: 'sim-org', user: 'sim-user-3', from, to: from });
      assert.equal(rows.length, 1);
      assert.equal(Number(rows[0].window_count), windows.filter((w) => w.valid).length);
    });

    test("store/README's reading example pins its timestamp to UTC, and every example's timestamp parameter or cast does", async () => {
      // A bare DateTime64(3) parameter is read in the session's time zone (chDB: the process's
      // TZ): the same query returned 405, 172 or 0 beats of one session with TZ Europe/Berlin,
      // UTC and America/New_York.
      for (const [name, md] of [['README.md', readme], ['store/README.md', storeReadme]] as const) {
        for (const m of md.matchAll(/\{\w+:DateTime(?:64)?\([^)]*\)\}|toDateTime64\([^)]*\)|AS DateTime64\([^)]*\)/g)) {
          assert.match(m[0], /'UTC'/, `${name}: ${m[0]}`);
        }
      }
      const ts = /`(SELECT \* FROM \$\{store\.table\('heart_readings'\)\} FINAL[\s\S]*?)`/.exec(storeReadme);
      assert.ok(ts, 'the example is there');
      const from = t0 - 10_000;
      await store.client.insert({
        table: store.table(Tables.heartReadings),
        values: [...upload('r-early', from - 1, [900], from), ...upload('r-late', from + 1000, [900], from + 1000)],
        format: 'JSONEachRow',
      });
      const iso = new Date(from).toISOString().replace('T', ' ').replace('Z', '');
      const rows = await run(ts[1].replace("${store.table('heart_readings')}", `${store.database}.heart_readings`), { org: 'sim-org', user: 'sim-user-3', from: iso });
      assert.deepEqual(
        rows.map((r) => r.reading_id),
        ['r-late'],
      );
    });

    test('a reading uploaded again with other intervals keeps both uploads under FINAL, and the comment says how to keep one', async () => {
      const at = t0 + 30_000;
      await store.client.insert({ table: store.table(Tables.heartReadings), values: upload('r-fixed', at, [800, 810, 820], at + 100), format: 'JSONEachRow' });
      await store.client.insert({ table: store.table(Tables.heartReadings), values: upload('r-fixed', at, [805, 815], at + 200), format: 'JSONEachRow' });
      const final = await run(`SELECT beat_index, rr_ms FROM attune.heart_readings FINAL WHERE reading_id = 'r-fixed' ORDER BY event_time`);
      assert.equal(final.length, 5, 'the beats of both uploads (their event times differ)');
      const [{ comment }] = await run(`SELECT comment FROM system.tables WHERE database = {db:String} AND name = 'heart_readings'`, { db: store.database });
      const dedupe = /\(session_id, reading_id, received_at\) IN \(SELECT session_id, reading_id, max\(received_at\) \.\.\. GROUP BY session_id, reading_id\)/;
      assert.match(String(comment), dedupe);
      const latest = await run(
        `SELECT rr_ms FROM attune.heart_readings FINAL WHERE reading_id = 'r-fixed'
           AND (session_id, reading_id, received_at) IN (SELECT session_id, reading_id, max(received_at) FROM attune.heart_readings GROUP BY session_id, reading_id)
         ORDER BY event_time`,
      );
      assert.deepEqual(
        latest.map((r) => Number(r.rr_ms)),
        [805, 815],
      );
    });

    test('the comments 0021 corrected say what the code writes', async () => {
      const cols = await run(`SELECT table, name, comment FROM system.columns WHERE database = {db:String}`, { db: store.database });
      const comment = (table: string, name: string) => String(cols.find((c) => c.table === table && c.name === name)?.comment);
      const tables = await run(`SELECT name, comment FROM system.tables WHERE database = {db:String}`, { db: store.database });
      const tableComment = (name: string) => String(tables.find((t) => t.name === name)?.comment);

      // session_events.payload_json names every field the coherence worker writes.
      const payload = JSON.parse(thresholdReachedPayloadJson({ threshold: 0.4, holdMs: 10_000, streakStartMs: t0, windowEndMs: t0 + 10_000, coherence: 0.6, windowCount: 3 }));
      for (const field of Object.keys(payload)) assert.match(comment('session_events', 'payload_json'), new RegExp(`\\b${field}\\b`), field);
      // sessions is the latest state, not a history of settings.
      assert.doesNotMatch(tableComment('sessions'), /one row per version/);
      assert.match(tableComment('sessions'), /payload_json/);
      assert.match(comment('sessions', 'coherence_threshold'), /payload_json/);
      // repetition_count counts runs: "words words words words" is one repetition of four copies.
      const words = 'words words words words'.split(' ').map((text, i) => ({ text, startMs: i * 300, endMs: i * 300 + 250 }));
      const reps = detectRepetitions(words);
      assert.deepEqual(
        reps.map((r) => [r.text, r.occurrences]),
        [['words', 4]],
      );
      assert.match(comment('speech_summaries', 'repetition_count'), /"words words words words" is one/);
      assert.match(comment('speech_summaries', 'repetition_count'), /sum\(is_repetition\) is not this count/);
      // Fillers heard only in the audio may be named by the alignment.
      assert.match(comment('speech_fillers', 'filler'), /source acoustic\), um, uh or hmm when forced alignment named it, else filled_pause/);
      assert.match(comment('speech_segments', 'is_final'), /^True on every stored row/);
      assert.match(comment('speech_words', 'text'), /apostrophes inside the word/);
      // 0 fillers and repetitions, and NULL pitch, also mean "not looked for" (the session's settings).
      for (const c of ['filler_count', 'filler_rate_per_min', 'repetition_count']) assert.match(comment('speech_summaries', c), /enableFluencyAnalysis false/, c);
      assert.match(comment('speech_words', 'is_filler'), /enableFluencyAnalysis false/);
      assert.match(tableComment('speech_fillers'), /enableFluencyAnalysis false/);
      for (const c of ['pitch_mean_hz', 'volume_mean_dbfs']) assert.match(comment('speech_summaries', c), /enableProsodyAnalysis (was )?false/, c);
      assert.match(comment('speech_frames', 'pitch_mean_hz'), /enableProsodyAnalysis false/);
      // The guard's clock before any beat is the session's start (readings-sink.ts starts it
      // there): a reading held and quarantined then has that as session_clock_at, not NULL.
      const guard = new SessionClockGuard<string>({ horizonMs: 10_000, startMs: t0 });
      assert.equal(guard.offer(t0 + 27_000, t0 + 30_000, 1n, 'only reading').release.length, 0, 'held');
      assert.deepEqual(guard.drop(), ['only reading']);
      assert.equal(guard.clockMs, t0);
      assert.match(comment('heart_readings_quarantined', 'session_clock_at'), /before any, the session's start/);
      // computed_at of the window tables is the sink's clock (result-sinks.ts, group-windows-sink.ts).
      for (const t of ['coherence_windows', 'group_windows', 'group_participant_windows']) assert.match(comment(t, 'computed_at'), /sink's clock/, t);

      // The README names every table whose columns have no comment.
      const bare = [...new Set(cols.filter((c) => String(c.comment).trim() === '').map((c) => String(c.table)))].sort();
      const intro = dsSection.slice(0, dsSection.indexOf('| table |'));
      for (const t of bare) assert.match(intro, new RegExp('`' + t + '`'), `README names ${t} as without column comments`);
    });
  });
}
