// SessionEndMarkers over the embedded bus: an ended session's change becomes one marker on the
// readings topic, in the partition of the session's device (after its readings), or one in
// every partition for a session without a device, and nothing else does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedBus } from '../../bus/embedded.js';
import type { Bus, BusRecord } from '../../bus/types.js';
import { partitionForKey } from '../../bus/partitioner.js';
import { Topics, prefixedTopics } from '../../schemas/topics.js';
import { createCodec, decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SessionChange } from '../../schemas/registry/schemas.js';
import { notAHeartReading } from '../../schemas/reading-limits.js';
import { silentLogger } from '../../lib/log.js';
import { waitFor } from '../../test/attune.js';
import { SessionEndMarkers, asEndMarker, asSettingsMarker, endMarkerRecord } from './end-markers.js';

let bus: Bus;
let codec: Codec;
const topics = prefixedTopics('markers.');

before(async () => {
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 3 });
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 3 })));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
});
after(() => bus.close());

function change(id: string, status: 'active' | 'ended', deviceId: string, version: number): SessionChange {
  const t = Date.UTC(2026, 11, 1, 9);
  return {
    session_id: id, org_id: 'o1', user_id: 'u1', device_id: deviceId, type: 'coherence', title: '', status,
    started_at: t, ended_at: status === 'ended' ? t + 600_000 : null, coherence_threshold: 0.5, threshold_duration_s: 30,
    metadata_json: '{}', version, created_at: t, updated_at: t + version,
  };
}

test('an ended session gets one marker on the readings topic, keyed and partitioned like its device\'s readings (one in every partition without a device); other changes get none', async () => {
  const markers = new SessionEndMarkers({ bus, codec, topics, log: silentLogger });
  const seen: BusRecord[] = [];
  const sub = await bus.subscribe({
    groupId: 'markers-reader',
    topics: [topics.heartReadings],
    fromBeginning: true,
    ephemeral: true,
    eachBatch: async (b) => void seen.push(...b.records),
  });
  await markers.start();
  try {
    const changes = [
      change('s-active', 'active', 'dev-a', 1),
      change('s-ended', 'ended', 'dev-b', 2),
      change('s-nodevice', 'ended', '', 2),
    ];
    await bus.publish(topics.sessionChanges, await Promise.all(changes.map(async (c) => ({ key: c.session_id, value: await codec.encode(Topics.sessionChanges, c) }))));
    await waitFor('the markers', () => markers.stats.markers === 1 && markers.stats.endedWithoutDevice === 1 && seen.length === 4, 10_000, 20);
    const rec = seen.find((r) => r.key === 'dev-b')!;
    // The session without a device: its readings may be in any partition, so a marker in each.
    const deviceless = seen.filter((r) => r !== rec);
    assert.deepEqual(deviceless.map((r) => r.partition).sort(), [0, 1, 2]);
    for (const r of deviceless) assert.deepEqual(asEndMarker(await decodeRecord(codec, r.value)), { sessionId: 's-nodevice', deviceId: '', endedAtMs: changes[2].ended_at });
    assert.equal(rec.key, 'dev-b');
    assert.equal(rec.partition, partitionForKey('dev-b', 3));
    const value = await decodeRecord(codec, rec.value);
    assert.deepEqual(asEndMarker(value), { sessionId: 's-ended', deviceId: 'dev-b', endedAtMs: changes[1].ended_at });
    // A consumer that knows nothing of markers sees a record that is not a heart reading.
    assert.ok(notAHeartReading(value));
  } finally {
    await markers.stop();
    await sub.stop();
  }
});

test('asEndMarker recognises only markers', async () => {
  const m = await endMarkerRecord(codec, { sessionId: 's1', deviceId: 'd1', userId: 'u1', orgId: 'o1', endedAtMs: 1_000 });
  assert.deepEqual(asEndMarker(await decodeRecord(codec, m.value)), { sessionId: 's1', deviceId: 'd1', endedAtMs: 1_000 });
  const other = await codec.encode(Topics.sessionEvents, { event_id: 'e', session_id: 's1', user_id: 'u1', org_id: 'o1', type: 'coherence_threshold_reached', occurred_at: 1, payload_json: '{}' });
  assert.equal(asEndMarker(await decodeRecord(codec, other)), null);
  assert.equal(asEndMarker(null), null);
  assert.equal(asEndMarker({ type: 'session_end_marker' }), null);
});

