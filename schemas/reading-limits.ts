// What a plausible heart reading is: the RR and HR limits the ingest gateway enforces on what
// devices send (ingest/readings.ts) and the workers re-apply to every record they read from the bus
// (pipelines/coherence/worker.ts, pipelines/readings-sink.ts), since the bus also carries
// records from other producers, replays and older versions. One module, below both layers, so
// the two cannot drift apart.
import type { ReasonFor } from '../lib/error-catalogue.js';
import type { HeartReadingRecord } from './records.js';

export const ReadingLimits = {
  rrMinMs: 250,
  rrMaxMs: 2500,
  hrMin: 25,
  hrMax: 250,
  /**
   * How far past its own received_at a reading on the bus may be dated. An outer bound for
   * records from any producer; the gateway's own tolerance is tighter (ingest/readings.ts,
   * ATTUNE_READING_MAX_FUTURE_MS, at most the allowed lateness), and the coherence worker's
   * clock guard catches a plausible reading that would still jump its session's clock.
   */
  busMaxFutureMs: 5 * 60_000,
  /** Readings dated before this (2000-01-01) are refused. */
  minTimestampMs: Date.UTC(2000, 0, 1),
} as const;

export interface ImplausibleReading {
  reason: ReasonFor<'validation_error'>;
  /** The field, as a JSON pointer into the record. */
  field: string;
  message: string;
}

/**
 * The first implausible value of a decoded bus record, or null. Event time only: a reading's
 * future limit is measured from its own `received_at` (the gateway's clock when it accepted
 * it), never from the reader's clock, so a replay judges every record the same way.
 */
export function implausibleReading(r: HeartReadingRecord): ImplausibleReading | null {
  const L = ReadingLimits;
  const rr = r.rr_intervals_ms;
  for (let i = 0; i < rr.length; i++) {
    const v = rr[i];
    if (!(v >= L.rrMinMs && v <= L.rrMaxMs)) {
      return { reason: 'implausible_rr', field: `/rr_intervals_ms/${i}`, message: `RR ${v} ms is outside ${L.rrMinMs}–${L.rrMaxMs} ms` };
    }
  }
  if (r.hr_bpm !== null && !(r.hr_bpm >= L.hrMin && r.hr_bpm <= L.hrMax)) {
    return { reason: 'implausible_hr', field: '/hr_bpm', message: `HR ${r.hr_bpm} bpm is outside ${L.hrMin}–${L.hrMax} bpm` };
  }
  if (!Number.isFinite(r.recorded_at) || r.recorded_at < L.minTimestampMs) {
    return { reason: 'implausible_timestamp', field: '/recorded_at', message: `recorded_at ${r.recorded_at} is before the year 2000` };
  }
  if (Number.isFinite(r.received_at) && r.received_at >= L.minTimestampMs && r.recorded_at > r.received_at + L.busMaxFutureMs) {
    return {
      reason: 'implausible_timestamp',
      field: '/recorded_at',
      message: `recorded_at is ${Math.round((r.recorded_at - r.received_at) / 1000)} s after received_at (at most ${L.busMaxFutureMs / 1000} s)`,
    };
  }
  return null;
}

/**
 * Why a decoded bus value is not a heart reading at all (a CoherenceWindow or SessionEvent
 * written to the readings topic, say: it decodes, with its own schema), or null. Checked by
 * shape, not schema id, so a later version of the HeartReading schema still passes.
 */
export function notAHeartReading(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return `a ${v === null ? 'null' : typeof v}, not a HeartReading record`;
  const r = v as Record<string, unknown>;
  for (const f of ['reading_id', 'device_id', 'user_id', 'org_id'] as const) {
    if (typeof r[f] !== 'string') return `not a HeartReading record: ${f} is ${r[f] === undefined ? 'missing' : typeof r[f]}`;
  }
  for (const f of ['recorded_at', 'received_at'] as const) {
    if (typeof r[f] !== 'number') return `not a HeartReading record: ${f} is ${r[f] === undefined ? 'missing' : typeof r[f]}`;
  }
  if (!Array.isArray(r.rr_intervals_ms)) return 'not a HeartReading record: rr_intervals_ms is not an array';
  if (r.session_id !== null && typeof r.session_id !== 'string') return 'not a HeartReading record: session_id is neither a string nor null';
  if (r.hr_bpm !== null && typeof r.hr_bpm !== 'number') return 'not a HeartReading record: hr_bpm is neither a number nor null';
  return null;
}
