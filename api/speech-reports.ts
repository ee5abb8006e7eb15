// GET /v1/reports/sessions: the speech-coaching document's session report, as JSON (the
// document's report: summary and daily trends, plus every session's row) or as CSV (one row per
// session, a header row first), streamed.
//
// Bounded memory for any period (a year of sessions): the sessions are read from ClickHouse
// (speech_summaries, one row per analysed session) in keyset pages of PAGE_ROWS ordered by
// (audio_started_at, session_id), each page's rows read from the client's result stream,
// enriched with that page's scores (ClickHouse) and titles (PostgreSQL, where sessions live),
// and written to the reply stream before the next page is asked for; Readable.from() waits for
// the socket (backpressure), and a client that goes away stops the generator and so the reads.
// Paging matters on chDB too: its connection materialises a whole result before handing it over.
//
// The report covers the sessions whose audio began in [startDate, endDate) (UTC; a date as
// endDate includes that day) that have been analysed (have a speech_summaries row); sessions
// with no audio, or still processing, have no figures to report. PDF is not produced: 406.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import { toNumber } from '../store/clickhouse.js';
import { SpeechTables } from '../store/rows.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { openObject } from '../http/doc-envelope.js';
import { dateBound, roundTo, speechRepo } from './speech-sessions.js';

/** Sessions per ClickHouse read (and per PostgreSQL look-up of titles). */
export const PAGE_ROWS = 1000;
/** Longest period a report covers, days. */
export const MAX_REPORT_DAYS = 366;
const DAY_MS = 86_400_000;
export const REPORT_FORMATS = ['json', 'csv', 'pdf'] as const;

/** One session of a report: the CSV's columns, in order, and the JSON report's `sessions` items. */
export const REPORT_COLUMNS = [
  'id', 'userId', 'title', 'type', 'status', 'createdAt', 'startedAt', 'duration', 'wordCount', 'wpm',
  'totalPauses', 'longPauses', 'fillerWords', 'repetitions', 'score', 'clarity', 'pace', 'engagement', 'confidence',
] as const;
export type ReportRow = Record<(typeof REPORT_COLUMNS)[number], string | number | null>;

interface ReportFilter {
  org: string;
  /** One user's sessions; the whole org's when null (admin:org). */
  user: string | null;
  from: number;
  to: number;
}

interface SummaryRow {
  session_id: string;
  user_id: string;
  started_ms: number | string;
  duration_ms: number | string;
  word_count: number | string;
  speaking_rate_wpm: number;
  pause_count: number | string;
  long_pause_count: number | string;
  filler_count: number | string;
  repetition_count: number | string;
}

interface ScoreRow {
  session_id: string;
  overall: number;
  clarity: number;
  pace: number;
  engagement: number;
  confidence: number;
}

const userClause = (f: ReportFilter) => (f.user === null ? '' : ' AND user_id = {user:String}');
const rangeClause = 'audio_started_at >= fromUnixTimestamp64Milli({from:Int64}) AND audio_started_at < fromUnixTimestamp64Milli({to:Int64})';

/**
 * The report's sessions in (audio_started_at, session_id) order, a page at a time: at most
 * PAGE_ROWS summaries, their scores and their titles are in memory at once.
 */
