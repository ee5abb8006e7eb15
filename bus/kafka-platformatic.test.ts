// The bus contract and the Kafka checks against a real Kafka broker with the
// @platformatic/kafka adapter (its compatibilityPartitioner must agree with bus/partitioner.ts),
// and scale-out: two members of one group, one of them killed.
import { test, type TestContext } from 'node:test';
import { Consumer } from '@platformatic/kafka';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { kafkaOrSkip } from '../test/services.js';
import { partitionForKey } from './partitioner.js';
import { silentLogger } from '../lib/log.js';
import { createPlatformaticKafkaBus } from './kafka-platformatic.js';
import { runBusContract } from './bus.contract.js';
import { runKafkaChecks } from './kafka.contract.js';
import { childMember, until, type ChildMember } from './kafka-member-process.test-util.js';

runBusContract(
  'platformatic',
  async (t) => {
    const brokers = await kafkaOrSkip(t);
    if (!brokers) return null;
    return createPlatformaticKafkaBus({ brokers, clientId: 'attune-bus-contract-pk', log: silentLogger, retryBackoffMs: 50, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000 });
  },
  { deadlineMs: 60_000 },
);

runKafkaChecks('platformatic', (brokers, o) => createPlatformaticKafkaBus({ brokers, log: silentLogger, ...o }));

// Issue 10, scale-out: two members of one group share a 6-partition topic, and when one
// crashes (SIGKILL: no LeaveGroup) the other takes over all its partitions and consumes
// what it had not committed and everything published after.
test('platformatic: two members of one group split 6 partitions, and the survivor of a kill -9 takes them all over', { timeout: 120_000 }, async (t) => {
  const brokers = await kafkaOrSkip(t);
  if (!brokers) return;
  const id = randomUUID().slice(0, 8);
  const topic = `kafka.scale.${id}`;
  const group = `scale-${id}`;
  const bus = await createPlatformaticKafkaBus({ brokers, clientId: 'attune-bus-scale', log: silentLogger, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, retryBackoffMs: 50 });
  let member: ChildMember | null = null;
  try {
    await bus.ensureTopics([{ topic, partitions: 6 }]);
    const batch = (round: string) => Array.from({ length: 300 }, (_, i) => `${round}-${i}`);
    const first = batch('a');
    const second = batch('b');
    // The keys reach every partition, so each member has records of its own to consume.
    assert.equal(new Set(first.map((k) => partitionForKey(k, 6))).size, 6);

    let assigned: number[] = [];
    const consumed = new Set<string>();
    const consumedFrom = new Set<number>();
    const sub = await bus.subscribe({
      groupId: group,
      topics: [topic],
      onAssignment: (a) => void (assigned = a.map((tp) => tp.partition)),
      eachBatch: async (b) => {
        for (const r of b.records) consumed.add(r.key);
        consumedFrom.add(b.partition);
        await sub.commit(b.topic, b.partition, (BigInt(b.records[b.records.length - 1].offset) + 1n).toString());
      },
    });
    await until('the first member to hold all 6 partitions', () => assigned.length === 6, 30_000);
    const m = (member = childMember(brokers, topic, group));
    await until('both members to hold partitions: 6 between them, none twice', () => {
      const theirs = m.assigned ?? [];
      return theirs.length > 0 && assigned.length > 0 && [...theirs, ...assigned].sort().join() === '0,1,2,3,4,5';
    }, 60_000).catch((err: Error) => Promise.reject(new Error(`${err.message}; ours ${assigned}, theirs ${m.assigned}; child: ${m.stderr}`)));
    const ours = [...assigned];
    const theirs = [...m.assigned!];

    await bus.publish(topic, first.map((key) => ({ key, value: Buffer.from(key) })));
    await until('every record of the first round consumed by one member or the other', () => first.every((k) => consumed.has(k) || m.keys.has(k)), 60_000);
    assert.ok(m.keys.size > 0 && consumed.size > 0, `both members consumed: ours ${consumed.size}, theirs ${m.keys.size}`);
    assert.deepEqual([...consumedFrom].filter((p) => !ours.includes(p)), [], 'we consumed only our partitions');
    assert.deepEqual([...m.partitions].filter((p) => !theirs.includes(p)), [], 'they consumed only theirs');
    for (const k of first) assert.equal(ours.includes(partitionForKey(k, 6)) ? consumed.has(k) : m.keys.has(k), true, `${k} consumed by its partition's owner`);

    // A crash: the member neither leaves the group nor commits again.
    m.child.kill('SIGKILL');
    await until('the member to exit', () => m.exited, 10_000);
    const killedAt = Date.now();
    await bus.publish(topic, second.map((key) => ({ key, value: Buffer.from(key) })));
    await until('the survivor to hold all 6 partitions', () => assigned.length === 6, 60_000);
    const tookOverMs = Date.now() - killedAt;
    await until('every record of the second round consumed by the survivor', () => second.every((k) => consumed.has(k)), 60_000);
    t.diagnostic(`took over ${theirs.length} partitions ${(tookOverMs / 1000).toFixed(1)} s after the kill (session timeout 6 s)`);
    assert.deepEqual(
      [...first, ...second].filter((k) => !consumed.has(k) && !m.keys.has(k)),
      [],
      'every record consumed by one member or the other',
    );
    assert.ok(second.some((k) => theirs.includes(partitionForKey(k, 6))), 'the second round reached the dead member\'s partitions');
    await sub.stop();
  } finally {
    if (member && !member.exited) member.child.kill('SIGKILL');
    await bus.close();
  }
});

