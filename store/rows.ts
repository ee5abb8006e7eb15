// Row shapes for inserting into the heart tables (schemas/clickhouse/0001_heart.sql) with
// BatchWriter. Timestamps are epoch milliseconds as INTEGERS (see batch-writer.ts for why):
// a fractional value such as a beat time derived from RR intervals of 812.5 ms is refused
// by the insert, so round it (Math.round). Columns that are Nullable take null. Reads return DateTime64 as 'YYYY-MM-DD hh:mm:ss.sss' strings
// and 64-bit integers as strings or numbers: convert with toEpochMs / toNumber.

/** Table names, for BatchWriter and for SQL through StoreClient.table(). */
export const Tables = {
  heartReadings: 'heart_readings',
  /** Readings the clock guard kept out of heart_readings (schemas/clickhouse/0015_heart_readings_quarantined.sql). */
  heartReadingsQuarantined: 'heart_readings_quarantined',
  coherenceWindows: 'coherence_windows',
  sessions: 'sessions',
  sessionEvents: 'session_events',
  userDailyCoherence: 'user_daily_coherence',
  /** Group (mesh) session facts (schemas/clickhouse/0007_group_windows.sql). */
  groupWindows: 'group_windows',
  groupParticipantWindows: 'group_participant_windows',
  groupDailyCoherence: 'group_daily_coherence',
  /** Group (mesh) session events but group_coherence (schemas/clickhouse/0022_group_events.sql). */
  groupEvents: 'group_events',
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

/** A reading the readings sink's clock guard quarantined (heart_readings_quarantined). */
export interface QuarantinedReadingRow {
  org_id: string;
  user_id: string;
  device_id: string;
  session_id: string;
  reading_id: string;
  recorded_at: number;
  received_at: number;
  rr_intervals_ms: number[];
  hr_bpm: number | null;
  source: 'sync' | 'live' | 'simulator';
  reason: 'future_beat';
  /** ms; null when the session's guard had no clock. */
  session_clock_at: number | null;
  source_topic: string;
  source_partition: number;
  /** Offset as a decimal string (UInt64). */
  source_offset: string;
  source_index: number;
}

export interface CoherenceWindowRow {
  session_id: string;
  user_id: string;
  org_id: string;
  device_id: string;
  window_start: number;
  window_end: number;
  valid: boolean;
  /** Why the window is not valid (pipelines/hrv INVALID_REASONS); null when valid. */
  invalid_reason: string | null;
  partial: boolean;
  coverage: number | null;
  longest_gap_ms: number | null;
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

/** A version of a session in the ClickHouse dimension (built from attune.session.changes.v1). */
export interface SessionRow {
  session_id: string;
  org_id: string;
  user_id: string;
  /** '' when the session takes any of its user's devices. */
  device_id: string;
  kind: string;
  title: string;
  status: 'active' | 'ended' | string;
  started_at: number;
  ended_at: number | null;
  coherence_threshold: number;
  threshold_duration_s: number;
  created_at: number;
  updated_at: number;
  metadata_json: string;
  version: number;
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

export interface GroupEventRow {
  event_id: string;
  org_id: string;
  group_id: string;
  type: string;
  occurred_at: number;
  payload_json: string;
  computed_at: number;
}

/** Column order for compact (JSONCompactEachRow) inserts of each row type. */
export const HeartReadingColumns: Array<keyof HeartReadingRow> = [
  'event_time', 'org_id', 'user_id', 'device_id', 'session_id', 'reading_id', 'beat_index',
  'rr_ms', 'hr_bpm', 'device_hrv_ms', 'device_coherence', 'battery_level_pct', 'source', 'received_at',
];
export const CoherenceWindowColumns: Array<keyof CoherenceWindowRow> = [
  'session_id', 'user_id', 'org_id', 'device_id', 'window_start', 'window_end', 'valid', 'invalid_reason',
  'partial', 'coverage', 'longest_gap_ms', 'coherence', 'coherence_ratio', 'peak_frequency_hz',
  'breathing_rate_bpm', 'mean_hr_bpm', 'rmssd_ms', 'sdnn_ms', 'pnn50_pct', 'beat_count', 'artifact_ratio',
  'late_beat_count', 'computed_at',
];

// Speech tables (schemas/clickhouse/0002_speech.sql). Times within a session (start_ms,
// end_ms, duration_ms) are INTEGER milliseconds from the first sample of the session's audio:
// round them (Math.round) like the beat times above, since the columns are UInt32.
// audio_started_at is the session's started_at, the same on every row of a session.

/** Table names of the speech slice, for BatchWriter and StoreClient.table(). */
export const SpeechTables = {
  speechSegments: 'speech_segments',
  speechWords: 'speech_words',
  speechFrames: 'speech_frames',
  speechPauses: 'speech_pauses',
  speechScores: 'speech_scores',
  speechFillers: 'speech_fillers',
  speechSummaries: 'speech_summaries',
  /** Transcript search's inverted index (0011), written by a materialized view on speech_segments. */
  speechTerms: 'speech_terms',
} as const;

/** What the user practises: the API's `type` field, stored as speech_sessions.kind. */
export type SpeechSessionKind = 'presentation' | 'interview' | 'conversation' | 'speech';
export type SpeechSessionStatus = 'created' | 'recording' | 'processing' | 'completed' | 'failed';
export type SpeechUploadStatus = 'queued' | 'processing' | 'completed' | 'failed';
export type WordTimingMethod = 'forced_alignment' | 'syllable_estimate';
export type SpeechPauseKind = 'natural' | 'long';

export interface SpeechSegmentRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  audio_started_at: number;
  segment_index: number;
  start_ms: number;
  end_ms: number;
  text: string;
  word_count: number;
  is_final: boolean;
  model: string;
  computed_at: number;
}

export interface SpeechWordRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  audio_started_at: number;
  segment_index: number;
  word_index: number;
  text: string;
  start_ms: number;
  end_ms: number;
  /** 0..1, null when the recogniser gave none. */
  confidence: number | null;
  is_filler: boolean;
  /** Canonical filler ('um', 'you know', ...); '' when is_filler is false. */
  filler: string;
  is_repetition: boolean;
  timing_method: WordTimingMethod;
  model: string;
  computed_at: number;
}

export interface SpeechFrameRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  audio_started_at: number;
  second_index: number;
  /** null when no frame of the second was voiced. */
  pitch_mean_hz: number | null;
  /** null when fewer than two frames were voiced. */
  pitch_sd_hz: number | null;
  /** -120 (SILENCE_DBFS) for digital silence. */
  volume_dbfs: number;
  voiced_ratio: number;
  speech_ratio: number;
  word_count: number;
  filler_count: number;
  rolling_wpm: number;
  computed_at: number;
}

