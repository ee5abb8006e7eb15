// Results of a speech session: transcript (words with times), per-second metrics aggregated to
// coarser buckets, fluency (rates, pauses, fillers, repetitions, pitch, volume) and scores.
// Everything is read from ClickHouse with FINAL (the latest version of each row) through the
// session, so the tenant check is the session's.
//
// Before the analysis has finished: transcript and metrics return what is stored so far (a
// live session's partial transcript) with the session's status, so a client can poll them;
// fluency and scores exist only once the session is analysed and are a 404 not_found until
// then, with a message saying why (no audio yet, still processing, or processing failed).
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { iso } from '../lib/time.js';
import { toNumber } from '../store/clickhouse.js';
import { SpeechTables } from '../store/rows.js';
import { Scopes } from '../lib/principal.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import type { SpeechSession } from '../store/postgres/speech-sessions-repo.js';
import { SPEECH_SESSION_STATUSES, readSpeechSummary, roundTo, speechSessionJson, speechSessionJsonSchema, speechSummarySchema, visibleSpeechSession } from './speech-sessions.js';
import { docEnvelopeSchema, openObject, withDocEnvelope } from '../http/doc-envelope.js';
import { docFluency, docInlineMetrics, docInlineScores, docMetrics, docScores, docSession, docSettingOn, docTranscript, sessionUrls, type MetricsIn } from './speech-doc.js';

/** Seconds per bucket of each metrics granularity. */
export const METRICS_GRANULARITY_S = { second: 1, '5second': 5, '10second': 10, minute: 60 } as const;
export type MetricsGranularity = keyof typeof METRICS_GRANULARITY_S;

type Int = number | string;
const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;
const statusSchema = { type: 'string', enum: [...SPEECH_SESSION_STATUSES], description: "The session's status when read: results are partial unless completed." } as const;
const notYet404 = { ...errorBodySchema, description: 'No such session (or not yours), or (fluency, scores) not computed yet: code not_found.' } as const;

/** Why a session has no fluency or scores yet, for the 404's message. */
function notComputedYet(what: string, s: SpeechSession): AttuneError {
  const setting = what === 'fluency' ? 'enableFluencyAnalysis' : what === 'scores' ? 'enableScoring' : null;
  if (setting && !docSettingOn(s.settings, setting)) {
    return new AttuneError('not_found', `no ${what}: the session's settings.${setting} is false`, [{ reason: 'not_computed', status: s.status, field: `settings.${setting}` }]);
  }
  const why =
    s.status === 'created' ? 'session has no audio yet'
    : s.status === 'recording' ? 'session is recording'
    : s.status === 'processing' ? 'session is processing'
    : s.status === 'failed' ? 'session processing failed'
    : 'none were stored for this session';
  return new AttuneError('not_found', `no ${what} yet: ${why}`, [{ reason: 'not_computed', status: s.status }]);
}

async function rows<T>(ctx: AppContext, sql: string, s: SpeechSession, extra: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await clickhouseOf(ctx).query({ query: sql, query_params: { org: s.orgId, user: s.userId, sid: s.id, ...extra }, format: 'JSONEachRow' });
  return (await rs.json()) as T[];
}

/** The WHERE clause of every per-session read: ORDER BY starts with (org_id, user_id, session_id). */
const OF_SESSION = 'org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String}';

// ---------------------------------------------------------------- transcript

const wordSchema = {
  type: 'object',
  properties: {
    text: { type: 'string' },
    start_ms: { type: 'integer', description: 'From the first sample of the session audio.' },
    end_ms: { type: 'integer' },
    confidence: { type: ['number', 'null'], description: 'Recogniser confidence 0..1.' },
    is_filler: { type: 'boolean' },
    filler: { type: ['string', 'null'], description: 'Canonical filler (um, you know, ...) when is_filler.' },
    is_repetition: { type: 'boolean' },
    timing_method: { type: 'string', enum: ['forced_alignment', 'syllable_estimate'] },
    segment_index: { type: 'integer' },
  },
} as const;

