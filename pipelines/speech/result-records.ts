// A speech stream's results as records of attune.speech.results.v1 (schemas/avro/SpeechResult.avsc)
// and back as the rows of the speech_* tables. The speech worker computes, the speech results
// sink (pipelines/sinks/speech-results-sink.ts) stores (issue 10: compute workers are Kafka in,
// Kafka out). Pure functions: the worker's rows and the sink's rows are the same by construction.
import type {
  SpeechResult,
  SpeechResultCompletion,
  SpeechResultFiller,
  SpeechResultFrame,
  SpeechResultPause,
  SpeechResultSegment,
  SpeechResultWord,
} from '../../schemas/registry/schemas.js';
import type {
  SpeechFillerRow,
  SpeechFillerSource,
  SpeechFrameRow,
  SpeechPauseKind,
  SpeechPauseRow,
  SpeechScoreRow,
  SpeechSegmentRow,
  SpeechSummaryRow,
  SpeechWordRow,
  WordTimingMethod,
} from '../../store/rows.js';
import type { SpeechScores } from './scoring/index.js';
import type { SegmentTranscript } from './stream/recognition.js';
import type { SessionResults } from './stream/results.js';

/** What every record of a stream carries once. */
export interface SpeechResultHead {
  session_id: string;
  org_id: string;
  user_id: string;
  stream_id: string;
  source: 'upload' | 'live';
  audio_started_at: number;
  model: string;
}

/**
 * Estimated encoded bytes a record may hold before the next one starts. Kafka refuses records
 * over the broker's message.max.bytes (1 MB by default); an hour of audio is ~3,600 frame rows
 * and ~10,000 words, well over it in one record.
 */
export const RECORD_BUDGET_BYTES = 200_000;

function segmentOf(t: SegmentTranscript, wordCount: number): SpeechResultSegment {
  return { segment_index: t.index, start_ms: Math.round(t.startMs), end_ms: Math.round(t.endMs), text: t.text, word_count: wordCount, is_final: true, model: t.model };
}

/** The record of one final segment, published as soon as it is recognised (the transcript grows while a stream runs). */
export function segmentResultRecord(head: SpeechResultHead, t: SegmentTranscript, computedAt: number): SpeechResult {
  return { ...head, computed_at: computedAt, segments: [segmentOf(t, t.words.length)], words: [], fillers: [], pauses: [], frames: [], summary: null, scores: null, completion: null };
}

/**
 * The stream's final results, split into records under RECORD_BUDGET_BYTES; the last carries
 * the summary, the scores and `completion`. `prosody` false: no pitch or volume figures
 * (the frames keep their dBFS, which the stored timeline needs).
 */