export interface SpeechPauseRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  audio_started_at: number;
  start_ms: number;
  end_ms: number;
  duration_ms: number;
  kind: SpeechPauseKind;
  computed_at: number;
}

export interface SpeechScoreRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  model: string;
  /** Scores 0..100. */
  overall: number;
  clarity: number;
  pace: number;
  engagement: number;
  confidence: number;
  features_json: string;
  weights_json: string;
  factors_json: string;
  computed_at: number;
}

/** Column order (the tables' order) for compact inserts of each speech row type. */
export const SpeechSegmentColumns: Array<keyof SpeechSegmentRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'audio_started_at', 'segment_index', 'start_ms', 'end_ms', 'text', 'word_count',
  'is_final', 'model', 'computed_at',
];
export const SpeechWordColumns: Array<keyof SpeechWordRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'audio_started_at', 'segment_index', 'word_index', 'text', 'start_ms', 'end_ms',
  'confidence', 'is_filler', 'filler', 'is_repetition', 'timing_method', 'model', 'computed_at',
];
export const SpeechFrameColumns: Array<keyof SpeechFrameRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'audio_started_at', 'second_index', 'pitch_mean_hz', 'pitch_sd_hz', 'volume_dbfs',
  'voiced_ratio', 'speech_ratio', 'word_count', 'filler_count', 'rolling_wpm', 'computed_at',
];
export const SpeechPauseColumns: Array<keyof SpeechPauseRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'audio_started_at', 'start_ms', 'end_ms', 'duration_ms', 'kind', 'computed_at',
];
export const SpeechScoreColumns: Array<keyof SpeechScoreRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'model', 'overall', 'clarity', 'pace', 'engagement', 'confidence', 'features_json',
  'weights_json', 'factors_json', 'computed_at',
];

