// Databases for the Postgres tests: PGlite in memory (always), and a PostgreSQL server.
// The server is, in order of choice:
//   1. DATABASE_URL from the environment (CI exports the one infra/postgres/postgres.sh printed);
//   2. outside CI, a testcontainers PostgreSQL 15 when a Docker engine answers;
//   3. outside CI, the local server of infra/postgres/postgres.sh, started when needed (port
//      POSTGRES_PORT, default 54329; data POSTGRES_DATA_DIR) and left running for the next test
//      file, like the local Kafka broker (stop it with `bash infra/postgres/postgres.sh stop`);
//      when that is impossible (no PostgreSQL binaries), null, and the test skips.
// In CI (CI=true) a missing server is an error, never a skip: the contract must run on both.
// Every test database is fresh (CREATE DATABASE attune_test_<pid>_<random>) and dropped by dispose().
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createPgClient, createPgliteClient, type SqlClient } from './client.js';
import { migratePostgres } from './migrate.js';
import { dockerAnswers } from '../../test/services.js';

export const POSTGRES_SCRIPT = fileURLToPath(new URL('../../infra/postgres/postgres.sh', import.meta.url));

export interface TestDatabase {
  /** The URL of this fresh database (server only). */
  url: string | null;
  client: SqlClient;
  /** Another client on the same database (a second process's view; server only: PGlite has one connection). */
  connect(): Promise<SqlClient>;
  dispose(): Promise<void>;
}

/** A fresh in-memory PGlite database. */
export async function pgliteDatabase(): Promise<TestDatabase> {
  const client = await createPgliteClient();
  return {
    url: null,
    client,
    connect: async () => {
      throw new Error('PGlite has a single connection');
    },
    dispose: () => client.close(),
  };
}

function runScript(cmd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', [POSTGRES_SCRIPT, cmd], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let serverUrl: Promise<string | null> | null = null;

/** The server's URL (see the header), or null outside CI when there is none. */
export function serverDatabaseUrl(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  serverUrl ??= (async () => {
    if (env.DATABASE_URL) return env.DATABASE_URL;
    if (env.CI === 'true') {
      throw new Error('CI=true but DATABASE_URL is not set: .ci/run must start PostgreSQL (infra/postgres/postgres.sh start) and export it');
    }
    // A container when a Docker engine answers (reaped by testcontainers when this process ends).
    if (await dockerAnswers(env)) {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const container = await new PostgreSqlContainer('postgres:15').withDatabase('attune').withUsername('attune').withPassword('attune').start();
      return container.getConnectionUri();
    }
    const r = await runScript('start', env);
    const line = /^DATABASE_URL=(\S+)$/m.exec(r.stdout);
    if (r.code !== 0 || !line) {
      process.stderr.write(`test-databases: no local PostgreSQL (${r.stderr.trim().split('\n').pop() ?? 'postgres.sh failed'})\n`);
      return null;
    }
    return line[1];
  })();
  return serverUrl;
}

/** A fresh database on the server at `url`, dropped by dispose(). */
export async function serverDatabase(url: string): Promise<TestDatabase> {
  const name = `attune_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = await createPgClient({ url, max: 1 });
  await admin.exec(`CREATE DATABASE ${name}`);
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  const others: SqlClient[] = [];
  const client = await createPgClient({ url: dbUrl.href });
  return {
    url: dbUrl.href,
    client,
    async connect() {
      const c = await createPgClient({ url: dbUrl.href });
      others.push(c);
      return c;
    },
    async dispose() {
      await Promise.all([client, ...others].map((c) => c.close()));
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

/**
 * The entity database of a test that needs one (not the contract suite, which runs on both):
 * a fresh, migrated database on the server when there is one (always in CI), else PGlite in
 * memory.
 */
export async function entityTestDatabase(): Promise<TestDatabase> {
  const url = await serverDatabaseUrl();
  const db = url ? await serverDatabase(url) : await pgliteDatabase();
  await migratePostgres(db.client);
  return db;
}
