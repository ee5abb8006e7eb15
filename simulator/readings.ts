// Beats → the readings a device uploads: one reading per second (or less) of beats,
// stamped with its last beat, the way straps report.
import type { Beat } from './rr-generator.js';

/** One reading in the body of `POST /v1/devices/{device_id}/sync`. */
export interface SyncReading {
  /** ISO-8601 with milliseconds: the instant of the last beat in the reading. */
  timestamp: string;
  /** 60000 / mean RR of the reading's beats, one decimal. */
  hr: number;
  rr_intervals_ms: number[];
  battery_level: number;
}

/** Longest stretch of beats one reading covers. */
export const readingSpanMs = 1000;

/** A battery that drains linearly in event time. */
export class Battery {
  constructor(
    private readonly startPct: number,
    private readonly startTimeMs: number,
    private readonly drainPctPerHour = 5,
  ) {}
  /** Percent at `timeMs`, one decimal, never below 1. */
  levelAt(timeMs: number): number {
    const pct = this.startPct - (this.drainPctPerHour * (timeMs - this.startTimeMs)) / 3_600_000;
    return Math.max(1, Math.round(pct * 10) / 10);
  }
}

/**
 * The readings for the beats of (fromMs, toMs]: the interval is cut into equal pieces of
 * at most `readingSpanMs`, and every piece with beats becomes one reading (a piece
 * without beats, during a contact loss, gives none). `beats` must lie in (fromMs, toMs],
 * in order.
 */
export function readingsFor(beats: readonly Beat[], fromMs: number, toMs: number, battery: Battery): SyncReading[] {
  const pieces = Math.max(1, Math.ceil((toMs - fromMs) / readingSpanMs));
  const span = (toMs - fromMs) / pieces;
  const out: SyncReading[] = [];
  let i = 0;
  for (let p = 1; p <= pieces; p++) {
    const end = p === pieces ? toMs : fromMs + p * span;
    const rr: number[] = [];
    let last = 0;
    while (i < beats.length && beats[i].timeMs <= end) {
      rr.push(beats[i].rrMs);
      last = beats[i].timeMs;
      i++;
    }
    if (rr.length === 0) continue;
    const meanRr = rr.reduce((s, x) => s + x, 0) / rr.length;
    out.push({
      timestamp: new Date(last).toISOString(),
      hr: Math.round(600_000 / meanRr) / 10,
      rr_intervals_ms: rr,
      battery_level: battery.levelAt(last),
    });
  }
  return out;
}
