// Every error the server sends has the coded body {"error":{"code","message","details",
// "request_id"}} with a catalogued reason, Fastify's and Node's own included: 400 bad JSON and
// schema failures (Ajv keywords mapped to reasons), 404 unknown route, 413 body too large,
// 414 a too-long path segment, 415 a wrong or missing content type, 431 headers too large,
// 400 an unparseable request, 503 during shutdown. Real requests against a whole Attune.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ALL_SCOPES, startTestAttune, type TestAttune } from '../test/attune.js';
import { ErrorCodes, Reasons, isReason } from '../lib/error-catalogue.js';
import { silentLogger } from '../lib/log.js';
import { Limits } from '../ingest/readings.js';
import { createAuthenticator } from './auth.js';
import { createHttpServer } from './server.js';
import { detailsFromValidation, reasonForAjvKeyword, unknownFieldDetails } from './errors.js';

let app: TestAttune;
let token: string;

before(async () => {
  app = await startTestAttune({ entities: 'pglite' });
  token = app.token('u1', 'o1');
});
after(async () => {
  await app?.cleanup();
});

/** Asserts the coded body: status of its code, catalogued reasons under that code, a request id. */
function assertCoded(status: number, body: any, code: string, reason: string): any {
  assert.equal(typeof body, 'object', `not JSON: ${String(body)}`);
  const e = body?.error;
  assert.ok(e, JSON.stringify(body));
  // Plus the communication platform document's `field` when a detail names one (a 4xx).
  const keys = Object.keys(e).sort();
  assert.ok(
    JSON.stringify(keys) === JSON.stringify(['code', 'details', 'message', 'request_id']) || JSON.stringify(keys) === JSON.stringify(['code', 'details', 'field', 'message', 'request_id']),
    JSON.stringify(keys),
  );
  if (e.field !== undefined) assert.ok(e.details.some((d: { field?: string }) => d.field === e.field || d.field?.slice(1) === e.field), JSON.stringify(body));
  assert.equal(e.code, code, JSON.stringify(body));
  assert.equal(status, ErrorCodes[e.code as keyof typeof ErrorCodes].status);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.match(e.request_id, /^[0-9a-f-]{36}$/);
  assert.ok(Array.isArray(e.details) && e.details.length > 0, JSON.stringify(body));
  for (const d of e.details) {
    assert.ok(isReason(d.reason), `uncatalogued reason ${d.reason}`);
    assert.equal(Reasons[d.reason as keyof typeof Reasons].code, code, d.reason);
  }
  assert.equal(e.details[0].reason, reason, JSON.stringify(body));
  return e;
}

/** One raw HTTP/1.1 exchange: for what fetch cannot send (no content type, huge headers, garbage). */
function raw(baseUrl: string, request: string): Promise<{ status: number; headers: string; body: any }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let text = '';
    const s = connect(Number(port), hostname, () => s.write(request));
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', (err) => (text ? undefined : reject(err)));
    s.on('close', () => {
      const at = text.indexOf('\r\n\r\n');
      if (at < 0) return reject(new Error(`no response: ${JSON.stringify(text)}`));
      const head = text.slice(0, at);
      const bodyText = text.slice(at + 4);
      let body: any = bodyText;
      try {
        body = JSON.parse(bodyText);
      } catch {
        /* left as text */
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body });
    });
  });
}

test('400: a body that is not JSON', async () => {
  const res = await app.request('POST', '/v1/sessions', { token, body: '{"type": ' });
  const e = assertCoded(res.status, res.body, 'validation_error', 'invalid_json');
  assert.equal(e.details[0].field, '/');
});

