// The store's connection: one @clickhouse/client over either a ClickHouse server (when a URL
// is configured) or chDB, the ClickHouse engine in-process (the embedded default). The rest
// of the code sees the same ClickHouseClient either way. Differences that leak through, and
// how this module contains them:
//  - 64-bit integers come back from a server as JSON strings and from chDB as numbers:
//    read them through toNumber();
//  - chDB keeps per-query settings on its one session, so a setting passed with one query
//    silently applies to every later query in the process: store code passes no
//    clickhouse_settings at all and writes data in encodings that need none (see
//    batch-writer.ts for DateTime64);
//  - chDB has one engine per process and data directory: open a second StoreClient on the
//    same dataDir (that shares the engine), never a different one.
// chDB (a native addon and its 566 MB shared library) is imported dynamically, only when no
// URL is configured: a process that talks to a ClickHouse server never loads it.
import { mkdirSync } from 'node:fs';
import { DIR_MODE } from '../lib/data-dir.js';
import { join } from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from '@clickhouse/client';
import { AttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

export type { ClickHouseClient };

export interface StoreClientOptions {
  /** ClickHouse server URL (http[s]://host:8123). When absent, chDB is used. */
  url?: string;
  username?: string;
  password?: string;
  /** Data directory for chDB; the engine's files go to `<dataDir>/clickhouse`. Required without `url`. */
  dataDir?: string;
  /** Database the tables live in; created when missing. A plain identifier. */
  database: string;
  log: Logger;
}

export interface StoreClient {
  client: ClickHouseClient;
  kind: 'server' | 'chdb';
  database: string;
  /** `<database>.<name>`, for SQL and insert targets. */
  table(name: string): string;
  ping(): Promise<boolean>;
  close(): Promise<void>;
  /**
   * A client for statements that may run for minutes (migrations' backfills and rebuilds: an
   * INSERT … SELECT over every transcript). The server client's requests time out after 30 s,
   * and a migration that timed out is not recorded, so the next start runs it again from the
   * start. Absent: `client` has no such limit (chDB, in process).
   */
  longRunning?: ClickHouseClient;
}

/** The long-running client's request timeout (StoreClient.longRunning): an hour. */
export const LONG_REQUEST_TIMEOUT_MS = 3_600_000;

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws unless `name` is a plain identifier: database and table names are spliced into SQL, so they must be inert. */
export function assertIdentifier(name: string, what = 'identifier'): string {
  if (!identifier.test(name)) {
    throw new AttuneError('validation_error', `invalid ClickHouse ${what}: ${JSON.stringify(name)}`, [
      { field: what, reason: 'invalid_format', message: 'must match [A-Za-z_][A-Za-z0-9_]*' },
    ]);
  }
  return name;
}

export async function createStoreClient(opts: StoreClientOptions): Promise<StoreClient> {
  const database = assertIdentifier(opts.database, 'database');
  const log = opts.log.child({ component: 'store' });
  let client: ClickHouseClient;
  let longRunning: ClickHouseClient | undefined;
  let kind: StoreClient['kind'];

  if (opts.url) {
    kind = 'server';
    const common: ClickHouseClientConfigOptions = {
      url: opts.url,
      username: opts.username,
      password: opts.password,
      application: 'attune',
    };
    // The database must exist before a client may name it as its default, so a short-lived
    // client creates it first.
    const bootstrap = createClient(common);
    try {
      await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    } catch (err) {
      throw unavailable(`cannot reach ClickHouse at ${redactUrl(opts.url)}`, err);
    } finally {
      await bootstrap.close();
    }
    client = createClient({ ...common, database });
    longRunning = createClient({ ...common, database, request_timeout: LONG_REQUEST_TIMEOUT_MS });
  } else {
    if (!opts.dataDir) {
      throw new AttuneError('validation_error', 'the store needs either a ClickHouse url or a dataDir for chDB', [
        { field: 'dataDir', reason: 'required', message: 'required when url is not set' },
      ]);
    }
    kind = 'chdb';
    const path = join(opts.dataDir, 'clickhouse');
    mkdirSync(path, { recursive: true, mode: DIR_MODE });
    // chDB's connection implements @clickhouse/client-common's Connection from its own copy
    // of that package, which tsc treats as a different type.
    const { createChdbConnection } = await import('chdb/connection');
    const connection = createChdbConnection({ path }) as unknown as ClickHouseClientConfigOptions['connection'];
    client = createClient({ connection });
    try {
      await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    } catch (err) {
      await client.close();
      throw unavailable(`cannot open chDB at ${path}`, err);
    }
  }
  log.info({ kind, database }, 'store connected');

  let closed = false;
  return {
    client,
    ...(longRunning ? { longRunning } : {}),
    kind,
    database,
    table: (name: string) => `${database}.${assertIdentifier(name, 'table')}`,
    async ping() {
      if (closed) return false;
      try {
        return (await client.ping()).success;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
      await longRunning?.close();
    },
  };
}

/**
 * Rows of a query, parsed. Values go in as `{name:Type}` placeholders bound by the engine
 * (`params` = { name: value }), never spliced into the SQL text.
 * 64-bit integers may arrive as strings or numbers depending on the backend: use toNumber.
 */
export async function queryRows<T = Record<string, unknown>>(
  client: ClickHouseClient,
  sql: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  const result = await client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

/** A 64-bit integer (or any number) from a JSON row: servers send strings, chDB numbers. */
export function toNumber(v: string | number): number {
  if (typeof v === 'number') return v;
  const n = Number(v);
  if (Number.isNaN(n) && v !== 'nan') throw new TypeError(`not a number: ${JSON.stringify(v)}`);
  return n;
}

/** Like toNumber, keeping NULL. */
export function toNullableNumber(v: string | number | null | undefined): number | null {
  return v === null || v === undefined ? null : toNumber(v);
}

/**
 * Epoch milliseconds of a DateTime64 as JSON rows return it ('YYYY-MM-DD hh:mm:ss.sss', in
 * the column's time zone, which is UTC for every Attune column), or of an epoch-ms number.
 */
export function toEpochMs(v: string | number): number {
  if (typeof v === 'number') return v;
  const ms = Date.parse(`${v.replace(' ', 'T')}Z`);
  if (Number.isNaN(ms)) throw new TypeError(`not a DateTime64 value: ${JSON.stringify(v)}`);
  return ms;
}

function unavailable(message: string, err: unknown): AttuneError {
  const cause = err instanceof Error ? err.message : String(err);
  const e = new AttuneError('unavailable', message, [{ reason: 'store_unavailable', message: cause }]);
  (e as Error).cause = err;
  return e;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
