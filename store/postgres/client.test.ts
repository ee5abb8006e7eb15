// The SqlClient factories: PGlite keeps its data in <dataDir>/postgres across a restart (the
// embedded default), the `pg` driver is loaded only when a server is used, and transactions
// commit or roll back on both adapters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSqlClient } from './client.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

test('PGlite in <dataDir>/postgres: transactions commit or roll back, and the data survives a reopen', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-pglite-test-'));
  try {
    const first = await createSqlClient({ dataDir });
    assert.equal(first.kind, 'pglite');
    assert.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')), 'the cluster lives in <dataDir>/postgres');
    await first.exec('CREATE TABLE t (id int PRIMARY KEY, note text)');
    await first.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1, $2)', [1, 'committed']);
    });
    await assert.rejects(
      first.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1, $2)', [2, 'rolled back']);
        throw new Error('boom');
      }),
      /boom/,
    );
    const updated = await first.query('UPDATE t SET note = note WHERE id = $1', [1]);
    assert.equal(updated.rowCount, 1);
    await first.close();

    const again = await createSqlClient({ dataDir });
    try {
      assert.deepEqual((await again.query('SELECT id, note FROM t ORDER BY id')).rows, [{ id: 1, note: 'committed' }]);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('importing the client module loads neither driver; a server client loads pg', { timeout: 60_000 }, async () => {
  // A fresh process: what this one imported says nothing. pg is CommonJS, so it shows in
  // require.cache once loaded.
  const script = `
    import { createRequire } from 'node:module';
    const cache = createRequire(import.meta.url).cache;
    const pgLoaded = () => Object.keys(cache).some((k) => /node_modules[\\\\/]pg[\\\\/]/.test(k));
    const m = await import('./store/postgres/client.ts');
    const before = pgLoaded();
    const c = await m.createSqlClient({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    await c.close();
    console.log(JSON.stringify({ before, after: pgLoaded(), kind: c.kind }));
  `;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { before: false, after: true, kind: 'pg' });
});

test('a PostgreSQL server that cannot be reached: query, exec and transaction reject with unavailable / database_unavailable (a 503), not the driver error (a 500)', { timeout: 60_000 }, async () => {
  const { createServer } = await import('node:net');
  const { isAttuneError } = await import('../../lib/errors.js');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  const sql = await createSqlClient({ databaseUrl: `postgres://attune:attune@127.0.0.1:${port}/attune` });
  try {
    const unavailable = (e: unknown) => {
      assert.ok(isAttuneError(e), `an AttuneError, got ${String(e)}`);
      assert.equal(e.code, 'unavailable');
      assert.equal(e.statusCode, 503);
      assert.equal(e.details[0]?.reason, 'database_unavailable');
      assert.equal(typeof e.details[0]?.retry_after_s, 'number');
      assert.doesNotMatch(e.message, new RegExp(String(port)), 'no address in what clients see');
      assert.match(String((e as Error & { cause?: Error }).cause?.message), /ECONNREFUSED/);
      return true;
    };
    await assert.rejects(sql.query('SELECT 1'), unavailable);
    await assert.rejects(sql.exec('SELECT 1'), unavailable);
    await assert.rejects(sql.transaction(async (tx) => tx.query('SELECT 1')), unavailable);
  } finally {
    await sql.close();
  }
});

test('isDatabaseUnreachable: connection failures and shutdown states, not answers to the statement', async () => {
  const { isDatabaseUnreachable } = await import('./client.js');
  const coded = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code });
  for (const e of [coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), coded('terminating connection due to administrator command', '57P01'), coded('the database system is starting up', '57P03'), coded('x', '08006'), coded('Connection terminated unexpectedly'), coded('timeout exceeded when trying to connect')]) {
    assert.equal(isDatabaseUnreachable(e), true, e.message);
  }
  for (const e of [coded('duplicate key value violates unique constraint', '23505'), coded('syntax error at or near "x"', '42601'), coded('password authentication failed for user "attune"', '28P01'), 'ECONNREFUSED']) {
    assert.equal(isDatabaseUnreachable(e), false, String(e));
  }
});

test('a connection the server drops once it is handed out: the transaction rejects with unavailable / database_unavailable at BEGIN, and the process survives (the client\'s error event was uncaught)', { timeout: 60_000 }, async () => {
  const { createServer } = await import('node:net');
  const { isAttuneError } = await import('../../lib/errors.js');
  // A server that completes the start-up (AuthenticationOk, ReadyForQuery) and closes the
  // connection at its first statement: a PostgreSQL restarted while the connection was idle.
  const srv = createServer((socket) => {
    let started = false;
    socket.on('data', () => {
      if (!started) {
        started = true;
        const auth = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
        const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
        socket.write(Buffer.concat([auth, ready]));
        return;
      }
      socket.destroy();
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const sql = await createSqlClient({ databaseUrl: `postgres://attune:attune@127.0.0.1:${port}/attune` });
  try {
    let ran = false;
    await assert.rejects(
      sql.transaction(async (tx) => {
        ran = true;
        return tx.query('SELECT 1');
      }),
      (e: unknown) => {
        assert.ok(isAttuneError(e), `an AttuneError, got ${String(e)}`);
        assert.deepEqual([e.code, e.statusCode, e.details[0]?.reason], ['unavailable', 503, 'database_unavailable']);
        return true;
      },
    );
    assert.equal(ran, false, 'it failed at BEGIN');
  } finally {
    await sql.close();
    await new Promise((r) => srv.close(r));
  }
});
