// Metrics (issue 9): one prom-client registry per running Attune, never prom-client's global
// default registry, so several Attunes in one process (tests) keep their series apart. The
// HTTP layer adds request series (http/metrics.ts); the composition root (cli/metrics.ts) adds
// the bus, the sinks and the workers' running totals, read from their `stats` objects at each
// scrape, so the workers themselves stay free of prom-client.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Labels = Record<string, string | number>;
/** One series of a metric read at scrape time: its labels and its value. */
export type Sample = readonly [labels: Labels, value: number];
/** Reads a source's series at scrape time; may be async (a committed-offset fetch). */
export type SampleSource = () => Iterable<Sample> | Promise<Iterable<Sample>>;

interface ReadMetric {
  kind: 'counter' | 'gauge';
  labelNames: readonly string[];
  sources: SampleSource[];
}

export class Metrics {
  readonly registry = new Registry();
  private readonly read = new Map<string, ReadMetric>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    // Process CPU, memory, event-loop delay and GC (prom-client's standard names).
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every series. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /**
   * A counter whose values are running totals kept elsewhere (a worker's `stats`), read at each
   * scrape. Several sources may feed one name (each with its own label values, e.g. two live hubs).
   */
  counterFrom(name: string, help: string, labelNames: readonly string[], source: SampleSource): void {
    this.addSource('counter', name, help, labelNames, source);
  }

  /** A gauge read at each scrape (open sockets, queue depth, lag); several sources may feed one name. */
  gaugeFrom(name: string, help: string, labelNames: readonly string[], source: SampleSource): void {
    this.addSource('gauge', name, help, labelNames, source);
  }

  private addSource(kind: ReadMetric['kind'], name: string, help: string, labelNames: readonly string[], source: SampleSource): void {
    const known = this.read.get(name);
    if (known) {
      if (known.kind !== kind || known.labelNames.join() !== labelNames.join()) throw new Error(`metric ${name} is fed with another type or other labels`);
      known.sources.push(source);
      return;
    }
    const entry: ReadMetric = { kind, labelNames, sources: [source] };
    this.read.set(name, entry);
    // Every scrape rebuilds the series from the sources: a series whose source is gone (a
    // partition reassigned, a hub stopped) disappears instead of keeping its last value.
    const readAll = async (): Promise<Sample[]> => {
      const out: Sample[] = [];
      for (const s of entry.sources) for (const sample of await s()) out.push(sample);
      return out;
    };
    if (kind === 'counter') {
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          const samples = await readAll();
          this.reset();
          // A total of 0 still makes a series (inc by 0), so a scrape shows what is counted.
          for (const [labels, value] of samples) this.inc(labels, Math.max(0, value));
        },
      });
    } else {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          const samples = await readAll();
          this.reset();
          for (const [labels, value] of samples) this.set(labels, value);
        },
      });
    }
  }
}

/** Latency buckets, seconds: 1 ms to 30 s. */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
