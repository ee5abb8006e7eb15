// The auth hook over the whole server: every route declares who may call it, every route
// refuses a token without exp, iss or aud with a coded 401 (WebSockets close with 4401), the
// refusal comes before the body is read, and a live socket is closed when its token expires
// unless the client sends a fresh one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { createSigner } from 'fast-jwt';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import { silentLogger } from '../lib/log.js';
import { createAuthenticator } from './auth.js';
import { createHttpServer } from './server.js';

const secret = randomBytes(32).toString('hex');
// test/attune.ts's issuer and audience are the config defaults.
const iss = 'attune';
const aud = 'attune-api';
let app: TestAttune;

before(async () => {
  app = await startTestAttune({ env: { JWT_SECRET: secret } });
});
after(async () => {
  await app?.cleanup();
});

const nowS = () => Math.floor(Date.now() / 1000);
const scope = 'read:sessions write:sessions read:coherence write:devices write:readings read:speech write:speech';
const sign = (payload: Record<string, unknown>) => createSigner({ key: secret, algorithm: 'HS256' })({ sub: 'u1', org_id: 'o1', scope, ...payload });

const badTokens: Record<string, string> = {
  'no exp': sign({ iss, aud }),
  'no iss': sign({ aud, exp: nowS() + 600 }),
  'no aud': sign({ iss, exp: nowS() + 600 }),
};

/** A concrete path for a route pattern (`:id` → a fresh uuid). */
const concrete = (url: string) => url.replace(/:[a-z_]+/g, () => randomUUID());

function wsClose(url: string, headers: Record<string, string> = {}): Promise<{ code: number; at: number; messages: any[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: any[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    ws.on('close', (code) => resolve({ code, at: Date.now(), messages }));
    ws.on('error', reject);
  });
}

