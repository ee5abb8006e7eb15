// The health probes, in the session-sync document's shapes (../shared/seeds 001, "Health
// Endpoints"; issue 12), keeping the fields Attune answered before (checks, roles):
//   GET /health        {status, timestamp, version, services, uptime, checks, roles}
//   GET /health/ready  {ready, status, checks, roles}
//   GET /health/live   {alive, status}
// Rules (also in the README):
//   - checks: each dependency this process uses, up or down (a check that takes longer than
//     CHECK_TIMEOUT_MS is down): postgres, clickhouse (where the role opens it), bus.
//   - services: the same, as the document names them and says them: database (PostgreSQL),
//     messageQueue (the bus), cache (Redis for the shared rate limits; not_configured without
//     REDIS_URL), plus clickhouse where this process uses it; connected / disconnected.
//   - status: healthy when every check is up; unhealthy when PostgreSQL or the bus is down
//     (nothing can be taken in: sessions and readings need both); degraded otherwise (only
//     ClickHouse or Redis: ingest goes on, the bus keeps the data, queries of history fail or
//     rate limits are per process). /health answers 200 unless unhealthy (503).
//   - ready: the process can take data in, as /health's status is not unhealthy: PostgreSQL
//     and the bus up (200; status ok, or degraded with ClickHouse down), else 503 {ready:
//     false}. ClickHouse down made it 503 until 12-06, so a load balancer stopped sending
//     ingest (and every PostgreSQL-only call) to instances that could take it, all of them at
//     once since they share one ClickHouse (a walkthrough).
//   - alive: the process answers (always 200).
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from './context.js';

/** Dependency checks time out rather than hang a load balancer's probe. */
const CHECK_TIMEOUT_MS = 2_000;

/** Checks whose failure makes the process unhealthy (it can take nothing in). */
const ESSENTIAL = new Set(['postgres', 'bus']);

/** The document's service names for Attune's checks. */
const SERVICE_NAMES: Record<string, string> = { postgres: 'database', bus: 'messageQueue' };

/** Attune's version: package.json beside the sources (tsx) or above dist/ (compiled). */
export const attuneVersion: string = (() => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'attune' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there: the next candidate
    }
  }
  return 'unknown';
})();

