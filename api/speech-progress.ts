// GET /v1/analytics/progress: the speech-coaching document's progress analytics of the caller
// (an org admin: of one user of the org with user_id). The period is a window ending now: week
// 7 days, month 30, quarter 91, year 365; "previous" is the window of the same length before
// it. One ClickHouse read: the analysed sessions (speech_summaries) whose audio began in the two
// windows, each with its latest scores (speech_scores), summed per window.
//
// Rules (also in the README):
//  - overallScore and categoryScores.{clarity, pace, engagement, confidence}: `current` and
//    `previous` the mean of the scored sessions' latest scores in each window, to 0.1 (null
//    without one), `change` current - previous of those rounded figures (null unless both), so
//    the three agree as shown; overallScore.trend `improving` when change >= +1 point,
//    `declining` when <= -1, `stable` between, null without a change.
//  - practiceTime: `total` seconds of analysed audio in the current window, `sessions` how many,
//    `average` total / sessions (null without sessions).
//  - improvements: the categories whose change is positive, largest first, each with
//    `improvement` (the change) and `sessions` (scored sessions in the current window).
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import { toNumber } from '../store/clickhouse.js';
import { SpeechTables } from '../store/rows.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { docEnvelopeSchema, openObject, withDocEnvelope } from '../http/doc-envelope.js';
import { roundTo } from './speech-sessions.js';

export const PROGRESS_PERIOD_DAYS = { week: 7, month: 30, quarter: 91, year: 365 } as const;
export const PROGRESS_METRICS = ['overallScore', 'categoryScores', 'practiceTime', 'improvements'] as const;
export const PROGRESS_CATEGORIES = ['clarity', 'pace', 'engagement', 'confidence'] as const;
/** A change of at least this many points (0-100 scale) is a trend. */
export const TREND_POINTS = 1;
const SCORES = ['overall', ...PROGRESS_CATEGORIES] as const;

type Period = keyof typeof PROGRESS_PERIOD_DAYS;

interface WindowRow {
  is_current: number | boolean;
  sessions: number | string;
  duration_ms: number | string;
  scored: number | string;
  overall: number;
  clarity: number;
  pace: number;
  engagement: number;
  confidence: number;
}

