// Runs window metrics on worker threads. The maths is pure and costs ~30 µs a window, a
// large share of a worker's CPU; on a machine with a spare core, computing it off the
// event loop leaves that loop to the bus, the store writers and (in `attune all`) HTTP.
// With `threads: 0` it computes inline, with the same results.
import { Worker } from 'node:worker_threads';
import { computeWindowMetrics, createWindowPlan, type WindowMetrics, type WindowPlan } from '../hrv/index.js';
import type { Logger } from '../../lib/log.js';
import { packWindows, readMetrics, type WindowInput } from './metrics-codec.js';

interface Pending {
  resolve: (m: Float64Array) => void;
  reject: (err: unknown) => void;
}

/**
 * Compiled, the thread's .js sits beside this file. Run from sources (tests, benchmarks),
 * the thread registers tsx itself first: loader flags are not inherited by workers here.
 */
function spawnMetricsThread(): Worker {
  const here = new URL(import.meta.url);
  if (!here.pathname.endsWith('.ts')) return new Worker(new URL('./metrics-thread.js', here));
  const tsx = import.meta.resolve('tsx/esm/api');
  const thread = new URL('./metrics-thread.ts', here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(thread)}); })`;
  return new Worker(boot, { eval: true });
}

class ComputeThread {
  private worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  constructor(private readonly log: Logger) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = spawnMetricsThread();
    w.on('message', (msg: { id: number; metrics: Float64Array }) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      // An idle thread must not keep the process alive; a busy one must (see compute()).
      if (this.pending.size === 0) w.unref();
      p?.resolve(msg.metrics);
    });
    // A crash fires 'error' and then 'exit': only the first event of the current thread counts.
    w.on('error', (err) => {
      if (w === this.worker) this.fail(err);
    });
    w.on('exit', (code) => {
      if (w === this.worker && !this.closed) this.fail(new Error(`metrics thread exited with code ${code}`));
    });
    w.unref();
    return w;
  }

  /** A crashed thread fails what it held (the batch is redelivered) and is replaced. */
  private fail(err: unknown): void {
    this.log.error({ err }, 'metrics thread failed; restarting it');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    const dead = this.worker;
    if (!this.closed) this.worker = this.spawn();
    void dead.terminate().catch(() => undefined);
  }

  compute(packed: Float64Array): Promise<Float64Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, windows: packed }, [packed.buffer as ArrayBuffer]);
    });
  }

  get load(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}

export class MetricsPool {
  private readonly threads: ComputeThread[] = [];
  private readonly plan: WindowPlan | null;

  constructor(opts: { threads: number; log: Logger }) {
    for (let i = 0; i < opts.threads; i++) this.threads.push(new ComputeThread(opts.log));
    this.plan = opts.threads === 0 ? createWindowPlan() : null;
  }

  /** Metrics of each window, in order. */
  async compute(windows: WindowInput[]): Promise<WindowMetrics[]> {
    if (windows.length === 0) return [];
    if (this.plan) return windows.map((w) => computeWindowMetrics(w.beatTimesMs, w.rrMs, w.count, w.windowStartMs, w.windowEndMs, this.plan!));
    const thread = this.threads.reduce((a, b) => (b.load < a.load ? b : a));
    const out = await thread.compute(packWindows(windows));
    return windows.map((_, i) => readMetrics(out, i));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
