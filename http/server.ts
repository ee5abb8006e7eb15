// The Fastify server every role builds on: one server per process, whatever roles it runs
// (the embedded default shares one). Routes are plain modules registered on it, each one
// concern, with JSON Schemas that double as validation and as the OpenAPI document.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { AppContext } from './context.js';
import { clientErrorHandler, frameworkErrorHandler, registerErrorHandling } from './errors.js';
import { registerAuth } from './auth-plugin.js';
import { connectionsCheckingIntervalMs, DEFAULT_HTTP_TIMEOUTS, registerBodyRateGuard, requestIdFor, type HttpTimeouts } from './timeouts.js';
import { wsConnectionHook, wsErrorHandler } from './ws-limits.js';
import { registerOpenApi } from './openapi.js';
import { registerResponseHeaders } from './response-headers.js';
import { registerTextGuard } from './text-guard.js';
import { registerRateLimit, trustProxyOption } from './rate-limit.js';
import { createLazySchemaCompilers } from './lazy-schema-compilers.js';

export const API_VERSION = '0.1.0';

/** How long a peer has to answer the closing handshake of a stopping server before its socket is destroyed. */
export const SHUTDOWN_CLOSE_GRACE_MS = 2_000;

/**
 * The WebSocket plugin's preClose: every socket is closed with 1001 ("going away", reason
 * `server shutting down`), so a client can tell a restart (reconnect and resume) from a
 * refusal; the plugin's own closed them without a code (the client saw 1005). A peer that
 * does not answer the closing handshake (it stopped reading, or vanished) is destroyed after
 * SHUTDOWN_CLOSE_GRACE_MS: the HTTP server's close waits for every connection, upgraded ones
 * too, and ws alone gives such a peer 30 s, which held a SIGTERM that long.
 */
function closeSocketsOnStop(this: FastifyInstance, done: () => void): void {
  const wss = this.websocketServer;
  for (const client of wss.clients) client.close(1001, 'server shutting down');
  if (wss.clients.size > 0) {
    const timer = setTimeout(() => {
      for (const client of wss.clients) client.terminate();
    }, SHUTDOWN_CLOSE_GRACE_MS);
    timer.unref();
    wss.once('close', () => clearTimeout(timer));
  }
  // New upgrades are refused meanwhile (503 shutting_down, http/errors.ts); ws's 'close' comes once every client has gone.
  wss.close();
  done();
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The route schemas' compilation (http/lazy-schema-compilers.ts). */
    routeSchemas: {
      /** Resolves once the warm-up after listening has compiled every schema: those that failed. */
      warmedUp: Promise<string[]>;
      /** Schemas not compiled yet. */
      pending(): number;
    };
  }
}

export interface HttpServerLimits {
  /** Largest request body, bytes. */
  bodyLimit: number;
  /** Largest WebSocket message, bytes. */
  maxWsMessageBytes: number;
  /** Connection, request and body timeouts (http/timeouts.ts); defaults DEFAULT_HTTP_TIMEOUTS. */
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * A Fastify server with what every role shares: request ids, the coded error handler, the
 * OpenAPI document and the WebSocket plugin. Routes are registered on it by the composition
 * root (cli/server.ts).
 */
export async function createHttpServer(ctx: Pick<AppContext, 'log' | 'auth' | 'rateLimit' | 'corsOrigins' | 'errorDocsUrl'>, limits: HttpServerLimits): Promise<FastifyInstance> {
  const timeouts: HttpTimeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...limits.timeouts };
  // Route schemas are compiled at their first use or just after listening, not before it
  // (http/lazy-schema-compilers.ts: a restarted process takes requests sooner). Fastify treats
  // these as custom compilers, so it does not lower-case the keys of a `headers` schema: none
  // of Attune's routes has one; one that did would name its headers in lower case.
  const schemas = createLazySchemaCompilers();
  const app = Fastify({
    schemaController: schemas.schemaController,
    // pino's Logger and fastify's FastifyBaseLogger differ only in generics.
    loggerInstance: ctx.log as unknown as FastifyBaseLogger,
    // One log line per request would dominate the logs of an ingest gateway; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyLimit,
    // A client's X-Request-Id is kept only when it is a short safe token (it goes into logs
    // and error bodies); anything else gets a fresh UUID (http/timeouts.ts requestIdFor).
    requestIdHeader: false,
    genReqId: requestIdFor,
    // The client address behind proxies (ATTUNE_TRUST_PROXY): what rate limits key anonymous requests by.
    trustProxy: trustProxyOption(ctx.rateLimit?.trustProxy),
    // Timeouts (http/timeouts.ts): headers 10 s, the whole request 15 min (a 200 MB upload at
    // 1.8 Mbit/s), an idle socket 60 s, an idle kept-alive one 30 s, and a body slower than
    // 8 KiB/s after its first 10 s is cut (registerBodyRateGuard below).
    connectionTimeout: timeouts.idleTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    requestTimeout: timeouts.requestTimeoutMs,
    http: { headersTimeout: Math.min(timeouts.headersTimeoutMs, timeouts.requestTimeoutMs), connectionsCheckingInterval: connectionsCheckingIntervalMs(timeouts) },
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
  registerErrorHandling(app, { docsUrl: ctx.errorDocsUrl });
  let closing = false;
  let warmedUp!: (failures: string[]) => void;
  app.decorate('routeSchemas', { warmedUp: new Promise<string[]>((resolve) => (warmedUp = resolve)), pending: () => schemas.pending });
  app.addHook('onListen', (done) => {
    const failures: string[] = [];
    void schemas
      .warmUp((err, what) => {
        failures.push(what);
        if (!closing) ctx.log.error({ err, schema: what }, 'a route schema does not compile; its requests will answer 500');
      }, () => closing)
      .then(() => warmedUp(failures));
    done();
  });
  app.addHook('onClose', (_app, done) => {
    closing = true;
    done();
  });
  registerBodyRateGuard(app, timeouts);
  // CORS for ATTUNE_CORS_ORIGINS only, and Cache-Control: no-store on every answer but the
  // docs' files (http/response-headers.ts); before the rate limit, so a 429 carries them too.
  await registerResponseHeaders(app, { corsOrigins: ctx.corsOrigins });
  // A %00 in the URL is a 400 before any route (PostgreSQL stores no NUL): http/text-guard.ts.
  registerTextGuard(app);

  // A message over the limit closes its socket with 4413 and a coded reason, logged at info
  // (ws alone closes with 1009, an empty reason, and an error with a stack): http/ws-limits.ts.
  await app.register(websocket, { options: { maxPayload: limits.maxWsMessageBytes }, errorHandler: wsErrorHandler, preClose: closeSocketsOnStop });
  app.websocketServer.on('connection', wsConnectionHook(limits.maxWsMessageBytes));
  // The OpenAPI document and UI (http/openapi.ts), after the WebSocket plugin: its route hook
  // lists the sockets that plugin hides and adds the coded error answers to every route.
  await registerOpenApi(app, { version: API_VERSION });
  // Rate limits and quotas (http/rate-limit.ts), ahead of the auth hook so that requests it
  // refuses are counted too (by address): X-RateLimit-* on every response but the health probes.
  await registerRateLimit(app, ctx);
  // After the docs plugin's own routes: every route from here on declares who may call it.
  registerAuth(app, ctx.auth);

  return app;
}
