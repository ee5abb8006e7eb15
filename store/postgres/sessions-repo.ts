// Heart sessions and devices in PostgreSQL (tables sessions, devices of
// schemas/postgres/0001_entities.sql). The methods are those of the ClickHouse repositories
// (store/sessions-repo.ts) with these differences:
//  - every change is one SQL statement (no read-modify-write), so concurrent writers in any
//    number of processes lose nothing; `version` increases with each change, and a caller that
//    passes the version it read (expectedVersion) gets VersionConflictError on a stale write;
//  - device ids are scoped to their organisation: get(orgId, id), and registering an id that
//    another organisation uses works and reveals nothing;
//  - the caches are lru-cache instances bounded in entries and in bytes (a session's metadata
//    may be 16 KB), with a TTL, updated by this process's own writes (other processes' changes
//    are seen within the TTL, or at once with `fresh`); lists are never cached.
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { AttuneError } from '../../lib/errors.js';
import { SqlStates, sqlState, type SqlClient } from './client.js';
import { explainMiss, isUuid, jsonObject, ms, msOrNull, num, toDate, updateFromPatch, type UpdateOptions } from './sql.js';

export interface Session {
  id: string;
  orgId: string;
  userId: string;
  /** '' when the session takes readings from any of its user's devices. */
  deviceId: string;
  type: string;
  title: string;
  status: 'active' | 'ended';
  startedAt: number;
  endedAt: number | null;
  coherenceThreshold: number;
  thresholdDurationS: number;
  createdAt: number;
  updatedAt: number;
  metadata: Record<string, unknown>;
  /** 1 on creation, +1 on every change. */
  version: number;
}

export interface Device {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  model: string;
  firmware: string;
  registeredAt: number;
  updatedAt: number;
  version: number;
}

export type SessionPatch = Partial<Pick<Session, 'title' | 'type' | 'coherenceThreshold' | 'thresholdDurationS' | 'metadata'>>;

export interface ListOptions {
  orgId: string;
  userId: string | null;
  status?: 'active' | 'ended';
  limit: number;
  /** Exclusive: sessions started before this (started_at, id) pair, newest first. */
  before?: { startedAt: number; id: string };
  /** Read each session's metadata too (up to 16 KB each); left out (not even read) by default. */
  withMetadata?: boolean;
}

/** A session as a list gives it: metadata only when asked for (ListOptions.withMetadata). */
export type ListedSession = Omit<Session, 'metadata'> & { metadata?: Record<string, unknown> };

export interface CacheOptions {
  /** How long a cached read answers (default 2 s). */
  cacheTtlMs?: number;
  /** Entries per cache (default 50 000). */
  cacheMax?: number;
  /** Estimated bytes per cache (default 32 MB): what its entries' JSON would take. */
  cacheMaxBytes?: number;
  clock?: () => number;
}

export const DEFAULT_CACHE_MAX_BYTES = 32 * 1024 * 1024;
/** A session's fixed fields, estimated: ids, title (≤ 200 chars), times and numbers. */
const SESSION_BASE_BYTES = 512;
const sessionBytesMemo = new WeakMap<Session, number>();

/** The estimated size of a cached session: its fixed fields and its metadata's JSON (measured once per object). */
export function sessionCacheBytes(s: Session): number {
  let n = sessionBytesMemo.get(s);
  if (n === undefined) {
    n = SESSION_BASE_BYTES + s.title.length * 2 + JSON.stringify(s.metadata).length * 2;
    sessionBytesMemo.set(s, n);
  }
  return n;
}