// 0003_speech_fillers_summaries.sql
export type SpeechFillerSource = 'transcript' | 'acoustic' | 'both';

export interface SpeechFillerRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  audio_started_at: number;
  start_ms: number;
  end_ms: number;
  /** Canonical filler name, or 'filled_pause' for an acoustic-only filler. */
  filler: string;
  source: SpeechFillerSource;
  segment_index: number | null;
  word_index: number | null;
  computed_at: number;
}

export interface SpeechSummaryRow {
  session_id: string;
  /** The upload or live stream whose analysis wrote the row (0012). */
  stream_id: string;
  org_id: string;
  user_id: string;
  audio_started_at: number;
  duration_ms: number;
  speech_ms: number;
  word_count: number;
  speaking_rate_wpm: number;
  articulation_rate_wpm: number;
  pause_count: number;
  long_pause_count: number;
  pause_ratio: number;
  mean_pause_ms: number | null;
  filler_count: number;
  filler_rate_per_min: number;
  repetition_count: number;
  pitch_mean_hz: number | null;
  pitch_sd_hz: number | null;
  pitch_min_hz: number | null;
  pitch_max_hz: number | null;
  pitch_variability_st: number | null;
  monotone: boolean | null;
  volume_mean_dbfs: number | null;
  volume_sd_db: number | null;
  model: string;
  computed_at: number;
}

export const SpeechFillerColumns: Array<keyof SpeechFillerRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'audio_started_at', 'start_ms', 'end_ms', 'filler', 'source', 'segment_index',
  'word_index', 'computed_at',
];
export const SpeechSummaryColumns: Array<keyof SpeechSummaryRow> = [
  'session_id', 'stream_id', 'org_id', 'user_id', 'audio_started_at', 'duration_ms', 'speech_ms', 'word_count', 'speaking_rate_wpm',
  'articulation_rate_wpm', 'pause_count', 'long_pause_count', 'pause_ratio', 'mean_pause_ms', 'filler_count',
  'filler_rate_per_min', 'repetition_count', 'pitch_mean_hz', 'pitch_sd_hz', 'pitch_min_hz', 'pitch_max_hz',
  'pitch_variability_st', 'monotone', 'volume_mean_dbfs', 'volume_sd_db', 'model', 'computed_at',
];

/** A group window of a mesh session (group_windows, 0007_group_windows.sql). */
export interface GroupWindowRow {
  org_id: string;
  group_id: string;
  window_start: number;
  window_end: number;
  participant_count: number;
  present_count: number;
  coherence: number | null;
  sync_r: number | null;
  plv: number | null;
  sync_z: number | null;
  sync_p: number | null;
  surrogate_count: number;
  breathing_sync: number | null;
  xcorr_max: number | null;
  xcorr_lag_s: number | null;
  computed_at: number;
}

/** A participant's part in a group window (group_participant_windows, 0007_group_windows.sql). */
export interface GroupParticipantWindowRow {
  org_id: string;
  group_id: string;
  participant_id: string;
  user_id: string;
  window_end: number;
  counted: boolean;
  coherence: number | null;
  contribution_weight: number;
  phase_locking: number | null;
  breathing_rate_bpm: number | null;
  breathing_sync: number | null;
  artifact_ratio: number | null;
  coverage: number | null;
  computed_at: number;
}
