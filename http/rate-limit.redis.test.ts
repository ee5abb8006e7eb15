// Limits shared by two API processes through a real Redis (issue 9): two `attune api` child
// processes with one REDIS_URL count one user's requests in one budget (the 61st of the minute
// on the free tier is refused, whichever process gets it, and X-RateLimit-Remaining counts
// down across both) and one user's open sockets together (free: a socket on one process
// makes one on the other close with 4029); two ingest gateways with one REDIS_URL spend one
// readings budget per device and per user, and cannot register more devices than the user's tier
// allows even when registrations race on both; while Redis does not answer (CLIENT PAUSE),
// requests are let through, not refused. Redis is REDIS_URL when set, else the local server
// of infra/redis/redis.sh (started here when not running; CI installs redis-server).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { createAuthenticator } from './auth.js';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from '../store/postgres/test-databases.test-util.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const REDIS_SCRIPT = join(root, 'infra/redis/redis.sh');
const secret = randomBytes(32).toString('hex');
const auth = createAuthenticator({ secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });
// Keys of this run only: a user id nobody else uses.
const org = `o-${randomUUID().slice(0, 8)}`;

let redisUrl = '';
let db: TestDatabase | null = null;
const children: ChildProcess[] = [];
const dirs: string[] = [];
let a = '';
let b = '';

/** `infra/redis/redis.sh start` (idempotent, locked): its REDIS_URL line. */
function startLocalRedis(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [REDIS_SCRIPT, 'start'], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`redis.sh start failed: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
      const line = stdout.split('\n').find((l) => l.startsWith('REDIS_URL='));
      if (!line) return reject(new Error('redis.sh start printed no REDIS_URL line'));
      resolve(line.slice('REDIS_URL='.length));
    });
  });
}

/** Runs `attune <command>` in a child process to its end. */
function runAttune(command: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['${command}']))`], { cwd: root, env, timeout: 180_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`attune ${command} failed: ${stderr.slice(-2000)}`)) : resolve(),
    );
  });
}