interface SessionRow {
  session_id: string;
  org_id: string;
  user_id: string;
  device_id: string | null;
  kind: string;
  title: string;
  status: 'active' | 'ended';
  started_at: Date;
  ended_at: Date | null;
  coherence_threshold: number;
  threshold_duration_s: number;
  metadata: unknown;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const SESSION_COLUMNS = `session_id::text AS session_id, org_id, user_id, device_id, kind, title, status, started_at, ended_at,
  coherence_threshold, threshold_duration_s, metadata, version, created_at, updated_at`;
/** A list's columns: no metadata (a page of 200 sessions would otherwise carry up to 3 MB of it). */
const SESSION_LIST_COLUMNS = SESSION_COLUMNS.replace(' metadata,', '');

function sessionFromRow(r: SessionRow): Session {
  return {
    id: r.session_id,
    orgId: r.org_id,
    userId: r.user_id,
    deviceId: r.device_id ?? '',
    type: r.kind,
    title: r.title,
    status: r.status,
    startedAt: ms(r.started_at),
    endedAt: msOrNull(r.ended_at),
    coherenceThreshold: num(r.coherence_threshold),
    thresholdDurationS: num(r.threshold_duration_s),
    createdAt: ms(r.created_at),
    updatedAt: ms(r.updated_at),
    metadata: jsonObject(r.metadata),
    version: num(r.version),
  };
}

/** Whether `s` covers instant `t`: started at or before it and not ended before it. */
export const isActiveAt = (s: Session, t: number): boolean => s.startedAt <= t && (s.endedAt === null || t < s.endedAt);

const sessionUpdate = {
  table: 'sessions',
  key: 'session_id',
  returning: SESSION_COLUMNS,
  columns: {
    title: { column: 'title' },
    type: { column: 'kind' },
    coherenceThreshold: { column: 'coherence_threshold' },
    thresholdDurationS: { column: 'threshold_duration_s' },
    metadata: { column: 'metadata', toDb: (v: Record<string, unknown>) => JSON.stringify(v), cast: 'jsonb' },
  },
};

/** How many of a user's latest sessions activeAt keeps. */
const RECENT_PER_USER = 100;

export class SessionsRepository {
  private readonly byId: LRUCache<string, Session>;
  /** Per user (org/user): their latest sessions, newest first. */
  private readonly byUser: LRUCache<string, Session[]>;

  constructor(
    private readonly sql: SqlClient,
    private readonly opts: CacheOptions = {},
  ) {
    // lru-cache reads a ttl of 0 as "forever": 0 here means (almost) no caching.
    const ttl = Math.max(1, opts.cacheTtlMs ?? 2_000);
    const max = opts.cacheMax ?? 50_000;
    // ttlResolution 0: the injected clock is read on every check (tests move it by hand).
    const perf = { now: () => this.now };
    const maxSize = opts.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    this.byId = new LRUCache<string, Session>({ max, maxSize, sizeCalculation: sessionCacheBytes, ttl, ttlResolution: 0, perf });
    this.byUser = new LRUCache<string, Session[]>({
      max,
      maxSize,
      sizeCalculation: (list) => list.reduce((sum, s) => sum + sessionCacheBytes(s), 64),
      ttl,
      ttlResolution: 0,
      perf,
    });
  }

  /** What the caches hold: entries and estimated bytes (for tests and metrics). */
  cacheStats(): { byId: { entries: number; bytes: number }; byUser: { entries: number; bytes: number } } {
    return {
      byId: { entries: this.byId.size, bytes: this.byId.calculatedSize },
      byUser: { entries: this.byUser.size, bytes: this.byUser.calculatedSize },
    };
  }

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  async create(input: {
    orgId: string;
    userId: string;
    deviceId?: string;
    type?: string;
    title?: string;
    startedAt?: number;
    coherenceThreshold?: number;
    thresholdDurationS?: number;
    metadata?: Record<string, unknown>;
  }): Promise<Session> {
    const now = this.now;
    try {
      const { rows } = await this.sql.query<SessionRow>(
        `INSERT INTO sessions (session_id, org_id, user_id, device_id, kind, title, status, started_at, coherence_threshold,
           threshold_duration_s, metadata, created_at, updated_at, initial_coherence_threshold, initial_threshold_duration_s)
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10::jsonb, $11, $11, $8, $9)
         RETURNING ${SESSION_COLUMNS}`,
        [
          randomUUID(),
          input.orgId,
          input.userId,
          input.deviceId ? input.deviceId : null,
          input.type ?? 'coherence',
          input.title ?? '',
          toDate(input.startedAt ?? now),
          input.coherenceThreshold ?? 0.5,
          input.thresholdDurationS ?? 30,
          JSON.stringify(input.metadata ?? {}),
          toDate(now),
        ],
      );
      return this.remember(sessionFromRow(rows[0]));
    } catch (err) {
      if (sqlState(err) === SqlStates.foreignKeyViolation) {
        throw new AttuneError('validation_error', `device ${input.deviceId} is not registered`, [{ field: '/device_id', reason: 'not_registered' }]);
      }
      throw err;
    }
  }

