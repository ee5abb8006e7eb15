import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, truncate, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import { createEmbeddedBus, type EmbeddedBus, type EmbeddedBusOptions } from './embedded.js';
import { Inbox, runBusContract } from './bus.contract.js';
import type { RecordBatch, Subscription } from './types.js';

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attune-bus-'));
  tempDirs.push(dir);
  return dir;
}
test.after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

runBusContract('embedded', async () => createEmbeddedBus({ log: silentLogger, retryBackoffMs: 20 }), { deadlineMs: 5000 });
runBusContract('embedded-disk', async () => createEmbeddedBus({ dir: await tempDir(), log: silentLogger, retryBackoffMs: 20 }), {
  deadlineMs: 5000,
});

const rec = (key: string, value: string, headers?: Record<string, string>) => ({ key, value: Buffer.from(value), headers });

/** Subscribes and collects; `commitEach` commits after every batch. */
async function collect(bus: EmbeddedBus, groupId: string, topic: string, opts: { commitEach?: boolean; fromBeginning?: boolean; ephemeral?: boolean } = {}) {
  const inbox = new Inbox(5000);
  let sub!: Subscription;
  sub = await bus.subscribe({
    groupId,
    topics: [topic],
    fromBeginning: opts.fromBeginning,
    ephemeral: opts.ephemeral,
    onAssignment: (a) => inbox.addAssignment(a),
    eachBatch: async (batch: RecordBatch) => {
      inbox.addBatch(batch);
      if (opts.commitEach) {
        const last = batch.records[batch.records.length - 1];
        await sub.commit(batch.topic, batch.partition, String(Number(last.offset) + 1));
      }
    },
  });
  return { inbox, sub };
}

test('durability: topics, records, headers and committed offsets survive close and reopen', async () => {
  const dir = await tempDir();
  let bus = await createEmbeddedBus({ dir, log: silentLogger });
  await bus.ensureTopics([{ topic: 'dur.a', partitions: 3 }, { topic: 'dur.b', partitions: 1 }]);
  await bus.publish('dur.a', Array.from({ length: 30 }, (_, i) => rec(`k${i % 5}`, `a${i}`, { n: String(i) })));
  await bus.publish('dur.b', [rec('x', 'b0'), rec('x', 'b1')]);
  const c = await collect(bus, 'g', 'dur.b');
  await c.inbox.until('2', () => c.inbox.records.length === 2);
  await c.sub.commit('dur.b', 0, '1');
  await bus.close();

  bus = await createEmbeddedBus({ dir, log: silentLogger });
  assert.deepEqual(await bus.committed('g', 'dur.b'), new Map([[0, '1']]));
  const stats = bus.stats().filter((s) => s.topic === 'dur.a');
  assert.equal(stats.length, 3);
  assert.equal(stats.reduce((n, s) => n + s.nextOffset, 0), 30);

  const all = await collect(bus, 'fresh', 'dur.a');
  await all.inbox.until('30', () => all.inbox.records.length === 30);
  const values = all.inbox.records.map((r) => r.value.toString());
  assert.deepEqual([...values].sort(), Array.from({ length: 30 }, (_, i) => `a${i}`).sort());
  for (const r of all.inbox.records) assert.equal(r.headers.n, r.value.toString().slice(1));

  // The old group resumes after its commit; new records continue the offsets.
  await bus.publish('dur.b', [rec('x', 'b2')]);
  const resumed = await collect(bus, 'g', 'dur.b');
  await resumed.inbox.until('2', () => resumed.inbox.records.length === 2);
  assert.deepEqual(resumed.inbox.records.map((r) => [r.offset, r.value.toString()]), [['1', 'b1'], ['2', 'b2']]);
  await bus.close();
});

async function segmentFiles(dir: string, topic: string, partition = 0): Promise<string[]> {
  const pdir = join(dir, 'topics', topic, String(partition));
  return (await readdir(pdir)).filter((f) => f.endsWith('.log')).sort().map((f) => join(pdir, f));
}

test('a torn last record is cut off on open and its offset reused', async () => {
  const dir = await tempDir();
  let bus = await createEmbeddedBus({ dir, log: silentLogger });
  await bus.ensureTopics([{ topic: 'torn', partitions: 1 }]);
  for (let i = 0; i < 5; i++) await bus.publish('torn', [rec('k', `v${i}`)]);
  await bus.close();
  const [file] = await segmentFiles(dir, 'torn');
  const full = (await stat(file)).size;
  await truncate(file, full - 3); // crash in the middle of writing v4

  bus = await createEmbeddedBus({ dir, log: silentLogger });
  assert.equal(bus.stats()[0].nextOffset, 4);
  await bus.publish('torn', [rec('k', 'v4-again')]);
  const c = await collect(bus, 'g', 'torn');
  await c.inbox.until('5', () => c.inbox.records.length === 5);
  assert.deepEqual(c.inbox.values(), ['v0', 'v1', 'v2', 'v3', 'v4-again']);
  assert.equal(c.inbox.records[4].offset, '4');
  await bus.close();
  const intact = (await stat(file)).size;

  // Zeros after the last record (a file extended but never written) are dropped too.
  await appendFile(file, Buffer.alloc(64));
  bus = await createEmbeddedBus({ dir, log: silentLogger });
  assert.equal(bus.stats()[0].nextOffset, 5);
  assert.equal((await stat(file)).size, intact);
  await bus.close();
});

