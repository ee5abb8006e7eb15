import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { isAttuneError } from '../lib/errors.js';
import { createStoreClient, queryRows, toEpochMs, toNullableNumber, toNumber } from './clickhouse.js';
import { storeImplementations } from './test-stores.test-util.js';

// Awaited before any test is registered: with --test-force-exit (scripts/run-tests.mjs) a file
// exits once its registered tests end, so suites registered after a later top-level await
// were never run (these files ran only their first tests).
const implementations = await storeImplementations();

test('toNumber normalises 64-bit values from either backend', () => {
  assert.equal(toNumber('12345678901'), 12345678901);
  assert.equal(toNumber(12345678901), 12345678901);
  assert.equal(toNumber('-5'), -5);
  assert.throws(() => toNumber('abc'), TypeError);
  assert.equal(toNullableNumber(null), null);
  assert.equal(toNullableNumber('7'), 7);
});

test('toEpochMs reads DateTime64 text as UTC', () => {
  assert.equal(toEpochMs('2023-11-14 22:13:20.123'), 1_700_000_000_123);
  assert.equal(toEpochMs(1_700_000_000_123), 1_700_000_000_123);
  assert.throws(() => toEpochMs('yesterday'), TypeError);
});

test('createStoreClient refuses a database name that is not a plain identifier', async () => {
  await assert.rejects(
    createStoreClient({ dataDir: tmpdir(), database: 'x; DROP DATABASE y', log: silentLogger }),
    (err: unknown) => isAttuneError(err) && err.code === 'validation_error',
  );
});

test('createStoreClient needs a url or a dataDir', async () => {
  await assert.rejects(
    createStoreClient({ database: 'attune', log: silentLogger }),
    (err: unknown) => isAttuneError(err) && err.code === 'validation_error' && err.details[0].field === 'dataDir',
  );
});

for (const impl of implementations) {
  describe(`store client (${impl.kind})`, () => {
    after(() => impl.dispose());

    test('creates its database and answers ping until closed', async () => {
      const store = await impl.open();
      assert.equal(store.kind, impl.kind);
      const rows = await queryRows<{ n: string | number }>(
        store.client,
        'SELECT count() AS n FROM system.databases WHERE name = {db:String}',
        { db: store.database },
      );
      assert.equal(toNumber(rows[0].n), 1);
      assert.equal(await store.ping(), true);
      assert.equal(store.table('heart_readings'), `${store.database}.heart_readings`);
      assert.throws(() => store.table('a b'), (err: unknown) => isAttuneError(err) && err.code === 'validation_error');
      await store.close();
      assert.equal(await store.ping(), false);
    });

    test('queryRows binds parameters instead of splicing them into SQL', async () => {
      const store = await impl.open();
      const hostile = "x' OR 1=1 --; DROP DATABASE default";
      const rows = await queryRows<{ s: string; n: string | number; big: string | number }>(
        store.client,
        'SELECT {s:String} AS s, length({s:String}) AS n, toUInt64({big:UInt64}) AS big',
        { s: hostile, big: 9_007_199_254_740_991n },
      );
      assert.equal(rows[0].s, hostile);
      assert.equal(toNumber(rows[0].n), hostile.length);
      assert.equal(toNumber(rows[0].big), Number.MAX_SAFE_INTEGER);
      await store.close();
    });

    test('round-trips DateTime64(3) written as epoch milliseconds', async () => {
      const store = await impl.open();
      await store.client.command({
        query: `CREATE TABLE ${store.table('t')} (k UInt32, ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY k`,
      });
      const samples = [86_400_123, 999_999_999_999, 1_700_000_000_123, 4_102_444_800_001];
      await store.client.insert({
        table: store.table('t'),
        format: 'JSONEachRow',
        values: samples.map((ts, k) => ({ k, ts })),
      });
      const rows = await queryRows<{ ts: string; ms: string | number }>(
        store.client,
        `SELECT ts, toUnixTimestamp64Milli(ts) AS ms FROM ${store.table('t')} ORDER BY k`,
      );
      assert.deepEqual(rows.map((r) => toNumber(r.ms)), samples);
      assert.deepEqual(rows.map((r) => toEpochMs(r.ts)), samples);
      await store.close();
    });
  });
}

test('chDB files go under <dataDir>/clickhouse', async () => {
  // chDB refuses a second data directory while one is open in the process; this test runs
  // after the suites above have disposed of theirs.
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-store-dir-'));
  try {
    const store = await createStoreClient({ dataDir, database: 'attune_dir_test', log: silentLogger });
    assert.equal(store.kind, 'chdb');
    assert.ok(existsSync(join(dataDir, 'clickhouse')));
    await store.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
