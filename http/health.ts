import type { FastifyInstance } from 'fastify';
import type { AppContext } from './context.js';

/** Dependency checks time out rather than hang a load balancer's probe. */
const CHECK_TIMEOUT_MS = 2_000;

async function runChecks(ctx: AppContext): Promise<Record<string, 'up' | 'down'>> {
  const results = await Promise.all(
    ctx.health.map(async (h) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS);
      });
      try {
        const ok = await Promise.race([h.check().catch(() => false), timeout]);
        return [h.name, ok ? 'up' : 'down'] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return Object.fromEntries(results);
}

export async function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const checksSchema = { type: 'object', additionalProperties: { type: 'string', enum: ['up', 'down'] } };
  const healthSchema = {
    type: 'object',
    properties: { status: { type: 'string', enum: ['ok', 'degraded'] }, checks: checksSchema, roles: { type: 'array', items: { type: 'string' } } },
  };
  const roles = Object.entries(ctx.roles).filter(([, on]) => on).map(([r]) => r);

  app.get('/health', { config: { auth: 'public' }, schema: { tags: ['health'], summary: 'Status of this process and its dependencies.', response: { 200: healthSchema } } }, async () => {
    const checks = await runChecks(ctx);
    return { status: Object.values(checks).every((c) => c === 'up') ? 'ok' : 'degraded', checks, roles };
  });
  app.get('/health/ready', { config: { auth: 'public' }, schema: { tags: ['health'], summary: 'Ready to take traffic: 200 when every dependency answers, else 503.', response: { 200: healthSchema, 503: healthSchema } } }, async (_req, reply) => {
    const checks = await runChecks(ctx);
    const ok = Object.values(checks).every((c) => c === 'up');
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', checks, roles });
  });
  app.get('/health/live', { config: { auth: 'public' }, schema: { tags: ['health'], summary: 'The process is running.', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }));
}
