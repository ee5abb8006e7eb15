// The one interface the Postgres repositories and the migration runner talk to, and its two
// adapters: a `pg` Pool on a PostgreSQL server (DATABASE_URL; production, CI, scale-out) and
// PGlite in-process (the embedded default, a data folder under ATTUNE_DATA_DIR). The same SQL
// runs on both. Each adapter's package is loaded by dynamic import inside its factory, so a
// process that uses the other one (or none) never loads it.
//
// Values: parameters are $1, $2, ... (both adapters). timestamptz arrives as a Date, jsonb as
// the parsed value, int8 as a string from `pg` (a number or bigint elsewhere): repositories
// convert with Number(). Pass timestamps as Date objects.
import { hostname } from 'node:os';
import { mkdirSync } from 'node:fs';
import { closeTree, DIR_MODE } from '../../lib/data-dir.js';
import { AttuneError } from '../../lib/errors.js';

export interface SqlResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted (0 for a SELECT on some drivers: use rows.length). */
  rowCount: number;
}

/** What a statement inside a transaction can do (no nested transactions). */
export interface SqlQueryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlClient extends SqlQueryable {
  readonly kind: 'pg' | 'pglite';
  /**
   * Runs `fn` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it
   * throws (the error is rethrown). Inside, use only `tx`: on PGlite the client itself waits
   * for the transaction to end, so a call on it from inside would never return.
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface PgClientOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Connections in the pool (default 10). */
  max?: number;
  /** Name shown in pg_stat_activity (default attune@<host>). */
  applicationName?: string;
}

/** Seconds a client is told to wait when PostgreSQL cannot be reached (Retry-After). */
export const DATABASE_RETRY_AFTER_S = 5;

/** Network failures of the connection itself (not an answer from the server). */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/** SQLSTATEs of a server that cannot serve now: connection exceptions (class 08), shutdown, start-up, too many connections. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** pg and pg-pool's own messages for a lost or timed-out connection. */
const LOST = /^Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/;

/**
 * Whether `err` says PostgreSQL could not be reached (refused, reset, timed out, shutting
 * down), as opposed to an answer to the statement (a constraint, a syntax error).
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08'))) return true;
  if (err instanceof AggregateError && err.errors.some(isDatabaseUnreachable)) return true;
  return LOST.test(err.message);
}

/**
 * `err` as `unavailable` / database_unavailable (a 503 with Retry-After on HTTP, where it was
 * a 500 internal_error) when it says PostgreSQL could not be reached; anything else as it is.
 */
export function databaseError(err: unknown): unknown {
  if (!isDatabaseUnreachable(err)) return err;
  // The client's message names no host or port (the driver's, in `cause`, is for the logs).
  const e = new AttuneError('unavailable', 'PostgreSQL is unavailable; retry later', [
    { reason: 'database_unavailable', retry_after_s: DATABASE_RETRY_AFTER_S },
  ]);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}

