// Versioned schema migrations: schemas/clickhouse/NNNN_name.sql, applied in version order,
// each recorded with its checksum in <database>.schema_migrations.
//  - An applied file must never change (a changed checksum means the live schema no longer
//    matches the file): migrate refuses with a coded error instead of guessing.
//  - Every statement is idempotent DDL (IF NOT EXISTS), and a file is recorded only after
//    all its statements ran, so a run that died half-way is finished by running again, and
//    two processes migrating at once do no harm (schema_migrations is a
//    ReplacingMergeTree on version, read with FINAL).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { queryRows, type StoreClient } from './clickhouse.js';
import { splitSqlStatements } from './sql-split.js';

export interface MigrationFile {
  /** The numeric prefix, e.g. '0001'. */
  version: string;
  /** The file name without `.sql`, e.g. '0001_heart'. */
  name: string;
  path: string;
  /** sha-256 (hex) of the file with LF line endings, before the database name is substituted. */
  checksum: string;
  /** The file's text, as read. */
  text: string;
}

export interface MigrateOptions {
  /** Folder of NNNN_name.sql files; the repository's schemas/clickhouse by default. */
  dir?: string;
  log?: Logger;
}

const fileNamePattern = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const placeholderPattern = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;

/** The repository's migrations folder, from the source tree or from a build under dist/. */
export function defaultMigrationsDir(): string {
  const candidates = ['../schemas/clickhouse/', '../../schemas/clickhouse/'].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  return candidates.find((dir) => existsSync(dir)) ?? candidates[0];
}

export function checksumOf(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

/** The migration files of `dir`, in version order. */
export function readMigrations(dir: string): MigrationFile[] {
  const files: MigrationFile[] = [];
  const seen = new Map<string, string>();
  for (const entry of readdirSync(dir).sort()) {
    if (!entry.endsWith('.sql')) continue;
    const m = fileNamePattern.exec(entry);
    if (!m) {
      throw new AttuneError('internal_error', `migration file name ${entry} does not match NNNN_name.sql`, [
        { field: entry, reason: 'bad_migration_name' },
      ]);
    }
    const version = m[1];
    const other = seen.get(version);
    if (other) {
      throw new AttuneError('internal_error', `migrations ${other} and ${entry} share version ${version}`, [
        { field: entry, reason: 'duplicate_migration_version' },
      ]);
    }
    seen.set(version, entry);
    const path = join(dir, entry);
    const text = readFileSync(path, 'utf8');
    files.push({ version, name: entry.slice(0, -'.sql'.length), path, checksum: checksumOf(text), text });
  }
  return files;
}

/** The statements of a migration for `database`: placeholders substituted, split on `;`. */
export function migrationStatements(file: Pick<MigrationFile, 'name' | 'text'>, database: string): string[] {
  const sql = file.text.replace(placeholderPattern, (_, key: string) => {
    if (key === 'database') return database;
    throw new AttuneError('internal_error', `unknown placeholder {{${key}}} in migration ${file.name}`, [
      { field: file.name, reason: 'unknown_placeholder' },
    ]);
  });
  return splitSqlStatements(sql);
}

interface AppliedRow {
  version: string;
  name: string;
  checksum: string;
}

export async function migrate(store: StoreClient, opts: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const dir = opts.dir ?? defaultMigrationsDir();
  const log = opts.log?.child({ component: 'migrate' });
  const files = readMigrations(dir);
  const migrationsTable = store.table('schema_migrations');

  await store.client.command({
    query: `CREATE TABLE IF NOT EXISTS ${migrationsTable}
(
    version String COMMENT 'Numeric prefix of the migration file, e.g. 0001; the key.',
    name String COMMENT 'Migration file name without .sql, e.g. 0001_heart.',
    checksum String COMMENT 'sha-256 (hex) of the file with LF line endings, before the database name is substituted. A file whose checksum changed after it was applied is refused.',
    statement_count UInt32 COMMENT 'Number of SQL statements the file ran.',
    applied_at DateTime64(3, 'UTC') COMMENT 'When the migration finished (UTC); the ReplacingMergeTree version.'
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
COMMENT 'Schema migrations applied to this database by store/migrate.ts, one row per file of schemas/clickhouse.'`,
  });

  const appliedRows = await queryRows<AppliedRow>(
    store.client,
    `SELECT version, name, checksum FROM ${migrationsTable} FINAL ORDER BY version`,
  );
  const appliedByVersion = new Map(appliedRows.map((r) => [r.version, r]));

  // Refuse before applying anything: a changed file means the schema in the database is not
  // the one the code was written against.
  for (const file of files) {
    const applied = appliedByVersion.get(file.version);
    if (applied && applied.checksum !== file.checksum) {
      throw new AttuneError(
        'conflict',
        `migration ${file.name} was changed after it was applied to ${store.database}; add a new migration instead`,
        [
          {
            field: file.name,
            reason: 'migration_checksum_mismatch',
            applied_name: applied.name,
            applied_checksum: applied.checksum,
            file_checksum: file.checksum,
          },
        ],
      );
    }
  }
  const known = new Set(files.map((f) => f.version));
  for (const row of appliedRows) {
    if (!known.has(row.version)) {
      log?.warn({ version: row.version, name: row.name }, 'database has a migration this code does not know (newer code ran here?)');
    }
  }

  const applied: string[] = [];
  for (const file of files) {
    if (appliedByVersion.has(file.version)) continue;
    const statements = migrationStatements(file, store.database);
    const started = Date.now();
    for (const statement of statements) {
      // A backfill or rebuild (0011, 0017) can outlast the server client's 30 s request timeout.
      await (store.longRunning ?? store.client).command({ query: statement });
    }
    await store.client.insert({
      table: migrationsTable,
      format: 'JSONEachRow',
      values: [
        {
          version: file.version,
          name: file.name,
          checksum: file.checksum,
          statement_count: statements.length,
          applied_at: Date.now(),
        },
      ],
    });
    applied.push(file.name);
    log?.info({ migration: file.name, statements: statements.length, ms: Date.now() - started }, 'migration applied');
  }
  return { applied };
}
