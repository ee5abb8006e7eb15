// A small harness for the fault scenarios of issue 10 that test/faults.kafka.test.ts does not
// cover (poison records, a failing ClickHouse, two topic prefixes on one broker): the same
// deterministic input through real `attune all` deployments on a real Kafka broker, and the
// final ClickHouse state and API answers of each run, normalised so that two runs compare
// row by row. Used by test/faults-poison.kafka.test.ts, test/faults-sink.kafka.test.ts,
// test/faults-scale.kafka.test.ts and test/prefixes.kafka.test.ts (their common before/after
// in test/faults-suite.ts); test/faults.kafka.test.ts takes requestUntil and dumpState.
//
// chDB opens one data dir per process, so a deployment in a child process is read after it
// stopped by another child: this file run as a script (H_F2_DUMP_DIR, H_F2_DUMP_DB) prints
// the state as JSON. A deployment in the test process is read through its own store.
import { deleteTopicsWithPrefix } from './kafka-topics.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createAuthenticator, type Authenticator } from '../http/auth.js';
import { loadConfig } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import { openBus, openCodec, startAttune, type Roles, type RunningAttune } from '../cli/roles.js';
import { prefixedTopics } from '../schemas/topics.js';
import { decodeRecord } from '../schemas/registry/codec.js';
import { asEndMarker } from '../pipelines/coherence/end-markers.js';
import { groupIdFor } from '../pipelines/group-id.js';
import { READINGS_SINK_GROUP } from '../pipelines/readings-sink.js';
import { COHERENCE_WINDOWS_SINK_GROUP, SESSION_EVENTS_SINK_GROUP } from '../pipelines/sinks/result-sinks.js';
import { Kafka, logLevel } from 'kafkajs';
import { createStoreClient, type StoreClient } from '../store/clickhouse.js';
import { serverDatabase } from '../store/postgres/test-databases.test-util.js';
import { rsaReadings, waitFor } from './attune.js';

const run = promisify(execFile);
export const root = fileURLToPath(new URL('..', import.meta.url));
export const isCi = process.env.CI === 'true';
const SCOPES = ['read:sessions', 'write:sessions', 'read:coherence', 'write:devices', 'write:readings'];

export interface InputDevice {
  id: string;
  user: string;
  readings: ReturnType<typeof rsaReadings>;
  batches: ReturnType<typeof rsaReadings>[];
  lastBeat: number;
}
export interface Input {
  org: string;
  t0: number;
  devices: InputDevice[];
  rounds: number;
  beats: number;
  auth: Authenticator;
  secret: string;
  token(user: string): string;
}

/** `devices` devices × `durationS` s of beats, in uploads of `batchS` s of event time; the same for a seed-free call. */
export function makeInput(opts: { devices: number; durationS: number; batchS: number; org?: string; secret: string }): Input {
  const org = opts.org ?? 'org-faults2';
  // Aligned in the past: readings may not be in the future.
  const t0 = Math.floor((Date.now() - 40 * 60_000) / 5000) * 5000;
  const devices = Array.from({ length: opts.devices }, (_, i) => {
    const readings = rsaReadings({ startMs: t0 + 250 + i * 137, durationS: opts.durationS, breathHz: 0.08 + (i % 5) * 0.01, seed: 100 + i, amplitudeMs: 40 + (i % 4) * 20 });
    const batches: (typeof readings)[] = [];
    for (const r of readings) (batches[Math.floor((Date.parse(r.timestamp) - t0) / (opts.batchS * 1000))] ??= []).push(r);
    return { id: `dev-${String(i).padStart(2, '0')}`, user: `user-${String(i).padStart(2, '0')}`, readings, batches, lastBeat: Date.parse(readings[readings.length - 1].timestamp) };
  });
  const auth = createAuthenticator({ secret: opts.secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });
  const tokens = new Map(devices.map((d) => [d.user, auth.sign({ userId: d.user, orgId: org, scopes: SCOPES, ttlSeconds: 3600 })]));
  return {
    org,
    t0,
    devices,
    rounds: Math.max(...devices.map((d) => d.batches.length)),
    beats: devices.reduce((n, d) => n + d.readings.reduce((m, r) => m + r.rr_intervals_ms.length, 0), 0),
    auth,
    secret: opts.secret,
    token: (user) => tokens.get(user)!,
  };
}

