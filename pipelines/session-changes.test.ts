// The sessions dimension: every change of a session in PostgreSQL reaches the ClickHouse
// `sessions` table through the outbox and the compacted topic, none is lost when the bus
// refuses a publish, and replaying the topic changes no answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../bus/embedded.js';
import type { Bus } from '../bus/types.js';
import { silentLogger } from '../lib/log.js';
import { createCodec, type Codec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import { Topics } from '../schemas/topics.js';
import { createStoreClient, queryRows, type StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { DevicesRepository, SessionsRepository } from '../store/postgres/sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../store/postgres/test-databases.test-util.js';
import { Tables } from '../store/rows.js';
import { waitFor } from '../test/attune.js';
import { SessionChangesRelay, SessionDimensionSink } from './session-changes.js';

let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
let entities: TestDatabase;
let sessions: SessionsRepository;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-session-changes-'));
  store = await createStoreClient({ dataDir: dir, database: 'session_changes_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  codec = await createCodec(LocalSchemaRegistry.fromManifest());
  entities = await entityTestDatabase();
  sessions = new SessionsRepository(entities.client);
  await new DevicesRepository(entities.client).register({ id: 'dev-1', orgId: 'o1', userId: 'u1' });
});

after(async () => {
  await bus.close();
  await store.close();
  await entities.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const dimension = async () =>
  queryRows<{ session_id: string; status: string; title: string; version: number | string; device_id: string; metadata_json: string }>(
    store.client,
    `SELECT session_id, status, title, version, device_id, metadata_json FROM ${store.table(Tables.sessions)} FINAL ORDER BY session_id`,
  );
const outboxSize = async () => Number((await entities.client.query<{ n: string }>('SELECT count(*) AS n FROM session_changes')).rows[0].n);

test('created, changed and ended sessions reach the ClickHouse dimension with their last version', async () => {
  const relay = new SessionChangesRelay({ sql: entities.client, bus, codec, log: silentLogger, pollMs: 20 });
  const sink = new SessionDimensionSink({ bus, codec, store, log: silentLogger, groupId: 'dim-1', writer: { maxDelayMs: 20 } });
  await sink.start();
  relay.start();
  try {
    const a = await sessions.create({ orgId: 'o1', userId: 'u1', deviceId: 'dev-1', title: 'a', metadata: { k: 1 } });
    const b = await sessions.create({ orgId: 'o1', userId: 'u1', title: 'b' });
    await sessions.update(a.id, { title: 'a, renamed' }, { expectedVersion: a.version });
    const ended = await sessions.end((await sessions.get(a.id, { fresh: true }))!);
    const expected = [
      { session_id: a.id, status: 'ended', title: 'a, renamed', version: ended.version, device_id: 'dev-1', metadata_json: '{"k":1}' },
      { session_id: b.id, status: 'active', title: 'b', version: b.version, device_id: '', metadata_json: '{}' },
    ].sort((x, y) => x.session_id.localeCompare(y.session_id));
    await waitFor('the dimension to hold both sessions at their last version', async () => {
      await sink.flush();
      const rows = (await dimension()).map((r) => ({ ...r, version: Number(r.version) }));
      return JSON.stringify(rows) === JSON.stringify(expected);
    }, 30_000, 50);
    assert.equal(ended.version, 3);
    assert.equal(await outboxSize(), 0, 'the outbox is empty once published');
  } finally {
    await relay.stop();
    await sink.stop();
  }
});

test('a change whose publish fails stays in the outbox and is published by the next attempt', async () => {
  let refuse = true;
  const flaky: Bus = Object.create(bus, {
    publish: {
      value: async (topic: string, records: Parameters<Bus['publish']>[1]) => {
        if (refuse) throw new Error('broker unavailable');
        return bus.publish(topic, records);
      },
    },
  });
  const relay = new SessionChangesRelay({ sql: entities.client, bus: flaky, codec, log: silentLogger });
  const s = await sessions.create({ orgId: 'o1', userId: 'u1', title: 'through a failure' });
  await assert.rejects(relay.relayOnce(), /broker unavailable/);
  assert.ok((await outboxSize()) >= 1, 'the refused change is still in the outbox');
  refuse = false;
  assert.ok((await relay.relayOnce()) >= 1);
  assert.equal(await outboxSize(), 0);
  const sink = new SessionDimensionSink({ bus, codec, store, log: silentLogger, groupId: 'dim-2', writer: { maxDelayMs: 20 } });
  await sink.start();
  try {
    await waitFor('the session in the dimension', async () => {
      await sink.flush();
      return (await dimension()).some((r) => r.session_id === s.id && r.title === 'through a failure');
    }, 30_000, 50);
  } finally {
    await sink.stop();
  }
});

test('replaying the whole topic into the dimension changes no answer', async () => {
  const before = await dimension();
  assert.ok(before.length >= 3);
  const sink = new SessionDimensionSink({ bus, codec, store, log: silentLogger, groupId: `dim-replay-${Date.now()}`, writer: { maxDelayMs: 20 } });
  await sink.start();
  try {
    const published = (await bus.committed('dim-1', Topics.sessionChanges)).size;
    assert.ok(published > 0);
    await waitFor('the replay to read the topic', async () => {
      await sink.flush();
      return sink.stats.rows >= before.length;
    }, 30_000, 50);
    assert.deepEqual(await dimension(), before);
  } finally {
    await sink.stop();
  }
});
