// API keys for server-to-server use (coherence platform document, "API Key Authentication"),
// and POST /v1/auth/token with grant_type=client_credentials, which exchanges a key for a
// short-lived token signed by Attune (http/api-key-auth.ts). People's logins stay with the
// organisation's identity provider: Attune has no password or authorization-code flow.
//  - POST /v1/api-keys (admin:org): the secret (`key`) is in this answer only; its scopes must
//    be among the creator's; an optional expires_at in the future; not with an API key's
//    credential (403 api_key_credential): only a person creates keys.
//  - GET /v1/api-keys (admin:org): the organisation's keys, never a secret.
//  - DELETE /v1/api-keys/{id} (admin:org): revokes; every instance refuses the key within 1 s.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import { iso } from '../lib/time.js';
import type { AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { apiKeyIdOf, type ApiKey } from '../store/postgres/api-keys-repo.js';
import { TIER_NAMES } from '../lib/tiers.js';

const ALL_SCOPES = Object.values(Scopes);

const apiKeySchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The key id: public, the X-AUF-Client-ID (and client_id) of the key.' },
    client_id: { type: 'string', description: 'Same as id.' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    created_by: { type: 'string', description: 'The admin who created the key; requests made with it act as this user.' },
    tier: { type: ['string', 'null'], enum: [...TIER_NAMES, null], description: "The rate-limit tier of the token that created the key, which requests made with the key get; null: the deployment's default tier." },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
    status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
  },
  required: ['id', 'client_id', 'name', 'scopes', 'created_by', 'tier', 'created_at', 'expires_at', 'revoked_at', 'status'],
} as const;

const createdKeySchema = {
  ...apiKeySchema,
  properties: {
    ...apiKeySchema.properties,
    key: { type: 'string', description: 'The API key (`atk_<id>.<secret>`): shown once, stored only as a hash. Send it as `Authorization: Bearer <key>` (with `X-AUF-Client-ID: <id>`) or `X-API-Key: <key>`.' },
  },
  required: [...apiKeySchema.required, 'key'],
} as const;

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

function keyJson(k: ApiKey, now: number) {
  return {
    id: k.id,
    client_id: k.id,
    name: k.name,
    scopes: k.scopes,
    created_by: k.createdBy,
    tier: k.tier,
    created_at: iso(k.createdAt),
    expires_at: k.expiresAt === null ? null : iso(k.expiresAt),
    revoked_at: k.revokedAt === null ? null : iso(k.revokedAt),
    status: k.revokedAt !== null ? 'revoked' : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : 'active',
  };
}

/** client_id and client_secret of a token request: the body's, or HTTP Basic (RFC 6749 2.3.1). */
function clientCredentials(req: FastifyRequest<{ Body: { client_id?: string; client_secret?: string } }>): { id: string | null; secret: string | null } {
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization?.trim() ?? '');
  if (basic) {
    const text = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) {
      try {
        return { id: decodeURIComponent(text.slice(0, colon)), secret: decodeURIComponent(text.slice(colon + 1)) };
      } catch {
        // A malformed %-escape: not a credential.
        throw new AttuneError('unauthorized', 'malformed HTTP Basic credentials', [{ reason: 'invalid_api_key' }]);
      }
    }
  }
  return { id: req.body?.client_id ?? null, secret: req.body?.client_secret ?? null };
}

