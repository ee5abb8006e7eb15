// Organisation analytics (coherence platform document, "Analytics Endpoints (Enterprise)";
// issue 12): GET /v1/organizations/{org_id}/analytics?period=7d|30d|90d, scope admin:org, the
// token's own organisation only (another is 403 other_organisation).
//
// Rules (also in the README):
//  - period: the last N calendar days in UTC, today included ([today − N + 1, today + 1));
//    the previous period is the N days before it.
//  - users.total: users of the organisation Attune has seen (PostgreSQL users, created on
//    first sight of a subject), and at least users.active.
//  - users.active: distinct users with a valid coherence window in the period (they practised
//    with a sensor); active_rate = active / total (0 when total is 0), 4 decimals.
//  - sessions.total: sessions started in the period, any status. average_duration: mean
//    seconds from start to end of those that have ended (whole seconds; null when none has).
//    average_coherence: mean score 0..1 of the period's valid windows (null without any).
//  - trends.coherence_improvement: average_coherence of the period minus that of the previous
//    period, in score points (0..1 scale, 4 decimals); null when either has no valid window.
//  - trends.engagement_trend: sessions of the period against the previous period's: stable
//    within ENGAGEMENT_STABLE_BAND (±10 %, or both 0), else increasing or decreasing (from 0
//    to any: increasing).
//  - trends.top_protocol: the protocol of most sessions started in the period (ties: the
//    first by name); null when none names a protocol.
//  - wellness_impact (estimated_stress_reduction, productivity_correlation) is answered with
//    both null: Attune measures no stress and no productivity, so there is nothing to estimate
//    them from; the object is there so that a client reading the document's fields gets null
//    rather than a TypeError (until 12-06 it was left out).
//
// Where the figures come from: the coherence figures and active users from ClickHouse's
// projection org_daily_users of coherence_windows (schemas/clickhouse/0010, replacing 0008's
// org_daily_coherence: per org, UTC day and valid flag, the day's users as an exact set, so a
// period reads one row per day, not the windows);
// users from PostgreSQL's users table, and sessions, durations and protocols from its daily
// rollup org_daily_sessions (schemas/postgres/0007: per org, UTC day of the start and
// protocol), kept by triggers in the same transaction as every session change, through a
// per-session ledger so that a replayed or retried write changes nothing
// (store/postgres/org-analytics-repo.ts). PostgreSQL rather than carrying the protocol into
// ClickHouse's sessions dimension: the dimension is fed asynchronously through the outbox and
// the bus and is only correct read with FINAL (a replayed change is a second row until a
// merge), which an aggregate projection or AggregatingMergeTree cannot offer; the rollup
// here is exact at every commit. Both stores are asked at once, PostgreSQL in one statement
// (OrgAnalyticsRepository.orgFigures).
//
// The ClickHouse answer is kept per organisation and period beside the version of
// coherence_windows it was computed at (its active parts, OrgCoherenceReader) and reused only
// while that version is current, so every answer equals a fresh computation (no time to live):
// the version read costs ~4 ms, the projection query 13-25 ms. Not a materialized view into a
// small AggregatingMergeTree table instead (measured at 7-8 ms for 90 days against 16-25 ms):
// its rows are written apart from the windows' parts and never merged away with a duplicate,
// so a replayed window or a retried insert would count twice for good (see 0008 and 0010).
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { LRUCache } from 'lru-cache';
import { AttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { HIGH_COHERENCE_SCORE } from './sessions.js';

const DAY_MS = 86_400_000;
export const PERIODS = { '7d': 7, '30d': 30, '90d': 90 } as const;
export type Period = keyof typeof PERIODS;

/** Session counts within ±10 % of the previous period's are a stable engagement. */
export const ENGAGEMENT_STABLE_BAND = 0.1;

export type EngagementTrend = 'increasing' | 'stable' | 'decreasing';

/** The engagement rule above, from the sessions of the period and of the one before. */
export function engagementTrend(current: number, previous: number): EngagementTrend {
  if (previous === 0) return current > 0 ? 'increasing' : 'stable';
  const change = (current - previous) / previous;
  if (Math.abs(change) <= ENGAGEMENT_STABLE_BAND) return 'stable';
  return change > 0 ? 'increasing' : 'decreasing';
}

/** The period's bounds (epoch ms, UTC days): [from, to) and the previous period's start. */
export function periodBounds(period: Period, now: number): { prevFrom: number; from: number; to: number } {
  const days = PERIODS[period];
  const to = Math.floor(now / DAY_MS) * DAY_MS + DAY_MS;
  const from = to - days * DAY_MS;
  return { prevFrom: from - days * DAY_MS, from, to };
}

const r4 = (v: number | null) => (v === null || !Number.isFinite(v) ? null : Number(v.toFixed(4)));
const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export interface CoherenceRow {
  cur: number | string | boolean;
  valid: number | string | boolean;
  users: number | string;
  windows: number | string;
  score_sum: number | string | null;
  high_windows: number | string;
}

/**
 * The period's and the previous period's coherence from the projection org_daily_users
 * (schemas/clickhouse/0010): the query filters on the projection's keys, groups by an
 * expression of its day and asks exactly its aggregates, so ClickHouse merges one row per day
 * (the users as exact sets) instead of reading windows (no FINAL: see 0008 for what that costs).
 * The valid flag is a grouping key rather than a filter and the caller keeps the valid rows
 * (validCoherence): the same answer, and with 10 M windows the 90-day read took 8-11 ms
 * instead of 20 ms (medians of 40 at load 3.5-5), the 7-day one about the same (10 ms).
 */
export function orgCoherenceQuery(database: string): string {
  return `SELECT toDate(window_end) >= {from:Date} AS cur, valid, uniqExactIf(user_id, coherence IS NOT NULL) AS users, count(coherence) AS windows,
                 sum(coherence) AS score_sum, countIf(coherence >= ${HIGH_COHERENCE_SCORE}) AS high_windows
          FROM ${database}.coherence_windows
          WHERE org_id = {org:String} AND toDate(window_end) >= {prevFrom:Date} AND toDate(window_end) < {to:Date}
          GROUP BY cur, valid`;
}

const isTrue = (v: unknown) => v === true || v === 1 || v === '1' || v === 'true';

/** The valid windows' row of the period (current) or of the one before, from orgCoherenceQuery's rows. */
export function validCoherence(rows: CoherenceRow[], current: boolean): CoherenceRow | undefined {
  return rows.find((r) => isTrue(r.valid) && isTrue(r.cur) === current);
}

/** The coherence query's parameters for one organisation and period. */
export interface CoherenceParams {
  org: string;
  prevFrom: string;
  from: string;
  to: string;
}

/**
 * What the coherence query's answer depends on, read cheaply: the active parts of
 * coherence_windows (name, rows, modification time) and the table's UUID. Every insert writes
 * a new part, every merge or mutation replaces parts by parts of new names (block numbers
 * only grow, a mutation adds its version to the name; lightweight DELETE and UPDATE are refused
 * on this table, which has a projection and no _block_number column), and a dropped and
 * recreated table has another UUID (on a server's Atomic database) or parts written at another
 * time; so whenever a row the query reads can have changed, this list has changed. The
 * database name is an identifier checked by the store (assertIdentifier).
 */
export function coherenceVersionQuery(database: string): string {
  return `SELECT name, rows, toUnixTimestamp(modification_time) AS t, toString(uuid) AS uuid FROM system.parts
          WHERE database = '${database}' AND table = 'coherence_windows' AND active ORDER BY name`;
}

/**
 * The coherence figures of organisations' periods, each answer kept beside the version of
 * coherence_windows it was computed at (coherenceVersionQuery) and reused only while that
 * version is current: every answer equals a fresh computation, there is no time to live.
 * Why: the projection read costs 13-25 ms even on one row per day (bench:api, mostly the
 * engine's per-query work on a projection, not the rows: the same states in a small table read
 * in 7-8 ms), while the version read costs 3-4 ms. On a store taking windows all the time
 * the version changes with every write and each request computes afresh (version read +
 * query); see the README for both figures.
 *
 * The version is read before the query and the answer kept under it: if a write lands between
 * the two, the answer holds it but its version is already gone (part names never come back),
 * so no later request matches it. When the parts cannot be read that request is computed
 * afresh; a store that refuses system.parts (ACCESS_DENIED, a server without the grant) is
 * read afresh from then on.
 */
export class OrgCoherenceReader {
  private readonly answers = new LRUCache<string, { version: string; rows: CoherenceRow[] }>({ max: 1024 });
  private versioned = true;
  /** Answers served from the cache and computed afresh (tests and the bench read these). */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  /** Forgets every kept answer (the bench's cache-miss route). */
  clear(): void {
    this.answers.clear();
  }

  /** The query run now, without the cache. */
  async fresh(params: CoherenceParams): Promise<CoherenceRow[]> {
    const rs = await this.client.query({ query: orgCoherenceQuery(this.database), query_params: { ...params }, format: 'JSONEachRow' });
    return (await rs.json()) as CoherenceRow[];
  }

  private async version(): Promise<string | null> {
    if (!this.versioned) return null;
    try {
      const rs = await this.client.query({ query: coherenceVersionQuery(this.database), format: 'JSONEachRow' });
      const parts = (await rs.json()) as Array<{ name: string; rows: number | string; t: number | string; uuid: string }>;
      return parts.map((p) => `${p.uuid}/${p.name}/${p.rows}/${p.t}`).join(',');
    } catch (err) {
      const e = err as { code?: unknown; type?: unknown };
      if (e.code === '497' || e.type === 'ACCESS_DENIED') this.versioned = false;
      return null;
    }
  }

  async read(params: CoherenceParams): Promise<CoherenceRow[]> {
    const version = await this.version();
    const key = `${params.org}\u0000${params.prevFrom}\u0000${params.from}\u0000${params.to}`;
    if (version !== null) {
      const kept = this.answers.get(key);
      if (kept && kept.version === version) {
        this.stats.hits++;
        return kept.rows;
      }
    }
    this.stats.misses++;
    const rows = await this.fresh(params);
    if (version !== null) this.answers.set(key, { version, rows });
    return rows;
  }
}

const readers = new WeakMap<ClickHouseClient, OrgCoherenceReader>();

/** The reader of an app's ClickHouse client (one cache per client; the bench and tests read its stats). */
export function coherenceReader(ctx: Pick<AppContext, 'clickhouse' | 'database'>): OrgCoherenceReader {
  const client = clickhouseOf(ctx);
  let reader = readers.get(client);
  if (!reader) readers.set(client, (reader = new OrgCoherenceReader(client, ctx.database)));
  return reader;
}

export async function registerOrgAnalyticsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const repo = ctx.orgAnalytics;
  if (!repo) return;
  const num = { type: 'number' };
  app.get<{ Params: { org_id: string }; Querystring: { period?: Period } }>(
    '/v1/organizations/:org_id/analytics',
    {
      config: { auth: { scope: Scopes.adminOrg } },
      schema: {
        tags: ['analytics'],
        summary: "The organisation's users, sessions and coherence over the last 7, 30 or 90 days, with trends against the period before (admin:org, own organisation).",
        security: [{ bearerAuth: [] }],
        params: { type: 'object', properties: { org_id: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['org_id'] },
        querystring: {
          type: 'object',
          properties: { period: { type: 'string', enum: Object.keys(PERIODS), default: '30d', description: 'The last 7, 30 or 90 UTC calendar days, today included.' } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            required: ['period', 'users', 'sessions', 'trends'],
            properties: {
              period: { type: 'string' },
              start_date: { type: 'string', format: 'date', description: 'First UTC day of the period.' },
              end_date: { type: 'string', format: 'date', description: 'Last UTC day of the period (today).' },
              users: {
                type: 'object',
                properties: {
                  total: { type: 'integer', description: 'Users of the organisation Attune has seen (at least active).' },
                  active: { type: 'integer', description: 'Users with a valid coherence window in the period.' },
                  active_rate: { ...num, description: 'active / total, 0..1.' },
                },
              },
              sessions: {
                type: 'object',
                properties: {
                  total: { type: 'integer', description: 'Sessions started in the period.' },
                  average_duration: { type: ['integer', 'null'], description: 'Mean seconds from start to end of the ended ones.' },
                  average_coherence: { type: ['number', 'null'], description: "Mean score 0..1 of the period's valid 5 s windows." },
                  time_in_high_coherence: { type: 'integer', description: `Seconds of valid windows with a score >= ${HIGH_COHERENCE_SCORE}.` },
                },
              },
              trends: {
                type: 'object',
                properties: {
                  coherence_improvement: { type: ['number', 'null'], description: "average_coherence minus the previous period's, score points." },
                  engagement_trend: { type: 'string', enum: ['increasing', 'stable', 'decreasing'], description: "Sessions against the previous period's: stable within ±10 %." },
                  top_protocol: { type: ['string', 'null'], description: 'Protocol of most sessions started in the period.' },
                },
              },
              wellness_impact: {
                type: 'object',
                description: 'The document\'s estimates; always null: Attune measures no stress and no productivity (README, Organisation analytics).',
                properties: {
                  estimated_stress_reduction: { type: 'null' },
                  productivity_correlation: { type: 'null' },
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
      if (req.params.org_id !== p.orgId) {
        throw new AttuneError('forbidden', "analytics of another organisation than the token's", [{ field: ':org_id', reason: 'other_organisation' }]);
      }
      const period = req.query.period ?? '30d';
      const { prevFrom, from, to } = periodBounds(period, ctx.clock());
      // The two stores at once: chDB runs the query on its own threads while PGlite (on this
      // thread) answers.
      const [rows, { users: total, ...s }] = await Promise.all([
        coherenceReader(ctx).read({ org: p.orgId, prevFrom: ymd(prevFrom), from: ymd(from), to: ymd(to) }),
        repo.orgFigures(p.orgId, prevFrom, from, to),
      ]);
      const cur = validCoherence(rows, true);
      const prev = validCoherence(rows, false);
      const mean = (r: CoherenceRow | undefined) => (r && Number(r.windows) > 0 ? Number(r.score_sum) / Number(r.windows) : null);
      const avgNow = mean(cur);
      const avgBefore = mean(prev);
      const active = Number(cur?.users ?? 0);
      // Users with windows from before users were recorded (0004) count too.
      const users = Math.max(total, active);
      return {
        period,
        start_date: ymd(from),
        end_date: ymd(to - DAY_MS),
        users: { total: users, active, active_rate: users === 0 ? 0 : r4(active / users) },
        sessions: {
          total: s.sessions,
          average_duration: s.averageDurationS === null ? null : Math.round(s.averageDurationS),
          average_coherence: r4(avgNow),
          time_in_high_coherence: Number(cur?.high_windows ?? 0) * 5,
        },
        trends: {
          coherence_improvement: avgNow === null || avgBefore === null ? null : r4(avgNow - avgBefore),
          engagement_trend: engagementTrend(s.sessions, s.previousSessions),
          top_protocol: s.topProtocol,
        },
        wellness_impact: { estimated_stress_reduction: null, productivity_correlation: null },
      };
    },
  );
}