test('an empty JSON body (Content-Type set, nothing sent) is no body: a call that takes none succeeds; one that needs a body names the field', async () => {
  const s = await app.request('POST', '/v1/sessions', { token, body: { type: 'solo' } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  for (const body of ['', '  \r\n']) {
    const res = await fetch(`${app.baseUrl}/v1/sessions/${s.body.id}/end`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200, await res.text());
  }
  const d = await fetch(`${app.baseUrl}/v1/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '' });
  const dBody = await d.json();
  assert.equal(assertCoded(d.status, dBody, 'validation_error', 'invalid_type').details[0].field, '/', JSON.stringify(dBody));
});

test('400: schema failures carry the Ajv keyword as a catalogued reason and Ajv\'s text as message', async () => {
  const typeRes = await app.request('POST', '/v1/sessions', { token, body: { type: 'juggling' } });
  const e = assertCoded(typeRes.status, typeRes.body, 'validation_error', 'invalid_value');
  assert.equal(e.details[0].field, '/type');
  assert.match(e.details[0].message, /must be equal to one of the allowed values: .*"solo"/);
  assert.ok(Array.isArray(e.details[0].allowed) && e.details[0].allowed.includes('solo'), JSON.stringify(e.details[0]));
  const patternRes = await app.request('POST', '/v1/sessions', { token, body: { device_id: 'has spaces' } });
  assert.equal(assertCoded(patternRes.status, patternRes.body, 'validation_error', 'invalid_format').details[0].field, '/device_id');
  // A batch names the index of the bad reading.
  const readings = [{ timestamp: Date.now(), hr: 70 }, { timestamp: Date.now(), rr_intervals_ms: [100] }];
  const batch = await app.request('POST', '/v1/devices/d1/sync', { token, body: { readings } });
  const b = assertCoded(batch.status, batch.body, 'validation_error', 'out_of_range');
  assert.equal(b.details[0].index, 1);
  assert.match(b.details[0].field, /^\/readings\/1\/rr_intervals_ms\/0$/);
  assert.match(b.details[0].message, /^must be >= \d+$/);
});

test('unknown fields are named, at most 10 of them, each cut to 64 characters', () => {
  const body: Record<string, unknown> = { readings: [], session_id: 's' };
  body['x'.repeat(100)] = 1;
  for (let i = 0; i < 30; i++) body[`k${i}`] = i;
  const details = unknownFieldDetails(body, { properties: { readings: {}, session_id: {} } }, '');
  assert.equal(details.length, 10);
  assert.deepEqual(details.slice(0, 2).map((d) => [d.field, d.reason]), [[`/${'x'.repeat(64)}`, 'unknown_field'], ['/k0', 'unknown_field']]);
  assert.deepEqual(unknownFieldDetails({ readings: [] }, { properties: { readings: {} } }, '/readings/0'), []);
});

test('Ajv keywords map onto catalogued validation reasons', () => {
  const cases: Record<string, string> = {
    required: 'required', type: 'invalid_type', minimum: 'out_of_range', exclusiveMaximum: 'out_of_range', maxLength: 'invalid_length',
    minItems: 'invalid_length', pattern: 'invalid_format', format: 'invalid_format', additionalProperties: 'unknown_field', enum: 'invalid_value', anyOf: 'invalid_value',
  };
  for (const [keyword, reason] of Object.entries(cases)) {
    assert.equal(reasonForAjvKeyword(keyword), reason, keyword);
    assert.equal(Reasons[reasonForAjvKeyword(keyword)].code, 'validation_error');
  }
  const [extra] = detailsFromValidation([{ instancePath: '/readings/2', keyword: 'additionalProperties', message: 'must NOT have additional properties', params: { additionalProperty: 'bpm' } }], '');
  assert.deepEqual(extra, { field: '/readings/2/bpm', index: 2, reason: 'unknown_field', message: 'must NOT have additional properties' });
  const [either] = detailsFromValidation([
    { instancePath: '/readings/0', keyword: 'required', params: { missingProperty: 'hr' } },
    { instancePath: '/readings/0', keyword: 'required', params: { missingProperty: 'rr_intervals_ms' } },
    { instancePath: '/readings/0', keyword: 'anyOf', message: 'must match a schema in anyOf' },
  ]);
  assert.deepEqual(either, { field: '/readings/0', index: 0, reason: 'required', message: 'must have hr or rr_intervals_ms' });
});

test('400: JSON nested 5,000 and 10,000 deep is json_too_deep on every JSON route, never a 500', async () => {
  const deep = (n: number, open = '{"a":', close = '}') => open.repeat(n) + '1' + close.repeat(n);
  const bodies = [deep(10_000), deep(5_000, '[', ']'), `{"title":"t","metadata":${deep(5_000)}}`, `{"readings":[${deep(10_000, '[', ']')}]}`];
  // Every route the OpenAPI document lists with a JSON body, path parameters filled in.
  const doc = (await app.request('GET', '/docs/json')).body;
  const routes: Array<[string, string]> = [];
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      if (op?.requestBody?.content?.['application/json']) routes.push([method.toUpperCase(), path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000')]);
    }
  }
  assert.ok(routes.length >= 5, `JSON routes found: ${JSON.stringify(routes)}`);
  assert.ok(routes.some(([m, p]) => m === 'POST' && p === '/v1/sessions'));
  // Every scope, organisation admin's included (the API key and webhook routes), so the body is what is judged.
  const everyScope = app.token('u1', 'o1', [...ALL_SCOPES, 'admin:org']);
  for (const [method, path] of routes) {
    for (const body of bodies) {
      const res = await app.request(method, path, { token: everyScope, body });
      const e = assertCoded(res.status, res.body, 'validation_error', 'json_too_deep');
      assert.equal(e.details[0].field, '/', `${method} ${path}`);
    }
  }
  // 64 levels are parsed (and judged by the route); 65 are not.
  const ok = await app.request('POST', '/v1/sessions', { token, body: `{"title":"x","metadata":{"m":${deep(30)}}}` });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const at = await app.request('POST', '/v1/sessions', { token, body: deep(64) });
  assert.equal(assertCoded(at.status, at.body, 'validation_error', 'unknown_field').details[0].field, '/a');
  const over = await app.request('POST', '/v1/sessions', { token, body: deep(65) });
  assertCoded(over.status, over.body, 'validation_error', 'json_too_deep');
  // Brackets inside strings are text, not depth.
  const inString = await app.request('POST', '/v1/sessions', { token, body: JSON.stringify({ title: '[{'.repeat(99), metadata: { k: '\\"[[[' + '{'.repeat(500) } }) });
  assert.equal(inString.status, 201, JSON.stringify(inString.body));
});

test('404: an unknown route', async () => {
  const res = await app.request('GET', '/v1/no-such-thing', { token });
  assert.match(assertCoded(res.status, res.body, 'not_found', 'no_route').message, /no route GET \/v1\/no-such-thing/);
});

test('413: a body over the body limit', async () => {
  const body = JSON.stringify({ title: 'x'.repeat(Limits.maxBodyBytes + 10) });
  const res = await app.request('POST', '/v1/sessions', { token, body });
  assertCoded(res.status, res.body, 'payload_too_large', 'body_too_large');
});

test('414: a path segment longer than maxParamLength', async () => {
  const res = await app.request('GET', `/v1/sessions/${'a'.repeat(300)}`, { token });
  assertCoded(res.status, res.body, 'uri_too_long', 'uri_too_long');
});

test('415: a text/plain body on a JSON route, and a body without a content type, name the accepted types', async () => {
  const res = await app.request('POST', '/v1/sessions', { token, body: '{}', headers: { 'content-type': 'text/plain' } });
  const e = assertCoded(res.status, res.body, 'unsupported_media_type', 'unsupported_content_type');
  assert.deepEqual(e.details[0].accepted, ['application/json']);
  assert.equal(e.details[0].content_type, 'text/plain');
  assert.match(e.message, /application\/json/);
  const none = await raw(app.baseUrl, `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
  const n = assertCoded(none.status, none.body, 'unsupported_media_type', 'unsupported_content_type');
  assert.equal(n.details[0].content_type, null);
  // The upload route names what it takes.
  const upload = await app.request('POST', `/v1/speech-sessions/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/upload`, { token, body: 'x', headers: { 'content-type': 'text/plain' } });
  assert.deepEqual(assertCoded(upload.status, upload.body, 'unsupported_media_type', 'unsupported_content_type').details[0].accepted, ['multipart/form-data']);
});

test('431: request headers larger than the server takes (Node\'s parser, before Fastify)', async () => {
  const res = await raw(app.baseUrl, `GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
  assertCoded(res.status, res.body, 'header_too_large', 'header_too_large');
  assert.match(res.headers, /content-type: application\/json/i);
});

test('400: a request Node cannot parse', async () => {
  const res = await raw(app.baseUrl, 'HELLO THERE\r\n\r\n');
  assertCoded(res.status, res.body, 'validation_error', 'malformed_request');
});

test('401 and 403 from the auth hook are coded too', async () => {
  const none = await app.request('GET', '/v1/sessions');
  assertCoded(none.status, none.body, 'unauthorized', 'missing_token');
  assert.match(none.body.error.message, /^missing bearer token/);
  // A header in another scheme: the same reason, a message that says which form is expected and
  // does not echo the header.
  const jwt = app.token('u1', 'o1', ['read:sessions']);
  const bare = await app.request('GET', '/v1/sessions', { headers: { authorization: 'Bearer' } });
  assert.match(bare.body.error.message, /^missing bearer token/, 'a scheme without a token is a missing token');
  for (const authorization of [`Token ${jwt}`, jwt]) {
    const other = await app.request('GET', '/v1/sessions', { headers: { authorization } });
    assertCoded(other.status, other.body, 'unauthorized', 'missing_token');
    assert.match(other.body.error.message, /not a bearer token: send Authorization: Bearer <jwt>/);
    assert.ok(!JSON.stringify(other.body).includes(jwt.slice(-20)), 'the header is not echoed');
  }
  const weak = await app.request('GET', '/v1/sessions', { token: app.token('u1', 'o1', ['read:coherence']) });
  assertCoded(weak.status, weak.body, 'forbidden', 'missing_scope');
});

test('503: a request that arrives on a kept-alive connection while the server closes', async () => {
  const secret = randomBytes(32).toString('hex');
  const auth = createAuthenticator({ secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });
  const server = await createHttpServer({ log: silentLogger, auth }, { bodyLimit: 1024, maxWsMessageBytes: 1024 });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inSlow = new Promise<void>((r) => (entered = r));
  server.get('/slow', { config: { auth: 'public' } }, async () => {
    entered();
    await released;
    return { ok: true };
  });
  server.get('/fast', { config: { auth: 'public' } }, async () => ({ ok: true }));
  let closingNow!: () => void;
  const closing = new Promise<void>((r) => (closingNow = r));
  server.addHook('preClose', (done) => {
    closingNow();
    done();
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = new URL(url);
  const s = connect(Number(port), '127.0.0.1');
  let text = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => (text += d));
  const ended = new Promise<void>((r) => s.on('close', () => r()));
  s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await inSlow;
  const closed = server.close();
  await closing;
  s.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  // The second request's 503 is queued behind the first response; let the first finish.
  await new Promise((r) => setImmediate(r));
  release();
  await ended;
  await closed;
  const responses = text.split(/(?=HTTP\/1\.1 )/);
  assert.equal(responses.length, 2, text);
  assert.match(responses[0], /^HTTP\/1\.1 200/);
  const second = responses[1];
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(second)![1]);
  assertCoded(status, JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4)), 'unavailable', 'shutting_down');
  assert.match(second, /connection: close/i);
});

test("the communication platform document's error.field: the field a 4xx names, as a name", async () => {
  // Its client reads error.field ("email"); Attune's details name the field as a pointer.
  const body = await app.request('POST', '/v1/sessions', { token, body: { coherence_threshold: 'high' } });
  assert.equal(body.status, 400);
  assert.equal(body.body.error.field, 'coherence_threshold');
  assert.equal(body.body.error.details[0].field, '/coherence_threshold');
  const nested = await app.request('POST', '/v1/devices/d-field/sync', { token, body: { readings: [{ timestamp: Date.now(), hr: 60 }, { timestamp: Date.now(), hr: 'x' }] } });
  assert.equal(nested.status, 400, JSON.stringify(nested.body));
  assert.equal(nested.body.error.field, 'readings/1/hr');
  const query = await app.request('GET', '/v1/sessions?limit=0', { token });
  assert.equal(query.body.error.field, 'limit');
  // No field named, none given: an unknown route, a body that is not JSON at all.
  const none = await app.request('GET', '/v1/nothing-here', { token });
  assert.equal(none.status, 404);
  assert.equal('field' in none.body.error, false);
});

test('400: a query or path parameter is named as the routes name theirs (?limit, :org_id), a body field as a JSON pointer', async () => {
  const query = await app.request('GET', '/v1/sessions?limit=0', { token });
  assert.equal(assertCoded(query.status, query.body, 'validation_error', 'out_of_range').details[0].field, '?limit');
  const speech = await app.request('GET', '/v1/speech-sessions/00000000-0000-4000-8000-000000000000/metrics?granularity=hour', { token });
  assert.equal(speech.status, 400, JSON.stringify(speech.body));
  assert.equal(speech.body.error.details[0].field, '?granularity');
});
