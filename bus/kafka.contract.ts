// Kafka-only checks every Kafka adapter of the Bus must pass besides bus/bus.contract.ts:
// key placement as a plain kafkajs client sees it, concurrent idempotent publishes, and a
// handler blocked past the session timeout keeping its member (issue 10 item 7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaOrSkip } from '../test/services.js';
import { partitionForKey } from './partitioner.js';
import type { Bus } from './types.js';

export type KafkaBusFactory = (brokers: string[], opts: { clientId: string; sessionTimeoutMs?: number; heartbeatIntervalMs?: number }) => Promise<Bus>;

export function runKafkaChecks(name: string, make: KafkaBusFactory): void {
  test(`${name}: publish places keys where bus/partitioner.ts says, as seen by a plain kafkajs consumer`, async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return;
    const bus = await make(brokers, { clientId: 'attune-bus-test' });
    const topic = `kafka.placement.${randomUUID().slice(0, 8)}`;
    const kafka = new Kafka({ brokers, clientId: 'attune-bus-check', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    try {
      await bus.ensureTopics([{ topic, partitions: 5 }]);
      const keys = Array.from({ length: 50 }, (_, i) => `dev-${i}`);
      await bus.publish(topic, keys.map((key) => ({ key, value: Buffer.from(key) })));
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(topic);
      const expected = new Map<number, number>();
      for (const key of keys) {
        const p = partitionForKey(key, 5);
        expected.set(p, (expected.get(p) ?? 0) + 1);
      }
      for (const o of offsets) assert.equal(Number(o.high), expected.get(o.partition) ?? 0, `partition ${o.partition}`);
    } finally {
      await admin.disconnect();
      await bus.close();
    }
  });

  test(`${name}: ensureTopics sets a topic's retention.ms and compaction as its spec says`, async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return;
    const bus = await make(brokers, { clientId: 'attune-bus-test' });
    const id = randomUUID().slice(0, 8);
    const [short, compacted, plain] = [`kafka.retention.${id}`, `kafka.compacted.${id}`, `kafka.plain.${id}`];
    const kafka = new Kafka({ brokers, clientId: 'attune-bus-check', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    try {
      await bus.ensureTopics([
        { topic: short, partitions: 1, retentionMs: 3_600_000 },
        { topic: compacted, partitions: 1, compacted: true },
        { topic: plain, partitions: 1 },
      ]);
      await admin.connect();
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [short, compacted, plain].map((name) => ({ type: 2 /* TOPIC */, name, configNames: ['retention.ms', 'cleanup.policy'] })),
      });
      const config = (topic: string, key: string) => described.resources.find((r) => r.resourceName === topic)?.configEntries.find((e) => e.configName === key)?.configValue;
      assert.equal(config(short, 'retention.ms'), '3600000');
      assert.equal(config(short, 'cleanup.policy'), 'delete');
      assert.equal(config(compacted, 'cleanup.policy'), 'compact');
      // The broker's own retention where the spec says nothing.
      assert.notEqual(config(plain, 'retention.ms'), '3600000');
      assert.equal(config(plain, 'cleanup.policy'), 'delete');
    } finally {
      await admin.disconnect();
      await bus.close();
    }
  });

  test(`${name}: concurrent publishes all land, none twice`, async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return;
    const bus = await make(brokers, { clientId: 'attune-bus-test' });
    const topic = `kafka.concurrent.${randomUUID().slice(0, 8)}`;
    const kafka = new Kafka({ brokers, clientId: 'attune-bus-check', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    try {
      await bus.ensureTopics([{ topic, partitions: 3 }]);
      // Many HTTP requests publish at once in the gateway: 40 single-record sends and 10
      // batches of 100, all in flight together.
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 40; i++) sends.push(bus.publish(topic, [{ key: `single-${i}`, value: Buffer.from(String(i)) }]));
      for (let b = 0; b < 10; b++) {
        sends.push(bus.publish(topic, Array.from({ length: 100 }, (_, i) => ({ key: `batch-${i}`, value: Buffer.from(`${b}:${i}`) }))));
      }
      await Promise.all(sends);
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(topic);
      assert.equal(offsets.reduce((n, o) => n + Number(o.high), 0), 40 + 1000);
    } finally {
      await admin.disconnect();
      await bus.close();
    }
  });

  test(`${name}: a handler blocked past the session timeout keeps its member and partitions (no rebalance, no redelivery)`, { timeout: 120_000 }, async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return;
    // 6 s is the broker's smallest session timeout; the handler blocks 2.5 times as long, as a
    // sink does while ClickHouse refuses inserts.
    const bus = await make(brokers, { clientId: 'attune-bus-blocked', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 });
    const id = randomUUID().slice(0, 8);
    const topic = `kafka.blocked.${id}`;
    const assignments: number[][] = [];
    const seen: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let first = true;
    let arrived!: () => void;
    const secondArrived = new Promise<void>((r) => (arrived = r));
    try {
      await bus.ensureTopics([{ topic, partitions: 1 }]);
      await bus.publish(topic, [{ key: 'k', value: Buffer.from('a') }]);
      let blockedAt = 0;
      const sub = await bus.subscribe({
        groupId: `blocked-${id}`,
        topics: [topic],
        onAssignment: (a) => void assignments.push(a.map((tp) => tp.partition)),
        eachBatch: async (batch) => {
          for (const r of batch.records) seen.push(`${r.offset}:${r.value.toString()}`);
          if (first) {
            first = false;
            blockedAt = Date.now();
            setTimeout(release, 15_000);
            await released;
          }
          if (seen.some((s) => s.endsWith(':b'))) arrived();
        },
      });
      await released;
      assert.ok(Date.now() - blockedAt >= 14_000);
      await bus.publish(topic, [{ key: 'k', value: Buffer.from('b') }]);
      await Promise.race([secondArrived, new Promise((_, reject) => setTimeout(() => reject(new Error(`b never arrived; seen ${seen}`)), 30_000))]);
      assert.deepEqual(seen, ['0:a', '1:b'], 'nothing delivered twice');
      assert.deepEqual(assignments, [[0]], 'one assignment: the member was never rebalanced out');
      await sub.stop();
    } finally {
      await bus.close();
    }
  });
}
