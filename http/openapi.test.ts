// The OpenAPI document lists every route with its request and response schemas and the coded
// error answers (issue 9), WebSocket routes included; every answer but the docs' files says
// Cache-Control: no-store; CORS headers go to the configured origins only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import { silentLogger } from '../lib/log.js';
import { createAuthenticator } from './auth.js';
import { createHttpServer } from './server.js';
import { ERROR_SCHEMA_ID, errorStatusesFor } from './openapi.js';
import { CORS_METHODS } from './response-headers.js';

const ALLOWED = 'https://app.attune.test';
let app: TestAttune;
let doc: any;

before(async () => {
  app = await startTestAttune({ env: { ATTUNE_CORS_ORIGINS: `${ALLOWED},http://localhost:5173` } });
  const res = await app.request('GET', '/docs/json');
  assert.equal(res.status, 200);
  doc = res.body;
});
after(async () => {
  await app?.cleanup();
});

const openapiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');
const errorRef = `#/components/schemas/${ERROR_SCHEMA_ID}`;
/** The error component a response refers to: directly, or as one of its anyOf (a route's own 503 body, or the coded one). */
const refOf = (response: any) => {
  const schema = response?.content?.['application/json']?.schema;
  return schema?.$ref ?? schema?.anyOf?.find((s: any) => s.$ref)?.$ref;
};

test('every route schema of the whole server compiles: the warm-up after listening compiles all, none fails', async () => {
  // Route schemas compile at their first use or in the warm-up (http/lazy-schema-compilers.ts),
  // no longer when the server starts: this is where a schema that does not compile shows.
  const server = app.server!;
  assert.deepEqual(await server.routeSchemas.warmedUp, []);
  assert.equal(server.routeSchemas.pending(), 0);
});

test('every route is in the document, with its success schema, its error statuses and the coded error body for 4XX', () => {
  const routes = app.server!.declaredRoutes.filter((r) => r.method !== 'HEAD');
  assert.ok(routes.length >= 25, `only ${routes.length} routes declared`);
  // The error body is one component, the coded shape.
  const errorSchema = doc.components.schemas[ERROR_SCHEMA_ID];
  assert.deepEqual(errorSchema.required, ['error']);
  assert.deepEqual(errorSchema.properties.error.required, ['code', 'message', 'details', 'request_id']);
  const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${p}`)));
  for (const r of routes) {
    const key = `${r.method} ${openapiPath(r.url)}`;
    assert.ok(documented.has(key), `${key} is not in the document`);
    documented.delete(key);
    const op = doc.paths[openapiPath(r.url)][r.method.toLowerCase()];
    const responses: Record<string, any> = op.responses;
    const codes = Object.keys(responses);
    const success = codes.filter((c) => /^(2\d\d|101)$/.test(c));
    assert.ok(success.length > 0, `${key}: no success answer (${codes})`);
    for (const c of success) {
      // A 101 has no body; every 2xx answer has its schema.
      if (c === '101') assert.equal(responses[c].content, undefined, key);
      else assert.ok(responses[c].content?.['application/json']?.schema, `${key}: ${c} has no schema`);
    }
    const hasBody = op.requestBody !== undefined;
    const expected = errorStatusesFor({ method: r.method, url: r.url, auth: r.auth, websocket: r.websocket, hasBody });
    for (const status of expected) {
      assert.equal(refOf(responses[String(status)]), errorRef, `${key}: ${status} is not the coded error body`);
    }
    for (const status of [400, 429, 503]) assert.ok(expected.includes(status), `${key}: ${status} not expected`);
    if (r.auth !== 'public' && !r.websocket) assert.ok(responses['401'] && responses['403'], `${key}: 401/403`);
    if (r.websocket) assert.ok(responses['101'] && responses['426'], `${key}: a WebSocket route without 101/426`);
    // Every other 4xx is the coded body too; no 5xx but the documented 503.
    assert.equal(refOf(responses['4XX']), errorRef, `${key}: 4XX`);
    for (const c of codes.filter((c) => /^4/.test(c))) assert.equal(refOf(responses[c]), errorRef, `${key}: ${c}`);
    assert.deepEqual(codes.filter((c) => /^5/.test(c)), ['503'], `${key}: 5xx answers`);
    // Request schemas: path parameters, and the body of every route that takes one.
    if (r.url.includes(':')) {
      const names = (op.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name).sort();
      assert.deepEqual(names, [...r.url.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]).sort(), `${key}: path parameters`);
    }
    if (['POST', 'PATCH'].includes(r.method)) assert.ok(hasBody, `${key}: no request body documented`);
  }
  assert.deepEqual([...documented], [], 'documented operations that are no route');
});

test('the multipart upload body and the WebSocket routes are documented', () => {
  const upload = doc.paths['/v1/speech-sessions/{id}/upload'].post;
  const form = upload.requestBody.content['multipart/form-data'].schema;
  assert.deepEqual(form.required, ['file']);
  assert.equal(form.properties.file.format, 'binary');
  assert.equal(form.properties.metadata.contentMediaType, 'application/json');
  for (const [path, scope] of [
    ['/v1/coherence', null],
    ['/v1/sessions/{id}/stream', 'id'],
    ['/v1/ingest/devices/{device_id}', 'device_id'],
    ['/v1/ingest/audio/{speech_session_id}', 'speech_session_id'],
    ['/v1/speech-sessions/{id}/stream', 'id'],
  ] as const) {
    const op = doc.paths[path]?.get;
    assert.ok(op, `${path} is not listed`);
    assert.match(op.responses['101'].description, /docs\/websocket-protocols\.md/);
    if (scope) assert.ok(op.parameters.some((p: any) => p.name === scope && p.in === 'path'), path);
    assert.ok(op.parameters.some((p: any) => p.name === 'token' && p.in === 'query'), `${path}: ?token= is not documented`);
  }
  assert.match(doc.info.description, /docs\/websocket-protocols\.md/);
});

test('a plain HTTP request to a WebSocket route is a coded 426, not an empty 404', async () => {
  const token = app.token('u-ws', 'o-ws');
  for (const path of ['/v1/coherence', '/v1/sessions/s1/stream', '/v1/ingest/devices/d1']) {
    const res = await app.request('GET', path, { token });
    assert.equal(res.status, 426, path);
    assert.equal(res.body.error.code, 'upgrade_required');
    assert.equal(res.body.error.details[0].reason, 'websocket_only');
  }
});

test('Cache-Control: no-store on every API answer (data, errors, 404), not on the docs files', async () => {
  const token = app.token('u-cache', 'o-cache');
  const created = await fetch(`${app.baseUrl}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(created.status, 201);
  const id = ((await created.json()) as any).id;
  for (const [path, status, auth] of [
    ['/v1/sessions', 200, true],
    [`/v1/sessions/${id}`, 200, true],
    ['/v1/users/me/coherence', 200, true],
    ['/v1/speech-sessions', 200, true],
    ['/v1/sessions', 401, false],
    ['/v1/no-such-route', 404, true],
    ['/health', 200, false],
  ] as const) {
    const res = await fetch(`${app.baseUrl}${path}`, { headers: auth ? { authorization: `Bearer ${token}` } : {} });
    assert.equal(res.status, status, path);
    assert.equal(res.headers.get('cache-control'), 'no-store', `${path} (${status})`);
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, `${path} (${status}): a generated request id`);
    await res.arrayBuffer();
  }
  // The client's own id comes back, on a success and in an error's header and body alike.
  for (const [path, status] of [['/health', 200], ['/v1/sessions', 401]] as const) {
    const res = await fetch(`${app.baseUrl}${path}`, { headers: { 'x-request-id': 'my-req-42' } });
    assert.equal(res.status, status);
    assert.equal(res.headers.get('x-request-id'), 'my-req-42', path);
    const body = (await res.json()) as { error?: { request_id: string } };
    if (status !== 200) assert.equal(body.error!.request_id, 'my-req-42');
  }
  const ui = await fetch(`${app.baseUrl}/docs/static/swagger-ui.css`);
  assert.equal(ui.status, 200);
  assert.notEqual(ui.headers.get('cache-control'), 'no-store');
  await ui.arrayBuffer();
});

