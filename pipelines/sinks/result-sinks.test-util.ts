// Test helpers: the result sinks beside a coherence worker, so a test that reads the windows
// and events from ClickHouse gets them there as `attune all` would (the worker itself writes
// only to the bus). `countingBus` counts what is published per topic; `drained()` waits until
// the sinks have taken every window and event published so far and inserted them.
import type { Bus } from '../../bus/types.js';
import type { Codec } from '../../schemas/registry/codec.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import type { StoreClient } from '../../store/clickhouse.js';
import { silentLogger } from '../../lib/log.js';
import type { CoherenceWorker } from '../coherence/worker.js';
import { CoherenceWindowsSink, SessionEventsSink } from './result-sinks.js';

export interface CountingBus extends Bus {
  published(topic: string): number;
}

/** `bus` with a count of the records published to each topic. */
export function countingBus(bus: Bus): CountingBus {
  const counts = new Map<string, number>();
  return {
    get kind() {
      return bus.kind;
    },
    ensureTopics: (specs) => bus.ensureTopics(specs),
    publish: async (topic, records) => {
      await bus.publish(topic, records);
      counts.set(topic, (counts.get(topic) ?? 0) + records.length);
    },
    subscribe: (o) => bus.subscribe(o),
    committed: (g, t) => bus.committed(g, t),
    partitionCount: (t) => bus.partitionCount(t),
    close: () => bus.close(),
    published: (topic) => counts.get(topic) ?? 0,
  };
}

export class TestResultSinks {
  readonly windows: CoherenceWindowsSink;
  readonly events: SessionEventsSink;
  private started: Promise<void> | null = null;

  constructor(
    private readonly bus: CountingBus,
    codec: Codec,
    store: StoreClient,
    private readonly topics: TopicNames = Topics,
  ) {
    const o = { bus, codec, store, topics, log: silentLogger, writer: { maxDelayMs: 20 } };
    const tag = topics.heartReadings.replace(/[^A-Za-z0-9]/g, '-');
    this.windows = new CoherenceWindowsSink({ ...o, groupId: `test-windows-sink-${tag}` });
    this.events = new SessionEventsSink({ ...o, groupId: `test-events-sink-${tag}` });
  }

  start(): Promise<void> {
    this.started ??= Promise.all([this.windows.start(), this.events.start()]).then(() => undefined);
    return this.started;
  }

  /** Resolves once every window and event published so far is in ClickHouse (or was a duplicate). */
  async drained(timeoutMs = 30_000): Promise<void> {
    await this.start();
    const wantWindows = this.bus.published(this.topics.coherenceWindows);
    const wantEvents = this.bus.published(this.topics.sessionEvents);
    const until = Date.now() + timeoutMs;
    const seen = (s: CoherenceWindowsSink | SessionEventsSink) => s.stats.records + s.stats.deadLettered;
    while (seen(this.windows) < wantWindows || seen(this.events) < wantEvents) {
      if (Date.now() > until) throw new Error(`result sinks: ${seen(this.windows)}/${wantWindows} windows, ${seen(this.events)}/${wantEvents} events after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all([this.windows.flush(), this.events.flush()]);
  }

  async stop(): Promise<void> {
    if (this.started) await Promise.all([this.windows.stop(), this.events.stop()]);
  }
}

/** The worker's flush() also waits for the sinks to store what it published: its results are then in ClickHouse. */
export function flushingThrough<W extends CoherenceWorker>(worker: W, sinks: TestResultSinks): W {
  const flush = worker.flush.bind(worker);
  worker.flush = async () => {
    await flush();
    await sinks.drained();
  };
  return worker;
}
