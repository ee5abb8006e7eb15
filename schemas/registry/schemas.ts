// The Avro schemas of the bus topics, loaded from schemas/avro/*.avsc, and the TypeScript
// shapes of their records. timestamp-millis fields stay plain numbers (ms since the epoch):
// no logical-type hooks are registered with avsc, so it reads and writes them as longs,
// which is both what the pipeline computes with and the fastest path.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { Topics } from '../topics.js';

export type AvroSchema = avro.Schema;
export type AvroType = avro.Type;

export const avroSchemaDir = fileURLToPath(new URL('../avro/', import.meta.url));

export type IngestSource = 'sync' | 'live' | 'simulator';

export interface HeartReading {
  reading_id: string;
  device_id: string;
  user_id: string;
  org_id: string;
  session_id?: string | null;
  recorded_at: number;
  received_at: number;
  hr_bpm?: number | null;
  rr_intervals_ms?: number[];
  device_hrv_ms?: number | null;
  device_coherence?: number | null;
  battery_level_pct?: number | null;
  source?: IngestSource;
}

/** One reading of a HeartReadingBatch: a HeartReading without the fields its batch carries once. */
export interface HeartReadingBatchItem {
  reading_id: string;
  recorded_at: number;
  hr_bpm?: number | null;
  rr_intervals_ms?: number[];
  device_hrv_ms?: number | null;
  device_coherence?: number | null;
  battery_level_pct?: number | null;
}

/** Readings of one device and session in one bus record (HeartReadingBatch.avsc; schemas/reading-batches.ts). */
export interface HeartReadingBatch {
  device_id: string;
  user_id: string;
  org_id: string;
  session_id?: string | null;
  received_at: number;
  source?: IngestSource;
  readings: HeartReadingBatchItem[];
  /** The session's ended_at when the readings were accepted after its end (schema id 16 on; null otherwise). */
  session_ended_at?: number | null;
}

export interface CoherenceWindow {
  session_id: string;
  user_id: string;
  org_id: string;
  device_id: string;
  window_start: number;
  window_end: number;
  valid: boolean;
  coherence?: number | null;
  coherence_ratio?: number | null;
  peak_frequency_hz?: number | null;
  breathing_rate_bpm?: number | null;
  mean_hr_bpm?: number | null;
  rmssd_ms?: number | null;
  sdnn_ms?: number | null;
  pnn50_pct?: number | null;
  beat_count: number;
  artifact_ratio: number;
  late_beat_count?: number;
  /** Schema version 2 (defaults fill them in records written before). */
  invalid_reason?: string | null;
  partial?: boolean;
  coverage?: number | null;
  longest_gap_ms?: number | null;
}

