// One member of a consumer group in its own process, for bus/kafka-platformatic.test.ts: the
// test kills it with SIGKILL (a crash: no LeaveGroup, no last commit), which an in-process
// member cannot do. It subscribes with the @platformatic/kafka adapter, commits each batch,
// and reports on stdout, one JSON object a line:
//   {"assigned":[0,2,4]}                     every assignment (partitions of the one topic)
//   {"partition":2,"keys":["k1","k7"]}       every batch, after its commit
// Usage: node --import tsx bus/kafka-platformatic-member.test-util.ts <brokers> <topic> <group>
import { silentLogger } from '../lib/log.js';
import { createPlatformaticKafkaBus } from './kafka-platformatic.js';

const [brokers, topic, groupId] = process.argv.slice(2);
if (!brokers || !topic || !groupId) {
  console.error('usage: kafka-platformatic-member.test-util.ts <brokers> <topic> <group>');
  process.exit(2);
}
const bus = await createPlatformaticKafkaBus({
  brokers: brokers.split(','),
  clientId: 'attune-bus-member',
  log: silentLogger,
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 500,
  retryBackoffMs: 50,
});
const sub = await bus.subscribe({
  groupId,
  topics: [topic],
  onAssignment: (assigned) => {
    process.stdout.write(JSON.stringify({ assigned: assigned.map((a) => a.partition) }) + '\n');
  },
  eachBatch: async (batch) => {
    await sub.commit(batch.topic, batch.partition, (BigInt(batch.records[batch.records.length - 1].offset) + 1n).toString());
    process.stdout.write(JSON.stringify({ partition: batch.partition, keys: batch.records.map((r) => r.key) }) + '\n');
  },
});
process.stdout.write(JSON.stringify({ subscribed: true }) + '\n');
process.once('SIGTERM', () => void bus.close().then(() => process.exit(0)));
