// Webhooks (coherence platform document, "Webhooks"): an organisation admin registers URLs
// for event types; the dispatcher (pipelines/webhooks/dispatcher.ts) delivers each event as
// {id, type, created, data}, signed `X-AUF-Signature: sha256=<hex HMAC-SHA256 of the raw
// body>` with the webhook's secret, retried with back-off for 26.5 h. A URL whose host is or
// resolves to a loopback, private or link-local address is refused here (400
// private_address) and again at delivery (lib/net-guard.ts), unless configured.
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import { iso } from '../lib/time.js';
import { checkUrl } from '../lib/net-guard.js';
import type { AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import type { Webhook, WebhookDelivery } from '../store/postgres/webhooks-repo.js';

/**
 * The event types a webhook may list: those the dispatcher sends (pipelines/webhooks/dispatcher.ts
 * WEBHOOK_EVENT_TYPES; api/ does not import pipelines/), and the document's user.tier_upgraded,
 * accepted and never sent (tiers come with the identity provider's token, not from a billing
 * event Attune could see): a client subscribing to every documented event type had its whole
 * registration refused.
 */
export const WEBHOOK_EVENTS = ['session.started', 'session.completed', 'user.streak_milestone', 'user.tier_upgraded', 'mesh.threshold_reached', 'device.low_battery', 'speech.session.completed'] as const;

const webhookSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    description: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    active: { type: 'boolean', description: 'false: paused; events still become deliveries, held pending and sent in order once it is active again (held over 30 days: dropped).' },
  },
  required: ['id', 'url', 'events', 'description', 'created_at', 'active'],
} as const;

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    event_id: { type: 'string' },
    event_type: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'], description: 'pending: not yet answered 2xx and still to be tried; failed: every attempt failed (26.5 h).' },
    attempts: { type: 'integer' },
    created_at: { type: 'string', format: 'date-time' },
    next_attempt_at: { type: ['string', 'null'], format: 'date-time' },
    last_attempt_at: { type: ['string', 'null'], format: 'date-time' },
    last_status_code: { type: ['integer', 'null'] },
    last_error: { type: ['string', 'null'] },
    delivered_at: { type: ['string', 'null'], format: 'date-time' },
  },
  required: ['id', 'event_id', 'event_type', 'status', 'attempts', 'created_at', 'next_attempt_at', 'last_attempt_at', 'last_status_code', 'last_error', 'delivered_at'],
} as const;

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;
const isoOrNull = (t: number | null) => (t === null ? null : iso(t));

const webhookJson = (w: Webhook) => ({ id: w.id, url: w.url, events: w.events, description: w.description, created_at: iso(w.createdAt), active: w.active });
const deliveryJson = (d: WebhookDelivery) => ({
  id: d.id,
  event_id: d.eventId,
  event_type: d.eventType,
  status: d.status,
  attempts: d.attempts,
  created_at: iso(d.createdAt),
  next_attempt_at: isoOrNull(d.nextAttemptAt),
  last_attempt_at: isoOrNull(d.lastAttemptAt),
  last_status_code: d.lastStatusCode,
  last_error: d.lastError,
  delivered_at: isoOrNull(d.deliveredAt),
});

