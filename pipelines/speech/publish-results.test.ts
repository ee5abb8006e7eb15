// publishSpeechResults: one record per publish, in order, each retried until the bus takes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bus, OutgoingRecord } from '../../bus/types.js';
import { createCodec, decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SpeechResult } from '../../schemas/registry/schemas.js';
import { prefixedTopics } from '../../schemas/topics.js';
import { publishSpeechResults } from './publish-results.js';

function record(i: number): SpeechResult {
  return { session_id: 's1', org_id: 'o', user_id: 'u', stream_id: 'x', source: 'upload', audio_started_at: 0, computed_at: 100 + i, model: 'm', segments: [], words: [], fillers: [], pauses: [], frames: [], summary: null, scores: null, completion: null };
}

test('one record per publish, in order, keyed by session; a refused publish is retried (attempts counted per record) until taken', async () => {
  const codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  const topics = prefixedTopics('p.');
  const publishes: Array<{ topic: string; records: OutgoingRecord[] }> = [];
  let refuse = new Set([1, 2, 4]); // the 1st, 2nd and 4th calls fail
  let calls = 0;
  const bus = {
    publish: async (topic: string, records: OutgoingRecord[]) => {
      calls++;
      if (refuse.has(calls)) throw new Error(`refused ${calls}`);
      publishes.push({ topic, records });
    },
  } as unknown as Bus;
  const retries: Array<[string, number]> = [];
  await publishSpeechResults([record(0), record(1), record(2)], {
    bus,
    topics,
    codec,
    retry: async (err, attempt) => {
      retries.push([(err as Error).message, attempt]);
    },
  });
  assert.deepEqual(retries, [['refused 1', 1], ['refused 2', 2], ['refused 4', 1]]);
  assert.deepEqual(publishes.map((p) => [p.topic, p.records.length, p.records[0].key, p.records[0].timestamp]), [
    ['p.attune.speech.results.v1', 1, 's1', 100],
    ['p.attune.speech.results.v1', 1, 's1', 101],
    ['p.attune.speech.results.v1', 1, 's1', 102],
  ]);
  const back = await Promise.all(publishes.map(async (p) => decodeRecord<SpeechResult>(codec, p.records[0].value as Buffer)));
  assert.deepEqual(back.map((r) => r.computed_at), [100, 101, 102]);

  // A retry that gives up ends the publishing there.
  refuse = new Set([calls + 1]);
  publishes.length = 0;
  await assert.rejects(
    publishSpeechResults([record(5), record(6)], { bus, topics, codec, retry: async () => Promise.reject(new Error('stopping')) }),
    /stopping/,
  );
  assert.equal(publishes.length, 0);
});
