// One member of a consumer group in its own process, for the Kafka tests that must crash or stall
// a member, which an in-process member cannot do: bus/kafka-platformatic.test.ts kills it with
// SIGKILL (no LeaveGroup, no last commit); bus/kafka.contract.ts stops it with SIGSTOP past its
// session timeout (a stalled process, expelled from its group) and lets it go on with SIGCONT.
// It subscribes with the named adapter (platformatic by default), commits each batch, and
// reports on stdout, one JSON object a line:
//   {"assigned":[0,2,4]}                     every assignment (partitions of the one topic)
//   {"handling":2,"keys":["k1","k7"]}        every batch, as its handler starts
//   {"partition":2,"keys":["k1","k7"]}       every batch, after its commit
// Usage: node --import tsx bus/kafka-member.test-util.ts <brokers> <topic> <group> [platformatic|kafkajs]
import { silentLogger } from '../lib/log.js';
import { createKafkaBus } from './kafka-open.js';

const [brokers, topic, groupId, client = 'platformatic'] = process.argv.slice(2);
if (!brokers || !topic || !groupId || (client !== 'platformatic' && client !== 'kafkajs')) {
  console.error('usage: kafka-member.test-util.ts <brokers> <topic> <group> [platformatic|kafkajs]');
  process.exit(2);
}
const bus = await createKafkaBus({
  client,
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
    process.stdout.write(JSON.stringify({ handling: batch.partition, keys: batch.records.map((r) => r.key) }) + '\n');
    await sub.commit(batch.topic, batch.partition, (BigInt(batch.records[batch.records.length - 1].offset) + 1n).toString());
    process.stdout.write(JSON.stringify({ partition: batch.partition, keys: batch.records.map((r) => r.key) }) + '\n');
  },
});
process.stdout.write(JSON.stringify({ subscribed: true }) + '\n');
process.once('SIGTERM', () => void bus.close().then(() => process.exit(0)));
