// Refuses a URL with a percent-encoded NUL (%00) before any route sees it: a NUL in a path
// parameter or a query value (an id, a cursor, a user_id) reached PostgreSQL as a 500.
// JSON bodies are checked by the body parser (http/errors.ts, lib/text-limits.ts).
import type { FastifyInstance } from 'fastify';
import { invalidText } from '../lib/text-limits.js';

export function registerTextGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    if (!req.url.includes('%00')) return;
    const q = req.url.indexOf('?');
    if (q === -1 || req.url.indexOf('%00', q) === -1) throw invalidText(':');
    throw invalidText(`?${queryNameWithNul(req.url.slice(q + 1))}`);
  });
}

/** The name of the first query parameter whose name or value has a %00 (as the client wrote it when it does not decode). */
function queryNameWithNul(query: string): string {
  for (const pair of query.split('&')) {
    if (!pair.includes('%00')) continue;
    const eq = pair.indexOf('=');
    const raw = (eq === -1 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      name = raw;
    }
    // A NUL in the name itself is shown escaped: the detail is logged and sent back.
    return name.replace(/\0/g, '\\u0000');
  }
  return '';
}
