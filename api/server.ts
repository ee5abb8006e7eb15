// Builds the Fastify server for the roles a process runs: ingest routes, API routes, or both
// (the embedded default shares one server). Routes are plain modules registered here, each
// one concern, with JSON Schemas that double as validation and as the OpenAPI document.
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { AppContext } from './context.js';
import { registerErrorHandling } from './errors.js';
import { registerHealthRoutes } from './health.js';
import { registerSessionRoutes } from './sessions.js';
import { registerCoherenceRoutes } from './coherence.js';
import { registerLiveRoutes } from './live.js';
import { registerSpeechSessionRoutes } from './speech-sessions.js';
import { registerSpeechResultRoutes } from './speech-results.js';
import { registerSpeechLiveRoutes } from './speech-live.js';
import { registerIngestRoutes } from '../ingest/gateway.js';
import { registerSpeechIngestRoutes } from '../ingest/audio/routes.js';
import { registerSpeechUploadStatusRoute } from '../ingest/audio/upload.js';
import { Limits } from '../ingest/readings.js';

export const API_VERSION = '0.1.0';

export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger and fastify's FastifyBaseLogger differ only in generics.
    loggerInstance: ctx.log as unknown as FastifyBaseLogger,
    // One log line per request would dominate the logs of an ingest gateway; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: Limits.maxBodyBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
    routerOptions: { ignoreTrailingSlash: true },
    // Bodies are validated against schemas and never merged into other objects, so the
    // __proto__/constructor scan of every body (a cost per reading) buys nothing here.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
  });
  registerErrorHandling(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Attune API',
        version: API_VERSION,
        description:
          'Heart data ingest, HRV coherence history and live updates. Errors are {"error":{"code","message","details","request_id"}}. ' +
          'WebSocket routes are listed as GET; see the README for their message protocol.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket, { options: { maxPayload: Limits.maxWsMessageBytes } });

  await registerHealthRoutes(app, ctx);
  if (ctx.roles.ingest) await registerIngestRoutes(app, ctx);
  if (ctx.roles.ingest) await registerSpeechIngestRoutes(app, ctx);
  if (ctx.roles.api) {
    await registerSessionRoutes(app, ctx);
    await registerCoherenceRoutes(app, ctx);
    await registerLiveRoutes(app, ctx);
    // The speech API where the role wires its repository (and its live hub for the stream).
    if (ctx.speechSessions) {
      await registerSpeechSessionRoutes(app, ctx);
      await registerSpeechResultRoutes(app, ctx);
      await registerSpeechUploadStatusRoute(app, ctx);
      if (ctx.speechLive) await registerSpeechLiveRoutes(app, ctx);
    }
  }
  return app;
}
