// The OpenAPI document (/docs/json) and its UI (/docs). Every route's own schema gives its
// parameters, body and success answers; this module adds what all routes share, so no route
// can forget it:
//   - the coded error body as one component, `AttuneError`, answered for each status a route
//     can refuse with (400 always; 401/403 where a token is needed; 404/414 with path
//     parameters; 413/415 with a body; 429 and 503 everywhere), plus a 4XX catch-all;
//   - the WebSocket routes, which @fastify/websocket hides, listed as GET with their 101 and
//     a coded 426 for a plain HTTP request (which is refused here, rather than an empty 404);
//     their message protocols are in docs/websocket-protocols.md.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import type { SwaggerTransform } from '@fastify/swagger';
import { AttuneError } from '../lib/errors.js';
import { ErrorCodes, type ErrorCode } from '../lib/error-catalogue.js';
import { errorBodySchema } from './errors.js';
import type { RouteAuth } from './auth-plugin.js';

/** The coded error body's component name (`#/components/schemas/AttuneError`). */
export const ERROR_SCHEMA_ID = 'AttuneError';
const errorRef = { $ref: `${ERROR_SCHEMA_ID}#` } as const;

/** Where the WebSocket message protocols are described (linked from the document). */
export const WEBSOCKET_PROTOCOLS_DOC = 'docs/websocket-protocols.md';

/** The codes of each status, the generic one first (the catalogue lists it first). */
const codesOf = new Map<string, ErrorCode[]>();
for (const [code, { status }] of Object.entries(ErrorCodes)) codesOf.set(String(status), [...(codesOf.get(String(status)) ?? []), code as ErrorCode]);

/** A response of the coded error body for `status`, described by its codes. */
function errorResponse(status: number | string, extra = '') {
  const codes = codesOf.get(String(status)) ?? [];
  const what = codes.length > 0 ? codes.map((code) => `\`${code}\`: ${ErrorCodes[code].description}`).join(' Or ') : 'A coded error.';
  return { description: `${what}${extra}`, ...errorRef };
}

/** The statuses every route of a kind documents with the coded error body. */
export function errorStatusesFor(route: { method: string | string[]; url: string; auth: RouteAuth; websocket: boolean; hasBody: boolean }): number[] {
  const codes = new Set<number>([400, 429, 503]);
  if (route.auth !== 'public' && !route.websocket) codes.add(401).add(403);
  if (route.url.includes(':')) codes.add(404).add(414);
  if (route.hasBody) codes.add(413).add(415);
  if (route.websocket) codes.add(426);
  return [...codes].sort((a, b) => a - b);
}

const hasResponse = (response: Record<string, unknown>, status: number) => String(status) in response;

/**
 * The OpenAPI document and UI, and the onRoute hook that completes every route's responses.
 * Register before the routes (and before the auth hook: the docs' own routes are public).
 */
export async function registerOpenApi(app: FastifyInstance, info: { version: string }): Promise<void> {
  app.addSchema({ $id: ERROR_SCHEMA_ID, description: 'The coded error body of every refusal.', ...errorBodySchema });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Attune API',
        version: info.version,
        description:
          'Heart data ingest, HRV coherence history, speech sessions and live updates. ' +
          'Every refusal is the coded body `{"error":{"code","message","details","request_id"}}` (schema `AttuneError`; the code and status pairs, and each detail\'s `reason`, are in the README\'s error catalogue). ' +
          'Every answer carries `Cache-Control: no-store`; CORS headers only for the origins in ATTUNE_CORS_ORIGINS. ' +
          `WebSocket routes are listed as GET (101 on upgrade, 426 for a plain request); their message protocols are in ${WEBSOCKET_PROTOCOLS_DOC} of the repository.`,
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    // Shared schemas under their own names (`#/components/schemas/AttuneError`), not def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addHook('onRoute', completeRoute);
}

/** Adds the shared responses (and, for WebSocket routes, their listing and 426) to a route. */
function completeRoute(route: RouteOptions & { websocket?: boolean }): void {
  const auth = (route.config as { auth?: RouteAuth } | undefined)?.auth;
  // Routes of plugins (the docs, CORS preflights) declare no auth and stay out of the document.
  if (auth === undefined) return;
  const methods = [route.method].flat().map(String);
  // Fastify's HEAD twin of a GET route shares the GET's schema object.
  if (methods.every((m) => m === 'HEAD')) return;
  const websocket = route.websocket === true;
  const schema = (route.schema ??= {}) as FastifySchema & { hide?: boolean };
  if (websocket) {
    // @fastify/websocket hides its routes from the document; they are listed here.
    schema.hide = false;
    route.preHandler = [upgradeRequired, ...[route.preHandler ?? []].flat()];
    // The token may come in the URL, for browser clients that cannot set headers.
    schema.querystring ??= {
      type: 'object',
      properties: { token: { type: 'string', description: 'The bearer token, when the upgrade cannot carry an Authorization header (or send it as a first authenticate message).' } },
    };
  }
  if (schema.hide) return;
  const response = (schema.response ??= {}) as Record<string, unknown>;
  const hasBody = methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH') && (schema.body !== undefined || (schema.consumes?.length ?? 0) > 0);
  if (websocket && !('101' in response)) {
    response['101'] = { type: 'null', description: `Switching Protocols: the WebSocket is open (see ${WEBSOCKET_PROTOCOLS_DOC}).` };
  }
  for (const status of errorStatusesFor({ method: route.method, url: route.url, auth, websocket, hasBody })) {
    const own = response[String(status)] as Record<string, unknown> | undefined;
    const coded = errorResponse(status, status === 429 || status === 503 ? ' Retry-After says when to retry.' : '');
    if (own === undefined) response[String(status)] = coded;
    // A route's own answer for the status (the readiness probe's 503 body) or, when refused
    // before it runs (shutting down, rate limited), the coded body.
    else if (own.$ref !== errorRef.$ref) response[String(status)] = { description: `${String(own.description ?? 'The route\'s own answer')}; or ${coded.description}`, anyOf: [own, errorRef] };
  }
  // Anything else refused (408, 431, …) is the same body.
  if (!Object.keys(response).some((k) => k.toLowerCase() === '4xx')) response['4xx'] = { description: 'Any other refusal: the coded error body.', ...errorRef };
  else for (const k of Object.keys(response)) if (k.toLowerCase() === '4xx') response[k] = { description: 'Any other refusal: the coded error body.', ...errorRef };
  // A route's own 5XX is the 503 above (a 500 is a fault, never a documented answer).
  for (const k of Object.keys(response)) if (k.toLowerCase() === '5xx') delete response[k];
}

/** A plain HTTP request to a WebSocket route: 426 (not @fastify/websocket's empty 404). */
async function upgradeRequired(req: { ws?: boolean; url: string }): Promise<void> {
  if (req.ws) return;
  throw new AttuneError('upgrade_required', `${req.url.split('?')[0]} is a WebSocket: send an Upgrade: websocket request`, [{ reason: 'websocket_only' }]);
}

/**
 * A route's documented body where Fastify must not validate one: a multipart upload (read as a
 * stream by the handler) is described by `body` in the document only.
 */
export function documentedBody(body: Record<string, unknown>): SwaggerTransform {
  return ({ schema, url }) => ({ schema: { ...(schema as object), body } as never, url });
}
