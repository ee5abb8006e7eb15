// GET /metrics (issue 9): where it is served and who may read it. Never on the public port
// without a token; on the metrics listener (127.0.0.1 by default); the token, when set, asked
// for on both; request series labelled by route pattern, never by raw URL.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig, ConfigError } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import { Metrics } from '../lib/metrics.js';
import { createAuthenticator } from './auth.js';
import { createHttpServer } from './server.js';
import { closeCodeLabel, metricsTokenMatches, registerHttpMetrics, registerMetricsRoute, startMetricsListener, UNMATCHED_ROUTE } from './metrics.js';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

const TOKEN = randomBytes(24).toString('hex');
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The value of one series in a Prometheus text exposition, or undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('close codes as labels: standard and 44xx codes as they are, any other one "other"', () => {
  assert.deepEqual([1000, 1006, 4408, 4413, 3999, 4500, 4999, 2000].map(closeCodeLabel), ['1000', '1006', '4408', '4413', 'other', 'other', 'other', 'other']);
});

test('the metrics token is compared whole, as a bearer token', () => {
  assert.equal(metricsTokenMatches(`Bearer ${TOKEN}`, TOKEN), true);
  assert.equal(metricsTokenMatches(`bearer ${TOKEN}`, TOKEN), true);
  assert.equal(metricsTokenMatches(undefined, TOKEN), false);
  assert.equal(metricsTokenMatches(TOKEN, TOKEN), false);
  assert.equal(metricsTokenMatches(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN), false);
  assert.equal(metricsTokenMatches(`Bearer ${TOKEN}x`, TOKEN), false);
  assert.equal(metricsTokenMatches(`Basic ${TOKEN}`, TOKEN), false);
});

test('configuration: no /metrics unless asked; the listener on 127.0.0.1; never the public port; a token of 16+ characters', () => {
  assert.deepEqual(loadConfig({}).metrics, { port: null, host: '127.0.0.1', token: null });
  assert.deepEqual(loadConfig({ ATTUNE_METRICS_PORT: '9464', ATTUNE_METRICS_TOKEN: TOKEN }).metrics, { port: 9464, host: '127.0.0.1', token: TOKEN });
  assert.equal(loadConfig({ ATTUNE_METRICS_PORT: '0' }).metrics.port, 0);
  assert.equal(loadConfig({ ATTUNE_METRICS_PORT: '9464', ATTUNE_METRICS_HOST: '0.0.0.0' }).metrics.host, '0.0.0.0');
  const refused = (env: Record<string, string>, variable: string) =>
    assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && err.variable === variable, JSON.stringify(env));
  refused({ PORT: '8080', ATTUNE_METRICS_PORT: '8080' }, 'ATTUNE_METRICS_PORT');
  refused({ ATTUNE_METRICS_PORT: '8080' }, 'ATTUNE_METRICS_PORT');
  refused({ ATTUNE_METRICS_PORT: '70000' }, 'ATTUNE_METRICS_PORT');
  refused({ ATTUNE_METRICS_TOKEN: 'short' }, 'ATTUNE_METRICS_TOKEN');
  refused({ ATTUNE_METRICS_TOKEN: 'sixteen chars with spaces' }, 'ATTUNE_METRICS_TOKEN');
});

