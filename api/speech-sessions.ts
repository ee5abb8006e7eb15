// Speech session routes: create, list (cursor-paginated, newest first, filtered by status,
// type and creation dates) and read one with its delivery summary. Tenant rules are the heart
// sessions': a user sees their own sessions, an org admin the org's; anything else is a 404.
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { iso, parseTimestamp, withinQueryTimes } from '../lib/time.js';
import { toNullableNumber, toNumber } from '../store/clickhouse.js';
import { SpeechTables, type SpeechSessionKind, type SpeechSessionStatus } from '../store/rows.js';
import { Scopes, type Principal } from '../lib/principal.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import type { ListedSpeechSession, SpeechSession, SpeechSessionsRepository } from '../store/postgres/speech-sessions-repo.js';
import { checkStoredJson, defaultStoredJsonLimits, type StoredJsonLimits } from '../lib/json-limits.js';
import { docEnvelopeSchema, openObject, withDocEnvelope } from '../http/doc-envelope.js';
import { docSession, docSettingOn, sessionUrls } from './speech-doc.js';

export const SPEECH_SESSION_TYPES: readonly SpeechSessionKind[] = ['presentation', 'interview', 'conversation', 'speech'];
export const SPEECH_SESSION_STATUSES: readonly SpeechSessionStatus[] = ['created', 'recording', 'processing', 'completed', 'failed'];
export const SPEECH_MODELS = ['moonshine-tiny', 'moonshine-base'] as const;
/** Settings every session has unless the client gave others (the pipeline's defaults). */
/** No model here: a session that names none gets the worker's default for its audio,
 * moonshine-base for an upload and moonshine-tiny for a live stream (ATTUNE_SPEECH_UPLOAD_MODEL,
 * ATTUNE_SPEECH_MODEL). */
export const DEFAULT_SPEECH_SETTINGS = { min_pause_ms: 250, long_pause_ms: 1000 } as const;
/** The longest session a client may announce (API field duration): 4 hours. */
export const MAX_EXPECTED_DURATION_S = 14_400;

const settingsSchema = {
  type: 'object',
  description:
    'Analysis settings. Known keys are validated; other keys are kept as given (at most 50 keys). ' +
    `Defaults: min_pause_ms ${DEFAULT_SPEECH_SETTINGS.min_pause_ms}, long_pause_ms ${DEFAULT_SPEECH_SETTINGS.long_pause_ms}; without a model, uploads are recognised with moonshine-base and live streams with moonshine-tiny.`,
  properties: {
    min_pause_ms: { type: 'integer', minimum: 100, maximum: 5000, description: 'Shortest silent pause, ms: a non-speech gap with the fillers the audio placed cut out, each part at least this long counted.' },
    long_pause_ms: { type: 'integer', minimum: 100, maximum: 60_000, description: 'Pauses at least this long are long pauses, ms; above min_pause_ms.' },
    model: { type: 'string', enum: [...SPEECH_MODELS], description: 'Speech recognition model.' },
    language: { type: 'string', enum: ['en'], description: 'Language spoken; English only.' },
    // The speech-coaching document's switches: each true unless false; a disabled stage is not
    // run (or, for prosody and real time, not kept) and its results are absent.
    enableRealTimeProcessing: { type: 'boolean', description: 'True unless false. Live events while audio streams (asr:token, metrics:update); false: results only at the end.' },
    enableProsodyAnalysis: { type: 'boolean', description: 'True unless false. Pitch and volume (metrics.pitch, metrics.volume, the timeline\'s pitch and volume); false: absent.' },
    enableFluencyAnalysis: { type: 'boolean', description: 'True unless false. Fillers, repetitions and overall fluency (/fluency); false: not run, /fluency is 404.' },
    enableScoring: { type: 'boolean', description: 'True unless false. Delivery scores (/scores); false: not run, /scores is 404.' },
  },
  additionalProperties: true,
  maxProperties: 50,
} as const;

