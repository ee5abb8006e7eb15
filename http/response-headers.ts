// Headers for browsers and caches on every response:
//   - CORS (@fastify/cors) for the origins in ATTUNE_CORS_ORIGINS only. None by default: no
//     Access-Control-* header at all, so a page on another origin cannot read an answer.
//     An origin not in the list gets no CORS header either, and its preflight a coded 404.
//     The headers are the session-sync document's (../shared/seeds 001, "CORS Headers"):
//     X-Requested-With allowed, credentials allowed for a listed origin, preflights cached a day.
//   - `Cache-Control: no-store` on every response but the API docs' static files: readings,
//     sessions, coherence, speech results and errors are health data about a person, which no
//     browser, proxy or CDN may keep.
//   - `X-Request-Id` on every response: the request's id (the client's own when it sent a safe
//     one, http/timeouts.ts requestIdFor), as in error bodies and the speech envelope's meta, so
//     a client can quote it for any answer (the session-sync document: "error responses with
//     request IDs").
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { errorBody, errorDocsUrlOf } from './errors.js';

/** The API docs (@fastify/swagger-ui): static files that may be cached like any other. */
const DOCS_PREFIX = /^\/docs(\/|$|\?)/;

export const NO_STORE = 'no-store';

/** Request headers a browser client may send, and response headers its script may read. */
export const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'X-Requested-With', 'X-Request-Id', 'X-API-Key'];
export const CORS_EXPOSED_HEADERS = ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-Request-Id'];
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'];
/** How long a browser may reuse a preflight answer, seconds (the session-sync document's; browsers cap it lower). */
export const CORS_MAX_AGE_S = 86_400;

export interface ResponseHeaderOptions {
  /** Origins allowed to read answers (exact `scheme://host[:port]`, or `*` for any); empty: no CORS. */
  corsOrigins?: readonly string[];
}

/**
 * Registers CORS (when origins are configured) and the Cache-Control hook. Call it before the
 * auth hook (http/auth-plugin.ts registerAuth): @fastify/cors adds an `OPTIONS *` route for
 * preflights, which declares no auth and answers without a token, as browsers send none.
 */
export async function registerResponseHeaders(app: FastifyInstance, opts: ResponseHeaderOptions = {}): Promise<void> {
  const origins = [...new Set(opts.corsOrigins ?? [])];
  if (origins.length > 0) {
    const any = origins.includes('*');
    const allowed = new Set(origins);
    await app.register(cors, {
      // A function, not the list: an origin that is not allowed gets no header at all (with a
      // list, @fastify/cors still answers its preflight and sends the other headers).
      origin: any ? '*' : (origin, cb) => cb(null, origin !== undefined && allowed.has(origin) ? origin : false),
      methods: CORS_METHODS,
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      // The session-sync document's Access-Control-Allow-Credentials: true, so a page written
      // to it (fetch with credentials: 'include') can read answers. Attune sets no cookie
      // (tokens travel in headers), and only a listed origin is ever echoed; with `*` browsers
      // refuse credentials whatever is sent, so none is claimed there.
      credentials: !any,
      maxAge: CORS_MAX_AGE_S,
      strictPreflight: true,
    });
  }
  // A preflight @fastify/cors did not answer (an origin not allowed, or CORS off) would reach
  // its `OPTIONS *` route, which has no auth of its own: answer it as the route it is not.
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'OPTIONS' || req.routeOptions.url !== '*' || (req as { corsPreflightEnabled?: boolean }).corsPreflightEnabled) return;
    const e = new AttuneError('not_found', `no route OPTIONS ${req.url.split('?')[0]}`, [{ reason: 'no_route' }]);
    return reply.status(404).send(errorBody(e, String(req.id), errorDocsUrlOf(req.server)));
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (!DOCS_PREFIX.test(req.url)) void reply.header('cache-control', NO_STORE);
    void reply.header('x-request-id', String(req.id));
    return payload;
  });
}
