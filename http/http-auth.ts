// Authentication of WebSocket clients, which may present their token three ways: the
// Authorization header on the upgrade, a `token` query parameter, or a first
// `{"type":"authenticate","token":…}` message within 10 s. A socket lives no longer than its
// token: at the token's expiry it is closed with 4401, unless the client has sent a fresh
// `authenticate` message (same user and organisation) before then, which moves the deadline.
// A socket authenticated by an API key (or a token exchanged for one) has its credential
// checked again every KEY_CHECK_MS: once the key is revoked or expired it is closed with 4401
// (invalid_api_key), as HTTP requests are refused (the key's state is cached 500 ms).
// HTTP routes are authenticated by the hook in auth-plugin.ts.
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AttuneError, isAttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { headerCredential, requireScope, type Authenticator, type VerifiedToken } from './auth.js';
import { assertClientId, routeAuthOf } from './auth-plugin.js';
import { socketErrorMessage } from './errors.js';

/** WebSocket close codes: 4401/4403 mirror HTTP 401/403 in the 4000-4999 application range. */
export const CloseCodes = { unauthorized: 4401, forbidden: 4403, notFound: 4404, rateLimited: 4029, slowConsumer: 4008, authTimeout: 4401, unavailable: 4503, internalError: 1011 } as const;

/** How often an open socket's API key is checked again (with the 500 ms key cache: closed within 1.5 s of a revocation). */
export const KEY_CHECK_MS = 1000;
/**
 * Checks the API key credential `current()` returns (null: none to check now) again every
 * KEY_CHECK_MS, and calls `onRefused` with the refusal once the key is revoked or expired.
 * Any other failure (PostgreSQL not answering) leaves the connection open. Returns the stop.
 */
