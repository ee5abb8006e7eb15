// Packs closed windows and their metrics into flat Float64Arrays, so that handing a batch of
// windows to a compute thread is one transferable buffer each way instead of a structured
// clone of thousands of small objects. Pure.
import { INVALID_REASONS, type WindowMetrics } from '../hrv/index.js';

export interface WindowInput {
  beatTimesMs: Float64Array;
  rrMs: Float64Array;
  count: number;
  windowStartMs: number;
  windowEndMs: number;
}

const REASONS: WindowMetrics['invalidReason'][] = [null, ...INVALID_REASONS];
export const METRICS_STRIDE = 15;

/** [n, then per window: count, start, end, times…, rr…] */
export function packWindows(windows: WindowInput[]): Float64Array {
  let size = 1;
  for (const w of windows) size += 3 + 2 * w.count;
  const out = new Float64Array(size);
  out[0] = windows.length;
  let i = 1;
  for (const w of windows) {
    out[i++] = w.count;
    out[i++] = w.windowStartMs;
    out[i++] = w.windowEndMs;
    out.set(w.beatTimesMs.subarray(0, w.count), i);
    i += w.count;
    out.set(w.rrMs.subarray(0, w.count), i);
    i += w.count;
  }
  return out;
}

/** Calls `fn` for each packed window with views into the buffer (no copies). */
export function forEachPackedWindow(buf: Float64Array, fn: (w: WindowInput, index: number) => void): void {
  const n = buf[0];
  let i = 1;
  for (let k = 0; k < n; k++) {
    const count = buf[i];
    const windowStartMs = buf[i + 1];
    const windowEndMs = buf[i + 2];
    i += 3;
    const beatTimesMs = buf.subarray(i, i + count);
    i += count;
    const rrMs = buf.subarray(i, i + count);
    i += count;
    fn({ beatTimesMs, rrMs, count, windowStartMs, windowEndMs }, k);
  }
}

const nn = (v: number | null) => (v === null ? NaN : v);
const back = (v: number) => (Number.isNaN(v) ? null : v);

export function writeMetrics(out: Float64Array, index: number, m: WindowMetrics): void {
  const o = index * METRICS_STRIDE;
  out[o] = m.valid ? 1 : 0;
  out[o + 1] = nn(m.coherence);
  out[o + 2] = nn(m.coherenceRatio);
  out[o + 3] = nn(m.peakFrequencyHz);
  out[o + 4] = nn(m.breathingRateBpm);
  out[o + 5] = nn(m.meanHrBpm);
  out[o + 6] = nn(m.rmssdMs);
  out[o + 7] = nn(m.sdnnMs);
  out[o + 8] = nn(m.pnn50Pct);
  out[o + 9] = m.beatCount;
  out[o + 10] = m.artifactRatio;
  out[o + 11] = REASONS.indexOf(m.invalidReason);
  out[o + 12] = m.coverage;
  out[o + 13] = m.longestGapMs;
  out[o + 14] = m.partial ? 1 : 0;
}

export function readMetrics(buf: Float64Array, index: number): WindowMetrics {
  const o = index * METRICS_STRIDE;
  return {
    valid: buf[o] === 1,
    coherence: back(buf[o + 1]),
    coherenceRatio: back(buf[o + 2]),
    peakFrequencyHz: back(buf[o + 3]),
    breathingRateBpm: back(buf[o + 4]),
    meanHrBpm: back(buf[o + 5]),
    rmssdMs: back(buf[o + 6]),
    sdnnMs: back(buf[o + 7]),
    pnn50Pct: back(buf[o + 8]),
    beatCount: buf[o + 9],
    artifactRatio: buf[o + 10],
    invalidReason: REASONS[buf[o + 11]] ?? null,
    coverage: buf[o + 12],
    longestGapMs: buf[o + 13],
    partial: buf[o + 14] === 1,
  };
}
