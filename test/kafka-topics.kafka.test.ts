// test/kafka-topics.ts: a test deployment's topics are deleted when it ends, and only its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { getTestServices } from './services.js';
import { deleteTopicsWithPrefix } from './kafka-topics.js';
import { startTestAttune, waitFor } from './attune.js';

test('deleteTopicsWithPrefix deletes the prefix\'s topics and leaves others; startTestAttune\'s cleanup deletes its own', async (t) => {
  const services = await getTestServices({ needKafka: true });
  // Never skipped: without a broker (none given, and infra/kafka/kafka.sh could not start one) it fails.
  assert.ok(services.kafkaBrokers, 'needs Kafka: set KAFKA_BROKERS or let infra/kafka/kafka.sh start one');
  const brokers = services.kafkaBrokers;
  const admin = new Kafka({ clientId: 'kafka-topics-test', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const id = randomUUID().slice(0, 8);
  const mine = [`cleanup-${id}.a`, `cleanup-${id}.b`];
  const other = `cleanup-${id}-other.a`; // shares the text before the dot, not the prefix
  await admin.createTopics({ topics: [...mine, other].map((topic) => ({ topic, numPartitions: 2 })), waitForLeaders: true });
  assert.equal(await deleteTopicsWithPrefix(brokers, `cleanup-${id}.`), 2);
  const left = await waitFor('deleted', async () => {
    const names = (await admin.listTopics()).filter((n) => n.startsWith(`cleanup-${id}`));
    return names.length === 1 ? names : null;
  }, 30_000);
  assert.deepEqual(left, [other]);
  await assert.rejects(deleteTopicsWithPrefix(brokers, ''), /without a prefix/);
  await deleteTopicsWithPrefix(brokers, other);

  const app = await startTestAttune({ kafkaBrokers: brokers });
  const prefix = app.topicPrefix;
  assert.ok((await admin.listTopics()).some((n) => n.startsWith(prefix)), 'the deployment made its topics');
  await app.cleanup();
  await waitFor('its topics deleted', async () => !(await admin.listTopics()).some((n) => n.startsWith(prefix)), 30_000);
});
