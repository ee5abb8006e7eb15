// Kafka-only checks every Kafka adapter of the Bus must pass besides bus/bus.contract.ts:
// key placement as a plain kafkajs client sees it, concurrent idempotent publishes, a
// handler blocked past the session timeout keeping its member (issue 10 item 7), and a member
// expelled from its group told that its partitions were taken before it gets them back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaOrSkip } from '../test/services.js';
import { partitionForKey } from './partitioner.js';
import type { Bus, TopicPartition } from './types.js';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../lib/log.js';
import { childMember, until, type ChildMember } from './kafka-member-process.test-util.js';

export type KafkaBusFactory = (brokers: string[], opts: { clientId: string; sessionTimeoutMs?: number; heartbeatIntervalMs?: number; log?: Logger }) => Promise<Bus>;

export function runKafkaChecks(name: 'platformatic' | 'kafkajs', make: KafkaBusFactory): void {
  test(`${name}: a consumer's assignment is logged at info with its group and partitions (live fan-out at debug)`, async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return;
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    const bus = await make(brokers, { clientId: 'attune-bus-assign-log', log: createLogger({ level: 'info', destination: sink }) });
    const id = randomUUID().slice(0, 8);
    const topic = `kafka.assign-log.${id}`;
    try {
      await bus.ensureTopics([{ topic, partitions: 3 }]);
      let got: TopicPartition[] = [];
      const sub = await bus.subscribe({ groupId: `assign-log-${id}`, topics: [topic], fromBeginning: true, eachBatch: async () => undefined, onAssignment: (a) => void (got = a) });
      const live = await bus.subscribe({ groupId: `assign-log-live-${id}`, topics: [topic], fromBeginning: false, ephemeral: true, eachBatch: async () => undefined });
      await until('the assignment', () => got.length === 3, 60_000);
      const assigned = lines.filter((l) => l.msg === 'bus partitions assigned');
      const mine = assigned.filter((l) => l.group === `assign-log-${id}`);
      assert.ok(mine.length >= 1, JSON.stringify(assigned));
      assert.equal(mine.at(-1)!.level, 30);
      assert.deepEqual(mine.at(-1)!.partitions, { [topic]: [0, 1, 2] });
      assert.deepEqual(assigned.filter((l) => l.group === `assign-log-live-${id}`), [], 'live fan-out stays at debug');
      await live.stop();
      await sub.stop();
    } finally {
      await bus.close();
    }
  });

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

  // A process stalled past its session timeout (SIGSTOP here; a long GC pause, a suspended VM)
  // is expelled from its group; another member takes its partitions, reads on and commits; the
  // stalled one, going on, rejoins under a new member id and may get the same partitions back.
  // What its handlers hold for them (the readings sink's clock guards, the coherence worker's
  // sessions) is then stale: the adapter must report them taken away (an assignment without
  // them) before it assigns them again, so the handlers rebuild from the commit.
  test(`${name}: a member expelled while stalled is told its partitions were taken before it gets them back`, { timeout: 180_000 }, async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return;
    const id = randomUUID().slice(0, 8);
    const topic = `kafka.expelled.${id}`;
    const group = `expelled-${id}`;
    const bus = await make(brokers, { clientId: 'attune-bus-expelled', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 });
    const round = (r: string) => Array.from({ length: 60 }, (_, i) => `${r}-${i}`);
    const [first, second, third] = [round('a'), round('b'), round('c')];
    let member: ChildMember | null = null;
    try {
      await bus.ensureTopics([{ topic, partitions: 3 }]);
      assert.equal(new Set(second.map((k) => partitionForKey(k, 3))).size, 3, 'the second round reaches every partition');
      const m = (member = childMember(brokers, topic, group, name));
      const fail = (err: Error) => Promise.reject(new Error(`${err.message}; member's assignments ${JSON.stringify(m.assignments)}; its stderr: ${m.stderr}`));
      await until('the member to hold all 3 partitions', () => m.assigned?.length === 3, 60_000).catch(fail);
      await bus.publish(topic, first.map((key) => ({ key, value: Buffer.from(key) })));
      await until('the member to consume the first round', () => first.every((k) => m.keys.has(k)), 60_000).catch(fail);
      const eventsBefore = m.events.length;
      m.child.kill('SIGSTOP');

      let assigned: number[] = [];
      const consumed = new Set<string>();
      const sub = await bus.subscribe({
        groupId: group,
        topics: [topic],
        onAssignment: (a) => void (assigned = a.map((tp) => tp.partition)),
        eachBatch: async (b) => {
          await sub.commit(b.topic, b.partition, (BigInt(b.records[b.records.length - 1].offset) + 1n).toString());
          for (const r of b.records) consumed.add(r.key);
        },
      });
      // The group waits for the stalled member's session (6 s) before it assigns anything.
      await until('the other member to hold all 3 partitions', () => assigned.length === 3, 60_000);
      await bus.publish(topic, second.map((key) => ({ key, value: Buffer.from(key) })));
      await until('the other member to consume and commit the second round', () => second.every((k) => consumed.has(k)), 60_000);
      await sub.stop();

      m.child.kill('SIGCONT');
      await bus.publish(topic, third.map((key) => ({ key, value: Buffer.from(key) })));
      await until('the stalled member to consume the third round', () => third.every((k) => m.keys.has(k)), 90_000).catch(fail);
      const afterEvents = m.events.slice(eventsBefore);
      const after = afterEvents.flatMap((e) => ('assigned' in e ? [e.assigned] : []));
      t.diagnostic(`assignments after the stall: ${JSON.stringify(after)}`);
      t.diagnostic(`events after the stall: ${JSON.stringify(afterEvents.map((e) => ('assigned' in e ? e : { handling: e.handling, keys: e.keys.length, first: e.keys[0] })))}`);
      // Nor may it hand records to its handlers before the group has answered it again: a zombie
      // whose commits are refused still writes what its stale state decides. Both adapters hold
      // batches until then. (Without that, the platformatic member handled the whole second
      // round first; kafkajs here gets an empty answer to the fetch it had in flight first, and
      // heartbeats after it, so this run does not show its fence at work.)
      const firstAssignment = afterEvents.findIndex((e) => 'assigned' in e);
      assert.deepEqual(afterEvents.slice(0, firstAssignment), [], 'no batch handled after the stall before the group answered');
      // And once assigned again it starts where the other member committed.
      const again = afterEvents.slice(firstAssignment).flatMap((e) => ('keys' in e ? e.keys : []));
      assert.deepEqual(again.filter((k) => k.startsWith('b-')), [], 'no record the other member committed handled again after the reassignment');
      for (const p of [0, 1, 2]) {
        const taken = after.findIndex((a) => !a.includes(p));
        const back = after.findIndex((a, i) => i > taken && a.includes(p));
        assert.ok(taken >= 0 && back > taken, `partition ${p} reported taken away, then assigned again: ${JSON.stringify(after)}`);
      }
    } finally {
      if (member && !member.exited) {
        member.child.kill('SIGCONT');
        member.child.kill('SIGKILL');
      }
      await bus.close();
    }
  });
}
