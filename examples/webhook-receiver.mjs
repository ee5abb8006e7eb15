#!/usr/bin/env node
// A webhook receiver for Attune, with nothing but Node: it checks the timestamped signature
// (`X-Attune-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`), refuses one more
// than 5 minutes away from its own clock (a captured delivery sent again later), drops an event
// id it has seen (a retry, or a copy sent again within those 5 minutes), and answers 2xx fast.
//
//   WEBHOOK_SECRET=… PORT=8787 node examples/webhook-receiver.mjs
//
// Register it with `POST /v1/webhooks {url, events, secret}` (README "Webhooks"). The coherence
// platform document's body-only signature (`X-AUF-Signature: sha256=…`) is sent too, for
// receivers written against that document; it cannot tell a replay, so check this one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

export const TOLERANCE_S = 300;

/** True when `header` signs `body` with `secret` at a time within TOLERANCE_S of `nowMs`. */
export function verify(body, header, secret, nowMs = Date.now()) {
  let t = null;
  const sigs = [];
  for (const part of String(header ?? '').split(',')) {
    const [k, v] = part.split('=', 2);
    if (k === 't' && /^\d{1,12}$/.test(v ?? '')) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '')) sigs.push(v);
  }
  // Written so that a NaN time fails the check rather than passing it.
  if (t === null || sigs.length === 0 || !(Math.abs(nowMs / 1000 - t) <= TOLERANCE_S)) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return sigs.some((s) => timingSafeEqual(Buffer.from(s), expected));
}

/** The receiver: `onEvent` gets each new, verified event once. */
export function createReceiver({ secret, onEvent }) {
  // The last 100,000 event ids (the oldest go first): far more than a receiver gets within the
  // 5 minutes a replay can pass the time check.
  const seen = new Set();
  return createServer((req, res) => {
    if (req.method !== 'POST') return res.writeHead(405).end();
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1_000_000) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (!verify(body, req.headers['x-attune-signature'], secret)) return res.writeHead(401).end();
      let event;
      try {
        event = JSON.parse(body);
      } catch {
        return res.writeHead(400).end();
      }
      res.writeHead(204).end();
      if (seen.has(event.id)) return;
      seen.add(event.id);
      if (seen.size > 100_000) seen.delete(seen.values().next().value);
      try {
        onEvent(event);
      } catch (err) {
        // Acknowledged already: log it, keep serving (a thrown handler must not stop the receiver).
        console.error(`event ${event.id}: ${err?.message ?? err}`);
      }
    });
  });
}

// Run as a program (not imported, as its test does).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) {
    console.error('set WEBHOOK_SECRET to the webhook\'s secret');
    process.exit(1);
  }
  const port = Number(process.env.PORT ?? 8787);
  createReceiver({ secret, onEvent: (e) => console.log(JSON.stringify({ id: e.id, type: e.type, data: e.data })) }).listen(port, () => console.log(`listening on ${port}`));
}