  /**
   * The threshold settings session `id` was created with (its version 1; migration 0014), or
   * null when it has none recorded (created before 0014, a mesh participation) or does not exist.
   * Read by the coherence worker when it first sees a session (not cached: once per session).
   */
  async initialSettings(id: string): Promise<{ coherenceThreshold: number; thresholdDurationS: number } | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.sql.query<{ t: number | string | null; d: number | string | null }>(
      'SELECT initial_coherence_threshold AS t, initial_threshold_duration_s AS d FROM sessions WHERE session_id = $1',
      [id],
    );
    const r = rows[0];
    if (!r || r.t === null || r.d === null) return null;
    return { coherenceThreshold: Number(r.t), thresholdDurationS: Number(r.d) };
  }

  /**
   * Ends the session at `at` (now by default; never before it started). Ending is idempotent:
   * a session already ended (here or by another process) is returned as stored.
   * With expectedVersion, a session changed since is a VersionConflictError instead.
   */
  async end(given: Session, at?: number, opts: UpdateOptions = {}): Promise<Session> {
    const now = this.now;
    const params: unknown[] = [given.id, toDate(at ?? now), toDate(now)];
    let versionCheck = '';
    if (opts.expectedVersion !== undefined) {
      params.push(opts.expectedVersion);
      versionCheck = ` AND version = $${params.length}`;
    }
    const { rows } = await this.sql.query<SessionRow>(
      `UPDATE sessions SET status = 'ended', ended_at = GREATEST($2, started_at), version = version + 1,
         updated_at = GREATEST($3, updated_at + interval '1 millisecond')
       WHERE session_id = $1 AND status = 'active'${versionCheck}
       RETURNING ${SESSION_COLUMNS}`,
      params,
    );
    if (rows[0]) return this.remember(sessionFromRow(rows[0]));
    const current = await this.get(given.id, { fresh: true });
    if (!current) throw new AttuneError('not_found', `session ${given.id} not found`, [{ field: 'id', reason: 'not_found' }]);
    if (opts.expectedVersion !== undefined && current.version !== opts.expectedVersion) {
      return explainMiss(this.sql, { table: 'sessions', key: 'session_id', entity: 'session' }, given.id, opts.expectedVersion);
    }
    return current;
  }

  /** Changes the given fields in one statement (nothing else is overwritten). not_found when absent. */
  async update(id: string, patch: SessionPatch, opts: UpdateOptions = {}): Promise<Session> {
    if (!isUuid(id)) throw new AttuneError('not_found', `session ${id} not found`, [{ field: 'id', reason: 'not_found' }]);
    const row = await updateFromPatch<SessionRow>(this.sql, sessionUpdate, id, patch, this.now, opts);
    if (!row) return explainMiss(this.sql, { table: 'sessions', key: 'session_id', entity: 'session' }, id, opts.expectedVersion);
    return this.remember(sessionFromRow(row));
  }

