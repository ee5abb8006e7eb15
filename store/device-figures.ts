// What a session's devices reported themselves, for sessions Attune computed nothing for.
//
// The coherence platform document's sync reading is `{timestamp, hrv, hr, coherence}`: the
// device's own heart rate, HRV and coherence, with no RR intervals. Attune computes its figures
// (coherence windows) from RR intervals only, so a client sending exactly the document's readings
// had sessions whose metrics were all null and whose timeline was empty (found by a walkthrough:
// 46 readings accepted, nothing shown). The readings are stored (heart_readings: hr_bpm,
// device_hrv_ms, device_coherence); this module reads them back per 5 s step of the session,
// so the session's detail and its session.completed webhook can show what the device measured,
// labelled as such, when the session has no RR intervals at all (a session with them waits for
// its windows, whatever its device also reported). Nothing is derived from them: RR intervals
// cannot be recovered from a heart rate, and a device's coherence is its own algorithm's (kept in
// its own scale).
import type { ClickHouseClient } from './clickhouse.js';
import { toNumber } from './clickhouse.js';
import { Tables } from './rows.js';

/**
 * A coherence score at or above this is "high coherence": the API's time_in_high_coherence,
 * and the daily rollup views (0006, 0007) count windows from it.
 */
export const HIGH_COHERENCE_SCORE = 0.5;

/** The step of the device timeline: the coherence windows' step, so both timelines read alike. */
export const DEVICE_STEP_MS = 5_000;

/**
 * The longest time one device reading stands for in time_in_high_coherence: a coherence score
 * describes the rhythm of about the last minute (Attune's windows are 64 s), so a reading after
 * a pause in readings does not count the whole pause.
 */
export const DEVICE_READING_HOLD_MS = 64_000;

export interface DeviceStep {
  /** End of the 5 s step, epoch ms (steps counted from the session's start). */
  endMs: number;
  readings: number;
  /** Means of the step's readings that carried the value; null when none did. */
  hrBpm: number | null;
  hrvMs: number | null;
  coherence: number | null;
}

interface StepRow {
  step: number | string;
  readings: number | string;
  hr: number | null;
  hrv: number | null;
  coherence: number | null;
}

const finiteOrNull = (v: number | null) => (v === null || !Number.isFinite(v) ? null : v);

export interface DeviceFigures {
  /** Readings of the session with RR intervals: when there are any, Attune computes the figures, not the device. */
  rrReadings: number;
  /** Steps with a device value, oldest first. */
  steps: DeviceStep[];
}

/**
 * The session's device-reported values in 5 s steps from `startedAtMs`, oldest first: each
 * reading counted once (its first beat's row; a reading with RR intervals repeats its heart
 * rate on every beat), at its stored time; and how many of its readings carried RR intervals.
 * Steps without a device value are left out.
 */
export async function deviceFigures(
  client: ClickHouseClient,
  database: string,
  s: { orgId: string; userId: string; sessionId: string; startedAtMs: number },
): Promise<DeviceFigures> {
  // floor, not intDiv: intDiv truncates toward zero, which would put a reading 3 s before the
  // session's start (the allowed lateness lets one in) into step 0.
  const rs = await client.query({
    query: `SELECT toInt64(floor((toUnixTimestamp64Milli(event_time) - {start:Int64}) / ${DEVICE_STEP_MS})) AS step,
              countIf(hr_bpm IS NOT NULL OR device_hrv_ms IS NOT NULL OR device_coherence IS NOT NULL) AS readings,
              countIf(rr_ms IS NOT NULL) AS rr_readings,
              avg(hr_bpm) AS hr, avg(device_hrv_ms) AS hrv, avg(device_coherence) AS coherence
            FROM ${database}.${Tables.heartReadings} FINAL
            WHERE org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String} AND beat_index = 0
            GROUP BY step
            ORDER BY step`,
    query_params: { org: s.orgId, user: s.userId, sid: s.sessionId, start: s.startedAtMs },
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as Array<StepRow & { rr_readings: number | string }>;
  let rrReadings = 0;
  const steps: DeviceStep[] = [];
  for (const r of rows) {
    rrReadings += toNumber(r.rr_readings);
    const readings = toNumber(r.readings);
    if (readings === 0) continue;
    steps.push({
      endMs: s.startedAtMs + (toNumber(r.step) + 1) * DEVICE_STEP_MS,
      readings,
      hrBpm: finiteOrNull(r.hr),
      hrvMs: finiteOrNull(r.hrv),
      coherence: finiteOrNull(r.coherence),
    });
  }
  return { rrReadings, steps };
}

export interface DeviceSummary {
  readings: number;
  averageHrBpm: number | null;
  averageHrvMs: number | null;
  /** In the device's own scale (ingest takes 0–100). */
  averageCoherence: number | null;
  peakCoherence: number | null;
  /**
   * Seconds whose device coherence is at or above `highAt`: each step with a coherence stands
   * for the time since the step before it with a reading (or the session's start), at least its
   * 5 s and at most DEVICE_READING_HOLD_MS. Until 12-06 every step counted 5 s, so a device
   * reporting once a minute read 50 s of 600 all high (a walkthrough). Null when a value lies
   * above 1: the device's scale is not the 0..1 score `highAt` is a point of.
   */
  highCoherenceS: number | null;
}

/** Session figures from its device steps (`startedAtMs`: the session's start): means over the steps that carried each value. */
export function summariseDeviceSteps(steps: readonly DeviceStep[], highAt: number, startedAtMs?: number): DeviceSummary {
  const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
  const values = (k: 'hrBpm' | 'hrvMs' | 'coherence') => steps.map((x) => x[k]).filter((v): v is number => v !== null);
  const coherence = values('coherence');
  return {
    readings: steps.reduce((n, x) => n + x.readings, 0),
    averageHrBpm: mean(values('hrBpm')),
    averageHrvMs: mean(values('hrvMs')),
    averageCoherence: mean(coherence),
    peakCoherence: coherence.length === 0 ? null : coherence.reduce((a, b) => (b > a ? b : a), -Infinity),
    highCoherenceS: coherence.some((c) => c > 1) ? null : highCoherenceMs(steps, highAt, startedAtMs) / 1000,
  };
}

/** The time the steps' coherence is at or above `highAt` (DeviceSummary.highCoherenceS). */
function highCoherenceMs(steps: readonly DeviceStep[], highAt: number, startedAtMs: number | undefined): number {
  let ms = 0;
  let prevEnd = startedAtMs ?? (steps.length > 0 ? steps[0].endMs - DEVICE_STEP_MS : 0);
  for (const x of steps) {
    const covered = Math.min(Math.max(x.endMs - prevEnd, DEVICE_STEP_MS), DEVICE_READING_HOLD_MS);
    if (x.coherence !== null && x.coherence >= highAt) ms += covered;
    prevEnd = Math.max(prevEnd, x.endMs);
  }
  return ms;
}
