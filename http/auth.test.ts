// Token verification: the claims every token must carry, the maximum age, and RS256 keys
// served by an identity provider's JWKS endpoint (a local HTTP server here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import { isAttuneError } from '../lib/errors.js';
import { createAuthenticator } from './auth.js';

const secret = randomBytes(32).toString('hex');
const iss = 'attune-test';
const aud = 'attune-test-api';
const claims = { sub: 'u1', org_id: 'o1', scope: 'read:sessions' };
const nowS = () => Math.floor(Date.now() / 1000);

function hs256(payload: Record<string, unknown>, opts: { noTimestamp?: boolean } = {}): string {
  return createSigner({ key: secret, algorithm: 'HS256', noTimestamp: opts.noTimestamp })(payload);
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(isAttuneError(err), `not a coded error: ${err}`);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.statusCode, 401);
    return err.message;
  }
  assert.fail('the token was accepted');
}

test('a token must carry exp, iss and aud, with the configured issuer and audience', async () => {
  const auth = createAuthenticator({ secret, publicKey: null, issuer: iss, audience: aud });
  const exp = nowS() + 600;
  const ok = await auth.verify(hs256({ ...claims, iss, aud, exp }));
  assert.deepEqual([ok.userId, ok.orgId, [...ok.scopes], ok.expiresAt], ['u1', 'o1', ['read:sessions'], exp * 1000]);
  assert.match(await refusal(auth.verify(hs256({ ...claims, iss, aud }))), /exp claim is required/);
  assert.match(await refusal(auth.verify(hs256({ ...claims, aud, exp }))), /iss claim is required/);
  assert.match(await refusal(auth.verify(hs256({ ...claims, iss, exp }))), /aud claim is required/);
  assert.match(await refusal(auth.verify(hs256({ ...claims, iss: 'someone-else', aud, exp }))), /iss/);
  assert.match(await refusal(auth.verify(hs256({ ...claims, iss, aud: 'another-api', exp }))), /aud/);
  assert.match(await refusal(auth.verify(hs256({ ...claims, iss, aud, exp: nowS() - 60 }))), /expired/);
});

test('a token older than the maximum age is refused, and one without iat may not outlive it', async () => {
  const auth = createAuthenticator({ secret, publicKey: null, issuer: iss, audience: aud, maxAgeS: 3600 });
  const fresh = await auth.verify(hs256({ ...claims, iss, aud, exp: nowS() + 600, iat: nowS() - 60 }));
  assert.equal(fresh.userId, 'u1');
  // Issued two hours ago and still unexpired: too old.
  await refusal(auth.verify(hs256({ ...claims, iss, aud, exp: nowS() + 600, iat: nowS() - 7200 })));
  // No iat: accepted while it expires within the maximum age, refused when it would outlive it.
  await auth.verify(hs256({ ...claims, iss, aud, exp: nowS() + 1800 }, { noTimestamp: true }));
  assert.match(await refusal(auth.verify(hs256({ ...claims, iss, aud, exp: nowS() + 7200 }, { noTimestamp: true }))), /within 3600 s/);
  // Minting refuses what verification would refuse.
  assert.throws(() => auth.sign({ userId: 'u1', orgId: 'o1', scopes: [], ttlSeconds: 7200 }), /at most 3600 s/);
  const minted = await auth.verify(auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['a'] }));
  assert.ok(minted.expiresAt - Date.now() <= 3600_000 + 1000, 'the default lifetime is capped by the maximum age');
});

test('RS256 tokens verify against the keys of a JWKS endpoint, by kid', async () => {
  const kid = 'key-2026-12';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === '/tenant/keys.json') {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const auth = createAuthenticator({ secret: null, publicKey: null, jwksUrl: `http://127.0.0.1:${port}/tenant/keys.json`, issuer: iss, audience: aud });
    const sign = (key: typeof privateKey, k: string) =>
      createSigner({ key: key.export({ format: 'pem', type: 'pkcs8' }) as string, algorithm: 'RS256', kid: k, iss, aud, expiresIn: 600_000 })(claims);
    const p = await auth.verify(sign(privateKey, kid));
    assert.deepEqual([p.userId, p.orgId], ['u1', 'o1']);
    await auth.verify(sign(privateKey, kid));
    assert.equal(fetches, 1, 'the JWKS document is fetched once and cached');
    // Signed by another key under the same kid, or under a kid the provider does not list.
    await refusal(auth.verify(sign(other.privateKey, kid)));
    await refusal(auth.verify(sign(privateKey, 'unknown-kid')));
    // An HS256 token is not accepted where RS256 keys are configured.
    await refusal(auth.verify(hs256({ ...claims, iss, aud, exp: nowS() + 600 })));
    // Made-up kids and algorithms do not make Attune fetch the provider's keys again and again.
    const before = fetches;
    for (let i = 0; i < 20; i++) await refusal(auth.verify(sign(privateKey, `made-up-${i}`)));
    assert.ok(fetches - before <= 1, `${fetches - before} fetches for 20 unknown kids`);
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', kid })).toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, iss, aud, exp: nowS() + 600 })).toString('base64url')}.`;
    await refusal(auth.verify(noneAlg));
  } finally {
    server.close();
  }
});

test('exactly one key source is configured', () => {
  assert.throws(() => createAuthenticator({ secret: null, publicKey: null, issuer: iss, audience: aud }), /exactly one/);
  assert.throws(() => createAuthenticator({ secret, publicKey: null, jwksUrl: 'http://127.0.0.1:1/jwks', issuer: iss, audience: aud }), /exactly one/);
});

test('an unreachable identity provider is 503 unavailable, not a bad token', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const auth = createAuthenticator({ secret: null, publicKey: null, jwksUrl: `http://127.0.0.1:${port}/keys.json`, issuer: iss, audience: aud });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const token = createSigner({ key: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, algorithm: 'RS256', kid: 'k1', iss, aud, expiresIn: 600_000 })(claims);
  try {
    await auth.verify(token);
    assert.fail('accepted');
  } catch (err) {
    assert.ok(isAttuneError(err));
    assert.deepEqual([err.code, err.statusCode, err.details[0].reason], ['unavailable', 503, 'jwks_unavailable']);
  }
});

test('iat in the future is refused; a token’s life is bounded by iat + max age; scp and provider-style subjects are read', async () => {
  const auth = createAuthenticator({ secret, publicKey: null, issuer: iss, audience: aud, maxAgeS: 3600 });
  await refusal(auth.verify(hs256({ ...claims, iss, aud, iat: nowS() + 3600, exp: nowS() + 7000 })));
  const p = await auth.verify(hs256({ ...claims, iss, aud, iat: nowS() - 600, exp: nowS() + 86_400 }));
  assert.ok(Math.abs(p.expiresAt - (Date.now() + 3000_000)) < 2000, 'expires at iat + max age, not at exp');
  const okta = await auth.verify(hs256({ sub: 'auth0|5f1c', org_id: 'o1', scp: ['read:sessions', 'write:readings'], iss, aud, exp: nowS() + 600 }));
  assert.deepEqual([okta.userId, [...okta.scopes]], ['auth0|5f1c', ['read:sessions', 'write:readings']]);
  await refusal(auth.verify(hs256({ sub: 'a/b', org_id: 'o1', iss, aud, exp: nowS() + 600 })));
});
