// The schema registry contract (registry.contract.ts) against both implementations:
//  - the in-process Confluent double (confluent-double.test-util.ts), always;
//  - a real Confluent-compatible registry: SCHEMA_REGISTRY_URL when set (CI exports the
//    Apicurio Registry that .ci/run starts), else infra/schema-registry/registry.sh started
//    here (cached build; skipped outside CI when Java or Maven is missing, failed in CI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { AttuneError } from '../../lib/errors.js';
import { schemaRegistryOrSkip } from '../../test/services.js';
import { startConfluentDouble } from './confluent-double.test-util.js';
import { runRegistryContract } from './registry.contract.js';
import { ConfluentSchemaRegistry } from './registry.js';
import { loadSchemaFile } from './schemas.js';

runRegistryContract('Confluent double', async () => {
  const double = await startConfluentDouble();
  return { url: double.url, close: double.close };
});

runRegistryContract('real registry', async (skip) => {
  const url = await schemaRegistryOrSkip({ skip });
  return url ? { url } : null;
});

test('a registry that does not answer gives unavailable registry_error, within the timeout', async () => {
  // A port that accepted nothing: listen, note it, close.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const registry = new ConfluentSchemaRegistry({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
  const coded = (e: unknown) => e instanceof AttuneError && e.code === 'unavailable' && e.details[0].reason === 'registry_error';
  await assert.rejects(registry.register('x-value', loadSchemaFile('HeartReading.avsc')), coded);
  await assert.rejects(registry.getSchema(1), coded);
});

test('a registry that hangs is given up after timeoutMs', async () => {
  const sockets: import('node:net').Socket[] = [];
  const silent = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const registry = new ConfluentSchemaRegistry({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, timeoutMs: 300 });
    const started = performance.now();
    await assert.rejects(registry.getSchema(1), (e: unknown) => e instanceof AttuneError && e.code === 'unavailable');
    assert.ok(performance.now() - started < 5000, 'gave up long before a default socket timeout');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
