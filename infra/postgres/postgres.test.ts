// The local PostgreSQL script's life cycle, on its own port and data directory so that it does
// not disturb the server other test files use: two concurrent starts make one server that
// accepts the printed DATABASE_URL, data survives a restart, a port taken by something else is
// refused, and stop really stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPgClient } from '../../store/postgres/client.js';

const script = fileURLToPath(new URL('./postgres.sh', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [script, cmd], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function listen(port = 0): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

async function freePort(): Promise<number> {
  const server = await listen();
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.on('connect', () => (sock.destroy(), resolve(true)));
    sock.on('error', () => resolve(false));
  });
}

/** Live postmasters (postgres processes with -D <dataDir>/pgdata on their command line). */
function postmasters(dataDir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (/postgres$/.test(cmdline[0]) && cmdline.join(' ').includes(`-D ${dataDir}/pgdata`)) pids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

function hasPostgres(): boolean {
  return existsSync('/usr/lib/postgresql') || !!process.env.POSTGRES_BIN_DIR;
}

test('postgres.sh: concurrent start, DATABASE_URL works, restart keeps data, stop', { timeout: 180_000 }, async (t) => {
  if (!hasPostgres()) {
    if (process.env.CI === 'true') assert.fail('CI must have PostgreSQL binaries for infra/postgres/postgres.sh (apt-get install postgresql)');
    t.skip('PostgreSQL binaries not installed');
    return;
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-pg-script-test-'));
  // mkdtemp makes it 0700; the server's OS user (when we are root) must be able to enter it.
  chmodSync(dataDir, 0o755);
  const port = await freePort();
  const env = { ...process.env, POSTGRES_DATA_DIR: join(dataDir, 'run'), POSTGRES_PORT: String(port), POSTGRES_DB: 'lifecycle', POSTGRES_PASSWORD: 'p@ss w/rd' };
  const runDir = env.POSTGRES_DATA_DIR;
  const t0 = Date.now();
  const phase = (name: string) => t.diagnostic(`${name} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    assert.equal((await run('status', env)).code, 1, 'not running before start');

    const [a, b] = await Promise.all([run('start', env), run('start', env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const expected = `DATABASE_URL=postgres://attune:p%40ss%20w%2Frd@127.0.0.1:${port}/lifecycle`;
    for (const r of [a, b]) assert.equal(r.stdout.trim(), expected, 'stdout is exactly the URL line');
    phase('both starts returned');
    const pids = postmasters(runDir);
    assert.equal(pids.length, 1, `exactly one server, got ${pids.join(',')}`);
    assert.equal((await run('status', env)).code, 0);
    assert.ok(!existsSync(`${runDir}.lock`), 'the start lock is released');

    const url = expected.slice('DATABASE_URL='.length);
    const client = await createPgClient({ url });
    try {
      const who = await client.query<{ db: string; usr: string; v: string }>('SELECT current_database() AS db, current_user AS usr, current_setting($1) AS v', ['server_version_num']);
      assert.deepEqual([who.rows[0].db, who.rows[0].usr], ['lifecycle', 'attune']);
      assert.ok(Number(who.rows[0].v) >= 150000, `PostgreSQL 15 or later, got ${who.rows[0].v}`);
      await client.exec('CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$survives$$)');
    } finally {
      await client.close();
    }
    // A wrong password is refused over TCP (scram-sha-256, not trust).
    const wrong = await createPgClient({ url: url.replace('p%40ss%20w%2Frd', 'nope') });
    await assert.rejects(wrong.query('SELECT 1'), /password authentication failed/);
    await wrong.close();

    const again = await run('start', env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(postmasters(runDir), pids, 'start while running is a no-op');

    const stopped = await run('stop', env);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(postmasters(runDir), []);
    assert.equal(await portOpen(port), false);
    assert.equal((await run('status', env)).code, 1);
    assert.equal((await run('stop', env)).code, 0, 'stop when stopped is fine');
    phase('stopped');

    // The port taken by another program: start refuses instead of hanging or lying.
    const squatter = await listen(port);
    try {
      const refused = await run('start', env);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /port .* already in use/);
      assert.equal(refused.stdout, '');
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }

    // Restart on the same data: no initdb, the table is still there.
    const restarted = await run('start', env);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.doesNotMatch(restarted.stderr, /initdb/);
    const client2 = await createPgClient({ url });
    try {
      assert.deepEqual((await client2.query('SELECT v FROM kept')).rows, [{ v: 'survives' }]);
    } finally {
      await client2.close();
    }
    phase('restarted');
  } finally {
    await run('stop', env);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