test('platformatic: a subscribe and a publish made before their topic is in the broker\'s metadata wait for it instead of failing', { timeout: 120_000 }, async (t) => {
  const brokers = await kafkaOrSkip(t);
  if (!brokers) return;
  // @platformatic/kafka 1.35 reports UNKNOWN_TOPIC_OR_PARTITION as a UserError it marks not
  // retriable; a worker subscribing right after Attune created its topics on a loaded broker
  // met it, and the process exited. Here the topic does not exist until the subscription has
  // met that error (its warning logged) and a publish has been made.
  const warnings: string[] = [];
  const log = Object.assign(Object.create(silentLogger), {
    warn: (obj: { err?: Error }, msg?: string) => void warnings.push(`${msg ?? ''} ${obj?.err?.message ?? ''}`),
    child: () => log,
  });
  const bus = await createPlatformaticKafkaBus({ brokers, clientId: 'attune-unknown-topic', log, retryBackoffMs: 50, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000 });
  const topic = `unknown-yet-${randomUUID().slice(0, 8)}`;
  const seen: string[] = [];
  try {
    const subscribing = bus.subscribe({
      groupId: `unknown-yet-${randomUUID().slice(0, 8)}`,
      topics: [topic],
      fromBeginning: true,
      ephemeral: true,
      eachBatch: async (batch) => {
        for (const r of batch.records) seen.push(r.value.toString());
      },
    });
    subscribing.catch(() => undefined);
    const t0 = Date.now();
    // (A subscribe that gave up instead fails the test at once, with its error.)
    await Promise.race([
      until('the subscription meeting the unknown topic', () => warnings.some((w) => /Unknown topic/.test(w)), 30_000),
      subscribing.then(() => assert.fail('subscribed to a topic that does not exist')),
    ]);
    const t1 = Date.now();
    const publishing = bus.publish(topic, [{ key: 'k', value: Buffer.from('hello') }]);
    publishing.catch(() => undefined);
    const other = await createPlatformaticKafkaBus({ brokers, clientId: 'attune-unknown-topic-admin', log: silentLogger });
    try {
      await other.ensureTopics([{ topic, partitions: 1 }]);
    } finally {
      await other.close();
    }
    const t2 = Date.now();
    const sub = await subscribing;
    await publishing;
    const t3 = Date.now();
    await until('the record consumed', () => seen.includes('hello'), 60_000);
    t.diagnostic(`unknown topic met after ${t1 - t0} ms; topic created in ${t2 - t1} ms; subscribed and published ${t3 - t2} ms later; consumed ${Date.now() - t3} ms later`);
    await sub.stop();
  } finally {
    await bus.close();
  }
});

