// The bus contract against a real Kafka broker, kafkajs adapter (from test/services.ts: KAFKA_BROKERS,
// testcontainers, or the local broker of infra/kafka/kafka.sh). Skipped outside CI when
// there is none.
import { kafkaOrSkip } from '../test/services.js';
import { silentLogger } from '../lib/log.js';
import { createKafkaBus } from './kafka-open.js';
import { runBusContract } from './bus.contract.js';
import { runKafkaChecks } from './kafka.contract.js';

runBusContract(
  'kafka',
  async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return null;
    return createKafkaBus({ client: 'kafkajs', brokers, clientId: 'attune-bus-contract', log: silentLogger, retryBackoffMs: 50, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000 });
  },
  { deadlineMs: 60_000 },
);

runKafkaChecks('kafkajs', (brokers, o) => createKafkaBus({ client: 'kafkajs', brokers, log: silentLogger, ...o }));
