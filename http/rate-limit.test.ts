// Request rate limits and quotas by tier (http/rate-limit.ts, issue 9), against a whole
// Attune: the free tier's 61st request in a minute and 11th in a second are coded 429s with
// Retry-After; X-RateLimit-* on every response but the health probes; the tier comes from the
// token's `tier` claim, else ATTUNE_DEFAULT_TIER; requests without a valid token are counted
// by address; a third device (free) is a coded 409; a socket beyond the tier's number is
// closed with 4029 and a coded reason.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ALL_SCOPES, startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import type { Tier } from '../lib/tiers.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune({ env: { ATTUNE_DEFAULT_TIER: 'free' } });
});
after(async () => {
  await app?.cleanup();
});

const tokenOf = (userId: string, tier?: Tier | string) =>
  app.auth.sign({ userId, orgId: 'o-rl', scopes: ALL_SCOPES, ttlSeconds: 3600, ...(tier ? { tier: tier as Tier } : {}) });

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  /** When the answer came (ms). */
  at: number;
}

async function call(path: string, token?: string, init: RequestInit = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(app.baseUrl + path, { ...init, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null, at: Date.now() };
}

const limitHeaders = (a: Answer) => ({
  limit: Number(a.headers.get('x-ratelimit-limit')),
  remaining: Number(a.headers.get('x-ratelimit-remaining')),
  reset: Number(a.headers.get('x-ratelimit-reset')),
});

/**
 * Sends requests one after another until one is refused for the minute window, waiting out
 * each burst refusal as its Retry-After says. Returns every answer.
 */
export async function untilMinuteRefused(send: (i: number) => Promise<Answer>, max = 200): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < max; i++) {
    const a = await send(i);
    answers.push(a);
    if (a.status !== 429) continue;
    const window = a.body?.error?.details?.[0]?.window;
    if (window === 'minute') return answers;
    assert.equal(window, 'second', JSON.stringify(a.body));
    await new Promise((r) => setTimeout(r, Number(a.headers.get('retry-after')) * 1000));
  }
  throw new Error(`no minute refusal in ${max} requests`);
}

