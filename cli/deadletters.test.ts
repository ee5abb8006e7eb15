// printDeadLetters against a group that takes a while to be assigned its partitions, as a new
// group on Kafka does (a broker's group.initial.rebalance.delay.ms is 3 s by default, the same as
// --idle-ms's default): the idle span counts from the assignment, so the dead letters are printed.
// The Kafka test (deadletters.kafka.test.ts) runs against a broker with that delay at 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedBus } from '../bus/embedded.js';
import type { Bus, SubscribeOptions } from '../bus/types.js';
import { createCodec, type Codec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import { prefixedTopics } from '../schemas/topics.js';
import { deadLetter } from '../pipelines/dead-letter.js';
import { silentLogger } from '../lib/log.js';
import type { AttuneConfig } from '../lib/config.js';
import { printDeadLetters } from './deadletters.js';

/** `bus` whose subscriptions are assigned, and then fed, `joinMs` after subscribe returns. */
function slowJoin(bus: Bus, joinMs: number): Bus {
  return new Proxy(bus, {
    get(target, prop, receiver) {
      if (prop !== 'subscribe') return Reflect.get(target, prop, receiver);
      return async (opts: SubscribeOptions) => {
        const joined = new Promise<void>((resolve) => setTimeout(resolve, joinMs));
        return target.subscribe({
          ...opts,
          onAssignment: async (parts) => {
            await joined;
            await opts.onAssignment?.(parts);
          },
          eachBatch: async (batch) => {
            await joined;
            await opts.eachBatch(batch);
          },
        });
      };
    },
  });
}

test('dead letters are printed when the group is assigned after the idle span has passed since the subscribe', async () => {
  const bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 1 });
  try {
    const codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
    const topics = prefixedTopics('dl-join.');
    await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
    const source = { topic: topics.heartReadings, partition: 0, offset: '7', key: 'dev-1', value: Buffer.from('not avro'), headers: {}, timestamp: 0 };
    await deadLetter(bus, topics, codec, 'g1', [{ record: source, reasonCode: 'undecodable', reason: 'not avro' }], Date.UTC(2026, 11, 6));
    const lines: string[] = [];
    const printed = await printDeadLetters({ topicPrefix: 'dl-join.' } as AttuneConfig, silentLogger, { idleMs: 200, write: (l) => void lines.push(l) }, { bus: slowJoin(bus, 600), codec });
    assert.equal(printed, 1, 'the dead letter, read after the join');
    const line = JSON.parse(lines[0]);
    assert.deepEqual([line.source_offset, line.reason_code, line.consumer_group], ['7', 'undecodable', 'g1']);
  } finally {
    await bus.close();
  }
});
