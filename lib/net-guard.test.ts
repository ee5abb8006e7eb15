// The webhook URL guard (lib/net-guard.ts): what is refused by default, that every address a
// name resolves to is checked, and what the two settings let through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { addressAllowed, checkUrl, guardedLookup, PrivateAddressError, type NetGuardOptions } from './net-guard.js';

const fakeDns = (table: Record<string, string[]>) => async (host: string): Promise<LookupAddress[]> => {
  const a = table[host];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const dns = fakeDns({
  'hooks.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'rebind.example.com': ['93.184.215.14', '127.0.0.1'],
  'internal.example.com': ['10.1.2.3'],
  localhost: ['127.0.0.1', '::1'],
});
const strict: NetGuardOptions = { allowPrivate: false, allowHosts: [], resolve: dns };

test('loopback, private, link-local, CGNAT, unspecified and mapped forms are refused by default; public unicast passes', async () => {
  for (const url of [
    'http://127.0.0.1:18430/hook',
    'http://127.8.9.10/',
    'http://[::1]/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/',
    'http://[fd00::1]/',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://localhost:18430/',
    'http://internal.example.com/',
  ]) {
    const r = await checkUrl(url, strict);
    assert.equal(r.ok, false, url);
    assert.equal(!r.ok && r.reason, 'private_address', url);
  }
  const ok = await checkUrl('https://hooks.example.com/auf-webhook', strict);
  assert.equal(ok.ok, true);
  assert.equal((await checkUrl('https://93.184.215.14/x', strict)).ok, true);
});

test('every address a name resolves to is checked: one private answer refuses it', async () => {
  const r = await checkUrl('https://rebind.example.com/hook', strict);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.message : '', /127\.0\.0\.1/);
});

test('bad URLs are invalid_format: other schemes, credentials, unresolvable hosts', async () => {
  for (const url of ['ftp://hooks.example.com/', 'not a url', 'https://user:pw@hooks.example.com/', 'https://nowhere.example.com/', 'file:///etc/passwd']) {
    const r = await checkUrl(url, strict);
    assert.equal(!r.ok && r.reason, 'invalid_format', url);
  }
});

test('ATTUNE_WEBHOOKS_ALLOW_PRIVATE lets everything through; ATTUNE_WEBHOOKS_ALLOW_HOSTS only the names and CIDRs it lists', async () => {
  assert.equal((await checkUrl('http://127.0.0.1:18430/', { ...strict, allowPrivate: true })).ok, true);
  const listed: NetGuardOptions = { ...strict, allowHosts: ['internal.example.com', '192.168.0.0/16', '127.0.0.1'] };
  assert.equal((await checkUrl('http://internal.example.com/', listed)).ok, true);
  assert.equal((await checkUrl('https://your-server.com/auf-webhook', { ...strict, allowHosts: ['your-server.com'] })).ok, true, 'a host allowed by name is not resolved');
  assert.equal((await checkUrl('http://192.168.44.1/', listed)).ok, true);
  assert.equal((await checkUrl('http://127.0.0.1:18430/', listed)).ok, true);
  assert.equal((await checkUrl('http://127.0.0.2/', listed)).ok, false);
  assert.equal((await checkUrl('http://10.0.0.1/', listed)).ok, false);
  assert.equal(addressAllowed(listed, '::ffff:192.168.1.1'), true, 'a mapped address matches its IPv4 CIDR');
});

test('guardedLookup (delivery time) refuses a name that now resolves to a private address, and resolves public ones', async () => {
  const lookup = guardedLookup(strict);
  const call = (host: string, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown }>((resolve) => lookup(host, { all }, (err, address) => resolve({ err, address })));
  const refused = await call('rebind.example.com', false);
  assert.ok(refused.err instanceof PrivateAddressError);
  const fine = await call('hooks.example.com', false);
  assert.equal(fine.err, null);
  assert.equal(fine.address, '93.184.215.14');
  const all = await call('hooks.example.com', true);
  assert.equal((all.address as LookupAddress[]).length, 2);
});
