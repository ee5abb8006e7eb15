// Deletes a test deployment's topics when it ends. Every Kafka test runs under a topic prefix of
// its own, and the local broker's data dir (infra/kafka/kafka.sh, kept between runs outside CI)
// kept every one: after a day of test runs it held 16,275 partition directories and the broker
// ran out of heap loading them at start. CI's broker is fresh each run; this keeps a developer's
// from growing without bound.
import { Kafka, logLevel } from 'kafkajs';

/** Deletes every topic whose name starts with `prefix` (a non-empty test prefix); resolves with how many. */
export async function deleteTopicsWithPrefix(brokers: string[], prefix: string): Promise<number> {
  if (!prefix) throw new Error('refusing to delete topics without a prefix');
  const admin = new Kafka({ clientId: 'attune-test-cleanup', brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 } }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 });
    return topics.length;
  } finally {
    await admin.disconnect();
  }
}
