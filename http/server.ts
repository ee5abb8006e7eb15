// The Fastify server every role builds on: one server per process, whatever roles it runs
// (the embedded default shares one). Routes are plain modules registered on it, each one
// concern, with JSON Schemas that double as validation and as the OpenAPI document.
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { AppContext } from './context.js';
import { clientErrorHandler, frameworkErrorHandler, registerErrorHandling } from './errors.js';
import { registerAuth } from './auth-plugin.js';

export const API_VERSION = '0.1.0';

export interface HttpServerLimits {
  /** Largest request body, bytes. */
  bodyLimit: number;
  /** Largest WebSocket message, bytes. */
  maxWsMessageBytes: number;
}

/**
 * A Fastify server with what every role shares: request ids, the coded error handler, the
 * OpenAPI document and the WebSocket plugin. Routes are registered on it by the composition
 * root (cli/server.ts).
 */
export async function createHttpServer(ctx: Pick<AppContext, 'log' | 'auth'>, limits: HttpServerLimits): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger and fastify's FastifyBaseLogger differ only in generics.
    loggerInstance: ctx.log as unknown as FastifyBaseLogger,
    // One log line per request would dominate the logs of an ingest gateway; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
    routerOptions: { ignoreTrailingSlash: true },
    // Bodies are validated against schemas and never merged into other objects, so the
    // __proto__/constructor scan of every body (a cost per reading) buys nothing here.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // Errors Fastify answers on its own get the coded body too: Node's parser errors (431
    // headers too large), errors before routing (414 a too-long path segment, a malformed URL),
    // and requests during shutdown (503, refused by registerErrorHandling's onRequest hook).
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    return503OnClosing: false,
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
  await app.register(websocket, { options: { maxPayload: limits.maxWsMessageBytes } });
  // After the docs plugin's own routes: every route from here on declares who may call it.
  registerAuth(app, ctx.auth);

  return app;
}