test('retention (memory): deletes only records every group committed and older than retentionMs', async () => {
  let clock = 1_000_000;
  const bus = await createEmbeddedBus({ log: silentLogger, retentionMs: 1000, now: () => clock });
  await bus.ensureTopics([{ topic: 'ret', partitions: 1 }]);
  await bus.publish('ret', Array.from({ length: 100 }, (_, i) => rec('k', String(i))));
  const c = await collect(bus, 'g', 'ret');
  await c.inbox.until('100', () => c.inbox.records.length === 100);
  await c.sub.commit('ret', 0, '60');

  await bus.enforceRetention();
  assert.equal(bus.stats()[0].startOffset, 0, 'too young to delete');
  clock += 2000;
  await bus.enforceRetention();
  assert.equal(bus.stats()[0].startOffset, 60);
  assert.equal(bus.stats()[0].memoryRecords, 40);

  const late = await collect(bus, 'late', 'ret');
  await late.inbox.until('40', () => late.inbox.records.length === 40);
  assert.equal(late.inbox.records[0].offset, '60');
  await bus.close();
});

test('retention (disk): whole consumed, old segments are deleted and stay deleted after reopen', async () => {
  const dir = await tempDir();
  let clock = 5_000_000;
  const opts: EmbeddedBusOptions = { dir, log: silentLogger, retentionMs: 1000, segmentBytes: 2048, now: () => clock };
  let bus = await createEmbeddedBus(opts);
  await bus.ensureTopics([{ topic: 'dret', partitions: 1 }]);
  for (let i = 0; i < 40; i++) await bus.publish('dret', [rec('k', `value-${i}-`.padEnd(100, 'x'))]);
  const before = await segmentFiles(dir, 'dret');
  assert.ok(before.length >= 3, `expected several segments, got ${before.length}`);
  const c = await collect(bus, 'g', 'dret', { commitEach: true });
  await c.inbox.until('40', () => c.inbox.records.length === 40);
  await c.sub.stop();
  assert.deepEqual(await bus.committed('g', 'dret'), new Map([[0, '40']]));
  clock += 5000;
  await bus.enforceRetention();
  const after = await segmentFiles(dir, 'dret');
  assert.equal(after.length, 1, 'only the active segment is left');
  const start = bus.stats()[0].startOffset;
  assert.ok(start > 0 && start <= 40);
  await bus.close();

  bus = await createEmbeddedBus(opts);
  assert.equal(bus.stats()[0].startOffset, start);
  await bus.publish('dret', [rec('k', 'next')]);
  const d = await collect(bus, 'g', 'dret');
  await d.inbox.until('1', () => d.inbox.records.length === 1);
  assert.deepEqual(d.inbox.records.map((r) => [r.offset, r.value.toString()]), [['40', 'next']]);
  await bus.close();
});

test('retention keeps uncommitted records however old', async () => {
  let clock = 0;
  const bus = await createEmbeddedBus({ log: silentLogger, retentionMs: 10, now: () => clock });
  await bus.ensureTopics([{ topic: 'keep', partitions: 1 }]);
  await bus.publish('keep', [rec('k', '0'), rec('k', '1')]);
  const c = await collect(bus, 'g', 'keep');
  await c.inbox.until('2', () => c.inbox.records.length === 2);
  await c.sub.commit('keep', 0, '1');
  clock += 1_000_000;
  await bus.enforceRetention();
  assert.equal(bus.stats()[0].startOffset, 1);
  await bus.close();
});

