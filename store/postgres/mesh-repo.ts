// Group ("mesh") sessions, invitations and participants in PostgreSQL (mesh_sessions,
// mesh_invitations, mesh_participants of schemas/postgres/0003_mesh.sql).
//  - join is one transaction: lock the session row (SELECT ... FOR UPDATE), check its status
//    and who may join, count the participants present, insert (or bring back) the caller's
//    participant row. Joins of one session from any number of processes are serialised by
//    the row lock, so the last seat goes to exactly one of them (409 mesh_full, for
//    the others). Joining twice answers the same participant; leaving and joining again
//    brings the same participant (id and position) back, if a seat is free.
//  - status follows the clock (0003_mesh.sql): the effective status, started_at and ended_at
//    are computed from the stored columns at read time (here in TypeScript, in list() in SQL,
//    the same rule), and stored by the writers that lock the row.
//  - nothing is cached: a seat count must never be stale, and every read is one query.
import { randomUUID } from 'node:crypto';
import { AttuneError } from '../../lib/errors.js';
import { SqlStates, sqlState, type SqlClient, type SqlQueryable } from './client.js';
import { isUuid, ms, msOrNull, num, numOrNull, toDate } from './sql.js';

export const MESH_PROTOCOLS = ['heart_breath_sync', 'gratitude_focus', 'coherence_building', 'intention_amplify', 'manifestation_basic', 'manifestation_advanced'] as const;
export type MeshProtocol = (typeof MESH_PROTOCOLS)[number];
export type MeshStatus = 'scheduled' | 'active' | 'ended';
export type MeshVisibility = 'public' | 'private';
/** scheduled: created with a start in the future; instant: started when created. */
export type MeshKind = 'scheduled' | 'instant';

export interface MeshSession {
  id: string;
  orgId: string;
  hostUserId: string;
  hostDisplayName: string;
  name: string;
  type: MeshKind;
  visibility: MeshVisibility;
  maxParticipants: number;
  scheduledStart: number;
  durationS: number | null;
  /** scheduledStart + durationS, or null without a duration. */
  scheduledEnd: number | null;
  protocol: MeshProtocol;
  breathingRateBpm: number;
  coherenceThreshold: number;
  thresholdDurationS: number;
  minTier: string | null;
  minCoherenceHistory: number | null;
  /** Effective at the time of the read (follows the clock, see the header). */
  status: MeshStatus;
  startedAt: number | null;
  endedAt: number | null;
  createdAt: number;
  updatedAt: number;
  version: number;
  /** Participants present (left_at IS NULL) at the time of the read. */
  participantCount: number;
}

export interface MeshParticipant {
  id: string;
  meshId: string;
  orgId: string;
  userId: string;
  displayName: string;
  deviceId: string;
  position: number;
  intention: string;
  anonymous: boolean;
  joinedAt: number;
  leftAt: number | null;
}

/** A user's participation in a mesh session, as the coherence worker needs it (participationsOf). */
export interface MeshParticipation {
  meshId: string;
  orgId: string;
  participantId: string;
  userId: string;
  /** Null: the user's readings from any device count. */
  deviceId: string | null;
  joinedAt: number;
  leftAt: number | null;
  /** When the session started (or is scheduled to). */
  startedAt: number;
  /** When it ended (or is planned to end); null without an end. */
  endedAt: number | null;
  breathingRateBpm: number;
  coherenceThreshold: number;
  thresholdDurationS: number;
  protocol: MeshProtocol;
}

/** Who asks: the tenant rule of lib/principal.ts with an org admin flag. */
export interface MeshViewer {
  orgId: string;
  userId: string;
  admin: boolean;
}

export interface CreateMeshInput {
  orgId: string;
  hostUserId: string;
  hostDisplayName?: string;
  name: string;
  visibility: MeshVisibility;
  maxParticipants: number;
  /** Now when absent (an instant session). */
  scheduledStart?: number;
  durationS?: number | null;
  protocol?: MeshProtocol;
  breathingRateBpm?: number;
  coherenceThreshold?: number;
  thresholdDurationS?: number;
  minTier?: string | null;
  minCoherenceHistory?: number | null;
  invitedUserIds?: string[];
  invitationEmails?: string[];
}

