// The behaviour every Bus must show, as one node:test suite that each implementation's
// test file runs against its own bus: `runBusContract('embedded', async () => bus)`.
// Waiting is always on deliveries or assignments with a deadline, never on a timer.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { keysCoveringPartitions, partitionForKey } from './partitioner.js';
import type { Bus, BusRecord, RecordBatch, Subscription, TopicPartition } from './types.js';

export interface BusContractOptions {
  /** How long to wait for a delivery or assignment (default 20 s; rebalances on Kafka take seconds). */
  deadlineMs?: number;
}

/** Deliveries seen by a subscription, with promise-based waiting. */
export class Inbox {
  readonly records: BusRecord[] = [];
  readonly batches: RecordBatch[] = [];
  readonly assignments: TopicPartition[][] = [];
  readonly events: string[] = [];
  /** Shared by all inboxes: a condition may look at several subscriptions at once. */
  private static waiters: Array<() => void> = [];

  constructor(readonly deadlineMs: number) {}

  addBatch(batch: RecordBatch): void {
    this.batches.push(batch);
    this.records.push(...batch.records);
    this.events.push(`batch:${batch.topic}/${batch.partition}`);
    this.wake();
  }

  addAssignment(assigned: TopicPartition[]): void {
    this.assignments.push(assigned);
    this.events.push(`assign:${assigned.length}`);
    this.wake();
  }

  /** Records something a handler did, waking anyone waiting on it. */
  note(event: string): void {
    this.events.push(event);
    this.wake();
  }