/** Whether `check` answers true within CHECK_TIMEOUT_MS (a failure or a hang is false). */
async function answers(check: () => Promise<boolean>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check().catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runChecks(ctx: Pick<AppContext, 'health'>): Promise<Record<string, 'up' | 'down'>> {
  const results = await Promise.all(ctx.health.map(async (h) => [h.name, (await answers(() => h.check())) ? 'up' : 'down'] as const));
  return Object.fromEntries(results);
}

/**
 * The probes of a process without an HTTP server (`attune worker`, `attune sink`), served on
 * its metrics listener (ATTUNE_METRICS_PORT): `/health/live` and `/health/ready` with the
 * bodies and statuses of the main port's, from the same checks (no Redis: these roles use
 * none). null for any other path. Until 12-06 such a process had no probe at all (404).
 */
export function probeAnswers(health: AppContext['health'], roles: string[]): (path: string) => Promise<{ statusCode: number; body: unknown } | null> {
  return async (path) => {
    if (path === '/health/live') return { statusCode: 200, body: { alive: true, status: 'ok' } };
    if (path !== '/health/ready' && path !== '/health') return null;
    const checks = await runChecks({ health });
    if (path === '/health') {
      const status = healthStatus(checks, 'not_configured');
      const services: Record<string, string> = { cache: 'not_configured' };
      for (const [name, state] of Object.entries(checks)) services[SERVICE_NAMES[name] ?? name] = state === 'up' ? 'connected' : 'disconnected';
      return { statusCode: status === 'unhealthy' ? 503 : 200, body: { status, timestamp: new Date().toISOString(), version: attuneVersion, services, uptime: Math.floor(process.uptime()), checks, roles } };
    }
    const { ready, status } = readiness(checks);
    return { statusCode: ready ? 200 : 503, body: { ready, status, checks, roles } };
  };
}

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/**
 * /health/ready: ready while PostgreSQL and the bus answer; its status ok (every check up),
 * degraded (ready, ClickHouse or another non-essential check down) or unavailable (not ready;
 * until 12-06 it said degraded then too, where /health says unhealthy: an operator walkthrough).
 */
function readiness(checks: Record<string, string>): { ready: boolean; status: 'ok' | 'degraded' | 'unavailable' } {
  const ready = Object.entries(checks).every(([name, c]) => c === 'up' || !ESSENTIAL.has(name));
  if (!ready) return { ready, status: 'unavailable' };
  return { ready, status: Object.values(checks).every((c) => c === 'up') ? 'ok' : 'degraded' };
}

/** The status rule above, from the checks and Redis' state (null: not configured). */
export function healthStatus(checks: Record<string, 'up' | 'down'>, cache: 'connected' | 'disconnected' | 'not_configured'): HealthStatus {
  const down = Object.entries(checks).filter(([, v]) => v === 'down').map(([k]) => k);
  if (down.some((k) => ESSENTIAL.has(k))) return 'unhealthy';
  if (down.length > 0 || cache === 'disconnected') return 'degraded';
  return 'healthy';
}

export async function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const checksSchema = { type: 'object', additionalProperties: { type: 'string', enum: ['up', 'down'] } };
  const rolesSchema = { type: 'array', items: { type: 'string' } };
  const healthSchema = {
    type: 'object',
    required: ['status', 'timestamp', 'version', 'services', 'uptime'],
    properties: {
      status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'], description: 'healthy: every dependency up; unhealthy: PostgreSQL or the bus down; degraded: only ClickHouse or Redis down.' },
      timestamp: { type: 'string', format: 'date-time' },
      version: { type: 'string', description: "Attune's version (package.json)." },
      services: {
        type: 'object',
        description: 'database (PostgreSQL), messageQueue (the bus), cache (Redis; not_configured without REDIS_URL), clickhouse where this process uses it.',
        additionalProperties: { type: 'string', enum: ['connected', 'disconnected', 'not_configured'] },
      },
      uptime: { type: 'integer', description: 'Seconds since this process started.' },
      checks: checksSchema,
      roles: rolesSchema,
    },
  };
  const readySchema = { type: 'object', required: ['ready'], properties: { ready: { type: 'boolean' }, status: { type: 'string', enum: ['ok', 'degraded', 'unavailable'] }, checks: checksSchema, roles: rolesSchema } };
  const roles = Object.entries(ctx.roles).filter(([, on]) => on).map(([r]) => r);
  // Redis answers a PING within the checks' bound, as the other dependencies answer theirs: a
  // Redis that hangs (its connection still open, so the client still says `ready`) is
  // disconnected too (it was reported connected while every limit waited out its timeout).
  const cacheState = async (): Promise<'connected' | 'disconnected' | 'not_configured'> => {
    const redis = (app as unknown as { rateLimits?: { redis: { status: string; ping(): Promise<unknown> } | null } | null }).rateLimits?.redis;
    if (!redis) return 'not_configured';
    if (redis.status !== 'ready') return 'disconnected';
    return (await answers(async () => (await redis.ping()) === 'PONG')) ? 'connected' : 'disconnected';
  };

  app.get(
    '/health',
    {
      config: { auth: 'public' },
      schema: { tags: ['health'], summary: 'Status of this process and its dependencies (200 healthy or degraded, 503 unhealthy).', response: { 200: healthSchema, 503: healthSchema } },
    },
    async (_req, reply) => {
      const [checks, cache] = await Promise.all([runChecks(ctx), cacheState()]);
      const services: Record<string, string> = {};
      for (const [name, state] of Object.entries(checks)) services[SERVICE_NAMES[name] ?? name] = state === 'up' ? 'connected' : 'disconnected';
      services.cache = cache;
      const status = healthStatus(checks, cache);
      return reply.status(status === 'unhealthy' ? 503 : 200).send({
        status,
        timestamp: new Date(ctx.clock()).toISOString(),
        version: attuneVersion,
        services,
        uptime: Math.floor(process.uptime()),
        checks,
        roles,
      });
    },
  );
  app.get(
    '/health/ready',
    { config: { auth: 'public' }, schema: { tags: ['health'], summary: 'Ready to take traffic: 200 {ready: true} while PostgreSQL and the bus answer (status degraded when ClickHouse does not: ingest goes on), else 503 {ready: false}.', response: { 200: readySchema, 503: readySchema } } },
    async (_req, reply) => {
      const checks = await runChecks(ctx);
      const { ready, status } = readiness(checks);
      return reply.status(ready ? 200 : 503).send({ ready, status, checks, roles });
    },
  );
  app.get(
    '/health/live',
    {
      config: { auth: 'public' },
      schema: { tags: ['health'], summary: 'The process is running: {alive: true}.', response: { 200: { type: 'object', required: ['alive'], properties: { alive: { type: 'boolean' }, status: { type: 'string' } } } } },
    },
    async () => ({ alive: true, status: 'ok' }),
  );
}
