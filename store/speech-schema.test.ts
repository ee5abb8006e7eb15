// The speech schema (schemas/clickhouse/0002_speech.sql) as a product: it applies on top of
// 0001 idempotently, it is documented, replays do not change answers, and the row types of
// rows.ts match the tables column for column. Run against every available store implementation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import { BatchWriter } from './batch-writer.js';
import { queryRows, type StoreClient } from './clickhouse.js';
import { defaultMigrationsDir, migrate, readMigrations } from './migrate.js';
import {
  SpeechFrameColumns,
  SpeechPauseColumns,
  SpeechScoreColumns,
  SpeechSegmentColumns,
  SpeechTables,
  SpeechWordColumns,
  type SpeechFrameRow,
  type SpeechPauseRow,
  type SpeechScoreRow,
  type SpeechSegmentRow,
  type SpeechWordRow,
} from './rows.js';
import { storeImplementations } from './test-stores.test-util.js';

const speechTableNames: string[] = Object.values(SpeechTables);
const t0 = Date.UTC(2026, 10, 30, 23, 59, 58, 250); // two seconds before a month boundary
const who = { org_id: 'org-a', user_id: 'user-1' };
const audio = { session_id: 'speech-1', stream_id: 'upload-1', ...who, audio_started_at: t0 };

const segmentRows = (computed_at: number, is_final: boolean): SpeechSegmentRow[] => [
  { ...audio, segment_index: 0, start_ms: 120, end_ms: 1_900, text: is_final ? 'um hello everyone' : 'um hello', word_count: is_final ? 3 : 2, is_final, model: 'moonshine-tiny', computed_at },
  { ...audio, segment_index: 1, start_ms: 2_400, end_ms: 3_700, text: 'i like tea', word_count: 3, is_final: true, model: 'moonshine-tiny', computed_at },
];

const wordRows = (): SpeechWordRow[] => {
  const word = (segment_index: number, word_index: number, text: string, start_ms: number, end_ms: number, filler = ''): SpeechWordRow => ({
    ...audio,
    segment_index,
    word_index,
    text,
    start_ms,
    end_ms,
    confidence: filler ? null : 0.875,
    is_filler: filler !== '',
    filler,
    is_repetition: false,
    timing_method: segment_index === 0 ? 'forced_alignment' : 'syllable_estimate',
    model: 'moonshine-tiny',
    computed_at: t0 + 5000,
  });
  return [
    word(0, 0, 'um', 150, 420, 'um'),
    word(0, 1, 'hello', 500, 900),
    word(0, 2, 'everyone', 950, 1_800),
    word(1, 0, 'i', 2_450, 2_600),
    word(1, 1, 'like', 2_600, 3_000), // a verb here, not a filler
    word(1, 2, 'tea', 3_000, 3_650),
  ];
};

const frameRows = (): SpeechFrameRow[] =>
  [0, 1, 2, 3].map((second_index) => ({
    ...audio,
    second_index,
    pitch_mean_hz: second_index === 2 ? null : 180.5 + second_index,
    pitch_sd_hz: second_index === 2 ? null : 12.25,
    volume_dbfs: second_index === 2 ? -120 : -23.5,
    voiced_ratio: second_index === 2 ? 0 : 0.625,
    speech_ratio: second_index === 2 ? 0.25 : 1,
    word_count: [2, 1, 1, 2][second_index],
    filler_count: second_index === 0 ? 1 : 0,
    rolling_wpm: 90 + second_index,
    computed_at: t0 + 5000,
  }));

const pauseRows = (): SpeechPauseRow[] => [
  { ...audio, start_ms: 1_800, end_ms: 2_450, duration_ms: 650, kind: 'natural', computed_at: t0 + 5000 },
];

const scoreRows = (): SpeechScoreRow[] =>
  ['rubric-v1', 'trained-2026-11'].map((model, i) => ({
    session_id: 'speech-1',
    stream_id: 'upload-1',
    ...who,
    model,
    overall: 72.5 + i,
    clarity: 80,
    pace: 65.25,
    engagement: 58,
    confidence: 70,
    features_json: '{"speaking_rate_wpm":96,"filler_rate_per_min":16}',
    weights_json: '{"pace":{"speaking_rate_wpm":0.5}}',
    factors_json: '{"pace":{"speaking_rate_wpm":-4.75}}',
    computed_at: t0 + 6000,
  }));

