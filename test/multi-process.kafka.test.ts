// Invariants that hold across processes, because PostgreSQL keeps them, not process memory:
// two `attune ingest` processes (Kafka, one PostgreSQL server, no ClickHouse) each receive a
// live-audio `start` for the same speech session at the same moment: exactly one stream is
// started, the other socket is closed with 4409; and two `attune api` processes each receive
// a change of one session based on the same version: one is applied, the other is a 409, and
// nothing is lost when the loser retries on the new version.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createAuthenticator } from '../http/auth.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { SpeechSessionsRepository } from '../store/postgres/speech-sessions-repo.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from '../store/postgres/test-databases.test-util.js';
import { getTestServices } from './services.js';
import { startAttuneProcess, stopAttuneProcesses } from './attune-process.js';

const isCi = (env: NodeJS.ProcessEnv) => env.CI === 'true';

const secret = randomBytes(32).toString('hex');
const auth = createAuthenticator({ secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });

let db: TestDatabase | null = null;
let brokers: string[] | null = null;
const children: ChildProcess[] = [];
const dirs: string[] = [];

before(async () => {
  const services = await getTestServices({ needKafka: true });
  brokers = services.kafkaBrokers;
  const url = await serverDatabaseUrl();
  if ((!brokers || !url) && isCi(process.env)) throw new Error('CI needs Kafka and PostgreSQL for the multi-process tests');
  if (url) {
    db = await serverDatabase(url);
    await migratePostgres(db.client);
  }
});

after(async () => {
  await stopAttuneProcesses(children);
  await db?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts `attune <role>` in a child process and resolves with its URL once it listens. */
function startRole(role: 'ingest' | 'api', prefix: string): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), `attune-mp-${role}-`));
  dirs.push(dataDir);
  return startAttuneProcess([role], {
    ATTUNE_DATA_DIR: dataDir,
    DATABASE_URL: db!.url!,
    KAFKA_BROKERS: brokers!.join(','),
    ATTUNE_TOPIC_PREFIX: prefix,
    ATTUNE_TOPIC_PARTITIONS: '2',
    CLICKHOUSE_DATABASE: `mp_${randomUUID().replace(/-/g, '').slice(0, 10)}`,
    JWT_SECRET: secret,
    // One user races many requests and two sockets here on purpose: the enterprise tier's
    // limits (no socket quota, 500 requests a second) keep the rate limits out of what this
    // file tests (http/rate-limit*.test.ts test them).
    ATTUNE_DEFAULT_TIER: 'enterprise',
  }, children);
}

test('two ingest processes, one speech session, two simultaneous live starts: exactly one stream', async (t) => {
  if (!db || !brokers) {
    // Outside CI only: in CI before() has already failed without them.
    assert.ok(!isCi(process.env), 'CI needs Kafka and PostgreSQL');
    return t.skip('needs Kafka and a PostgreSQL server');
  }
  const prefix = `mp-${randomUUID().slice(0, 8)}.`;
  const [a, b] = await Promise.all([startRole('ingest', prefix), startRole('ingest', prefix)]);
  const speech = new SpeechSessionsRepository(db.client);
  const token = auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['write:speech'] });
  for (let round = 0; round < 3; round++) {
    const session = await speech.create({ orgId: 'o1', userId: 'u1', type: 'speech' });
    const open = (base: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ingest/audio/${session.id}`, { headers: { authorization: `Bearer ${token}` } });
        ws.once('message', (m) => (JSON.parse(m.toString()).type === 'authenticated' ? resolve(ws) : reject(new Error(m.toString()))));
        ws.once('error', reject);
      });
    const sockets = await Promise.all([open(a), open(b)]);
    const outcomes = sockets.map(
      (ws) =>
        new Promise<string>((resolve) => {
          ws.on('message', (m) => {
            const msg = JSON.parse(m.toString());
            if (msg.type === 'started') resolve('started');
          });
          ws.once('close', (code) => resolve(`closed ${code}`));
        }),
    );
    for (const ws of sockets) ws.send(JSON.stringify({ type: 'start', sample_rate: 16000, encoding: 'pcm16' }));
    const results = (await Promise.all(outcomes)).sort();
    assert.deepEqual(results, ['closed 4409', 'started'], `round ${round}`);
    const openStreams: { rows: { n: string }[] } = await db.client.query<{ n: string }>('SELECT count(*) AS n FROM speech_audio_streams WHERE session_id = $1 AND released_at IS NULL', [session.id]);
    assert.equal(Number(openStreams.rows[0].n), 1, 'one open stream in the database');
    for (const ws of sockets) ws.close();
  }
});

test('two api processes, one session, two changes based on the same version: one 409, no lost update', async (t) => {
  if (!db || !brokers) {
    // Outside CI only: in CI before() has already failed without them.
    assert.ok(!isCi(process.env), 'CI needs Kafka and PostgreSQL');
    return t.skip('needs Kafka and a PostgreSQL server');
  }
  const prefix = `mp-${randomUUID().slice(0, 8)}.`;
  const [a, b] = await Promise.all([startRole('api', prefix), startRole('api', prefix)]);
  const token = auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['write:sessions', 'read:sessions'] });
  const call = async (base: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  for (let round = 0; round < 5; round++) {
    const created = await call(a, 'POST', '/v1/sessions', { title: 'start', metadata: {} });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const v = created.body.version;
    const [ra, rb] = await Promise.all([
      call(a, 'PATCH', `/v1/sessions/${created.body.id}`, { title: 'from a', version: v }),
      call(b, 'PATCH', `/v1/sessions/${created.body.id}`, { metadata: { from: 'b' }, version: v }),
    ]);
    const statuses = [ra.status, rb.status].sort();
    assert.deepEqual(statuses, [200, 409], `round ${round}: ${JSON.stringify([ra.body, rb.body])}`);
    const loser = ra.status === 409 ? { res: ra, base: a, change: { title: 'from a' } } : { res: rb, base: b, change: { metadata: { from: 'b' } } };
    assert.equal(loser.res.body.error.code, 'conflict');
    assert.equal(loser.res.body.error.details[0].reason, 'version_conflict');
    // The loser reads the current version and tries again: both changes are kept.
    const current = await call(loser.base, 'GET', `/v1/sessions/${created.body.id}`);
    const retried = await call(loser.base, 'PATCH', `/v1/sessions/${created.body.id}`, { ...loser.change, version: current.body.version });
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal(retried.body.version, v + 2);
    assert.equal(retried.body.title, 'from a');
    assert.deepEqual(retried.body.metadata, { from: 'b' });
  }
});
