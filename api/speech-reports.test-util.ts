// Analysed speech sessions in bulk for the report and search tests and benches: the sessions
// in PostgreSQL (one INSERT of arrays), their speech_summaries and speech_scores rows in
// ClickHouse (inserted in chunks). Values are generated from the session's index, so a test can
// compute what a report must say without reading it back.
import { randomUUID } from 'node:crypto';
import type { SpeechScoreRow, SpeechSummaryRow } from '../store/rows.js';
import type { SpeechTestServer } from './speech-api.test-util.js';
import { normaliseWord } from '../lib/words.js';

export interface SeededSession {
  id: string;
  orgId: string;
  userId: string;
  title: string;
  startedAt: number;
  durationMs: number;
  wordCount: number;
  wpm: number;
  pauses: number;
  /** null: analysed with fluency analysis off (the report says none was looked for). */
  fillers: number | null;
  /** null: no speech_scores row. */
  overall: number | null;
}

export interface SeedOptions {
  orgId: string;
  userId: string;
  n: number;
  /** Audio start of session i: startAt + i * stepMs (several sessions may share one with stepMs 0). */
  startAt: number;
  stepMs: number;
  /** Overrides startAt + i * stepMs. */
  startOf?: (i: number) => number;
  title?: (i: number) => string;
  /** Whether session i has scores (default: all). */
  scored?: (i: number) => boolean;
  chunk?: number;
}

export async function seedAnalysedSessions(srv: SpeechTestServer, o: SeedOptions): Promise<SeededSession[]> {
  const out: SeededSession[] = [];
  for (let i = 0; i < o.n; i++) {
    const scored = o.scored ? o.scored(i) : true;
    out.push({
      id: randomUUID(),
      orgId: o.orgId,
      userId: o.userId,
      title: o.title ? o.title(i) : `Session ${i}`,
      startedAt: o.startOf ? o.startOf(i) : o.startAt + i * o.stepMs,
      durationMs: 60_000 + (i % 240) * 1000,
      wordCount: 100 + (i % 97),
      wpm: 110 + (i % 60) + 0.5,
      pauses: i % 13,
      fillers: i % 7,
      overall: scored ? 50 + (i % 50) : null,
    });
  }
  const chunk = o.chunk ?? 5000;
  for (let k = 0; k < out.length; k += chunk) {
    const part = out.slice(k, k + chunk);
    await srv.entities.client.query(
      `INSERT INTO speech_sessions (session_id, org_id, user_id, title, kind, status, source, started_at, audio_duration_s, sample_rate_hz, created_at, updated_at)
       SELECT id, $2, $3, title, 'presentation', 'completed', 'upload', to_timestamp(started / 1000.0), dur / 1000.0, 16000, to_timestamp(started / 1000.0), to_timestamp(started / 1000.0)
       FROM unnest($1::uuid[], $4::text[], $5::float8[], $6::float8[]) AS t(id, title, started, dur)`,
      [part.map((s) => s.id), o.orgId, o.userId, part.map((s) => s.title), part.map((s) => s.startedAt), part.map((s) => s.durationMs)],
    );
    const common = (s: SeededSession) => ({ session_id: s.id, stream_id: 'seeded', org_id: s.orgId, user_id: s.userId });
    await srv.insertRows(
      'speech_summaries',
      part.map(
        (s): SpeechSummaryRow => ({
          ...common(s), audio_started_at: s.startedAt, duration_ms: s.durationMs, speech_ms: s.durationMs - 5000, word_count: s.wordCount,
          speaking_rate_wpm: s.wpm, articulation_rate_wpm: s.wpm + 10, pause_count: s.pauses, long_pause_count: Math.floor(s.pauses / 3), pause_ratio: 0.1,
          mean_pause_ms: s.pauses > 0 ? 400 : null, filler_count: s.fillers ?? 0, filler_rate_per_min: s.fillers ?? 0, repetition_count: 1, pitch_mean_hz: 150,
          pitch_sd_hz: 20, pitch_min_hz: 100, pitch_max_hz: 200, pitch_variability_st: 2.5, monotone: false, volume_mean_dbfs: -20, volume_sd_db: 3,
          model: 'moonshine-tiny', computed_at: s.startedAt + s.durationMs,
        }),
      ),
    );
    const scores = part.filter((s) => s.overall !== null);
    if (scores.length > 0) {
      await srv.insertRows(
        'speech_scores',
        scores.map(
          (s): SpeechScoreRow => ({
            ...common(s), model: 'rubric-v1', overall: s.overall!, clarity: s.overall! + 1, pace: s.overall! - 1, engagement: s.overall! + 2, confidence: s.overall! - 2,
            features_json: '{}', weights_json: '{}', factors_json: '{}', computed_at: s.startedAt + s.durationMs,
          }),
        ),
      );
    }
  }
  return out;
}

