// The Postgres migration runner on PGlite, with migration folders made by the test: files are
// applied once each in version order, an edited applied file is refused before anything runs,
// a failing file leaves nothing behind, and bad file names are refused.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAttuneError } from '../../lib/errors.js';
import { createPgliteClient, type SqlClient } from './client.js';
import { checksumOf, defaultPgMigrationsDir, migratePostgres, readPgMigrations } from './migrate.js';

describe('postgres migrations (pglite)', () => {
  let sql: SqlClient;
  const dirs: string[] = [];
  const folder = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'attune-pg-migrations-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };
  const tables = async () =>
    (await sql.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)).rows.map((r) => r.t);

  before(async () => {
    sql = await createPgliteClient();
  });
  beforeEach(async () => {
    await sql.exec('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  });
  after(async () => {
    await sql.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('applies pending files once each, in version order, recording their checksums', async () => {
    const v1 = 'CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);';
    const dir = folder({ '0002_b.sql': 'CREATE TABLE b (a_id int REFERENCES a (id));', '0001_a.sql': v1, 'README.md': 'not a migration' });
    assert.deepEqual((await migratePostgres(sql, { dir })).applied, ['0001_a', '0002_b']);
    assert.deepEqual(await tables(), ['a', 'b', 'schema_migrations']);
    assert.deepEqual((await migratePostgres(sql, { dir })).applied, []);
    const rows = (await sql.query<{ version: string; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version')).rows;
    assert.deepEqual(rows.map((r) => [r.version, r.name]), [['0001', '0001_a'], ['0002', '0002_b']]);
    assert.equal(rows[0].checksum, checksumOf(v1));
    assert.equal(checksumOf('x\r\ny'), checksumOf('x\ny'), 'line endings do not change a checksum');

    writeFileSync(join(dir, '0003_c.sql'), 'ALTER TABLE a ADD COLUMN note text;');
    assert.deepEqual((await migratePostgres(sql, { dir })).applied, ['0003_c']);
  });

  test('an edited applied migration is refused before any pending one runs', async () => {
    const dir = folder({ '0001_a.sql': 'CREATE TABLE a (id int);' });
    await migratePostgres(sql, { dir });
    writeFileSync(join(dir, '0001_a.sql'), 'CREATE TABLE a (id bigint);');
    writeFileSync(join(dir, '0002_b.sql'), 'CREATE TABLE b (id int);');
    await assert.rejects(
      migratePostgres(sql, { dir }),
      (e) => isAttuneError(e) && e.code === 'conflict' && e.details[0]?.reason === 'migration_checksum_mismatch' && e.details[0]?.field === '0001_a',
    );
    assert.deepEqual(await tables(), ['a', 'schema_migrations'], '0002 did not run');
  });

  test('a failing migration leaves nothing behind (one transaction), and the next run starts over', async () => {
    const dir = folder({ '0001_a.sql': 'CREATE TABLE a (id int);', '0002_bad.sql': 'CREATE TABLE b (id int);\nSELECT * FROM no_such_table;' });
    await assert.rejects(migratePostgres(sql, { dir }), (e) => (e as { code?: string }).code === '42P01');
    assert.deepEqual(await tables(), [], 'not even 0001 or schema_migrations');
    writeFileSync(join(dir, '0002_bad.sql'), 'CREATE TABLE b (id int);');
    assert.deepEqual((await migratePostgres(sql, { dir })).applied, ['0001_a', '0002_bad']);
  });

  test('bad file names and shared versions are refused', () => {
    assert.throws(() => readPgMigrations(folder({ '1_a.sql': '' })), (e) => isAttuneError(e) && e.details[0]?.reason === 'bad_migration_name');
    assert.throws(() => readPgMigrations(folder({ '0001_A.sql': '' })), (e) => isAttuneError(e) && e.details[0]?.reason === 'bad_migration_name');
    assert.throws(() => readPgMigrations(folder({ '0001_a.sql': '', '0001_b.sql': '' })), (e) => isAttuneError(e) && e.details[0]?.reason === 'duplicate_migration_version');
  });

  test("the repository's migrations are well named and apply on an empty database", async () => {
    const files = readPgMigrations(defaultPgMigrationsDir());
    assert.ok(files.length >= 1 && files[0].name === '0001_entities');
    assert.deepEqual((await migratePostgres(sql)).applied, files.map((f) => f.name));
  });
});