const segmentSchema = {
  type: 'object',
  properties: {
    index: { type: 'integer' },
    start_ms: { type: 'integer' },
    end_ms: { type: 'integer' },
    text: { type: 'string' },
    is_final: { type: 'boolean', description: 'False for a live segment still open (partial text).' },
  },
} as const;

interface SegmentRow {
  segment_index: Int;
  start_ms: Int;
  end_ms: Int;
  text: string;
  is_final: boolean | number;
  model: string;
}

interface WordRow {
  segment_index: Int;
  text: string;
  start_ms: Int;
  end_ms: Int;
  confidence: number | null;
  is_filler: boolean | number;
  filler: string;
  is_repetition: boolean | number;
  timing_method: string;
}

export async function readTranscript(ctx: AppContext, s: SpeechSession) {
  const [segments, words] = await Promise.all([
    rows<SegmentRow>(
      ctx,
      `SELECT segment_index, start_ms, end_ms, text, is_final, model FROM ${ctx.database}.${SpeechTables.speechSegments} FINAL
       WHERE ${OF_SESSION} ORDER BY segment_index`,
      s,
    ),
    rows<WordRow>(
      ctx,
      `SELECT segment_index, text, start_ms, end_ms, confidence, is_filler, filler, is_repetition, timing_method
       FROM ${ctx.database}.${SpeechTables.speechWords} FINAL
       WHERE ${OF_SESSION} ORDER BY segment_index, word_index`,
      s,
    ),
  ]);
  const finalText = segments
    .filter((g) => Boolean(g.is_final))
    .map((g) => g.text.trim())
    .filter((t) => t.length > 0);
  return {
    session_id: s.id,
    status: s.status,
    text: finalText.join(' '),
    // Segments of one session share a model unless it was re-run with another: the latest segment's wins.
    model: segments.length === 0 ? null : segments[segments.length - 1].model,
    words: words.map((w) => ({
      text: w.text,
      start_ms: toNumber(w.start_ms),
      end_ms: toNumber(w.end_ms),
      confidence: roundTo(w.confidence, 4),
      is_filler: Boolean(w.is_filler),
      filler: w.is_filler && w.filler ? w.filler : null,
      is_repetition: Boolean(w.is_repetition),
      timing_method: w.timing_method,
      segment_index: toNumber(w.segment_index),
    })),
    segments: segments.map((g) => ({
      index: toNumber(g.segment_index),
      start_ms: toNumber(g.start_ms),
      end_ms: toNumber(g.end_ms),
      text: g.text,
      is_final: Boolean(g.is_final),
    })),
  };
}

// ---------------------------------------------------------------- metrics

const bucketSchema = {
  type: 'object',
  properties: {
    start_ms: { type: 'integer', description: 'From the first sample of the session audio.' },
    end_ms: { type: 'integer', description: 'End of the last second of the bucket that has data.' },
    pitch_mean_hz: { type: ['number', 'null'], description: "Mean f0, each second weighted by its voiced_ratio; null when nothing was voiced." },
    pitch_sd_hz: { type: ['number', 'null'], description: 'Pooled standard deviation of f0 over the voiced frames of the bucket.' },
    volume_dbfs: { type: 'number', description: 'Energy mean of the seconds: 10·log10(mean(10^(dB/10))).' },
    voiced_ratio: { type: 'number' },
    speech_ratio: { type: 'number', description: 'Share of the bucket marked as speech by voice activity detection.' },
    word_count: { type: 'integer' },
    filler_count: { type: ['integer', 'null'], description: 'Null when the session was analysed with enableFluencyAnalysis false (fillers not looked for).' },
    wpm: { type: 'number', description: 'Words starting in the bucket per minute of the bucket.' },
    rolling_wpm: { type: 'number', description: 'Rolling 30 s words per minute at the last second of the bucket.' },
  },
} as const;