export interface JoinInput {
  displayName?: string;
  deviceId?: string;
  intention?: string;
  anonymous?: boolean;
}

export interface JoinResult {
  participant: MeshParticipant;
  /** False when the caller was already present (the same participant answered again). */
  joined: boolean;
  session: MeshSession;
}

export interface MeshListOptions {
  viewer: MeshViewer;
  status?: MeshStatus;
  visibility?: MeshVisibility;
  type?: MeshKind;
  page: number;
  perPage: number;
}

interface MeshRow {
  mesh_id: string;
  org_id: string;
  host_user_id: string;
  host_display_name: string;
  name: string;
  kind: MeshKind;
  visibility: MeshVisibility;
  max_participants: number;
  scheduled_start: Date;
  duration_s: number | null;
  protocol: MeshProtocol;
  breathing_rate_bpm: number;
  coherence_threshold: number;
  threshold_duration_s: number;
  min_tier: string | null;
  min_coherence_history: number | null;
  status: MeshStatus;
  started_at: Date | null;
  ended_at: Date | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  participant_count?: number | string;
}

interface ParticipantRow {
  participant_id: string;
  mesh_id: string;
  org_id: string;
  user_id: string;
  display_name: string;
  device_id: string | null;
  position: number;
  intention: string;
  anonymous: boolean;
  joined_at: Date;
  left_at: Date | null;
}

const MESH_COLUMNS = `s.mesh_id::text AS mesh_id, s.org_id, s.host_user_id, s.host_display_name, s.name, s.kind, s.visibility, s.max_participants,
  s.scheduled_start, s.duration_s, s.protocol, s.breathing_rate_bpm, s.coherence_threshold, s.threshold_duration_s, s.min_tier,
  s.min_coherence_history, s.status, s.started_at, s.ended_at, s.version, s.created_at, s.updated_at`;
const PRESENT_COUNT = '(SELECT count(*) FROM mesh_participants p WHERE p.mesh_id = s.mesh_id AND p.left_at IS NULL) AS participant_count';
const PARTICIPANT_COLUMNS = `participant_id::text AS participant_id, mesh_id::text AS mesh_id, org_id, user_id, display_name, device_id, position,
  intention, anonymous, joined_at, left_at`;

/** The effective status at `now` in SQL (the rule of effectiveStatus), `$n` being now. */
const statusSql = (now: string) =>
  `(CASE WHEN s.status = 'ended' OR (s.duration_s IS NOT NULL AND s.scheduled_start + s.duration_s * interval '1 second' <= ${now}) THEN 'ended'
         WHEN s.status = 'active' OR s.scheduled_start <= ${now} THEN 'active' ELSE 'scheduled' END)`;

/**
 * The status at `now` of a session as stored: ended when ended, or when its planned end has
 * passed; active when started, or when its scheduled start has passed; else scheduled.
 */
export function effectiveStatus(stored: { status: MeshStatus; scheduledStart: number; durationS: number | null }, now: number): MeshStatus {
  if (stored.status === 'ended') return 'ended';
  if (stored.durationS !== null && stored.scheduledStart + stored.durationS * 1000 <= now) return 'ended';
  if (stored.status === 'active' || stored.scheduledStart <= now) return 'active';
  return 'scheduled';
}

