// Authentication and authorisation. Tokens are JWTs (HS256 with a shared secret, or RS256
// verified with a public key) that carry the user, the org and space-separated scopes.
// Every route names the scope it needs; tenant checks (a user sees only their own data, an
// org admin sees the org's) are done with `canAccess` where the data is looked up.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSigner, createVerifier } from 'fast-jwt';
import { AttuneError } from '../lib/errors.js';
import type { Principal, Scope } from '../lib/principal.js';

export interface TokenClaims {
  sub: string;
  org_id: string;
  scope: string;
}

export interface AuthOptions {
  secret: string | null;
  publicKey: string | null;
  issuer: string;
  audience: string;
}

export interface Authenticator {
  verify(token: string): Principal;
  /** Only with an HS256 secret: RS256 tokens are minted by the identity provider. */
  sign(p: { userId: string; orgId: string; scopes: string[]; ttlSeconds?: number }): string;
}

const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

export function createAuthenticator(opts: AuthOptions): Authenticator {
  if (!opts.secret && !opts.publicKey) throw new Error('auth needs JWT_SECRET or JWT_PUBLIC_KEY');
  const verifier = createVerifier({
    key: (opts.publicKey ?? opts.secret)!,
    algorithms: opts.publicKey ? ['RS256'] : ['HS256'],
    allowedIss: opts.issuer,
    allowedAud: opts.audience,
    clockTolerance: 5_000,
    cache: 1000,
  });
  const secret = opts.secret;
  return {
    verify(token: string): Principal {
      let claims: Partial<TokenClaims> & Record<string, unknown>;
      try {
        claims = verifier(token);
      } catch (err) {
        throw new AttuneError('unauthorized', `invalid token: ${(err as Error).message}`);
      }
      if (typeof claims.sub !== 'string' || !ID_PATTERN.test(claims.sub)) {
        throw new AttuneError('unauthorized', 'token has no valid sub (user id) claim');
      }
      if (typeof claims.org_id !== 'string' || !ID_PATTERN.test(claims.org_id)) {
        throw new AttuneError('unauthorized', 'token has no valid org_id claim');
      }
      const scope = typeof claims.scope === 'string' ? claims.scope : '';
      return { userId: claims.sub, orgId: claims.org_id, scopes: new Set(scope.split(/\s+/).filter(Boolean)) };
    },
    sign({ userId, orgId, scopes, ttlSeconds = 24 * 3600 }) {
      if (!secret) throw new Error('signing needs an HS256 secret (JWT_SECRET or the embedded secret file)');
      if (!ID_PATTERN.test(userId)) throw new Error(`invalid user id "${userId}"`);
      if (!ID_PATTERN.test(orgId)) throw new Error(`invalid org id "${orgId}"`);
      const signer = createSigner({
        key: secret,
        algorithm: 'HS256',
        iss: opts.issuer,
        aud: opts.audience,
        expiresIn: ttlSeconds * 1000,
      });
      return signer({ sub: userId, org_id: orgId, scope: scopes.join(' ') });
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
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  try {
    writeFileSync(file, secret + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
  chmodSync(file, 0o600);
  return secret;
}

export function requireScope(p: Principal, scope: Scope): void {
  if (!p.scopes.has(scope)) {
    throw new AttuneError('forbidden', `this route needs the ${scope} scope`, [{ reason: 'missing_scope', scope }]);
  }
}

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1].trim() : null;
}
