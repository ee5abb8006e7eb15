// Starts a whole Attune (every role, one process) for a test, on the embedded bus or on
// Kafka, with chDB in a temporary directory or a ClickHouse server, listening on a free port.
import { deleteTopicsWithPrefix } from './kafka-topics.js';
import type { StoreClient } from '../store/clickhouse.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from '../store/postgres/test-databases.test-util.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/config.js';
import { silentLogger, createLogger, type Logger } from '../lib/log.js';
import { startAttune, type RunningAttune, type Roles } from '../cli/roles.js';

export interface TestAttune extends Omit<RunningAttune, 'store'> {
  /** ClickHouse (test Attunes run with the API or worker role unless `roles` says otherwise). */
  store: StoreClient;
  baseUrl: string;
  dataDir: string;
  database: string;
  topicPrefix: string;
  token(userId: string, orgId: string, scopes?: string[]): string;
  request<T = any>(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: T }>;
  /** Stops Attune and removes its temporary data. */
  cleanup(): Promise<void>;
}

export const ALL_SCOPES = ['read:sessions', 'write:sessions', 'read:coherence', 'write:devices', 'write:readings', 'read:speech', 'write:speech', 'read:user', 'write:user', 'mesh:create', 'mesh:join'];

export interface TestAttuneOptions {
  kafkaBrokers?: string[] | null;
  clickhouseUrl?: string | null;
  roles?: Roles;
  /** Extra environment, e.g. ATTUNE_SESSION_IDLE_END_MS. */
  env?: Record<string, string>;
  /** Reuse a data dir (chDB allows one per process). */
  dataDir?: string;
  database?: string;
  topicPrefix?: string;
  /**
   * Where entities live: 'server' a fresh database on the PostgreSQL server (DATABASE_URL, or
   * the local one infra/postgres/postgres.sh starts; always in CI), 'pglite' the embedded
   * default in the data dir. Default: the server when there is one, else PGlite.
   */
  entities?: 'server' | 'pglite';
  /** The process's logger (a test capturing log lines); by default silent unless TEST_LOG_LEVEL. */
  log?: Logger;
}

export async function startTestAttune(opts: TestAttuneOptions = {}): Promise<TestAttune> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'attune-test-'));
  const database = opts.database ?? `t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const topicPrefix = opts.topicPrefix ?? (opts.kafkaBrokers ? `test-${randomUUID().slice(0, 8)}.` : '');
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    ATTUNE_DATA_DIR: dataDir,
    CLICKHOUSE_DATABASE: database,
    ATTUNE_TOPIC_PREFIX: topicPrefix,
    ATTUNE_TOPIC_PARTITIONS: '3',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ATTUNE_WRITE_FLUSH_MS: '100',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Tokens minted here carry no tier claim: the enterprise tier's limits (10,000 requests a
    // minute, 500 a second, unlimited sockets and devices) keep suites that send many requests
    // from one user or address clear of them. Tests of the limits set their own.
    ATTUNE_DEFAULT_TIER: 'enterprise',
    ...(opts.kafkaBrokers ? { KAFKA_BROKERS: opts.kafkaBrokers.join(',') } : {}),
    // The Kafka client the suite was run with (the config reads only this env).
    ...(process.env.ATTUNE_KAFKA_CLIENT ? { ATTUNE_KAFKA_CLIENT: process.env.ATTUNE_KAFKA_CLIENT } : {}),
    ...(opts.clickhouseUrl ? { CLICKHOUSE_URL: opts.clickhouseUrl } : {}),
    ...opts.env,
  };
  let entityDb: TestDatabase | null = null;
  if (opts.entities !== 'pglite') {
    const serverUrl = await serverDatabaseUrl();
    if (serverUrl) {
      entityDb = await serverDatabase(serverUrl);
      env.DATABASE_URL = entityDb.url!;
    } else if (opts.entities === 'server') throw new Error('no PostgreSQL server for this test');
  }
  if (!env.DATABASE_URL) delete env.DATABASE_URL;
  const config = loadConfig(env);
  const log = opts.log ?? (env.LOG_LEVEL === 'silent' ? silentLogger : createLogger({ level: env.LOG_LEVEL }));
  const running = await startAttune(config, opts.roles ?? { ingest: true, api: true, worker: true }, log, { migrate: true });
  const baseUrl = running.url!.replace('0.0.0.0', '127.0.0.1');
  return {
    ...running,
    store: running.store!,
    baseUrl,
    dataDir,
    database,
    topicPrefix,
    token: (userId, orgId, scopes = ALL_SCOPES) => running.auth.sign({ userId, orgId, scopes, ttlSeconds: 3600 }),
    async request(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      }
      const res = await fetch(baseUrl + path, { method, headers, body });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed };
    },
    async cleanup() {
      await running.stop();
      await entityDb?.dispose();
      // Its own topics (a prefix this function made up, so no other deployment's): a failure
      // to delete them fails no test, it only leaves them on the broker.
      if (opts.kafkaBrokers && opts.topicPrefix === undefined) await deleteTopicsWithPrefix(opts.kafkaBrokers, topicPrefix).catch(() => undefined);
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * RR intervals with a respiratory sinus arrhythmia at `breathHz` plus a little noise, as
 * readings of ~1 s each. Deterministic for a seed.
 */
export function rsaReadings(opts: { startMs: number; durationS: number; breathHz?: number; meanRrMs?: number; amplitudeMs?: number; noiseMs?: number; seed?: number }) {
  const { startMs, durationS, breathHz = 0.1, meanRrMs = 900, amplitudeMs = 80, noiseMs = 8 } = opts;
  let s = opts.seed ?? 7;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const readings: Array<{ timestamp: string; hr: number; rr_intervals_ms: number[] }> = [];
  let t = startMs;
  let pending: number[] = [];
  let readingEnd = startMs + 1000;
  while (t < startMs + durationS * 1000) {
    const rr = Math.round(meanRrMs + amplitudeMs * Math.sin(2 * Math.PI * breathHz * ((t - startMs) / 1000)) + noiseMs * rand() * 2);
    t += rr;
    pending.push(rr);
    if (t >= readingEnd) {
      const mean = pending.reduce((a, b) => a + b, 0) / pending.length;
      readings.push({ timestamp: new Date(t).toISOString(), hr: Math.round(60000 / mean), rr_intervals_ms: pending });
      pending = [];
      readingEnd = t + 1000;
    }
  }
  return readings;
}