export interface SessionChange {
  session_id: string;
  org_id: string;
  user_id: string;
  device_id: string;
  type: string;
  title: string;
  status: string;
  started_at: number;
  ended_at?: number | null;
  coherence_threshold: number;
  threshold_duration_s: number;
  metadata_json?: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface SessionEvent {
  event_id: string;
  session_id: string;
  user_id: string;
  org_id: string;
  type: string;
  occurred_at: number;
  payload_json?: string;
}

export interface DeadLetter {
  source_topic: string;
  source_partition: number;
  source_offset: string;
  key: string;
  value: Buffer;
  reason_code: string;
  reason: string;
  failed_at: number;
  consumer_group: string;
}

export type SpeechAudioSource = 'upload' | 'live';

export interface SpeechAudioFrame {
  session_id: string;
  org_id: string;
  user_id: string;
  stream_id: string;
  source: SpeechAudioSource;
  sequence: number;
  sample_offset: number;
  pcm16: Buffer;
  is_last: boolean;
  aborted_reason?: string | null;
  audio_started_at: number;
  source_sample_rate_hz: number;
  expected_samples?: number | null;
  sent_at: number;
  settings_json?: string;
}

export type SpeechEventType = 'asr:token' | 'metrics:update' | 'processing:status';

export interface SpeechEvent {
  event_id: string;
  session_id: string;
  user_id: string;
  org_id: string;
  type: SpeechEventType;
  occurred_at: number;
  payload_json?: string;
}

export interface SpeechResultSegment {
  segment_index: number;
  start_ms: number;
  end_ms: number;
  text: string;
  word_count: number;
  is_final: boolean;
  model: string;
}

export interface SpeechResultWord {
  segment_index: number;
  word_index: number;
  text: string;
  start_ms: number;
  end_ms: number;
  confidence?: number | null;
  is_filler: boolean;
  filler: string;
  is_repetition: boolean;
  timing_method: string;
}

export interface SpeechResultFiller {
  start_ms: number;
  end_ms: number;
  filler: string;
  source: string;
  segment_index?: number | null;
  word_index?: number | null;
}

export interface SpeechResultPause {
  start_ms: number;
  end_ms: number;
  duration_ms: number;
  kind: string;
}

export interface SpeechResultFrame {
  second_index: number;
  pitch_mean_hz?: number | null;
  pitch_sd_hz?: number | null;
  volume_dbfs: number;
  voiced_ratio: number;
  speech_ratio: number;
  word_count: number;
  filler_count: number;
  rolling_wpm: number;
}

export interface SpeechResultSummary {
  duration_ms: number;
  speech_ms: number;
  word_count: number;
  speaking_rate_wpm: number;
  articulation_rate_wpm: number;
  pause_count: number;
  long_pause_count: number;
  pause_ratio: number;
  mean_pause_ms?: number | null;
  filler_count: number;
  filler_rate_per_min: number;
  repetition_count: number;
  pitch_mean_hz?: number | null;
  pitch_sd_hz?: number | null;
  pitch_min_hz?: number | null;
  pitch_max_hz?: number | null;
  pitch_variability_st?: number | null;
  monotone?: boolean | null;
  volume_mean_dbfs?: number | null;
  volume_sd_db?: number | null;
}

export interface SpeechResultScores {
  model: string;
  overall: number;
  clarity: number;
  pace: number;
  engagement: number;
  confidence: number;
  features_json: string;
  weights_json: string;
  factors_json: string;
}

export interface SpeechResultCompletion {
  duration_ms: number;
  word_count: number;
  score?: number | null;
  record_count: number;
}

/** A speech stream's results on attune.speech.results.v1 (SpeechResult.avsc). */
export interface SpeechResult {
  session_id: string;
  org_id: string;
  user_id: string;
  stream_id: string;
  source: SpeechAudioSource;
  audio_started_at: number;
  computed_at: number;
  model: string;
  segments?: SpeechResultSegment[];
  words?: SpeechResultWord[];
  fillers?: SpeechResultFiller[];
  pauses?: SpeechResultPause[];
  frames?: SpeechResultFrame[];
  summary?: SpeechResultSummary | null;
  scores?: SpeechResultScores | null;
  completion?: SpeechResultCompletion | null;
}

export type MeshEventType = 'participant_joined' | 'participant_left' | 'session_ended' | 'group_coherence' | 'manifestation_event';

export interface MeshEvent {
  event_id: string;
  mesh_id: string;
  org_id: string;
  type: MeshEventType;
  occurred_at: number;
  payload_json?: string;
}

export interface GroupParticipantWindow {
  mesh_id: string;
  org_id: string;
  participant_id: string;
  user_id: string;
  session_id: string;
  device_id: string;
  window_start: number;
  window_end: number;
  valid: boolean;
  coherence?: number | null;
  coverage: number;
  artifact_ratio: number;
  breathing_rate_bpm?: number | null;
  last_beat_at?: number | null;
  sample_rate_hz: number;
  series?: number[];
  pacer_rate_bpm: number;
  coherence_threshold: number;
  threshold_duration_s: number;
  protocol?: string;
}

export interface GroupWindowParticipant {
  participant_id: string;
  user_id: string;
  counted: boolean;
  coherence?: number | null;
  contribution_weight: number;
  phase_locking?: number | null;
  breathing_rate_bpm?: number | null;
  breathing_sync?: number | null;
  artifact_ratio?: number | null;
  coverage?: number | null;
}

export interface GroupWindow {
  mesh_id: string;
  org_id: string;
  window_start: number;
  window_end: number;
  participant_count: number;
  present_count: number;
  coherence?: number | null;
  sync_r?: number | null;
  plv?: number | null;
  sync_z?: number | null;
  sync_p?: number | null;
  surrogate_count: number;
  breathing_sync?: number | null;
  xcorr_max?: number | null;
  xcorr_lag_s?: number | null;
  participants?: GroupWindowParticipant[];
}

/** The record type carried by each topic. Decoded records have every field filled in. */
export interface TopicRecords {
  [Topics.heartReadings]: HeartReading;
  [Topics.coherenceWindows]: CoherenceWindow;
  [Topics.coherenceWindowsProvisional]: CoherenceWindow;
  [Topics.sessionEvents]: SessionEvent;
  [Topics.sessionChanges]: SessionChange;
  [Topics.deadLetter]: DeadLetter;
  [Topics.speechAudio]: SpeechAudioFrame;
  [Topics.speechEvents]: SpeechEvent;
  [Topics.speechResults]: SpeechResult;
  [Topics.meshEvents]: MeshEvent;
  [Topics.groupParticipantWindows]: GroupParticipantWindow;
  [Topics.groupParticipantWindowsProvisional]: GroupParticipantWindow;
  [Topics.groupWindows]: GroupWindow;
}
export type TopicName = keyof TopicRecords;
export type AttuneRecord = TopicRecords[TopicName];

/** Which .avsc file holds the current value schema of each topic. */
export const topicSchemaFiles: Record<TopicName, string> = {
  [Topics.heartReadings]: 'HeartReading.avsc',
  [Topics.coherenceWindows]: 'CoherenceWindow.avsc',
  [Topics.coherenceWindowsProvisional]: 'CoherenceWindow.avsc',
  [Topics.sessionEvents]: 'SessionEvent.avsc',
  [Topics.sessionChanges]: 'SessionChange.avsc',
  [Topics.deadLetter]: 'DeadLetter.avsc',
  [Topics.speechAudio]: 'SpeechAudioFrame.avsc',
  [Topics.speechEvents]: 'SpeechEvent.avsc',
  [Topics.speechResults]: 'SpeechResult.avsc',
  [Topics.meshEvents]: 'MeshEvent.avsc',
  [Topics.groupParticipantWindows]: 'GroupParticipantWindow.avsc',
  [Topics.groupParticipantWindowsProvisional]: 'GroupParticipantWindow.avsc',
  [Topics.groupWindows]: 'GroupWindow.avsc',
};

/**
 * Further record types a topic carries beside its value schema, by record name. Their subject
 * follows Confluent's TopicRecordNameStrategy, `<topic>-<full record name>` (recordSubject), so
 * the topic's own `<topic>-value` subject keeps one record type and its compatibility rules;
 * a reader tells them apart by the writer schema id in each value's wire header.
 */
export interface ExtraRecords {
  HeartReadingBatch: HeartReadingBatch;
}
export type ExtraRecordName = keyof ExtraRecords;

export const extraRecordSchemas: Record<ExtraRecordName, { topic: TopicName; file: string; fullName: string }> = {
  HeartReadingBatch: { topic: Topics.heartReadings, file: 'HeartReadingBatch.avsc', fullName: 'io.attune.heart.v1.HeartReadingBatch' },
};

/** Confluent TopicRecordNameStrategy: record `fullName` on topic T lives under subject `T-fullName`. */
export const recordSubject = (topic: string, fullName: string): string => `${topic}-${fullName}`;

/** Confluent TopicNameStrategy: the value schema of topic T lives under subject `T-value`. */
export const valueSubject = (topic: string): string => `${topic}-value`;

export function loadSchemaFile(file: string, dir: string = avroSchemaDir): AvroSchema {
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as AvroSchema;
}

/** Parses a schema the way the codec needs it: unions unwrapped, no logical-type hooks. */
export function parseSchema(schema: AvroSchema): AvroType {
  return avro.Type.forSchema(schema, { wrapUnions: false });
}

/** SHA-256 over avsc's normalised schema: changes when the binary layout can change. */
export function schemaFingerprint(schema: AvroSchema): string {
  return parseSchema(schema).fingerprint('sha256').toString('hex');
}
