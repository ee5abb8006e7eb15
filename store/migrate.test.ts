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
