// The group worker end to end on a real Kafka broker (test/group-e2e-scenario.ts), with a topic
// prefix of its own. Outside CI, with no broker to be had, the suite is skipped with the
// reason; in CI (CI=true) it fails instead.
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { getTestServices } from './services.js';
import { groupEndToEnd } from './group-e2e-scenario.js';
import { startTestAttune } from './attune.js';

const services = await getTestServices({ needKafka: true }).catch((err: Error) => {
  if (process.env.CI === 'true') throw err;
  return null;
});
if (!services?.kafkaBrokers && process.env.CI === 'true') throw new Error('CI needs Kafka and nothing provided it');

const dataDir = mkdtempSync('/tmp/hA1-group-kafka-');

groupEndToEnd(
  'group worker end to end on Kafka',
  async () =>
    startTestAttune({
      kafkaBrokers: services!.kafkaBrokers,
      clickhouseUrl: services!.clickhouseUrl,
      dataDir,
      topicPrefix: `hA1-group-${randomUUID().slice(0, 8)}.`,
      env: { ATTUNE_SPEECH: '0' },
    }),
  { skip: services?.kafkaBrokers ? undefined : 'no Kafka: set KAFKA_BROKERS, run Docker, or install Java 17 + Maven for infra/kafka/kafka.sh', dataDir },
);
