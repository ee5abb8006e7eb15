// Authentication of WebSocket clients, which may present their token three ways: the
// Authorization header on the upgrade, a `token` query parameter, or a first
// `{"type":"authenticate","token":…}` message within 10 s. A socket lives no longer than its
// token: at the token's expiry it is closed with 4401, unless the client has sent a fresh
// `authenticate` message (same user and organisation) before then, which moves the deadline.
// HTTP routes are authenticated by the hook in auth-plugin.ts.
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AttuneError, isAttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { bearerToken, requireScope, type Authenticator, type VerifiedToken } from './auth.js';
import { routeAuthOf } from './auth-plugin.js';

/** WebSocket close codes: 4401/4403 mirror HTTP 401/403 in the 4000-4999 application range. */
export const CloseCodes = { unauthorized: 4401, forbidden: 4403, notFound: 4404, rateLimited: 4029, slowConsumer: 4008, authTimeout: 4401 } as const;

/** setTimeout's longest delay (2^31 − 1 ms is about 24.8 days); longer deadlines are re-armed. */
const MAX_TIMER_MS = 2 ** 30;

export interface SocketAuth {
  readonly principal: VerifiedToken | null;
  /** Settles once header/query authentication finished (true when authenticated). */
  readonly initial: Promise<boolean>;
  /** Handles a message that arrives before authentication; closes the socket when it is not a valid authenticate message. */
  handleFirstMessage(msg: unknown): Promise<boolean>;
  /**
   * After authentication: when `msg` is an `authenticate` message, verifies its token (same
   * user and organisation, the route's scope), moves the expiry and answers
   * `{"type":"reauthenticated","expires_at"}`; true when the message was one (consumed).
   */
  handleReauthentication(msg: unknown): Promise<boolean>;
}

/** Whether a parsed message is `{"type":"authenticate","token":"…"}`. */
export function isAuthenticateMessage(msg: unknown): msg is { type: 'authenticate'; token: string } {
  const m = msg as { type?: unknown; token?: unknown } | null;
  return !!m && typeof m === 'object' && m.type === 'authenticate' && typeof m.token === 'string';
}

/**
 * Authenticates a WebSocket for the scope its route declares (`config.auth`), then calls
 * `onAuthenticated` (which may refuse with a coded error: the socket is closed with the
 * matching code).
 */
export function socketAuth(
  ctx: { auth: Authenticator; log: Logger; clock: () => number },
  socket: WebSocket,
  req: FastifyRequest,
  onAuthenticated: (p: VerifiedToken) => Promise<void>,
  timeoutMs = 10_000,
): SocketAuth {
  const declared = routeAuthOf(req);
  if (!declared || declared === 'public') throw new Error(`socket route ${req.url} declares no scope`);
  const scope = declared.scope;
  let principal: VerifiedToken | null = null;
  let expiry: NodeJS.Timeout | undefined;
  const fail = (err: unknown) => {
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) ctx.log.error({ err }, 'websocket authentication failed');
    if (socket.readyState === socket.OPEN) {
      socket.send(JSON.stringify({ type: 'error', error: { code: coded.code, message: coded.message, details: coded.details, request_id: String(req.id) } }));
      const code = coded.code === 'forbidden' ? CloseCodes.forbidden : coded.code === 'not_found' ? CloseCodes.notFound : CloseCodes.unauthorized;
      socket.close(code, coded.code);
    }
  };
  const armExpiry = (expiresAt: number) => {
    clearTimeout(expiry);
    const left = expiresAt - ctx.clock();
    expiry = setTimeout(
      () => {
        if (expiresAt - ctx.clock() > 0) return armExpiry(expiresAt);
        fail(new AttuneError('unauthorized', 'the token expired; send {"type":"authenticate","token":…} before expiry to stay connected', [{ reason: 'token_expired' }]));
      },
      Math.max(0, Math.min(left, MAX_TIMER_MS)),
    );
    expiry.unref();
  };
  const accept = async (token: string): Promise<boolean> => {
    try {
      const p = await ctx.auth.verify(token);
      requireScope(p, scope);
      await onAuthenticated(p);
      principal = p;
      clearTimeout(timer);
      armExpiry(p.expiresAt);
      return true;
    } catch (err) {
      fail(err);
      return false;
    }
  };
  const query = req.query as Record<string, unknown> | undefined;
  const token = bearerToken(req.headers.authorization) ?? (typeof query?.token === 'string' ? query.token : null);
  const timer = setTimeout(() => {
    if (!principal) fail(new AttuneError('unauthorized', 'no authentication within 10 s', [{ reason: 'auth_timeout' }]));
  }, timeoutMs);
  timer.unref();
  socket.once('close', () => {
    clearTimeout(timer);
    clearTimeout(expiry);
  });
  const initial = token ? accept(token) : Promise.resolve(false);
  return {
    get principal() {
      return principal;
    },
    initial,
    async handleFirstMessage(msg: unknown): Promise<boolean> {
      if (isAuthenticateMessage(msg)) return accept(msg.token);
      fail(new AttuneError('unauthorized', 'authenticate first: {"type":"authenticate","token":"<jwt>"}', [{ reason: 'missing_token' }]));
      return false;
    },
    async handleReauthentication(msg: unknown): Promise<boolean> {
      if (!isAuthenticateMessage(msg)) return false;
      const current = principal;
      if (!current) return false;
      try {
        const p = await ctx.auth.verify(msg.token);
        requireScope(p, scope);
        if (p.userId !== current.userId || p.orgId !== current.orgId) {
          throw new AttuneError('unauthorized', 'a fresh token must name the same user and organisation', [{ reason: 'principal_changed' }]);
        }
        principal = p;
        armExpiry(p.expiresAt);
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'reauthenticated', expires_at: new Date(p.expiresAt).toISOString() }));
      } catch (err) {
        fail(err);
      }
      return true;
    },
  };
}