/** Starts `attune api` in a child process and resolves with its URL once it listens. */
async function startApiProcess(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-rl-api-'));
  dirs.push(dataDir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    ATTUNE_DATA_DIR: dataDir,
    JWT_SECRET: secret,
    REDIS_URL: redisUrl,
    ATTUNE_DEFAULT_TIER: 'free',
    CLICKHOUSE_DATABASE: `rl_${randomUUID().replace(/-/g, '').slice(0, 10)}`,
  };
  // Each process its own embedded bus and chDB; entities in one PostgreSQL database when there
  // is a server (migrated in before()), else each its own PGlite, migrated here.
  for (const k of ['KAFKA_BROKERS', 'ATTUNE_BUS', 'DATABASE_URL', 'CLICKHOUSE_URL', 'ATTUNE_TOPIC_PREFIX']) delete env[k];
  if (db) env.DATABASE_URL = db.url!;
  else await runAttune('migrate', env);
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['api']))`], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('attune listening')) continue;
        try {
          resolve(String(JSON.parse(line).url).replace('0.0.0.0', '127.0.0.1'));
        } catch {
          /* a partial line: wait for the rest */
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`attune api exited with ${code} before listening:\n${err}\n${out.slice(-2000)}`)));
  });
}

before(async () => {
  redisUrl = process.env.REDIS_URL || (await startLocalRedis());
  const url = await serverDatabaseUrl();
  if (url) {
    db = await serverDatabase(url);
    await migratePostgres(db.client);
  }
  [a, b] = await Promise.all([startApiProcess(), startApiProcess()]);
});

after(async () => {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  await db?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const token = (userId: string) => auth.sign({ userId, orgId: org, scopes: ['read:sessions', 'read:coherence'], ttlSeconds: 3600, tier: 'free' });

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function get(base: string, path: string, bearer: string): Promise<Answer> {
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${bearer}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

test('one budget for a user across two API processes: the 61st request of the minute is refused', async () => {
  const t = token('u-shared');
  const answers: Answer[] = [];
  // Alternating between the processes; a burst refusal is waited out as Retry-After says.
  for (let i = 0; answers.length < 200; i++) {
    const res = await get(i % 2 === 0 ? a : b, '/v1/sessions', t);
    answers.push(res);
    if (res.status !== 429) {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      continue;
    }
    const window = res.body.error.details[0].window;
    if (window === 'minute') break;
    assert.equal(window, 'second');
    await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after')) * 1000));
  }
  // The 61st, or the 60th when the burst refused that one (the minute's last: the minute's refusal then).
  const burstLast = answers.length === 60 && answers[59].body.error.message.includes('the last of the minute');
  assert.equal(answers.length, burstLast ? 60 : 61, `refused after ${answers.length} requests over both processes`);
  answers.forEach((res, i) => {
    if (res.status === 429 && res.body.error.details[0].window === 'second') {
      // A burst refusal carries the second window's headers (the burst, none left).
      assert.deepEqual([res.headers.get('x-ratelimit-limit'), res.headers.get('x-ratelimit-remaining')], ['10', '0'], `request ${i + 1}: a burst refusal`);
      return;
    }
    assert.equal(res.headers.get('x-ratelimit-limit'), '60', `request ${i + 1}`);
    assert.equal(Number(res.headers.get('x-ratelimit-remaining')), Math.max(0, 59 - i), `request ${i + 1}: remaining counts down across both processes`);
  });
  const last = answers.at(-1)!;
  assert.equal(last.status, 429);
  assert.equal(last.body.error.code, 'rate_limited');
  assert.ok(Number(last.headers.get('retry-after')) >= 1);
  // Both processes refuse now; another user is untouched on either.
  assert.equal((await get(a, '/v1/sessions', t)).status, 429);
  assert.equal((await get(b, '/v1/sessions', t)).status, 429);
  const other = await get(b, '/v1/sessions', token('u-shared-other'));
  assert.equal(other.status, 200, JSON.stringify(other.body));
  // The counts are in Redis.
  const redis = new Redis(redisUrl);
  try {
    const keys = await redis.keys(`attune:rl:*${org}/u-shared`);
    assert.ok(keys.length >= 1, 'the minute window is a Redis key');
  } finally {
    redis.disconnect();
  }
});

function openSocket(base: string, bearer: string): Promise<{ ws: WebSocket; first?: any; close?: { code: number; error?: any } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/coherence?token=${bearer}`);
    let error: any;
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === 'error') error = m.error;
      else resolve({ ws, first: m });
    });
    ws.on('close', (code) => resolve({ ws, close: { code, error } }));
    ws.on('error', reject);
  });
}

test('open sockets of a user are counted across processes (free: 1)', async () => {
  const t = token('u-socket');
  const first = await openSocket(a, t);
  assert.equal(first.first?.type, 'subscribed');
  const second = await openSocket(b, t);
  assert.equal(second.close?.code, 4029);
  assert.equal(second.close?.error?.details[0].reason, 'socket_quota');
  first.ws.close();
  // Once process A has seen the close and released it in Redis, B takes one.
  const third = await waitFor('a socket on B after A released', async () => {
    const s = await openSocket(b, t);
    return s.first?.type === 'subscribed' ? s : null;
  }, 10_000);
  third.ws.close();
});

