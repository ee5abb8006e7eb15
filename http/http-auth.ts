// Authentication at the transport: bearer tokens on HTTP requests, and the three ways a
// WebSocket client may authenticate (Authorization header on the upgrade, a `token` query
// parameter, or a first `{"type":"authenticate","token":…}` message within 10 s).
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AttuneError, isAttuneError } from '../lib/errors.js';
import { bearerToken, requireScope, type Authenticator } from './auth.js';
import { type Principal, type Scope } from '../lib/principal.js';
import type { Logger } from '../lib/log.js';

export function authenticateRequest(ctx: { auth: Authenticator }, req: FastifyRequest): Principal {
  const token = bearerToken(req.headers.authorization);
  if (!token) throw new AttuneError('unauthorized', 'missing bearer token (Authorization: Bearer <jwt>)');
  return ctx.auth.verify(token);
}

/** WebSocket close codes: 4401/4403 mirror HTTP 401/403 in the 4000-4999 application range. */
export const CloseCodes = { unauthorized: 4401, forbidden: 4403, notFound: 4404, rateLimited: 4029, slowConsumer: 4008, authTimeout: 4401 } as const;

export interface SocketAuth {
  readonly principal: Principal | null;
  /** Settles once header/query authentication finished (true when authenticated). */
  readonly initial: Promise<boolean>;
  /** Handles a message that arrives before authentication; closes the socket when it is not a valid authenticate message. */
  handleFirstMessage(msg: unknown): Promise<boolean>;
}

export function socketAuth(
  ctx: { auth: Authenticator; log: Logger },
  socket: WebSocket,
  req: FastifyRequest,
  scope: Scope,
  onAuthenticated: (p: Principal) => Promise<void>,
  timeoutMs = 10_000,
): SocketAuth {
  let principal: Principal | null = null;
  const fail = (err: unknown) => {
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) ctx.log.error({ err }, 'websocket authentication failed');
    if (socket.readyState === socket.OPEN) {
      socket.send(JSON.stringify({ type: 'error', error: { code: coded.code, message: coded.message, details: coded.details, request_id: String(req.id) } }));
      const code = coded.code === 'forbidden' ? CloseCodes.forbidden : coded.code === 'not_found' ? CloseCodes.notFound : CloseCodes.unauthorized;
      socket.close(code, coded.code);
    }
  };
  const accept = async (token: string): Promise<boolean> => {
    try {
      const p = ctx.auth.verify(token);
      requireScope(p, scope);
      await onAuthenticated(p);
      principal = p;
      clearTimeout(timer);
      return true;
    } catch (err) {
      fail(err);
      return false;
    }
  };
  const query = req.query as Record<string, unknown> | undefined;
  const token = bearerToken(req.headers.authorization) ?? (typeof query?.token === 'string' ? query.token : null);
  const timer = setTimeout(() => {
    if (!principal) fail(new AttuneError('unauthorized', 'no authentication within 10 s'));
  }, timeoutMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  const initial = token ? accept(token) : Promise.resolve(false);
  return {
    get principal() {
      return principal;
    },
    initial,
    async handleFirstMessage(msg: unknown): Promise<boolean> {
      const m = msg as { type?: unknown; token?: unknown } | null;
      if (m && typeof m === 'object' && m.type === 'authenticate' && typeof m.token === 'string') return accept(m.token);
      fail(new AttuneError('unauthorized', 'authenticate first: {"type":"authenticate","token":"<jwt>"}'));
      return false;
    },
  };
}