function meshFromRow(r: MeshRow, now: number): MeshSession {
  const scheduledStart = ms(r.scheduled_start);
  const durationS = numOrNull(r.duration_s);
  const scheduledEnd = durationS === null ? null : scheduledStart + durationS * 1000;
  const stored = { status: r.status, scheduledStart, durationS };
  const status = effectiveStatus(stored, now);
  const storedStart = msOrNull(r.started_at);
  const storedEnd = msOrNull(r.ended_at);
  return {
    id: r.mesh_id,
    orgId: r.org_id,
    hostUserId: r.host_user_id,
    hostDisplayName: r.host_display_name,
    name: r.name,
    type: r.kind,
    visibility: r.visibility,
    maxParticipants: num(r.max_participants),
    scheduledStart,
    durationS,
    scheduledEnd,
    protocol: r.protocol,
    breathingRateBpm: num(r.breathing_rate_bpm),
    coherenceThreshold: num(r.coherence_threshold),
    thresholdDurationS: num(r.threshold_duration_s),
    minTier: r.min_tier,
    minCoherenceHistory: numOrNull(r.min_coherence_history),
    status,
    startedAt: storedStart ?? (status === 'scheduled' ? null : scheduledStart),
    endedAt: storedEnd ?? (status === 'ended' ? scheduledEnd : null),
    createdAt: ms(r.created_at),
    updatedAt: ms(r.updated_at),
    version: num(r.version),
    participantCount: Number(r.participant_count ?? 0),
  };
}

function participantFromRow(r: ParticipantRow): MeshParticipant {
  return {
    id: r.participant_id,
    meshId: r.mesh_id,
    orgId: r.org_id,
    userId: r.user_id,
    displayName: r.display_name,
    deviceId: r.device_id ?? '',
    position: num(r.position),
    intention: r.intention,
    anonymous: Boolean(r.anonymous),
    joinedAt: ms(r.joined_at),
    leftAt: msOrNull(r.left_at),
  };
}

const notFound = (id: string) => new AttuneError('not_found', `mesh session ${id} not found`, [{ field: 'id', reason: 'not_found' }]);

/** What the viewer may do with a session they found: see it, and join it. */
export interface MeshAccess {
  session: MeshSession;
  /** The host, an invitee (by user id) or a participant (present or not). */
  invited: boolean;
  /** The viewer's participant row, present or left; null when they never joined. */
  participant: MeshParticipant | null;
}

export class MeshRepository {
  constructor(
    private readonly sql: SqlClient,
    private readonly opts: { clock?: () => number } = {},
  ) {}

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  /** Creates the session and its invitations in one transaction. */
  async create(input: CreateMeshInput): Promise<MeshSession> {
    const now = this.now;
    const start = input.scheduledStart ?? now;
    const scheduled = start > now;
    const id = randomUUID();
    try {
      return await this.sql.transaction(async (tx) => {
        const { rows } = await tx.query<MeshRow>(
          `INSERT INTO mesh_sessions AS s (mesh_id, org_id, host_user_id, host_display_name, name, kind, visibility, max_participants, scheduled_start,
             duration_s, protocol, breathing_rate_bpm, coherence_threshold, threshold_duration_s, min_tier, min_coherence_history, status,
             started_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)
           RETURNING ${MESH_COLUMNS}`,
          [
            id,
            input.orgId,
            input.hostUserId,
            input.hostDisplayName ?? '',
            input.name,
            scheduled ? 'scheduled' : 'instant',
            input.visibility,
            input.maxParticipants,
            toDate(start),
            input.durationS ?? null,
            input.protocol ?? 'heart_breath_sync',
            input.breathingRateBpm ?? 6,
            input.coherenceThreshold ?? 0.7,
            input.thresholdDurationS ?? 30,
            input.minTier ?? null,
            input.minCoherenceHistory ?? null,
            scheduled ? 'scheduled' : 'active',
            scheduled ? null : toDate(start),
            toDate(now),
          ],
        );
        const users = [...new Set(input.invitedUserIds ?? [])].filter((u) => u !== input.hostUserId);
        if (users.length > 0) {
          await tx.query(
            `INSERT INTO mesh_invitations (mesh_id, user_id, invited_at) SELECT $1, u, $3 FROM unnest($2::text[]) AS u`,
            [id, users, toDate(now)],
          );
        }
        const byLower = new Map<string, string>();
        for (const e of input.invitationEmails ?? []) if (!byLower.has(e.toLowerCase())) byLower.set(e.toLowerCase(), e);
        const emails = [...byLower.values()];
        if (emails.length > 0) {
          await tx.query(`INSERT INTO mesh_invitations (mesh_id, email, invited_at) SELECT $1, e, $3 FROM unnest($2::text[]) AS e`, [id, emails, toDate(now)]);
        }
        return meshFromRow(rows[0], now);
      });
    } catch (err) {
      if (sqlState(err) === SqlStates.checkViolation) {
        throw new AttuneError('validation_error', 'a value is out of range', [{ reason: 'constraint_violation', constraint: (err as { constraint?: string }).constraint ?? null }]);
      }
      throw err;
    }
  }

