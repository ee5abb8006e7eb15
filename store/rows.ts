// Row shapes for inserting into the heart tables (schemas/clickhouse/0001_heart.sql) with
// BatchWriter. Timestamps are epoch milliseconds as INTEGERS (see batch-writer.ts for why):
// a fractional value such as a beat time derived from RR intervals of 812.5 ms is refused
// by the insert, so round it (Math.round). Columns that are Nullable take null. Reads return DateTime64 as 'YYYY-MM-DD hh:mm:ss.sss' strings
// and 64-bit integers as strings or numbers: convert with toEpochMs / toNumber.

/** Table names, for BatchWriter and for SQL through StoreClient.table(). */
export const Tables = {
  heartReadings: 'heart_readings',
  coherenceWindows: 'coherence_windows',
  sessions: 'sessions',
  devices: 'devices',
  sessionEvents: 'session_events',
  userDailyCoherence: 'user_daily_coherence',
  schemaMigrations: 'schema_migrations',
} as const;

/** Seconds each coherence window stands for in the rollup's high_coherence_s (the worker's step). */
export const COHERENCE_WINDOW_STEP_S = 5;
/** Coherence score at or above which a window counts as high coherence in user_daily_coherence. */
export const HIGH_COHERENCE_THRESHOLD = 0.5;

export interface HeartReadingRow {
  event_time: number;
  org_id: string;
  user_id: string;
  device_id: string;
  /** '' when the reading belongs to no session. */
  session_id: string;
  reading_id: string;
  beat_index: number;
  rr_ms: number | null;
  hr_bpm: number | null;
  device_hrv_ms: number | null;
  device_coherence: number | null;
  battery_level_pct: number | null;
  source: 'sync' | 'live' | 'simulator';
  received_at: number;
}

export interface CoherenceWindowRow {
  session_id: string;
  user_id: string;
  org_id: string;
  device_id: string;
  window_start: number;
  window_end: number;
  valid: boolean;
  coherence: number | null;
  coherence_ratio: number | null;
  peak_frequency_hz: number | null;
  breathing_rate_bpm: number | null;
  mean_hr_bpm: number | null;
  rmssd_ms: number | null;
  sdnn_ms: number | null;
  pnn50_pct: number | null;
  beat_count: number;
  artifact_ratio: number;
  late_beat_count: number;
  computed_at: number;
}

export interface SessionRow {
  session_id: string;
  org_id: string;
  user_id: string;
  /** '' when not yet known. */
  device_id: string;
  kind: string;
  title: string;
  status: 'active' | 'ended';
  started_at: number;
  ended_at: number | null;
  coherence_threshold: number;
  threshold_duration_s: number;
  created_at: number;
  updated_at: number;
  metadata_json: string;
}

export interface DeviceRow {
  device_id: string;
  org_id: string;
  /** '' when unassigned. */
  user_id: string;
  name: string;
  model: string;
  firmware: string;
  registered_at: number;
  updated_at: number;
  last_seen_at: number | null;
  battery_level_pct: number | null;
}

export interface SessionEventRow {
  event_id: string;
  session_id: string;
  org_id: string;
  user_id: string;
  type: string;
  occurred_at: number;
  payload_json: string;
}

/** Column order for compact (JSONCompactEachRow) inserts of each row type. */
export const HeartReadingColumns: Array<keyof HeartReadingRow> = [
  'event_time', 'org_id', 'user_id', 'device_id', 'session_id', 'reading_id', 'beat_index',
  'rr_ms', 'hr_bpm', 'device_hrv_ms', 'device_coherence', 'battery_level_pct', 'source', 'received_at',
];
export const CoherenceWindowColumns: Array<keyof CoherenceWindowRow> = [
  'session_id', 'user_id', 'org_id', 'device_id', 'window_start', 'window_end', 'valid', 'coherence',
  'coherence_ratio', 'peak_frequency_hz', 'breathing_rate_bpm', 'mean_hr_bpm', 'rmssd_ms', 'sdnn_ms',
  'pnn50_pct', 'beat_count', 'artifact_ratio', 'late_beat_count', 'computed_at',
];
