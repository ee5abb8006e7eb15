import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners } from 'kafkajs';
import { murmur2, partitionForKey } from './partitioner.js';
import { kafkajsPartitioner } from './kafka.js';

// kafkajs's own partitioner is the independent reference: it is what the Kafka bus uses.
function kafkajsPartition(key: string, numPartitions: number): number {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: numPartitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
  }));
  return partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
}

test('murmur2 matches the Java client vectors', () => {
  // From Kafka's UtilsTest.testMurmur2 (org.apache.kafka.common.utils).
  const cases: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [key, expected] of cases) {
    assert.equal(murmur2(Buffer.from(key)), expected, key);
  }
});

test('partitionForKey agrees with kafkajs DefaultPartitioner for many keys and partition counts', () => {
  const keys = ['', 'a', 'ab', 'abc', 'abcd', 'device-1', 'device-42', 'séance-ü', '🙂🙂', 'x'.repeat(257)];
  for (let i = 0; i < 200; i++) keys.push(`dev-${i}-${(i * 7919).toString(36)}`);
  for (const n of [1, 2, 3, 6, 12, 64]) {
    for (const key of keys) {
      assert.equal(partitionForKey(key, n), kafkajsPartition(key, n), `key=${key} n=${n}`);
    }
  }
});

test('partitionForKey spreads keys over all partitions and rejects bad counts', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) seen.add(partitionForKey(`k${i}`, 6));
  assert.equal(seen.size, 6);
  assert.throws(() => partitionForKey('k', 0), RangeError);
});

test("the kafkajs adapter's partitioner puts 10,000 random keys where kafkajs's DefaultPartitioner does, for 1..12 partitions", () => {
  const metadata = (n: number, leaderless: number[] = []) =>
    Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: leaderless.includes(partitionId) ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
  const ours = kafkajsPartitioner();
  const theirs = Partitioners.DefaultPartitioner();
  const keys: Array<string | Buffer> = [];
  for (let i = 0; i < 10_000; i++) {
    // Random lengths 0-80 over ASCII, two-byte, three-byte and astral characters; some as Buffers.
    let key = '';
    const len = Math.floor(Math.random() * 81);
    for (let c = 0; c < len; c++) {
      const r = Math.random();
      key += r < 0.7 ? String.fromCharCode(32 + Math.floor(Math.random() * 95)) : r < 0.8 ? String.fromCharCode(0xa0 + Math.floor(Math.random() * 0x700)) : r < 0.95 ? String.fromCharCode(0x3000 + Math.floor(Math.random() * 0x5000)) : '🙂';
    }
    keys.push(i % 10 === 0 ? Buffer.from(key, 'utf8') : key);
  }
  for (let n = 1; n <= 12; n++) {
    const partitionMetadata = metadata(n);
    for (const key of keys) {
      const args = { topic: 't', partitionMetadata, message: { key, value: null } };
      assert.equal(ours(args), theirs(args), `key=${JSON.stringify(key)} n=${n}`);
    }
  }
  // A message's own partition wins; no key: round-robin over the partitions with a leader.
  const partitionMetadata = metadata(6, [1, 4]);
  assert.equal(ours({ topic: 't', partitionMetadata, message: { key: 'k', partition: 4, value: null } }), 4);
  const unkeyed = Array.from({ length: 40 }, () => ours({ topic: 'rr', partitionMetadata, message: { value: null } }));
  assert.deepEqual([...new Set(unkeyed)].sort(), [0, 2, 3, 5]);
  for (let i = 1; i < unkeyed.length; i++) assert.equal([0, 2, 3, 5].indexOf(unkeyed[i]), ([0, 2, 3, 5].indexOf(unkeyed[i - 1]) + 1) % 4, 'in turn');
});