export const speechSessionJsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    user_id: { type: 'string' },
    org_id: { type: 'string' },
    title: { type: 'string' },
    description: { type: 'string' },
    type: { type: 'string', enum: [...SPEECH_SESSION_TYPES] },
    duration: { type: ['integer', 'null'], description: 'Expected duration given at creation, seconds.' },
    settings: { type: 'object', additionalProperties: true },
    status: {
      type: 'string',
      enum: [...SPEECH_SESSION_STATUSES],
      description: 'created (no audio yet), recording (live audio streaming), processing (analysis running), completed (results stored) or failed.',
    },
    source: { type: ['string', 'null'], enum: ['upload', 'live', null], description: 'Where the audio came from; null before any audio.' },
    started_at: { type: ['string', 'null'], format: 'date-time', description: 'First sample of the audio: the origin of every *_ms time of the session.' },
    ended_at: { type: ['string', 'null'], format: 'date-time' },
    audio_duration_s: { type: ['number', 'null'] },
    sample_rate_hz: { type: ['integer', 'null'], description: 'Sample rate of the audio as received.' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const nullableNumber = { type: ['number', 'null'] } as const;

export const speechSummarySchema = {
  type: ['object', 'null'],
  description: 'Delivery metrics of the analysed audio; null until the analysis has stored them.',
  properties: {
    duration_s: { type: 'number', description: 'Length of the audio.' },
    span_s: { type: ['number', 'null'], description: 'Seconds from the first to the last speech (null without words): what every rate per minute divides by.' },
    speech_s: { type: 'number', description: 'Phonation time: voiced speech, silences of 250 ms or more removed (README, How speech is analysed).' },
    word_count: { type: 'integer' },
    speaking_rate_wpm: { type: 'number', description: 'Words per minute from the start of the first speech to the end of the last, pauses included (silence before and after is not counted).' },
    articulation_rate_wpm: { type: 'number', description: 'Words per minute over speaking time.' },
    pause_count: { type: 'integer' },
    long_pause_count: { type: 'integer' },
    pause_ratio: { type: 'number', description: 'Share of the time between the first and the last speech that is pauses, 0..1.' },
    mean_pause_ms: { type: ['integer', 'null'] },
    filler_count: { type: ['integer', 'null'], description: 'Null when the session was analysed with enableFluencyAnalysis false (fillers not looked for).' },
    filler_rate_per_min: { type: ['number', 'null'], description: 'Fillers per minute from the first to the last speech (span_s); null as filler_count.' },
    repetition_count: { type: ['integer', 'null'], description: 'Null as filler_count.' },
    pitch: {
      type: 'object',
      properties: {
        mean_hz: nullableNumber,
        sd_hz: nullableNumber,
        min_hz: { ...nullableNumber, description: '5th percentile of voiced frames.' },
        max_hz: { ...nullableNumber, description: '95th percentile of voiced frames.' },
        variability_st: { ...nullableNumber, description: 'Standard deviation in semitones.' },
        monotone: { type: ['boolean', 'null'] },
      },
    },
    volume: {
      type: 'object',
      properties: {
        mean_dbfs: { ...nullableNumber, description: 'Mean loudness of the seconds with speech.' },
        sd_db: { ...nullableNumber, description: 'Standard deviation of the per-second loudness over seconds with speech.' },
      },
    },
    model: { type: 'string', description: 'Recognition model of the transcript.' },
    computed_at: { type: 'string', format: 'date-time' },
  },
} as const;

/** The API's speech session; `settings` is absent from a list's items unless the list asked for it (include=settings). */
export function speechSessionJson(s: SpeechSession | ListedSpeechSession) {
  return {
    id: s.id,
    user_id: s.userId,
    org_id: s.orgId,
    title: s.title,
    description: s.description,
    type: s.type,
    duration: s.expectedDurationS,
    settings: s.settings,
    status: s.status,
    source: s.source === '' ? null : s.source,
    started_at: s.startedAt === null ? null : iso(s.startedAt),
    ended_at: s.endedAt === null ? null : iso(s.endedAt),
    audio_duration_s: s.audioDurationS,
    sample_rate_hz: s.sampleRateHz,
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  };
}

export function speechRepo(ctx: AppContext): SpeechSessionsRepository {
  if (!ctx.speechSessions) throw new AttuneError('unavailable', 'speech sessions are not configured on this server');
  return ctx.speechSessions;
}

/** The speech session, if `p` may see it. Someone else's session is a 404, never a hint that it exists. */
export async function visibleSpeechSession(ctx: AppContext, p: Principal, id: string): Promise<SpeechSession> {
  return speechRepo(ctx).getVisible(p, id);
}

/**
 * Settings as stored: the defaults, then what the client gave; long_pause_ms above
 * min_pause_ms; at most 16 KB of JSON (ATTUNE_MAX_STORED_JSON_BYTES) and 32 levels deep.
 */
export function effectiveSettings(given: Record<string, unknown> | undefined, limits: StoredJsonLimits = defaultStoredJsonLimits()): Record<string, unknown> {
  if (given !== undefined) checkStoredJson(given, '/settings', limits);
  const settings: Record<string, unknown> = { ...DEFAULT_SPEECH_SETTINGS, ...(given ?? {}) };
  if ((settings.long_pause_ms as number) <= (settings.min_pause_ms as number)) {
    throw new AttuneError('validation_error', 'settings.long_pause_ms must be above settings.min_pause_ms', [
      { field: '/settings/long_pause_ms', reason: 'out_of_range', message: `must be above min_pause_ms (${settings.min_pause_ms})` },
    ]);
  }
  checkStoredJson(settings, '/settings', limits);
  return settings;
}

/**
 * A bound of the created_at filter: a date (YYYY-MM-DD, UTC; as `to` it includes that whole
 * day) or an ISO-8601 timestamp with a zone, or epoch ms.
 */
export function dateBound(v: string, field: 'from' | 'to' | 'startDate' | 'endDate'): number {
  const inRange = (t: number) => {
    if (withinQueryTimes(t)) return t;
    throw new AttuneError('validation_error', `${field} must lie between 1970-01-01 and 2299-12-31`, [{ field: `?${field}`, reason: 'out_of_range' }]);
  };
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const t = Date.parse(`${v}T00:00:00Z`);
    // Date.parse rolls 2026-02-31 over to March; a date that does not print back is not real.
    if (!Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === v) return inRange(field === 'to' || field === 'endDate' ? t + 86_400_000 : t);
  } else {
    const t = parseTimestamp(v);
    if (!Number.isNaN(t)) return inRange(Math.round(t));
  }
  throw new AttuneError('validation_error', `${field} must be a date YYYY-MM-DD or an ISO-8601 timestamp with a zone`, [{ field: `?${field}`, reason: 'invalid_date' }]);
}