test('two ingest gateways on one Redis spend one readings budget per device and per user; refused readings are refunded', async () => {
  const env = {
    REDIS_URL: redisUrl,
    ATTUNE_RATE_LIMIT_READINGS_PER_S: '100',
    ATTUNE_RATE_LIMIT_BURST: '10000',
    ATTUNE_RATE_LIMIT_USER_READINGS_PER_S: '100',
    ATTUNE_RATE_LIMIT_USER_BURST: '15000',
  };
  const gateways: TestAttune[] = [];
  try {
    // In-process, ingest only (no chDB), each its own Redis client, bus and entities.
    for (let i = 0; i < 2; i++) gateways.push(await startTestAttune({ env, roles: { ingest: true, api: false, worker: false } }));
    const [ga, gb] = gateways;
    const user = 'u-readings';
    const ta = ga.token(user, org);
    const tb = gb.token(user, org);
    for (const [g, t, devices] of [[ga, ta, ['r-dev-1']], [gb, tb, ['r-dev-1', 'r-dev-2']]] as const) {
      for (const d of devices) assert.equal((await g.request('POST', '/v1/devices', { token: t, body: { device_id: d } })).status, 201);
    }
    const readings = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ timestamp: from + i * 1000, hr: 60 }));
    const start = Date.now() - 86_400_000;
    // Taken, refused (no such session), given back.
    const refused = await ga.request('POST', '/v1/devices/r-dev-1/sync', { token: ta, body: { session_id: 'no-such-session', readings: readings(10_000, start) } });
    assert.equal(refused.status, 400);
    assert.equal((await ga.request('POST', '/v1/devices/r-dev-1/sync', { token: ta, body: { readings: readings(10_000, start) } })).status, 202);
    // The device's burst is spent on A: B refuses it too.
    const device = await gb.request('POST', '/v1/devices/r-dev-1/sync', { token: tb, body: { readings: readings(500, start + 20_000_000) } });
    assert.equal(device.status, 429);
    assert.equal(device.body.error.details[0].scope, 'device');
    // A fresh device on B has its own 10,000 but the user only ~5,000 left.
    const userRefusal = await gb.request('POST', '/v1/devices/r-dev-2/sync', { token: tb, body: { readings: readings(8_000, start + 40_000_000) } });
    assert.equal(userRefusal.status, 429);
    assert.equal(userRefusal.body.error.details[0].scope, 'user');
    assert.equal((await gb.request('POST', '/v1/devices/r-dev-2/sync', { token: tb, body: { readings: readings(4_000, start + 40_000_000) } })).status, 202);
  } finally {
    for (const g of gateways) await g.cleanup();
  }
});

test('device registrations racing on four gateways stay within the quota (a Redis lock per user)', async (t) => {
  if (!db) {
    assert.ok(process.env.CI !== 'true', 'CI has a PostgreSQL server');
    return t.skip('needs a PostgreSQL server for one devices table');
  }
  const gateways: TestAttune[] = [];
  try {
    // One devices table (the server database of before()), four gateways, each its Redis client.
    for (let i = 0; i < 4; i++) {
      gateways.push(await startTestAttune({ entities: 'pglite', env: { REDIS_URL: redisUrl, DATABASE_URL: db.url!, ATTUNE_DEFAULT_TIER: 'free' }, roles: { ingest: true, api: false, worker: false } }));
    }
    for (let round = 0; round < 8; round++) {
      const user = `u-race-${round}`;
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => gateways[i % 4].request('POST', '/v1/devices', { token: gateways[i % 4].token(user, org), body: { device_id: `race-${round}-${i}` } })),
      );
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [201, 201, 409, 409, 409, 409, 409, 409], `round ${round}`);
      for (const a of answers.filter((x) => x.status === 409)) assert.equal(a.body.error.details[0].reason, 'device_quota');
    }
  } finally {
    for (const g of gateways) await g.cleanup();
  }
});

test('Redis not answering: requests are let through (without headers), none refused', async () => {
  const gateway = await startTestAttune({ env: { REDIS_URL: redisUrl, ATTUNE_DEFAULT_TIER: 'free' }, roles: { ingest: true, api: false, worker: false } });
  const admin = new Redis(redisUrl);
  try {
    const t = gateway.auth.sign({ userId: 'u-redis-down', orgId: org, scopes: ['write:devices'], ttlSeconds: 600, tier: 'free' });
    const register = (i: number) => gateway.request('POST', '/v1/devices', { token: t, body: { device_id: `down-${i}` } });
    const before = await fetch(`${gateway.baseUrl}/v1/devices`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{"device_id":"down-0"}' });
    assert.equal(before.status, 201);
    assert.equal(before.headers.get('x-ratelimit-limit'), '60');
    // Every client but this one waits for 6 s: the limiter's commands time out (1 s each).
    await admin.call('CLIENT', 'PAUSE', '6000', 'ALL');
    const t0 = Date.now();
    const during = await fetch(`${gateway.baseUrl}/v1/devices`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{"device_id":"down-0"}' });
    const elapsed = Date.now() - t0;
    await admin.call('CLIENT', 'UNPAUSE');
    assert.equal(during.status, 200, 'answered (re-registration), not refused');
    assert.equal(during.headers.get('x-ratelimit-limit'), null, 'no counts to report');
    assert.ok(elapsed < 5_500, `answered before Redis came back (${elapsed} ms)`);
    // Back: counted again.
    const afterwards = await register(0);
    assert.equal(afterwards.status, 200);
  } finally {
    await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
    admin.disconnect();
    await gateway.cleanup();
  }
});
