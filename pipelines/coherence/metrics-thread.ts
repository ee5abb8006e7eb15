// Compute thread of the metrics pool: receives packed windows, answers packed metrics.
import { parentPort } from 'node:worker_threads';
import { computeWindowMetrics, createWindowPlan } from '../hrv/index.js';
import { METRICS_STRIDE, forEachPackedWindow, writeMetrics } from './metrics-codec.js';

const plan = createWindowPlan();
parentPort!.on('message', (msg: { id: number; windows: Float64Array }) => {
  const out = new Float64Array(msg.windows[0] * METRICS_STRIDE);
  forEachPackedWindow(msg.windows, (w, k) => {
    writeMetrics(out, k, computeWindowMetrics(w.beatTimesMs, w.rrMs, w.count, w.windowStartMs, w.windowEndMs, plan));
  });
  parentPort!.postMessage({ id: msg.id, metrics: out }, [out.buffer as ArrayBuffer]);
});
