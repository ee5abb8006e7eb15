// A process's PostgreSQL at start (cli/main.ts, cli/roles.ts openEntities): one role on Kafka
// without DATABASE_URL is refused (it would keep entities in a PGlite folder of its own); a
// server that cannot be reached is waited for, then the start fails with one line naming
// DATABASE_URL (exit 1); one that refuses the credentials fails at once (exit 2). Until 12-06
// all three started and listened as if nothing were wrong (an operator walkthrough), answering
// 500 to every sync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../test/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverDatabaseUrl } from '../store/postgres/test-databases.test-util.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const closedPort = freePort;

/** Runs `attune <role>` until it exits (or it listens: then it is stopped and `listened` is true). */
async function run(role: string, env: Record<string, string>): Promise<{ code: number | null; out: string; err: string; listened: boolean }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-pg-start-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['${role}']))`], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '', PORT: '0', HOST: '127.0.0.1', ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex'), ATTUNE_SIMULATE: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let listened = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!listened && out.includes('"attune listening"')) {
        listened = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    return { code, out, err, listened };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('attune ingest on Kafka without DATABASE_URL: exit 2 naming DATABASE_URL, before anything connects', { timeout: 60_000 }, async () => {
  const r = await run('ingest', { KAFKA_BROKERS: `127.0.0.1:${await closedPort()}` });
  assert.equal(r.code, 2, `exit code (stderr: ${r.err.slice(-500)})`);
  assert.match(r.err, /^attune: invalid configuration: DATABASE_URL: `attune ingest` on Kafka needs the PostgreSQL server/m);
  assert.equal(r.listened, false);
});

test('PostgreSQL unreachable at start: waits (logged), then exits 1 with one line naming DATABASE_URL and the wait, no password, no stack', { timeout: 60_000 }, async () => {
  const port = await closedPort();
  const r = await run('ingest', { DATABASE_URL: `postgres://attune:s3cret-pw@127.0.0.1:${port}/attune`, ATTUNE_POSTGRES_CONNECT_WAIT_MS: '2500' });
  assert.equal(r.code, 1, `exit code (stderr: ${r.err.slice(-500)})`);
  assert.equal(r.listened, false, 'it never listened');
  assert.match(r.err, new RegExp(`^attune: PostgreSQL at 127\\.0\\.0\\.1:${port}/attune \\(DATABASE_URL\\) unreachable for 3 s \\(ATTUNE_POSTGRES_CONNECT_WAIT_MS\\): connect ECONNREFUSED`, 'm'));
  assert.doesNotMatch(r.err + r.out, /s3cret-pw/);
  assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
  const attempts = r.out.split('\n').filter((l) => l.includes('PostgreSQL unreachable at start'));
  assert.ok(attempts.length >= 2, `each attempt is logged: ${attempts.length}`);
  assert.match(attempts.at(-1)!, /giving up/);
  assert.match(attempts[0], /"err":"connect ECONNREFUSED/, 'each attempt logs the driver\'s error');
});

test('PostgreSQL refusing the password: exit 2 at once, naming DATABASE_URL, no password', { timeout: 60_000 }, async () => {
  // The server: CI's, or one infra/postgres/postgres.sh starts here; never skipped.
  const url = await serverDatabaseUrl();
  assert.ok(url, 'a PostgreSQL server (DATABASE_URL, or infra/postgres/postgres.sh from the machine\'s binaries)');
  const wrong = new URL(url);
  wrong.password = 'not-the-password';
  const began = performance.now();
  const r = await run('ingest', { DATABASE_URL: wrong.toString() });
  assert.equal(r.code, 2, `exit code (stderr: ${r.err.slice(-500)})`);
  assert.equal(r.listened, false);
  assert.match(r.err, /^attune: invalid configuration: DATABASE_URL: PostgreSQL at .+ refused the connection: password authentication failed/m);
  assert.doesNotMatch(r.err + r.out, /not-the-password/);
  assert.ok(performance.now() - began < 30_000, 'no wait');
});