// A partition taken away while this member's queues are full (its sink blocked on ClickHouse)
// and given back later, while the other member could commit nothing on it (its sink blocked
// too). It must start again at its commit, here none, so at its first record. Before 12-05
// @platformatic/kafka's stream kept the position where it had last fetched the partition
// (past every record, fetched for the queues before it was taken) for a partition without a
// commit, so its records after the first were never delivered, and were lost once the member
// committed past them. (The adapter also drops records of such a partition that the stream
// still held from before, which this case does not reach: here those were read and dropped
// while the partition was another member's.)
test('platformatic: a partition taken away while the queues are full, then given back, is delivered from its commit without a gap', { timeout: 400_000 }, async (t) => {
  const brokers = await kafkaOrSkip(t);
  if (brokers) await givenBack(t, brokers, false);
});

// The same, with a fetch of A's sent before the partition was taken away and answered only
// after it was given back (two rebalances within one fetch: several members joining and
// leaving at once). The fetch asked for the partition at A's position past everything it had
// queued, so its answer, read after the second join, would set that position again and hand
// over the records after it, skipping the ones between the commit and it. Before the fix
// (12-05, evening) A received partition 1's 10 later records and its first (in a handler when
// the partition was taken away), never the 49 between. Here the fetch is held on A's side
// (@platformatic/kafka's Consumer.fetch, which A's stream calls, is wrapped by the test)
// rather than by timing, so the case is reached every run; while it is held the stream sends
// no other fetch to that broker, as in the real case.
test('platformatic: a fetch sent before a partition was taken away and answered after it was given back does not skip records', { timeout: 400_000 }, async (t) => {
  const brokers = await kafkaOrSkip(t);
  if (brokers) await givenBack(t, brokers, true);
});

type FetchCall = (this: Consumer<Buffer, Buffer, Buffer, Buffer>, options: unknown, callback?: unknown) => unknown;

