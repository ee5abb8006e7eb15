// Live speech events over socket.io (issue 13): the speech-coaching document's client,
// `io(url, {auth: {token}})` with `socket.on('asr:token' | 'metrics:update' |
// 'processing:status', …)`, served by the `socket.io` library attached to Fastify's HTTP server
// (engine.io's default path /socket.io/, which the document's client uses).
//
// A client picks its session the document's way, by the namespace in the URL it gives io():
// `io('wss://host/v1/speech-sessions/<id>', …)` (the session's `websocketUrl`, ending in
// /stream, works as it is too); or it connects to the default namespace and emits
// `subscribe` (alias `join`) with `{sessionId}` (ack: `{ok, session_id, status}` or `{error}`).
// Auth is the handshake's `auth.token` (or an Authorization: Bearer header), checked by the
// same authenticator as every route (a JWT, an API key or its exchanged token), scope
// read:speech; the socket counts against the user's open-socket quota like a WebSocket, and is
// disconnected when its token expires. Refusals are socket.io's: a bad token or someone else's
// session in the namespace is a `connect_error` whose `data` is the coded error `{code,
// message, details}`; a refused `subscribe` is an `error` event with that body (and the ack's
// `error`), never data.
//
// Events come from the speech live hub (http/live-hub.ts LiveHub.listen): the one bus consumer
// of this process feeds the WebSocket route and these sockets alike. Each event is emitted
// under its type with the envelope the WebSocket route sends, `{id, type, timestamp, payload,
// data}`, whose `type` and `data` are the document's `{type, data}` (data: the document's
// fields, api/speech-live.ts docEventData). A client whose engine.io write buffer holds more
// than ATTUNE_WS_MAX_BUFFERED packets is not reading and is disconnected (as the WebSocket
// route's 4008), so it never holds memory without bound.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Server, type Socket } from 'socket.io';
import { AttuneError, isAttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import type { AppContext } from '../http/context.js';
import { bearerToken, requireScope, type VerifiedToken } from '../http/auth.js';
import { assertClientId } from '../http/auth-plugin.js';
import { watchApiKey } from '../http/http-auth.js';
import type { Envelope } from '../http/live-hub.js';
import { speechSessionKey } from './speech-live.js';

/** engine.io's default path: the document's `io(url, …)` client asks there unless told otherwise. */
export const SOCKET_IO_PATH = '/socket.io/';
/** A session's namespace: /v1/speech-sessions/<id>, or its websocketUrl's path (…/stream). */
export const SESSION_NAMESPACE = /^\/v1\/speech-sessions\/([^/]{1,64}?)(?:\/stream)?$/;
/** setTimeout's longest delay; longer token lives are re-armed. */
const MAX_TIMER_MS = 2 ** 30;

interface SocketData {
  principal: VerifiedToken;
  /** The credential, kept only when it is an API key's (checked again every KEY_CHECK_MS). */
  keyCredential: string | null;
  /** Hub listeners of the sessions this socket watches, by session id. */
  watching: Map<string, () => void>;
}
type SpeechSocket = Socket<Record<string, never>, Record<string, (...args: unknown[]) => void>, Record<string, never>, SocketData>;

/** The coded error body a refused client gets (the WebSocket route's error, without the envelope). */
function errorBody(err: unknown): { code: string; message: string; details: unknown[] } {
  const e = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
  return { code: e.code, message: e.message, details: e.details };
}

/** A connect_error for socket.io: message, and the coded body in `data`. */
function refusal(err: unknown): Error & { data: ReturnType<typeof errorBody> } {
  const body = errorBody(err);
  return Object.assign(new Error(body.message), { data: body });
}

/**
 * What the open-socket quota (http/rate-limit.ts SocketQuota) counts: a stand-in with the
 * WebSocket fields it reads, closed when the socket.io socket or its connection goes.
 */
function quotaHandle(socket: SpeechSocket): EventEmitter & { readyState: number; CLOSING: number; CLOSED: number } {
  const h = Object.assign(new EventEmitter(), { readyState: 1, CLOSING: 2, CLOSED: 3 });
  const close = () => {
    if (h.readyState === 3) return;
    h.readyState = 3;
    h.emit('close');
  };
  socket.once('disconnect', close);
  // A socket refused after its middleware (or whose client left meanwhile) never disconnects.
  socket.conn.once('close', close);
  return h;
}

export async function registerSpeechSocketIo(app: FastifyInstance, ctx: AppContext): Promise<Server> {
  const hub = ctx.speechLive;
  const sessions = ctx.speechSessions;
  if (!hub || !sessions) throw new Error('socket.io speech events need a speech live hub and a SpeechSessionsRepository');
  const maxBuffered = ctx.liveOptions.maxBufferedMessages;
  const log = ctx.log.child({ socket: 'speech-socket.io' });

  const io = new Server({
    path: SOCKET_IO_PATH,
    serveClient: false,
    // Clients send only subscribe messages.
    maxHttpBufferSize: 64 * 1024,
    // Polling is cross-origin for browsers: the same origins as the HTTP API (none by default).
    cors: ctx.corsOrigins?.length ? { origin: ctx.corsOrigins } : undefined,
  });
  // engine.io takes the HTTP requests under its path and passes the rest to Fastify. Upgrades
  // are every listener's at once in Node, and @fastify/websocket routes each one through
  // Fastify (a 404 written on the socket engine.io is upgrading), so the upgrade listeners are
  // wrapped the way engine.io wraps 'request': socket.io's path to engine.io only, the rest to
  // the listeners that were there.
  const server = app.server;
  const before = server.listeners('upgrade') as Array<(req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
  io.attach(server, { destroyUpgrade: false });
  const mine = (server.listeners('upgrade') as typeof before).filter((l) => !before.includes(l));
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ours = (req.url ?? '').startsWith(SOCKET_IO_PATH);
    for (const l of ours ? mine : before) l.call(server, req, socket, head);
  });

  const authenticate = async (socket: SpeechSocket, next: (err?: Error) => void) => {
    try {
      const auth = socket.handshake.auth as { token?: unknown } | undefined;
      const token = typeof auth?.token === 'string' && auth.token ? auth.token : bearerToken(socket.handshake.headers.authorization);
      if (!token) throw new AttuneError('unauthorized', "no token: connect with io(url, {auth: {token: '<jwt or API key>'}})", [{ reason: 'missing_token' }]);
      // X-AUF-Client-ID, when the handshake sends it, must name the API key (as on every route and socket).
      assertClientId(token, socket.handshake.headers);
      const p = await ctx.auth.verify(token);
      requireScope(p, Scopes.readSpeech);
      socket.data.principal = p;
      socket.data.keyCredential = p.apiKeyId ? token : null;
      socket.data.watching = new Map();
      next();
    } catch (err) {
      if (!isAttuneError(err)) log.error({ err }, 'socket.io authentication failed');
      next(refusal(err));
    }
  };
  /** Last of the middleware: the open-socket quota (a refusal is rate_limited). */
  const quota = async (socket: SpeechSocket, next: (err?: Error) => void) => {
    try {
      await app.rateLimits?.sockets.acquire(socket.data.principal, quotaHandle(socket) as never);
      next();
    } catch (err) {
      next(refusal(err));
    }
  };
  /** Disconnects the socket when its token expires (socket.io has no re-authentication here: reconnect with a fresh token). */
  const expireWithToken = (socket: SpeechSocket) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const left = socket.data.principal.expiresAt - ctx.clock();
      if (left <= 0) {
        socket.emit('error', errorBody(new AttuneError('unauthorized', 'the token expired; reconnect with a fresh one', [{ reason: 'token_expired' }])));
        socket.disconnect(true);
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      timer.unref();
    };
    arm();
    // Opened with an API key (or a token exchanged for one): disconnected once the key is
    // revoked or expired, as the WebSockets are (http/http-auth.ts).
    const credential = socket.data.keyCredential;
    const stopKeyWatch = credential
      ? watchApiKey(ctx.auth, () => (socket.connected ? credential : null), (err) => {
          socket.emit('error', errorBody(err));
          socket.disconnect(true);
        })
      : undefined;
    socket.once('disconnect', () => {
      clearTimeout(timer);
      stopKeyWatch?.();
    });
  };
  // Packets waiting in each engine.io connection's write buffer, from its public events
  // (packetCreate adds one; drain: the buffer went to the transport).
  const queued = new WeakMap<object, { n: number }>();
  const queueOf = (socket: SpeechSocket) => {
    let q = queued.get(socket.conn);
    if (!q) {
      const box = { n: 0 };
      queued.set(socket.conn, (q = box));
      socket.conn.on('packetCreate', () => box.n++);
      socket.conn.on('drain', () => (box.n = 0));
    }
    return q;
  };
  /** Starts sending the session's events to the socket (once per session). */
  const watch = (socket: SpeechSocket, sessionId: string) => {
    if (socket.data.watching.has(sessionId)) return;
    const q = queueOf(socket);
    const stop = hub.listen([speechSessionKey(sessionId)], (env: Envelope) => {
      if (!socket.connected) return;
      if (q.n >= maxBuffered) {
        log.warn({ session_id: sessionId }, 'socket.io: disconnecting a client whose send buffer overflowed');
        hub.stats.slowDisconnects++;
        socket.disconnect(true);
        return;
      }
      socket.emit(env.type, env);
    });
    socket.data.watching.set(sessionId, stop);
  };
  const onConnection = (socket: SpeechSocket) => {
    expireWithToken(socket);
    socket.once('disconnect', () => {
      for (const stop of socket.data.watching.values()) stop();
      socket.data.watching.clear();
    });
  };

  // The document's way: the session in the namespace.
  const sessionNamespaces = io.of(SESSION_NAMESPACE);
  sessionNamespaces.use(authenticate as never);
  sessionNamespaces.use((async (socket: SpeechSocket, next: (err?: Error) => void) => {
    try {
      const id = decodeURIComponent(SESSION_NAMESPACE.exec(socket.nsp.name)![1]);
      await sessions.getVisible(socket.data.principal, id);
      next();
    } catch (err) {
      next(refusal(err instanceof URIError ? new AttuneError('not_found', 'no such speech session', [{ field: 'id', reason: 'not_found' }]) : err));
    }
  }) as never);
  sessionNamespaces.use(quota as never);
  sessionNamespaces.on('connection', async (raw) => {
    const socket = raw as unknown as SpeechSocket;
    onConnection(socket);
    try {
      const id = decodeURIComponent(SESSION_NAMESPACE.exec(socket.nsp.name)![1]);
      const s = await sessions.getVisible(socket.data.principal, id);
      if (!socket.connected) return;
      watch(socket, s.id);
      socket.emit('subscribed', { session_id: s.id, status: s.status });
    } catch (err) {
      socket.emit('error', errorBody(err));
      socket.disconnect(true);
    }
  });

  // Or the default namespace and a subscribe (join) message naming the session.
  io.use(authenticate as never);
  io.use(quota as never);
  io.on('connection', (raw) => {
    const socket = raw as unknown as SpeechSocket;
    onConnection(socket);
    const subscribe = async (msg: unknown, ack?: unknown) => {
      const reply = typeof ack === 'function' ? (ack as (r: unknown) => void) : () => {};
      try {
        const m = msg as { sessionId?: unknown; session_id?: unknown } | string | null;
        const id = typeof m === 'string' ? m : typeof m?.sessionId === 'string' ? m.sessionId : typeof m?.session_id === 'string' ? m.session_id : null;
        if (id === null || id.length > 64) throw new AttuneError('validation_error', 'subscribe takes {sessionId: "<speech session id>"}', [{ field: 'sessionId', reason: id === null ? 'required' : 'invalid_length' }]);
        const s = await sessions.getVisible(socket.data.principal, id);
        if (!socket.connected) return;
        watch(socket, s.id);
        reply({ ok: true, session_id: s.id, status: s.status });
        socket.emit('subscribed', { session_id: s.id, status: s.status });
      } catch (err) {
        if (!isAttuneError(err)) log.error({ err }, 'socket.io subscribe failed');
        const body = errorBody(err);
        reply({ ok: false, error: body });
        socket.emit('error', body);
      }
    };
    socket.on('subscribe', subscribe);
    socket.on('join', subscribe);
  });

  app.addHook('preClose', async () => {
    io.disconnectSockets(true);
    io.engine.close();
  });
  return io;
}