interface BucketRow {
  bucket: Int;
  first_second: Int;
  last_second: Int;
  pitch_mean_hz: number | null;
  pitch_sd_hz: number | null;
  volume_dbfs: number;
  voiced_ratio: number;
  speech_ratio: number;
  word_count: Int;
  filler_count: Int;
  rolling_wpm: number;
}

export async function readMetrics(ctx: AppContext, s: SpeechSession, granularity: MetricsGranularity) {
  const n = METRICS_GRANULARITY_S[granularity];
  // Pitch pooled over the voiced frames of the bucket, each second weighted by its share of
  // voiced frames: mean = Σw·m / Σw; variance = Σw·(sd² + m²) / Σw − mean² (a second with one
  // voiced frame has no sd and adds 0). No sd when at most one second was voiced and it had none.
  // Inner aliases differ from the column names: ClickHouse would otherwise read an alias such
  // as voiced_ratio inside the other aggregates.
  const result = await rows<BucketRow>(
    ctx,
    `SELECT bucket, first_second, last_second,
        if(voiced_w > 0, pitch_wsum / voiced_w, NULL) AS pitch_mean_hz,
        if(voiced_w > 0 AND (sd_seconds > 0 OR pitch_seconds > 1),
           sqrt(greatest(pitch_sq_wsum / voiced_w - pow(pitch_wsum / voiced_w, 2), 0)), NULL) AS pitch_sd_hz,
        energy_dbfs AS volume_dbfs, mean_voiced AS voiced_ratio, mean_speech AS speech_ratio, words AS word_count,
        fillers AS filler_count, last_rolling_wpm AS rolling_wpm
     FROM (
       SELECT intDiv(second_index, {n:UInt32}) AS bucket,
         min(second_index) AS first_second,
         max(second_index) AS last_second,
         sumIf(toFloat64(voiced_ratio), pitch_mean_hz IS NOT NULL) AS voiced_w,
         sumIf(toFloat64(voiced_ratio) * assumeNotNull(pitch_mean_hz), pitch_mean_hz IS NOT NULL) AS pitch_wsum,
         sumIf(toFloat64(voiced_ratio) * (pow(ifNull(pitch_sd_hz, 0), 2) + pow(assumeNotNull(pitch_mean_hz), 2)), pitch_mean_hz IS NOT NULL) AS pitch_sq_wsum,
         countIf(pitch_mean_hz IS NOT NULL) AS pitch_seconds,
         countIf(pitch_sd_hz IS NOT NULL) AS sd_seconds,
         10 * log10(avg(pow(10, toFloat64(volume_dbfs) / 10))) AS energy_dbfs,
         avg(voiced_ratio) AS mean_voiced,
         avg(speech_ratio) AS mean_speech,
         sum(word_count) AS words,
         sum(filler_count) AS fillers,
         argMax(rolling_wpm, second_index) AS last_rolling_wpm
       FROM ${ctx.database}.${SpeechTables.speechFrames} FINAL
       WHERE ${OF_SESSION}
       GROUP BY bucket
     )
     ORDER BY bucket`,
    s,
    { n },
  );
  const fluency = docSettingOn(s.settings, 'enableFluencyAnalysis');
  return {
    session_id: s.id,
    status: s.status,
    granularity,
    bucket_s: n,
    buckets: result.map((r) => {
      const startMs = toNumber(r.bucket) * n * 1000;
      const endMs = (toNumber(r.last_second) + 1) * 1000;
      const words = toNumber(r.word_count);
      return {
        start_ms: startMs,
        end_ms: endMs,
        pitch_mean_hz: roundTo(r.pitch_mean_hz, 2),
        pitch_sd_hz: roundTo(r.pitch_sd_hz, 2),
        volume_dbfs: roundTo(r.volume_dbfs, 2) ?? -120,
        voiced_ratio: roundTo(r.voiced_ratio, 4) ?? 0,
        speech_ratio: roundTo(r.speech_ratio, 4) ?? 0,
        word_count: words,
        // Not looked for with fluency analysis off: null, as the summary's.
        filler_count: fluency ? toNumber(r.filler_count) : null,
        wpm: roundTo((words * 60_000) / (endMs - startMs), 1) ?? 0,
        rolling_wpm: roundTo(r.rolling_wpm, 1) ?? 0,
      };
    }),
  };
}

