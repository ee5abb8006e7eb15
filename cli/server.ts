// Builds the HTTP server for the roles a process runs: ingest routes, API routes, or both (the
// embedded default shares one server). The composition root: api/ and ingest/ never import
// each other; this file puts them on one server.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../http/context.js';
import { registerHealthRoutes } from '../http/health.js';
import { createHttpServer } from '../http/server.js';
import { registerApiRoutes } from '../api/routes.js';
import { registerIngestRoutes } from '../ingest/gateway.js';
import { registerSpeechIngestRoutes } from '../ingest/audio/routes.js';
import { registerSpeechUploadStatusRoute } from '../ingest/audio/upload.js';
import { Limits } from '../ingest/readings.js';
import type { Metrics } from '../lib/metrics.js';
import { registerHttpMetrics, registerMetricsRoute } from '../http/metrics.js';

export { API_VERSION } from '../http/server.js';

/** `metrics`: the process's registry, fed by every request; with `metricsToken`, GET /metrics behind it (http/metrics.ts). */
export async function buildServer(ctx: AppContext, opts: { metrics?: Metrics; metricsToken?: string | null } = {}): Promise<FastifyInstance> {
  const app = await createHttpServer(ctx, { bodyLimit: Limits.maxBodyBytes, maxWsMessageBytes: Limits.maxWsMessageBytes, timeouts: ctx.httpTimeouts });
  if (opts.metrics) registerHttpMetrics(app, opts.metrics);
  if (opts.metrics && opts.metricsToken) registerMetricsRoute(app, opts.metrics, opts.metricsToken);
  await registerHealthRoutes(app, ctx);
  if (ctx.roles.ingest) {
    await registerIngestRoutes(app, ctx);
    await registerSpeechIngestRoutes(app, ctx);
  }
  if (ctx.roles.api) await registerApiRoutes(app, ctx);
  // An upload's progress is served wherever uploads are taken or the API runs.
  if ((ctx.roles.ingest || ctx.roles.api) && ctx.speechSessions && ctx.speechUploads) await registerSpeechUploadStatusRoute(app, ctx);
  return app;
}
