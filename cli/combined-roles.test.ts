// Several roles in one process (`attune api,sink`), and the start-up warnings about chDB for one
// process of several: without a ClickHouse server an API process with no sinks reads tables no
// one writes, and sinks with no API write tables no one reads (an operator walkthrough: a
// session of 61 stored windows read back with no metrics, without a word at start).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clickhouseWarnings, rolesOf } from './main.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('rolesOf: all, one role, roles joined by commas; anything else is no role command', () => {
  assert.deepEqual(rolesOf('all'), { ingest: true, api: true, worker: true, sink: true });
  assert.deepEqual(rolesOf('api'), { ingest: false, api: true, worker: false, sink: false });
  assert.deepEqual(rolesOf('api,sink'), { ingest: false, api: true, worker: false, sink: true });
  assert.deepEqual(rolesOf('sink,api,ingest'), { ingest: true, api: true, worker: false, sink: true });
  for (const c of ['api,', 'api,nope', 'all,api', 'token', 'migrate', 'api sink']) assert.equal(rolesOf(c), null, c);
});

test('clickhouseWarnings: on Kafka without CLICKHOUSE_URL, an API without sinks and sinks without an API are warned about, naming CLICKHOUSE_URL', () => {
  const kafka = { bus: 'kafka' as const, clickhouseUrl: null };
  assert.match(clickhouseWarnings(rolesOf('api')!, kafka).join(), /^CLICKHOUSE_URL is not set: this API reads chDB.*\(`attune api,sink`\)$/);
  assert.match(clickhouseWarnings(rolesOf('sink')!, kafka).join(), /^CLICKHOUSE_URL is not set: these sinks write chDB.*\(`attune api,sink`\)$/);
  assert.deepEqual(clickhouseWarnings(rolesOf('api,sink')!, kafka), []);
  assert.deepEqual(clickhouseWarnings(rolesOf('all')!, kafka), []);
  assert.deepEqual(clickhouseWarnings(rolesOf('ingest')!, kafka), []);
  assert.deepEqual(clickhouseWarnings(rolesOf('worker')!, kafka), []);
  assert.deepEqual(clickhouseWarnings(rolesOf('api')!, { bus: 'kafka', clickhouseUrl: 'http://ch:8123' }), []);
  assert.deepEqual(clickhouseWarnings(rolesOf('api')!, { bus: 'embedded', clickhouseUrl: null }), []);
});

test('attune api,sink starts one process with both roles (the API routes and the sinks)', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-api-sink-'));
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['migrate'])).then(() => import('./cli/main.ts')).then((m) => m.main(['api,sink']))`], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '', PORT: '0', HOST: '127.0.0.1', ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex'), ATTUNE_SIMULATE: '0', LOG_LEVEL: 'info', ATTUNE_WEBHOOKS: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const listening = await new Promise<any>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"attune listening"'));
        if (line) resolve({ ...JSON.parse(line), raw: line });
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${err.slice(-800)}`)));
    });
    assert.equal(listening.roles, 'api,sink', 'the command, bound on every line of its logger');
    assert.deepEqual(listening.enabled_roles, ['api', 'sink']);
    // Structured logs: no key twice in the line (it had "roles" twice: the command and the flags).
    assert.equal(listening.raw.split('"roles":').length - 1, 1, listening.raw);
    const health: any = await (await fetch(`${listening.url}/health`)).json();
    assert.deepEqual(health.roles, ['api', 'sink']);
    assert.equal(health.checks.clickhouse, 'up');
    // An API route answers (401 without a token, not 404); an ingest route is not here.
    assert.equal((await fetch(`${listening.url}/v1/sessions`)).status, 401);
    assert.equal((await fetch(`${listening.url}/v1/devices`, { method: 'POST' })).status, 404);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
});
