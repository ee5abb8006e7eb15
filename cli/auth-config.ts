// The authenticator a process's configuration describes. Its own module, apart from the role
// wiring (roles.ts), so that `attune token` and `attune simulate` load the JWT code and
// nothing else: no server, bus, store or pipelines.
import type { AttuneConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { createAuthenticator, loadOrCreateSecret, type Authenticator } from '../http/auth.js';

export function authFromConfig(config: AttuneConfig, log: Logger): Authenticator {
  let secret = config.jwt.secret;
  if (!secret && !config.jwt.publicKey && !config.jwt.jwksUrl) {
    if (config.bus === 'kafka') log.warn('JWT_SECRET is not set: using this machine\'s data-dir secret; every scaled-out process must share one JWT_SECRET');
    secret = loadOrCreateSecret(config.dataDir);
  }
  return createAuthenticator({
    secret,
    publicKey: config.jwt.publicKey,
    jwksUrl: config.jwt.jwksUrl,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    maxAgeS: config.jwt.maxAgeS,
  });
}