async function givenBack(t: TestContext, brokers: string[], fetchHeld: boolean): Promise<void> {
  // Fetches of A's consumer are held while `holding`; `release` sends them.
  let holding = false;
  const held: Array<() => void> = [];
  const release = () => {
    holding = false;
    for (const send of held.splice(0)) send();
  };
  const proto = Consumer.prototype as unknown as { fetch: FetchCall };
  const fetchOnce = proto.fetch;
  if (fetchHeld) {
    proto.fetch = function (this: Consumer<Buffer, Buffer, Buffer, Buffer>, options: unknown, callback?: unknown) {
      if (!holding || !callback || !this.clientId.startsWith('attune-regiven-a')) return fetchOnce.call(this, options, callback);
      held.push(() => void fetchOnce.call(this, options, callback));
      return undefined;
    };
  }
  t.after(() => {
    proto.fetch = fetchOnce;
  });
  const keysOf = (partition: number, n: number, tag: string) => {
    const out: string[] = [];
    for (let i = 0; out.length < n; i++) if (partitionForKey(`${tag}-${i}`, 2) === partition) out.push(`${tag}-${i}`);
    return out;
  };
  const options = { brokers, log: silentLogger, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, retryBackoffMs: 50 };
  // Which partition the other member gets is the broker's choice (the members' order in its
  // answer): the case needs partition 1, so it is set up again, with a new group, until it gets it.
  for (let attempt = 1; ; attempt++) {
    assert.ok(attempt <= 10, 'the other member never got partition 1 in 10 tries');
    const id = randomUUID().slice(0, 8);
    const topic = `kafka.regiven.${id}`;
    const group = `regiven-${id}`;
    // A queues at most 4 records, one to a batch.
    const warnings: string[] = [];
    const log = Object.assign(Object.create(silentLogger), {
      warn: (obj: { err?: Error; reason?: string }, msg?: string) => void warnings.push(`${msg ?? ''} ${obj?.reason ?? ''} ${obj?.err?.message ?? ''}`),
      child: () => log,
    });
    const a = await createPlatformaticKafkaBus({ ...options, log, clientId: 'attune-regiven-a', maxBufferedRecords: 4, maxBatchRecords: 1 });
    const b = await createPlatformaticKafkaBus({ ...options, clientId: 'attune-regiven-b' });
    let open = () => {};
    try {
      await a.ensureTopics([{ topic, partitions: 2 }]);
      // One fetch brings both: A queues partition 0's two and partition 1's first two (its 4);
      // its stream keeps partition 1's other 48.
      const zero = keysOf(0, 2, `x${id}`);
      const one = keysOf(1, 50, `y${id}`);
      await a.publish(topic, [...zero, ...one].map((key) => ({ key, value: Buffer.from(key) })));
      const opened = new Promise<void>((r) => (open = r));
      const assignedA: number[][] = [];
      const handling = new Set<number>();
      const handled = new Set<string>();
      const subA = await a.subscribe({
        groupId: group,
        topics: [topic],
        onAssignment: (x) => void assignedA.push(x.map((tp) => tp.partition)),
        eachBatch: async (batch) => {
          handling.add(batch.partition);
          await opened;
          for (const r of batch.records) handled.add(r.key);
          await subA.commit(batch.topic, batch.partition, (BigInt(batch.records[batch.records.length - 1].offset) + 1n).toString());
        },
      });
      await until('A to hold both partitions, blocked in a batch of each', () => assignedA.at(-1)?.length === 2 && handling.size === 2, 60_000);
      // A's stream has fetched every record (the next fetch asks partition 1 from offset 50);
      // that fetch is held, and the records it will bring published meanwhile.
      const more = fetchHeld ? keysOf(1, 10, `z${id}`) : [];
      if (fetchHeld) {
        holding = true;
        await until('a fetch of A to be held', () => held.length > 0, 60_000);
        await a.publish(topic, more.map((key) => ({ key, value: Buffer.from(key) })));
      }
      let assignedB: number[] = [];
      // B's sink cannot write either: it reads and commits nothing.
      const subB = await b.subscribe({ groupId: group, topics: [topic], onAssignment: (x) => void (assignedB = x.map((tp) => tp.partition)), eachBatch: async () => undefined });
      await until('the two to share the partitions', () => assignedB.length === 1 && assignedA.at(-1)?.length === 1, 60_000);
      if (assignedB[0] !== 1) {
        t.diagnostic(`try ${attempt}: the other member got partition ${assignedB[0]}`);
        release();
        open();
        await subB.stop();
        await subA.stop();
        continue;
      }
      await subB.stop();
      const before = assignedA.length;
      await until('A to hold both partitions again', () => assignedA.length > before && assignedA.at(-1)?.length === 2, 60_000);
      const heldAcross = held.length;
      release();
      open();
      const all = [...zero, ...one, ...more];
      await until('A to handle the last record of each partition', () => handled.has(zero.at(-1)!) && handled.has((more.length > 0 ? more : one).at(-1)!), 60_000).catch((err: Error) =>
        Promise.reject(new Error(`${err.message}; A's assignments ${JSON.stringify(assignedA)}; not handled: ${all.filter((k) => !handled.has(k))}`)),
      );
      t.diagnostic(`try ${attempt}; A's assignments ${JSON.stringify(assignedA)}${fetchHeld ? `; fetches held across both joins: ${heldAcross}` : ''}`);
      assert.deepEqual(all.filter((k) => !handled.has(k)), [], 'every record handled by A (it commits past what it skipped)');
      // By the adapter's rebalance path, not by replacing a consumer it lost.
      assert.deepEqual(warnings.filter((w) => /consumer lost/.test(w)), [], 'no consumer replaced');
      await subA.stop();
      return;
    } finally {
      release();
      open();
      await b.close();
      await a.close();
    }
  }
}
