// Test helper: a bus whose subscriptions drop their commits while `drop.on`, as a process that
// dies after its rows were inserted and before its commits reached the broker. A dropped commit
// rejects: the process never learned it landed (a commit that resolved is the broker's).
import type { Bus } from './types.js';

export function commitDropping(inner: Bus, drop: { on: boolean }): Bus {
  return {
    get kind() {
      return inner.kind;
    },
    ensureTopics: (specs) => inner.ensureTopics(specs),
    publish: (topic, records) => inner.publish(topic, records),
    committed: (groupId, topic) => inner.committed(groupId, topic),
    partitionCount: (topic) => inner.partitionCount(topic),
    close: () => inner.close(),
    subscribe: async (opts) => {
      const sub = await inner.subscribe(opts);
      return { commit: (topic, partition, offset) => (drop.on ? Promise.reject(new Error('commit lost (test)')) : sub.commit(topic, partition, offset)), stop: () => sub.stop() };
    },
  };
}
