// End to end on a real Kafka broker (KAFKA_BROKERS, testcontainers, or infra/kafka/kafka.sh).
// In CI a missing broker fails this suite; it is never skipped there.
import { getTestServices } from './services.js';
import { endToEndSuite } from './e2e-scenario.js';
import { startTestAttune } from './attune.js';

endToEndSuite('end to end on Kafka', async () => {
  const services = await getTestServices({ needKafka: true });
  if (!services.kafkaBrokers) throw new Error('no Kafka broker: set KAFKA_BROKERS or run `bash infra/kafka/kafka.sh start`');
  return startTestAttune({ kafkaBrokers: services.kafkaBrokers, clickhouseUrl: services.clickhouseUrl });
});