test('every route declares its auth, and every non-public one refuses tokens without exp, iss or aud', async () => {
  const routes = app.server!.declaredRoutes.filter((r) => r.method !== 'HEAD');
  const secured = routes.filter((r) => r.auth !== 'public');
  assert.ok(secured.length >= 18, `only ${secured.length} secured routes found`);
  assert.deepEqual(
    secured.filter((r) => r.websocket).map((r) => r.url).sort(),
    ['/v1/coherence', '/v1/ingest/audio/:speech_session_id', '/v1/ingest/devices/:device_id', '/v1/mesh/sessions/:id/stream', '/v1/sessions/:id/stream', '/v1/speech-sessions/:id/stream'],
  );
  assert.deepEqual(
    routes.filter((r) => r.auth === 'public').map((r) => r.url).sort(),
    ['/health', '/health/live', '/health/ready', '/v1/auth/token'],
    'only the health probes, and the client_credentials exchange whose credential is the API key in its body, are public',
  );
  for (const r of secured) {
    for (const [what, token] of Object.entries(badTokens)) {
      if (r.websocket) {
        const { code, messages } = await wsClose(`${app.baseUrl.replace('http', 'ws')}${concrete(r.url)}`, { authorization: `Bearer ${token}` });
        assert.equal(code, 4401, `${r.method} ${r.url} with ${what}`);
        assert.equal(messages.at(-1)?.error?.code, 'unauthorized', `${r.url} with ${what}`);
      } else {
        const res = await app.request(r.method, concrete(r.url), { token, body: r.method === 'GET' ? undefined : {} });
        assert.equal(res.status, 401, `${r.method} ${r.url} with ${what}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'unauthorized');
        assert.match(res.body.error.message, new RegExp(`${what.slice(3)} claim is required`));
      }
    }
  }
});

test('the API docs stay public; unknown routes are a coded 404', async () => {
  const docs = await app.request('GET', '/docs/json');
  assert.equal(docs.status, 200);
  assert.equal(docs.body.openapi, '3.1.0');
  const missing = await app.request('GET', '/v1/no-such-route');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'not_found');
});

test('an unauthenticated request is refused before its body is read', async () => {
  // 3 MB, over the body limit: with the hook on onRequest the answer is 401, not 413.
  const body = JSON.stringify({ readings: [], pad: 'x'.repeat(3 * 1024 * 1024) });
  const res = await fetch(`${app.baseUrl}/v1/devices/d1/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(res.status, 401);
  assert.equal(((await res.json()) as any).error.code, 'unauthorized');
});

test('a route that declares no auth stops the server from starting', async () => {
  const auth = createAuthenticator({ secret, publicKey: null, issuer: iss, audience: aud });
  const server = await createHttpServer({ log: silentLogger, auth }, { bodyLimit: 1024, maxWsMessageBytes: 1024 });
  assert.throws(() => server.get('/v1/forgotten', async () => ({})), /declares no auth/);
  // Only a WebSocket route may leave authentication to the socket.
  assert.throws(() => server.get('/v1/sneaky', { config: { auth: { scope: 'read:sessions', socket: true } } }, async () => ({})), /exactly on WebSocket routes/);
  await server.close();
});

test('a live socket is closed with 4401 within 1 s of its token expiring', async () => {
  const token = app.auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['read:coherence'], ttlSeconds: 2 });
  const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000;
  const { code, at, messages } = await wsClose(`${app.baseUrl.replace('http', 'ws')}/v1/coherence?token=${token}`);
  assert.equal(code, 4401);
  assert.equal(messages[0].type, 'subscribed');
  assert.equal(messages.at(-1).error.details[0].reason, 'token_expired');
  assert.ok(at >= exp - 50, `closed ${exp - at} ms before expiry`);
  assert.ok(at - exp < 1000, `closed ${at - exp} ms after expiry`);
});

test('a fresh authenticate message before expiry keeps the socket open; another user’s token closes it', async () => {
  const short = app.auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['read:coherence'], ttlSeconds: 2 });
  const exp = JSON.parse(Buffer.from(short.split('.')[1], 'base64url').toString()).exp * 1000;
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/coherence?token=${short}`);
  const messages: any[] = [];
  let closed: number | null = null;
  const closing = new Promise<void>((resolve) => ws.on('close', (c) => ((closed = c), resolve())));
  const reauthenticated = new Promise<void>((resolve) =>
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      messages.push(m);
      if (m.type === 'subscribed') ws.send(JSON.stringify({ type: 'authenticate', token: app.auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['read:coherence'], ttlSeconds: 600 }) }));
      if (m.type === 'reauthenticated') resolve();
    }),
  );
  await reauthenticated;
  // Past the first token's expiry (plus the 1 s the close may take), the socket is still open.
  const heartbeat = new Promise<void>((resolve) => ws.once('pong', () => resolve()));
  await new Promise((r) => setTimeout(r, Math.max(0, exp + 1200 - Date.now())));
  ws.ping();
  await heartbeat;
  assert.equal(closed, null);
  assert.equal(ws.readyState, WebSocket.OPEN);
  // A token of someone else is refused, and the socket closed.
  ws.send(JSON.stringify({ type: 'authenticate', token: app.auth.sign({ userId: 'u2', orgId: 'o1', scopes: ['read:coherence'] }) }));
  await closing;
  assert.equal(closed, 4401);
  assert.equal(messages.at(-1).error.details[0].reason, 'principal_changed');
});

test('on the live ingest socket a fresh token is taken ahead of the readings and is not counted as one', async () => {
  const token = app.auth.sign({ userId: 'u9', orgId: 'o9', scopes: ['write:devices', 'write:readings'] });
  const reg = await app.request('POST', '/v1/devices', { token, body: { device_id: 'reauth-dev' } });
  assert.ok(reg.status === 201 || reg.status === 200, JSON.stringify(reg.body));
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/reauth-dev`, { headers: { authorization: `Bearer ${token}` } });
  const messages: any[] = [];
  const next = (type: string) =>
    new Promise<any>((resolve) => {
      const check = () => {
        const m = messages.find((x) => x.type === type);
        if (m) resolve(m);
        else ws.once('message', check);
      };
      check();
    });
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  await next('authenticated');
  ws.send(JSON.stringify({ type: 'authenticate', token: app.auth.sign({ userId: 'u9', orgId: 'o9', scopes: ['write:readings'] }) }));
  ws.send(JSON.stringify({ id: 'r1', timestamp: new Date().toISOString(), hr: 61 }));
  const ack = await next('ack');
  const re = await next('reauthenticated');
  assert.equal(ack.id, 'r1');
  assert.equal(ack.accepted, 1);
  assert.ok(Date.parse(re.expires_at) > Date.now());
  assert.equal(messages.filter((m) => m.type === 'error').length, 0, JSON.stringify(messages));
  ws.close();
});
