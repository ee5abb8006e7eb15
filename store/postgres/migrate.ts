// Versioned Postgres migrations: schemas/postgres/NNNN_name.sql, applied in version order and
// recorded with their checksum in schema_migrations.
//  - The whole run is one transaction under a transaction-level advisory lock: two processes
//    migrating at once (two `attune` roles starting together) do not interleave; the second
//    waits for the first and then finds nothing to do. PostgreSQL DDL is transactional, so a
//    run that fails half-way leaves nothing behind and the next run starts over.
//  - An applied file must never change: a changed checksum means the database's schema is not
//    the one the code was written against, and migrate refuses (AttuneError 'conflict', reason
//    migration_checksum_mismatch) before applying anything.
//  - A file needing to run outside a transaction (CREATE INDEX CONCURRENTLY) is not supported
//    yet; none does.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttuneError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { SqlClient } from './client.js';

export interface PgMigrationFile {
  /** The numeric prefix, e.g. '0001'. */
  version: string;
  /** The file name without `.sql`, e.g. '0001_entities'. */
  name: string;
  /** sha-256 (hex) of the file with LF line endings. */
  checksum: string;
  text: string;
}

export interface PgMigrateOptions {
  /** Folder of NNNN_name.sql files; the repository's schemas/postgres by default. */
  dir?: string;
  log?: Logger;
}

/** Key of the advisory lock held while migrating: the first 8 bytes of sha-256('attune:schema_migrations'). */
export const MIGRATION_LOCK_KEY = BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update('attune:schema_migrations').digest('hex').slice(0, 16))).toString();

const fileNamePattern = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The repository's Postgres migrations folder, from the source tree or from a build under dist/. */
export function defaultPgMigrationsDir(): string {
  const candidates = ['../../schemas/postgres/', '../../../schemas/postgres/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((dir) => existsSync(dir)) ?? candidates[0];
}

export function checksumOf(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

/** The migration files of `dir`, in version order; a bad name or a shared version is an error. */
export function readPgMigrations(dir: string): PgMigrationFile[] {
  const files: PgMigrationFile[] = [];
  const seen = new Map<string, string>();
  for (const entry of readdirSync(dir).sort()) {
    if (!entry.endsWith('.sql')) continue;
    const m = fileNamePattern.exec(entry);
    if (!m) {
      throw new AttuneError('internal_error', `migration file name ${entry} does not match NNNN_name.sql`, [{ field: entry, reason: 'bad_migration_name' }]);
    }
    const other = seen.get(m[1]);
    if (other) {
      throw new AttuneError('internal_error', `migrations ${other} and ${entry} share version ${m[1]}`, [{ field: entry, reason: 'duplicate_migration_version' }]);
    }
    seen.set(m[1], entry);
    const text = readFileSync(join(dir, entry), 'utf8');
    files.push({ version: m[1], name: entry.slice(0, -'.sql'.length), checksum: checksumOf(text), text });
  }
  return files;
}

interface AppliedRow {
  version: string;
  name: string;
  checksum: string;
}

export async function migratePostgres(sql: SqlClient, opts: PgMigrateOptions = {}): Promise<{ applied: string[] }> {
  const files = readPgMigrations(opts.dir ?? defaultPgMigrationsDir());
  const log = opts.log?.child({ component: 'migrate-postgres' });
  return sql.transaction(async (tx) => {
    // Before anything else, even CREATE TABLE IF NOT EXISTS: two of those at once can both
    // miss the table and one then fails on the catalog's unique index.
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations
(
    version text NOT NULL PRIMARY KEY CHECK (version ~ '^[0-9]{4}$'),
    name text NOT NULL,
    checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL CHECK (duration_ms >= 0)
);
COMMENT ON TABLE schema_migrations IS 'Migrations of schemas/postgres applied by store/postgres/migrate.ts, one row per file, with the sha-256 of its text.'`);
    const { rows } = await tx.query<AppliedRow>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    const appliedByVersion = new Map(rows.map((r) => [r.version, r]));
    for (const file of files) {
      const applied = appliedByVersion.get(file.version);
      if (applied && applied.checksum !== file.checksum) {
        throw new AttuneError('conflict', `migration ${file.name} was changed after it was applied; add a new migration instead`, [
          { field: file.name, reason: 'migration_checksum_mismatch', applied_name: applied.name, applied_checksum: applied.checksum, file_checksum: file.checksum },
        ]);
      }
    }
    const known = new Set(files.map((f) => f.version));
    for (const r of rows) {
      if (!known.has(r.version)) log?.warn({ version: r.version, name: r.name }, 'database has a migration this code does not know (newer code ran here?)');
    }
    const applied: string[] = [];
    for (const file of files) {
      if (appliedByVersion.has(file.version)) continue;
      const started = Date.now();
      await tx.exec(file.text);
      const ms = Date.now() - started;
      await tx.query('INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)', [file.version, file.name, file.checksum, ms]);
      applied.push(file.name);
      log?.info({ migration: file.name, ms }, 'migration applied');
    }
    return { applied };
  });
}