export interface Deployment {
  name: string;
  url: string;
  /** GET /metrics of this deployment (ATTUNE_METRICS_PORT=0), or null. */
  metricsUrl: string | null;
  prefix: string;
  database: string;
  dataDir: string;
  brokers: string[];
  /** Its PostgreSQL database (for a deployment that joins it). */
  pgUrl: string;
  /** The in-process Attune, when it runs in the test process. */
  running: RunningAttune | null;
  unexpectedExits: string[];
  stop(): Promise<void>;
  /** Its final ClickHouse state (after stop() for a child process). */
  state(): Promise<StoreState>;
  dispose(): Promise<void>;
}

export interface DeploymentOptions {
  name: string;
  brokers: string[];
  pgUrl: string;
  secret: string;
  prefix?: string;
  env?: Record<string, string>;
  /** The subcommand of a child deployment (default all); `worker` listens for /metrics only. */
  command?: 'all' | 'worker';
  /** The roles of an in-process deployment (default every role). */
  roles?: Roles;
  /** Join another deployment: its PostgreSQL database, ClickHouse database and topic prefix. */
  join?: { pgUrl: string; database: string; prefix: string };
}

function deploymentEnv(o: DeploymentOptions, dataDir: string, prefix: string, database: string, pgUrl: string): Record<string, string> {
  return {
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    ATTUNE_DATA_DIR: dataDir,
    DATABASE_URL: pgUrl,
    KAFKA_BROKERS: o.brokers.join(','),
    ATTUNE_BUS: 'kafka',
    ATTUNE_TOPIC_PREFIX: prefix,
    ATTUNE_TOPIC_PARTITIONS: '3',
    CLICKHOUSE_DATABASE: database,
    JWT_SECRET: o.secret,
    ATTUNE_WRITE_FLUSH_MS: '200',
    ATTUNE_RATE_LIMIT: 'off',
    ATTUNE_RATE_LIMIT_READINGS_PER_S: '0',
    ATTUNE_METRICS_PORT: '0',
    // No speech here: one consumer group less to join per process.
    ATTUNE_SPEECH: 'off',
    // The Kafka client the suite was run with (children inherit it anyway; in-process
    // deployments read only this env).
    ...(process.env.ATTUNE_KAFKA_CLIENT ? { ATTUNE_KAFKA_CLIENT: process.env.ATTUNE_KAFKA_CLIENT } : {}),
    ...o.env,
  };
}

function names(o: DeploymentOptions) {
  const dataDir = mkdtempSync(join(tmpdir(), `h-f2-${o.name}-`));
  const prefix = o.join?.prefix ?? o.prefix ?? `f2-${o.name}-${randomUUID().slice(0, 8)}.`;
  const database = o.join?.database ?? `f2_${o.name.replace(/\W/g, '_')}_${randomUUID().replace(/-/g, '').slice(0, 8)}`;
  return { dataDir, prefix, database };
}

async function entityDatabase(o: DeploymentOptions): Promise<{ url: string; dispose(): Promise<void> }> {
  if (o.join) return { url: o.join.pgUrl, dispose: async () => undefined };
  const pg = await serverDatabase(o.pgUrl);
  return { url: pg.url!, dispose: () => pg.dispose() };
}

const keepDirs = () => process.env.FAULTS_KEEP_DIRS === '1';