test('free tier: the 61st request in a minute is a coded 429 with Retry-After; every answer has the headers', async () => {
  const token = tokenOf('u-minute', 'free');
  const startS = Date.now() / 1000;
  const answers = await untilMinuteRefused(() => call('/v1/sessions', token));
  // The 61st, or the 60th when the burst refused that one (the minute's last: nothing passes before the minute ends).
  const burstLast = answers.length === 60 && answers[59].body.error.message.includes('the last of the minute');
  assert.equal(answers.length, burstLast ? 60 : 61, 'the 61st request of the minute is the one refused for the minute');
  answers.forEach((a, i) => {
    const h = limitHeaders(a);
    if (a.body?.error?.details?.[0]?.window === 'second') {
      // A burst refusal: the second window's headers (the burst, none left, its end).
      assert.deepEqual([h.limit, h.remaining], [10, 0], `request ${i + 1}: a burst refusal's headers`);
      assert.ok(h.reset >= Math.floor(a.at / 1000) && h.reset <= Math.ceil(a.at / 1000) + 1, `request ${i + 1}: X-RateLimit-Reset ${h.reset}, sent at ${a.at / 1000}`);
      return;
    }
    assert.equal(h.limit, 60, `request ${i + 1}: X-RateLimit-Limit`);
    assert.equal(h.remaining, Math.max(0, 60 - (i + 1)), `request ${i + 1}: X-RateLimit-Remaining`);
    // Reset is the end of the minute window, in Unix seconds.
    assert.ok(h.reset >= Math.floor(startS) && h.reset <= Math.ceil(startS) + 61, `request ${i + 1}: X-RateLimit-Reset ${h.reset}`);
    if (a.status !== 429) assert.equal(a.status, 200, `request ${i + 1}`);
  });
  const last = answers.at(-1)!;
  assert.equal(last.status, 429);
  assert.equal(last.body.error.code, 'rate_limited');
  assert.deepEqual(
    { reason: last.body.error.details[0].reason, window: last.body.error.details[0].window, tier: last.body.error.details[0].tier, limit: last.body.error.details[0].limit },
    { reason: 'rate_limited', window: 'minute', tier: 'free', limit: 60 },
  );
  const retryAfter = Number(last.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
  assert.equal(last.body.error.details[0].retry_after_s, retryAfter);
  // The communication platform document's 429 body names the wait too, as `error.retry_after`.
  assert.equal(last.body.error.retry_after, retryAfter);
  assert.ok(Math.abs(limitHeaders(last).reset - (Date.now() / 1000 + retryAfter)) <= 2, 'Retry-After agrees with X-RateLimit-Reset');
  // Burst refusals on the way (sequential requests are faster than 10 a second) said 1 s.
  for (const a of answers.slice(0, -1).filter((x) => x.status === 429)) assert.equal(a.headers.get('retry-after'), '1');

  // Another user of the same tier is not affected.
  const other = await call('/v1/sessions', tokenOf('u-minute-other', 'free'));
  assert.equal(other.status, 200);
  assert.equal(limitHeaders(other).remaining, 59);
});

test('free tier burst: of 11 requests at once, one is refused for the second window (Retry-After 1)', async () => {
  const token = tokenOf('u-burst', 'free');
  const answers = await Promise.all(Array.from({ length: 11 }, () => call('/v1/sessions', token)));
  const refused = answers.filter((a) => a.status === 429);
  assert.equal(refused.length, 1, answers.map((a) => a.status).join(','));
  assert.equal(answers.filter((a) => a.status === 200).length, 10);
  assert.equal(refused[0].body.error.details[0].window, 'second');
  assert.equal(refused[0].headers.get('retry-after'), '1');
  // The limit that refused it, and its reset within a second or two: a client that waits for
  // X-RateLimit-Reset, as the session-sync document's example does, waits about Retry-After.
  const h = limitHeaders(refused[0]);
  assert.deepEqual([h.limit, h.remaining], [10, 0]);
  assert.ok(h.reset - Date.now() / 1000 <= 2, `X-RateLimit-Reset ${h.reset} is ${h.reset - Date.now() / 1000} s away`);
  // Waiting as told is enough.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await call('/v1/sessions', token)).status, 200);
});

test('the tier comes from the token claim (any case), else ATTUNE_DEFAULT_TIER', async () => {
  const limitFor = async (user: string, tier?: string) => limitHeaders(await call('/v1/sessions', tokenOf(user, tier))).limit;
  assert.equal(await limitFor('u-t1', 'plus'), 300);
  assert.equal(await limitFor('u-t2', 'pro'), 1000);
  assert.equal(await limitFor('u-t3', 'Enterprise'), 10000);
  assert.equal(await limitFor('u-t4'), 60, 'no claim: the default tier (free here)');
  assert.equal(await limitFor('u-t5', 'gold'), 60, 'an unknown tier: the default tier');
});

test('requests without a valid token are counted by address; health probes are not limited and carry no headers', async () => {
  const first = await call('/v1/sessions', 'not-a-token');
  const second = await call('/v1/sessions');
  assert.equal(first.status, 401);
  assert.equal(second.status, 401);
  assert.equal(limitHeaders(first).limit, 60);
  assert.equal(limitHeaders(second).remaining, limitHeaders(first).remaining - 1, 'one budget for the address, token or not');
  const unknown = await call('/no/such/route');
  assert.equal(unknown.status, 404);
  assert.equal(limitHeaders(unknown).remaining, limitHeaders(second).remaining - 1);

  // 30 probes at once: three times the free burst, all answered, none counted.
  const probes = await Promise.all(Array.from({ length: 30 }, (_, i) => call(['/health', '/health/live', '/health/ready'][i % 3])));
  for (const p of probes) {
    assert.notEqual(p.status, 429);
    assert.equal(p.headers.get('x-ratelimit-limit'), null);
  }
  assert.equal(limitHeaders(await call('/v1/sessions')).remaining, limitHeaders(unknown).remaining - 1);
});

test('an API key is counted under its user, in X-API-Key as in Authorization: Bearer', async () => {
  const admin = app.auth.sign({ userId: 'u-key', orgId: 'o-rl', scopes: [...ALL_SCOPES, 'admin:org'], ttlSeconds: 3600 });
  const created = await call('/v1/api-keys', admin, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ scopes: ['read:sessions'] }) });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const byHeader = await call('/v1/sessions', undefined, { headers: { 'x-api-key': created.body.key } });
  const byBearer = await call('/v1/sessions', created.body.key);
  assert.deepEqual([byHeader.status, byBearer.status], [200, 200]);
  // One budget, the key's user's (its creator's): the creating request, then the two.
  assert.equal(limitHeaders(byHeader).remaining, limitHeaders(created).remaining - 1);
  assert.equal(limitHeaders(byBearer).remaining, limitHeaders(byHeader).remaining - 1);
});