export async function* reportRows(ctx: AppContext, f: ReportFilter): AsyncGenerator<ReportRow> {
  const ch = clickhouseOf(ctx);
  const summaries = `${ctx.database}.${SpeechTables.speechSummaries}`;
  const scores = `${ctx.database}.${SpeechTables.speechScores}`;
  let after: { at: number; sid: string } | null = null;
  for (;;) {
    const rs = await ch.query({
      query: `SELECT session_id, user_id, toUnixTimestamp64Milli(audio_started_at) AS started_ms, duration_ms, word_count, speaking_rate_wpm,
                     pause_count, long_pause_count, filler_count, repetition_count
              FROM ${summaries} FINAL
              WHERE org_id = {org:String}${userClause(f)} AND ${rangeClause}
                ${after ? 'AND (audio_started_at, session_id) > (fromUnixTimestamp64Milli({at:Int64}), {sid:String})' : ''}
              ORDER BY audio_started_at, session_id
              LIMIT {limit:UInt32}`,
      query_params: { org: f.org, user: f.user ?? '', from: f.from, to: f.to, limit: PAGE_ROWS, ...(after ?? {}) },
      format: 'JSONEachRow',
    });
    const page: SummaryRow[] = [];
    for await (const rows of rs.stream<SummaryRow>()) for (const row of rows) page.push(row.json());
    if (page.length === 0) return;
    const ids = page.map((r) => r.session_id);
    const [scoreRows, described] = await Promise.all([
      ch
        .query({
          query: `SELECT session_id, argMax(overall, computed_at) AS overall, argMax(clarity, computed_at) AS clarity, argMax(pace, computed_at) AS pace,
                         argMax(engagement, computed_at) AS engagement, argMax(confidence, computed_at) AS confidence
                  FROM ${scores} FINAL WHERE org_id = {org:String} AND session_id IN {ids:Array(String)} GROUP BY session_id`,
          query_params: { org: f.org, ids },
          format: 'JSONEachRow',
        })
        .then((r) => r.json<ScoreRow>()),
      speechRepo(ctx).describeMany(f.org, ids),
    ]);
    const scoreOf = new Map(scoreRows.map((s) => [s.session_id, s]));
    for (const r of page) {
      const s = described.get(r.session_id);
      // Rows of a session no longer in PostgreSQL (deleted, its ClickHouse rows going) are left out.
      if (!s) continue;
      const sc = scoreOf.get(r.session_id);
      yield {
        id: r.session_id,
        userId: r.user_id,
        title: s.title,
        type: s.type,
        status: s.status,
        createdAt: new Date(s.createdAt).toISOString(),
        startedAt: new Date(toNumber(r.started_ms)).toISOString(),
        duration: roundTo(toNumber(r.duration_ms) / 1000, 3),
        wordCount: toNumber(r.word_count),
        wpm: roundTo(r.speaking_rate_wpm, 1),
        totalPauses: toNumber(r.pause_count),
        longPauses: toNumber(r.long_pause_count),
        // Not looked for with fluency analysis off: null, not a count of none.
        fillerWords: s.fluencyOff ? null : toNumber(r.filler_count),
        repetitions: s.fluencyOff ? null : toNumber(r.repetition_count),
        score: sc ? roundTo(sc.overall, 1) : null,
        clarity: sc ? roundTo(sc.clarity, 1) : null,
        pace: sc ? roundTo(sc.pace, 1) : null,
        engagement: sc ? roundTo(sc.engagement, 1) : null,
        confidence: sc ? roundTo(sc.confidence, 1) : null,
      };
    }
    if (page.length < PAGE_ROWS) return;
    const last = page[page.length - 1];
    after = { at: toNumber(last.started_ms), sid: last.session_id };
  }
}

/**
 * A CSV field (RFC 4180): quoted when it holds a comma, a double quote, CR or LF (quotes
 * doubled); null is an empty field. A field starting with =, +, - or @ is quoted too, but not
 * altered: spreadsheets may still read it as a formula (see the README).
 */
export function csvField(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]|^[=+\-@]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (values: ReadonlyArray<string | number | null>) => values.map(csvField).join(',') + '\r\n';

interface DayRow {
  day: string;
  sessions: number | string;
  duration_ms: number | string;
  score_sum: number;
  scored: number | string;
}

/**
 * The document's summary and trends, aggregated in ClickHouse by day (at most MAX_REPORT_DAYS
 * rows). improvement: the mean overall score of the scored sessions in the later half of the
 * period minus that of the earlier half (null unless both halves have one).
 */
