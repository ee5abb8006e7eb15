import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners } from 'kafkajs';
import { murmur2, partitionForKey } from './partitioner.js';

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
