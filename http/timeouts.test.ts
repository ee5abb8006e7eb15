// Connections a hostile client holds open or poisons (issue 9, "Connections"), against a real
// server from createHttpServer with one test route: a body trickled a byte a second is cut
// with the coded 408 (and the connection closed) while a fast body of the same route passes;
// a forged 8 KB X-Request-Id is replaced by a UUID and a safe one kept; a WebSocket message of
// 64 KB + 1 closes the socket with 4413 and a coded reason (not 1009 and an empty one), and is
// logged at info, not as an error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { createAuthenticator } from './auth.js';
import { createHttpServer } from './server.js';
import { WS_MESSAGE_TOO_LARGE } from './ws-limits.js';
import { DEFAULT_HTTP_TIMEOUTS, SAFE_REQUEST_ID } from './timeouts.js';
import { ConfigError, loadConfig } from '../lib/config.js';

const MAX_WS = 64 * 1024;
const lines: any[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
    cb();
  },
});
let app: FastifyInstance;
let port: number;

before(async () => {
  const log = pino({ level: 'info' }, sink);
  const auth = createAuthenticator({ secret: 'x'.repeat(40), publicKey: null, issuer: 'attune', audience: 'attune' });
  app = await createHttpServer({ log, auth } as any, { bodyLimit: 1024 * 1024, maxWsMessageBytes: MAX_WS, timeouts: { bodyInitialS: 1, bodyMinRate: 1024, headersTimeoutMs: 1000 } });
  app.post('/echo', { config: { auth: 'public' } as any, schema: { body: { type: 'object' } } } as any, async (req: any) => ({ ok: true, id: req.id, keys: Object.keys(req.body as object).length }));
  app.get('/ws', { websocket: true, config: { auth: 'public' } as any } as any, (socket: WebSocket) => {
    socket.on('message', (m: Buffer) => socket.send(`got ${m.length}`));
  });
  app.post('/private', { config: { auth: { scope: 'write:devices' } } as any } as any, async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
});
after(async () => {
  await app?.close();
});

test('a body trickled a byte a second is cut with 408 request_timeout and the connection closed', async () => {
  const body = JSON.stringify({ a: 'x'.repeat(100) });
  const started = Date.now();
  const result = await new Promise<{ text: string; sent: number }>((resolve) => {
    let text = '';
    let sent = 0;
    const s = connect(port, '127.0.0.1', () => {
      s.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      const tick = setInterval(() => {
        if (s.destroyed || sent >= body.length) return clearInterval(tick);
        s.write(body[sent++]);
      }, 1000);
      s.on('close', () => {
        clearInterval(tick);
        resolve({ text, sent });
      });
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
  });
  const elapsed = Date.now() - started;
  assert.match(result.text, /^HTTP\/1\.1 408 /, result.text);
  assert.match(result.text, /connection: close/i);
  const parsed = JSON.parse(result.text.slice(result.text.indexOf('\r\n\r\n') + 4));
  assert.equal(parsed.error.code, 'request_timeout');
  assert.equal(parsed.error.details[0].reason, 'request_timeout');
  // Cut long before the body was complete (it needed 100+ s at this pace).
  assert.ok(result.sent < body.length / 4, `sent ${result.sent} bytes before the cut`);
  assert.ok(elapsed < 10_000, `cut after ${elapsed} ms`);
  assert.ok(lines.some((l) => l.msg === 'request body too slow: connection cut' && l.level === 30));
});

test('a body trickled after the route already answered (401 before the body is read) is cut too', async () => {
  const body = JSON.stringify({ a: 'x'.repeat(100) });
  const started = Date.now();
  const text = await new Promise<string>((resolve) => {
    let out = '';
    let sent = 0;
    const s = connect(port, '127.0.0.1', () => {
      s.write(`POST /private HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      const tick = setInterval(() => (s.destroyed || sent >= body.length ? clearInterval(tick) : s.write(body[sent++])), 1000);
      s.on('close', () => {
        clearInterval(tick);
        resolve(out);
      });
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => undefined);
  });
  assert.match(text, /^HTTP\/1\.1 401 /, text);
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 10_000, `connection closed after ${elapsed} ms`);
});

test('headers trickled a byte every 100 ms are cut by headersTimeout with 408', async () => {
  const started = Date.now();
  const text = await new Promise<string>((resolve) => {
    let out = '';
    const s = connect(port, '127.0.0.1', () => {
      s.write('GET /docs/json HTTP/1.1\r\nHost: x\r\n');
      const tick = setInterval(() => (s.destroyed ? clearInterval(tick) : s.write('X-Slow: 1\r\n')), 100);
      s.on('close', () => {
        clearInterval(tick);
        resolve(out);
      });
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => undefined);
  });
  assert.match(text, /^HTTP\/1\.1 408 /, text);
  assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.code, 'request_timeout');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 1000 && elapsed < 5000, `cut after ${elapsed} ms`);
});

test('a body at a normal pace on the same route passes', async () => {
  // 600 KB in 60 KB pieces, past bodyInitialS (1 s) in total time, above the 1 KiB/s minimum rate.
  const body = JSON.stringify(Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`k${i}`, 'y'.repeat(1000)])));
  const text = await new Promise<string>((resolve, reject) => {
    let out = '';
    const s = connect(port, '127.0.0.1', async () => {
      s.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < body.length; i += 60_000) {
        s.write(body.slice(i, i + 60_000));
        await new Promise((r) => setTimeout(r, 150));
      }
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 200 /, text.slice(0, 300));
  assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).keys, 600);
});

test('a forged X-Request-Id is replaced by a UUID; a safe one is kept', async () => {
  const forged = '{"injected":true}' + 'A'.repeat(8 * 1024);
  const bad = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': forged }, body: '[1' });
  assert.equal(bad.status, 400);
  const body = (await bad.json()) as any;
  assert.match(body.error.request_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  for (const forgedShort of ['a b', 'x'.repeat(65), 'id"}', '']) {
    const r = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': forgedShort }, body: '{}' });
    const id = ((await r.json()) as any).id;
    assert.notEqual(id, forgedShort);
    assert.match(id, /^[0-9a-f-]{36}$/);
  }
  for (const safe of ['req-42.abc_DEF', '0b6e4c5e-8d5e-4f0e-9d5a-2f0a4f0e9d5a', 'x'.repeat(64)]) {
    assert.ok(SAFE_REQUEST_ID.test(safe));
    const r = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': safe }, body: '[1' });
    assert.equal(((await r.json()) as any).error.request_id, safe);
  }
});

function openWs(): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('a WebSocket message of 64 KB + 1 closes with 4413 and a coded reason, logged at info', async () => {
  const ws = await openWs();
  // At the limit it is accepted.
  const reply = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
  ws.send(Buffer.alloc(MAX_WS, 97));
  assert.equal(await reply, `got ${MAX_WS}`);
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));
  const messages: any[] = [];
  ws.on('message', (m) => messages.push(JSON.parse(String(m))));
  const before = lines.length;
  ws.send(Buffer.alloc(MAX_WS + 1, 97));
  const { code, reason } = await closed;
  assert.equal(code, WS_MESSAGE_TOO_LARGE);
  // The coded error message comes first, as before every coded close.
  assert.deepEqual(
    messages.map((m) => [m.type, m.payload?.code, m.payload?.details?.[0]?.reason, m.error?.code]),
    [['error', 'payload_too_large', 'message_too_large', 'payload_too_large']],
  );
  assert.match(reason, /^payload_too_large: .*65536 bytes/);
  const logged = lines.slice(before).filter((l) => /websocket/.test(l.msg));
  assert.ok(logged.length >= 1, JSON.stringify(lines.slice(before)));
  assert.ok(logged.every((l) => l.level === 30 && l.reason === 'message_too_large' && !l.err), JSON.stringify(logged));
});

test('other closes pass through unchanged', async () => {
  const ws = await openWs();
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  ws.close(1000, 'bye');
  assert.equal(await closed, 1000);
});

test('the HTTP_* variables default to DEFAULT_HTTP_TIMEOUTS and are range-checked', () => {
  assert.deepEqual(loadConfig({}).httpTimeouts, DEFAULT_HTTP_TIMEOUTS);
  assert.equal(loadConfig({ HTTP_REQUEST_TIMEOUT_S: '1800', HTTP_BODY_MIN_BYTES_PER_S: '1024' }).httpTimeouts.requestTimeoutMs, 1_800_000);
  assert.throws(() => loadConfig({ HTTP_REQUEST_TIMEOUT_S: '5' }), ConfigError);
  assert.throws(() => loadConfig({ HTTP_BODY_MIN_BYTES_PER_S: '0' }), ConfigError);
});

test('an open WebSocket outlives the idle, headers and request timeouts', async () => {
  const log = pino({ level: 'silent' });
  const auth = createAuthenticator({ secret: 'x'.repeat(40), publicKey: null, issuer: 'attune', audience: 'attune' });
  const short = await createHttpServer({ log, auth } as any, {
    bodyLimit: 1024,
    maxWsMessageBytes: 1024,
    timeouts: { idleTimeoutMs: 500, headersTimeoutMs: 500, requestTimeoutMs: 1000, keepAliveTimeoutMs: 500 },
  });
  short.get('/ws', { websocket: true, config: { auth: 'public' } as any } as any, (socket: WebSocket) => {
    socket.on('message', (m: Buffer) => socket.send(`got ${m.length}`));
  });
  await short.listen({ port: 0, host: '127.0.0.1' });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${(short.server.address() as { port: number }).port}/ws`);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    let closed = false;
    ws.once('close', () => (closed = true));
    // Wait out every HTTP timeout (1 s at most, checked every 250 ms) three times over, silent.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(closed, false);
    const reply = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
    ws.send('hi');
    assert.equal(await reply, 'got 2');
    ws.close();
  } finally {
    await short.close();
  }
});

test('the body rule leaves no listener on a kept-alive socket: 30 requests on one connection', async () => {
  // Before, every request with a body added a 'close' listener to the socket and never took it
  // off: a busy kept-alive connection piled them up (MaxListenersExceededWarning after 11).
  const counts: number[] = [];
  const route = app.server.listeners('request')[0];
  assert.ok(route);
  const seen = (req: import('node:http').IncomingMessage) => {
    req.once('end', () => setImmediate(() => counts.push(req.socket.listenerCount('close'))));
  };
  app.server.prependListener('request', seen);
  try {
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 30; i++) {
      const res = await fetchOnAgent(agent, JSON.stringify({ i }));
      assert.equal(res, 200);
    }
    agent.destroy();
  } finally {
    app.server.off('request', seen);
  }
  assert.equal(counts.length, 30);
  assert.ok(Math.max(...counts) <= counts[0] + 1, `close listeners per request: ${counts.join(',')}`);
});

async function fetchOnAgent(agent: import('node:http').Agent, body: string): Promise<number> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/echo', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}