/** Each new table with rows for it, the row type's column list, and the natural key order. */
const fixtures: Array<{ table: string; rows: () => object[]; columns: string[]; orderBy: string }> = [
  { table: SpeechTables.speechSegments, rows: () => segmentRows(t0 + 5000, true), columns: SpeechSegmentColumns, orderBy: 'session_id, segment_index' },
  { table: SpeechTables.speechWords, rows: wordRows, columns: SpeechWordColumns, orderBy: 'session_id, segment_index, word_index' },
  { table: SpeechTables.speechFrames, rows: frameRows, columns: SpeechFrameColumns, orderBy: 'session_id, second_index' },
  { table: SpeechTables.speechPauses, rows: pauseRows, columns: SpeechPauseColumns, orderBy: 'session_id, start_ms' },
  { table: SpeechTables.speechScores, rows: scoreRows, columns: SpeechScoreColumns, orderBy: 'session_id, model' },
];

async function insert(store: StoreClient, table: string, values: object[]): Promise<void> {
  await store.client.insert({ table: store.table(table), values, format: 'JSONEachRow' });
}

/** Inserts the way the pipeline will: BatchWriter with the row type's column list, compact. */
async function insertCompact(store: StoreClient, table: string, columns: string[], rows: object[]): Promise<void> {
  const writer = new BatchWriter<object>({ store, table, columns, compact: true, log: silentLogger });
  await writer.add(rows);
  await writer.close();
}

async function snapshot(store: StoreClient, table: string, orderBy: string): Promise<unknown[]> {
  return queryRows(store.client, `SELECT * FROM ${store.table(table)} FINAL ORDER BY ${orderBy}`);
}

// Awaited before any test is registered: with --test-force-exit (scripts/run-tests.mjs) a file
// exits once its registered tests end, so suites registered after a later top-level await
// were never run (these files ran only their first tests).
const implementations = await storeImplementations();

test('0002_speech follows 0001_heart in the migrations folder', () => {
  const names = readMigrations(defaultMigrationsDir()).map((f) => f.name);
  assert.deepEqual(names.slice(0, 2), ['0001_heart', '0002_speech']);
});

