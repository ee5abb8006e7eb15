// The bus contract and the Kafka checks against a real Kafka broker with the
// @platformatic/kafka adapter (its compatibilityPartitioner must agree with bus/partitioner.ts).
import { kafkaOrSkip } from '../test/services.js';
import { silentLogger } from '../lib/log.js';
import { createPlatformaticKafkaBus } from './kafka-platformatic.js';
import { runBusContract } from './bus.contract.js';
import { runKafkaChecks } from './kafka.contract.js';

runBusContract(
  'platformatic',
  async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return null;
    return createPlatformaticKafkaBus({ brokers, clientId: 'attune-bus-contract-pk', log: silentLogger, retryBackoffMs: 50, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000 });
  },
  { deadlineMs: 60_000 },
);

runKafkaChecks('platformatic', (brokers, o) => createPlatformaticKafkaBus({ brokers, log: silentLogger, ...o }));