  /** The session (any organisation: callers check the tenant with access()), or null. */
  async get(id: string): Promise<MeshSession | null> {
    if (!isUuid(id)) return null;
    const now = this.now;
    const { rows } = await this.sql.query<MeshRow>(`SELECT ${MESH_COLUMNS}, ${PRESENT_COUNT} FROM mesh_sessions s WHERE s.mesh_id = $1`, [id]);
    return rows[0] ? meshFromRow(rows[0], now) : null;
  }

  /**
   * The session as `viewer` may know it: not_found when absent or in another organisation;
   * for a private session the viewer is neither host, invitee, participant nor admin of:
   * forbidden (not_invited). Answers whether the viewer is invited and their participant row.
   */
  async access(id: string, viewer: MeshViewer): Promise<MeshAccess> {
    const session = await this.get(id);
    if (!session || session.orgId !== viewer.orgId) throw notFound(id);
    const { rows } = await this.sql.query<ParticipantRow & { invited: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM mesh_invitations WHERE mesh_id = $1 AND user_id = $2) AS invited,
              (SELECT row_to_json(p) FROM (SELECT ${PARTICIPANT_COLUMNS} FROM mesh_participants WHERE mesh_id = $1 AND user_id = $2) p) AS participant`,
      [id, viewer.userId],
    );
    const r = rows[0] as unknown as { invited: boolean; participant: (Omit<ParticipantRow, 'joined_at' | 'left_at'> & { joined_at: string; left_at: string | null }) | null };
    const participant = r.participant
      ? participantFromRow({ ...r.participant, joined_at: new Date(r.participant.joined_at), left_at: r.participant.left_at === null ? null : new Date(r.participant.left_at) })
      : null;
    const invited = session.hostUserId === viewer.userId || Boolean(r.invited) || participant !== null;
    if (session.visibility === 'private' && !invited && !viewer.admin) {
      throw new AttuneError('forbidden', `mesh session ${id} is private and you are not invited`, [{ reason: 'not_invited' }]);
    }
    return { session, invited, participant };
  }

  /** The sessions the viewer may see, newest scheduled start first, and how many there are. */
  async list(o: MeshListOptions): Promise<{ sessions: MeshSession[]; total: number }> {
    const now = this.now;
    const params: unknown[] = [o.viewer.orgId, o.viewer.userId, o.viewer.admin];
    const where = [
      's.org_id = $1',
      `($3 OR s.visibility = 'public' OR s.host_user_id = $2
         OR EXISTS (SELECT 1 FROM mesh_invitations i WHERE i.mesh_id = s.mesh_id AND i.user_id = $2)
         OR EXISTS (SELECT 1 FROM mesh_participants p WHERE p.mesh_id = s.mesh_id AND p.user_id = $2))`,
    ];
    if (o.status) {
      params.push(toDate(now), o.status);
      where.push(`${statusSql(`$${params.length - 1}`)} = $${params.length}`);
    }
    if (o.visibility) {
      params.push(o.visibility);
      where.push(`s.visibility = $${params.length}`);
    }
    if (o.type) {
      params.push(o.type);
      where.push(`s.kind = $${params.length}`);
    }
    const whereSql = where.join(' AND ');
    const count = await this.sql.query<{ n: number | string }>(`SELECT count(*) AS n FROM mesh_sessions s WHERE ${whereSql}`, params);
    params.push(o.perPage, (o.page - 1) * o.perPage);
    const { rows } = await this.sql.query<MeshRow>(
      `SELECT ${MESH_COLUMNS}, ${PRESENT_COUNT} FROM mesh_sessions s WHERE ${whereSql}
       ORDER BY s.scheduled_start DESC, s.mesh_id DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return { sessions: rows.map((r) => meshFromRow(r, now)), total: Number(count.rows[0]?.n ?? 0) };
  }

