// Authentication. Tokens are JWTs that carry the user (`sub`), the organisation (`org_id`),
// space-separated scopes and optionally a rate-limit `tier` (lib/tiers.ts), verified with one of: an HS256 shared secret, an RS256 public
// key (PEM), or the RS256 keys of an identity provider's JWKS URL (fetched by kid, cached).
// Every token must carry `exp`, `iss` and `aud`; a token older than the maximum age (by `iat`,
// or, without `iat`, one that stays valid for longer than it) is refused, so a leaked token is
// useful for a bounded time. RS256 keys may come from an identity provider's JWKS URL (jose's
// remote key set: timeout, cache, rate-limited refetch). Which scope a route needs is declared on the route
// (http/auth-plugin.ts); tenant checks (`canAccess`, lib/principal.ts) are made where the
// data is looked up.
import { KeyObject, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSigner, createVerifier, type Algorithm } from 'fast-jwt';
import type { createRemoteJWKSet, errors as JoseErrors } from 'jose';
import { AttuneError } from '../lib/errors.js';
import { checkKeyFile, DIR_MODE, FILE_MODE } from '../lib/data-dir.js';
import { hasScope, type Principal, type Scope } from '../lib/principal.js';
import { tierOfClaim, type Tier } from '../lib/tiers.js';

export interface TokenClaims {
  sub: string;
  org_id: string;
  scope: string;
}

export interface AuthOptions {
  /** HS256 shared secret. */
  secret: string | null;
  /** RS256 public key, PEM. */
  publicKey: string | null;
  /** RS256 keys from an identity provider: the URL of its JWKS document. */
  jwksUrl?: string | null;
  issuer: string;
  audience: string;
  /** Oldest token accepted, seconds (default one day). */
  maxAgeS?: number;
}

/** A verified token: who, and until when (ms since the epoch) the token is valid. */
export interface VerifiedToken extends Principal {
  expiresAt: number;
  /** The API key behind the credential (the key itself, or a token exchanged for it): revocable while a socket is open. */
  apiKeyId?: string;
}

export interface Authenticator {
  verify(token: string): Promise<VerifiedToken>;
  /** Only with an HS256 secret: RS256 tokens are minted by the identity provider. */
  sign(p: { userId: string; orgId: string; scopes: string[]; ttlSeconds?: number; tier?: Tier }): string;
  /** The longest a token may live, seconds. */
  readonly maxAgeS: number;
}

export const DEFAULT_TOKEN_MAX_AGE_S = 86_400;
const CLOCK_TOLERANCE_MS = 5_000;
// `|` for identity providers' subjects such as auth0|5f…; never `/`, which the live hub's keys use.
const ID_PATTERN = /^[A-Za-z0-9._:@|-]{1,128}$/;

/** Thrown by the JWKS key source when the identity provider cannot be reached (not the token's fault). */
class KeysUnavailableError extends Error {}

/**
 * The key source of the verifier: a static key, or the key of an identity provider's JWKS
 * document named by the token's kid. The JWKS is fetched by jose's remote key set: one fetch
 * at a time, 5 s timeout, cached 10 min, and an unknown kid refetches at most every 30 s, so
 * tokens with made-up kids cannot make Attune hammer the provider. The header is checked
 * before anything is fetched.
 */
function keyOf(opts: AuthOptions): string | ((decoded: { header: { kid?: string; alg?: string } }) => Promise<string>) {
  if (!opts.jwksUrl) return (opts.publicKey ?? opts.secret)!;
  const jwksUrl = new URL(opts.jwksUrl);
  // jose (46 files) is imported with the first token to verify, not at every process start.
  let remote: Promise<{ jwks: ReturnType<typeof createRemoteJWKSet>; errors: typeof JoseErrors }> | null = null;
  const pems = new WeakMap<object, string>();
  return async ({ header }) => {
    if (header.alg !== 'RS256') throw new Error(`the token's alg must be RS256, got ${String(header.alg)}`);
    if (typeof header.kid !== 'string' || header.kid === '') throw new Error('the token names no key (kid) of the JWKS');
    remote ??= import('jose').then(({ createRemoteJWKSet, errors }) => ({
      jwks: createRemoteJWKSet(jwksUrl, { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 }),
      errors,
    }));
    const { jwks, errors } = await remote;
    let key: object;
    try {
      key = await jwks({ alg: 'RS256', kid: header.kid });
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw new Error(`no key ${header.kid} in the JWKS`);
      throw new KeysUnavailableError(`the JWKS at ${opts.jwksUrl} could not be read: ${(err as Error).message}`);
    }
    let pem = pems.get(key);
    if (!pem) {
      const keyObject = key instanceof KeyObject ? key : KeyObject.from(key as Parameters<typeof KeyObject.from>[0]);
      pems.set(key, (pem = keyObject.export({ format: 'pem', type: 'spki' }) as string));
    }
    return pem;
  };
}

