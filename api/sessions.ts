// Session routes: create, list (cursor-paginated, newest first), read with coherence metrics
// and a timeline, change (optimistic versions), and end. Wherever the API says `coherence` it means the 0..1 score; the raw
// McCraty ratio is a window's `coherence_ratio` (timeline, live, ClickHouse) and the session's
// `mean_coherence_ratio`; the session's `metrics.coherence_ratio` is the coherence platform
// document's: the share of the session's time in high coherence.
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { int64, iso, parseTimestamp } from '../lib/time.js';
import { Scopes, canAccess, type Principal } from '../lib/principal.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import type { ListedSession, Session } from '../store/postgres/sessions-repo.js';
import type { SessionPractice } from '../store/postgres/users-repo.js';
import { HIGH_COHERENCE_SCORE, deviceFigures, summariseDeviceSteps } from '../store/device-figures.js';
import { checkStoredJson, defaultStoredJsonLimits } from '../lib/json-limits.js';

/** A window counts as high coherence at this score or above (store/device-figures.ts: also the daily rollups' 0.5). */
export { HIGH_COHERENCE_SCORE };
/** Seconds each window stands for: windows are emitted every 5 s of event time. */
export const WINDOW_STEP_S = 5;

/**
 * The coherence platform document's protocols ("Session Protocols"): duration range in
 * minutes and level as documented. The document gives no breathing rate; Attune paces every
 * protocol at 6 breaths a minute (0.1 Hz, resonance breathing, as the mesh pacer's default),
 * the rate breathing_sync_score compares the measured breathing with.
 */
export const PROTOCOLS = {
  heart_breath_sync: { name: 'Heart-Breath Synchronization', minMinutes: 5, maxMinutes: 30, level: 1, breathingRateBpm: 6 },
  gratitude_focus: { name: 'Gratitude Focus', minMinutes: 10, maxMinutes: 20, level: 1, breathingRateBpm: 6 },
  coherence_building: { name: 'Coherence Building', minMinutes: 15, maxMinutes: 45, level: 2, breathingRateBpm: 6 },
  intention_amplify: { name: 'Intention Amplification', minMinutes: 20, maxMinutes: 60, level: 2, breathingRateBpm: 6 },
  manifestation_basic: { name: 'Basic Manifestation', minMinutes: 30, maxMinutes: 90, level: 3, breathingRateBpm: 6 },
  manifestation_advanced: { name: 'Advanced Manifestation', minMinutes: 60, maxMinutes: 180, level: 4, breathingRateBpm: 6 },
} as const;
export type ProtocolId = keyof typeof PROTOCOLS;
const PROTOCOL_IDS = Object.keys(PROTOCOLS) as ProtocolId[];
const SESSION_TYPES = ['coherence', 'meditation', 'breathing', 'group', 'other', 'solo'] as const;

/**
 * Breathing-rate difference (Hz) at which a window's breathing sync reaches 0: the 0.03 Hz
 * width of the coherence peak band (1.8 breaths/min); half of it, the band's half width,
 * scores 0.5. The same per-window rule as the group sessions' breathing_sync_score
 * (pipelines/group/group-coherence.ts, which api/ may not import).
 */
export const BREATHING_SYNC_FULL_SCALE_HZ = 0.03;

/**
 * How closely the measured breathing followed the protocol's pace, 0..1: the mean over the
 * valid windows with a breathing rate of max(0, 1 - (|measured - paced| / 60) / 0.03 Hz), the
 * measured rate being the window's HRV spectral peak in breaths a minute. 1: every window
 * breathed at the pace; 0.5: on average 0.9 breaths/min (0.015 Hz) away; 0 from 1.8
 * breaths/min away; null without a protocol or without such windows.
 */
export function breathingSyncScore(rates: number[], pacedBpm: number | null): number | null {
  if (pacedBpm === null || rates.length === 0) return null;
  let sum = 0;
  for (const b of rates) sum += Math.max(0, 1 - Math.abs(b - pacedBpm) / 60 / BREATHING_SYNC_FULL_SCALE_HZ);
  return sum / rates.length;
}

const sessionJsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    user_id: { type: 'string' },
    org_id: { type: 'string' },
    device_id: { type: 'string' },
    type: { type: 'string' },
    protocol: { type: ['string', 'null'], description: 'Protocol id (coherence platform document); null for sessions started without one.' },
    protocol_level: { type: ['integer', 'null'] },
    target_duration: { type: ['integer', 'null'], description: 'Seconds the user means to practise.' },
    intention: { type: ['string', 'null'] },
    notes: { type: ['string', 'null'], description: 'Given at the end.' },
    subjective_rating: { type: ['integer', 'null'], description: '1-5, given at the end.' },
    websocket_url: { type: 'string', description: "The session's live stream (GET /v1/sessions/{id}/stream)." },
    title: { type: 'string' },
    status: {
      type: 'string',
      enum: ['active', 'ended', 'completed'],
      description: "A session started with the document's form (a protocol) says completed once ended, as the document; others say ended.",
    },
    started_at: { type: 'string', format: 'date-time' },
    ended_at: { type: ['string', 'null'], format: 'date-time' },
    coherence_threshold: { type: 'number' },
    threshold_duration_s: { type: 'integer' },
    created_at: { type: 'string', format: 'date-time' },
    metadata: { type: 'object', additionalProperties: true },
    version: { type: 'integer', description: 'Bumped by every change; send it back in PATCH to update only the version you read (else 409).' },
  },
} as const;

const TRUSTED = 'valid windows only (data reaching within 4 s of both edges of the 64 s window, clean beats covering at least 90 % of it, no long gap: see README "How coherence is computed")';

const metricsSchema = {
  type: 'object',
  description: `Averages over ${TRUSTED}; partial and gapped windows are on the timeline but in no average.`,
  properties: {
    average_coherence: { type: ['number', 'null'], description: `Mean coherence score (0..1) over ${TRUSTED}; with metrics_source device, the mean of the device's own values, in its scale.` },
    peak_coherence: { type: ['number', 'null'] },
    time_in_high_coherence: {
      type: ['number', 'null'],
      description: `Seconds with coherence >= ${HIGH_COHERENCE_SCORE}; null only for device figures (metrics_source device) in a scale other than 0..1.`,
    },
    coherence_ratio: {
      type: ['number', 'null'],
      description:
        "0..1, the coherence platform document's: time_in_high_coherence over the session's duration (to now while active), the share of its time in high coherence (the document's example: 412 s of 623, 0.66); null when either is unknown. Until 2026-12-06 this was the mean McCraty ratio, now mean_coherence_ratio.",
    },
    mean_coherence_ratio: { type: ['number', 'null'], description: "Mean McCraty coherence ratio (peak-band power / the rest) over the trusted windows; null for device figures." },
    average_hr: { type: ['number', 'null'], description: 'Beats per minute.' },
    average_hrv: { type: ['number', 'null'], description: 'Mean RMSSD, ms.' },
    average_sdnn: { type: ['number', 'null'], description: 'Mean SDNN (standard deviation of the NN intervals, n - 1), ms; null for device figures.' },
    average_pnn50: { type: ['number', 'null'], description: 'Mean pNN50 (share of successive NN differences over 50 ms), percent; null for device figures.' },
    average_breathing_rate: { type: ['number', 'null'], description: "Breaths per minute: the median of the trusted windows' breathing rates (each window's dominant HRV rhythm; a window dominated by slow drift reads low, and the median keeps such windows from pulling the figure down)." },
    breathing_sync_score: {
      type: ['number', 'null'],
      description:
        "0..1, how closely the measured breathing rate followed the protocol's paced rate (6 breaths/min): mean over valid windows of max(0, 1 - |measured - paced| / 1.8 breaths/min); null without a protocol.",
    },
    metrics_source: {
      type: ['string', 'null'],
      enum: ['rr', 'device', null],
      description:
        "Where the figures come from: rr, Attune's coherence windows computed from the RR intervals; device, the heart rate, HRV and coherence the session's devices reported themselves (readings without RR intervals, as the coherence platform document's sync sends them), means over the session's 5 s steps, when no window was computed; null, neither.",
    },
    device_reading_count: { type: 'integer', description: 'Readings the device figures are computed from (metrics_source device); 0 otherwise.' },
    window_count: { type: 'integer' },
    late_beat_count: {
      type: 'integer',
      description:
        "Beats that arrived after the windows they belong to had closed (more than the allowed lateness behind the session's newest beat), up to the close of its last window: they are stored as raw beats but in no window; 0 for device figures.",
    },
    valid_window_count: { type: 'integer', description: 'Windows the averages are computed from.' },
    partial_window_count: { type: 'integer', description: "Windows whose data did not reach one of their edges (the session's first and last minute, the edges of a dropout)." },
    invalid_reasons: {
      type: 'object',
      description: 'Windows left out of the averages, by reason (partial, too_few_beats, low_coverage, too_many_artifacts, irregular_rhythm, long_gap).',
      additionalProperties: { type: 'integer' },
    },
  },
} as const;