  /**
   * Admits the viewer (see the header): one transaction with the session row locked.
   * not_found / forbidden (not_invited) as access(); conflict mesh_ended for an ended
   * session, mesh_full when every seat is taken.
   */
  async join(id: string, viewer: MeshViewer, input: JoinInput = {}): Promise<JoinResult> {
    if (!isUuid(id)) throw notFound(id);
    const now = this.now;
    try {
      return await this.sql.transaction(async (tx) => {
        const locked = await tx.query<MeshRow>(`SELECT ${MESH_COLUMNS} FROM mesh_sessions s WHERE s.mesh_id = $1 FOR UPDATE`, [id]);
        if (!locked.rows[0] || locked.rows[0].org_id !== viewer.orgId) throw notFound(id);
        let session = meshFromRow(locked.rows[0], now);
        const mine = await tx.query<ParticipantRow>(`SELECT ${PARTICIPANT_COLUMNS} FROM mesh_participants WHERE mesh_id = $1 AND user_id = $2`, [id, viewer.userId]);
        const existing = mine.rows[0] ? participantFromRow(mine.rows[0]) : null;
        if (session.visibility === 'private' && session.hostUserId !== viewer.userId && existing === null) {
          const inv = await tx.query('SELECT 1 FROM mesh_invitations WHERE mesh_id = $1 AND user_id = $2', [id, viewer.userId]);
          if (inv.rows.length === 0) throw new AttuneError('forbidden', `mesh session ${id} is private and you are not invited`, [{ reason: 'not_invited' }]);
        }
        session = await this.storeStatus(tx, locked.rows[0], session, now);
        if (session.status === 'ended') throw new AttuneError('conflict', `mesh session ${id} has ended`, [{ reason: 'mesh_ended' }]);
        if (existing && existing.leftAt === null) {
          return { participant: existing, joined: false, session: { ...session, participantCount: await presentCount(tx, id) } };
        }
        const present = await presentCount(tx, id);
        if (present >= session.maxParticipants) {
          throw new AttuneError('mesh_full', `mesh session ${id} is full (${session.maxParticipants} participants)`, [
            { reason: 'mesh_full', max_participants: session.maxParticipants },
          ]);
        }
        let row: ParticipantRow;
        if (existing) {
          // Back after leaving: the same participant and position.
          const { rows } = await tx.query<ParticipantRow>(
            `UPDATE mesh_participants SET left_at = NULL, joined_at = $2, intention = COALESCE($3, intention), anonymous = COALESCE($4, anonymous),
               device_id = COALESCE($5, device_id), display_name = COALESCE($6, display_name)
             WHERE participant_id = $1 RETURNING ${PARTICIPANT_COLUMNS}`,
            [existing.id, toDate(now), input.intention ?? null, input.anonymous ?? null, input.deviceId ?? null, input.displayName ?? null],
          );
          row = rows[0];
        } else {
          const { rows } = await tx.query<ParticipantRow>(
            `INSERT INTO mesh_participants (participant_id, mesh_id, org_id, user_id, display_name, device_id, position, intention, anonymous, joined_at)
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(max(position), 0) + 1 FROM mesh_participants WHERE mesh_id = $2), $7, $8, $9)
             RETURNING ${PARTICIPANT_COLUMNS}`,
            [randomUUID(), id, viewer.orgId, viewer.userId, input.displayName ?? '', input.deviceId || null, input.intention ?? '', input.anonymous ?? false, toDate(now)],
          );
          row = rows[0];
        }
        return { participant: participantFromRow(row), joined: true, session: { ...session, participantCount: present + 1 } };
      });
    } catch (err) {
      if (sqlState(err) === SqlStates.foreignKeyViolation) {
        throw new AttuneError('validation_error', `device ${input.deviceId} is not registered`, [{ field: '/device_id', reason: 'not_registered' }]);
      }
      throw err;
    }
  }

