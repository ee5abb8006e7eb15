// The speech pipeline end to end on a real Kafka broker (KAFKA_BROKERS, testcontainers, or
// infra/kafka/kafka.sh): audio frames and live events as Avro records through the broker.
// Outside CI, with no broker to be had, the suite is skipped with the reason; in CI (CI=true)
// it fails instead.
import { after, before, describe, test } from 'node:test';
import { getTestServices } from './services.js';
import { startTestAttune, type TestAttune } from './attune.js';
import { speechScenario } from './speech-e2e.scenario.js';

const services = await getTestServices({ needKafka: true }).catch((err: Error) => {
  if (process.env.CI === 'true') throw err;
  return null;
});
if (!services?.kafkaBrokers && process.env.CI === 'true') throw new Error('CI needs Kafka and nothing provided it');

describe('speech end to end on Kafka', { skip: services?.kafkaBrokers ? undefined : 'no Kafka: set KAFKA_BROKERS, run Docker, or install Java 17 + Maven for infra/kafka/kafka.sh' }, () => {
  let app: TestAttune;
  before(async () => {
    app = await startTestAttune({ kafkaBrokers: services!.kafkaBrokers, clickhouseUrl: services!.clickhouseUrl });
  });
  after(async () => {
    await app?.cleanup();
  });
  speechScenario(test, () => app);
});