const timelinePointSchema = {
  type: 'object',
  properties: {
    time: { type: 'number', description: "Seconds from the session's start to the end of the window (coherence platform document)." },
    timestamp: { type: 'string', format: 'date-time', description: 'End of the 64 s window.' },
    coherence: { type: ['number', 'null'] },
    coherence_ratio: { type: ['number', 'null'] },
    hr: { type: ['number', 'null'] },
    hrv: { type: ['number', 'null'] },
    breathing_rate: { type: ['number', 'null'] },
    sdnn: { type: ['number', 'null'], description: 'SDNN, ms.' },
    pnn50: { type: ['number', 'null'], description: 'pNN50, percent.' },
    valid: { type: 'boolean', description: 'Trusted and counted in the averages; the metrics are null when false.' },
    invalid_reason: { type: ['string', 'null'], description: 'Why not valid: partial, too_few_beats, low_coverage, too_many_artifacts, irregular_rhythm or long_gap; null when valid.' },
    partial: { type: 'boolean', description: "The window's data does not reach one of its edges (e.g. the session's first minute)." },
    coverage: { type: ['number', 'null'], description: 'Share of the window covered by clean beats, 0..1 (null for windows stored before it was recorded).' },
    longest_gap_ms: { type: ['number', 'null'], description: 'Longest stretch of the window without clean beats, ms, edges included.' },
  },
} as const;

/** The session's live stream URL as this request reached the server (ws, or wss behind TLS). */
export function websocketUrl(req: { protocol: string; host: string }, id: string): string {
  return `${req.protocol === 'https' ? 'wss' : 'ws'}://${req.host}/v1/sessions/${id}/stream`;
}

/**
 * The API's session; `metadata` is absent from a list's items unless the list asked for it
 * (include=metadata). With `practice` (the document's fields, or null for a session without
 * them) the document's fields are there too.
 */
export function sessionJson(s: Session | ListedSession, practice?: SessionPractice | null, wsUrl?: string) {
  const documented = practice !== undefined && practice !== null && practice.protocol !== null;
  return {
    id: s.id,
    user_id: s.userId,
    org_id: s.orgId,
    device_id: s.deviceId,
    type: s.type,
    ...(practice === undefined
      ? {}
      : {
          protocol: practice?.protocol ?? null,
          protocol_level: practice?.protocol ? PROTOCOLS[practice.protocol as ProtocolId].level : null,
          target_duration: practice?.targetDurationS ?? null,
          intention: practice ? practice.intention : null,
          notes: practice?.notes ?? null,
          subjective_rating: practice?.subjectiveRating ?? null,
        }),
    ...(wsUrl === undefined ? {} : { websocket_url: wsUrl }),
    title: s.title,
    status: documented && s.status === 'ended' ? 'completed' : s.status,
    started_at: iso(s.startedAt),
    ended_at: s.endedAt === null ? null : iso(s.endedAt),
    coherence_threshold: s.coherenceThreshold,
    threshold_duration_s: s.thresholdDurationS,
    created_at: iso(s.createdAt),
    metadata: s.metadata,
    version: s.version,
  };
}

/**
 * The session, if `p` may see it. Someone else's session is a 404, never a hint that it
 * exists. `fresh` reads past the repository's cache (a few seconds old at most), for answers
 * a client bases a versioned change on.
 */