test('CORS: a configured origin gets the headers and its preflight works; another origin gets none', async () => {
  const token = app.token('u-cors', 'o-cors');
  const get = (origin: string) => fetch(`${app.baseUrl}/v1/sessions`, { headers: { authorization: `Bearer ${token}`, origin } });
  const allowed = await get(ALLOWED);
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED);
  assert.match(allowed.headers.get('access-control-expose-headers') ?? '', /Retry-After/);
  await allowed.arrayBuffer();

  assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
  const preflight = (origin: string) =>
    fetch(`${app.baseUrl}/v1/sessions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-requested-with' } });
  const ok = await preflight(ALLOWED);
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get('access-control-allow-origin'), ALLOWED);
  assert.deepEqual(ok.headers.get('access-control-allow-methods')?.split(/,\s*/), CORS_METHODS);
  // The session-sync document's preflight answer: its three request headers, credentials, a day.
  const allowedHeaders = (ok.headers.get('access-control-allow-headers') ?? '').split(/,\s*/).map((h) => h.toLowerCase());
  for (const h of ['authorization', 'content-type', 'x-requested-with']) assert.ok(allowedHeaders.includes(h), `${h} in ${allowedHeaders}`);
  assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
  assert.equal(ok.headers.get('access-control-max-age'), '86400');
  await ok.arrayBuffer();

  const other = 'https://evil.example';
  const refused = await get(other);
  assert.equal(refused.status, 200);
  assert.deepEqual([...refused.headers.keys()].filter((h) => h.startsWith('access-control-')), []);
  await refused.arrayBuffer();
  const otherPreflight = await preflight(other);
  assert.equal(otherPreflight.status, 404);
  assert.deepEqual([...otherPreflight.headers.keys()].filter((h) => h.startsWith('access-control-')), []);
  assert.equal(((await otherPreflight.json()) as any).error.code, 'not_found');
});

test('CORS is off by default: no Access-Control header for any origin, preflights are 404', async () => {
  const auth = createAuthenticator({ secret: randomBytes(32).toString('hex'), publicKey: null, issuer: 'attune', audience: 'attune-api' });
  const server: FastifyInstance = await createHttpServer({ log: silentLogger, auth }, { bodyLimit: 1024, maxWsMessageBytes: 1024 });
  server.get('/v1/thing', { config: { auth: 'public' } }, async () => ({ ok: true }));
  try {
    const res = await server.inject({ method: 'GET', url: '/v1/thing', headers: { origin: ALLOWED } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(Object.keys(res.headers).filter((h) => h.startsWith('access-control-')), []);
    assert.equal(res.headers['cache-control'], 'no-store');
    const pre = await server.inject({ method: 'OPTIONS', url: '/v1/thing', headers: { origin: ALLOWED, 'access-control-request-method': 'GET' } });
    assert.equal(pre.statusCode, 404);
    assert.deepEqual(Object.keys(pre.headers).filter((h) => h.startsWith('access-control-')), []);
  } finally {
    await server.close();
  }
});