test('devices per user: free allows 2, a third new device is a coded 409; re-registering is allowed', async () => {
  const token = tokenOf('u-devices', 'free');
  for (const d of ['q-dev-1', 'q-dev-2']) assert.equal((await call('/v1/devices', token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: d }) })).status, 201);
  const third = await call('/v1/devices', token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'q-dev-3' }) });
  assert.equal(third.status, 409);
  assert.equal(third.body.error.code, 'conflict');
  assert.deepEqual(
    { reason: third.body.error.details[0].reason, tier: third.body.error.details[0].tier, limit: third.body.error.details[0].limit },
    { reason: 'device_quota', tier: 'free', limit: 2 },
  );
  assert.ok(third.headers.get('x-ratelimit-limit'), 'a refusal carries the headers too');
  const again = await call('/v1/devices', token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'q-dev-1', name: 'renamed' }) });
  assert.equal(again.status, 200);
  assert.equal(again.body.name, 'renamed');
  // Concurrent registrations cannot overshoot together (one process serialises a user's).
  const plus = tokenOf('u-devices-plus', 'plus');
  const many = await Promise.all(
    Array.from({ length: 8 }, (_, i) => call('/v1/devices', plus, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: `qp-dev-${i}` }) })),
  );
  assert.deepEqual(
    many.map((a) => a.status).sort(),
    [201, 201, 201, 201, 201, 409, 409, 409],
  );
});