  /**
   * The viewer leaves (idempotent: leaving again answers the same row). not_found when they
   * never joined. Once the session has ended nothing changes (left: false): who was present at
   * its end is its record, which a late leave would rewrite (its participant_count fell).
   */
  async leave(id: string, viewer: MeshViewer): Promise<{ participant: MeshParticipant; left: boolean; participantCount: number; sessionEndedAt?: number | null }> {
    if (!isUuid(id)) throw notFound(id);
    const now = this.now;
    return this.sql.transaction(async (tx) => {
      // The session row lock orders a leave with the joins counting seats.
      const locked = await tx.query<MeshRow>(`SELECT ${MESH_COLUMNS} FROM mesh_sessions s WHERE s.mesh_id = $1 FOR UPDATE`, [id]);
      if (!locked.rows[0] || locked.rows[0].org_id !== viewer.orgId) throw notFound(id);
      const session = meshFromRow(locked.rows[0], now);
      if (session.status === 'ended') {
        const mine = await tx.query<ParticipantRow>(`SELECT ${PARTICIPANT_COLUMNS} FROM mesh_participants WHERE mesh_id = $1 AND user_id = $2`, [id, viewer.userId]);
        if (!mine.rows[0]) throw new AttuneError('not_found', `you are not a participant of mesh session ${id}`, [{ field: 'id', reason: 'not_found' }]);
        return { participant: participantFromRow(mine.rows[0]), left: false, participantCount: await presentCount(tx, id), sessionEndedAt: session.endedAt ?? session.scheduledEnd };
      }
      const { rows } = await tx.query<ParticipantRow>(
        `UPDATE mesh_participants SET left_at = GREATEST($3, joined_at) WHERE mesh_id = $1 AND user_id = $2 AND left_at IS NULL RETURNING ${PARTICIPANT_COLUMNS}`,
        [id, viewer.userId, toDate(now)],
      );
      if (rows[0]) return { participant: participantFromRow(rows[0]), left: true, participantCount: await presentCount(tx, id) };
      const gone = await tx.query<ParticipantRow>(`SELECT ${PARTICIPANT_COLUMNS} FROM mesh_participants WHERE mesh_id = $1 AND user_id = $2`, [id, viewer.userId]);
      if (!gone.rows[0]) throw new AttuneError('not_found', `you are not a participant of mesh session ${id}`, [{ field: 'id', reason: 'not_found' }]);
      return { participant: participantFromRow(gone.rows[0]), left: false, participantCount: await presentCount(tx, id) };
    });
  }

  /** Ends the session now (idempotent: an ended session is answered as it is). */
  async end(id: string): Promise<MeshSession> {
    if (!isUuid(id)) throw notFound(id);
    const now = this.now;
    return this.sql.transaction(async (tx) => {
      const locked = await tx.query<MeshRow>(`SELECT ${MESH_COLUMNS} FROM mesh_sessions s WHERE s.mesh_id = $1 FOR UPDATE`, [id]);
      if (!locked.rows[0]) throw notFound(id);
      const current = meshFromRow(locked.rows[0], now);
      if (current.status === 'ended') {
        const stored = await this.storeStatus(tx, locked.rows[0], current, now);
        return { ...stored, participantCount: await presentCount(tx, id) };
      }
      // A session ended before it started is a zero-length session at the moment it ended.
      const { rows } = await tx.query<MeshRow>(
        `UPDATE mesh_sessions s SET status = 'ended', started_at = COALESCE(s.started_at, $3), ended_at = GREATEST($2, COALESCE(s.started_at, $3)),
           version = s.version + 1, updated_at = GREATEST($2, s.updated_at + interval '1 millisecond')
         WHERE s.mesh_id = $1 RETURNING ${MESH_COLUMNS}`,
        [id, toDate(now), toDate(current.startedAt ?? now)],
      );
      return { ...meshFromRow(rows[0], now), participantCount: await presentCount(tx, id) };
    });
  }