/** A deployment's topics, deleted by the one that made its prefix (not one that joined it), unless FAULTS_KEEP_DIRS=1 keeps everything for a look. */
async function dropTopics(o: DeploymentOptions, prefix: string): Promise<void> {
  if (o.join || keepDirs()) return;
  await deleteTopicsWithPrefix(o.brokers, prefix).catch(() => undefined);
}

/** `attune all` in a child process (restarted if it dies on its own, as a supervisor would; the exit is recorded). */
export async function childDeployment(o: DeploymentOptions): Promise<Deployment & { kill9(): Promise<void> }> {
  const { dataDir, prefix, database } = names(o);
  const pg = await entityDatabase(o);
  const command = o.command ?? 'all';
  const env = { ...process.env, ...deploymentEnv(o, dataDir, prefix, database, pg.url) };
  const log = createWriteStream(join(dataDir, 'attune.log'), { flags: 'a' });
  let child: ChildProcess | null = null;
  let stopping = false;
  const unexpectedExits: string[] = [];
  let url = '';
  let metricsUrl: string | null = null;
  const start = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main([${JSON.stringify(command)}]))`], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      let out = '';
      let err = '';
      c.stderr!.on('data', (d: Buffer) => {
        log.write(d);
        err = (err + d.toString()).slice(-3000);
      });
      c.stdout!.on('data', (d: Buffer) => {
        log.write(d);
        out = (out + d.toString()).slice(-200_000);
        for (const line of out.split('\n')) {
          try {
            if (line.includes('metrics listening')) metricsUrl = String(JSON.parse(line).url).replace('0.0.0.0', '127.0.0.1');
            if (line.includes('attune listening')) url = String(JSON.parse(line).url).replace('0.0.0.0', '127.0.0.1');
          } catch {
            /* a partial line */
          }
        }
        if (metricsUrl && (url || command === 'worker')) resolve();
      });
      c.once('exit', (code, signal) => {
        reject(new Error(`attune (${o.name}) exited with ${code ?? signal} before listening:\n${err}\n${out.slice(-1500)}`));
        if (stopping || child !== c) return;
        unexpectedExits.push(`${o.name}: attune exited with ${code ?? signal}; see ${join(dataDir, 'attune.log')}`);
        url = '';
        metricsUrl = null;
        const again = (): void => void start().catch(() => (stopping ? undefined : setTimeout(again, 1000)));
        again();
      });
    });
  await start();
  const stop = async () => {
    stopping = true;
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  };
  return {
    name: o.name,
    get url() {
      return url;
    },
    get metricsUrl() {
      return metricsUrl;
    },
    prefix,
    database,
    dataDir,
    brokers: o.brokers,
    pgUrl: pg.url,
    running: null,
    unexpectedExits,
    stop,
    async kill9() {
      stopping = true;
      const c = child!;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    },
    async state() {
      await stop();
      return dumpState(dataDir, database);
    },
    async dispose() {
      await stop().catch(() => undefined);
      child?.kill('SIGKILL');
      await pg.dispose().catch(() => undefined);
      if (!keepDirs()) rmSync(dataDir, { recursive: true, force: true });
      await dropTopics(o, prefix);
    },
  };
}

/** `attune all` in this process (startAttune, as cli/main.ts runs it), so a test can wrap what it uses. */
export async function inProcessDeployment(o: DeploymentOptions): Promise<Deployment> {
  const { dataDir, prefix, database } = names(o);
  const pg = await entityDatabase(o);
  const config = loadConfig(deploymentEnv(o, dataDir, prefix, database, pg.url));
  const running = await startAttune(config, o.roles ?? { ingest: true, api: true, worker: true }, silentLogger, { migrate: true });
  let stopped = false;
  return {
    name: o.name,
    url: running.url!.replace('0.0.0.0', '127.0.0.1'),
    metricsUrl: running.metricsUrl,
    prefix,
    database,
    dataDir,
    brokers: o.brokers,
    pgUrl: pg.url,
    running,
    unexpectedExits: [],
    async stop() {
      if (stopped) return;
      stopped = true;
      await running.stop();
    },
    async state() {
      // Read before stopping: the store closes with Attune.
      return storeState(running.store!);
    },
    async dispose() {
      if (!stopped) await running.stop().catch(() => undefined);
      stopped = true;
      await pg.dispose().catch(() => undefined);
      if (!keepDirs()) rmSync(dataDir, { recursive: true, force: true });
      await dropTopics(o, prefix);
    },
  };
}

/** A request retried until it gets `want` (5xx, 429 and refused connections are retried, as a client would). */
export async function call(d: Deployment, input: Input, method: string, path: string, user: string, body: unknown, want: number): Promise<any> {
  return requestUntil(d.url, input.token(user), method, path, body, want);
}

/**
 * `method` `path` on `baseUrl` with the bearer `token`, retried for up to 3 min until the
 * answer is `want`: 5xx, 408, 429 and refused connections are retried (a broker stop, a
 * restart), any other status fails at once. Returns the parsed body.
 */
// `baseUrl` may be a getter: a deployment restarted meanwhile (a supervised restart after a
// crash) listens on a new port, and each retry must go to where it listens now.
export async function requestUntil(baseUrl: string | (() => string), token: string, method: string, path: string, body: unknown, want: number): Promise<any> {
  const deadline = Date.now() + 180_000;
  let last = '';
  for (;;) {
    try {
      const res = await fetch((typeof baseUrl === 'string' ? baseUrl : baseUrl()) + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status === want) return text ? JSON.parse(text) : null;
      last = `${res.status} ${text.slice(0, 300)}`;
      if (res.status < 500 && res.status !== 429 && res.status !== 408) throw new Error(`${method} ${path}: ${last}`);
    } catch (err) {
      if ((err as Error).message.startsWith(`${method} ${path}:`)) throw err;
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${method} ${path} never got ${want}: ${last}`);
    // Back-off between retries, as a client would (not a synchronisation).
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Creates the devices and sessions; returns the session ids, by device index. */
export async function createSessions(d: Deployment, input: Input): Promise<string[]> {
  const ids: string[] = [];
  for (const dev of input.devices) {
    await call(d, input, 'POST', '/v1/devices', dev.user, { device_id: dev.id, name: 'strap' }, 201);
    const s = await call(d, input, 'POST', '/v1/sessions', dev.user, { device_id: dev.id, title: 'faults2', started_at: new Date(input.t0).toISOString(), coherence_threshold: 0.5, threshold_duration_s: 30 }, 201);
    ids.push(s.id);
  }
  return ids;
}

