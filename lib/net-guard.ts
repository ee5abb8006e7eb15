// Server-side request forgery guard for webhook URLs (issue 12): Attune sends requests to
// addresses its clients choose, so by default it refuses every address that is not public
// unicast: loopback, private (RFC 1918, IPv6 unique local), link-local (cloud metadata at
// 169.254.169.254), carrier-grade NAT, unspecified, multicast, broadcast and reserved ranges,
// IPv4-mapped IPv6 forms of them included. A host name is resolved and EVERY address it
// resolves to is checked (one private answer refuses the URL). At delivery time the same check
// runs inside the socket's DNS lookup (guardedLookup), so the connection goes to the address
// that was checked: a name re-pointed at 127.0.0.1 after the webhook was created (DNS
// rebinding) is refused then. The classification is ipaddr.js's (the address parser Fastify's
// proxy-addr uses), not a home-made list of ranges.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export interface NetGuardOptions {
  /** Allow every address (ATTUNE_WEBHOOKS_ALLOW_PRIVATE=1). */
  allowPrivate: boolean;
  /** Host names (exact, lower case) and CIDRs that may be reached although not public. */
  allowHosts: string[];
  /** DNS resolution (tests inject one); node's dns.lookup with all: true by default. */
  resolve?: (host: string) => Promise<LookupAddress[]>;
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: 'invalid_format' | 'private_address'; message: string };

/** How long a webhook's host may take to resolve (a resolver that does not answer would hold the request). */
export const RESOLVE_TIMEOUT_MS = 3_000;

const defaultResolve = (host: string): Promise<LookupAddress[]> =>
  new Promise((res, rej) => {
    const timer = setTimeout(() => rej(Object.assign(new Error(`resolving ${host} took over ${RESOLVE_TIMEOUT_MS} ms`), { code: 'ETIMEOUT' })), RESOLVE_TIMEOUT_MS);
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => {
      clearTimeout(timer);
      if (err) rej(err);
      else res(addresses);
    });
  });

/** ipaddr.js's range name of `address`; 'unicast' is the only public one. */
export function addressRange(address: string): string {
  return ipaddr.process(address).range();
}

function cidrAllows(allowHosts: string[], address: string): boolean {
  const addr = ipaddr.process(address);
  for (const entry of allowHosts) {
    if (!entry.includes('/')) {
      if (ipaddr.isValid(entry) && ipaddr.process(entry).toString() === addr.toString()) return true;
      continue;
    }
    try {
      const [net, bits] = ipaddr.parseCIDR(entry);
      if (net.kind() === addr.kind() && addr.match([net, bits] as never)) return true;
    } catch {
      // not a CIDR: a host name, matched by name
    }
  }
  return false;
}

/** Whether `address` may be reached (the host name `host` it was resolved from, if any). */
export function addressAllowed(opts: NetGuardOptions, address: string, host?: string): boolean {
  if (opts.allowPrivate) return true;
  if (host && opts.allowHosts.includes(host.toLowerCase())) return true;
  if (addressRange(address) === 'unicast') return true;
  return cidrAllows(opts.allowHosts, address);
}

const hostOf = (u: URL): string => u.hostname.replace(/^\[|\]$/g, '');

/** Checks a webhook URL: http(s), no credentials, and every address of its host allowed. */
export async function checkUrl(raw: string, opts: NetGuardOptions): Promise<UrlCheck> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, reason: 'invalid_format', message: 'not an absolute URL' };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { ok: false, reason: 'invalid_format', message: 'the URL must be http or https' };
  if (u.username || u.password) return { ok: false, reason: 'invalid_format', message: 'the URL must not carry credentials' };
  const host = hostOf(u);
  // A host allowed by name is not resolved here: it may be reached whatever it resolves to.
  if (!isIP(host) && opts.allowHosts.includes(host.toLowerCase())) return { ok: true, url: u };
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await (opts.resolve ?? defaultResolve)(host)).map((a) => a.address);
    } catch (err) {
      return { ok: false, reason: 'invalid_format', message: `the host ${host} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
  if (addresses.length === 0) return { ok: false, reason: 'invalid_format', message: `the host ${host} has no address` };
  const refused = addresses.filter((a) => !addressAllowed(opts, a, isIP(host) ? undefined : host));
  if (refused.length > 0) {
    return {
      ok: false,
      reason: 'private_address',
      message: `${host} resolves to ${refused.join(', ')} (${[...new Set(refused.map(addressRange))].join(', ')}): webhooks may not reach loopback, private or link-local addresses unless ATTUNE_WEBHOOKS_ALLOW_PRIVATE or ATTUNE_WEBHOOKS_ALLOW_HOSTS allows it`,
    };
  }
  return { ok: true, url: u };
}

export class PrivateAddressError extends Error {
  readonly code = 'EPRIVATEADDRESS';
}

/**
 * A `lookup` for http.request: resolves like dns.lookup, refuses when any address is not
 * allowed, and connects only to a checked address.
 */
export function guardedLookup(opts: NetGuardOptions) {
  return (host: string, options: unknown, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void): void => {
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    (opts.resolve ?? defaultResolve)(host).then(
      (addresses) => {
        const refused = addresses.filter((a) => !addressAllowed(opts, a.address, host));
        if (addresses.length === 0 || refused.length > 0) {
          callback(new PrivateAddressError(`${host} resolves to a private address (${refused.map((a) => a.address).join(', ')})`), '', 4);
          return;
        }
        if (all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (err: Error) => callback(err, '', 4),
    );
  };
}