for (const impl of implementations) {
  describe(`speech schema (${impl.kind})`, () => {
    let store: StoreClient;
    before(async () => {
      store = await impl.open();
    });
    after(() => impl.dispose());

    test('migrations 0001 and 0002 apply once, and running them again changes nothing', async () => {
      const first = await migrate(store);
      assert.deepEqual(first.applied.slice(0, 2), ['0001_heart', '0002_speech']);
      const listTables = () =>
        queryRows<{ name: string; create_table_query: string }>(
          store.client,
          'SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name',
          { db: store.database },
        );
      const before = await listTables();
      const names = before.map((t) => t.name);
      for (const table of [...speechTableNames, 'heart_readings', 'coherence_windows']) assert.ok(names.includes(table), `${table} exists`);
      assert.deepEqual((await migrate(store)).applied, []);
      assert.deepEqual(await listTables(), before);
      const recorded = await queryRows<{ name: string }>(
        store.client,
        `SELECT name FROM ${store.table('schema_migrations')} FINAL WHERE name IN ('0001_heart', '0002_speech') ORDER BY name`,
      );
      assert.deepEqual(recorded.map((r) => r.name), ['0001_heart', '0002_speech']);
    });

    test('every speech table and column has a comment, timestamps are DateTime64(3, UTC)', async () => {
      const tables = await queryRows<{ name: string; comment: string; engine: string; partition_key: string }>(
        store.client,
        'SELECT name, comment, engine, partition_key FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name) ORDER BY name',
        { db: store.database, names: speechTableNames },
      );
      assert.deepEqual(tables.map((t) => t.name), [...speechTableNames].sort());
      for (const t of tables) {
        assert.ok(t.comment.trim().length > 0, `table ${t.name} has a comment`);
        assert.equal(t.engine, 'ReplacingMergeTree', `${t.name} collapses replays`);
      }
      // 0013: a pause is a silent one (fillers cut out), and the schema a data scientist reads says so.
      assert.match(tables.find((t) => t.name === 'speech_pauses')!.comment, /^Silent pauses: .*fillers .* cut out/);
      // The tables that grow with the audio's length are partitioned by month.
      for (const name of ['speech_words', 'speech_frames', 'speech_segments', 'speech_pauses']) {
        assert.match(tables.find((t) => t.name === name)!.partition_key, /toYYYYMM\(audio_started_at\)/, name);
      }
      const columns = await queryRows<{ table: string; name: string; type: string; comment: string }>(
        store.client,
        'SELECT table, name, type, comment FROM system.columns WHERE database = {db:String} AND has({names:Array(String)}, table)',
        { db: store.database, names: speechTableNames },
      );
      assert.ok(columns.length > 90);
      const undocumented = columns.filter((c) => c.comment.trim().length === 0).map((c) => `${c.table}.${c.name}`);
      assert.deepEqual(undocumented, []);
      for (const c of columns) {
        if (c.name === 'org_id') assert.equal(c.type, 'LowCardinality(String)', `${c.table}.${c.name}`);
        if (c.name.endsWith('_at') || c.name.endsWith('_time')) {
          assert.match(c.type, /^(Nullable\()?DateTime64\(3, 'UTC'\)\)?$/, `${c.table}.${c.name}`);
        }
        if (c.name.endsWith('_ms') || c.name.endsWith('_index')) assert.match(c.type, /^(UInt32|Nullable\(UInt32\))$/, `${c.table}.${c.name}`);
      }
      for (const enumColumn of ['kind', 'status', 'stage', 'source', 'timing_method', 'filler', 'model']) {
        for (const c of columns.filter((x) => x.name === enumColumn)) {
          assert.equal(c.type, 'LowCardinality(String)', `${c.table}.${c.name}`);
        }
      }
    });

    test("the row types' column lists are the tables' insertable columns, in order", async () => {
      const columns = await queryRows<{ table: string; name: string; default_kind: string }>(
        store.client,
        'SELECT table, name, default_kind FROM system.columns WHERE database = {db:String} AND has({names:Array(String)}, table) ORDER BY table, position',
        { db: store.database, names: speechTableNames },
      );
      for (const { table, columns: list, rows } of fixtures) {
        const insertable = columns.filter((c) => c.table === table && c.default_kind !== 'ALIAS' && c.default_kind !== 'MATERIALIZED');
        assert.deepEqual(list, insertable.map((c) => c.name), `${table} columns`);
        for (const row of rows()) assert.deepEqual(Object.keys(row), list, `${table} fixture has exactly the columns`);
      }
    });

    test('replaying the same rows leaves every FINAL answer unchanged', async () => {
      for (const { table, rows, columns, orderBy } of fixtures) {
        await insertCompact(store, table, columns, rows());
        const once = await snapshot(store, table, orderBy);
        assert.equal(once.length, rows().length, `${table} holds the rows`);
        await insert(store, table, rows());
        await insertCompact(store, table, columns, rows());
        assert.deepEqual(await snapshot(store, table, orderBy), once, `${table} after replay`);
      }
      // Values survive the round trip, NULLs, quotes and Bools included.
      const words = await queryRows<{ text: string; is_filler: boolean; filler: string; confidence: number | null; timing_method: string }>(
        store.client,
        `SELECT text, is_filler, filler, confidence, timing_method FROM ${store.table(SpeechTables.speechWords)} FINAL ORDER BY segment_index, word_index`,
      );
      assert.deepEqual(words.map((w) => w.text), ['um', 'hello', 'everyone', 'i', 'like', 'tea']);
      assert.deepEqual(words.map((w) => w.is_filler), [true, false, false, false, false, false]);
      assert.equal(words[0].confidence, null);
      assert.equal(words[1].confidence, 0.875);
      assert.deepEqual([...new Set(words.map((w) => w.timing_method))], ['forced_alignment', 'syllable_estimate']);
      const frames = await queryRows<{ second_index: number; frame_time: string; pitch_mean_hz: number | null }>(
        store.client,
        `SELECT second_index, frame_time, pitch_mean_hz FROM ${store.table(SpeechTables.speechFrames)} FINAL ORDER BY second_index`,
      );
      assert.deepEqual(
        frames.map((f) => f.frame_time),
        ['2026-11-30 23:59:58.250', '2026-11-30 23:59:59.250', '2026-12-01 00:00:00.250', '2026-12-01 00:00:01.250'],
      );
      assert.deepEqual(frames.map((f) => f.pitch_mean_hz), [180.5, 181.5, null, 183.5]);
    });

    test('newer versions replace older ones under FINAL, whatever order they arrive in', async () => {
      // A live partial result for segment 0 arriving late must not replace the final one.
      await insert(store, SpeechTables.speechSegments, segmentRows(t0 + 1000, false));
      await insert(store, SpeechTables.speechSegments, segmentRows(t0 + 7000, true));
      await insert(store, SpeechTables.speechSegments, segmentRows(t0 + 1500, false));

      const segments = await queryRows<{ text: string; is_final: boolean }>(
        store.client,
        `SELECT text, is_final FROM ${store.table(SpeechTables.speechSegments)} FINAL WHERE session_id = 'speech-1' ORDER BY segment_index`,
      );
      assert.deepEqual(segments, [
        { text: 'um hello everyone', is_final: true },
        { text: 'i like tea', is_final: true },
      ]);
      const scores = await queryRows<{ model: string; overall: number }>(
        store.client,
        `SELECT model, overall FROM ${store.table(SpeechTables.speechScores)} FINAL WHERE session_id = 'speech-1' ORDER BY model`,
      );
      assert.deepEqual(scores, [
        { model: 'rubric-v1', overall: 72.5 },
        { model: 'trained-2026-11', overall: 73.5 },
      ]);
    });
  });
}
