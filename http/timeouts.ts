// Connection, request and body timeouts of the HTTP server, and the request id a client may
// choose. Node's own timers cover the request line and headers (headersTimeout) and the whole
// request including its body (requestTimeout, a ceiling: uploads of hundreds of megabytes must
// fit in it); an idle socket is closed after connectionTimeout and an idle kept-alive one after
// keepAliveTimeout. A body that trickles in (a byte a second keeps every idle timer happy) is
// cut by a minimum-rate rule in the style of Apache's mod_reqtimeout (body=20,MinRate=500): the
// body gets `bodyInitialS` seconds, and every `minRate` bytes received buy one more second, so
// a fast upload banks slack for later stalls and a slow-loris body is cut after about
// `bodyInitialS` seconds. Cut requests get the coded 408 request_timeout on the socket (as Node
// answers its own requestTimeout) and the connection is closed.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { clientErrorHandler } from './errors.js';

export interface HttpTimeouts {
  /** Request line and headers must arrive within this, ms (Node headersTimeout). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this, ms (Node requestTimeout): the ceiling for uploads. */
  requestTimeoutMs: number;
  /** A socket with no traffic either way is closed after this, ms (Fastify connectionTimeout). */
  idleTimeoutMs: number;
  /** A kept-alive connection with no new request is closed after this, ms. */
  keepAliveTimeoutMs: number;
  /** Seconds a body gets before the minimum rate applies. */
  bodyInitialS: number;
  /** Minimum body rate, bytes per second: each `bodyMinRate` bytes received extend the body deadline by a second. */
  bodyMinRate: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  headersTimeoutMs: 10_000,
  // 200 MB in 15 minutes is 222 KB/s (1.8 Mbit/s), within reach of a phone's uplink.
  requestTimeoutMs: 900_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  bodyInitialS: 10,
  bodyMinRate: 8 * 1024,
};

/** How often Node checks headersTimeout and requestTimeout (its default is 30 s, too coarse for a 10 s rule). */
export const connectionsCheckingIntervalMs = (t: HttpTimeouts): number => Math.max(250, Math.min(2_000, Math.floor(t.headersTimeoutMs / 4)));

/** Request ids a client may choose: a UUID or a short token of safe characters; anything else is replaced. */
export const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Fastify's genReqId: the client's X-Request-Id when it is a short safe token, else a fresh UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * The minimum-rate body rule, on every request with a body. It counts the socket's bytes (the
 * body is read by Fastify's parsers or by the multipart plugin straight from the request, so
 * no stream is wrapped), with one timer per request set to the current deadline.
 */
export function registerBodyRateGuard(app: FastifyInstance, t: Pick<HttpTimeouts, 'bodyInitialS' | 'bodyMinRate'>): void {
  app.addHook('onRequest', (req, reply, done) => {
    const raw = req.raw;
    if (!hasBody(raw) || raw.complete) return done();
    const socket = raw.socket;
    const start = Date.now();
    const bytesAtStart = socket.bytesRead;
    let timer: NodeJS.Timeout | null = null;
    const stop = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      // One kept-alive socket carries many requests: leave no listener behind per request.
      raw.off('end', stop);
      socket.off('close', stop);
    };
    const deadline = () => start + t.bodyInitialS * 1000 + ((socket.bytesRead - bytesAtStart) / t.bodyMinRate) * 1000;
    const check = () => {
      timer = null;
      if (raw.complete || socket.destroyed) return;
      const due = deadline();
      const now = Date.now();
      if (now < due) {
        timer = setTimeout(check, due - now + 5);
        return;
      }
      const received = socket.bytesRead - bytesAtStart;
      req.log.info(
        { code: 'request_timeout', received_bytes: received, elapsed_ms: now - start, min_bytes_per_s: t.bodyMinRate },
        'request body too slow: connection cut',
      );
      if (reply.raw.headersSent) {
        socket.destroy();
        return;
      }
      const err = Object.assign(new Error('request body too slow'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
      clientErrorHandler.call(app, err, socket);
    };
    timer = setTimeout(check, t.bodyInitialS * 1000);
    // Not stopped by the reply: a route may answer before reading the body (a 401 from the
    // auth hook), and Node then discards the rest of the body on the kept-alive connection, so
    // a trickled body would hold it open; the rule runs until the body is in or the socket closes.
    raw.once('end', stop);
    socket.once('close', stop);
    done();
  });
}
