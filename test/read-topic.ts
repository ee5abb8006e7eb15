// Tests read what a worker or sink published: a topic from its start, under a group of their
// own, each value decoded, until what they wait for has arrived.
import type { Bus } from '../bus/types.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import { waitFor } from './attune.js';

/**
 * Reads `topic` from its start with group `groupId`, passing each decoded value to `onValue`
 * (in the order of each partition), until `until()` holds (or `timeoutMs` passes: an error
 * naming `what`); then the subscription stops.
 */
export async function readTopicUntil<T>(
  bus: Bus,
  codec: Codec,
  opts: { groupId: string; topic: string; what: string; onValue: (value: T) => void; until: () => boolean; timeoutMs?: number },
): Promise<void> {
  const sub = await bus.subscribe({
    groupId: opts.groupId,
    topics: [opts.topic],
    fromBeginning: true,
    eachBatch: async (batch) => {
      for (const rec of batch.records) {
        let value = decodeRecord<T>(codec, rec.value);
        if (value instanceof Promise) value = await value;
        opts.onValue(value);
      }
    },
  });
  try {
    await waitFor(opts.what, opts.until, opts.timeoutMs ?? 20_000, 20);
  } finally {
    await sub.stop();
  }
}