/** A `pg` Pool on a PostgreSQL server. */
export async function createPgClient(opts: PgClientOptions): Promise<SqlClient> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? `attune@${hostname()}`,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  // An idle connection that the server drops (restart, network) must not crash the process;
  // the pool replaces it on the next checkout.
  pool.on('error', () => {});
  // A server that cannot be reached is `unavailable` (database_unavailable): a 503 with
  // Retry-After on HTTP, not a 500 (until 12-06, a device syncing while PostgreSQL restarted
  // got 500 internal_error, which it must not retry).
  const wrap = (q: { query: (text: string, values?: unknown[]) => Promise<{ rows: unknown[]; rowCount: number | null }> }): SqlQueryable => ({
    async query<R>(sql: string, params: readonly unknown[] = []) {
      const r = await q.query(sql, params as unknown[]).catch((err: unknown) => Promise.reject(databaseError(err)));
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    async exec(sql: string) {
      // No parameters: the simple query protocol, which runs several statements.
      await q.query(sql).catch((err: unknown) => Promise.reject(databaseError(err)));
    },
  });
  const base = wrap(pool);
  return {
    kind: 'pg',
    ...base,
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const conn = await pool.connect().catch((err: unknown) => Promise.reject(databaseError(err)));
      // A checked-out client whose connection dies emits 'error', and pg-pool listens only while
      // it is idle: without a listener here, PostgreSQL dropping the connection during a
      // transaction threw an uncaught 'error' and ended the process (found in the review of
      // 12-06). The statement in flight rejects with the same error, handled below.
      let dead = false;
      const onError = () => {
        dead = true;
      };
      conn.on('error', onError);
      let broken = false;
      // BEGIN and COMMIT too: a connection the server dropped since the pool handed it out fails
      // there first (until the review of 12-06 that was the driver's error, a 500).
      const control = (statement: string) => conn.query(statement).catch((err: unknown) => Promise.reject(databaseError(err)));
      try {
        await control('BEGIN');
        const out = await fn(wrap(conn));
        await control('COMMIT');
        return out;
      } catch (err) {
        if (dead) broken = true;
        else {
          await conn.query('ROLLBACK').catch(() => {
            broken = true;
          });
        }
        throw err;
      } finally {
        conn.removeListener('error', onError);
        // A connection whose ROLLBACK failed (or that died) is in an unknown state: destroy it.
        conn.release(broken || dead);
      }
    },
    async close() {
      await pool.end();
    },
  };
}

export interface PgliteClientOptions {
  /** Folder of the database files; in memory when absent (tests). */
  dataDir?: string;
}

/** PGlite (PostgreSQL compiled to WebAssembly) in this process: one connection, queued. */
export async function createPgliteClient(opts: PgliteClientOptions = {}): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true, mode: DIR_MODE });
  const db = await PGlite.create(opts.dataDir ? { dataDir: opts.dataDir } : {});
  // PGlite unpacks its initial database with explicit 0666 modes (no umask applies): close them.
  if (opts.dataDir) closeTree(opts.dataDir);
  type Q = { query: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[]; affectedRows?: number }>; exec: (sql: string) => Promise<unknown> };
  const wrap = (q: Q): SqlQueryable => ({
    async query<R>(sql: string, params: readonly unknown[] = []) {
      const r = await q.query(sql, params as unknown[]);
      return { rows: r.rows as R[], rowCount: r.affectedRows ?? r.rows.length };
    },
    async exec(sql: string) {
      await q.exec(sql);
    },
  });
  const base = wrap(db as unknown as Q);
  return {
    kind: 'pglite',
    ...base,
    transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(wrap(tx as unknown as Q)));
    },
    async close() {
      await db.close();
    },
  };
}

/**
 * The client a role uses: the server at `databaseUrl` when given (DATABASE_URL), otherwise
 * PGlite in `<dataDir>/postgres`. Only the chosen adapter's package is loaded.
 */
export async function createSqlClient(opts: { databaseUrl?: string | null; dataDir?: string; poolMax?: number }): Promise<SqlClient> {
  if (opts.databaseUrl) return createPgClient({ url: opts.databaseUrl, max: opts.poolMax });
  if (!opts.dataDir) throw new Error('createSqlClient needs databaseUrl or dataDir');
  return createPgliteClient({ dataDir: `${opts.dataDir.replace(/\/+$/, '')}/postgres` });
}

/** SQLSTATE of a database error (both drivers put it in `code`), or null. */
export function sqlState(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

export const SqlStates = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  notNullViolation: '23502',
  invalidTextRepresentation: '22P02',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
} as const;

/** The constraint a violation names (both drivers put it in `constraint`), or null. */
export function violatedConstraint(err: unknown): string | null {
  const c = (err as { constraint?: unknown } | null)?.constraint;
  return typeof c === 'string' ? c : null;
}

/** A check constraint refused a value: a programming or validation error upstream, reported as 400. */
export function checkViolation(err: unknown): AttuneError | null {
  if (sqlState(err) !== SqlStates.checkViolation) return null;
  return new AttuneError('validation_error', 'a value is out of range', [{ reason: 'constraint_violation', constraint: violatedConstraint(err) }]);
}