export async function registerApiKeyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const keys = ctx.apiKeys;
  if (!keys) return;

  app.post<{ Body: { name?: string; scopes: string[]; expires_at?: string } }>(
    '/v1/api-keys',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key of the organisation (server-to-server). The secret is in this answer only.',
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', maxLength: 100 },
            scopes: { type: 'array', items: { type: 'string', enum: ALL_SCOPES }, minItems: 1, maxItems: ALL_SCOPES.length, uniqueItems: true, description: "Among the creator's own scopes." },
            expires_at: { type: 'string', format: 'date-time', maxLength: 40, description: 'When the key stops working (in the future); none: until revoked.' },
          },
          required: ['scopes'],
          additionalProperties: false,
        },
        response: { 201: createdKeySchema, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      // Only a person (a token of the organisation's identity provider) creates keys. A key
      // that could mint keys would outlive its own expiry and revocation: a leaked admin key
      // made a child key with no expiry that still worked after the parent was revoked, listed
      // as the admin's (a security review).
      if (p.apiKeyId !== undefined) {
        throw new AttuneError('forbidden', 'an API key (or a token exchanged for one) cannot create API keys: create keys with a token of a person', [{ reason: 'api_key_credential' }]);
      }
      const missing = req.body.scopes.filter((s) => !p.scopes.has(s));
      if (missing.length > 0) {
        throw new AttuneError('forbidden', `a key may carry only scopes its creator holds; missing ${missing.join(', ')}`, [{ field: '/scopes', reason: 'scope_not_held', scopes: missing }]);
      }
      let expiresAt: number | null = null;
      if (req.body.expires_at !== undefined) {
        expiresAt = Date.parse(req.body.expires_at);
        if (!Number.isFinite(expiresAt) || expiresAt <= ctx.clock()) {
          throw new AttuneError('validation_error', 'expires_at must be a date-time in the future', [{ field: '/expires_at', reason: 'out_of_range' }]);
        }
      }
      // The key acts as its creator, at the creator's tier (the creating token's `tier` claim).
      const { apiKey, key } = await keys.repo.create({ orgId: p.orgId, createdBy: p.userId, name: req.body.name ?? '', scopes: req.body.scopes, tier: p.tier ?? null, expiresAt });
      void reply.status(201);
      return { ...keyJson(apiKey, ctx.clock()), key };
    },
  );

  app.get(
    '/v1/api-keys',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['api-keys'],
        summary: "The organisation's API keys, newest first (never their secrets).",
        security: [{ bearerAuth: [] }],
        response: { 200: { type: 'object', properties: { api_keys: { type: 'array', items: apiKeySchema } }, required: ['api_keys'] }, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const now = ctx.clock();
      return { api_keys: (await keys.repo.list(p.orgId)).map((k) => keyJson(k, now)) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/api-keys/:id',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['api-keys'],
        summary: 'Revoke an API key: every instance refuses it (and the tokens exchanged for it) within 1 s.',
        security: [{ bearerAuth: [] }],
        params: idParams,
        response: { 200: apiKeySchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      return keyJson(await keys.repo.revoke(p.orgId, req.params.id), ctx.clock());
    },
  );

  // POST /v1/auth/token takes the OAuth form encoding as well as JSON (RFC 6749 4.4).
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    scope.post<{ Body: { grant_type: string; client_id?: string; client_secret?: string; scope?: string } }>(
      '/v1/auth/token',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['api-keys'],
          summary:
            "Exchange an API key for a short-lived token (OAuth 2.0 client_credentials): client_secret is the key, client_id its id (or HTTP Basic). People log in at the organisation's identity provider, not here.",
          consumes: ['application/x-www-form-urlencoded', 'application/json'],
          body: {
            type: 'object',
            properties: {
              grant_type: { type: 'string', maxLength: 64 },
              client_id: { type: 'string', maxLength: 64 },
              client_secret: { type: 'string', maxLength: 256 },
              scope: { type: 'string', maxLength: 512, description: 'Ignored: the token carries the key\'s scopes.' },
              // The other grants' fields (RFC 6749), so that their requests are answered
              // unsupported_grant_type rather than unknown_field.
              ...Object.fromEntries(['code', 'redirect_uri', 'code_verifier', 'refresh_token', 'username', 'password'].map((f) => [f, { type: 'string', maxLength: 2048, description: 'Not used: only client_credentials is answered.' }])),
            },
            required: ['grant_type'],
            additionalProperties: false,
          },
          response: {
            200: {
              type: 'object',
              properties: {
                access_token: { type: 'string' },
                token_type: { type: 'string', enum: ['Bearer'] },
                expires_in: { type: 'integer' },
                scope: { type: 'string' },
              },
              required: ['access_token', 'token_type', 'expires_in', 'scope'],
            },
            '4xx': errorBodySchema,
          },
        },
      },
      async (req) => {
        if (req.body.grant_type !== 'client_credentials') {
          throw new AttuneError('validation_error', 'only grant_type=client_credentials is taken here; people log in at the identity provider', [
            { field: '/grant_type', reason: 'unsupported_grant_type' },
          ]);
        }
        const { id, secret } = clientCredentials(req);
        if (!secret) throw new AttuneError('unauthorized', 'client_secret (the API key) is required', [{ reason: 'invalid_api_key' }]);
        if (id !== null && apiKeyIdOf(secret) !== id) throw new AttuneError('unauthorized', 'client_id does not name the key given', [{ reason: 'invalid_api_key' }]);
        const t = await keys.auth.exchange(secret);
        return { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn, scope: t.scope };
      },
    );
  });
}
