// Authentication as one Fastify hook. Every route declares in its options who may call it:
//   config: { auth: { scope: Scopes.readSessions } }            a bearer token with that scope
//   config: { auth: { scope: Scopes.readSpeech, socket: true } } a WebSocket: the token may also
//                                                                come as ?token= or a first message
//   config: { auth: 'public' }                                   health probes, the API docs
// A route that declares nothing fails at startup, so no route is open by omission. The hook
// runs on `onRequest`, before the body is read: an unauthenticated client cannot make the
// server parse (or buffer) a body. Handlers read the caller from `principalOf(req)`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import type { Scope } from '../lib/principal.js';
import { headerCredential, requireScope, type Authenticator, type VerifiedToken } from './auth.js';
import { apiKeyIdOf, looksLikeApiKey } from '../store/postgres/api-keys-repo.js';

export type RouteAuth = { scope: Scope; socket?: boolean } | 'public';

/** The OpenAPI document and its UI (@fastify/swagger-ui), public like the health probes. */
const DOCS_PREFIX = /^\/docs(\/|$)/;

/** A route as the auth hook saw it declared (for tests and the route table). */
export interface DeclaredRoute {
  method: string;
  url: string;
  auth: RouteAuth;
  websocket: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered after registerAuth, with who may call it. */
    declaredRoutes: DeclaredRoute[];
  }
  interface FastifyContextConfig {
    /** Who may call the route (see http/auth-plugin.ts). */
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** The caller, set by the auth hook on routes that need a token. */
    principal: VerifiedToken | null;
  }
}

/** The route's declared auth; for routes Fastify adds itself (404, HEAD twins) what they inherit. */
export function routeAuthOf(req: FastifyRequest): RouteAuth | undefined {
  return (req.routeOptions.config as { auth?: RouteAuth } | undefined)?.auth;
}

/**
 * Adds the hook and the route check to `app`. Routes registered before this call (by plugins
 * such as the API docs) are public; every route after it must declare `config.auth`.
 */
export function registerAuth(app: FastifyInstance, auth: Authenticator): void {
  app.decorateRequest('principal', null);
  const declaredRoutes: DeclaredRoute[] = [];
  app.decorate('declaredRoutes', declaredRoutes);
  app.addHook('onRoute', (route) => {
    const declared = (route.config as { auth?: RouteAuth } | undefined)?.auth;
    if (declared === undefined) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no auth: set config.auth to { scope } or 'public'`);
    }
    if (declared !== 'public' && !declared.scope) throw new Error(`route ${String(route.method)} ${route.url}: config.auth needs a scope`);
    const websocket = (route as { websocket?: boolean }).websocket === true;
    // The hook leaves socket routes to the socket's own authentication: only a real WebSocket
    // route may say so, or an HTTP route could opt out of authentication by a flag.
    if (declared !== 'public' && (declared.socket === true) !== websocket) {
      throw new Error(`route ${String(route.method)} ${route.url}: config.auth.socket must be set exactly on WebSocket routes`);
    }
    for (const method of [route.method].flat()) {
      declaredRoutes.push({ method: String(method), url: route.url, auth: declared, websocket });
    }
  });
  app.addHook('onRequest', async (req) => {
    const declared = routeAuthOf(req);
    if (declared === 'public') return;
    if (declared === undefined) {
      // Fastify's not-found handler (a coded 404) and the API docs, registered before the hook,
      // declare nothing; any other undeclared route is refused rather than left open.
      if (req.is404 || DOCS_PREFIX.test(req.routeOptions.url ?? '')) return;
      throw new AttuneError('unauthorized', 'this route declares no authentication', [{ reason: 'undeclared_route' }]);
    }
    // A socket authenticates itself (header, ?token= or a first message; http-auth.ts), so that
    // a refusal is a close code the client can read rather than a failed upgrade.
    if (declared.socket) return;
    const token = credentialOf(req);
    if (!token) {
      // A header in another form (`Token …`, the token alone) is not "missing" to its sender;
      // say what form is expected, without echoing the header (it may be the credential).
      const given = req.headers.authorization?.trim() ?? '';
      const message =
        given !== '' && !/^bearer$/i.test(given)
          ? 'the Authorization header is not a bearer token: send Authorization: Bearer <jwt> (or X-API-Key: <API key>)'
          : 'missing bearer token (Authorization: Bearer <jwt>)';
      throw new AttuneError('unauthorized', message, [{ reason: 'missing_token' }]);
    }
    const p = await auth.verify(token);
    requireScope(p, declared.scope);
    req.principal = p;
  });
}

/**
 * The request's credential: a bearer token (a JWT or an API key), else an API key in
 * X-API-Key (http/api-key-auth.ts). With an API key, the coherence platform document's
 * X-AUF-Client-ID header, when sent, must name the key's id.
 */
export function credentialOf(req: FastifyRequest): string | null {
  const token = headerCredential(req.headers);
  if (token) assertClientId(token, req.headers);
  return token;
}

/** Throws 401 invalid_api_key when `token` is an API key and X-AUF-Client-ID, sent, names another key (HTTP routes and sockets alike). */
export function assertClientId(token: string, headers: FastifyRequest['headers']): void {
  const clientId = headers['x-auf-client-id'];
  if (looksLikeApiKey(token) && typeof clientId === 'string' && apiKeyIdOf(token) !== clientId.trim()) {
    throw new AttuneError('unauthorized', 'X-AUF-Client-ID does not name the API key sent', [{ reason: 'invalid_api_key' }]);
  }
}

/** The authenticated caller of a route that declared a scope. */
export function principalOf(req: FastifyRequest): VerifiedToken {
  if (!req.principal) throw new AttuneError('internal_error', 'route reached without an authenticated principal');
  return req.principal;
}