// ---------------------------------------------------------------- fluency

interface PauseRow {
  start_ms: Int;
  end_ms: Int;
  duration_ms: Int;
  kind: string;
}
interface FillerRow {
  start_ms: Int;
  end_ms: Int;
  filler: string;
  source: string;
}
interface RepetitionRow {
  text: string;
  start_ms: Int;
  segment_index: Int;
  word_index: Int;
}

export async function readFluency(ctx: AppContext, s: SpeechSession) {
  const [summary, pauses, fillers, repetitions] = await Promise.all([
    readSpeechSummary(ctx, s),
    rows<PauseRow>(ctx, `SELECT start_ms, end_ms, duration_ms, kind FROM ${ctx.database}.${SpeechTables.speechPauses} FINAL WHERE ${OF_SESSION} ORDER BY start_ms`, s),
    rows<FillerRow>(ctx, `SELECT start_ms, end_ms, filler, source FROM ${ctx.database}.${SpeechTables.speechFillers} FINAL WHERE ${OF_SESSION} ORDER BY start_ms`, s),
    rows<RepetitionRow>(
      ctx,
      `SELECT text, start_ms, segment_index, word_index FROM ${ctx.database}.${SpeechTables.speechWords} FINAL WHERE ${OF_SESSION} AND is_repetition ORDER BY segment_index, word_index`,
      s,
    ),
  ]);
  if (!summary) throw notComputedYet('fluency', s);
  // Asked only with fluency analysis on (GET /fluency is 404 otherwise), where they are counts.
  const fillerCount = summary.filler_count ?? 0;
  const fillerRate = summary.filler_rate_per_min ?? 0;
  // Per minute of speech, first to last (as the summary's filler rate and the scores); without
  // words, from the summary's rate, which the pipeline computed over that span.
  const minutes = summary.span_s !== null ? summary.span_s / 60 : fillerRate > 0 ? fillerCount / fillerRate : 0;
  const perMinute = (count: number) => (minutes > 0 ? roundTo(count / minutes, 2)! : 0);
  const byFiller = new Map<string, number[]>();
  for (const f of fillers) {
    let list = byFiller.get(f.filler);
    if (!list) byFiller.set(f.filler, (list = []));
    list.push(toNumber(f.start_ms));
  }
  return {
    session_id: s.id,
    status: s.status,
    model: summary.model,
    computed_at: summary.computed_at,
    speaking_rate_wpm: summary.speaking_rate_wpm,
    articulation_rate_wpm: summary.articulation_rate_wpm,
    word_count: summary.word_count,
    duration_s: summary.duration_s,
    span_s: summary.span_s,
    speech_s: summary.speech_s,
    pauses: {
      count: summary.pause_count,
      long_count: summary.long_pause_count,
      ratio: summary.pause_ratio,
      mean_ms: summary.mean_pause_ms,
      items: pauses.map((x) => ({ start_ms: toNumber(x.start_ms), end_ms: toNumber(x.end_ms), duration_ms: toNumber(x.duration_ms), kind: x.kind })),
    },
    fillers: {
      count: fillerCount,
      rate_per_min: fillerRate,
      by_filler: [...byFiller]
        .map(([filler, timestamps]) => ({ filler, count: timestamps.length, rate_per_min: perMinute(timestamps.length), timestamps_ms: timestamps }))
        .sort((a, b) => b.count - a.count || a.filler.localeCompare(b.filler)),
      items: fillers.map((f) => ({ start_ms: toNumber(f.start_ms), end_ms: toNumber(f.end_ms), filler: f.filler, source: f.source })),
    },
    repetitions: {
      count: summary.repetition_count ?? 0,
      items: repetitions.map((r) => ({ text: r.text, start_ms: toNumber(r.start_ms) })),
    },
    pitch: summary.pitch,
    volume: summary.volume,
    /** For the document's shape (docFluency): the repeated words with their places. */
    repeatedWords: repetitions.map((r) => ({ text: r.text, start_ms: toNumber(r.start_ms), segment_index: toNumber(r.segment_index), word_index: toNumber(r.word_index) })),
  };
}

