// Issue 10, producer behaviour: while the broker is stopped every ingest request is answered
// within 6 s, with 503 unavailable + Retry-After or 202 (never a hang, never 202 for data
// the bus did not keep); once the broker is back, 202s resume.
//
// The test stops a broker, so it starts a PRIVATE one with infra/kafka/kafka.sh (never the
// shared broker of the other tests): KAFKA_FAULT_PORT / KAFKA_FAULT_CONTROLLER_PORT /
// KAFKA_FAULT_DATA_DIR (defaults 19592, 19593, a directory under the OS temp dir). Skipped
// where the other Kafka tests are skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KAFKA_SCRIPT, kafkaOrSkip, startLocalKafka } from '../test/services.js';
import { startTestAttune } from '../test/attune.js';

const env = {
  ...process.env,
  KAFKA_PORT: process.env.KAFKA_FAULT_PORT ?? '19592',
  KAFKA_CONTROLLER_PORT: process.env.KAFKA_FAULT_CONTROLLER_PORT ?? '19593',
  KAFKA_DATA_DIR: process.env.KAFKA_FAULT_DATA_DIR ?? join(tmpdir(), 'attune-broker-stop-kafka'),
};

function stopBroker(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [KAFKA_SCRIPT, 'stop'], { env, timeout: 60_000 }, (err) => (err ? reject(err) : resolve()));
  });
}

interface Answer {
  status: number;
  ms: number;
  retryAfter: string | null;
  code?: string;
}

test('broker stopped: every sync request is answered within 6 s (503 + Retry-After or 202); 202s resume after the restart', { timeout: 300_000 }, async (t) => {
  if (!(await kafkaOrSkip(t))) return;
  const brokers = await startLocalKafka({ env });
  const starting = performance.now();
  const app = await startTestAttune({ kafkaBrokers: brokers, entities: 'pglite', env: { ATTUNE_PUBLISH_TIMEOUT_MS: '5000' } });
  t.diagnostic(`attune (kafka) started in ${((performance.now() - starting) / 1000).toFixed(1)} s`);
  const token = app.token('u-stop', 'o-stop');
  let n = 0;
  const sync = async (device: string): Promise<Answer> => {
    const began = performance.now();
    const ts = Date.now() - 5_000;
    const res = await fetch(`${app.baseUrl}/v1/devices/${device}/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ readings: [{ timestamp: ts + (n++ % 1000), hr: 70, rr_intervals_ms: [850] }] }),
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, ms: performance.now() - began, retryAfter: res.headers.get('retry-after'), code: body.error?.code };
  };
  try {
    for (const d of ['dev-a', 'dev-b', 'dev-c', 'dev-d']) assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: d } })).status, 201);
    assert.equal((await sync('dev-a')).status, 202);

    await stopBroker();
    // 4 clients, 20 s of requests against the stopped broker.
    const during: Answer[] = [];
    const until = Date.now() + 20_000;
    await Promise.all(
      ['dev-a', 'dev-b', 'dev-c', 'dev-d'].map(async (device) => {
        while (Date.now() < until) during.push(await sync(device));
      }),
    );
    const slowest = Math.max(...during.map((a) => a.ms));
    t.diagnostic(`broker stopped: ${during.length} requests, ${during.filter((a) => a.status === 503).length} × 503, ${during.filter((a) => a.status === 202).length} × 202, slowest ${slowest.toFixed(0)} ms`);
    for (const a of during) {
      assert.ok(a.ms <= 6_000, `answered after ${a.ms.toFixed(0)} ms`);
      if (a.status === 202) continue;
      assert.equal(a.status, 503, JSON.stringify(a));
      assert.equal(a.code, 'unavailable');
      assert.match(a.retryAfter ?? '', /^\d+$/, 'Retry-After');
    }
    assert.ok(during.some((a) => a.status === 503), 'the stopped broker refused nothing: the test did not stop it');

    await startLocalKafka({ env });
    const back = performance.now();
    let first: Answer | null = null;
    while (performance.now() - back < 60_000) {
      const a = await sync('dev-a');
      assert.ok(a.ms <= 6_000, `answered after ${a.ms.toFixed(0)} ms`);
      if (a.status === 202) {
        first = a;
        break;
      }
    }
    t.diagnostic(`first 202 ${((performance.now() - back) / 1000).toFixed(1)} s after the broker was ready`);
    assert.ok(first, 'no 202 within 60 s of the broker restart');
  } finally {
    await startLocalKafka({ env }).catch(() => undefined);
    await app.cleanup();
    await stopBroker().catch(() => undefined);
  }
});