/** Uploads every round (all devices at once per round), calling `beforeRound(r)` first; then the end calls. */
export async function upload(d: Deployment, input: Input, ids: string[], beforeRound?: (round: number) => Promise<void>): Promise<void> {
  for (let r = 0; r < input.rounds; r++) {
    await beforeRound?.(r);
    await Promise.all(
      input.devices.map((dev, i) => (dev.batches[r] ? call(d, input, 'POST', `/v1/devices/${dev.id}/sync`, dev.user, { session_id: ids[i], readings: dev.batches[r] }, 202) : undefined)),
    );
  }
  await Promise.all(input.devices.map((dev, i) => call(d, input, 'POST', `/v1/sessions/${ids[i]}/end`, dev.user, { ended_at: dev.lastBeat + 1000 }, 200)));
}

/** Waits until every session's last window is stored and the readings sink has committed past every end marker. */
export async function settle(d: Deployment, input: Input, ids: string[], timeoutMs = 180_000): Promise<void> {
  await waitFor("every session's last window", async () => {
    for (let i = 0; i < input.devices.length; i++) {
      const s = await call(d, input, 'GET', `/v1/sessions/${ids[i]}`, input.devices[i].user, undefined, 200);
      const tl = s.timeline ?? [];
      if (!(tl.length > 0 && Date.parse(tl[tl.length - 1].timestamp) > input.devices[i].lastBeat)) return false;
    }
    return true;
  }, timeoutMs, 500);
  await readingsCommitted(d, input.secret, input.devices.length, timeoutMs);
  await resultSinksCaughtUp(d, input.secret, timeoutMs);
}