  /** The participants present, in position order (at most `limit`). */
  async present(id: string, limit = 1000): Promise<MeshParticipant[]> {
    if (!isUuid(id)) return [];
    const { rows } = await this.sql.query<ParticipantRow>(
      `SELECT ${PARTICIPANT_COLUMNS} FROM mesh_participants WHERE mesh_id = $1 AND left_at IS NULL ORDER BY position LIMIT $2`,
      [id, limit],
    );
    return rows.map(participantFromRow);
  }

  /**
   * The user's participations (present or left) in sessions of the organisation that have not
   * ended before `sinceMs`, with what the group worker needs of the session: for the coherence
   * worker, which decides per window whether it belongs to a group (pipelines/group/README.md,
   * "Which windows belong to a group"). One indexed query (mesh_participants_user_idx).
   * A session's end is its effective one (status follows the clock, see the header): ended_at
   * is stored only when a writer locked the row after the end, so a session that ended by its
   * duration usually has none. Until 2026-12-06 the query read the stored column alone, oldest
   * participation first, at most 100: a user who had sat to the end of 100 sessions with a
   * duration got those back for every window and not the session they had just joined, whose
   * group then never counted them. The newest 100 are kept (returned oldest first).
   */
  async participationsOf(orgId: string, userId: string, sinceMs: number): Promise<MeshParticipation[]> {
    const now = this.now;
    const end = `COALESCE(s.ended_at, s.scheduled_start + s.duration_s * interval '1 second')`;
    const { rows } = await this.sql.query<ParticipantRow & MeshRow>(
      `SELECT p.participant_id::text AS participant_id, p.user_id, p.display_name, p.device_id, p.position, p.intention, p.anonymous,
              p.joined_at, p.left_at, ${MESH_COLUMNS}
         FROM mesh_participants p JOIN mesh_sessions s ON s.mesh_id = p.mesh_id
        WHERE p.org_id = $1 AND p.user_id = $2 AND (p.left_at IS NULL OR p.left_at > $3)
          AND (${end} IS NULL OR ${end} > $3)
        ORDER BY p.joined_at DESC, p.participant_id DESC
        LIMIT 100`,
      [orgId, userId, toDate(sinceMs)],
    );
    rows.reverse();
    return rows.map((r) => {
      const s = meshFromRow(r, now);
      return {
        meshId: s.id,
        orgId: s.orgId,
        participantId: r.participant_id,
        userId: r.user_id,
        deviceId: r.device_id,
        joinedAt: ms(r.joined_at),
        leftAt: msOrNull(r.left_at),
        startedAt: s.startedAt ?? s.scheduledStart,
        endedAt: s.endedAt ?? s.scheduledEnd,
        breathingRateBpm: s.breathingRateBpm,
        coherenceThreshold: s.coherenceThreshold,
        thresholdDurationS: s.thresholdDurationS,
        protocol: s.protocol,
      };
    });
  }

  /**
   * Stores a status the clock changed (scheduled → active at scheduled_start, → ended at the
   * planned end) on a row the caller has locked. Returns the session as now stored.
   */
  private async storeStatus(tx: SqlQueryable, row: MeshRow, s: MeshSession, now: number): Promise<MeshSession> {
    if (s.status === row.status) return s;
    const { rows } = await tx.query<MeshRow>(
      `UPDATE mesh_sessions s SET status = $2, started_at = COALESCE(s.started_at, $3), ended_at = $4, version = s.version + 1,
         updated_at = GREATEST($5, s.updated_at + interval '1 millisecond')
       WHERE s.mesh_id = $1 RETURNING ${MESH_COLUMNS}`,
      [s.id, s.status, toDate(s.startedAt ?? s.scheduledStart), s.endedAt === null ? null : toDate(s.endedAt), toDate(now)],
    );
    return { ...meshFromRow(rows[0], now), participantCount: s.participantCount };
  }
}

async function presentCount(tx: SqlQueryable, id: string): Promise<number> {
  const { rows } = await tx.query<{ n: number | string }>('SELECT count(*) AS n FROM mesh_participants WHERE mesh_id = $1 AND left_at IS NULL', [id]);
  return Number(rows[0]?.n ?? 0);
}
