// Filler report: per filler its count, when it was said and how often per minute, plus totals.
// The rate divides by the duration the caller passes (the session's speaking or total time; say
// which in the API), so the same hits can be reported against either.
import { FILLER_NAMES, type FillerHit, type FillerName } from './fillers.js';
import type { TimeSpan } from './types.js';

export interface FillerStat {
  filler: FillerName;
  count: number;
  perMinute: number;
  /** Start and end of each occurrence, in transcript order. */
  timestamps: TimeSpan[];
}

export interface FillerReport {
  durationMs: number;
  totalCount: number;
  totalPerMinute: number;
  /** Fillers that occurred, most frequent first (ties in FILLER_NAMES order). */
  fillers: FillerStat[];
}

export function fillerReport(hits: readonly FillerHit[], durationMs: number): FillerReport {
  const perMinute = (n: number) => (durationMs > 0 ? (n * 60_000) / durationMs : 0);
  const byName = new Map<FillerName, TimeSpan[]>();
  for (const h of [...hits].sort((a, b) => a.startMs - b.startMs)) {
    const list = byName.get(h.filler) ?? [];
    list.push({ startMs: h.startMs, endMs: h.endMs });
    byName.set(h.filler, list);
  }
  const fillers = [...byName.entries()]
    .map(([filler, timestamps]) => ({ filler, count: timestamps.length, perMinute: perMinute(timestamps.length), timestamps }))
    .sort((a, b) => b.count - a.count || FILLER_NAMES.indexOf(a.filler) - FILLER_NAMES.indexOf(b.filler));
  return { durationMs, totalCount: hits.length, totalPerMinute: perMinute(hits.length), fillers };
}