test("a session's later change (a PATCH: version > 1) gets a settings marker with its threshold settings, keyed by its device; its creation gets none", async () => {
  const markers = new SessionEndMarkers({ bus, codec, topics: prefixedTopics('settings-markers.'), log: silentLogger });
  const t = prefixedTopics('settings-markers.');
  await bus.ensureTopics(Object.values(t).map((topic) => ({ topic, partitions: 3 })));
  const seen: BusRecord[] = [];
  const sub = await bus.subscribe({ groupId: 'settings-markers-reader', topics: [t.heartReadings], fromBeginning: true, ephemeral: true, eachBatch: async (b) => void seen.push(...b.records) });
  await markers.start();
  try {
    const created = change('s-patched', 'active', 'dev-p', 1);
    const patched = { ...change('s-patched', 'active', 'dev-p', 3), coherence_threshold: 0.35, threshold_duration_s: 12 };
    await bus.publish(t.sessionChanges, await Promise.all([created, patched].map(async (c) => ({ key: c.session_id, value: await codec.encode(Topics.sessionChanges, c) }))));
    await waitFor('the settings marker', () => markers.stats.settingsMarkers === 1 && seen.length === 1, 10_000, 20);
    const [rec] = seen;
    assert.equal(rec.key, 'dev-p');
    const value = await decodeRecord(codec, rec.value);
    assert.deepEqual(asSettingsMarker(value), { sessionId: 's-patched', coherenceThreshold: 0.35, thresholdDurationS: 12, version: 3 });
    assert.equal(asEndMarker(value), null);
    assert.equal(markers.stats.markers, 0);
  } finally {
    await markers.stop();
    await sub.stop();
  }
});

test("an ended session changed before or after its end (version above 2) gets its settings marker before its end marker", async () => {
  const t = prefixedTopics('ended-settings.');
  await bus.ensureTopics(Object.values(t).map((topic) => ({ topic, partitions: 3 })));
  const markers = new SessionEndMarkers({ bus, codec, topics: t, log: silentLogger });
  const seen: BusRecord[] = [];
  const sub = await bus.subscribe({ groupId: 'ended-settings-reader', topics: [t.heartReadings], fromBeginning: true, ephemeral: true, eachBatch: async (b) => void seen.push(...b.records) });
  await markers.start();
  try {
    // A PATCH and the end call read by the relay as one state (version 3).
    const ended = { ...change('s-patch-end', 'ended', 'dev-e', 3), coherence_threshold: 0.35, threshold_duration_s: 12 };
    await bus.publish(t.sessionChanges, [{ key: ended.session_id, value: await codec.encode(Topics.sessionChanges, ended) }]);
    await waitFor('both markers', () => seen.length === 2, 10_000, 20);
    const [first, second] = await Promise.all(seen.map((r) => decodeRecord(codec, r.value)));
    assert.deepEqual(asSettingsMarker(first), { sessionId: 's-patch-end', coherenceThreshold: 0.35, thresholdDurationS: 12, version: 3 });
    assert.equal(asEndMarker(second)?.sessionId, 's-patch-end');
  } finally {
    await markers.stop();
    await sub.stop();
  }
});

test("a session without a device gets its settings marker in every partition (everyPartition), as its end marker", async () => {
  const t = prefixedTopics('bare-settings-markers.');
  await bus.ensureTopics(Object.values(t).map((topic) => ({ topic, partitions: 3 })));
  const markers = new SessionEndMarkers({ bus, codec, topics: t, log: silentLogger });
  const seen: BusRecord[] = [];
  const sub = await bus.subscribe({ groupId: 'bare-settings-reader', topics: [t.heartReadings], fromBeginning: true, ephemeral: true, eachBatch: async (b) => void seen.push(...b.records) });
  await markers.start();
  try {
    const patched = { ...change('s-bare', 'active', '', 3), coherence_threshold: 0.35, threshold_duration_s: 12 };
    await bus.publish(t.sessionChanges, [{ key: patched.session_id, value: await codec.encode(Topics.sessionChanges, patched) }]);
    await waitFor('the settings markers', () => seen.length === 3, 10_000, 20);
    assert.deepEqual(seen.map((r) => r.partition).sort(), [0, 1, 2]);
    for (const r of seen) assert.deepEqual(asSettingsMarker(await decodeRecord(codec, r.value)), { sessionId: 's-bare', coherenceThreshold: 0.35, thresholdDurationS: 12, version: 3, everyPartition: true });
  } finally {
    await markers.stop();
    await sub.stop();
  }
});
