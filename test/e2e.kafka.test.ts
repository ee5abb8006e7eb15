// End to end on a real Kafka broker (KAFKA_BROKERS, testcontainers, or infra/kafka/kafka.sh).
// Outside CI, with no broker to be had, the suite is skipped with the reason; in CI
// (CI=true) it fails instead.
import { getTestServices } from './services.js';
import { endToEndSuite } from './e2e-scenario.js';
import { startTestAttune } from './attune.js';

const services = await getTestServices({ needKafka: true }).catch((err: Error) => {
  if (process.env.CI === 'true') throw err;
  return null;
});
if (!services?.kafkaBrokers && process.env.CI === 'true') throw new Error('CI needs Kafka and nothing provided it');

endToEndSuite(
  'end to end on Kafka',
  async () => startTestAttune({ kafkaBrokers: services!.kafkaBrokers, clickhouseUrl: services!.clickhouseUrl, env: { ATTUNE_METRICS_PORT: '0' } }),
  { skip: services?.kafkaBrokers ? undefined : 'no Kafka: set KAFKA_BROKERS, run Docker, or install Java 17 + Maven for infra/kafka/kafka.sh' },
);