const VOCABULARY = (
  'today i want to talk about our plan for the next quarter we will focus on customers and on quality ' +
  'thank you all for coming this morning the numbers look good but we can do better with a clear message ' +
  'let me explain why this matters and what each team will do first second and finally how we measure it'
).split(' ');

/**
 * Final transcript segments (and their words, 400 ms apart) for seeded sessions: `perSession`
 * segments of 12 words drawn from a fixed vocabulary by the session's index, or the given
 * text for session ids in `texts` (its first segment). Returns the words of every segment.
 */
/**
 * Words as the recogniser writes them (the stored text is the transcript's): the first
 * capitalised, a comma after every fifth, a full stop at the end.
 */
function asWritten(words: string[]): string[] {
  return words.map((w, k) => {
    const t = k === 0 ? w[0].toUpperCase() + w.slice(1) : w;
    return k === words.length - 1 ? `${t}.` : k % 5 === 4 ? `${t},` : t;
  });
}

export async function seedTranscripts(
  srv: SpeechTestServer,
  sessions: SeededSession[],
  o: { perSession: number; texts?: Map<string, string>; words?: boolean; chunk?: number; written?: boolean },
): Promise<void> {
  const segRows: object[] = [];
  const wordRows: object[] = [];
  const flush = async (force: boolean) => {
    if (segRows.length >= (o.chunk ?? 20_000) || (force && segRows.length > 0)) await srv.insertRows('speech_segments', segRows.splice(0));
    if (wordRows.length >= (o.chunk ?? 20_000) * 4 || (force && wordRows.length > 0)) await srv.insertRows('speech_words', wordRows.splice(0));
  };
  for (let n = 0; n < sessions.length; n++) {
    const s = sessions[n];
    for (let seg = 0; seg < o.perSession; seg++) {
      const given = seg === 0 ? o.texts?.get(s.id) : undefined;
      const generated = Array.from({ length: 12 }, (_, k) => VOCABULARY[(n * 7 + seg * 13 + k * 3) % VOCABULARY.length]);
      const words = given ? given.split(' ') : o.written ? asWritten(generated) : generated;
      const start = seg * 6000;
      const common = { session_id: s.id, org_id: s.orgId, user_id: s.userId, audio_started_at: s.startedAt, segment_index: seg, computed_at: s.startedAt + 1 };
      segRows.push({ ...common, start_ms: start, end_ms: start + words.length * 400, text: words.join(' '), word_count: words.length, is_final: true, model: 'moonshine-tiny' });
      if (o.words !== false) {
        words.forEach((w, k) =>
          wordRows.push({
            // As the speech worker stores them: each word's normalised form (lib/words.ts).
            ...common, word_index: k, text: normaliseWord(w), start_ms: start + k * 400, end_ms: start + k * 400 + 300, confidence: 0.9, is_filler: false, filler: '',
            is_repetition: false, timing_method: 'forced_alignment', model: 'moonshine-tiny',
          }),
        );
      }
    }
    await flush(false);
  }
  await flush(true);
}
