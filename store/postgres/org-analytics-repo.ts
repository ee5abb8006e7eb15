// The PostgreSQL half of an organisation's analytics (GET /v1/organizations/{org_id}/analytics,
// api/org-analytics.ts): what only PostgreSQL holds. Users (created on first sight of a
// subject), sessions with their start and end, and the practice protocol of a session
// (session_practice) are entities; the ClickHouse sessions dimension carries no protocol and
// ClickHouse has no user list. The coherence figures come from ClickHouse.
//
// Each query reads one organisation's rows through an index: sessions_org_started_idx
// (org_id, started_at DESC, …) for the sessions of a period, users_pkey for the users.
import type { SqlQueryable } from './client.js';
import { toDate } from './sql.js';

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

  /** Session figures of [from, to) and the session count of the period before it, [prevFrom, from). Times in epoch ms. */
  async sessionFigures(orgId: string, prevFrom: number, from: number, to: number): Promise<OrgSessionFigures> {
    // One pass over the organisation's sessions of both periods (sessions_org_started_idx),
    // the protocol joined by primary key; mode() takes the first protocol by name among equally
    // frequent ones, as the rule says.
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
