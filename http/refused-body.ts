// What is left of a request body after the route has refused it (a multipart upload found
// too long, too large, or not audio in its first bytes): read and dropped, so the client sees
// the answer. Closing the connection instead (`Connection: close` with the body half read)
// makes the kernel reset it with the client's bytes unread, and a client still sending (Node's
// fetch, undici, whatever the file's size: a 36 KB M4A was enough) fails with EPIPE and never
// reads the 413 or 415; curl happened to read it. This is nginx's "lingering close": bounded
// in bytes and time, past which the connection is cut as before.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface RefusedBodyLimits {
  /** Most bytes read and dropped after the refusal. */
  maxBytes: number;
  /** Longest time spent on it, ms. */
  maxMs: number;
}

/** 256 MiB or 30 s (nginx's lingering_time), whichever comes first. */
export const DEFAULT_REFUSED_BODY_LIMITS: RefusedBodyLimits = { maxBytes: 256 * 1024 * 1024, maxMs: 30_000 };

/**
 * Reads the rest of `req`'s body and drops it; the connection stays open for the client's next
 * request once the body is in. Past the limits the socket is destroyed (once the answer is
 * out). Call it where the route throws its refusal; the answer is sent as usual.
 */
export function discardRestOfBody(req: FastifyRequest, reply: FastifyReply, limits: RefusedBodyLimits = DEFAULT_REFUSED_BODY_LIMITS): void {
  const raw = req.raw;
  if (raw.complete || raw.destroyed) return;
  // Whatever read the body (the multipart parser) stops; nobody else is reading it.
  raw.unpipe();
  let dropped = 0;
  const cut = () => {
    done();
    const destroy = () => raw.socket?.destroy();
    if (reply.raw.writableFinished) destroy();
    else reply.raw.once('finish', destroy);
  };
  const onData = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > limits.maxBytes) cut();
  };
  const timer = setTimeout(cut, limits.maxMs);
  timer.unref();
  function done() {
    clearTimeout(timer);
    raw.off('data', onData);
    raw.off('end', done);
    raw.off('close', done);
  }
  raw.on('data', onData);
  raw.once('end', done);
  raw.once('close', done);
  raw.resume();
}