// ---------------------------------------------------------------- the document's metrics

interface SecondRow {
  second_index: Int;
  pitch_mean_hz: number | null;
  volume_dbfs: number;
  speech_ratio: number;
}
interface PauseItemRow {
  start_ms: Int;
  end_ms: Int;
  duration_ms: Int;
  kind: string;
}

/** What docMetrics needs besides the buckets: the summary, every second, the pauses. */
export async function readDocMetricsInput(ctx: AppContext, s: SpeechSession, granularity: MetricsGranularity): Promise<MetricsIn> {
  const [summary, buckets, seconds, pauses] = await Promise.all([
    readSpeechSummary(ctx, s),
    readMetrics(ctx, s, granularity),
    rows<SecondRow>(
      ctx,
      `SELECT second_index, pitch_mean_hz, volume_dbfs, speech_ratio FROM ${ctx.database}.${SpeechTables.speechFrames} FINAL WHERE ${OF_SESSION} ORDER BY second_index`,
      s,
    ),
    rows<PauseItemRow>(ctx, `SELECT start_ms, end_ms, duration_ms, kind FROM ${ctx.database}.${SpeechTables.speechPauses} FINAL WHERE ${OF_SESSION} ORDER BY start_ms`, s),
  ]);
  return {
    summary,
    buckets: buckets.buckets,
    seconds: seconds.map((x) => ({ second: toNumber(x.second_index), pitch_mean_hz: roundTo(x.pitch_mean_hz, 2), volume_dbfs: roundTo(x.volume_dbfs, 2) ?? -120, speech_ratio: roundTo(x.speech_ratio, 4) ?? 0 })),
    pauses: pauses.map((x) => ({ start_ms: toNumber(x.start_ms), end_ms: toNumber(x.end_ms), duration_ms: toNumber(x.duration_ms), kind: x.kind })),
    prosody: docSettingOn(s.settings, 'enableProsodyAnalysis'),
    fluency: docSettingOn(s.settings, 'enableFluencyAnalysis'),
  };
}

// ---------------------------------------------------------------- scores

const SCORE_NAMES = ['overall', 'clarity', 'pace', 'engagement', 'confidence'] as const;

interface ScoreRow {
  model: string;
  overall: number;
  clarity: number;
  pace: number;
  engagement: number;
  confidence: number;
  features_json: string;
  weights_json: string;
  factors_json: string;
  computed_at_ms: Int;
}

function parseObject(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

export async function readScores(ctx: AppContext, s: SpeechSession) {
  const result = await rows<ScoreRow>(
    ctx,
    `SELECT model, overall, clarity, pace, engagement, confidence, features_json, weights_json, factors_json,
        toUnixTimestamp64Milli(computed_at) AS computed_at_ms
     FROM ${ctx.database}.${SpeechTables.speechScores} FINAL
     WHERE ${OF_SESSION} ORDER BY computed_at DESC, model LIMIT 1`,
    s,
  );
  if (result.length === 0) throw notComputedYet('scores', s);
  const r = result[0];
  return {
    session_id: s.id,
    status: s.status,
    model: r.model,
    scores: Object.fromEntries(SCORE_NAMES.map((k) => [k, roundTo(r[k], 1) ?? 0])) as Record<(typeof SCORE_NAMES)[number], number>,
    features: parseObject(r.features_json),
    weights: parseObject(r.weights_json),
    factors: parseObject(r.factors_json),
    computed_at: iso(toNumber(r.computed_at_ms)),
  };
}

// ---------------------------------------------------------------- routes

/** Reads a result, or undefined when it is not there (not computed, or disabled). */
async function optional<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AttuneError && err.code === 'not_found') return undefined;
    throw err;
  }
}