test('on the main server: GET /metrics needs the token; requests are counted by route pattern, 404s as one label', async () => {
  const secret = randomBytes(32).toString('hex');
  const auth = createAuthenticator({ secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });
  const app = await createHttpServer({ log: silentLogger, auth }, { bodyLimit: 1024, maxWsMessageBytes: 1024 });
  cleanups.push(() => app.close());
  const metrics = new Metrics({ defaultMetrics: false });
  registerHttpMetrics(app, metrics);
  registerMetricsRoute(app, metrics, TOKEN);
  app.get('/things/:id', { config: { auth: 'public' } }, async (req) => ({ id: (req.params as { id: string }).id }));
  app.post('/things/:id', { config: { auth: { scope: 'write:sessions' } } }, async () => ({}));
  app.get('/socket/:code', { websocket: true, config: { auth: { scope: 'read:sessions', socket: true } } }, (socket, req) => {
    socket.close(Number((req.params as { code: string }).code), 'test');
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;

  for (const id of ['a1', 'b2', 'c3']) assert.equal((await fetch(`${base}/things/${id}`)).status, 200);
  assert.equal((await fetch(`${base}/things/x`, { method: 'POST' })).status, 401);
  assert.equal((await fetch(`${base}/no/such/route-${randomBytes(4).toString('hex')}`)).status, 404);

  // Sockets closed by the server with 4408 (twice) and 1000, and one a client closes with a code of its own.
  const closed = (path: string, clientCode?: number) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}${path}`);
      if (clientCode) ws.once('open', () => ws.close(clientCode));
      ws.once('close', (code) => resolve(code));
      ws.once('error', reject);
    });
  assert.deepEqual([await closed('/socket/4408'), await closed('/socket/4408'), await closed('/socket/1000')], [4408, 4408, 1000]);
  await closed('/socket/1000', 3999);
  const closesCounted = async () => {
    const t = await metrics.text();
    return ['1000', '4408', 'other'].reduce((n, code) => n + (value(t, `attune_websocket_closes_total{code="${code}"}`) ?? 0), 0);
  };
  await waitFor('the four socket closes to be counted', async () => (await closesCounted()) === 4, 10_000, 20);

  const anonymous = await fetch(`${base}/metrics`);
  assert.equal(anonymous.status, 401);
  const anonBody = (await anonymous.json()) as any;
  assert.deepEqual([anonBody.error.code, anonBody.error.details[0].reason], ['unauthorized', 'missing_token']);
  const wrong = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN.replace(/.$/, 'x')}x` } });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as any).error.details[0].reason, 'invalid_token');
  // A JWT of the API is not the metrics token.
  const jwt = auth.sign({ userId: 'u', orgId: 'o', scopes: ['read:sessions'], ttlSeconds: 60 });
  assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${jwt}` } })).status, 401);

  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const text = await res.text();
  assert.equal(value(text, 'attune_http_requests_total{method="GET",route="/things/:id",status="200"}'), 3);
  assert.equal(value(text, 'attune_http_requests_total{method="POST",route="/things/:id",status="401"}'), 1);
  assert.equal(value(text, `attune_http_requests_total{method="GET",route="${UNMATCHED_ROUTE}",status="404"}`), 1);
  assert.equal(value(text, 'attune_http_requests_total{method="GET",route="/metrics",status="401"}'), 3);
  assert.equal(value(text, 'attune_http_request_duration_seconds_count{method="GET",route="/things/:id"}'), 3);
  assert.ok(!text.includes('a1') && !text.includes('/no/such'), 'no raw URL in any label');
  assert.equal(value(text, 'attune_websocket_connections_total'), 4);
  assert.equal(value(text, 'attune_websocket_closes_total{code="4408"}'), 2);
  assert.equal((value(text, 'attune_websocket_closes_total{code="1000"}') ?? 0) + (value(text, 'attune_websocket_closes_total{code="other"}') ?? 0), 2);
  assert.equal(value(text, 'attune_websocket_connections'), 0);
  assert.ok((value(text, 'attune_http_request_duration_seconds_sum{method="GET",route="/things/:id"}') ?? -1) >= 0);
});

test('the metrics listener: GET /metrics only, on 127.0.0.1 by default, the token asked for when set', async () => {
  const metrics = new Metrics();
  metrics.counter('attune_test_total', 'a test counter').inc(7);
  const open = await startMetricsListener({ host: '127.0.0.1', port: 0, token: null, metrics, log: silentLogger });
  cleanups.push(() => open.close());
  assert.match(open.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${open.url}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.equal(value(text, 'attune_test_total'), 7);
  // prom-client's process metrics come with it.
  assert.ok((value(text, 'process_resident_memory_bytes') ?? 0) > 0, 'process_resident_memory_bytes');
  assert.equal((await fetch(`${open.url}/metrics?x=1`)).status, 200);
  const other = await fetch(`${open.url}/v1/sessions`);
  assert.equal(other.status, 404);
  assert.equal(((await other.json()) as any).error.details[0].reason, 'no_route');
  const post = await fetch(`${open.url}/metrics`, { method: 'POST' });
  assert.equal(post.status, 404);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');

  const guarded = await startMetricsListener({ host: '127.0.0.1', port: 0, token: TOKEN, metrics, log: silentLogger });
  cleanups.push(() => guarded.close());
  assert.equal((await fetch(`${guarded.url}/metrics`)).status, 401);
  assert.equal((await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer nope' } })).status, 401);
  const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(ok.status, 200);
  assert.equal(value(await ok.text(), 'attune_test_total'), 7);

  // Two registries in one process keep apart (no global default registry).
  const second = new Metrics();
  second.counter('attune_test_total', 'a test counter').inc(1);
  assert.equal(value(await metrics.text(), 'attune_test_total'), 7);
  assert.equal(value(await second.text(), 'attune_test_total'), 1);
});

test('a running Attune: no /metrics on the public port by default; the metrics port and the token when configured', async () => {
  const roles = { ingest: true, api: false, worker: false };
  const plain: TestAttune = await startTestAttune({ roles });
  cleanups.push(() => plain.cleanup());
  assert.equal(plain.metricsUrl, null);
  assert.equal((await plain.request('GET', '/metrics')).status, 404);
  assert.equal((await plain.request('GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);

  const configured: TestAttune = await startTestAttune({ roles, env: { ATTUNE_METRICS_PORT: '0', ATTUNE_METRICS_TOKEN: TOKEN } });
  let stopped = false;
  cleanups.push(async () => (stopped ? undefined : configured.cleanup()));
  assert.match(configured.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(new URL(configured.metricsUrl!).port, new URL(configured.baseUrl).port);
  assert.equal((await configured.request('GET', '/health/live')).status, 200);
  assert.equal((await configured.request('GET', '/metrics')).status, 401);
  const main = await fetch(`${configured.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(main.status, 200);
  const text = await main.text();
  assert.equal(value(text, 'attune_http_requests_total{method="GET",route="/health/live",status="200"}'), 1);
  assert.equal(value(text, 'attune_http_requests_total{method="GET",route="/metrics",status="401"}'), 1);
  assert.equal((await fetch(`${configured.metricsUrl}/metrics`)).status, 401);
  const side = await fetch(`${configured.metricsUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(side.status, 200);
  assert.ok(value(await side.text(), 'attune_http_requests_total{method="GET",route="/metrics",status="200"}')! >= 1);
  // The listener stops with Attune.
  stopped = true;
  await configured.cleanup();
  await assert.rejects(fetch(`${configured.metricsUrl}/metrics`));
});