  private wake(): void {
    const ws = Inbox.waiters;
    Inbox.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves when `cond()` holds; rejects after the deadline with `what` and what arrived. */
  async until(what: string, cond: () => boolean, timeoutMs: number = this.deadlineMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; got ${this.records.length} records, assignments ${JSON.stringify(this.assignments)}`);
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        Inbox.waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  values(): string[] {
    return this.records.map((r) => r.value.toString());
  }

  get lastAssignment(): TopicPartition[] | undefined {
    return this.assignments[this.assignments.length - 1];
  }
}

const uid = () => randomUUID().slice(0, 8);
const rec = (key: string, value: string, extra: { headers?: Record<string, string>; timestamp?: number } = {}) => ({
  key,
  value: Buffer.from(value),
  ...extra,
});

export function runBusContract(name: string, makeBus: (t: TestContext) => Promise<Bus | null>, opts: BusContractOptions = {}): void {
  const deadlineMs = opts.deadlineMs ?? 20_000;

  /** Runs `body` with a fresh bus, closing it (and any subscriptions) afterwards. */
  const withBus =
    (body: (bus: Bus, ctx: { topic: (label: string) => string; group: (label: string) => string; subs: Subscription[] }) => Promise<void>) =>
    async (t: TestContext) => {
      const bus = await makeBus(t);
      if (!bus) return;
      const id = uid();
      const subs: Subscription[] = [];
      try {
        await body(bus, {
          topic: (label) => `contract.${name}.${label}.${id}`,
          group: (label) => `contract-${name}-${label}-${id}`,
          subs,
        });
      } finally {
        await Promise.all(subs.map((s) => s.stop()));
        await bus.close();
      }
    };

  /** Subscribes, recording batches and assignments in an Inbox. */
  async function consume(
    bus: Bus,
    subs: Subscription[],
    groupId: string,
    topics: string[],
    extra: { fromBeginning?: boolean; eachBatch?: (batch: RecordBatch, inbox: Inbox) => Promise<void> } = {},
  ): Promise<{ inbox: Inbox; sub: Subscription }> {
    const inbox = new Inbox(deadlineMs);
    const sub = await bus.subscribe({
      groupId,
      topics,
      fromBeginning: extra.fromBeginning,
      onAssignment: (assigned) => inbox.addAssignment(assigned),
      eachBatch: async (batch) => {
        if (extra.eachBatch) await extra.eachBatch(batch, inbox);
        inbox.addBatch(batch);
      },
    });
    subs.push(sub);
    return { inbox, sub };
  }

  describe(`bus contract: ${name}`, () => {
    test('ensureTopics is idempotent and publishing an empty list resolves', withBus(async (bus, { topic }) => {
      const t = topic('empty');
      await bus.ensureTopics([{ topic: t, partitions: 2 }]);
      await bus.ensureTopics([{ topic: t, partitions: 2 }]);
      await bus.publish(t, []);
      assert.deepEqual(await bus.committed('nobody-' + uid(), t), new Map());
    }));

    test('partitionCount answers the partitions of a topic, and keysCoveringPartitions reaches each once', withBus(async (bus, { topic, group, subs }) => {
      const t1 = topic('count-one');
      const t5 = topic('count-five');
      await bus.ensureTopics([{ topic: t1, partitions: 1 }, { topic: t5, partitions: 5 }]);
      assert.equal(await bus.partitionCount(t1), 1);
      assert.equal(await bus.partitionCount(t5), 5);
      await bus.publish(t5, keysCoveringPartitions(5, 'every-').map((key) => rec(key, key)));
      const { inbox } = await consume(bus, subs, group('count'), [t5]);
      await inbox.until('5 records', () => inbox.records.length >= 5);
      assert.deepEqual(inbox.records.map((r) => r.partition).sort(), [0, 1, 2, 3, 4]);
    }));

    test('records of one key keep their order and land on the partitionForKey partition', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('order');
      const partitions = 3;
      await bus.ensureTopics([{ topic: t, partitions }]);
      const keys = Array.from({ length: 12 }, (_, i) => `device-${i}`);
      let seq = 0;
      for (let round = 0; round < 5; round++) {
        await bus.publish(t, Array.from({ length: 40 }, () => {
          const n = seq++;
          return rec(keys[n % keys.length], String(n));
        }));
      }
      const { inbox } = await consume(bus, subs, group('order'), [t]);
      await inbox.until(`${seq} records`, () => inbox.records.length >= seq);
      assert.equal(inbox.records.length, seq);
      const lastByKey = new Map<string, number>();
      const usedPartitions = new Set<number>();
      for (const r of inbox.records) {
        assert.equal(r.topic, t);
        assert.equal(r.partition, partitionForKey(r.key, partitions), `partition of ${r.key}`);
        usedPartitions.add(r.partition);
        const n = Number(r.value.toString());
        assert.ok(n > (lastByKey.get(r.key) ?? -1), `key ${r.key}: ${n} after ${lastByKey.get(r.key)}`);
        lastByKey.set(r.key, n);
      }
      assert.equal(usedPartitions.size, partitions);
      // Offsets within each batch are consecutive and increasing.
      for (const b of inbox.batches) {
        for (let i = 1; i < b.records.length; i++) assert.equal(BigInt(b.records[i].offset), BigInt(b.records[i - 1].offset) + 1n);
      }
    }));

    test('headers and timestamps round-trip; a missing timestamp becomes the append time', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('headers');
      await bus.ensureTopics([{ topic: t, partitions: 1 }]);
      const before = Date.now();
      await bus.publish(t, [
        rec('k', 'with', { headers: { 'content-type': 'avro', trace: 'abc-ü' }, timestamp: 1_700_000_000_123 }),
        rec('k', 'without'),
      ]);
      const after = Date.now();
      const { inbox } = await consume(bus, subs, group('headers'), [t]);
      await inbox.until('2 records', () => inbox.records.length >= 2);
      const [a, b] = inbox.records;
      assert.deepEqual(a.headers, { 'content-type': 'avro', trace: 'abc-ü' });
      assert.equal(a.timestamp, 1_700_000_000_123);
      assert.equal(a.value.toString(), 'with');
      assert.deepEqual(b.headers, {});
      assert.ok(b.timestamp >= before - 1000 && b.timestamp <= after + 1000, `timestamp ${b.timestamp} not near ${before}..${after}`);
    }));

    test('a new subscription resumes at the committed offset and re-delivers uncommitted records', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('resume');
      const g = group('resume');
      await bus.ensureTopics([{ topic: t, partitions: 1 }]);
      await bus.publish(t, Array.from({ length: 10 }, (_, i) => rec('k', `a${i}`)));
      const first = await consume(bus, subs, g, [t]);
      await first.inbox.until('10 records', () => first.inbox.records.length >= 10);
      // Processed all ten, but committed only the first five.
      await first.sub.commit(t, 0, '5');
      await first.sub.stop();
      assert.deepEqual(await bus.committed(g, t), new Map([[0, '5']]));

      await bus.publish(t, Array.from({ length: 3 }, (_, i) => rec('k', `b${i}`)));
      const second = await consume(bus, subs, g, [t]);
      await second.inbox.until('8 records', () => second.inbox.records.length >= 8);
      assert.deepEqual(second.inbox.values(), ['a5', 'a6', 'a7', 'a8', 'a9', 'b0', 'b1', 'b2']);
      assert.equal(second.inbox.records[0].offset, '5');
      await second.sub.commit(t, 0, '13');
      assert.deepEqual(await bus.committed(g, t), new Map([[0, '13']]));
    }));

    test('two groups each get every record', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('groups');
      await bus.ensureTopics([{ topic: t, partitions: 2 }]);
      await bus.publish(t, Array.from({ length: 50 }, (_, i) => rec(`k${i % 7}`, String(i))));
      const a = await consume(bus, subs, group('a'), [t]);
      const b = await consume(bus, subs, group('b'), [t]);
      await a.inbox.until('50 in group a', () => a.inbox.records.length >= 50);
      await b.inbox.until('50 in group b', () => b.inbox.records.length >= 50);
      const all = Array.from({ length: 50 }, (_, i) => String(i));
      assert.deepEqual(a.inbox.values().sort(), [...all].sort());
      assert.deepEqual(b.inbox.values().sort(), [...all].sort());
    }));

    test('two members of one group split the partitions and each record is delivered once', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('split');
      const g = group('split');
      const partitions = 4;
      await bus.ensureTopics([{ topic: t, partitions }]);
      const a = await consume(bus, subs, g, [t]);
      await a.inbox.until('first member assigned', () => (a.inbox.lastAssignment?.length ?? 0) === partitions);
      const b = await consume(bus, subs, g, [t]);
      const settled = () => {
        const pa = (a.inbox.lastAssignment ?? []).map((tp) => tp.partition);
        const pb = (b.inbox.lastAssignment ?? []).map((tp) => tp.partition);
        return pa.length > 0 && pb.length > 0 && pa.length + pb.length === partitions && new Set([...pa, ...pb]).size === partitions;
      };
      await b.inbox.until('the group to split the partitions', settled);
      await a.inbox.until('the group to split the partitions', settled);

      const n = 200;
      await bus.publish(t, Array.from({ length: n }, (_, i) => rec(`key-${i}`, String(i))));
      const total = () => a.inbox.records.length + b.inbox.records.length;
      await a.inbox.until(`${n} records between them`, () => total() >= n);
      const seen = [...a.inbox.values(), ...b.inbox.values()];
      assert.equal(seen.length, n);
      assert.equal(new Set(seen).size, n, 'no record twice');
      const mineA = new Set(a.inbox.lastAssignment!.map((tp) => tp.partition));
      assert.ok(a.inbox.records.length > 0 && b.inbox.records.length > 0);
      for (const r of a.inbox.records) assert.ok(mineA.has(r.partition));
      for (const r of b.inbox.records) assert.ok(!mineA.has(r.partition));
    }));

    test('a rejected batch is delivered again before anything after it', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('retry');
      await bus.ensureTopics([{ topic: t, partitions: 1 }]);
      await bus.publish(t, Array.from({ length: 5 }, (_, i) => rec('k', String(i))));
      const attempts: string[][] = [];
      let failures = 0;
      const { inbox } = await consume(bus, subs, group('retry'), [t], {
        eachBatch: async (batch) => {
          attempts.push(batch.records.map((r) => r.offset));
          if (failures < 2) {
            failures++;
            throw new Error('downstream unavailable');
          }
        },
      });
      await inbox.until('the batch to succeed', () => inbox.records.length >= 5);
      assert.ok(attempts.length >= 3);
      assert.deepEqual(attempts[1], attempts[0], 'same records again');
      assert.deepEqual(attempts[2].slice(0, attempts[0].length), attempts[0]);
      assert.deepEqual(inbox.values(), ['0', '1', '2', '3', '4']);
    }));

    test('fromBeginning false skips what was there before the group first joined', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('latest');
      await bus.ensureTopics([{ topic: t, partitions: 1 }]);
      await bus.publish(t, [rec('k', 'old-0'), rec('k', 'old-1'), rec('k', 'old-2')]);
      const { inbox } = await consume(bus, subs, group('latest'), [t], { fromBeginning: false });
      await inbox.until('assignment', () => (inbox.lastAssignment?.length ?? 0) === 1);
      // The consumer's start position is fixed some time after the assignment on Kafka, so
      // keep publishing probes until one arrives; none of the old records may show up.
      let probe = 0;
      while (inbox.records.length === 0) {
        await bus.publish(t, [rec('k', `new-${probe++}`)]);
        await inbox.until('a probe', () => inbox.records.length > 0, 2000).catch(() => undefined);
        assert.ok(probe < Math.max(20, deadlineMs / 2000), 'no probe arrived');
      }
      assert.ok(inbox.values().every((v) => v.startsWith('new-')), inbox.values().join(','));
    }));

    test('onAssignment comes before the first batch, and stop waits for the running handler', withBus(async (bus, { topic, group, subs }) => {
      const t = topic('stop');
      await bus.ensureTopics([{ topic: t, partitions: 1 }]);
      await bus.publish(t, [rec('k', 'x')]);
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let running = false;
      let handlerFinished = false;
      const { inbox, sub } = await consume(bus, subs, group('stop'), [t], {
        eachBatch: async (_batch, box) => {
          running = true;
          box.note('handler-start');
          await released;
          running = false;
          handlerFinished = true;
        },
      });
      await inbox.until('handler to start', () => inbox.events.includes('handler-start'));
      assert.equal(inbox.events[0], 'assign:1');
      let stopped = false;
      const stopping = sub.stop().then(() => (stopped = true));
      // stop() must still be pending while the handler runs: let the event loop turn.
      await new Promise<void>((r) => setImmediate(r));
      assert.equal(stopped, false);
      assert.equal(running, true);
      release();
      await stopping;
      assert.equal(handlerFinished, true);
      assert.equal(running, false);
    }));
  });
}
