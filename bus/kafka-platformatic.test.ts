// The bus contract and the Kafka checks against a real Kafka broker with the
// @platformatic/kafka adapter (its compatibilityPartitioner must agree with bus/partitioner.ts),
// and scale-out: two members of one group, one of them killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { kafkaOrSkip } from '../test/services.js';
import { partitionForKey } from './partitioner.js';
import { silentLogger } from '../lib/log.js';
import { createPlatformaticKafkaBus } from './kafka-platformatic.js';
import { runBusContract } from './bus.contract.js';
import { runKafkaChecks } from './kafka.contract.js';

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

async function until<T>(what: string, check: () => T | null | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface ChildMember {
  assigned: number[] | null;
  /** Keys reported after their batch's commit. */
  keys: Set<string>;
  partitions: Set<number>;
  subscribed: boolean;
  exited: boolean;
  stderr: string;
  child: ChildProcess;
}

/** A group member in its own process (bus/kafka-platformatic-member.test-util.ts), so it can be killed. */
function childMember(brokers: string[], topic: string, group: string): ChildMember {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./kafka-platformatic-member.test-util.ts', import.meta.url)), brokers.join(','), topic, group], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m: ChildMember = { assigned: null, keys: new Set(), partitions: new Set(), subscribed: false, exited: false, stderr: '', child };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { assigned?: number[]; partition?: number; keys?: string[]; subscribed?: boolean };
    if (msg.assigned) m.assigned = msg.assigned;
    if (msg.subscribed) m.subscribed = true;
    if (msg.keys) {
      for (const k of msg.keys) m.keys.add(k);
      m.partitions.add(msg.partition!);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (m.stderr = (m.stderr + d.toString()).slice(-4000)));
  child.once('exit', () => (m.exited = true));
  return m;
}

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
