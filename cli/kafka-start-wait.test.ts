// A process started while Kafka is unreachable (cli/roles.ts, openBus): it waits for the broker
// with a back-off for ATTUNE_KAFKA_CONNECT_WAIT_MS, saying so in its log, then exits 1 with one
// line naming the brokers, not with a Kafka client's uncaught stack trace (which is what
// `attune all` did before: KafkaJSNumberOfRetriesExceeded out of main()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../test/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const closedPort = freePort;

test('attune all with Kafka unreachable: retries (logged), then exits 1 naming the brokers, no stack trace', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-kafka-wait-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['all']))`], {
      cwd: root,
      env: { ...process.env, KAFKA_BROKERS: `127.0.0.1:${port}`, ATTUNE_KAFKA_CONNECT_WAIT_MS: '20000', PORT: '0', HOST: '127.0.0.1', ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex'), ATTUNE_SIMULATE: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1, `exit code (stderr: ${err.slice(-500)})`);
    assert.match(err, new RegExp(`attune: Kafka at 127\\.0\\.0\\.1:${port} unreachable for 20 s \\(ATTUNE_KAFKA_CONNECT_WAIT_MS\\)`));
    assert.doesNotMatch(err, /KafkaJSNumberOfRetriesExceeded|triggerUncaughtException|^\s+at /m, 'no stack trace');
    // Each failed attempt is logged (how many fit in the wait depends on the client's own retries).
    const attempts = out.split('\n').filter((l) => l.includes('Kafka unreachable at start'));
    assert.ok(attempts.length >= 1, 'the failed attempts are logged');
    assert.match(attempts.at(-1)!, /giving up/);
    assert.ok(!out.includes('attune listening'), 'it never listened');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