export async function registerSpeechProgressRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: { period?: Period; metrics?: string; user_id?: string } }>(
    '/v1/analytics/progress',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: "The caller's speech progress over a period (an org admin: one user's with user_id), against the period before.",
        description:
          'period: week (7 days), month (30), quarter (91) or year (365), ending now; previous: the same length before. ' +
          `metrics: comma-separated among ${PROGRESS_METRICS.join(', ')} (default all). Rules in the README (Progress analytics).`,
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            period: { type: 'string', enum: Object.keys(PROGRESS_PERIOD_DAYS), default: 'month' },
            metrics: { type: 'string', maxLength: 200 },
            user_id: { type: 'string', maxLength: 128, description: 'Another user of the org (needs admin:org).' },
          },
          additionalProperties: false,
        },
        response: {
          200: { type: 'object', properties: docEnvelopeSchema({ type: 'object', properties: { analytics: openObject } }) },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const q = req.query;
      const period = q.period ?? 'month';
      // `metrics=` with nothing in it (a dashboard's empty selection sent as is) is the default, all of them: it answered none.
      const listed = q.metrics === undefined ? [] : q.metrics.split(',').map((m) => m.trim()).filter((m) => m !== '');
      const wanted = listed.length === 0 ? [...PROGRESS_METRICS] : listed;
      for (const m of wanted) {
        if (!(PROGRESS_METRICS as readonly string[]).includes(m)) {
          throw new AttuneError('validation_error', `unknown metric ${JSON.stringify(m)} (known: ${PROGRESS_METRICS.join(', ')})`, [{ field: '?metrics', reason: 'invalid_value' }]);
        }
      }
      if (q.user_id && q.user_id !== p.userId && !p.scopes.has(Scopes.adminOrg)) {
        throw new AttuneError('forbidden', "another user's progress needs admin:org", [{ field: '?user_id', reason: 'missing_scope' }]);
      }
      const now = ctx.clock();
      const len = PROGRESS_PERIOD_DAYS[period] * 86_400_000;
      const rs = await clickhouseOf(ctx).query({
        query: `SELECT s.audio_started_at >= fromUnixTimestamp64Milli({cur:Int64}) AS is_current, count() AS sessions, sum(s.duration_ms) AS duration_ms,
                       countIf(sc.n > 0) AS scored, ${SCORES.map((c) => `sumIf(sc.${c}, sc.n > 0) AS ${c}`).join(', ')}
                FROM (SELECT session_id, audio_started_at, duration_ms FROM ${ctx.database}.${SpeechTables.speechSummaries} FINAL
                      WHERE org_id = {org:String} AND user_id = {user:String}
                        AND audio_started_at >= fromUnixTimestamp64Milli({prev:Int64}) AND audio_started_at < fromUnixTimestamp64Milli({now:Int64})) AS s
                LEFT JOIN (SELECT session_id, ${SCORES.map((c) => `argMax(${c}, computed_at) AS ${c}`).join(', ')}, count() AS n
                           FROM ${ctx.database}.${SpeechTables.speechScores} FINAL WHERE org_id = {org:String} AND user_id = {user:String} GROUP BY session_id) AS sc
                  ON s.session_id = sc.session_id
                GROUP BY is_current`,
        query_params: { org: p.orgId, user: q.user_id ?? p.userId, prev: now - 2 * len, cur: now - len, now },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<WindowRow>();
      const cur = rows.find((r) => Boolean(toNumber(r.is_current as number)));
      const prev = rows.find((r) => !toNumber(r.is_current as number));
      const mean = (r: WindowRow | undefined, c: (typeof SCORES)[number]) => (r && toNumber(r.scored) > 0 ? r[c] / toNumber(r.scored) : null);
      // change is the difference of the figures shown (each rounded to 0.1 first), so that
      // current - previous = change on a dashboard, and the trend follows the change shown
      // (until 12-06 it was the rounded difference of the unrounded means: 85.46 and 80.34
      // showed as 85.5 and 80.3 with a change of 5.1).
      const compare = (c: (typeof SCORES)[number]) => {
        const current = roundTo(mean(cur, c), 1);
        const previous = roundTo(mean(prev, c), 1);
        const change = current !== null && previous !== null ? roundTo(current - previous, 1) : null;
        return { current, previous, change };
      };
      const analytics: Record<string, unknown> = { period };
      if (wanted.includes('overallScore')) {
        const o = compare('overall');
        analytics.overallScore = { ...o, trend: o.change === null ? null : o.change >= TREND_POINTS ? 'improving' : o.change <= -TREND_POINTS ? 'declining' : 'stable' };
      }
      if (wanted.includes('categoryScores')) analytics.categoryScores = Object.fromEntries(PROGRESS_CATEGORIES.map((c) => [c, compare(c)]));
      if (wanted.includes('practiceTime')) {
        const sessions = cur ? toNumber(cur.sessions) : 0;
        const total = cur ? toNumber(cur.duration_ms) / 1000 : 0;
        analytics.practiceTime = { total: roundTo(total, 1), average: sessions > 0 ? roundTo(total / sessions, 1) : null, sessions };
      }
      if (wanted.includes('improvements')) {
        analytics.improvements = PROGRESS_CATEGORIES.map((c) => ({ category: c, improvement: compare(c).change, sessions: cur ? toNumber(cur.scored) : 0 }))
          .filter((x): x is { category: (typeof PROGRESS_CATEGORIES)[number]; improvement: number; sessions: number } => x.improvement !== null && x.improvement > 0)
          .sort((a, b) => b.improvement - a.improvement);
      }
      // Attune's addition: the two windows compared.
      analytics.window = {
        current: { start: new Date(now - len).toISOString(), end: new Date(now).toISOString() },
        previous: { start: new Date(now - 2 * len).toISOString(), end: new Date(now - len).toISOString() },
      };
      return withDocEnvelope({}, { analytics }, req, now);
    },
  );
}
