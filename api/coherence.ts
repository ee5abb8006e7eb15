// Coherence history: GET /v1/users/me/coherence, aggregated from coherence_windows FINAL with
// the per-user daily rollup's rule (user_daily_coherence, migration 0006: valid windows with a
// score and a ratio), read directly so one scan also counts
// the sessions of each period; a window inserted twice, or an insert a crash cut short, changes
// no figure; it scans the user's windows of the asked days, at most 17,280 a day. Days (and
// the dates asked) are calendar days in the user's time zone (preferences.timezone, UTC until
// set), the same days the streaks of GET /v1/users/me count. A window is
// valid only when it can be trusted (a full 64 s of data, no long gap:
// pipelines/hrv/window-metrics.ts), so partial and gapped windows are in no figure here.
//
// The answer has the coherence platform document's `data` (date, sessions, total_minutes,
// average_coherence, peak_coherence, time_in_high_coherence in minutes, as total_minutes) and
// `summary` (period_average, trend, trend_percentage), and Attune's earlier `data_points`
// (time_in_high_coherence in seconds) and summary fields, unchanged.
//
// Trend rule: a least-squares line through the periods' average scores, each at its place in
// the calendar (x = the period's position in days, weeks or months, so a period without data
// counts as the time it is). trend is stable when the line changes by less than
// TREND_STABLE_SLOPE (0.01 of score) per period, else improving or declining by its sign;
// trend_percentage is the line's change from the first period with data to the last (slope x
// their distance in periods) as a percentage of period_average, 1 decimal (0 with fewer than
// two periods).
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { int64, withinQueryTimes } from '../lib/time.js';
import { Scopes } from '../lib/principal.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { HIGH_COHERENCE_SCORE, WINDOW_STEP_S } from './sessions.js';
import { localDay } from './users.js';

const DAY_MS = 86_400_000;
/** Below this change of the average score per period the trend is called stable. */
export const TREND_STABLE_SLOPE = 0.01;

const bucketExpr = {
  day: 'day',
  week: 'toMonday(day)',
  month: 'toStartOfMonth(day)',
} as const;
type Granularity = keyof typeof bucketExpr;

const pointSchema = {
  type: 'object',
  properties: {
    date: { type: 'string', format: 'date', description: "First day of the period (the user's time zone)." },
    average_coherence: { type: 'number', description: 'Mean coherence score 0..1.' },
    peak_coherence: { type: 'number' },
    time_in_high_coherence: { type: 'number', description: `Seconds with coherence >= ${HIGH_COHERENCE_SCORE}.` },
    coherence_ratio: { type: 'number', description: 'Mean McCraty coherence ratio.' },
    average_hr: { type: ['number', 'null'] },
    average_hrv: { type: ['number', 'null'], description: 'Mean RMSSD, ms.' },
    window_count: { type: 'integer', description: 'Valid (trusted) 5 s windows the figures are computed from; partial and gapped windows are not counted.' },
  },
} as const;

/** An item of the document's `data`: the point's fields, with the document's units. */
const dataSchema = {
  type: 'object',
  properties: {
    ...pointSchema.properties,
    sessions: { type: 'integer', description: 'Sessions with at least one valid window in the period.' },
    total_minutes: { type: 'number', description: 'Minutes of valid windows (5 s each), 1 decimal.' },
    time_in_high_coherence: { type: 'number', description: `Minutes with coherence >= ${HIGH_COHERENCE_SCORE}, 1 decimal (data_points has it in seconds).` },
    time_in_high_coherence_s: { type: 'number', description: 'The same in seconds.' },
  },
} as const;

interface Row {
  bucket: string;
  average_coherence: number;
  peak_coherence: number;
  high_s: number | string;
  coherence_ratio: number;
  average_hr: number | null;
  average_hrv: number | null;
  window_count: number | string;
  sessions: number | string;
}

const r1 = (v: number) => Number(v.toFixed(1));

const r4 = (v: number | null) => (v === null || !Number.isFinite(v) ? null : Number(v.toFixed(4)));

/**
 * Least-squares slope of y over the periods' positions (default: the point index): the change of
 * the average per period. The history passes each period's position in the calendar
 * (periodPosition), so periods without data count as the time they are: by the index, three
 * practice days of which two were 19 days before the third read as a change per day 19 times
 * too steep ("declining" by day and "stable" by week for the same windows).
 */
