// The PostgreSQL half of an organisation's analytics (GET /v1/organizations/{org_id}/analytics,
// api/org-analytics.ts): what only PostgreSQL holds. Users (created on first sight of a
// subject), sessions with their start and end, and the practice protocol of a session
// (session_practice) are entities; the ClickHouse sessions dimension carries no protocol and
// ClickHouse has no user list. The coherence figures come from ClickHouse.
//
// Each query reads one organisation's rows through an index: org_daily_sessions_pkey
// (org_id, day, protocol) for the sessions of a period (the daily rollup of migration 0007),
// users_pkey for the users (orgFigures asks both in one statement).
import type { SqlQueryable } from './client.js';
import { toDate } from './sql.js';

/** 'YYYY-MM-DD' of the UTC day of epoch ms t. */
const utcDay = (t: number): string => new Date(t).toISOString().slice(0, 10);

export interface OrgSessionFigures {
  /** Sessions started in [from, to), any status. */
  sessions: number;
  /** Sessions started in [prevFrom, from). */
  previousSessions: number;
  /** Mean of ended_at − started_at (seconds) over the sessions started in [from, to) that have ended; null without one. */
  averageDurationS: number | null;
  /** The protocol of most sessions started in [from, to) (ties: the first by name); null when none names one. */
  topProtocol: string | null;
}

export class OrgAnalyticsRepository {
  constructor(private readonly sql: SqlQueryable) {}

  /** Users of the organisation Attune has seen (the users table). */
  async userCount(orgId: string): Promise<number> {
    const { rows } = await this.sql.query<{ n: number | string }>('SELECT count(*) AS n FROM users WHERE org_id = $1', [orgId]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Session figures of [from, to) and the session count of the period before it, [prevFrom, from). Times in epoch ms, UTC midnights. */
  async sessionFigures(orgId: string, prevFrom: number, from: number, to: number): Promise<OrgSessionFigures> {
    const { users: _users, ...figures } = await this.orgFigures(orgId, prevFrom, from, to);
    return figures;
  }

  /**
   * sessionFigures and userCount in one statement: the route's whole PostgreSQL part in one
   * round trip (with PGlite each statement runs on the event loop's thread, so one fewer
   * statement is time no other request waits for).
   */
  async orgFigures(orgId: string, prevFrom: number, from: number, to: number): Promise<OrgSessionFigures & { users: number }> {
    // From the daily rollup org_daily_sessions (schemas/postgres/0007: per organisation, UTC
    // day of the start and protocol; kept by triggers in the sessions' own transactions), by
    // its primary key: at most days x 7 rows, whatever the number of sessions. The bounds are
    // UTC midnights (periodBounds), so "started in [from, to)" is "day in [from, to)". The mean
    // duration is the exact (numeric) duration sum over the ended count, as avg() would give;
    // top_protocol: most sessions, ties to the first by name (as mode() WITHIN GROUP (ORDER BY
    // protocol) over the sessions did).
    const { rows } = await this.sql.query<{ users: number | string; cur: number | string; prev: number | string; avg_s: number | string | null; top_protocol: string | null }>(
      `WITH d AS (
         SELECT day, protocol, started, ended, duration_sum_s FROM org_daily_sessions
          WHERE org_id = $1 AND day >= $2::date AND day < $4::date)
       SELECT COALESCE(sum(started) FILTER (WHERE day >= $3::date), 0) AS cur,
              COALESCE(sum(started) FILTER (WHERE day < $3::date), 0) AS prev,
              sum(duration_sum_s) FILTER (WHERE day >= $3::date) / NULLIF(sum(ended) FILTER (WHERE day >= $3::date), 0) AS avg_s,
              (SELECT protocol FROM d WHERE day >= $3::date AND protocol <> '' GROUP BY protocol HAVING sum(started) > 0
                ORDER BY sum(started) DESC, protocol LIMIT 1) AS top_protocol,
              (SELECT count(*) FROM users WHERE org_id = $1) AS users
         FROM d`,
      [orgId, utcDay(prevFrom), utcDay(from), utcDay(to)],
    );
    const r = rows[0];
    const avg = r?.avg_s === null || r?.avg_s === undefined ? null : Number(r.avg_s);
    return {
      users: Number(r?.users ?? 0),
      sessions: Number(r?.cur ?? 0),
      previousSessions: Number(r?.prev ?? 0),
      averageDurationS: avg === null || !Number.isFinite(avg) ? null : avg,
      topProtocol: r?.top_protocol ?? null,
    };
  }

  /**
   * The same figures computed directly from the sessions (one pass over the organisation's
   * sessions of both periods, the protocol joined), as before the rollup: what the rollup
   * must equal (api/org-analytics.test.ts), and the bench's comparison.
   */
  async sessionFiguresDirect(orgId: string, prevFrom: number, from: number, to: number): Promise<OrgSessionFigures> {
    const totals = await this.sql.query<{ cur: number | string; prev: number | string; avg_s: number | string | null; top_protocol: string | null }>(
      `SELECT count(*) FILTER (WHERE s.started_at >= $3) AS cur,
              count(*) FILTER (WHERE s.started_at < $3) AS prev,
              avg(EXTRACT(EPOCH FROM (s.ended_at - s.started_at))) FILTER (WHERE s.started_at >= $3 AND s.ended_at IS NOT NULL) AS avg_s,
              mode() WITHIN GROUP (ORDER BY p.protocol) FILTER (WHERE s.started_at >= $3 AND p.protocol IS NOT NULL) AS top_protocol
         FROM sessions s LEFT JOIN session_practice p ON p.session_id = s.session_id
        WHERE s.org_id = $1 AND s.started_at >= $2 AND s.started_at < $4`,
      [orgId, toDate(prevFrom), toDate(from), toDate(to)],
    );
    const r = totals.rows[0];
    const avg = r?.avg_s === null || r?.avg_s === undefined ? null : Number(r.avg_s);
    return {
      sessions: Number(r?.cur ?? 0),
      previousSessions: Number(r?.prev ?? 0),
      averageDurationS: avg === null || !Number.isFinite(avg) ? null : avg,
      topProtocol: r?.top_protocol ?? null,
    };
  }
}