export function createAuthenticator(opts: AuthOptions): Authenticator {
  const sources = [opts.secret, opts.publicKey, opts.jwksUrl].filter((v) => v).length;
  if (sources !== 1) throw new Error('auth needs exactly one of JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL');
  const maxAgeS = opts.maxAgeS ?? DEFAULT_TOKEN_MAX_AGE_S;
  const key = keyOf(opts);
  const common = {
    algorithms: [opts.secret ? 'HS256' : 'RS256'] as Algorithm[],
    allowedIss: opts.issuer,
    allowedAud: opts.audience,
    requiredClaims: ['exp', 'iss', 'aud'],
    maxAge: maxAgeS * 1000,
    clockTolerance: CLOCK_TOLERANCE_MS,
    cache: 1000,
  };
  // One verifier type for both key kinds: a key fetcher makes fast-jwt's verifier async.
  const verifier: (token: string) => Promise<Record<string, unknown>> | Record<string, unknown> =
    typeof key === 'function' ? createVerifier({ ...common, key }) : createVerifier({ ...common, key });
  const secret = opts.secret;
  return {
    maxAgeS,
    async verify(token: string): Promise<VerifiedToken> {
      let claims: Partial<TokenClaims> & Record<string, unknown>;
      try {
        claims = await verifier(token);
      } catch (err) {
        const cause = (err as { originalError?: unknown }).originalError;
        if (cause instanceof KeysUnavailableError) {
          throw new AttuneError('unavailable', "the identity provider's keys cannot be read; retry later", [{ reason: 'jwks_unavailable' }]);
        }
        throw new AttuneError('unauthorized', `invalid token: ${(err as Error).message}`, [{ reason: 'invalid_token' }]);
      }
      const now = Date.now();
      const exp = Number(claims.exp) * 1000;
      const iat = typeof claims.iat === 'number' ? claims.iat * 1000 : null;
      // fast-jwt's maxAge does not look at an iat in the future, which would stretch it.
      if (iat !== null && iat > now + CLOCK_TOLERANCE_MS) {
        throw new AttuneError('unauthorized', 'invalid token: issued in the future (iat)', [{ reason: 'invalid_token' }]);
      }
      // Without iat, fast-jwt's maxAge cannot apply: bound the time the token has left instead.
      if (iat === null && exp - now > maxAgeS * 1000 + CLOCK_TOLERANCE_MS) {
        throw new AttuneError('unauthorized', `invalid token: without iat it must expire within ${maxAgeS} s`, [{ reason: 'token_too_long_lived' }]);
      }
      if (typeof claims.sub !== 'string' || !ID_PATTERN.test(claims.sub)) {
        throw new AttuneError('unauthorized', 'token has no valid sub (user id) claim', [{ reason: 'invalid_token' }]);
      }
      if (typeof claims.org_id !== 'string' || !ID_PATTERN.test(claims.org_id)) {
        throw new AttuneError('unauthorized', 'token has no valid org_id claim', [{ reason: 'invalid_token' }]);
      }
      // `scope` (space-separated) or `scp` (a string or a list, as Okta and Azure AD issue it).
      const raw = typeof claims.scope === 'string' ? claims.scope : claims.scp;
      const scopes = Array.isArray(raw) ? raw.filter((x): x is string => typeof x === 'string') : typeof raw === 'string' ? raw.split(/\s+/) : [];
      // A socket lives no longer than the token would be accepted on a new request.
      const expiresAt = iat === null ? exp : Math.min(exp, iat + maxAgeS * 1000);
      // The rate-limit tier (lib/tiers.ts): the `tier` claim, free|plus|pro|enterprise in any
      // case; absent or another value leaves it unset, and ATTUNE_DEFAULT_TIER applies.
      const tier = tierOfClaim(claims.tier);
      return { userId: claims.sub, orgId: claims.org_id, scopes: new Set(scopes.filter(Boolean)), expiresAt, ...(tier ? { tier } : {}) };
    },
    sign({ userId, orgId, scopes, ttlSeconds = Math.min(24 * 3600, maxAgeS), tier }) {
      if (!secret) throw new Error('signing needs an HS256 secret (JWT_SECRET or the embedded secret file)');
      if (!ID_PATTERN.test(userId)) throw new Error(`invalid user id "${userId}"`);
      if (!ID_PATTERN.test(orgId)) throw new Error(`invalid org id "${orgId}"`);
      if (ttlSeconds > maxAgeS) throw new Error(`a token may live at most ${maxAgeS} s (JWT_MAX_AGE_S)`);
      const signer = createSigner({
        key: secret,
        algorithm: 'HS256',
        iss: opts.issuer,
        aud: opts.audience,
        expiresIn: ttlSeconds * 1000,
      });
      return signer({ sub: userId, org_id: orgId, scope: scopes.join(' '), ...(tier ? { tier } : {}) });
    },
  };
}

/**
 * The embedded default's HS256 secret: generated once and kept in the data directory, so
 * that `attune token` and the running server agree without any setup.
 */
export function loadOrCreateSecret(dataDir: string): string {
  const dir = join(dataDir, 'secrets');
  const file = join(dir, 'jwt-hs256.key');
  // An existing key open to group or others, or shorter than 32 bytes, is refused (lib/data-dir.ts).
  const existing = (): string => {
    const text = readFileSync(file, 'utf8');
    checkKeyFile(file, text);
    return text.trim();
  };
  if (existsSync(file)) return existing();
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const secret = randomBytes(48).toString('base64url');
  try {
    writeFileSync(file, secret + '\n', { flag: 'wx', mode: FILE_MODE });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return existing();
    throw err;
  }
  chmodSync(file, FILE_MODE);
  return secret;
}

export function requireScope(p: Principal, scope: Scope): void {
  if (!hasScope(p, scope)) {
    throw new AttuneError('forbidden', `this route needs the ${scope} scope`, [{ reason: 'missing_scope', scope }]);
  }
}

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1].trim() : null;
}

/** A request's credential from its headers: a bearer token, else an `X-API-Key` header (an API key or a JWT). */
export function headerCredential(headers: { authorization?: string; 'x-api-key'?: string | string[] }): string | null {
  const apiKey = headers['x-api-key'];
  return bearerToken(headers.authorization) ?? (typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : null);
}