test('group retention: a group with no member whose last commit is older than groupRetentionMs stops holding records; a member keeps its group from expiring', async () => {
  let clock = 1_000_000;
  const bus = await createEmbeddedBus({ log: silentLogger, retentionMs: 1000, groupRetentionMs: 10_000, now: () => clock });
  await bus.ensureTopics([{ topic: 'gret', partitions: 1 }]);
  await bus.publish('gret', Array.from({ length: 100 }, (_, i) => rec('k', String(i))));
  const stalled = await collect(bus, 'stalled', 'gret');
  await stalled.inbox.until('100', () => stalled.inbox.records.length === 100);
  await stalled.sub.commit('gret', 0, '5');
  const gone = await collect(bus, 'gone', 'gret');
  await gone.inbox.until('100', () => gone.inbox.records.length === 100);
  await gone.sub.commit('gret', 0, '50');
  await gone.sub.stop();

  clock += 5000; // past retentionMs, within groupRetentionMs
  await bus.enforceRetention();
  assert.equal(bus.stats()[0].startOffset, 5);
  clock += 20_000; // both commits are old now; 'stalled' still has its member
  await bus.enforceRetention();
  assert.equal(bus.stats()[0].startOffset, 5, 'a group with a member never expires, however old its commit');
  await stalled.sub.stop();
  await bus.enforceRetention();
  assert.equal(bus.stats()[0].startOffset, 100, 'with no member left, neither group holds anything');

  // The group that comes back starts from the earliest record kept.
  await bus.publish('gret', [rec('k', 'after')]);
  const back = await collect(bus, 'gone', 'gret');
  await back.inbox.until('1', () => back.inbox.records.length === 1);
  assert.deepEqual(back.inbox.records.map((r) => [r.offset, r.value.toString()]), [['100', 'after']]);
  await bus.close();
});

test('group retention (disk): the last commit time is kept with the offsets, so a reopened bus still knows how long a group has been gone', async () => {
  const dir = await tempDir();
  let clock = 9_000_000;
  const opts: EmbeddedBusOptions = { dir, log: silentLogger, retentionMs: 1000, groupRetentionMs: 100_000, segmentBytes: 2048, now: () => clock };
  let bus = await createEmbeddedBus(opts);
  await bus.ensureTopics([{ topic: 'dgret', partitions: 1 }]);
  for (let i = 0; i < 40; i++) await bus.publish('dgret', [rec('k', `value-${i}-`.padEnd(100, 'x'))]);
  const c = await collect(bus, 'gone', 'dgret');
  await c.inbox.until('40', () => c.inbox.records.length === 40);
  await c.sub.commit('dgret', 0, '10');
  await c.sub.stop();
  await bus.close();

  clock += 50_000; // within the group retention: the reopened bus keeps what 'gone' needs
  bus = await createEmbeddedBus(opts);
  await bus.enforceRetention();
  const held = bus.stats()[0].startOffset;
  assert.ok(held <= 10, `start ${held}: records from offset 10 on are kept for 'gone'`);
  await bus.close();

  clock += 60_000; // 110 s after its last commit
  bus = await createEmbeddedBus(opts);
  await bus.enforceRetention();
  assert.ok(bus.stats()[0].startOffset > 10, `start ${bus.stats()[0].startOffset}: the expired group holds nothing`);
  assert.equal((await segmentFiles(dir, 'dgret')).length, 1, 'only the active segment is left');
  await bus.close();
});

test('a consumer behind the in-memory tail reads older records from the segment files', async () => {
  const dir = await tempDir();
  const bus = await createEmbeddedBus({ dir, log: silentLogger, memoryBytesPerPartition: 8 * 1024, maxBatchRecords: 300 });
  await bus.ensureTopics([{ topic: 'lag', partitions: 2 }]);
  const n = 3000;
  for (let i = 0; i < n; i += 500) {
    await bus.publish('lag', Array.from({ length: 500 }, (_, j) => rec(`k${(i + j) % 9}`, `v${i + j}`.padEnd(40, '.'))));
  }
  for (const s of bus.stats()) assert.ok(s.memoryBytes <= 8 * 1024, `memory tail ${s.memoryBytes}`);
  const c = await collect(bus, 'g', 'lag');
  await c.inbox.until(`${n}`, () => c.inbox.records.length === n);
  const byPartition = new Map<number, number>();
  for (const r of c.inbox.records) {
    const expected = byPartition.get(r.partition) ?? 0;
    assert.equal(Number(r.offset), expected);
    byPartition.set(r.partition, expected + 1);
  }
  assert.deepEqual(new Set(c.inbox.records.map((r) => r.value.toString().replace(/\.+$/, ''))).size, n);
  await bus.close();
});

test('memory stays bounded under a steady stream whose consumer keeps up', async () => {
  const cap = 64 * 1024;
  for (const dir of [undefined, await tempDir()]) {
    const bus = await createEmbeddedBus({ dir, log: silentLogger, memoryBytesPerPartition: cap, retentionMs: 0 });
    await bus.ensureTopics([{ topic: 'steady', partitions: 1 }]);
    const c = await collect(bus, 'g', 'steady', { commitEach: true });
    let sent = 0;
    let peak = 0;
    for (let round = 0; round < 100; round++) {
      await bus.publish('steady', Array.from({ length: 200 }, (_, i) => rec('k', `r${round}-${i}`.padEnd(64, '-'))));
      sent += 200;
      peak = Math.max(peak, bus.stats()[0].memoryBytes);
      await c.inbox.until(`${sent}`, () => c.inbox.records.length === sent);
    }
    // 100 x 200 records of ~64 bytes is ~4 MiB in total, far above the cap.
    assert.ok(peak <= cap + 200 * 400, `${dir ? 'disk' : 'memory'}: peak ${peak}`);
    await bus.close();
  }
});