/**
 * Waits until the result sinks (windows, session events) have committed everything on their
 * topics, i.e. their consumer lag is zero: their rows are durable. Called once the last
 * windows are visible: the worker publishes a step's events right after its windows (worker.ts,
 * output()), so by then the events topic holds everything, but the events sink may still be
 * backing off after a store outage (faults-sink: CI saw the state read while it waited).
 */
export async function resultSinksCaughtUp(d: BusTarget, secret: string, timeoutMs: number): Promise<void> {
  const topics = prefixedTopics(d.prefix);
  await groupsCaughtUp(d, secret, [
    [groupIdFor(COHERENCE_WINDOWS_SINK_GROUP, topics), topics.coherenceWindows],
    [groupIdFor(SESSION_EVENTS_SINK_GROUP, topics), topics.sessionEvents],
  ], timeoutMs);
}

/** Waits until each consumer group has committed the end of its topic (as the topic is when asked). */
export async function groupsCaughtUp(d: BusTarget, secret: string, pairs: ReadonlyArray<readonly [group: string, topic: string]>, timeoutMs: number): Promise<void> {
  const { bus } = await deploymentBus(d, secret);
  const admin = new Kafka({ clientId: 'faults-lag-probe', brokers: d.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    for (const [group, topic] of pairs) {
      await waitFor(`${group} to commit the end of ${topic}`, async () => {
        const ends = await admin.fetchTopicOffsets(topic);
        const c = await bus.committed(group, topic);
        return ends.every((e) => BigInt(e.high) === 0n || BigInt(c.get(e.partition) ?? '0') >= BigInt(e.high));
      }, timeoutMs, 200);
    }
  } finally {
    await admin.disconnect();
    await bus.close();
  }
}

/** What a bus client of a deployment needs of it (also test/faults.kafka.test.ts's deployments). */
export type BusTarget = Pick<Deployment, 'brokers' | 'prefix' | 'dataDir'>;

/** A bus client of the deployment's own topics (its prefix), for a test to publish or read. */
export async function deploymentBus(d: BusTarget, secret: string) {
  const config = loadConfig({ KAFKA_BROKERS: d.brokers.join(','), JWT_SECRET: secret, ATTUNE_TOPIC_PREFIX: d.prefix, ATTUNE_TOPIC_PARTITIONS: '3', ATTUNE_DATA_DIR: d.dataDir });
  const topics = prefixedTopics(d.prefix);
  return { bus: await openBus(config, silentLogger, topics), codec: await openCodec(config), topics };
}

/** Waits until the readings sink's committed offsets reach past the end markers of `sessions` sessions. */
export async function readingsCommitted(d: BusTarget, secret: string, sessions: number, timeoutMs: number): Promise<void> {
  const { bus, codec, topics } = await deploymentBus(d, secret);
  const ends = new Map<number, bigint>();
  const ended = new Set<string>();
  const sub = await bus.subscribe({
    groupId: `${d.prefix}faults2-probe-${randomUUID().slice(0, 8)}`,
    topics: [topics.heartReadings],
    fromBeginning: true,
    ephemeral: true,
    eachBatch: async (batch) => {
      for (const rec of batch.records) {
        const next = BigInt(rec.offset) + 1n;
        if ((ends.get(batch.partition) ?? 0n) < next) ends.set(batch.partition, next);
        try {
          const m = asEndMarker(await decodeRecord(codec, rec.value));
          if (m) ended.add(m.sessionId);
        } catch {
          /* a poison record: not ours to judge */
        }
      }
    },
  });
  try {
    await waitFor('every end marker on the readings topic', () => ended.size >= sessions, timeoutMs, 200);
    const group = groupIdFor(READINGS_SINK_GROUP, topics);
    await waitFor('the readings sink to commit every partition', async () => {
      const c = await bus.committed(group, topics.heartReadings);
      for (const [p, end] of ends) if (BigInt(c.get(p) ?? '0') < end) return false;
      return true;
    }, timeoutMs, 200);
  } finally {
    await sub.stop();
    await bus.close();
  }
}

/** The API's answers: each session's detail (metrics, timeline) and each user's daily coherence history. */
export async function apiAnswers(d: Deployment, input: Input, ids: string[]) {
  const out = { sessions: [] as unknown[], history: [] as unknown[] };
  const day0 = new Date(input.t0).toISOString().slice(0, 10);
  const day1 = new Date(input.t0 + 3_600_000).toISOString().slice(0, 10);
  for (let i = 0; i < input.devices.length; i++) {
    const user = input.devices[i].user;
    out.sessions.push(await call(d, input, 'GET', `/v1/sessions/${ids[i]}`, user, undefined, 200));
    out.history.push(await call(d, input, 'GET', `/v1/users/me/coherence?granularity=day&start_date=${day0}&end_date=${day1}`, user, undefined, 200));
  }
  return out;
}

export interface StoreState {
  windows: any[];
  windowRowsInserted: Array<{ n: string | number }>;
  events: any[];
  eventRowsInserted: Array<{ n: string | number }>;
  readings: any[];
  readingRowsInserted: Array<{ n: string | number }>;
  daily: any[];
}

/** The final ClickHouse state: every stored column that the input determines. */
export async function storeState(store: StoreClient): Promise<StoreState> {
  const q = async (query: string) => (await store.client.query({ query, format: 'JSONEachRow' })).json<any>();
  const db = store.database;
  return {
    // Every column but computed_at (when it was computed).
    windows: await q(`SELECT session_id, user_id, org_id, device_id, toUnixTimestamp64Milli(window_start) AS start_ms, toUnixTimestamp64Milli(window_end) AS end_ms,
                        valid, invalid_reason, partial, coverage, longest_gap_ms, coherence, coherence_ratio, peak_frequency_hz, breathing_rate_bpm,
                        mean_hr_bpm, rmssd_ms, sdnn_ms, pnn50_pct, beat_count, artifact_ratio, late_beat_count
                      FROM ${db}.coherence_windows FINAL ORDER BY device_id, window_end`),
    // Rows as inserted (no FINAL): a row inserted twice counts twice.
    windowRowsInserted: await q(`SELECT count() AS n FROM ${db}.coherence_windows`),
    events: await q(`SELECT event_id, session_id, user_id, org_id, type, toUnixTimestamp64Milli(occurred_at) AS at_ms, payload_json
                     FROM ${db}.session_events FINAL ORDER BY session_id, occurred_at, event_id`),
    eventRowsInserted: await q(`SELECT count() AS n FROM ${db}.session_events`),
    readings: await q(`SELECT device_id, session_id, reading_id, beat_index, toUnixTimestamp64Milli(event_time) AS t_ms, rr_ms, hr_bpm, source
                       FROM ${db}.heart_readings FINAL ORDER BY device_id, event_time, beat_index`),
    readingRowsInserted: await q(`SELECT count() AS n FROM ${db}.heart_readings`),
    daily: await q(`SELECT org_id, user_id, day, avgMerge(avg_coherence_state) AS avg_coherence, countMerge(window_count_state) AS windows,
                      sumMerge(high_coherence_s_state) AS high_s
                    FROM ${db}.user_daily_coherence GROUP BY org_id, user_id, day ORDER BY user_id, day`),
  };
}

/**
 * The final ClickHouse state of a stopped Attune's data dir, read by a child process (this file
 * run as a script): chDB opens one data dir per process.
 */
export async function dumpState(dataDir: string, database: string): Promise<StoreState> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    cwd: root,
    env: { ...process.env, H_F2_DUMP_DIR: dataDir, H_F2_DUMP_DB: database },
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(stdout) as StoreState;
}

