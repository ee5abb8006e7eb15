// The health probes in the session-sync document's shapes (../shared/seeds 001, "Health
// Endpoints"), with the fields Attune answered before kept: status healthy / degraded /
// unhealthy by the documented rule and its status code, services as the document names them,
// /health/ready {ready} (503 when PostgreSQL or the bus is down) and /health/live {alive}. Dependency
// checks are stand-ins here, so each state can be made; a whole Attune answers healthy.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AppContext } from './context.js';
import { attuneVersion, healthStatus, registerHealthRoutes } from './health.js';
import { startTestAttune } from '../test/attune.js';

const servers: FastifyInstance[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function serverWith(up: Record<string, boolean | 'hang'>): Promise<FastifyInstance> {
  const app = Fastify();
  servers.push(app);
  const ctx = {
    health: Object.entries(up).map(([name, ok]) => ({ name, check: () => (ok === 'hang' ? new Promise<boolean>(() => {}) : ok ? Promise.resolve(true) : Promise.reject(new Error('down'))) })),
    roles: { ingest: true, api: true, worker: false },
    clock: () => Date.parse('2026-02-12T12:00:00Z'),
  } as unknown as AppContext;
  await registerHealthRoutes(app, ctx);
  return app;
}

test('healthStatus: unhealthy when PostgreSQL or the bus is down, degraded when only ClickHouse or Redis is', () => {
  assert.equal(healthStatus({ postgres: 'up', clickhouse: 'up', bus: 'up' }, 'not_configured'), 'healthy');
  assert.equal(healthStatus({ postgres: 'up', clickhouse: 'down', bus: 'up' }, 'not_configured'), 'degraded');
  assert.equal(healthStatus({ postgres: 'up', clickhouse: 'up', bus: 'up' }, 'disconnected'), 'degraded');
  assert.equal(healthStatus({ postgres: 'down', clickhouse: 'up', bus: 'up' }, 'connected'), 'unhealthy');
  assert.equal(healthStatus({ postgres: 'up', bus: 'down' }, 'connected'), 'unhealthy');
});

test('every dependency up: 200 healthy with the document fields, services named as the document names them, and the old checks and roles', async () => {
  const app = await serverWith({ postgres: true, clickhouse: true, bus: true });
  const res = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(res.statusCode, 200);
  const b = res.json();
  assert.equal(b.status, 'healthy');
  assert.equal(b.timestamp, '2026-02-12T12:00:00.000Z');
  assert.equal(b.version, attuneVersion);
  assert.match(b.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(b.services, { database: 'connected', clickhouse: 'connected', messageQueue: 'connected', cache: 'not_configured' });
  assert.ok(Number.isInteger(b.uptime) && b.uptime >= 0);
  assert.deepEqual(b.checks, { postgres: 'up', clickhouse: 'up', bus: 'up' });
  assert.deepEqual(b.roles, ['ingest', 'api']);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  assert.deepEqual([ready.statusCode, ready.json().ready], [200, true]);
  const live = await app.inject({ method: 'GET', url: '/health/live' });
  assert.deepEqual([live.statusCode, live.json()], [200, { alive: true, status: 'ok' }]);
});

test('ClickHouse down: 200 degraded, and ready (ingest and PostgreSQL-only calls go on: 200 {ready: true, status: degraded})', async () => {
  const app = await serverWith({ postgres: true, clickhouse: false, bus: true });
  const res = await app.inject({ method: 'GET', url: '/health' });
  assert.deepEqual([res.statusCode, res.json().status, res.json().services.clickhouse], [200, 'degraded', 'disconnected']);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  assert.deepEqual([ready.statusCode, ready.json().ready, ready.json().status, ready.json().checks.clickhouse], [200, true, 'degraded', 'down']);
});

test('the bus down (or a check that hangs past its 2 s bound): 503 unhealthy; live stays 200', async () => {
  const app = await serverWith({ postgres: true, bus: 'hang' });
  const res = await app.inject({ method: 'GET', url: '/health' });
  assert.deepEqual([res.statusCode, res.json().status, res.json().services.messageQueue], [503, 'unhealthy', 'disconnected']);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  assert.deepEqual([ready.statusCode, ready.json().ready, ready.json().status], [503, false, 'unavailable'], 'nothing can be taken in: not ready');
  const live = await app.inject({ method: 'GET', url: '/health/live' });
  assert.equal(live.statusCode, 200);
});

test('Redis that hangs (its connection open, the client still ready) or refuses: 200 degraded, cache disconnected; one that answers: healthy', async () => {
  const states: Array<[string, { status: string; ping(): Promise<unknown> }, string, string]> = [
    ['hangs', { status: 'ready', ping: () => new Promise(() => {}) }, 'degraded', 'disconnected'],
    ['fails', { status: 'ready', ping: () => Promise.reject(new Error('Command timed out')) }, 'degraded', 'disconnected'],
    ['gone', { status: 'reconnecting', ping: () => Promise.reject(new Error('closed')) }, 'degraded', 'disconnected'],
    ['answers', { status: 'ready', ping: () => Promise.resolve('PONG') }, 'healthy', 'connected'],
  ];
  for (const [what, redis, status, cache] of states) {
    const app = Fastify();
    servers.push(app);
    app.decorate('rateLimits', { redis } as never);
    const ctx = { health: [{ name: 'postgres', check: () => Promise.resolve(true) }, { name: 'bus', check: () => Promise.resolve(true) }], roles: { api: true }, clock: () => 0 } as unknown as AppContext;
    await registerHealthRoutes(app, ctx);
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.deepEqual([what, res.statusCode, res.json().status, res.json().services.cache], [what, 200, status, cache]);
  }
});

test('a whole embedded Attune answers healthy', async () => {
  const attune = await startTestAttune({ entities: 'pglite' });
  try {
    const res = await attune.request('GET', '/health');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'healthy');
    assert.deepEqual(Object.keys(res.body.services).sort(), ['cache', 'clickhouse', 'database', 'messageQueue']);
  } finally {
    await attune.cleanup();
  }
});
