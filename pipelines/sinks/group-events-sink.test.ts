// The group events sink over the embedded bus and chDB: every mesh event but group_coherence
// becomes one group_events row (its payload as sent), a record that is no mesh event is
// dead-lettered and the partition goes on, and the topic read again by another sink (a replay)
// leaves one row per event under FINAL.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../../bus/embedded.js';
import type { Bus } from '../../bus/types.js';
import { prefixedTopics, Topics } from '../../schemas/topics.js';
import { createCodec, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { MeshEventRecord } from '../../schemas/records.js';
import { createStoreClient, queryRows, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import { silentLogger } from '../../lib/log.js';
import { waitFor } from '../../test/attune.js';
import { GroupEventsSink } from './result-sinks.js';

let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
const topics = prefixedTopics('group-events.');
const T = Date.UTC(2026, 11, 6, 9);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-group-events-sink-'));
  store = await createStoreClient({ dataDir: dir, database: 'group_events_sink_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
});

after(async () => {
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const event = (mesh: string, type: MeshEventRecord['type'], at: number, payload: Record<string, unknown>, id = `${mesh}:${type}:${at}`): MeshEventRecord => ({
  event_id: id, mesh_id: mesh, org_id: 'o1', type, occurred_at: at, payload_json: JSON.stringify(payload),
});

test('every mesh event but group_coherence is one group_events row; what is no mesh event is dead-lettered; a replay adds nothing under FINAL', async () => {
  const joined = event('m1', 'participant_joined', T, { participant_id: 'p1', position: 1, user_id: 'u1', display_name: 'Ann', anonymous: false, participant_count: 1 });
  const manifestation = event('m1', 'manifestation_event', T + 65_000, { level: 1, strength: 0.81, duration: 30, threshold: 0.7, threshold_duration_s: 30, streak_start: new Date(T + 35_000).toISOString() });
  const events = [
    joined,
    event('m1', 'group_coherence', T + 60_000, { coherence: 0.7, participant_count: 1 }),
    event('m1', 'group_coherence', T + 60_000, { coherence: 0.6, provisional: true }, `m1:group_coherence:${T + 60_000}:provisional`),
    manifestation,
    // Sent twice (a relay or a worker replaying): one row.
    manifestation,
    event('m1', 'participant_left', T + 90_000, { participant_id: 'p1', position: 1, user_id: 'u1', display_name: 'Ann', anonymous: false, participant_count: 0 }),
    event('m1', 'session_ended', T + 95_000, { ended_at: new Date(T + 95_000).toISOString(), participant_count: 0 }, 'm1:session_ended'),
  ];
  const records = await Promise.all(events.map(async (e) => ({ key: e.mesh_id, value: await codec.encode(Topics.meshEvents, e) })));
  await bus.publish(topics.meshEvents, [...records.slice(0, 2), { key: 'm1', value: Buffer.from('not avro') }, ...records.slice(2)]);

  const rowsOf = () =>
    queryRows<{ event_id: string; group_id: string; type: string; occurred_ms: string | number; payload_json: string }>(
      store.client,
      `SELECT event_id, group_id, type, toUnixTimestamp64Milli(occurred_at) AS occurred_ms, payload_json FROM ${store.table('group_events')} FINAL ORDER BY occurred_at, event_id`,
    );
  for (const name of ['first', 'replay']) {
    const sink = new GroupEventsSink({ bus, topics, codec, store, log: silentLogger, groupId: `group-events-${name}` });
    await sink.start();
    try {
      await waitFor(`${name}: read`, () => sink.stats.records + sink.stats.deadLettered >= events.length + 1, 10_000, 20);
      await sink.flush();
      assert.equal(sink.stats.deadLettered, 1, 'the record that is no mesh event');
    } finally {
      await sink.stop();
    }
    const rows = await rowsOf();
    assert.deepEqual(rows.map((r) => [r.type, Number(r.occurred_ms) - T]), [['participant_joined', 0], ['manifestation_event', 65_000], ['participant_left', 90_000], ['session_ended', 95_000]], name);
    assert.ok(rows.every((r) => r.group_id === 'm1'));
    assert.deepEqual(JSON.parse(rows[1].payload_json), JSON.parse(manifestation.payload_json), 'the payload as sent');
  }
});
