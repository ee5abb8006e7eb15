import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixedTopics, Topics } from '../schemas/topics.js';
import { groupIdFor, topicPrefixOf } from './group-id.js';
import { COHERENCE_GROUP, CoherenceWorker } from './coherence/worker.js';
import { READINGS_SINK_GROUP, ReadingsSink } from './readings-sink.js';
import { silentLogger } from '../lib/log.js';
import type { Bus } from '../bus/types.js';
import type { Codec } from '../schemas/registry/codec.js';
import type { StoreClient } from '../store/clickhouse.js';

test('group ids carry the topic prefix, and are the plain names without one', () => {
  assert.equal(topicPrefixOf(Topics), '');
  assert.equal(topicPrefixOf(prefixedTopics('test-1a2b.')), 'test-1a2b.');
  assert.equal(groupIdFor(COHERENCE_GROUP, Topics), COHERENCE_GROUP);
  assert.equal(groupIdFor(COHERENCE_GROUP), COHERENCE_GROUP);
  assert.equal(groupIdFor(COHERENCE_GROUP, prefixedTopics('eu.')), `eu.${COHERENCE_GROUP}`);
  assert.notEqual(groupIdFor(READINGS_SINK_GROUP, prefixedTopics('a.')), groupIdFor(READINGS_SINK_GROUP, prefixedTopics('b.')));
});

test('the coherence worker and the readings sink join the group of their deployment', async () => {
  // Constructing subscribes nothing: the stand-ins are never called.
  const deps = { bus: {} as Bus, codec: {} as Codec, store: { table: (t: string) => t } as unknown as StoreClient, log: silentLogger };
  const topics = prefixedTopics('staging.');
  const worker = new CoherenceWorker({ ...deps, topics, sessions: {} as never, computeThreads: 0 });
  const sink = new ReadingsSink({ ...deps, topics });
  assert.equal(worker.groupId, `staging.${COHERENCE_GROUP}`);
  assert.equal(sink.groupId, `staging.${READINGS_SINK_GROUP}`);
  assert.equal(new ReadingsSink(deps).groupId, READINGS_SINK_GROUP);
  assert.equal(new CoherenceWorker({ ...deps, topics, sessions: {} as never, computeThreads: 0, groupId: 'mine' }).groupId, 'mine');
  await worker.stop();
});