async function reportSummary(ctx: AppContext, f: ReportFilter) {
  const rs = await clickhouseOf(ctx).query({
    query: `SELECT toString(toDate(s.audio_started_at)) AS day, count() AS sessions, sum(s.duration_ms) AS duration_ms,
                   sumIf(sc.overall, sc.n > 0) AS score_sum, countIf(sc.n > 0) AS scored
            FROM (SELECT session_id, audio_started_at, duration_ms FROM ${ctx.database}.${SpeechTables.speechSummaries} FINAL
                  WHERE org_id = {org:String}${userClause(f)} AND ${rangeClause}) AS s
            LEFT JOIN (SELECT session_id, argMax(overall, computed_at) AS overall, count() AS n FROM ${ctx.database}.${SpeechTables.speechScores} FINAL
                       WHERE org_id = {org:String}${userClause(f)} GROUP BY session_id) AS sc ON s.session_id = sc.session_id
            GROUP BY day ORDER BY day`,
    query_params: { org: f.org, user: f.user ?? '', from: f.from, to: f.to },
    format: 'JSONEachRow',
  });
  const days = await rs.json<DayRow>();
  const mid = f.from + (f.to - f.from) / 2;
  let total = 0;
  let durationMs = 0;
  let scoreSum = 0;
  let scored = 0;
  const half = [{ sum: 0, n: 0 }, { sum: 0, n: 0 }];
  for (const d of days) {
    const n = toNumber(d.sessions);
    const k = toNumber(d.scored);
    total += n;
    durationMs += toNumber(d.duration_ms);
    scoreSum += d.score_sum;
    scored += k;
    const h = half[Date.parse(`${d.day}T12:00:00Z`) < mid ? 0 : 1];
    h.sum += d.score_sum;
    h.n += k;
  }
  return {
    summary: {
      totalSessions: total,
      totalDuration: roundTo(durationMs / 1000, 3),
      averageScore: scored > 0 ? roundTo(scoreSum / scored, 1) : null,
      improvement: half[0].n > 0 && half[1].n > 0 ? roundTo(half[1].sum / half[1].n - half[0].sum / half[0].n, 1) : null,
    },
    trends: {
      scores: days.filter((d) => toNumber(d.scored) > 0).map((d) => ({ date: d.day, averageScore: roundTo(d.score_sum / toNumber(d.scored), 1) })),
      duration: days.map((d) => ({ date: d.day, averageDuration: roundTo(toNumber(d.duration_ms) / 1000 / toNumber(d.sessions), 1) })),
    },
  };
}

interface ReportQuery {
  startDate?: string;
  endDate?: string;
  format?: (typeof REPORT_FORMATS)[number];
  user_id?: string;
}

