// Refuses a URL with a percent-encoded NUL (%00) before any route sees it: a NUL in a path
// parameter or a query value (an id, a cursor, a user_id) reached PostgreSQL as a 500.
// JSON bodies are checked by the body parser (http/errors.ts, lib/text-limits.ts).
import type { FastifyInstance } from 'fastify';
import { invalidText } from '../lib/text-limits.js';

export function registerTextGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    if (!req.url.includes('%00')) return;
    const q = req.url.indexOf('?');
    throw invalidText(q !== -1 && req.url.indexOf('%00', q) !== -1 ? '?' : ':');
  });
}
