// Issue 10, a broker outage with the kafkajs adapter (the default client), at the bus: the
// broker stopped for 20 s, or killed with SIGKILL and started again. Meanwhile every publish
// settles within 6 s (accepted, or `unavailable` with retry_after_s, which the gateway answers
// as 503 + Retry-After); nothing ends the process (no unhandled rejection, no uncaught
// exception); a subscription made while the broker is down waits for it instead of failing;
// once the broker is back both consumers (the one from before the outage and the one that
// subscribed during it) have joined and every accepted record is consumed by each.
//
// Before the adapter handled it, a subscribe() during an outage rejected once kafkajs's
// connection retries ran out (about 10-20 s): in `attune all` the speech worker, which opens its
// models before it subscribes, did so tens of seconds after the process listened, so a broker
// outage then failed the start of a process already serving ingest and the process exited
// (the fault suite's broker scenarios, on a loaded machine). A consumer kafkajs gives up on
// (it crashed on an error kafkajs does not retry, e.g. "Failed to find group coordinator"
// while the broker goes away) is replaced by the adapter (bus/kafka.ts).
//
// The scenario is bus/outage.test-util.ts's. The test stops a broker, so it starts a PRIVATE one
// with infra/kafka/kafka.sh (never the shared broker of the other tests): KAFKAJS_OUTAGE_PORT / KAFKAJS_OUTAGE_CONTROLLER_PORT /
// KAFKAJS_OUTAGE_DATA_DIR (defaults 19892, 19893, a directory under the OS temp dir; not the
// ports of bus/broker-stop.kafka.test.ts, bus/kafka-platformatic-outage.kafka.test.ts or
// test/faults.kafka.test.ts, which may run at the same time). Skipped where the other Kafka
// tests are skipped.
import { test } from 'node:test';
import { kafkaOrSkip } from '../test/services.js';
import { silentLogger } from '../lib/log.js';
import { createKafkaBus } from './kafka-open.js';
import { withPublishTimeout } from './publish-timeout.js';
import { FAULTS, outageScenario, privateBroker, recordFatal } from './outage.test-util.js';

const broker = privateBroker('KAFKAJS_OUTAGE', { port: 19892, name: 'attune-kafkajs-outage-kafka' });
const fatal = recordFatal(broker);

for (const fault of FAULTS) {
  test(`kafkajs, broker ${fault}: publishes settle within 6 s (503-able while down), nothing ends the process, a subscription made meanwhile waits, both consumers consume every accepted record`, { timeout: 240_000 }, async (t) => {
    if (!(await kafkaOrSkip(t))) return;
    const brokers = await broker.start();
    const bus = withPublishTimeout(
      await createKafkaBus({ client: 'kafkajs', brokers, clientId: 'attune-bus-outage', log: silentLogger, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, retryBackoffMs: 100 }),
      5_000,
    );
    try {
      await outageScenario(t, { bus, broker, fault, fatal, lateSubscription: true });
    } finally {
      await bus.close();
    }
  });
}