export async function registerWebhookRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hooks = ctx.webhooks;
  if (!hooks) return;
  const security = [{ bearerAuth: [] }];

  app.post<{ Body: { url: string; events: string[]; secret: string; description?: string } }>(
    '/v1/webhooks',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['webhooks'],
        summary: "Register a webhook of the caller's organisation. Deliveries are signed X-AUF-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with secret>.",
        security,
        body: {
          type: 'object',
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048, description: 'http(s); loopback, private and link-local addresses are refused unless configured.' },
            events: { type: 'array', items: { type: 'string', enum: [...WEBHOOK_EVENTS] }, minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true },
            secret: { type: 'string', minLength: 1, maxLength: 256, description: 'Signs every delivery; never shown again.' },
            description: { type: 'string', maxLength: 200 },
          },
          required: ['url', 'events', 'secret'],
          additionalProperties: false,
        },
        response: { 201: webhookSchema, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const check = await checkUrl(req.body.url, hooks.guard);
      if (!check.ok) throw new AttuneError('validation_error', `webhook url refused: ${check.message}`, [{ field: '/url', reason: check.reason, message: check.message }]);
      const w = await hooks.repo.create({ orgId: p.orgId, createdBy: p.userId, url: check.url.toString(), events: req.body.events, secret: req.body.secret, description: req.body.description ?? '' });
      void reply.status(201);
      return webhookJson(w);
    },
  );

  app.get(
    '/v1/webhooks',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['webhooks'],
        summary: "The organisation's webhooks (never their secrets).",
        security,
        response: { 200: { type: 'object', properties: { webhooks: { type: 'array', items: webhookSchema } }, required: ['webhooks'] }, '4xx': errorBodySchema },
      },
    },
    async (req) => ({ webhooks: (await hooks.repo.list(principalOf(req).orgId)).map(webhookJson) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: { tags: ['webhooks'], summary: 'One webhook.', security, params: idParams, response: { 200: webhookSchema, '4xx': errorBodySchema } },
    },
    async (req) => webhookJson(await hooks.repo.get(principalOf(req).orgId, req.params.id)),
  );

  app.patch<{ Params: { id: string }; Body: { active?: boolean; events?: string[]; url?: string; description?: string } }>(
    '/v1/webhooks/:id',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['webhooks'],
        summary: 'Pause (active: false) or resume a webhook, or change its events, URL or description. The secret cannot be changed: register a new webhook.',
        security,
        params: idParams,
        body: {
          type: 'object',
          properties: {
            active: { type: 'boolean' },
            events: { type: 'array', items: { type: 'string', enum: [...WEBHOOK_EVENTS] }, minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true },
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            description: { type: 'string', maxLength: 200 },
          },
          additionalProperties: false,
          minProperties: 1,
        },
        response: { 200: webhookSchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      let url: string | undefined;
      if (req.body.url !== undefined) {
        const check = await checkUrl(req.body.url, hooks.guard);
        if (!check.ok) throw new AttuneError('validation_error', `webhook url refused: ${check.message}`, [{ field: '/url', reason: check.reason, message: check.message }]);
        url = check.url.toString();
      }
      return webhookJson(await hooks.repo.update(p.orgId, req.params.id, { active: req.body.active, events: req.body.events, url, description: req.body.description }));
    },
  );

  app.post<{ Params: { id: string; delivery_id: string } }>(
    '/v1/webhooks/:id/deliveries/:delivery_id/redeliver',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivered or failed delivery again (the receiver lost it, or was down past the retries): pending, due now, with the whole retry schedule ahead; the same event id and body, signed at the new attempt. 409 delivery_pending for one still pending.',
        security,
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 }, delivery_id: { type: 'string', maxLength: 20 } }, required: ['id', 'delivery_id'] },
        body: { type: ['object', 'null'], properties: {}, additionalProperties: false, description: 'Nothing (an empty object or no body).' },
        response: { 202: deliverySchema, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const d = await hooks.repo.redeliver(principalOf(req).orgId, req.params.id, req.params.delivery_id, ctx.clock());
      if (!d) throw new AttuneError('not_found', `delivery ${req.params.delivery_id} not found`, [{ field: 'delivery_id', reason: 'not_found' }]);
      void reply.status(202);
      return deliveryJson(d);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['webhooks'],
        summary: 'Delete a webhook and its delivery log; deliveries still pending are not sent.',
        security,
        params: idParams,
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, deleted: { type: 'boolean' } }, required: ['id', 'deleted'] }, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      await hooks.repo.delete(principalOf(req).orgId, req.params.id);
      return { id: req.params.id, deleted: true };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/v1/webhooks/:id/deliveries',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['webhooks'],
        summary: "The webhook's delivery log, newest first: status, attempts, the last answer or error, the next attempt.",
        security,
        params: idParams,
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } }, additionalProperties: false },
        response: { 200: { type: 'object', properties: { deliveries: { type: 'array', items: deliverySchema } }, required: ['deliveries'] }, '4xx': errorBodySchema },
      },
    },
    async (req) => ({ deliveries: (await hooks.repo.deliveries(principalOf(req).orgId, req.params.id, req.query.limit ?? 100)).map(deliveryJson) }),
  );
}
