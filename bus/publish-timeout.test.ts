// A publish is bounded (issue 10, producer behaviour): a bus that never answers, or fails,
// gives `unavailable` / bus_publish_failed with retry_after_s within the timeout, and the
// HTTP error handler turns that into 503 with Retry-After.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { isAttuneError } from '../lib/errors.js';
import { registerErrorHandling } from '../http/errors.js';
import { BUS_RETRY_AFTER_S, busUnavailable, withPublishTimeout } from './publish-timeout.js';
import type { Bus, OutgoingRecord } from './types.js';

function stubBus(publish: (topic: string, records: OutgoingRecord[]) => Promise<void>): Bus & { calls: number } {
  const bus = {
    kind: 'embedded' as const,
    calls: 0,
    ensureTopics: async () => undefined,
    publish: async (topic: string, records: OutgoingRecord[]) => {
      bus.calls++;
      return publish(topic, records);
    },
    subscribe: async () => ({ commit: async () => undefined, stop: async () => undefined }),
    committed: async () => new Map([[0, '7']]),
    partitionCount: async () => 1,
    close: async () => undefined,
  };
  return bus;
}

const one = [{ key: 'k', value: Buffer.from('v') }];

test('a publish the bus never answers rejects with unavailable / bus_publish_failed within the timeout', async () => {
  const inner = stubBus(() => new Promise<void>(() => undefined));
  const bus = withPublishTimeout(inner, 150);
  const began = performance.now();
  const err = await bus.publish('t', one).then(() => null, (e: unknown) => e);
  const took = performance.now() - began;
  assert.ok(isAttuneError(err), String(err));
  assert.equal(err.code, 'unavailable');
  assert.equal(err.statusCode, 503);
  assert.equal(err.details[0].reason, 'bus_publish_failed');
  assert.equal(err.details[0].retry_after_s, BUS_RETRY_AFTER_S);
  assert.equal(err.details[0].cause, 'publish_timeout');
  assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
  assert.equal(inner.calls, 1);
});

test('a failing publish becomes unavailable; a coded one is kept; a quick one and the other methods pass through', async () => {
  const failing = withPublishTimeout(stubBus(() => Promise.reject(new Error('KafkaJSNumberOfRetriesExceeded'))), 5_000);
  await assert.rejects(failing.publish('t', one), (e: unknown) => isAttuneError(e) && e.code === 'unavailable' && e.details[0].cause === 'KafkaJSNumberOfRetriesExceeded');
  const coded = busUnavailable('full', 'bus_full_test');
  const keeping = withPublishTimeout(stubBus(() => Promise.reject(coded)), 5_000);
  await assert.rejects(keeping.publish('t', one), (e: unknown) => e === coded);
  const ok = withPublishTimeout(stubBus(async () => undefined), 5_000);
  await ok.publish('t', one);
  assert.deepEqual(await ok.committed('g', 't'), new Map([[0, '7']]));
  assert.equal(ok.kind, 'embedded');
  assert.throws(() => withPublishTimeout(stubBus(async () => undefined), 0), RangeError);
});

test('the error handler answers 503 with Retry-After from retry_after_s (5 s when none is given)', async () => {
  const app = Fastify();
  registerErrorHandling(app);
  app.post('/bus', async () => {
    await withPublishTimeout(stubBus(() => new Promise<void>(() => undefined)), 100).publish('t', one);
    return { ok: true };
  });
  app.get('/plain', async () => {
    throw busUnavailable('x');
  });
  try {
    const res = await app.inject({ method: 'POST', url: '/bus', payload: {} });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], String(BUS_RETRY_AFTER_S));
    assert.equal(res.json().error.code, 'unavailable');
    assert.equal(res.json().error.details[0].reason, 'bus_publish_failed');
    const plain = await app.inject({ method: 'GET', url: '/plain' });
    assert.equal(plain.statusCode, 503);
    assert.match(String(plain.headers['retry-after']), /^\d+$/);
  } finally {
    await app.close();
  }
});
