// Issue 10, a broker outage with the @platformatic/kafka adapter, at the bus: the broker stopped
// for 20 s, or killed with SIGKILL and started again. Meanwhile every publish settles within
// 6 s (accepted, or `unavailable` with retry_after_s, which the gateway answers as 503 +
// Retry-After); nothing ends the process (no unhandled rejection, no uncaught 'error' event);
// once the broker is back the consumer rejoins and every accepted record is consumed.
//
// @platformatic/kafka 1.35 on its own does none of the consumer part: a fetch that fails past
// its retries destroys the message stream (consumption stops for good), a heartbeat error
// stops its heartbeats, and a failed rejoin emits 'error' with no listener (the process
// exits). The adapter replaces the consumer in those cases (bus/kafka-platformatic.ts).
//
// The scenario is bus/outage.test-util.ts's. The test stops a broker, so it starts a PRIVATE one
// with infra/kafka/kafka.sh (never the shared broker of the other tests): KAFKA_OUTAGE_PORT / KAFKA_OUTAGE_CONTROLLER_PORT /
// KAFKA_OUTAGE_DATA_DIR (defaults 19792, 19793, a directory under the OS temp dir; not the
// ports of bus/broker-stop.kafka.test.ts or test/faults.kafka.test.ts, which may run at the same
// time). Skipped where the other Kafka tests are skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { kafkaOrSkip } from '../test/services.js';
import { silentLogger } from '../lib/log.js';
import { createPlatformaticKafkaBus } from './kafka-platformatic.js';
import { withPublishTimeout } from './publish-timeout.js';
import { FAULTS, OUTAGE_MS, outageScenario, privateBroker, recordFatal } from './outage.test-util.js';

const broker = privateBroker('KAFKA_OUTAGE', { port: 19792, name: 'attune-platformatic-outage-kafka' });
const fatal = recordFatal(broker);

for (const fault of FAULTS) {
  test(`platformatic, broker ${fault}: publishes settle within 6 s (503-able while down), nothing ends the process, the consumer rejoins and consumes every accepted record`, { timeout: 240_000 }, async (t) => {
    if (!(await kafkaOrSkip(t))) return;
    const brokers = await broker.start();
    const bus = withPublishTimeout(
      await createPlatformaticKafkaBus({ brokers, clientId: 'attune-bus-outage', log: silentLogger, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, retryBackoffMs: 100 }),
      5_000,
    );
    try {
      // The subscription made during the outage has its own test below (the adapter's subscribe
      // needs subscribeTimeoutMs for it).
      await outageScenario(t, { bus, broker, fault, fatal, lateSubscription: false });
    } finally {
      await bus.close();
    }
  });
}

// A worker that starts while the broker is down (Attune listens first and starts its workers
// after): its subscribe waits for the broker instead of failing the process.
test('platformatic: a subscribe made while the broker is stopped waits for it, then consumes', { timeout: 240_000 }, async (t) => {
  if (!(await kafkaOrSkip(t))) return;
  const brokers = await broker.start();
  fatal.length = 0;
  const id = randomUUID().slice(0, 8);
  const topic = `outage.sub.${id}`;
  const bus = await createPlatformaticKafkaBus({ brokers, clientId: 'attune-bus-outage', log: silentLogger, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, retryBackoffMs: 100, subscribeTimeoutMs: 90_000 });
  try {
    await bus.ensureTopics([{ topic, partitions: 3 }]);
    await bus.publish(topic, [{ key: 'before', value: Buffer.from('before') }]);
    await broker.stop();
    const consumed = new Set<string>();
    let settled: string | null = null;
    const subscribing = bus.subscribe({
      groupId: `outage-sub-${id}`,
      topics: [topic],
      eachBatch: async (b) => {
        for (const r of b.records) consumed.add(r.key);
      },
    });
    subscribing.then(
      () => (settled = 'joined'),
      (err: Error) => (settled = `failed: ${err.message}`),
    );
    await new Promise((r) => setTimeout(r, OUTAGE_MS)); // the outage itself
    assert.equal(settled, null, 'the subscribe neither failed nor joined while the broker was down');
    await broker.start();
    const backAt = Date.now();
    const sub = await subscribing;
    const joinedMs = Date.now() - backAt;
    const deadline = Date.now() + 60_000;
    while (!consumed.has('before')) {
      if (Date.now() > deadline) throw new Error('the record published before the outage was never consumed');
      await new Promise((r) => setTimeout(r, 50));
    }
    t.diagnostic(`subscribe joined ${(joinedMs / 1000).toFixed(1)} s after the broker was back`);
    assert.deepEqual(fatal, [], 'nothing that ends a process');
    await sub.stop();
  } finally {
    await bus.close();
  }
});