export function watchApiKey(auth: Authenticator, current: () => string | null, onRefused: (err: AttuneError) => void): () => void {
  const timer = setInterval(async () => {
    const credential = current();
    if (!credential) return;
    try {
      await auth.verify(credential);
    } catch (err) {
      // The credential still the connection's (not replaced by a re-authentication meanwhile).
      if (isAttuneError(err) && err.code === 'unauthorized' && credential === current()) onRefused(err);
    }
  }, KEY_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** setTimeout's longest delay (2^31 − 1 ms is about 24.8 days); longer deadlines are re-armed. */
const MAX_TIMER_MS = 2 ** 30;
/** How long an expiry waits for a fresh token that is being checked when it falls due. */
const REAUTH_GRACE_MS = 1_000;

/** The close code of a refusal: the HTTP status in the 4000 range where one fits (1011 for our own failure). */
function closeCodeOf(err: AttuneError): number {
  switch (err.code) {
    case 'forbidden':
      return CloseCodes.forbidden;
    case 'not_found':
      return CloseCodes.notFound;
    case 'rate_limited':
      return CloseCodes.rateLimited;
    case 'unavailable':
      return CloseCodes.unavailable;
    case 'internal_error':
      return CloseCodes.internalError;
    default:
      return CloseCodes.unauthorized;
  }
}

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

/**
 * For sockets that queue their messages behind slow work (readings, audio): handles an
 * `authenticate` message on arrival instead of in the queue, so a fresh token is never stuck
 * behind data when the old one expires. True when `data` was one (and is consumed). A socket
 * the server has paused for back-pressure reads nothing, so clients should re-authenticate
 * well before expiry (the README suggests at 80 % of the token's life).
 */
export function reauthenticationAhead(auth: SocketAuth, data: Buffer): boolean {
  // Cheap test first: readings and control messages rarely mention it, tokens are < 8 KB.
  if (data.length > 8192 || !data.includes('"authenticate"')) return false;
  let msg: unknown;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return false;
  }
  if (!isAuthenticateMessage(msg)) return false;
  void auth.handleReauthentication(msg);
  return true;
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
  /** The credential the principal came from, while it is an API key's. */
  let keyCredential: string | null = null;
  let stopKeyWatch: (() => void) | undefined;
  // Once the socket closed or was refused, nothing that finishes later (a slow token check,
  // onAuthenticated) may register it or arm a timer for it.
  let over = false;
  let pendingReauth: Promise<unknown> | null = null;
  const fail = (err: unknown) => {
    over = true;
    clearTimeout(expiry);
    stopKeyWatch?.();
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) ctx.log.error({ err }, 'websocket authentication failed');
    if (socket.readyState === socket.OPEN) {
      socket.send(JSON.stringify(socketErrorMessage(coded, String(req.id), ctx.clock())));
      socket.close(closeCodeOf(coded), coded.code);
    }
  };
  const armExpiry = (expiresAt: number) => {
    clearTimeout(expiry);
    if (over) return;
    const left = expiresAt - ctx.clock();
    expiry = setTimeout(
      async () => {
        if (expiresAt - ctx.clock() > 0) return armExpiry(expiresAt);
        // A fresh token being checked right now gets up to a second to land.
        if (pendingReauth) await Promise.race([pendingReauth, new Promise((r) => setTimeout(r, REAUTH_GRACE_MS).unref())]);
        if (over) return;
        if (principal && principal.expiresAt > ctx.clock()) return armExpiry(principal.expiresAt);
        fail(new AttuneError('unauthorized', 'the token expired; send {"type":"authenticate","token":…} before expiry to stay connected', [{ reason: 'token_expired' }]));
      },
      Math.max(0, Math.min(left, MAX_TIMER_MS)),
    );
    expiry.unref();
  };
  /** Watches the API key behind `token` (if any): revoked or expired, the socket closes. */
  const watchKey = (p: VerifiedToken, token: string) => {
    keyCredential = p.apiKeyId ? token : null;
    if (!keyCredential || stopKeyWatch || over) return;
    stopKeyWatch = watchApiKey(ctx.auth, () => (over ? null : keyCredential), fail);
  };
  const accept = async (token: string): Promise<boolean> => {
    try {
      // The upgrade's X-AUF-Client-ID, when sent, must name the API key, as on HTTP routes
      // (it was checked there only, so a socket took any client id).
      assertClientId(token, req.headers);
      const p = await ctx.auth.verify(token);
      requireScope(p, scope);
      if (over) return false;
      // Open sockets per user (http/rate-limit.ts): one over the tier's number closes with 4029.
      await req.server.rateLimits?.sockets.acquire(p, socket);
      if (over) return false;
      await onAuthenticated(p);
      if (over) return false;
      principal = p;
      clearTimeout(timer);
      armExpiry(p.expiresAt);
      watchKey(p, token);
      return true;
    } catch (err) {
      if (!over) fail(err);
      return false;
    }
  };
  const query = req.query as Record<string, unknown> | undefined;
  // The headers as on HTTP routes; and, for browsers, which cannot set headers on a socket, ?token=.
  const token = headerCredential(req.headers) ?? (typeof query?.token === 'string' ? query.token : null);
  const timer = setTimeout(() => {
    if (!principal) fail(new AttuneError('unauthorized', 'no authentication within 10 s', [{ reason: 'auth_timeout' }]));
  }, timeoutMs);
  timer.unref();
  socket.once('close', () => {
    over = true;
    clearTimeout(timer);
    clearTimeout(expiry);
    stopKeyWatch?.();
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
      if (!current || over) return !!current;
      const check = (async () => {
        try {
          const p = await ctx.auth.verify(msg.token);
          requireScope(p, scope);
          if (p.userId !== current.userId || p.orgId !== current.orgId) {
            throw new AttuneError('unauthorized', 'a fresh token must name the same user and organisation', [{ reason: 'principal_changed' }]);
          }
          if (over) return;
          principal = p;
          armExpiry(p.expiresAt);
          watchKey(p, msg.token);
          if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'reauthenticated', expires_at: new Date(p.expiresAt).toISOString() }));
        } catch (err) {
          if (!over) fail(err);
        }
      })();
      pendingReauth = check;
      await check;
      if (pendingReauth === check) pendingReauth = null;
      return true;
    },
  };
}
