// Issue 11's "two concurrent joins for the last seat from two processes against a real
// Postgres (exactly one admitted)": two `attune api` processes on one PostgreSQL server, each
// receiving joins of one mesh session at the same moment while a single seat is left. The
// session row lock taken by the join's transaction (store/postgres/mesh-repo.ts) decides:
// every round admits exactly one joiner, the others get 409 mesh_full, and the
// database holds max_participants participants. The processes run on their own embedded bus
// (nothing here crosses the bus); only PostgreSQL is shared, as in a scaled-out deployment.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthenticator } from '../http/auth.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { MeshRepository } from '../store/postgres/mesh-repo.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from '../store/postgres/test-databases.test-util.js';
import { startAttuneProcess, stopAttuneProcesses } from './attune-process.js';

const ROUNDS = 12;
/** Joins sent per round: half to each process, all for the one seat left. */
const RACERS = 4;
const SEATS = 3;

const secret = randomBytes(32).toString('hex');
const auth = createAuthenticator({ secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });

let db: TestDatabase | null = null;
const children: ChildProcess[] = [];
const dirs: string[] = [];

before(async () => {
  // In CI serverDatabaseUrl() throws without DATABASE_URL, so this file fails rather than skips.
  const url = await serverDatabaseUrl();
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

/**
 * Runs `attune migrate` then `attune api` in a child process (a single role does not migrate:
 * its chDB needs the group tables the join reads) and resolves with its URL once it listens.
 */
function startApiProcess(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-mesh-mp-'));
  dirs.push(dataDir);
  return startAttuneProcess(['migrate', 'api'], {
    ATTUNE_DATA_DIR: dataDir,
    DATABASE_URL: db!.url!,
    KAFKA_BROKERS: '',
    CLICKHOUSE_URL: '',
    CLICKHOUSE_DATABASE: `mesh_${randomUUID().replace(/-/g, '').slice(0, 10)}`,
    JWT_SECRET: secret,
    // Many requests from a few users at once: the enterprise tier keeps the rate limits
    // (tested in http/rate-limit*.test.ts) out of what this file tests.
    ATTUNE_DEFAULT_TIER: 'enterprise',
  }, children);
}

async function call(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

test(`two api processes, ${RACERS} joins at once for the last seat of a mesh session: exactly one admitted (${ROUNDS} rounds)`, async (t) => {
  if (!db) return t.skip('needs a PostgreSQL server (DATABASE_URL or infra/postgres/postgres.sh)');
  const [a, b] = await Promise.all([startApiProcess(), startApiProcess()]);
  const org = 'org-mesh-mp';
  const host = auth.sign({ userId: 'host', orgId: org, scopes: ['mesh:create', 'mesh:join'] });
  const repo = new MeshRepository(db.client);
  for (let round = 0; round < ROUNDS; round++) {
    const created = await call(round % 2 === 0 ? a : b, host, 'POST', '/v1/mesh/sessions', { name: `last seat ${round}`, max_participants: SEATS });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    // All seats but one taken, through both processes.
    for (let i = 0; i < SEATS - 1; i++) {
      const r = await call(i % 2 === 0 ? a : b, auth.sign({ userId: `seated-${i}`, orgId: org, scopes: ['mesh:join'] }), 'POST', `/v1/mesh/sessions/${id}/join`, {});
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const racers = Array.from({ length: RACERS }, (_, i) => ({ base: i % 2 === 0 ? a : b, token: auth.sign({ userId: `racer-${round}-${i}`, orgId: org, scopes: ['mesh:join'] }) }));
    const results = await Promise.all(racers.map((r) => call(r.base, r.token, 'POST', `/v1/mesh/sessions/${id}/join`, { intention: 'the last seat' })));
    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    assert.equal(admitted.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => [r.status, r.body?.error?.details?.[0]?.reason ?? r.body?.position]))}`);
    for (const r of refused) assert.deepEqual([r.status, r.body.error.code, r.body.error.details[0].reason], [409, 'mesh_full', 'mesh_full']);
    assert.deepEqual([admitted[0].body.position, admitted[0].body.participant_count], [SEATS, SEATS]);
    const present = await repo.present(id);
    assert.equal(present.length, SEATS, `round ${round}: the database holds max_participants participants`);
    assert.equal(present.filter((p) => p.userId.startsWith('racer-')).length, 1);
  }
});