/** Opens a socket and resolves with its first message, or with its close code and the error it got. */
function openSocket(path: string, token: string): Promise<{ ws: WebSocket; first?: any; close?: { code: number; reason: string; error?: any } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}${path}${path.includes('?') ? '&' : '?'}token=${token}`);
    let error: any;
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === 'error') error = m.error;
      else resolve({ ws, first: m });
    });
    ws.on('close', (code, reason) => resolve({ ws, close: { code, reason: reason.toString(), error } }));
    ws.on('error', reject);
  });
}

test('open sockets per user: free allows 1 of any kind, plus 2; one more is closed with 4029 socket_quota', async () => {
  const free = tokenOf('u-sockets', 'free');
  const a = await openSocket('/v1/coherence', free);
  assert.equal(a.first?.type, 'subscribed');
  const b = await openSocket('/v1/coherence', free);
  assert.equal(b.close?.code, 4029);
  assert.equal(b.close?.reason, 'rate_limited');
  assert.equal(b.close?.error?.code, 'rate_limited');
  assert.deepEqual({ reason: b.close?.error?.details[0].reason, limit: b.close?.error?.details[0].limit }, { reason: 'socket_quota', limit: 1 });
  // Another kind counts too: the live ingest socket of the same user.
  assert.equal((await call('/v1/devices', free, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 's-dev' }) })).status, 201);
  const ingest = await openSocket('/v1/ingest/devices/s-dev', free);
  assert.equal(ingest.close?.code, 4029);
  // Closing the first frees the place (the server sees the close a moment later).
  a.ws.close();
  const c = await waitFor('a socket after the first closed', async () => {
    const s = await openSocket('/v1/coherence', free);
    return s.first?.type === 'subscribed' ? s : null;
  }, 10_000);
  c.ws.close();

  const plus = tokenOf('u-sockets-plus', 'plus');
  const p1 = await openSocket('/v1/coherence', plus);
  const p2 = await openSocket('/v1/coherence', plus);
  const p3 = await openSocket('/v1/coherence', plus);
  assert.deepEqual([p1.first?.type, p2.first?.type, p3.close?.code], ['subscribed', 'subscribed', 4029]);
  p1.ws.close();
  p2.ws.close();
  // Enterprise: unlimited.
  const ent = tokenOf('u-sockets-ent', 'enterprise');
  const es = await Promise.all(Array.from({ length: 6 }, () => openSocket('/v1/coherence', ent)));
  assert.deepEqual(es.map((s) => s.first?.type), Array(6).fill('subscribed'));
  for (const s of es) s.ws.close();
});

test('config: ATTUNE_DEFAULT_TIER, ATTUNE_RATE_LIMIT and REDIS_URL are checked', async () => {
  const { loadConfig, ConfigError } = await import('../lib/config.js');
  assert.deepEqual(loadConfig({}).rateLimit, { enabled: true, defaultTier: 'free', redisUrl: null, trustProxy: false });
  assert.deepEqual(loadConfig({ ATTUNE_DEFAULT_TIER: 'pro', ATTUNE_RATE_LIMIT: 'off', REDIS_URL: 'redis://127.0.0.1:6389/0' }).rateLimit, {
    enabled: false,
    defaultTier: 'pro',
    redisUrl: 'redis://127.0.0.1:6389/0',
    trustProxy: false,
  });
  assert.throws(() => loadConfig({ ATTUNE_DEFAULT_TIER: 'gold' }), ConfigError);
  assert.throws(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:6389' }), /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/);
  // The per-user readings budget defaults to a device's.
  const c = loadConfig({ ATTUNE_RATE_LIMIT_READINGS_PER_S: '200', ATTUNE_RATE_LIMIT_BURST: '20000' });
  assert.deepEqual([c.ingestLimit.userReadingsPerS, c.ingestLimit.userBurst], [200, 20_000]);
});

test('ATTUNE_TRUST_PROXY: behind a trusted proxy each client address has its own budget; otherwise X-Forwarded-For is ignored', async () => {
  const anonymous = (base: string, forwardedFor: string) => fetch(`${base}/v1/sessions`, { headers: { 'x-forwarded-for': forwardedFor } });
  const remaining = (r: Response) => Number(r.headers.get('x-ratelimit-remaining'));
  // Not trusted (the default): the header changes nothing, one budget for the peer address.
  const n1 = remaining(await anonymous(app.baseUrl, '203.0.113.1'));
  const n2 = remaining(await anonymous(app.baseUrl, '203.0.113.2'));
  assert.equal(n2, n1 - 1);
  const proxied = await startTestAttune({ env: { ATTUNE_DEFAULT_TIER: 'free', ATTUNE_TRUST_PROXY: '127.0.0.1' }, roles: { ingest: true, api: false, worker: false } });
  try {
    const a1 = await anonymous(proxied.baseUrl, '203.0.113.1');
    const b1 = await anonymous(proxied.baseUrl, '203.0.113.2');
    const a2 = await anonymous(proxied.baseUrl, '203.0.113.1');
    // An ingest-only Attune has no GET /v1/sessions: 404s, counted like any request.
    assert.deepEqual([a1.status, b1.status, a2.status], [404, 404, 404]);
    assert.deepEqual([remaining(a1), remaining(b1), remaining(a2)], [59, 59, 58]);
  } finally {
    await proxied.cleanup();
  }
  const { loadConfig } = await import('../lib/config.js');
  assert.equal(loadConfig({}).rateLimit.trustProxy, false);
  assert.equal(loadConfig({ ATTUNE_TRUST_PROXY: '2' }).rateLimit.trustProxy, 2);
  assert.deepEqual(loadConfig({ ATTUNE_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).rateLimit.trustProxy, ['10.0.0.0/8', '127.0.0.1']);
  assert.throws(() => loadConfig({ ATTUNE_TRUST_PROXY: 'proxy.example' }), /ATTUNE_TRUST_PROXY/);
  assert.throws(() => loadConfig({ ATTUNE_TRUST_PROXY: '10.0.0.0/33' }), /ATTUNE_TRUST_PROXY/);
});

test('refusalOf: a burst refusal of the minute\'s last request is the minute\'s (retry when the minute ends, not in 1 s)', async () => {
  const { refusalOf } = await import('./rate-limit.js');
  const w = (isExceeded: boolean, remaining: number, ttl: number) => ({ isExceeded, remaining, ttl, ttlInSeconds: Math.ceil(ttl / 1000) });
  assert.equal(refusalOf(w(false, 5, 40_000), w(false, 3, 500)), null);
  assert.equal(refusalOf(w(false, 5, 40_000), w(true, 0, 500))!.window, 'second');
  assert.equal(refusalOf(w(true, 0, 40_000), w(false, 3, 500))!.window, 'minute');
  assert.equal(refusalOf(w(true, 0, 40_000), w(true, 0, 500))!.window, 'minute');
  // The burst refused the minute's last allowed request: the next one would be refused for the minute.
  const last = refusalOf(w(false, 0, 40_000), w(true, 0, 500))!;
  assert.deepEqual([last.window, last.r.ttlInSeconds], ['minute', 40]);
});