export function trendSlope(values: number[], positions: number[] = values.map((_, i) => i)): number {
  const n = values.length;
  if (n < 2) return 0;
  const mx = positions.reduce((a, b) => a + b, 0) / n;
  const my = values.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (positions[i] - mx) * (values[i] - my);
    den += (positions[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** A period's position in periods of its granularity, from its first day (YYYY-MM-DD). */
export function periodPosition(date: string, granularity: Granularity): number {
  const t = Date.parse(`${date}T00:00:00Z`);
  if (granularity === 'month') {
    const d = new Date(t);
    return d.getUTCFullYear() * 12 + d.getUTCMonth();
  }
  const days = Math.round(t / 86_400_000);
  return granularity === 'week' ? days / 7 : days;
}

/**
 * The trend line's change over the data's span (`span` periods, default n - 1: consecutive
 * periods) as a percentage of the period average (1 decimal); 0 with fewer than two periods.
 */
export function trendPercentage(slope: number, n: number, average: number | null, span = n - 1): number {
  if (n < 2 || average === null || average === 0) return 0;
  return Number(((100 * slope * span) / average).toFixed(1));
}

function parseDate(v: string | undefined, field: string, def: number): number {
  if (v === undefined) return def;
  let t = /^\d{4}-\d{2}-\d{2}$/.test(v) ? Date.parse(`${v}T00:00:00Z`) : NaN;
  // Date.parse rolls 2026-02-31 over to March; a date that does not print back is not real.
  if (!Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) !== v) t = NaN;
  if (Number.isNaN(t)) throw new AttuneError('validation_error', `${field} must be a date YYYY-MM-DD`, [{ field: `?${field}`, reason: 'invalid_date' }]);
  if (!withinQueryTimes(t)) throw new AttuneError('validation_error', `${field} must lie between 1970-01-01 and 2299-12-31`, [{ field: `?${field}`, reason: 'out_of_range' }]);
  return t;
}

const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export async function registerCoherenceRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: { start_date?: string; end_date?: string; granularity?: Granularity; user_id?: string } }>(
    '/v1/users/me/coherence',
    {
      config: { auth: { scope: Scopes.readCoherence } },
      schema: {
        tags: ['coherence'],
        summary: "The caller's coherence history by day, week or month, with a summary and trend.",
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            start_date: { type: 'string', description: "YYYY-MM-DD (the user's time zone, inclusive); default 30 days before end_date." },
            end_date: { type: 'string', description: "YYYY-MM-DD (the user's time zone, inclusive); default today there." },
            granularity: { type: 'string', enum: ['day', 'week', 'month'], default: 'day' },
            user_id: { type: 'string', maxLength: 128, description: 'Another user of the org (needs admin:org).' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              user_id: { type: 'string' },
              timezone: { type: 'string', description: "The user's time zone (preferences.timezone, UTC by default): days are its calendar days." },
              granularity: { type: 'string' },
              start_date: { type: 'string' },
              end_date: { type: 'string' },
              data: { type: 'array', items: dataSchema },
              data_points: { type: 'array', items: pointSchema, description: 'Kept for earlier clients: data without sessions and total_minutes, time_in_high_coherence in seconds.' },
              summary: {
                type: 'object',
                properties: {
                  period_average: { type: ['number', 'null'], description: 'Mean score over the range, weighted by windows.' },
                  trend_percentage: { type: 'number', description: "The trend line's change over the range, percent of period_average." },
                  average_coherence: { type: ['number', 'null'] },
                  peak_coherence: { type: ['number', 'null'] },
                  time_in_high_coherence: { type: 'number' },
                  trend: { type: 'string', enum: ['improving', 'declining', 'stable'] },
                  trend_slope: { type: 'number', description: 'Change of average_coherence per period.' },
                  window_count: { type: 'integer' },
                },
              },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const userId = req.query.user_id ?? p.userId;
      if (userId !== p.userId && !p.scopes.has(Scopes.adminOrg)) {
        throw new AttuneError('forbidden', "reading another user's coherence needs admin:org", [{ field: '?user_id', reason: 'missing_scope' }]);
      }
      const granularity = req.query.granularity ?? 'day';
      // Days are the user's calendar days (preferences.timezone; UTC until they set one), as the streaks.
      const timezone = (ctx.users ? (await ctx.users.get(p.orgId, userId))?.timezone : undefined) ?? 'UTC';
      const today = Date.parse(`${localDay(ctx.clock(), timezone)}T00:00:00Z`);
      const end = parseDate(req.query.end_date, 'end_date', today);
      const start = parseDate(req.query.start_date, 'start_date', end - 30 * DAY_MS);
      if (start > end) throw new AttuneError('validation_error', 'start_date is after end_date', [{ field: '?start_date', reason: 'invalid_range', message: 'after end_date' }]);
      if (end - start > 3 * 366 * DAY_MS) throw new AttuneError('validation_error', 'at most 3 years per request', [{ field: '?start_date', reason: 'invalid_range', message: 'range too long' }]);

      const rs = await clickhouseOf(ctx).query({
        query: `SELECT toString(${bucketExpr[granularity]}) AS bucket,
                  avg(assumeNotNull(coherence)) AS average_coherence,
                  max(assumeNotNull(coherence)) AS peak_coherence,
                  sum(toUInt32(if(assumeNotNull(coherence) >= ${HIGH_COHERENCE_SCORE}, ${WINDOW_STEP_S}, 0))) AS high_s,
                  avg(assumeNotNull(coherence_ratio)) AS coherence_ratio,
                  avg(mean_hr_bpm) AS average_hr,
                  avg(rmssd_ms) AS average_hrv,
                  count() AS window_count,
                  uniqExact(session_id) AS sessions
                FROM (SELECT toDate(window_end, {tz:String}) AS day, session_id, coherence, coherence_ratio, mean_hr_bpm, rmssd_ms
                      FROM ${ctx.database}.coherence_windows FINAL
                      WHERE org_id = {org:String} AND user_id = {user:String}
                        AND window_end >= toDateTime64({start:String}, 3, {tz:String}) AND window_end < toDateTime64({endExcl:String}, 3, {tz:String})
                        AND valid AND coherence IS NOT NULL AND coherence_ratio IS NOT NULL)
                GROUP BY bucket ORDER BY bucket`,
        query_params: { org: p.orgId, user: userId, start: ymd(start), endExcl: ymd(end + DAY_MS), tz: timezone },
        format: 'JSONEachRow',
      });
      const rows = (await rs.json()) as Row[];
      const points = rows.map((r) => ({
        date: r.bucket,
        average_coherence: r4(r.average_coherence)!,
        peak_coherence: r4(r.peak_coherence)!,
        time_in_high_coherence: int64(r.high_s),
        coherence_ratio: r4(r.coherence_ratio)!,
        average_hr: r4(r.average_hr),
        average_hrv: r4(r.average_hrv),
        window_count: int64(r.window_count),
      }));
      const windows = points.reduce((a, x) => a + x.window_count, 0);
      // From the periods' unrounded means: averaging the rounded ones made the same windows'
      // period_average depend on the granularity (0.5617 by day, 0.5618 by week and in
      // /v1/users/me's stats, for three days of one session each).
      const positions = rows.map((r) => periodPosition(r.bucket, granularity));
      const slope = trendSlope(rows.map((r) => Number(r.average_coherence)), positions);
      const span = positions.length < 2 ? 0 : positions[positions.length - 1] - positions[0];
      // Weighted by windows, so a long day counts more than a short one.
      const average = windows === 0 ? null : r4(rows.reduce((a, r) => a + Number(r.average_coherence) * int64(r.window_count), 0) / windows);
      const data = points.map((x, i) => ({
        ...x,
        sessions: int64(rows[i].sessions),
        total_minutes: r1((x.window_count * WINDOW_STEP_S) / 60),
        time_in_high_coherence: r1(x.time_in_high_coherence / 60),
        time_in_high_coherence_s: x.time_in_high_coherence,
      }));
      return {
        user_id: userId,
        timezone,
        granularity,
        start_date: ymd(start),
        end_date: ymd(end),
        data,
        data_points: points,
        summary: {
          period_average: average,
          trend_percentage: trendPercentage(slope, points.length, average, span),
          average_coherence: average,
          peak_coherence: points.length === 0 ? null : Math.max(...points.map((x) => x.peak_coherence)),
          time_in_high_coherence: points.reduce((a, x) => a + x.time_in_high_coherence, 0),
          trend: Math.abs(slope) < TREND_STABLE_SLOPE ? 'stable' : slope > 0 ? 'improving' : 'declining',
          trend_slope: r4(slope) ?? 0,
          window_count: windows,
        },
      };
    },
  );
}