export function finalResultRecords(
  head: SpeechResultHead,
  input: { transcripts: SegmentTranscript[]; results: SessionResults; scores: SpeechScores | null; prosody: boolean; computedAt: number; budgetBytes?: number },
): SpeechResult[] {
  const { transcripts, results: r, scores, prosody, computedAt } = input;
  const budget = input.budgetBytes ?? RECORD_BUDGET_BYTES;
  const records: SpeechResult[] = [];
  let current = emptyRecord(head, computedAt);
  let bytes = 0;
  const take = (cost: number): SpeechResult => {
    if (bytes > 0 && bytes + cost > budget) {
      records.push(current);
      current = emptyRecord(head, computedAt);
      bytes = 0;
    }
    bytes += cost;
    return current;
  };
  for (const x of r.words) {
    const w: SpeechResultWord = {
      segment_index: x.segmentIndex,
      word_index: x.wordIndex,
      text: x.text,
      start_ms: Math.round(x.startMs),
      end_ms: Math.round(Math.max(x.startMs, x.endMs)),
      confidence: x.confidence ?? null,
      is_filler: x.isFiller,
      filler: x.filler,
      is_repetition: x.isRepetition,
      timing_method: x.timingMethod,
    };
    take(32 + w.text.length + w.filler.length + w.timing_method.length).words!.push(w);
  }
  for (const f of r.fillers) {
    const row: SpeechResultFiller = {
      start_ms: Math.round(f.startMs),
      end_ms: Math.round(f.endMs),
      filler: f.filler,
      source: f.source,
      segment_index: f.wordIndex !== undefined ? (r.words[f.wordIndex]?.segmentIndex ?? null) : null,
      word_index: f.wordIndex !== undefined ? (r.words[f.wordIndex]?.wordIndex ?? null) : null,
    };
    take(24 + row.filler.length + row.source.length).fillers!.push(row);
  }
  for (const p of r.pauses) {
    const row: SpeechResultPause = { start_ms: Math.round(p.startMs), end_ms: Math.round(p.endMs), duration_ms: Math.round(p.endMs) - Math.round(p.startMs), kind: p.kind };
    take(20 + row.kind.length).pauses!.push(row);
  }
  for (const f of r.frames) {
    const row: SpeechResultFrame = {
      second_index: f.index,
      pitch_mean_hz: prosody ? f.pitchMeanHz : null,
      pitch_sd_hz: prosody ? f.pitchSdHz : null,
      volume_dbfs: f.volumeDbfs,
      voiced_ratio: f.voicedRatio,
      speech_ratio: f.speechRatio,
      word_count: f.wordCount,
      filler_count: f.fillerCount,
      rolling_wpm: f.rollingWpm,
    };
    take(64).frames!.push(row);
  }
  // The segment rows again, final, with their word counts (each was published as it came).
  const wordsPerSegment = new Map<number, number>();
  for (const x of r.words) wordsPerSegment.set(x.segmentIndex, (wordsPerSegment.get(x.segmentIndex) ?? 0) + 1);
  for (const t of transcripts) {
    const seg = segmentOf(t, wordsPerSegment.get(t.index) ?? 0);
    take(24 + seg.text.length + seg.model.length).segments!.push(seg);
  }
  const m = r.summary;
  const last = take(600);
  last.summary = {
    duration_ms: m.durationMs,
    speech_ms: Math.round(m.speechMs),
    word_count: m.wordCount,
    speaking_rate_wpm: m.speakingRateWpm,
    articulation_rate_wpm: m.articulationRateWpm,
    pause_count: m.pauseCount,
    long_pause_count: m.longPauseCount,
    pause_ratio: m.pauseRatio,
    mean_pause_ms: m.meanPauseMs === null ? null : Math.round(m.meanPauseMs),
    filler_count: m.fillerCount,
    filler_rate_per_min: m.fillerRatePerMin,
    repetition_count: m.repetitionCount,
    pitch_mean_hz: prosody ? m.pitchMeanHz : null,
    pitch_sd_hz: prosody ? m.pitchSdHz : null,
    pitch_min_hz: prosody ? m.pitchMinHz : null,
    pitch_max_hz: prosody ? m.pitchMaxHz : null,
    pitch_variability_st: prosody ? m.pitchVariabilitySt : null,
    monotone: prosody ? m.monotone : null,
    volume_mean_dbfs: prosody ? m.volumeMeanDbfs : null,
    volume_sd_db: prosody ? m.volumeSdDb : null,
  };
  last.scores = scores
    ? {
        model: scores.model,
        overall: scores.scores.overall,
        clarity: scores.scores.clarity,
        pace: scores.scores.pace,
        engagement: scores.scores.engagement,
        confidence: scores.scores.confidence,
        features_json: JSON.stringify(scores.features),
        weights_json: JSON.stringify(scores.weights ?? {}),
        factors_json: JSON.stringify(scores.factors ?? {}),
      }
    : null;
  records.push(last);
  last.completion = {
    duration_ms: m.durationMs,
    word_count: m.wordCount,
    // The overall score as the session list's `score` (1 decimal), null when not scored.
    score: scores && Number.isFinite(scores.scores.overall) ? Math.round(scores.scores.overall * 10) / 10 : null,
    record_count: records.length,
  };
  return records;
}