export async function visibleSession(ctx: AppContext, p: Principal, id: string, opts: { fresh?: boolean } = {}): Promise<Session> {
  const s = await ctx.sessions.get(id, opts);
  if (!s || !canAccess(p, s)) throw new AttuneError('not_found', `session ${JSON.stringify(id)} not found`, [{ field: 'session_id', reason: 'not_found' }]);
  return s;
}

/** A session's start or end as given by a client: a real timestamp from 2000 to a day from now. */
function sessionTime(v: string | number, field: string, now: number): number {
  const t = parseTimestamp(v);
  if (Number.isNaN(t)) throw new AttuneError('validation_error', `${field.slice(1)} must be ISO-8601 with a zone or epoch ms`, [{ field, reason: 'invalid_timestamp' }]);
  if (t < Date.UTC(2000, 0, 1) || t > now + 86_400_000) {
    throw new AttuneError('validation_error', `${field.slice(1)} is out of range`, [{ field, reason: 'out_of_range', message: 'must lie between 2000-01-01 and a day from now' }]);
  }
  return Math.round(t);
}

function encodeCursor(s: Pick<Session, 'startedAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([s.startedAt, s.id])).toString('base64url');
}

function decodeCursor(c: string): { startedAt: number; id: string } {
  try {
    const [startedAt, id] = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (Number.isSafeInteger(startedAt) && typeof id === 'string' && id.length <= 64) return { startedAt, id };
  } catch {
    /* fall through */
  }
  throw new AttuneError('validation_error', 'invalid cursor', [{ field: '?cursor', reason: 'invalid_cursor' }]);
}

interface TimelineRow {
  window_end_ms: number | string;
  valid: boolean | number;
  invalid_reason: string | null;
  partial: boolean | number;
  coverage: number | null;
  longest_gap_ms: number | null;
  coherence: number | null;
  coherence_ratio: number | null;
  hr: number | null;
  hrv: number | null;
  breathing_rate: number | null;
  sdnn: number | null;
  pnn50: number | null;
  late_beat_count: number | string | null;
}

const round = (v: number | null, digits = 4) => (v === null || !Number.isFinite(v) ? null : Number(v.toFixed(digits)));
const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
/** The middle value (the mean of the two middle ones for an even count); null for none. */
function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A session's duration, s: from its start to its end, or to `now` while it is active (the document's `duration`). */
export function sessionDurationS(s: Session, now: number): number {
  return Math.max(0, Math.round(((s.endedAt ?? now) - s.startedAt) / 1000));
}

/** The coherence platform document's coherence_ratio: the share of the session's duration in high coherence, 0..1. */
function highCoherenceShare(highS: number | null, durationS: number): number | null {
  if (highS === null || !(durationS > 0)) return null;
  return round(Math.min(1, highS / durationS));
}

/**
 * Metrics and timeline from one read of the session's windows, so the two always agree
 * (two queries could straddle an insert). A session without any window (its devices sent no RR
 * intervals) gets the figures its devices reported instead (store/device-figures.ts).
 */
