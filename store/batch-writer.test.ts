import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import { isAttuneError } from '../lib/errors.js';
import { BatchWriter, type InsertFailure } from './batch-writer.js';
import { queryRows, toNumber, type StoreClient } from './clickhouse.js';
import { storeImplementations, withDeadline } from './test-stores.test-util.js';

interface Row {
  k: number;
  ts: number;
  v: number;
}

const rows = (from: number, n: number): Row[] =>
  Array.from({ length: n }, (_, i) => ({ k: from + i, ts: 1_700_000_000_000 + (from + i) * 1000, v: (from + i) / 4 }));

/** The store with its client's insert observed (batch sizes) and optionally held at a gate. */
function observed(store: StoreClient, gate?: () => Promise<void>) {
  const batches: number[] = [];
  const client = new Proxy(store.client, {
    get(target, prop) {
      if (prop === 'insert') {
        return async (params: Parameters<StoreClient['client']['insert']>[0]) => {
          if (gate) await gate();
          const result = await target.insert(params);
          batches.push((params.values as unknown[]).length);
          return result;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: { ...store, client } as StoreClient, batches };
}

async function createTable(store: StoreClient, name = 'beats'): Promise<void> {
  await store.client.command({
    query: `CREATE TABLE IF NOT EXISTS ${store.table(name)} (k UInt32, ts DateTime64(3, 'UTC'), v Float32)
            ENGINE = ReplacingMergeTree ORDER BY k`,
  });
}

async function countRows(store: StoreClient, name = 'beats'): Promise<number> {
  const r = await queryRows<{ n: string | number }>(store.client, `SELECT count() AS n FROM ${store.table(name)} FINAL`);
  return toNumber(r[0].n);
}

/** A promise that resolves when the returned callback is called, and the record of calls. */
function durableSignal(fired: string[], name: string): { onDurable: () => void; done: Promise<void> } {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    onDurable: () => {
      fired.push(name);
      resolve();
    },
    done,
  };
}

for (const impl of await storeImplementations()) {
  describe(`BatchWriter (${impl.kind})`, () => {
    after(() => impl.dispose());

    test('flushes by size, in order, and keeps the remainder until flush()', async () => {
      const base = await impl.open();
      await createTable(base);
      const { store, batches } = observed(base);
      const writer = new BatchWriter<Row>({ store, table: 'beats', maxRows: 10, maxDelayMs: 600_000, log: silentLogger });
      const fired: string[] = [];
      const a = durableSignal(fired, 'a');
      const b = durableSignal(fired, 'b');
      const c = durableSignal(fired, 'c');
      const d = durableSignal(fired, 'd');
      const e = durableSignal(fired, 'e');
      await writer.add(rows(0, 4), a.onDurable);
      await writer.add(rows(4, 4), b.onDurable);
      await writer.add(rows(8, 4), c.onDurable); // 12 buffered: the first 10 go out
      await withDeadline(b.done, 10_000, 'the first size-triggered batch');
      assert.deepEqual(fired, ['a', 'b'], 'c ends in row 12, which is not in the first batch');
      await writer.add(rows(12, 8), d.onDurable); // 2 + 8 = 10 more
      await writer.add(rows(20, 3), e.onDurable);
      await withDeadline(d.done, 10_000, 'the second size-triggered batch');
      assert.deepEqual(fired, ['a', 'b', 'c', 'd']);
      assert.deepEqual(batches, [10, 10]);
      assert.equal(writer.bufferedRows, 3);
      await withDeadline(writer.flush(), 10_000, 'flush');
      await e.done;
      assert.deepEqual(fired, ['a', 'b', 'c', 'd', 'e']);
      assert.deepEqual(batches, [10, 10, 3]);
      assert.equal(await countRows(base), 23);
      await writer.close();
      await base.close();
    });

    test('flushes by time, maxDelayMs after the first buffered row', async () => {
      const base = await impl.open();
      await createTable(base);
      const { store, batches } = observed(base);
      const maxDelayMs = 150;
      const writer = new BatchWriter<Row>({ store, table: 'beats', maxRows: 1000, maxDelayMs, log: silentLogger });
      const fired: string[] = [];
      const first = durableSignal(fired, 'first');
      const second = durableSignal(fired, 'second');
      const started = Date.now();
      await writer.add(rows(0, 2), first.onDurable);
      await writer.add(rows(2, 1), second.onDurable);
      await withDeadline(second.done, 10_000, 'the time-triggered flush');
      const waited = Date.now() - started;
      assert.ok(waited >= maxDelayMs - 5, `waited ${waited} ms, less than maxDelayMs`);
      assert.deepEqual(fired, ['first', 'second']);
      assert.deepEqual(batches, [3], 'one insert for both adds');
      assert.equal(await countRows(base), 3);
      await writer.close();
      await base.close();
    });

    test('add() waits while more than maxBufferedRows are buffered (back-pressure)', async () => {
      const base = await impl.open();
      await createTable(base);
      let openGate!: () => void;
      const gateOpen = new Promise<void>((r) => (openGate = r));
      let insertStarted!: () => void;
      const started = new Promise<void>((r) => (insertStarted = r));
      const { store, batches } = observed(base, async () => {
        insertStarted();
        await gateOpen;
      });
      const writer = new BatchWriter<Row>({ store, table: 'beats', maxRows: 5, maxBufferedRows: 10, maxDelayMs: 600_000, log: silentLogger });
      await writer.add(rows(0, 5)); // a full batch: its insert starts and is held at the gate
      await withDeadline(started, 10_000, 'the first insert to start');
      await withDeadline(writer.add(rows(5, 5)), 1000, 'an add within the limit'); // 10 buffered: at the limit, not over
      let released = false;
      const blocked = writer.add(rows(10, 1)).then(() => {
        released = true;
      });
      // Let every pending callback run: the add must still be waiting, as nothing was inserted.
      await new Promise((r) => setImmediate(r));
      assert.equal(released, false, 'add() over maxBufferedRows must wait');
      assert.equal(writer.bufferedRows, 11);
      openGate();
      await withDeadline(blocked, 10_000, 'back-pressure to release');
      assert.ok(writer.bufferedRows <= 10);
      await withDeadline(writer.flush(), 10_000, 'flush');
      assert.deepEqual(batches, [5, 5, 1]);
      assert.equal(await countRows(base), 11);
      await writer.close();
      await base.close();
    });

    test('retries a failing insert with back-off, reports it, and delivers the rows once it succeeds', async () => {
      const store = await impl.open(); // the table does not exist yet: every insert fails
      const failures: Array<{ err: unknown; failure: InsertFailure }> = [];
      let reported!: () => void;
      const reportedOnce = new Promise<void>((r) => (reported = r));
      const writer = new BatchWriter<Row>({
        store,
        table: 'late_table',
        maxRows: 100,
        maxDelayMs: 1,
        retry: { initialDelayMs: 5, maxDelayMs: 40, errorAfterAttempts: 3 },
        onError: (err, failure) => {
          failures.push({ err, failure });
          reported();
        },
        log: silentLogger,
      });
      const fired: string[] = [];
      const sig = durableSignal(fired, 'rows');
      await writer.add(rows(0, 7), sig.onDurable);
      await withDeadline(reportedOnce, 10_000, 'onError after 3 failed attempts');
      assert.equal(failures[0].failure.attempts, 3);
      assert.equal(failures[0].failure.rows, 7);
      assert.match(String((failures[0].err as Error).message), /late_table|UNKNOWN_TABLE|does not exist/i);
      assert.deepEqual(fired, [], 'nothing is durable while inserts fail');
      assert.equal(writer.bufferedRows, 7, 'the rows are kept');
      await createTable(store, 'late_table');
      await withDeadline(sig.done, 10_000, 'the rows to be inserted after the table appeared');
      assert.equal(await countRows(store, 'late_table'), 7);
      assert.equal(writer.bufferedRows, 0);
      await writer.close();
      await store.close();
    });

    test('flush() and close() reject when the insert keeps failing; add() after close() is refused', async () => {
      const store = await impl.open();
      const writer = new BatchWriter<Row>({
        store,
        table: 'missing_table',
        maxDelayMs: 600_000,
        retry: { initialDelayMs: 1, maxDelayMs: 5, errorAfterAttempts: 2 },
        log: silentLogger,
      });
      let durable = false;
      await writer.add(rows(0, 3), () => (durable = true));
      await assert.rejects(withDeadline(writer.flush(), 10_000, 'flush to fail'), (err: unknown) => isAttuneError(err) && err.code === 'unavailable');
      await assert.rejects(withDeadline(writer.close(), 10_000, 'close to fail'), (err: unknown) => isAttuneError(err) && err.code === 'unavailable');
      assert.equal(durable, false);
      await assert.rejects(writer.close(), (err: unknown) => isAttuneError(err) && err.code === 'unavailable', 'close() again: same outcome');
      await assert.rejects(writer.flush(), (err: unknown) => isAttuneError(err) && err.code === 'unavailable');
      await assert.rejects(writer.add(rows(3, 1)), (err: unknown) => isAttuneError(err) && err.code === 'unavailable');
      await store.close();
    });

    test('rows written twice through writers read back once with FINAL', async () => {
      const store = await impl.open();
      await createTable(store);
      for (let replay = 0; replay < 2; replay++) {
        const writer = new BatchWriter<Row>({ store, table: 'beats', maxRows: 7, log: silentLogger });
        await writer.add(rows(0, 20));
        await withDeadline(writer.close(), 10_000, 'close');
      }
      const sums = await queryRows<{ n: string | number; s: number; t: string | number }>(
        store.client,
        `SELECT count() AS n, sum(v) AS s, sum(toUnixTimestamp64Milli(ts)) AS t FROM ${store.table('beats')} FINAL`,
      );
      const want = rows(0, 20);
      assert.equal(toNumber(sums[0].n), 20);
      assert.equal(sums[0].s, want.reduce((a, r) => a + r.v, 0));
      assert.equal(toNumber(sums[0].t), want.reduce((a, r) => a + r.ts, 0));
      await store.close();
    });
  });
}
