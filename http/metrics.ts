// GET /metrics (issue 9): the process's metrics in the Prometheus text format, and the HTTP
// series every request feeds. Never on the public port without a token:
//  - ATTUNE_METRICS_PORT: a second, tiny listener (node:http, GET /metrics only) on
//    ATTUNE_METRICS_HOST, 127.0.0.1 by default: reachable from the machine (or a sidecar), not
//    from the clients of the public port;
//  - ATTUNE_METRICS_TOKEN: GET /metrics on the main port too, with `Authorization: Bearer
//    <token>` (the metrics listener then asks for it as well);
//  - neither: no /metrics at all (404 on the main port). Metrics are still collected.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { LATENCY_BUCKETS_S, type Metrics } from '../lib/metrics.js';
import { errorBody, errorBodySchema } from './errors.js';

/** Where Fastify matched no route (404s): one label value, never the raw URL. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Request series: attune_http_requests_total{method,route,status} and
 * attune_http_request_duration_seconds{method,route}, labelled by the route's pattern
 * (`/v1/sessions/:id`), and the WebSocket connections (open now, opened in all).
 */
export function registerHttpMetrics(app: FastifyInstance, metrics: Metrics): void {
  const requests = metrics.counter('attune_http_requests_total', 'HTTP requests answered, by method, route pattern and status.', ['method', 'route', 'status']);
  const duration = metrics.histogram('attune_http_request_duration_seconds', 'HTTP request latency, from the request to the end of the answer.', ['method', 'route'], LATENCY_BUCKETS_S);
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? UNMATCHED_ROUTE;
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    done();
  });
  const opened = metrics.counter('attune_websocket_connections_total', 'WebSocket connections opened (every socket route: live ingest, live audio, live coherence and speech).');
  // How sockets end, by close code: 1000/1001 normal, 1006 cut without a close frame (a
  // terminated socket), 44xx Attune's refusals and evictions (4401 auth, 4408 ping or idle
  // timeout, 4413 message too large, a slow consumer's code...). Other codes a client may send
  // are one label, "other", so a client cannot grow the series.
  const closes = metrics.counter('attune_websocket_closes_total', 'WebSocket connections closed, by close code (44xx: refusals and evictions by Attune).', ['code']);
  app.websocketServer?.on('connection', (socket: { once(event: 'close', fn: (code: number) => void): unknown }) => {
    opened.inc();
    socket.once('close', (code) => closes.inc({ code: closeCodeLabel(code) }));
  });
  metrics.gaugeFrom('attune_websocket_connections', 'WebSocket connections open now.', [], () => [[{}, app.websocketServer?.clients.size ?? 0]]);
}

/** A close code as a label: the standard ones and 4400-4499 as they are, anything else "other". */
export const closeCodeLabel = (code: number): string => ((code >= 1000 && code <= 1015) || (code >= 4400 && code <= 4499) ? String(code) : 'other');

/** Whether an Authorization header carries `Bearer <token>` (compared in constant time). */
export function metricsTokenMatches(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]), digest(token));
}

function tokenError(authorization: string | undefined): AttuneError {
  return authorization
    ? new AttuneError('unauthorized', 'the metrics token does not match', [{ reason: 'invalid_token' }])
    : new AttuneError('unauthorized', 'GET /metrics needs Authorization: Bearer <ATTUNE_METRICS_TOKEN>', [{ reason: 'missing_token' }]);
}

/** GET /metrics on the main server, behind `token` (not a JWT: the ATTUNE_METRICS_TOKEN value). */
export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics, token: string): void {
  app.get(
    '/metrics',
    {
      // The route checks its own token: the auth hook knows JWT scopes only.
      config: { auth: 'public' },
      schema: {
        tags: ['metrics'],
        summary: 'Prometheus metrics of this process (text format), with Authorization: Bearer <ATTUNE_METRICS_TOKEN>.',
        security: [{ bearerAuth: [] }],
        response: { 200: { type: 'string', description: 'Prometheus text exposition format 0.0.4.' }, 401: errorBodySchema },
      },
    },
    async (req, reply) => {
      if (!metricsTokenMatches(req.headers.authorization, token)) throw tokenError(req.headers.authorization);
      const text = await metrics.text();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}

export interface MetricsListener {
  /** e.g. http://127.0.0.1:9464 (the port actually bound when 0 was asked). */
  url: string;
  close(): Promise<void>;
}

function sendError(res: ServerResponse, err: AttuneError, extra: Record<string, string> = {}): void {
  res.writeHead(err.statusCode, { 'content-type': 'application/json; charset=utf-8', ...extra });
  res.end(JSON.stringify(errorBody(err, randomUUID())));
}

/**
 * The metrics listener: GET (or HEAD) /metrics, nothing else, on its own port. Short timeouts:
 * a scrape is one small request.
 */
export async function startMetricsListener(opts: {
  host: string;
  port: number;
  token: string | null;
  metrics: Metrics;
  log: Logger;
  /** A process without an HTTP server: its health probes (http/health.ts probeAnswers), served here without the token. */
  probes?: (path: string) => Promise<{ statusCode: number; body: unknown } | null>;
}): Promise<MetricsListener> {
  const { metrics, token, log } = opts;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (opts.probes && (req.method === 'GET' || req.method === 'HEAD')) {
      const probe = await opts.probes(path);
      if (probe) {
        res.writeHead(probe.statusCode, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(probe.body));
        return;
      }
    }
    if (path !== '/metrics') return sendError(res, new AttuneError('not_found', `no route ${req.method} ${path} on the metrics port`, [{ reason: 'no_route' }]));
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, new AttuneError('not_found', `no route ${req.method} ${path} on the metrics port`, [{ reason: 'no_route' }]), { allow: 'GET, HEAD' });
    if (token !== null && !metricsTokenMatches(req.headers.authorization, token)) return sendError(res, tokenError(req.headers.authorization));
    const text = await metrics.text();
    res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.error({ err }, 'metrics scrape failed');
      if (!res.headersSent) sendError(res, new AttuneError('internal_error', 'metrics scrape failed'));
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