test('memory-only back-pressure: publish waits for a stalled group and rejects at the deadline', async () => {
  const bus = await createEmbeddedBus({ log: silentLogger, memoryBytesPerPartition: 16 * 1024, publishTimeoutMs: 1000 });
  await bus.ensureTopics([{ topic: 'bp', partitions: 1 }]);
  const c = await collect(bus, 'slow', 'bp'); // receives, never commits
  const batch = () => Array.from({ length: 20 }, (_, i) => rec('k', `x${i}`.padEnd(200, 'x')));
  let accepted = 0;
  let rejected: unknown;
  for (let i = 0; i < 10 && !rejected; i++) {
    try {
      await bus.publish('bp', batch());
      accepted++;
    } catch (err) {
      rejected = err;
    }
  }
  assert.ok(accepted >= 1);
  assert.ok(rejected instanceof AttuneError && rejected.code === 'unavailable' && rejected.details[0].reason === 'bus_full');

  // A waiting publish goes through once the group commits.
  await c.inbox.until('deliveries', () => c.inbox.records.length === accepted * 20);
  const waiting = bus.publish('bp', batch());
  await c.sub.commit('bp', 0, String(accepted * 20));
  await waiting;
  await bus.close();
});

test('an ephemeral group (live fan-out) holds back only what it has not handled', async () => {
  const bus = await createEmbeddedBus({ log: silentLogger, memoryBytesPerPartition: 16 * 1024, publishTimeoutMs: 1000 });
  await bus.ensureTopics([{ topic: 'eph', partitions: 1 }]);
  const c = await collect(bus, 'live', 'eph', { ephemeral: true }); // handles, never commits
  const batch = () => Array.from({ length: 20 }, (_, i) => rec('k', `x${i}`.padEnd(200, 'x')));
  // Far more than the 16 KiB cap: each publish waits for the handler, never for a commit.
  for (let i = 0; i < 20; i++) {
    await bus.publish('eph', batch());
    await c.inbox.until(`delivery ${i}`, () => c.inbox.records.length === (i + 1) * 20);
  }
  await c.sub.stop();
  await bus.close();
});

test('commit checks the offset and that the partition is assigned to this member', async () => {
  const bus = await createEmbeddedBus({ log: silentLogger });
  await bus.ensureTopics([{ topic: 'chk', partitions: 2 }]);
  const c = await collect(bus, 'g', 'chk');
  await c.inbox.until('assignment', () => c.inbox.lastAssignment?.length === 2);
  await assert.rejects(c.sub.commit('chk', 0, '-1'), (e: unknown) => e instanceof AttuneError && e.code === 'validation_error');
  await assert.rejects(c.sub.commit('chk', 7, '1'), (e: unknown) => e instanceof AttuneError && e.code === 'conflict');
  await c.sub.stop();
  await assert.rejects(c.sub.commit('chk', 0, '1'), (e: unknown) => e instanceof AttuneError && e.code === 'conflict');
  await assert.rejects(bus.publish('bad topic!', [rec('k', 'v')]), (e: unknown) => e instanceof AttuneError && e.code === 'validation_error');
  await bus.close();
  await assert.rejects(bus.publish('chk', [rec('k', 'v')]), (e: unknown) => e instanceof AttuneError && e.code === 'unavailable');
});

test('a member leaving hands its partitions to the one that stays, from the committed offset', async () => {
  const bus = await createEmbeddedBus({ log: silentLogger });
  await bus.ensureTopics([{ topic: 'handover', partitions: 2 }]);
  const a = await collect(bus, 'g', 'handover', { commitEach: true });
  const b = await collect(bus, 'g', 'handover', { commitEach: true });
  assert.equal(a.inbox.lastAssignment?.length, 1);
  assert.equal(b.inbox.lastAssignment?.length, 1);
  await bus.publish('handover', Array.from({ length: 20 }, (_, i) => rec(`k${i}`, String(i))));
  await a.inbox.until('20 between them', () => a.inbox.records.length + b.inbox.records.length === 20);
  await b.sub.stop();
  await a.inbox.until('a has both partitions', () => a.inbox.lastAssignment?.length === 2);
  await bus.publish('handover', Array.from({ length: 20 }, (_, i) => rec(`k${i}`, String(20 + i))));
  await a.inbox.until('the rest', () => a.inbox.records.length + b.inbox.records.length === 40);
  const all = [...a.inbox.values(), ...b.inbox.values()].map(Number).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 40 }, (_, i) => i));
  await bus.close();
});