export async function sessionMetrics(ctx: AppContext, s: Session, pacedBpm: number | null = null, now: number = ctx.clock?.() ?? Date.now()) {
  const durationS = sessionDurationS(s, now);
  const rs = await clickhouseOf(ctx).query({
    query: `SELECT toUnixTimestamp64Milli(window_end) AS window_end_ms, valid, invalid_reason, partial, coverage, longest_gap_ms,
              coherence, coherence_ratio,
              mean_hr_bpm AS hr, rmssd_ms AS hrv, breathing_rate_bpm AS breathing_rate, sdnn_ms AS sdnn, pnn50_pct AS pnn50, late_beat_count
            FROM ${ctx.database}.coherence_windows FINAL
            WHERE org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String}
            ORDER BY window_end`,
    query_params: { org: s.orgId, user: s.userId, sid: s.id },
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as TimelineRow[];
  // Only trusted windows enter an average. The worker never marks a partial window valid;
  // checking `partial` too keeps a row from any other writer out of the averages.
  const trusted = (r: TimelineRow) => Boolean(r.valid) && !r.partial;
  const valid = rows.filter(trusted);
  const invalidReasons: Record<string, number> = {};
  for (const r of rows) {
    if (trusted(r)) continue;
    const reason = r.invalid_reason ?? (r.partial ? 'partial' : 'unknown');
    invalidReasons[reason] = (invalidReasons[reason] ?? 0) + 1;
  }
  if (rows.length === 0) {
    const device = await deviceMetrics(ctx, s, durationS);
    if (device) return device;
  }
  const pick = (k: keyof TimelineRow) => valid.map((r) => r[k]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const coherence = pick('coherence');
  const highS = coherence.filter((c) => c >= HIGH_COHERENCE_SCORE).length * WINDOW_STEP_S;
  return {
    metrics: {
      average_coherence: round(mean(coherence)),
      // A loop, not Math.max(...xs): a session of weeks has more windows than call arguments may be.
      peak_coherence: coherence.length === 0 ? null : round(coherence.reduce((a, b) => (b > a ? b : a), -Infinity)),
      time_in_high_coherence: highS,
      coherence_ratio: valid.length === 0 ? null : highCoherenceShare(highS, durationS),
      mean_coherence_ratio: round(mean(pick('coherence_ratio'))),
      average_hr: round(mean(pick('hr')), 2),
      average_hrv: round(mean(pick('hrv')), 2),
      average_sdnn: round(mean(pick('sdnn')), 2),
      average_pnn50: round(mean(pick('pnn50')), 2),
      // The median, not the mean: a window's breathing rate is its dominant HRV rhythm, and in a
      // window where slow drift outweighs the breathing it reads 2-5/min beside neighbours that
      // read the breathing; the mean of that mix is neither (a metronome-paced record at
      // 15/min, meditation_M2 in ../shared/data/rr: mean 12.3, median 14.6).
      average_breathing_rate: round(median(pick('breathing_rate')), 2),
      breathing_sync_score: round(breathingSyncScore(pick('breathing_rate'), pacedBpm)),
      metrics_source: valid.length > 0 ? ('rr' as const) : null,
      device_reading_count: 0,
      window_count: rows.length,
      // Cumulative per session (since ClickHouse 0020 replay-stable, and a revival after the
      // end goes on from the count at the end): the highest.
      late_beat_count: rows.reduce((n, r) => Math.max(n, Number(r.late_beat_count ?? 0)), 0),
      valid_window_count: valid.length,
      partial_window_count: rows.filter((r) => Boolean(r.partial)).length,
      invalid_reasons: invalidReasons,
    },
    timeline: rows.map((r) => ({
      time: Math.round((int64(r.window_end_ms) - s.startedAt) / 1000),
      timestamp: iso(int64(r.window_end_ms)),
      coherence: round(r.coherence),
      coherence_ratio: round(r.coherence_ratio),
      hr: round(r.hr, 2),
      hrv: round(r.hrv, 2),
      breathing_rate: round(r.breathing_rate, 2),
      sdnn: round(r.sdnn, 2),
      pnn50: round(r.pnn50, 2),
      valid: trusted(r),
      invalid_reason: r.invalid_reason,
      partial: Boolean(r.partial),
      coverage: round(r.coverage, 3),
      longest_gap_ms: round(r.longest_gap_ms, 0),
    })),
  };
}

/**
 * The metrics and timeline of a session from what its devices reported (heart rate, HRV,
 * coherence in the device's own scale), in 5 s steps; null when they reported none of them or
 * any reading of the session has RR intervals.
 * Nothing Attune computes from RR intervals is there (coherence ratio, breathing rate).
 */
async function deviceMetrics(ctx: AppContext, s: Session, durationS: number) {
  const { rrReadings, steps } = await deviceFigures(clickhouseOf(ctx), ctx.database, { orgId: s.orgId, userId: s.userId, sessionId: s.id, startedAtMs: s.startedAt });
  // A session with RR intervals gets Attune's figures once its windows are in, never the
  // device's meanwhile (which would switch source as the windows arrive).
  if (rrReadings > 0 || steps.length === 0) return null;
  const d = summariseDeviceSteps(steps, HIGH_COHERENCE_SCORE, s.startedAt);
  return {
    metrics: {
      average_coherence: round(d.averageCoherence),
      peak_coherence: round(d.peakCoherence),
      time_in_high_coherence: d.highCoherenceS,
      coherence_ratio: highCoherenceShare(d.highCoherenceS, durationS),
      mean_coherence_ratio: null,
      average_hr: round(d.averageHrBpm, 2),
      average_hrv: round(d.averageHrvMs, 2),
      average_sdnn: null,
      average_pnn50: null,
      average_breathing_rate: null,
      breathing_sync_score: null,
      metrics_source: 'device' as const,
      device_reading_count: d.readings,
      window_count: 0,
      late_beat_count: 0,
      valid_window_count: 0,
      partial_window_count: 0,
      invalid_reasons: {},
    },
    timeline: steps.map((x) => ({
      time: Math.round((x.endMs - s.startedAt) / 1000),
      timestamp: iso(x.endMs),
      coherence: round(x.coherence),
      coherence_ratio: null,
      hr: round(x.hrBpm, 2),
      hrv: round(x.hrvMs, 2),
      breathing_rate: null,
      sdnn: null,
      pnn50: null,
      valid: true,
      invalid_reason: null,
      partial: false,
      coverage: null,
      longest_gap_ms: null,
    })),
  };
}

export async function registerSessionRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // metadata: at most 16 KB of JSON (ATTUNE_MAX_STORED_JSON_BYTES) and 32 levels deep.
  const storedLimits = defaultStoredJsonLimits(ctx.maxStoredJsonBytes);
  app.post<{
    Body: {
      device_id?: string;
      type?: string;
      title?: string;
      started_at?: string | number;
      coherence_threshold?: number;
      threshold_duration_s?: number;
      metadata?: Record<string, unknown>;
      protocol?: ProtocolId;
      target_duration?: number;
      intention?: string;
    };
  }>(
    '/v1/sessions',
    {
      config: { auth: { scope: Scopes.writeSessions } },
      schema: {
        tags: ['sessions'],
        summary: 'Start a session for the calling user.',
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          properties: {
            device_id: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$' },
            type: { type: 'string', enum: SESSION_TYPES, default: 'coherence', description: "solo is the coherence platform document's type." },
            protocol: { type: 'string', enum: PROTOCOL_IDS, description: 'Protocol id (coherence platform document, "Session Protocols").' },
            target_duration: {
              type: 'integer',
              minimum: 60,
              maximum: 86_400,
              description: "Seconds; within the protocol's documented duration range when a protocol is given (heart_breath_sync 5-30 min, ...).",
            },
            intention: { type: 'string', maxLength: 500 },
            title: { type: 'string', maxLength: 200 },
            started_at: { anyOf: [{ type: 'number' }, { type: 'string', maxLength: 40 }], description: 'Defaults to now.' },
            coherence_threshold: { type: 'number', minimum: 0, maximum: 1, default: 0.5, description: 'Score at or above which time counts towards coherence_threshold_reached.' },
            threshold_duration_s: { type: 'integer', minimum: 5, maximum: 3600, default: 30 },
            metadata: { type: 'object', additionalProperties: true, maxProperties: 50 },
          },
          additionalProperties: false,
        },
        response: { 201: sessionJsonSchema, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      if (req.body?.metadata !== undefined) checkStoredJson(req.body.metadata, '/metadata', storedLimits);
      const protocol = req.body?.protocol;
      const target = req.body?.target_duration;
      if (protocol !== undefined && target !== undefined) {
        const { minMinutes, maxMinutes } = PROTOCOLS[protocol];
        if (target < minMinutes * 60 || target > maxMinutes * 60) {
          throw new AttuneError('validation_error', `target_duration of ${protocol} must be ${minMinutes}-${maxMinutes} minutes`, [
            { field: '/target_duration', reason: 'out_of_range', message: `must lie between ${minMinutes * 60} and ${maxMinutes * 60} s for ${protocol}` },
          ]);
        }
      }
      const documented = protocol !== undefined || target !== undefined || req.body?.intention !== undefined;
      const startedAt = req.body?.started_at === undefined ? undefined : sessionTime(req.body.started_at, '/started_at', ctx.clock());
      if (req.body?.device_id) {
        const d = await ctx.devices.get(p.orgId, req.body.device_id);
        if (!d || !canAccess(p, d) || d.userId !== p.userId) {
          throw new AttuneError('validation_error', `device ${req.body.device_id} is not registered to you`, [{ field: '/device_id', reason: 'not_registered' }]);
        }
      }
      const s = await ctx.sessions.create({
        orgId: p.orgId,
        userId: p.userId,
        deviceId: req.body?.device_id,
        type: req.body?.type,
        title: req.body?.title,
        startedAt,
        coherenceThreshold: req.body?.coherence_threshold,
        thresholdDurationS: req.body?.threshold_duration_s,
        metadata: req.body?.metadata,
      });
      if (!ctx.users) return reply.status(201).send(sessionJson(s));
      await ctx.users.ensure(p.orgId, p.userId);
      const practice = documented
        ? await ctx.users.setPractice({ sessionId: s.id, protocol: protocol ?? null, targetDurationS: target ?? null, intention: req.body?.intention })
        : null;
      return reply.status(201).send(sessionJson(s, practice, websocketUrl(req, s.id)));
    },
  );

  app.get<{ Querystring: { limit?: number; cursor?: string; status?: 'active' | 'ended' | 'completed'; user_id?: string; include?: 'metadata' } }>(
    '/v1/sessions',
    {
      config: { auth: { scope: Scopes.readSessions } },
      schema: {
        tags: ['sessions'],
        summary: "List the caller's sessions, newest first (an org admin may pass user_id, or see the whole org).",
        description: 'Items leave out `metadata` (up to 16 KB each) unless `include=metadata`; GET /v1/sessions/{id} always has it.',
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            cursor: { type: 'string', maxLength: 300 },
            status: {
              type: 'string',
              enum: ['active', 'ended', 'completed'],
              description: 'active, or ended: every ended session, whether it is shown as ended or (started with a protocol) as completed; completed is the same filter, so a client can pass back the status it was given.',
            },
            user_id: { type: 'string', maxLength: 128 },
            include: { type: 'string', enum: ['metadata'], description: 'Put each session\'s metadata in the items.' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              data: { type: 'array', items: sessionJsonSchema },
              pagination: { type: 'object', properties: { limit: { type: 'integer' }, next_cursor: { type: ['string', 'null'] }, has_more: { type: 'boolean' } } },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const limit = req.query.limit ?? 50;
      const isAdmin = p.scopes.has(Scopes.adminOrg);
      if (req.query.user_id && !isAdmin && req.query.user_id !== p.userId) {
        throw new AttuneError('forbidden', "listing another user's sessions needs admin:org", [{ field: '?user_id', reason: 'missing_scope' }]);
      }
      const userId = req.query.user_id ?? (isAdmin ? null : p.userId);
      await ctx.users?.ensure(p.orgId, p.userId);
      const rows = await ctx.sessions.list({
        orgId: p.orgId,
        userId,
        status: req.query.status === 'completed' ? 'ended' : req.query.status,
        limit: limit + 1,
        before: req.query.cursor ? decodeCursor(req.query.cursor) : undefined,
        withMetadata: req.query.include === 'metadata',
      });
      const page = rows.slice(0, limit);
      const hasMore = rows.length > limit;
      const practices = ctx.users ? await ctx.users.practices(page.map((x) => x.id)) : null;
      return {
        data: page.map((x) => sessionJson(x, practices ? (practices.get(x.id) ?? null) : undefined, websocketUrl(req, x.id))),
        pagination: { limit, next_cursor: hasMore ? encodeCursor(page[page.length - 1]) : null, has_more: hasMore },
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/sessions/:id',
    {
      config: { auth: { scope: Scopes.readSessions } },
      schema: {
        tags: ['sessions'],
        summary: 'A session with its coherence metrics and timeline (one point per 5 s window).',
        security: [{ bearerAuth: [] }],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            properties: {
              ...sessionJsonSchema.properties,
              duration: { type: 'integer', description: 'Seconds from started_at to ended_at (to now while active).' },
              metrics: metricsSchema,
              timeline: { type: 'array', items: timelinePointSchema },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSession(ctx, p, req.params.id, { fresh: true });
      const practice = ctx.users ? await ctx.users.practice(s.id) : undefined;
      const paced = practice?.protocol ? PROTOCOLS[practice.protocol as ProtocolId].breathingRateBpm : null;
      // One instant for the duration and the share of it in high coherence (an active session's grow).
      const now = ctx.clock();
      const { metrics, timeline } = await sessionMetrics(ctx, s, paced, now);
      const duration = sessionDurationS(s, now);
      return { ...sessionJson(s, practice, websocketUrl(req, s.id)), duration, metrics, timeline };
    },
  );

  app.post<{ Params: { id: string }; Body: { ended_at?: string | number; notes?: string; subjective_rating?: number } | undefined }>(
    '/v1/sessions/:id/end',
    {
      config: { auth: { scope: Scopes.writeSessions } },
      schema: {
        tags: ['sessions'],
        summary: 'End a session (idempotent), with optional notes and a subjective rating 1-5 (stored; a later end may add them).',
        security: [{ bearerAuth: [] }],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        body: {
          type: ['object', 'null'],
          properties: {
            ended_at: { anyOf: [{ type: 'number' }, { type: 'string', maxLength: 40 }] },
            notes: { type: 'string', maxLength: 2000 },
            subjective_rating: { type: 'integer', minimum: 1, maximum: 5 },
          },
          additionalProperties: false,
        },
        response: { 200: sessionJsonSchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const s = await visibleSession(ctx, p, req.params.id);
      const at = req.body?.ended_at === undefined ? undefined : sessionTime(req.body.ended_at, '/ended_at', ctx.clock());
      // An end before the start is a client's mistake (a clock, a time zone), not a 0 s session.
      if (at !== undefined && at < s.startedAt) {
        throw new AttuneError('validation_error', 'ended_at is before the session started', [
          { field: '/ended_at', reason: 'out_of_range', message: `must not be before started_at ${iso(s.startedAt)}` },
        ]);
      }
      const ended = await ctx.sessions.end(s, at);
      if (!ctx.users) return sessionJson(ended);
      const given = req.body?.notes !== undefined || req.body?.subjective_rating !== undefined;
      const practice = given
        ? await ctx.users.setOutcome(s.id, { notes: req.body?.notes, subjectiveRating: req.body?.subjective_rating })
        : await ctx.users.practice(s.id);
      return sessionJson(ended, practice, websocketUrl(req, s.id));
    },
  );

  app.patch<{
    Params: { id: string };
    Body: { title?: string; type?: string; coherence_threshold?: number; threshold_duration_s?: number; metadata?: Record<string, unknown>; version?: number };
  }>(
    '/v1/sessions/:id',
    {
      config: { auth: { scope: Scopes.writeSessions } },
      schema: {
        tags: ['sessions'],
        summary: 'Change a session: title, type, threshold, metadata. With `version`, only if the session is still at that version (else 409 conflict).',
        security: [{ bearerAuth: [] }],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        body: {
          type: 'object',
          properties: {
            type: { type: 'string', enum: SESSION_TYPES },
            title: { type: 'string', maxLength: 200 },
            coherence_threshold: { type: 'number', minimum: 0, maximum: 1 },
            threshold_duration_s: { type: 'integer', minimum: 5, maximum: 3600 },
            metadata: { type: 'object', additionalProperties: true, maxProperties: 50 },
            version: { type: 'integer', minimum: 1, maximum: 2_147_483_647, description: 'The version the change is based on (optimistic concurrency).' },
          },
          additionalProperties: false,
        },
        response: { 200: sessionJsonSchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      if (req.body.metadata !== undefined) checkStoredJson(req.body.metadata, '/metadata', storedLimits);
      const s = await visibleSession(ctx, p, req.params.id, { fresh: true });
      const b = req.body;
      const updated = await ctx.sessions.update(
        s.id,
        {
          ...(b.title !== undefined ? { title: b.title } : {}),
          ...(b.type !== undefined ? { type: b.type } : {}),
          ...(b.coherence_threshold !== undefined ? { coherenceThreshold: b.coherence_threshold } : {}),
          ...(b.threshold_duration_s !== undefined ? { thresholdDurationS: b.threshold_duration_s } : {}),
          ...(b.metadata !== undefined ? { metadata: b.metadata } : {}),
        },
        { expectedVersion: b.version },
      );
      return sessionJson(updated, ctx.users ? await ctx.users.practice(updated.id) : undefined, websocketUrl(req, updated.id));
    },
  );
}