interface SummaryRow {
  duration_ms: number | string;
  speech_ms: number | string;
  word_count: number | string;
  speaking_rate_wpm: number;
  articulation_rate_wpm: number;
  pause_count: number | string;
  long_pause_count: number | string;
  pause_ratio: number;
  mean_pause_ms: number | string | null;
  filler_count: number | string;
  filler_rate_per_min: number;
  repetition_count: number | string;
  pitch_mean_hz: number | null;
  pitch_sd_hz: number | null;
  pitch_min_hz: number | null;
  pitch_max_hz: number | null;
  pitch_variability_st: number | null;
  monotone: boolean | number | null;
  volume_mean_dbfs: number | null;
  volume_sd_db: number | null;
  model: string;
  computed_at_ms: number | string;
}

/** Rounds a Float32 read back to `digits` decimals (no float noise in the API); null stays null. */
export const roundTo = (v: number | null | undefined, digits: number): number | null =>
  v === null || v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(digits));

export type SpeechSummary = NonNullable<Awaited<ReturnType<typeof readSpeechSummary>>>;

/** The session's row of speech_summaries (the latest version), as the API shows it; null when not computed yet. */
export async function readSpeechSummary(ctx: AppContext, s: SpeechSession) {
  const rs = await clickhouseOf(ctx).query({
    query: `SELECT duration_ms, speech_ms, word_count, speaking_rate_wpm, articulation_rate_wpm, pause_count, long_pause_count,
              pause_ratio, mean_pause_ms, filler_count, filler_rate_per_min, repetition_count, pitch_mean_hz, pitch_sd_hz,
              pitch_min_hz, pitch_max_hz, pitch_variability_st, monotone, volume_mean_dbfs, volume_sd_db, model,
              toUnixTimestamp64Milli(computed_at) AS computed_at_ms
            FROM ${ctx.database}.${SpeechTables.speechSummaries} FINAL
            WHERE org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String}
            ORDER BY computed_at DESC LIMIT 1`,
    query_params: { org: s.orgId, user: s.userId, sid: s.id },
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as SummaryRow[];
  if (rows.length === 0) return null;
  const r = rows[0];
  const wordCount = toNumber(r.word_count);
  const fillerCount = toNumber(r.filler_count);
  const fluency = docSettingOn(s.settings, 'enableFluencyAnalysis');
  // The span the speaking rate divides by (first to last speech), which every rate per minute
  // uses (the scores' too: pipelines/speech/stream/results.ts scoreInput), so that silence
  // before and after the speaker, a recorder left running, dilutes none of them. Read back from
  // the speaking rate; rows before 12-06 stored filler_rate_per_min per minute of audio, so it
  // is recomputed here for every row.
  const spanS = wordCount > 0 && r.speaking_rate_wpm > 0 ? (wordCount / r.speaking_rate_wpm) * 60 : null;
  return {
    duration_s: toNumber(r.duration_ms) / 1000,
    /** Seconds from the first to the last speech (null without words): the time rates per minute divide by. */
    span_s: spanS === null ? null : roundTo(spanS, 3),
    speech_s: toNumber(r.speech_ms) / 1000,
    word_count: wordCount,
    speaking_rate_wpm: roundTo(r.speaking_rate_wpm, 1) ?? 0,
    articulation_rate_wpm: roundTo(r.articulation_rate_wpm, 1) ?? 0,
    pause_count: toNumber(r.pause_count),
    long_pause_count: toNumber(r.long_pause_count),
    pause_ratio: roundTo(r.pause_ratio, 4) ?? 0,
    mean_pause_ms: toNullableNumber(r.mean_pause_ms),
    // Fluency analysis off: fillers and repetitions were not looked for, and the stored zeros
    // (ClickHouse 0021) are not a count of none.
    filler_count: fluency ? fillerCount : null,
    // Without words the span cannot be read back (fillers heard only in the audio, say): the
    // stored rate, which the pipeline computed over the span since 12-06.
    filler_rate_per_min: !fluency ? null : spanS === null ? (roundTo(r.filler_rate_per_min, 2) ?? 0) : (roundTo(fillerCount / (spanS / 60), 2) ?? 0),
    repetition_count: fluency ? toNumber(r.repetition_count) : null,
    pitch: {
      mean_hz: roundTo(r.pitch_mean_hz, 2),
      sd_hz: roundTo(r.pitch_sd_hz, 2),
      min_hz: roundTo(r.pitch_min_hz, 2),
      max_hz: roundTo(r.pitch_max_hz, 2),
      variability_st: roundTo(r.pitch_variability_st, 3),
      monotone: r.monotone === null ? null : Boolean(r.monotone),
    },
    volume: { mean_dbfs: roundTo(r.volume_mean_dbfs, 2), sd_db: roundTo(r.volume_sd_db, 2) },
    model: r.model,
    computed_at: iso(toNumber(r.computed_at_ms)),
  };
}

/** The overall score of each session that has one (the latest scoring), for lists. */
export async function readOverallScores(ctx: AppContext, sessions: ReadonlyArray<{ id: string; orgId: string }>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (sessions.length === 0) return out;
  const rs = await clickhouseOf(ctx).query({
    query: `SELECT session_id, argMax(overall, computed_at) AS overall FROM ${ctx.database}.${SpeechTables.speechScores} FINAL
            WHERE org_id = {org:String} AND session_id IN {ids:Array(String)} GROUP BY session_id`,
    query_params: { org: sessions[0].orgId, ids: sessions.map((x) => x.id) },
    format: 'JSONEachRow',
  });
  for (const row of (await rs.json()) as Array<{ session_id: string; overall: number }>) out.set(row.session_id, roundTo(row.overall, 1) ?? 0);
  return out;
}

/**
 * Deletes every row of the session from each speech table: ClickHouse lightweight DELETE
 * (rows are masked at once and dropped at the next merge), synchronous (lightweight_deletes_sync
 * by default), filtered by the tables' ORDER BY prefix (org, user, session).
 */
export async function deleteSpeechResults(ctx: AppContext, s: { id: string; orgId: string; userId: string }): Promise<void> {
  const ch = clickhouseOf(ctx);
  for (const table of Object.values(SpeechTables)) {
    await ch.command({
      query: `DELETE FROM ${ctx.database}.${table} WHERE org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String}`,
      query_params: { org: s.orgId, user: s.userId, sid: s.id },
    });
  }
}

interface CreateBody {
  title?: string;
  description?: string;
  type: SpeechSessionKind;
  duration?: number;
  settings?: Record<string, unknown>;
}

interface ListQuery {
  limit?: number;
  cursor?: string;
  page?: number;
  startDate?: string;
  endDate?: string;
  status?: SpeechSessionStatus;
  type?: SpeechSessionKind;
  from?: string;
  to?: string;
  user_id?: string;
  include?: 'settings';
}

export async function registerSpeechSessionRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const storedLimits = defaultStoredJsonLimits(ctx.maxStoredJsonBytes);
  app.post<{ Body: CreateBody }>(
    '/v1/speech-sessions',
    {
      config: { auth: { scope: Scopes.writeSpeech } },
      // For clients and the fuzzer (scripts/fuzz): the new session's id goes to its upload.
      links: { 201: { upload: { operationId: 'uploadSpeechAudio', parameters: { id: '$response.body#/id' } } } },
      schema: {
        tags: ['speech'],
        summary: 'Create a speech session for the calling user; send it audio by upload or live stream.',
        operationId: 'createSpeechSession',
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          properties: {
            title: { type: 'string', maxLength: 200 },
            description: { type: 'string', maxLength: 2000 },
            type: { type: 'string', enum: [...SPEECH_SESSION_TYPES], description: 'What the user practises.' },
            duration: { type: 'integer', minimum: 1, maximum: MAX_EXPECTED_DURATION_S, description: 'Expected duration, seconds.' },
            settings: settingsSchema,
          },
          required: ['type'],
          additionalProperties: false,
        },
        response: { 201: { type: 'object', properties: { ...speechSessionJsonSchema.properties, ...docEnvelopeSchema(openObject) } }, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const s = await speechRepo(ctx).create({
        orgId: p.orgId,
        userId: p.userId,
        title: body.title,
        description: body.description,
        type: body.type,
        expectedDurationS: body.duration ?? null,
        settings: effectiveSettings(body.settings, storedLimits),
      });
      return reply.status(201).send(withDocEnvelope(speechSessionJson(s), { session: docSession(s, sessionUrls(req, s.id), null) }, req, ctx.clock()));
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/v1/speech-sessions',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: "List the caller's speech sessions, newest first (an org admin sees the org's, or one user's with user_id).",
        description:
          'Items leave out `settings` (up to 16 KB each) unless `include=settings`; GET /v1/speech-sessions/{id} always has them. ' +
          "Pages: by `cursor` (Attune's, `pagination.next_cursor`) or by `page` (the speech-coaching document's: `data.pagination` {page, limit, total, pages}). " +
          "The sessions are in `items` (Attune's form) and in `data.sessions` (the document's).",
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 20, description: "Items per page (the document's default, 20)." },
            cursor: { type: 'string', maxLength: 300, description: 'pagination.next_cursor of the previous page.' },
            page: { type: 'integer', minimum: 1, maximum: 1_000_000, description: 'Page number from 1 (not with cursor).' },
            startDate: { type: 'string', maxLength: 40, description: 'As from (the document\'s name).' },
            endDate: { type: 'string', maxLength: 40, description: 'As to (the document\'s name).' },
            status: { type: 'string', enum: [...SPEECH_SESSION_STATUSES] },
            type: { type: 'string', enum: [...SPEECH_SESSION_TYPES] },
            from: { type: 'string', maxLength: 40, description: 'Created at or after: YYYY-MM-DD (UTC) or an ISO-8601 timestamp.' },
            to: { type: 'string', maxLength: 40, description: 'Created before: an ISO-8601 timestamp, or YYYY-MM-DD (UTC, that day included).' },
            user_id: { type: 'string', maxLength: 128, description: 'Another user of the org (needs admin:org).' },
            include: { type: 'string', enum: ['settings'], description: "Put each session's settings in the items." },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: speechSessionJsonSchema },
              pagination: { type: 'object', properties: { limit: { type: 'integer' }, next_cursor: { type: ['string', 'null'] }, has_more: { type: 'boolean' } } },
              ...docEnvelopeSchema({
                type: 'object',
                properties: {
                  sessions: { type: 'array', items: openObject },
                  pagination: {
                    type: 'object',
                    properties: { page: { type: ['integer', 'null'], description: 'null when paged by cursor.' }, limit: { type: 'integer' }, total: { type: 'integer' }, pages: { type: 'integer' } },
                  },
                },
              }),
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const q = req.query;
      if (q.page !== undefined && q.cursor !== undefined) {
        throw new AttuneError('validation_error', 'page and cursor cannot be used together', [{ field: '?page', reason: 'invalid_value' }]);
      }
      for (const [a, b] of [['from', 'startDate'], ['to', 'endDate']] as const) {
        if (q[a] !== undefined && q[b] !== undefined) throw new AttuneError('validation_error', `${a} and ${b} are the same filter: give one`, [{ field: `?${b}`, reason: 'invalid_value' }]);
      }
      // The speech-coaching document's default page size (Attune's was 50 before that document).
      const limit = q.limit ?? 20;
      const isAdmin = p.scopes.has(Scopes.adminOrg);
      if (q.user_id && !isAdmin && q.user_id !== p.userId) {
        throw new AttuneError('forbidden', "listing another user's speech sessions needs admin:org", [{ field: '?user_id', reason: 'missing_scope' }]);
      }
      const from = q.from !== undefined ? dateBound(q.from, 'from') : q.startDate !== undefined ? dateBound(q.startDate, 'startDate') : undefined;
      const to = q.to !== undefined ? dateBound(q.to, 'to') : q.endDate !== undefined ? dateBound(q.endDate, 'endDate') : undefined;
      if (from !== undefined && to !== undefined && from >= to) {
        throw new AttuneError('validation_error', 'from must be before to', [{ field: '?from', reason: 'invalid_range', message: 'not before to' }]);
      }
      const filter = { orgId: p.orgId, userId: q.user_id ?? (isAdmin ? undefined : p.userId), status: q.status, type: q.type, from, to };
      const page = q.cursor === undefined ? (q.page ?? 1) : null;
      const [{ items, nextCursor }, total] = await Promise.all([
        speechRepo(ctx).list({ ...filter, limit, cursor: q.cursor, offset: page === null ? 0 : (page - 1) * limit, withSettings: q.include === 'settings' }),
        speechRepo(ctx).count(filter),
      ]);
      const scores = await readOverallScores(ctx, items);
      return withDocEnvelope(
        { items: items.map(speechSessionJson), pagination: { limit, next_cursor: nextCursor, has_more: nextCursor !== null } },
        {
          sessions: items.map((s) => docSession(s, sessionUrls(req, s.id), scores.get(s.id) ?? null)),
          pagination: { page, limit, total, pages: Math.ceil(total / limit) },
        },
        req,
        ctx.clock(),
      );
    },
  );

  // GET /v1/speech-sessions/{id} is in speech-results.ts: it carries the results inline.

  app.delete<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id',
    {
      config: { auth: { scope: Scopes.writeSpeech } },
      schema: {
        tags: ['speech'],
        summary: 'Delete a speech session and every row of it: its results in ClickHouse (lightweight DELETE in each speech table), then the session, its uploads and audio streams in PostgreSQL.',
        description: 'A session still recording or processing is a 409 conflict (session_busy): the worker would write results after the delete.',
        security: [{ bearerAuth: [] }],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              deleted: { type: 'boolean', enum: [true] },
              ...docEnvelopeSchema({ type: 'object', properties: { message: { type: 'string' } } }),
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSpeechSession(ctx, p, req.params.id);
      if (s.status === 'recording' || s.status === 'processing') {
        throw new AttuneError('conflict', `speech session is ${s.status}: delete it once it is completed or failed`, [{ reason: 'session_busy', status: s.status }]);
      }
      await deleteSpeechResults(ctx, s);
      // The results first: a failure between the two leaves the session, so the DELETE can be repeated.
      await speechRepo(ctx).delete(s.id);
      return withDocEnvelope({ id: s.id, deleted: true as const }, { message: 'Session deleted successfully' }, req, ctx.clock());
    },
  );
}