export type RunState = ReturnType<typeof normalise>;

/**
 * Session ids (random per run) become device ids and rows are sorted again; the API's own
 * times (created_at, updated_at) go, and so does the host of a websocket_url. Daily averages are compared to 12 significant digits
 * (avgMerge adds partial sums in merge order; the windows under them are compared exactly).
 */
export function normalise(store: StoreState, api: unknown, ids: string[], input: Input) {
  const sessions = new Map(ids.map((id, i) => [id, input.devices[i].id]));
  return normaliseState({ ...store, api }, sessions) as StoreState & { api: { sessions: unknown[]; history: unknown[] } };
}

/** normalise() of a state (store parts and api) whose session ids map to device ids by `sessions`. */
export function normaliseState(state: object, sessions: Map<string, string>): any {
  // websocket_url names the deployment that answered (its own port), not a result.
  const text = JSON.stringify(state, (k, v) =>
    k === 'created_at' || k === 'updated_at' ? undefined : k === 'websocket_url' && typeof v === 'string' ? v.replace(/^(wss?:\/\/)[^/]+/, '$1deployment') : v,
  );
  const out = JSON.parse(text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => sessions.get(id) ?? id));
  for (const part of ['windows', 'events', 'readings', 'daily']) {
    out[part] = out[part].map((r: unknown) => JSON.stringify(r)).sort().map((r: string) => JSON.parse(r));
  }
  for (const d of out.daily) d.avg_coherence = Number(Number(d.avg_coherence).toPrecision(12));
  return out;
}

