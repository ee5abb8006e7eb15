// API keys and the tokens Attune mints for them (issue 12), as an Authenticator around the one
// that verifies the identity provider's tokens (http/auth.ts). What a request may carry:
//  - an API key, `atk_<key id>.<secret>` (Authorization: Bearer, or X-API-Key; the plugin
//    checks an X-AUF-Client-ID header against the key id): looked up in PostgreSQL;
//  - a token minted by POST /v1/auth/token (client_credentials) for a key: an HS256 JWT with
//    issuer `attune:api-key` and the key id in `akid`, signed with Attune's own key
//    (ATTUNE_TOKEN_SECRET, else JWT_SECRET, else the data directory's secret); still refused
//    once its key is revoked;
//  - anything else goes to the identity provider's verifier unchanged (people's logins).
// Revocation is seen by every instance within 1 s: each instance remembers a key's state for
// at most `cacheTtlMs` (500 ms by default) and asks PostgreSQL again after that; instances
// share that database, so no message between them is needed. A key acts as the admin who
// created it (sub), in its organisation, with the key's own scopes.
import { createHash } from 'node:crypto';
import { createDecoder, createSigner, createVerifier } from 'fast-jwt';
import { LRUCache } from 'lru-cache';
import { AttuneError } from '../lib/errors.js';
import type { ApiKey, ApiKeysRepository } from '../store/postgres/api-keys-repo.js';
import { looksLikeApiKey } from '../store/postgres/api-keys-repo.js';
import type { Authenticator, VerifiedToken } from './auth.js';

export const API_KEY_TOKEN_ISSUER = 'attune:api-key';

export interface ApiKeyAuthOptions {
  keys: ApiKeysRepository;
  /** HS256 key of the tokens minted for API keys (≥ 32 characters). */
  tokenSecret: string;
  audience: string;
  /** Lifetime of a minted token, seconds (default 900). */
  tokenTtlS?: number;
  /** How long a key's state is remembered per instance, ms (default 500: revocation is seen within it). */
  cacheTtlMs?: number;
  clock?: () => number;
}

export interface ApiKeyAuthenticator extends Authenticator {
  /** Exchanges an API key for a short-lived token (POST /v1/auth/token). */
  exchange(apiKey: string): Promise<{ token: string; expiresIn: number; scope: string; key: ApiKey }>;
  /** The key a request's credential names, if it is a valid API key. */
  apiKeyOf(token: string): Promise<ApiKey | null>;
}

const invalidKey = (why: string) => new AttuneError('unauthorized', `invalid API key: ${why}`, [{ reason: 'invalid_api_key' }]);

export function withApiKeys(base: Authenticator, opts: ApiKeyAuthOptions): ApiKeyAuthenticator {
  if (opts.tokenSecret.length < 32) throw new Error('the API key token secret must be at least 32 characters');
  const clock = opts.clock ?? Date.now;
  const ttlS = Math.min(opts.tokenTtlS ?? 900, base.maxAgeS);
  const cacheTtl = opts.cacheTtlMs ?? 500;
  // By sha-256 of the whole key (never the key itself in memory longer than the request), and by key id.
  const byToken = new LRUCache<string, { key: ApiKey | null }>({ max: 10_000, ttl: cacheTtl, ttlAutopurge: false });
  const byId = new LRUCache<string, { key: ApiKey | null }>({ max: 10_000, ttl: cacheTtl, ttlAutopurge: false });
  const decode = createDecoder({ complete: false });
  const verifier = createVerifier({
    key: opts.tokenSecret,
    algorithms: ['HS256'],
    allowedIss: API_KEY_TOKEN_ISSUER,
    allowedAud: opts.audience,
    requiredClaims: ['exp', 'iss', 'aud', 'akid'],
    maxAge: base.maxAgeS * 1000,
    clockTolerance: 5_000,
  });

  const usable = (key: ApiKey | null): ApiKey => {
    if (!key) throw invalidKey('unknown key or wrong secret');
    if (key.revokedAt !== null) throw invalidKey('the key is revoked');
    if (key.expiresAt !== null && key.expiresAt <= clock()) throw invalidKey('the key has expired');
    return key;
  };
  const lookupToken = async (token: string): Promise<ApiKey | null> => {
    const h = createHash('sha256').update(token).digest('base64url');
    const hit = byToken.get(h);
    if (hit) return hit.key;
    const key = await opts.keys.findByToken(token);
    byToken.set(h, { key });
    return key;
  };
  const lookupId = async (id: string): Promise<ApiKey | null> => {
    const hit = byId.get(id);
    if (hit) return hit.key;
    const key = await opts.keys.get(id);
    byId.set(id, { key });
    return key;
  };
  const principal = (key: ApiKey, until: number): VerifiedToken => ({
    userId: key.createdBy,
    orgId: key.orgId,
    scopes: new Set(key.scopes),
    expiresAt: Math.min(until, key.expiresAt ?? Infinity),
    apiKeyId: key.id,
    ...(key.tier ? { tier: key.tier } : {}),
  });

  return {
    maxAgeS: base.maxAgeS,
    sign: (p) => base.sign(p),
    async apiKeyOf(token) {
      return looksLikeApiKey(token) ? usable(await lookupToken(token)) : null;
    },
    async verify(token) {
      if (looksLikeApiKey(token)) {
        // A socket authenticated by a key lives at most the longest token lifetime.
        return principal(usable(await lookupToken(token)), clock() + base.maxAgeS * 1000);
      }
      let iss: unknown;
      try {
        iss = (decode(token) as { iss?: unknown }).iss;
      } catch {
        iss = undefined; // not a JWT: the base verifier says so in its own words
      }
      if (iss !== API_KEY_TOKEN_ISSUER) return base.verify(token);
      let claims: Record<string, unknown>;
      try {
        claims = verifier(token);
      } catch (err) {
        throw new AttuneError('unauthorized', `invalid token: ${(err as Error).message}`, [{ reason: 'invalid_token' }]);
      }
      const key = usable(await lookupId(String(claims.akid)));
      return principal(key, Number(claims.exp) * 1000);
    },
    async exchange(apiKey) {
      const key = usable(await lookupToken(apiKey));
      const expiresIn = key.expiresAt === null ? ttlS : Math.max(1, Math.min(ttlS, Math.floor((key.expiresAt - clock()) / 1000)));
      const token = createSigner({ key: opts.tokenSecret, algorithm: 'HS256', iss: API_KEY_TOKEN_ISSUER, aud: opts.audience, expiresIn: expiresIn * 1000 })({
        sub: key.createdBy,
        org_id: key.orgId,
        scope: key.scopes.join(' '),
        akid: key.id,
      });
      return { token, expiresIn, scope: key.scopes.join(' '), key };
    },
  };
}
