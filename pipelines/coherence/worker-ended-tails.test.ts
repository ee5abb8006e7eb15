// Sessions ended while their beats stopped short of the end (the sensor taken off before the end
// call) keep their tail (04c8edb), which holds the partition's commit before their end markers
// for up to sessionIdleEndMs of event time; their ended checkpoints are due again only when
// they change. Until the review of 12-06 every batch of the partition rewrote every one of them
// (the same checkpoint): 20 such sessions and a live one streaming 67 readings wrote 1,361
// checkpoint records.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { prefixedTopics, internalTopic } from '../../schemas/topics.js';
import { createCodec, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import { DevicesRepository, SessionsRepository } from '../../store/postgres/sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { readingId, type HeartReadingRecord } from '../../schemas/records.js';
import { silentLogger } from '../../lib/log.js';
import { rsaReadings, waitFor } from '../../test/attune.js';
import { publishReadings } from '../../ingest/publisher.js';
import { CoherenceWorker } from './worker.js';
import { endMarkerRecord } from './end-markers.js';
import { countingBus, type CountingBus } from '../sinks/result-sinks.test-util.js';

let bus: CountingBus;
let codec: Codec;
let db: TestDatabase;

before(async () => {
  bus = countingBus(await createEmbeddedBus({ log: silentLogger, defaultPartitions: 1 }));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  db = await entityTestDatabase();
});

after(async () => {
  await bus.close();
  await db.dispose();
});

const start = Date.UTC(2026, 10, 1, 9);
const rec = (sessionId: string, deviceId: string, r: { timestamp: string; rr_intervals_ms: number[] }): HeartReadingRecord => ({
  reading_id: readingId('o1', deviceId, Date.parse(r.timestamp)),
  device_id: deviceId,
  user_id: 'u1',
  org_id: 'o1',
  session_id: sessionId,
  recorded_at: Date.parse(r.timestamp),
  received_at: start,
  hr_bpm: null,
  rr_intervals_ms: r.rr_intervals_ms,
  device_hrv_ms: null,
  device_coherence: null,
  battery_level_pct: null,
  source: 'sync',
});

test('ended sessions whose tails hold the commit are not checkpointed again with every batch of their partition', async () => {
  const sessions = new SessionsRepository(db.client);
  const devices = new DevicesRepository(db.client);
  const topics = prefixedTopics('ended-tails.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
  const w = new CoherenceWorker({ bus, topics, codec, sessions, log: silentLogger, groupId: 'ended-tails' });
  await w.start();
  try {
    const N = 20;
    for (let i = 0; i < N; i++) {
      const dev = `short-${i}`;
      await devices.register({ id: dev, orgId: 'o1', userId: 'u1' });
      const s = await sessions.create({ orgId: 'o1', userId: 'u1', deviceId: dev, startedAt: start });
      const rs = rsaReadings({ startMs: start + 250, durationS: 60, breathHz: 0.1, seed: i + 1 });
      await publishReadings(bus, topics, codec, rs.map((r) => rec(s.id, dev, r)), 25);
      // Ended a minute after its last beat: its tail is kept.
      const last = Math.max(...rs.map((r) => Date.parse(r.timestamp)));
      await bus.publish(topics.heartReadings, [await endMarkerRecord(codec, { sessionId: s.id, deviceId: dev, userId: 'u1', orgId: 'o1', endedAtMs: last + 60_000 })]);
    }
    await waitFor('the ends read', () => w.stats.endMarkers === N && w.stats.endedSessions === N, 30_000, 20);
    await w.flush();
    const checkpointTopic = internalTopic('coherenceCheckpoints', topics);
    const checkpointsBefore = bus.published(checkpointTopic);
    const windowsBefore = w.stats.windows;
    // Another session streams, one reading a batch, within the idle-end span of the others' last beats.
    await devices.register({ id: 'live', orgId: 'o1', userId: 'u1' });
    const live = await sessions.create({ orgId: 'o1', userId: 'u1', deviceId: 'live', startedAt: start });
    const rs = rsaReadings({ startMs: start + 250, durationS: 120, breathHz: 0.1, seed: 99 });
    for (const r of rs) {
      await publishReadings(bus, topics, codec, [rec(live.id, 'live', r)], 25);
      await w.flush();
    }
    const liveWindows = w.stats.windows - windowsBefore;
    assert.ok(liveWindows > 10, `${liveWindows} windows of the live session`);
    // The live session's checkpoint with each batch that published its windows; the ended ones not again.
    const written = bus.published(checkpointTopic) - checkpointsBefore;
    assert.ok(written <= liveWindows, `${written} checkpoint records for ${rs.length} batches, ${liveWindows} windows published`);
  } finally {
    await w.stop();
  }
});