  /** The session, from a cache of at most cacheTtlMs (other processes may change it), or from the database with `fresh`. */
  async get(id: string, opts: { fresh?: boolean } = {}): Promise<Session | null> {
    if (!opts.fresh) {
      const hit = this.byId.get(id);
      if (hit) return hit;
    }
    if (!isUuid(id)) return null;
    const { rows } = await this.sql.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE session_id = $1`, [id]);
    if (rows.length === 0) {
      this.byId.delete(id);
      return null;
    }
    return this.remember(sessionFromRow(rows[0]));
  }

  /** Newest first; without metadata unless `withMetadata`. Never cached. */
  async list(o: ListOptions): Promise<ListedSession[]> {
    const where = ['org_id = $1'];
    const params: unknown[] = [o.orgId];
    if (o.userId !== null) {
      params.push(o.userId);
      where.push(`user_id = $${params.length}`);
    }
    if (o.status) {
      params.push(o.status);
      where.push(`status = $${params.length}`);
    }
    if (o.before) {
      if (!isUuid(o.before.id)) {
        throw new AttuneError('validation_error', 'invalid cursor', [{ field: '?cursor', reason: 'invalid_cursor' }]);
      }
      params.push(toDate(o.before.startedAt), o.before.id);
      where.push(`(started_at, session_id) < ($${params.length - 1}, $${params.length}::uuid)`);
    }
    params.push(o.limit);
    const { rows } = await this.sql.query<SessionRow>(
      `SELECT ${o.withMetadata ? SESSION_COLUMNS : SESSION_LIST_COLUMNS} FROM sessions WHERE ${where.join(' AND ')}
       ORDER BY started_at DESC, session_id DESC LIMIT $${params.length}`,
      params,
    );
    if (o.withMetadata) return rows.map(sessionFromRow);
    return rows.map((r) => {
      const { metadata: _none, ...s } = sessionFromRow(r);
      return s;
    });
  }

  /**
   * The user's session active at `t` (the latest started, if several), or null. Answered from
   * a per-user cache of their latest sessions; a miss re-reads at most once per TTL, so
   * sessions created by another process are found within the TTL.
   */
  async activeAt(orgId: string, userId: string, t: number): Promise<Session | null> {
    const key = `${orgId}/${userId}`;
    let sessions = this.byUser.get(key);
    if (!sessions) {
      const { rows } = await this.sql.query<SessionRow>(
        `SELECT ${SESSION_COLUMNS} FROM sessions WHERE org_id = $1 AND user_id = $2
         ORDER BY started_at DESC, session_id DESC LIMIT ${RECENT_PER_USER}`,
        [orgId, userId],
      );
      sessions = rows.map(sessionFromRow);
      this.byUser.set(key, sessions);
      for (const s of sessions) this.byId.set(s.id, s);
    }
    return sessions.find((s) => isActiveAt(s, t)) ?? null;
  }

  /** Puts a session this process read or wrote into both caches. */
  private remember(s: Session): Session {
    this.byId.set(s.id, s);
    const key = `${s.orgId}/${s.userId}`;
    const list = this.byUser.peek(key);
    if (list) {
      const next = [s, ...list.filter((x) => x.id !== s.id)].sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : -1));
      // Same TTL as the list it replaces: a local write must not make other processes' changes look fresh.
      const remaining = this.byUser.getRemainingTTL(key);
      if (remaining > 0) this.byUser.set(key, next.slice(0, RECENT_PER_USER), { ttl: remaining });
    }
    return s;
  }
}

interface DeviceRow {
  device_id: string;
  org_id: string;
  user_id: string;
  name: string;
  model: string;
  firmware: string;
  registered_at: Date;
  updated_at: Date;
  version: number;
  created?: boolean;
}

const DEVICE_COLUMNS = 'device_id, org_id, user_id, name, model, firmware, registered_at, updated_at, version';

function deviceFromRow(r: DeviceRow): Device {
  return {
    id: r.device_id,
    orgId: r.org_id,
    userId: r.user_id,
    name: r.name,
    model: r.model,
    firmware: r.firmware,
    registeredAt: ms(r.registered_at),
    updatedAt: ms(r.updated_at),
    version: num(r.version),
  };
}

export class DevicesRepository {
  private readonly cache: LRUCache<string, Device>;

  constructor(
    private readonly sql: SqlClient,
    private readonly opts: CacheOptions = {},
  ) {
    this.cache = new LRUCache<string, Device>({
      max: opts.cacheMax ?? 50_000,
      maxSize: opts.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES,
      sizeCalculation: (d) => 256 + (d.id.length + d.orgId.length + d.userId.length + d.name.length + d.model.length + d.firmware.length) * 2,
      ttl: Math.max(1, opts.cacheTtlMs ?? 2_000),
      ttlResolution: 0,
      perf: { now: () => this.now },
    });
  }

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  /**
   * Registers device `id` in organisation `orgId` to `userId`; re-registering by its user
   * updates name, model and firmware (those given). The same id in another organisation is
   * another device. Registered to another user of the same organisation: conflict. A removed
   * device (remove) is registered again, to whoever registers it (created true).
   */
  async register(input: { id: string; orgId: string; userId: string; name?: string; model?: string; firmware?: string; type?: string }): Promise<{ device: Device; created: boolean }> {
    const now = toDate(this.now);
    // One statement: concurrent registrations of one id cannot both insert, and the owner
    // check and the update see the same row (the CTE reads the row as it was before).
    const { rows } = await this.sql.query<DeviceRow>(
      `WITH before AS (SELECT removed_at FROM devices WHERE org_id = $1 AND device_id = $2)
       INSERT INTO devices AS d (org_id, device_id, user_id, name, model, firmware, device_type, registered_at, updated_at)
       VALUES ($1, $2, $3, COALESCE($4, ''), COALESCE($5, ''), COALESCE($6, ''), $8, $7, $7)
       ON CONFLICT (org_id, device_id) DO UPDATE SET
         user_id = EXCLUDED.user_id,
         -- A removed device registered by another user starts afresh: its last owner's name for
         -- it, last sync, battery and last-worn time are not the new owner's to see.
         name = CASE WHEN d.user_id = EXCLUDED.user_id THEN COALESCE($4, d.name) ELSE EXCLUDED.name END,
         last_seen_at = CASE WHEN d.user_id = EXCLUDED.user_id THEN d.last_seen_at END,
         battery_level_pct = CASE WHEN d.user_id = EXCLUDED.user_id THEN d.battery_level_pct END,
         last_worn_at = CASE WHEN d.user_id = EXCLUDED.user_id THEN d.last_worn_at END,
         model = COALESCE($5, d.model),
         firmware = COALESCE($6, d.firmware),
         device_type = COALESCE($8, d.device_type),
         removed_at = NULL,
         version = d.version + 1,
         updated_at = GREATEST($7, d.updated_at + interval '1 millisecond')
       WHERE d.user_id = EXCLUDED.user_id OR d.removed_at IS NOT NULL
       RETURNING ${DEVICE_COLUMNS}, (xmax = 0 OR COALESCE((SELECT removed_at IS NOT NULL FROM before), false)) AS created`,
      [input.orgId, input.id, input.userId, input.name ?? null, input.model ?? null, input.firmware ?? null, now, input.type ?? null],
    );
    if (rows.length === 0) {
      throw new AttuneError('conflict', `device ${input.id} is registered to another user`, [{ field: '/device_id', reason: 'already_registered' }]);
    }
    const device = deviceFromRow(rows[0]);
    this.cache.set(`${device.orgId}/${device.id}`, device);
    return { device, created: rows[0].created === true };
  }

  /**
   * Removes the user's device `id` (schemas/postgres/0013): kept for its sessions and readings,
   * but it counts toward no quota and takes no readings until registered again. False when the
   * user has no such device (another user's, unknown, or removed already). Other processes
   * may accept its readings for up to cacheTtlMs more.
   */
  async remove(orgId: string, userId: string, id: string): Promise<boolean> {
    const now = toDate(this.now);
    const { rowCount } = await this.sql.query(
      `UPDATE devices SET removed_at = $4, version = version + 1, updated_at = GREATEST($4, updated_at + interval '1 millisecond')
       WHERE org_id = $1 AND device_id = $2 AND user_id = $3 AND removed_at IS NULL`,
      [orgId, id, userId, now],
    );
    this.cache.delete(`${orgId}/${id}`);
    return (rowCount ?? 0) > 0;
  }

  /** How many devices are registered to a user, removed ones not counted (not cached: the device quota counts them, http/rate-limit.ts). */
  async countOfUser(orgId: string, userId: string): Promise<number> {
    const { rows } = await this.sql.query<{ n: number | string }>('SELECT count(*) AS n FROM devices WHERE org_id = $1 AND user_id = $2 AND removed_at IS NULL', [orgId, userId]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Device `id` of organisation `orgId` (cached for at most cacheTtlMs), or null (also when removed). */
  async get(orgId: string, id: string): Promise<Device | null> {
    const key = `${orgId}/${id}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const { rows } = await this.sql.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE org_id = $1 AND device_id = $2 AND removed_at IS NULL`, [orgId, id]);
    if (rows.length === 0) return null;
    const d = deviceFromRow(rows[0]);
    this.cache.set(key, d);
    return d;
  }
}
