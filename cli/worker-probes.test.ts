// `attune worker` (and `attune sink`) have no HTTP server: their health probes are on the
// metrics listener (ATTUNE_METRICS_PORT), with the main port's bodies: /health/live 200,
// /health/ready 200 while PostgreSQL and the bus answer, 503 when one does not. Until 12-06
// they answered 404 there, so an orchestrator had no readiness or liveness probe for them
// (an operator walkthrough).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import { startAttune } from './roles.js';

test('a worker process answers /health/live, /health/ready and /health on its metrics port, and says when PostgreSQL is gone', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-worker-probes-'));
  const config = loadConfig({ ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex'), ATTUNE_METRICS_PORT: '0', ATTUNE_SPEECH: '0', ATTUNE_TOPIC_PARTITIONS: '2' });
  const running = await startAttune(config, { ingest: false, api: false, worker: true, sink: false }, silentLogger, { migrate: true });
  try {
    assert.equal(running.server, null);
    const base = running.metricsUrl!;
    const live = await fetch(`${base}/health/live`);
    assert.deepEqual([live.status, await live.json()], [200, { alive: true, status: 'ok' }]);
    const ready = await fetch(`${base}/health/ready`);
    assert.deepEqual([ready.status, await ready.json()], [200, { ready: true, status: 'ok', checks: { postgres: 'up', bus: 'up' }, roles: ['worker'] }]);
    const health: any = await (await fetch(`${base}/health`)).json();
    assert.deepEqual([health.status, health.services], ['healthy', { cache: 'not_configured', database: 'connected', messageQueue: 'connected' }]);
    assert.equal((await fetch(`${base}/metrics`)).status, 200, 'metrics as before');
    assert.equal((await fetch(`${base}/other`)).status, 404);

    await running.sql.close();
    const gone = await fetch(`${base}/health/ready`);
    const body: any = await gone.json();
    assert.deepEqual([gone.status, body.ready, body.checks.postgres], [503, false, 'down']);
    assert.equal((await fetch(`${base}/health/live`)).status, 200, 'alive while a dependency is down');
  } finally {
    await running.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
