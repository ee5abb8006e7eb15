// A JSON body over the route's limit is answered (413) to a client still sending it, and the
// connection takes its next request. Fastify refused it with Connection: close and the body
// unread: the server ended the connection while the client wrote, and a client still sending
// got EPIPE instead of the 413 (Node's fetch with a 20 MB JSON body to the sync route, 1 try in
// 3, an STT walkthrough). The client here is a raw socket that reads the answer before it sends
// the rest of the body, so the order is fixed, not left to timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import Fastify from 'fastify';
import { registerErrorHandling } from './errors.js';
import { waitFor } from '../test/attune.js';

test('a body over the limit: 413 while the client sends, the rest dropped, the connection kept for the next request', async () => {
  const app = Fastify({ bodyLimit: 64 * 1024 });
  registerErrorHandling(app);
  app.post('/things', async (req) => ({ got: Object.keys(req.body as object).length }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  let buf = '';
  let ended = false;
  let failed: Error | null = null;
  socket.on('data', (d) => (buf += d.toString()));
  socket.on('end', () => (ended = true));
  socket.on('error', (e) => (failed = e));
  const until = (what: string, ok: () => boolean) => waitFor(what, ok, 10_000, 5);
  try {
    const size = 8 * 1024 * 1024;
    socket.write(`POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
    socket.write(Buffer.alloc(256 * 1024, 0x20));
    await until('the 413 while the body is still coming', () => buf.includes('\r\n\r\n') && buf.includes('payload_too_large'));
    const head = buf.split('\r\n\r\n')[0];
    assert.match(head, /^HTTP\/1\.1 413/);
    assert.doesNotMatch(head, /connection: close/i);
    // The rest of the body goes in without an error, and the connection answers a next request.
    for (let sent = 256 * 1024; sent < size; sent += 256 * 1024) {
      await new Promise<void>((resolve, reject) => socket.write(Buffer.alloc(256 * 1024, 0x20), (e) => (e ? reject(e) : resolve())));
    }
    buf = '';
    socket.write('POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}');
    await until('the next answer on the same connection', () => buf.includes('{"got":1}') || ended || failed !== null);
    assert.equal(failed, null);
    assert.equal(ended, false, 'the connection stays');
    assert.match(buf, /^HTTP\/1\.1 200/);
  } finally {
    socket.destroy();
    await app.close();
  }
});
