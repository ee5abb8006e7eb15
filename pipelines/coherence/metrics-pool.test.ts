import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../lib/log.js';
import { computeWindowMetrics, createWindowPlan } from '../hrv/index.js';
import { METRICS_STRIDE, forEachPackedWindow, packWindows, readMetrics, writeMetrics, type WindowInput } from './metrics-codec.js';
import { MetricsPool } from './metrics-pool.js';

/** Windows of an RSA-modulated RR series, some too short to be valid. */
function windows(): WindowInput[] {
  const out: WindowInput[] = [];
  for (let k = 0; k < 20; k++) {
    const n = k % 5 === 0 ? 12 : 60 + k;
    const t = new Float64Array(n);
    const rr = new Float64Array(n);
    let x = k * 5000;
    for (let i = 0; i < n; i++) {
      rr[i] = 950 + 70 * Math.sin((2 * Math.PI * 0.1 * x) / 1000) + ((i * 7919) % 13) - 6;
      x += rr[i];
      t[i] = x;
    }
    out.push({ beatTimesMs: t, rrMs: rr, count: n, windowStartMs: t[n - 1] + 1 - 64_000, windowEndMs: t[n - 1] + 1 });
  }
  return out;
}

test('packed windows unpack to the same beats', () => {
  const ws = windows();
  const seen: WindowInput[] = [];
  forEachPackedWindow(packWindows(ws), (w) => seen.push({ ...w, beatTimesMs: w.beatTimesMs.slice(), rrMs: w.rrMs.slice() }));
  assert.equal(seen.length, ws.length);
  seen.forEach((w, i) => {
    assert.equal(w.count, ws[i].count);
    assert.equal(w.windowStartMs, ws[i].windowStartMs);
    assert.equal(w.windowEndMs, ws[i].windowEndMs);
    assert.deepEqual([...w.beatTimesMs], [...ws[i].beatTimesMs]);
    assert.deepEqual([...w.rrMs], [...ws[i].rrMs]);
  });
});

test('metrics survive packing, nulls and invalid reasons included', () => {
  const plan = createWindowPlan();
  const ws = windows();
  const buf = new Float64Array(ws.length * METRICS_STRIDE);
  const direct = ws.map((w) => computeWindowMetrics(w.beatTimesMs, w.rrMs, w.count, w.windowStartMs, w.windowEndMs, plan));
  direct.forEach((m, i) => writeMetrics(buf, i, m));
  assert.ok(direct.some((m) => !m.valid) && direct.some((m) => m.valid), 'the sample has valid and invalid windows');
  direct.forEach((m, i) => assert.deepEqual(readMetrics(buf, i), m));
});

test('a compute thread gives exactly what inline computation gives', async () => {
  const threaded = new MetricsPool({ threads: 1, log: silentLogger });
  const inline = new MetricsPool({ threads: 0, log: silentLogger });
  try {
    const [a, b] = await Promise.all([threaded.compute(windows()), inline.compute(windows())]);
    assert.equal(a.length, 20);
    assert.deepEqual(a, b);
    assert.deepEqual(await threaded.compute([]), []);
  } finally {
    await threaded.close();
    await inline.close();
  }
});