export async function registerSpeechReportRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: ReportQuery }>(
    '/v1/reports/sessions',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: "Report on the caller's analysed speech sessions of a period (an org admin: the org's, or one user's with user_id), as JSON or CSV, streamed.",
        description:
          'Sessions whose audio began in [startDate, endDate) (UTC; a date as endDate includes that day; default the last 30 days; at most 366 days) and that have been analysed. ' +
          "format=json (default): the speech-coaching document's `data.report` (summary, trends, downloadUrl: this report as CSV) plus `sessions`, one item per session. " +
          'format=csv: a header row, then one row per session (RFC 4180; empty field for null). format=pdf: 406 not_acceptable.',
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            startDate: { type: 'string', maxLength: 40, description: 'YYYY-MM-DD (UTC) or an ISO-8601 timestamp with a zone: audio began at or after.' },
            endDate: { type: 'string', maxLength: 40, description: 'YYYY-MM-DD (UTC, that day included) or an ISO-8601 timestamp: audio began before.' },
            format: { type: 'string', enum: [...REPORT_FORMATS], default: 'json' },
            user_id: { type: 'string', maxLength: 128, description: 'Another user of the org (needs admin:org).' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            description: 'The report (streamed).',
            content: {
              'application/json': { schema: openObject },
              'text/csv': { schema: { type: 'string', description: `Header row: ${REPORT_COLUMNS.join(',')}` } },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const q = req.query;
      const format = q.format ?? 'json';
      if (format === 'pdf') {
        throw new AttuneError('not_acceptable', 'reports are produced as json or csv, not pdf', [
          { field: '?format', reason: 'unsupported_report_format', message: 'accepted: json, csv' },
        ]);
      }
      const isAdmin = p.scopes.has(Scopes.adminOrg);
      if (q.user_id && !isAdmin && q.user_id !== p.userId) {
        throw new AttuneError('forbidden', "a report on another user's sessions needs admin:org", [{ field: '?user_id', reason: 'missing_scope' }]);
      }
      const to = q.endDate !== undefined ? dateBound(q.endDate, 'endDate') : ctx.clock();
      const from = q.startDate !== undefined ? dateBound(q.startDate, 'startDate') : to - 30 * DAY_MS;
      if (from >= to) throw new AttuneError('validation_error', 'startDate must be before endDate', [{ field: '?startDate', reason: 'invalid_range', message: 'not before endDate' }]);
      if (to - from > MAX_REPORT_DAYS * DAY_MS) {
        throw new AttuneError('validation_error', `a report covers at most ${MAX_REPORT_DAYS} days`, [{ field: '?endDate', reason: 'invalid_range', message: `more than ${MAX_REPORT_DAYS} days after startDate` }]);
      }
      const f: ReportFilter = { org: p.orgId, user: q.user_id ?? (isAdmin ? null : p.userId), from, to };
      // The document's period is inclusive: a November report ends "2023-11-30T23:59:59Z". So
      // period.end is the last instant covered (to - 1 ms: a date as endDate ends at its
      // 23:59:59.999), where it was the exclusive bound, the next day's midnight, which a client
      // of the document shows as one day too many (a March report "ending" April 1).
      const period = { start: new Date(from).toISOString(), end: new Date(to - 1).toISOString() };
      const id = `report_${createHash('sha256').update(JSON.stringify([f.org, f.user, from, to])).digest('hex').slice(0, 16)}`;

      if (format === 'csv') {
        reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="sessions-${period.start.slice(0, 10)}-${period.end.slice(0, 10)}.csv"`);
        return reply.send(
          Readable.from(
            (async function* () {
              yield csvLine(REPORT_COLUMNS);
              for await (const row of reportRows(ctx, f)) yield csvLine(REPORT_COLUMNS.map((c) => row[c]));
            })(),
          ),
        );
      }

      // JSON: the summary first (one aggregate query), then the sessions as they are read.
      const { summary, trends } = await reportSummary(ctx, f);
      const csvUrl = new URL(`${req.protocol}://${req.host}/v1/reports/sessions`);
      csvUrl.searchParams.set('startDate', period.start);
      // endDate as a timestamp is exclusive: the same bound as this report's.
      csvUrl.searchParams.set('endDate', new Date(to).toISOString());
      csvUrl.searchParams.set('format', 'csv');
      if (q.user_id) csvUrl.searchParams.set('user_id', q.user_id);
      const report = { id, type: 'sessions', period, summary, trends, downloadUrl: csvUrl.toString() };
      const head = JSON.stringify({ success: true, data: { report } });
      const meta = JSON.stringify({ timestamp: new Date(ctx.clock()).toISOString(), requestId: String(req.id) });
      reply.header('content-type', 'application/json; charset=utf-8');
      return reply.send(
        Readable.from(
          (async function* () {
            // `{"success":true,"data":{"report":{...}}}` opened up to add "sessions":[...] to the report.
            yield head.slice(0, -3) + ',"sessions":[';
            let first = true;
            for await (const row of reportRows(ctx, f)) {
              yield (first ? '' : ',') + JSON.stringify(row);
              first = false;
            }
            yield `]}},"meta":${meta}}`;
          })(),
        ),
      );
    },
  );
}
