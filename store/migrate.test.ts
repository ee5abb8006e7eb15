import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAttuneError } from '../lib/errors.js';
import { queryRows, toNumber } from './clickhouse.js';
import { checksumOf, defaultMigrationsDir, migrate, migrationStatements, readMigrations } from './migrate.js';
import { storeImplementations } from './test-stores.test-util.js';

const scratchDirs: string[] = [];
/** A copy of the repository's migrations that a test may change. */
function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'attune-migrations-'));
  cpSync(defaultMigrationsDir(), dir, { recursive: true });
  scratchDirs.push(dir);
  return dir;
}
function removeScratchDirs(): void {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
after(removeScratchDirs);

// Awaited before any test is registered: with --test-force-exit (scripts/run-tests.mjs) a file
// exits once its registered tests end, so suites registered after a later top-level await
// were never run (these files ran only their first tests).
const implementations = await storeImplementations();

test('migration files are read in version order with LF-normalised checksums', () => {
  const files = readMigrations(defaultMigrationsDir());
  assert.ok(files.length >= 1);
  assert.equal(files[0].name, '0001_heart');
  assert.deepEqual(files.map((f) => f.version), [...files.map((f) => f.version)].sort());
  assert.equal(checksumOf('a\r\nb\n'), checksumOf('a\nb\n'));
  assert.notEqual(checksumOf('a\nb\n'), checksumOf('a\nc\n'));
});

test('the database placeholder is substituted and unknown placeholders are refused', () => {
  const statements = migrationStatements(
    { name: 'x', text: "CREATE TABLE {{database}}.t (a String COMMENT 'a; {{ database }}');\n-- done;\n" },
    'db1',
  );
  assert.deepEqual(statements, ["CREATE TABLE db1.t (a String COMMENT 'a; db1')"]);
  assert.throws(
    () => migrationStatements({ name: 'x', text: 'SELECT {{tenant}}' }, 'db1'),
    (err: unknown) => isAttuneError(err) && /unknown placeholder/.test(err.message),
  );
});

test('badly named and duplicate-version files are refused', () => {
  const dir = copyOfMigrations();
  writeFileSync(join(dir, '0001_again.sql'), 'SELECT 1;');
  assert.throws(() => readMigrations(dir), /share version 0001/);
  rmSync(join(dir, '0001_again.sql'));
  writeFileSync(join(dir, 'new-table.sql'), 'SELECT 1;');
  assert.throws(() => readMigrations(dir), /does not match NNNN_name.sql/);
});

for (const impl of implementations) {
  describe(`migrate (${impl.kind})`, () => {
    after(async () => {
      removeScratchDirs();
      await impl.dispose();
    });

    test('applies pending migrations once, records them, and is a no-op the second time', async () => {
      const store = await impl.open();
      const first = await migrate(store);
      assert.deepEqual(first.applied, readMigrations(defaultMigrationsDir()).map((f) => f.name));
      const second = await migrate(store);
      assert.deepEqual(second.applied, []);

      const recorded = await queryRows<{ version: string; name: string; checksum: string; statement_count: number | string }>(
        store.client,
        `SELECT version, name, checksum, statement_count FROM ${store.table('schema_migrations')} FINAL ORDER BY version`,
      );
      const files = readMigrations(defaultMigrationsDir());
      assert.deepEqual(
        recorded.map((r) => [r.version, r.name, r.checksum]),
        files.map((f) => [f.version, f.name, f.checksum]),
      );
      assert.equal(toNumber(recorded[0].statement_count), migrationStatements(files[0], store.database).length);

      const tables = await queryRows<{ name: string }>(
        store.client,
        'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name',
        { db: store.database },
      );
      for (const t of ['heart_readings', 'coherence_windows', 'sessions', 'session_events', 'user_daily_coherence', 'schema_migrations']) {
        assert.ok(tables.some((r) => r.name === t), `table ${t} exists`);
      }
      // Entities live in PostgreSQL since 0005: ClickHouse keeps facts and the sessions dimension.
      // The daily rollup is a view over coherence_windows FINAL since 0006: no materialized view.
      for (const t of ['devices', 'speech_sessions', 'speech_uploads', 'user_daily_coherence_mv']) {
        assert.ok(!tables.some((r) => r.name === t), `table ${t} is gone`);
      }
      await store.close();
    });

    test('applies a new migration on top of applied ones, in order', async () => {
      const store = await impl.open();
      const dir = copyOfMigrations();
      await migrate(store, { dir });
      writeFileSync(
        join(dir, '9002_later.sql'),
        "CREATE TABLE IF NOT EXISTS {{database}}.later (a String COMMENT 'a') ENGINE = MergeTree ORDER BY a COMMENT 'later';",
      );
      writeFileSync(
        join(dir, '9001_extra.sql'),
        "-- adds a table; the ';' in this comment must not split anything\nCREATE TABLE IF NOT EXISTS {{database}}.extra (a String COMMENT 'a;b') ENGINE = MergeTree ORDER BY a COMMENT 'extra';\n",
      );
      const result = await migrate(store, { dir });
      assert.deepEqual(result.applied, ['9001_extra', '9002_later']);
      assert.deepEqual((await migrate(store, { dir })).applied, []);
      const comments = await queryRows<{ comment: string }>(
        store.client,
        "SELECT comment FROM system.columns WHERE database = {db:String} AND table = 'extra'",
        { db: store.database },
      );
      assert.deepEqual(comments, [{ comment: 'a;b' }]);
      await store.close();
    });

    test('a store upgraded from an older version, with rows in it, ends with the schema of a fresh one', async () => {
      // Data scientists read the schema (types, defaults, column order, comments, keys, skip
      // indexes, projections); an upgrade must not leave it different from a fresh install.
      // Cut points: before the entities moved to PostgreSQL (0005), before the projections and
      // the terms index (0008-0012), and before the newest files.
      const schemaOf = async (store: Awaited<ReturnType<typeof impl.open>>) => {
        const db = store.database;
        const strip = (v: unknown) => String(v).replaceAll(`${db}.`, 'DB.').replace(/UUID '[^']*'/g, "UUID ''");
        const q = async (sql: string) => (await queryRows<Record<string, unknown>>(store.client, sql, { db })).map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'string' ? strip(v) : v)));
        return {
          tables: await q('SELECT name, engine, create_table_query, comment, sorting_key, partition_key, primary_key FROM system.tables WHERE database = {db:String} ORDER BY name'),
          columns: await q('SELECT table, name, position, type, default_kind, default_expression, comment FROM system.columns WHERE database = {db:String} ORDER BY table, position'),
          indexes: await q('SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices WHERE database = {db:String} ORDER BY table, name'),
          projections: await q('SELECT table, name FROM system.projections WHERE database = {db:String} ORDER BY table, name'),
        };
      };
      const fresh = await impl.open();
      await migrate(fresh);
      const expected = await schemaOf(fresh);
      await fresh.close();
      const files = readMigrations(defaultMigrationsDir());
      for (const upTo of ['0004', '0010', files.at(-2)!.version]) {
        const store = await impl.open();
        const dir = mkdtempSync(join(tmpdir(), 'attune-migrations-'));
        scratchDirs.push(dir);
        for (const f of files.filter((x) => x.version <= upTo)) cpSync(f.path, join(dir, `${f.name}.sql`));
        await migrate(store, { dir });
        await store.client.command({
          query: `INSERT INTO ${store.table('coherence_windows')} (session_id, user_id, org_id, device_id, window_start, window_end, valid, coherence, coherence_ratio, beat_count, artifact_ratio, late_beat_count, computed_at)
                  VALUES ('s', 'u', 'o', 'd', '2026-01-01 00:00:00', '2026-01-01 00:01:04', true, 0.5, 1, 70, 0, 0, '2026-01-01 00:02:00')`,
        });
        await store.client.command({
          query: `INSERT INTO ${store.table('speech_segments')} (session_id, org_id, user_id, audio_started_at, segment_index, start_ms, end_ms, text, word_count, is_final, model, computed_at)
                  VALUES ('s', 'o', 'u', '2026-01-01 00:00:00', 0, 0, 1000, 'Hello, world', 2, true, 'm', '2026-01-01 00:02:00')`,
        });
        await migrate(store);
        const got = await schemaOf(store);
        for (const k of Object.keys(expected) as Array<keyof typeof expected>) assert.deepEqual(got[k], expected[k], `upgraded from ${upTo}: ${k}`);
        await store.close();
      }
    });

    test('refuses with a coded error when an applied file was changed, and applies nothing', async () => {
      const store = await impl.open();
      const dir = copyOfMigrations();
      await migrate(store, { dir });
      const heart = join(dir, '0001_heart.sql');
      writeFileSync(heart, `${readFileSync(heart, 'utf8')}\n-- an innocent-looking edit\n`);
      writeFileSync(
        join(dir, '9001_extra.sql'),
        "CREATE TABLE IF NOT EXISTS {{database}}.extra (a String COMMENT 'a') ENGINE = MergeTree ORDER BY a COMMENT 'extra';",
      );
      await assert.rejects(migrate(store, { dir }), (err: unknown) => {
        assert.ok(isAttuneError(err));
        assert.equal(err.code, 'conflict');
        assert.equal(err.details[0].reason, 'migration_checksum_mismatch');
        assert.equal(err.details[0].field, '0001_heart');
        return true;
      });
      const extra = await queryRows(store.client, "SELECT name FROM system.tables WHERE database = {db:String} AND name = 'extra'", {
        db: store.database,
      });
      assert.equal(extra.length, 0, 'the pending migration was not applied');
      await store.close();
    });

    test('two migrators racing on one database both succeed and leave one record per file', async () => {
      const store = await impl.open();
      const [a, b] = await Promise.all([migrate(store), migrate(store)]);
      assert.ok(a.applied.length + b.applied.length >= 1);
      const rows = await queryRows<{ n: number | string }>(
        store.client,
        `SELECT count() AS n FROM ${store.table('schema_migrations')} FINAL`,
      );
      assert.equal(toNumber(rows[0].n), readMigrations(defaultMigrationsDir()).length);
      await store.close();
    });
  });
}