/** The parts differences() compares by default: every one of a RunState. */
export const ALL_PARTS = ['windows', 'windowRowsInserted', 'events', 'eventRowsInserted', 'readings', 'readingRowsInserted', 'daily', 'api'] as const;

/** Differences by part (of `parts`), as short descriptions (empty when equal). */
export function differences(clean: RunState, got: RunState, parts: ReadonlyArray<(typeof ALL_PARTS)[number]> = ALL_PARTS): string[] {
  const out: string[] = [];
  for (const part of parts) {
    const a: unknown[] = part === 'api' ? [...clean.api.sessions, ...clean.api.history] : clean[part];
    const b: unknown[] = part === 'api' ? [...got.api.sessions, ...got.api.history] : got[part];
    const n = Math.max(a.length, b.length);
    let diff = 0;
    let first = '';
    for (let i = 0; i < n; i++) {
      if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) {
        diff++;
        first ||= `${JSON.stringify(a[i])?.slice(0, 300)} ≠ ${JSON.stringify(b[i])?.slice(0, 300)}`;
      }
    }
    if (diff > 0) out.push(`${part}: ${diff} of ${n} differ (${a.length} vs ${b.length}); first: ${first}`);
  }
  return out;
}

/** A clean run of `input` through a fresh child deployment: its normalised final state. */
export async function cleanRun(o: DeploymentOptions, input: Input): Promise<RunState> {
  const d = await childDeployment(o);
  try {
    const ids = await createSessions(d, input);
    await upload(d, input, ids);
    await settle(d, input, ids);
    const api = await apiAnswers(d, input, ids);
    const state = normalise(await d.state(), api, ids, input);
    if (d.unexpectedExits.length > 0) throw new Error(d.unexpectedExits.join('; '));
    return state;
  } finally {
    await d.dispose();
  }
}

/** The value of one series of a Prometheus text exposition (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

// As a script: print the state of a stopped deployment's data dir.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.env.H_F2_DUMP_DIR) {
  const store = await createStoreClient({ dataDir: process.env.H_F2_DUMP_DIR, database: process.env.H_F2_DUMP_DB!, log: silentLogger });
  try {
    process.stdout.write(JSON.stringify(await storeState(store)));
  } finally {
    await store.close();
  }
}