export async function registerSpeechResultRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: 'A speech session, with its delivery summary once the analysis has stored it (else summary is null).',
        description:
          "data.session is the speech-coaching document's session; once the session is completed it carries transcript, metrics, scores and fluency inline " +
          '(each absent when its analysis is disabled in the settings or has nothing to show).',
        security: [{ bearerAuth: [] }],
        params: idParams,
        response: {
          200: { type: 'object', properties: { ...speechSessionJsonSchema.properties, summary: speechSummarySchema, ...docEnvelopeSchema(openObject) } },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSpeechSession(ctx, p, req.params.id);
      const summary = await readSpeechSummary(ctx, s);
      const analysed = s.status === 'completed';
      const [transcript, metrics, scores, fluency] = analysed
        ? await Promise.all([
            readTranscript(ctx, s),
            readDocMetricsInput(ctx, s, 'second'),
            docSettingOn(s.settings, 'enableScoring') ? optional(() => readScores(ctx, s)) : Promise.resolve(undefined),
            docSettingOn(s.settings, 'enableFluencyAnalysis') ? optional(() => readFluency(ctx, s)) : Promise.resolve(undefined),
          ])
        : [undefined, undefined, undefined, undefined];
      const session = {
        ...docSession(s, sessionUrls(req, s.id), scores ? scores.scores.overall : null),
        // Attune does not keep the audio: it is analysed as it streams in (README, speech).
        mediaUrl: null,
        ...(transcript ? { transcript: docTranscript(transcript) } : {}),
        ...(metrics ? { metrics: docInlineMetrics(metrics) } : {}),
        ...(scores ? { scores: docInlineScores(scores) } : {}),
        ...(fluency ? { fluency: docFluency(fluency) } : {}),
      };
      return withDocEnvelope({ ...speechSessionJson(s), summary }, { session }, req, ctx.clock());
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id/transcript',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: 'The transcript: text of the final segments, words with their times, and segments. While the session is recording or processing, what is stored so far.',
        security: [{ bearerAuth: [] }],
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              session_id: { type: 'string' },
              status: statusSchema,
              text: { type: 'string', description: "Final segments' text in order, joined by spaces." },
              model: { type: ['string', 'null'], description: 'Recognition model; null before any segment.' },
              words: { type: 'array', items: wordSchema },
              segments: { type: 'array', items: segmentSchema },
              ...docEnvelopeSchema(openObject),
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const t = await readTranscript(ctx, await visibleSpeechSession(ctx, p, req.params.id));
      return withDocEnvelope(t, { transcript: docTranscript(t) }, req, ctx.clock());
    },
  );

  app.get<{ Params: { id: string }; Querystring: { granularity?: MetricsGranularity } }>(
    '/v1/speech-sessions/:id/metrics',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: 'Voice metrics over time (pitch, volume, voicing, speech, words per minute) per second, 5 s, 10 s or minute. While processing, the seconds stored so far.',
        security: [{ bearerAuth: [] }],
        params: idParams,
        querystring: {
          type: 'object',
          properties: { granularity: { type: 'string', enum: Object.keys(METRICS_GRANULARITY_S), default: 'second' } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              session_id: { type: 'string' },
              status: statusSchema,
              granularity: { type: 'string' },
              bucket_s: { type: 'integer' },
              buckets: { type: 'array', items: bucketSchema },
              ...docEnvelopeSchema(openObject),
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSpeechSession(ctx, p, req.params.id);
      const input = await readDocMetricsInput(ctx, s, req.query.granularity ?? 'second');
      const m = await readMetrics(ctx, s, req.query.granularity ?? 'second');
      return withDocEnvelope(m, { metrics: docMetrics(input) }, req, ctx.clock());
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id/fluency',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: 'Fluency of an analysed session: speaking and articulation rates, pauses, fillers (by filler, with times), repetitions, pitch and volume. 404 not_found until analysed.',
        security: [{ bearerAuth: [] }],
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              session_id: { type: 'string' },
              status: statusSchema,
              model: { type: 'string' },
              computed_at: { type: 'string', format: 'date-time' },
              speaking_rate_wpm: { type: 'number', description: 'Words per minute from the start of the first speech to the end of the last, pauses included (silence before and after is not counted).' },
              articulation_rate_wpm: { type: 'number', description: 'Words over phonation time.' },
              word_count: { type: 'integer' },
              duration_s: { type: 'number', description: 'Length of the audio.' },
              span_s: { type: ['number', 'null'], description: 'Seconds from the first to the last speech (null without words): what every rate per minute here divides by.' },
              speech_s: { type: 'number' },
              pauses: {
                type: 'object',
                properties: {
                  count: { type: 'integer' },
                  long_count: { type: 'integer' },
                  ratio: { type: 'number' },
                  mean_ms: { type: ['integer', 'null'] },
                  items: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: { start_ms: { type: 'integer' }, end_ms: { type: 'integer' }, duration_ms: { type: 'integer' }, kind: { type: 'string', enum: ['natural', 'long'] } },
                    },
                  },
                },
              },
              fillers: {
                type: 'object',
                properties: {
                  count: { type: 'integer' },
                  rate_per_min: { type: 'number', description: 'Fillers per minute from the first to the last speech (span_s).' },
                  by_filler: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        filler: { type: 'string' },
                        count: { type: 'integer' },
                        rate_per_min: { type: 'number' },
                        timestamps_ms: { type: 'array', items: { type: 'integer' } },
                      },
                    },
                  },
                  items: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        start_ms: { type: 'integer' },
                        end_ms: { type: 'integer' },
                        filler: { type: 'string', description: 'Canonical filler, or filled_pause (found in the audio only).' },
                        source: { type: 'string', enum: ['transcript', 'acoustic', 'both'] },
                      },
                    },
                  },
                },
              },
              repetitions: {
                type: 'object',
                properties: {
                  count: { type: 'integer' },
                  items: { type: 'array', items: { type: 'object', properties: { text: { type: 'string' }, start_ms: { type: 'integer' } } } },
                },
              },
              pitch: speechSummarySchema.properties.pitch,
              volume: speechSummarySchema.properties.volume,
              ...docEnvelopeSchema(openObject),
            },
          },
          404: notYet404,
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSpeechSession(ctx, p, req.params.id);
      if (!docSettingOn(s.settings, 'enableFluencyAnalysis')) throw notComputedYet('fluency', s);
      const f = await readFluency(ctx, s);
      return withDocEnvelope(f, { fluency: docFluency(f) }, req, ctx.clock());
    },
  );

  const scoreMap = { type: 'object', additionalProperties: true } as const;
  app.get<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id/scores',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: 'Delivery scores 0..100 (overall, clarity, pace, engagement, confidence) with the features, weights and per-feature factors behind them. 404 not_found until scored.',
        security: [{ bearerAuth: [] }],
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              session_id: { type: 'string' },
              status: statusSchema,
              model: { type: 'string', description: 'Scoring model, e.g. rubric-v1.' },
              scores: { type: 'object', properties: Object.fromEntries(SCORE_NAMES.map((k) => [k, { type: 'number', minimum: 0, maximum: 100 }])) },
              features: { ...scoreMap, description: 'The feature vector scored, by feature name.' },
              weights: { ...scoreMap, description: 'Model weights, by score then feature.' },
              factors: { ...scoreMap, description: "Each feature's contribution to each score for this session, by score then feature." },
              computed_at: { type: 'string', format: 'date-time' },
              ...docEnvelopeSchema(openObject),
            },
          },
          404: notYet404,
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSpeechSession(ctx, p, req.params.id);
      if (!docSettingOn(s.settings, 'enableScoring')) throw notComputedYet('scores', s);
      const sc = await readScores(ctx, s);
      return withDocEnvelope(sc, { scores: docScores(sc) }, req, ctx.clock());
    },
  );
}