function emptyRecord(head: SpeechResultHead, computedAt: number): SpeechResult {
  return { ...head, computed_at: computedAt, segments: [], words: [], fillers: [], pauses: [], frames: [], summary: null, scores: null, completion: null };
}

/** Why a decoded value is not a speech result, or null. */
export function notASpeechResult(v: unknown): string | null {
  const r = v as Partial<SpeechResult> | null;
  if (!r || typeof r !== 'object') return 'not a record';
  if (typeof r.session_id !== 'string' || r.session_id === '' || typeof r.stream_id !== 'string' || r.stream_id === '') return 'not a SpeechResult: no session_id / stream_id';
  if (r.source !== 'upload' && r.source !== 'live') return `not a SpeechResult: source "${String(r.source)}"`;
  if (typeof r.audio_started_at !== 'number' || typeof r.computed_at !== 'number') return 'not a SpeechResult: no audio_started_at / computed_at';
  for (const k of ['segments', 'words', 'fillers', 'pauses', 'frames'] as const) if (!Array.isArray(r[k])) return `not a SpeechResult: no ${k}`;
  if (r.completion && !r.summary) return 'not a SpeechResult: completion without summary';
  return null;
}

export interface SpeechResultRows {
  segments: SpeechSegmentRow[];
  words: SpeechWordRow[];
  fillers: SpeechFillerRow[];
  pauses: SpeechPauseRow[];
  frames: SpeechFrameRow[];
  summaries: SpeechSummaryRow[];
  scores: SpeechScoreRow[];
}

/** The table rows a record stands for (a record notASpeechResult accepted). */
export function speechResultRows(rec: SpeechResult): SpeechResultRows {
  const base = { session_id: rec.session_id, stream_id: rec.stream_id, org_id: rec.org_id, user_id: rec.user_id, audio_started_at: rec.audio_started_at, computed_at: rec.computed_at };
  const s = rec.summary ?? null;
  const sc = rec.scores ?? null;
  return {
    segments: (rec.segments ?? []).map((x) => ({ ...base, ...x })),
    words: (rec.words ?? []).map((x) => ({ ...base, ...x, confidence: x.confidence ?? null, timing_method: x.timing_method as WordTimingMethod, model: rec.model })),
    fillers: (rec.fillers ?? []).map((x) => ({ ...base, ...x, source: x.source as SpeechFillerSource, segment_index: x.segment_index ?? null, word_index: x.word_index ?? null })),
    pauses: (rec.pauses ?? []).map((x) => ({ ...base, ...x, kind: x.kind as SpeechPauseKind })),
    frames: (rec.frames ?? []).map((x) => ({ ...base, ...x, pitch_mean_hz: x.pitch_mean_hz ?? null, pitch_sd_hz: x.pitch_sd_hz ?? null })),
    summaries: s
      ? [
          {
            ...base,
            ...s,
            mean_pause_ms: s.mean_pause_ms ?? null,
            pitch_mean_hz: s.pitch_mean_hz ?? null,
            pitch_sd_hz: s.pitch_sd_hz ?? null,
            pitch_min_hz: s.pitch_min_hz ?? null,
            pitch_max_hz: s.pitch_max_hz ?? null,
            pitch_variability_st: s.pitch_variability_st ?? null,
            monotone: s.monotone ?? null,
            volume_mean_dbfs: s.volume_mean_dbfs ?? null,
            volume_sd_db: s.volume_sd_db ?? null,
            model: rec.model,
          },
        ]
      : [],
    scores: sc ? [{ session_id: rec.session_id, stream_id: rec.stream_id, org_id: rec.org_id, user_id: rec.user_id, computed_at: rec.computed_at, ...sc }] : [],
  };
}

export type { SpeechResultCompletion };
