// Sessions and devices live in ClickHouse (ReplacingMergeTree by updated_at). Each process
// keeps a small cache in front of it: the ingest gateway resolves "the user's session active
// at this reading's time" for every reading, which must not cost a query per reading.
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { AttuneError } from '../lib/errors.js';
import { int64 } from '../lib/time.js';
import { Tables, type DeviceRow as DeviceWriteRow, type SessionRow as SessionWriteRow } from './rows.js';

export interface Session {
  id: string;
  orgId: string;
  userId: string;
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
}

interface SessionRow {
  session_id: string;
  org_id: string;
  user_id: string;
  device_id: string;
  kind: string;
  title: string;
  status: 'active' | 'ended';
  started_at_ms: string | number;
  ended_at_ms: string | number | null;
  coherence_threshold: number;
  threshold_duration_s: number;
  created_at_ms: string | number;
  updated_at_ms: string | number;
  metadata_json: string;
}

const SESSION_COLUMNS = `session_id, org_id, user_id, device_id, kind, title, status,
  toUnixTimestamp64Milli(started_at) AS started_at_ms,
  if(isNull(ended_at), NULL, toUnixTimestamp64Milli(assumeNotNull(ended_at))) AS ended_at_ms,
  coherence_threshold, threshold_duration_s,
  toUnixTimestamp64Milli(created_at) AS created_at_ms,
  toUnixTimestamp64Milli(updated_at) AS updated_at_ms, metadata_json`;

function fromRow(r: SessionRow): Session {
  let metadata: Record<string, unknown> = {};
  try {
    metadata = JSON.parse(r.metadata_json || '{}');
  } catch {
    metadata = {};
  }
  return {
    id: r.session_id,
    orgId: r.org_id,
    userId: r.user_id,
    deviceId: r.device_id,
    type: r.kind,
    title: r.title,
    status: r.status,
    startedAt: int64(r.started_at_ms),
    endedAt: r.ended_at_ms === null ? null : int64(r.ended_at_ms),
    coherenceThreshold: Number(r.coherence_threshold),
    thresholdDurationS: Number(r.threshold_duration_s),
    createdAt: int64(r.created_at_ms),
    updatedAt: int64(r.updated_at_ms),
    metadata,
  };
}

function toRow(s: Session): SessionWriteRow {
  return {
    session_id: s.id,
    org_id: s.orgId,
    user_id: s.userId,
    device_id: s.deviceId,
    kind: s.type,
    title: s.title,
    status: s.status,
    started_at: s.startedAt,
    ended_at: s.endedAt,
    coherence_threshold: s.coherenceThreshold,
    threshold_duration_s: s.thresholdDurationS,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    metadata_json: JSON.stringify(s.metadata),
  };
}

/** Whether `s` covers instant `t`: started at or before it and not ended before it. */
export const isActiveAt = (s: Session, t: number): boolean => s.startedAt <= t && (s.endedAt === null || t < s.endedAt);

export interface ListOptions {
  orgId: string;
  userId: string | null;
  status?: 'active' | 'ended';
  limit: number;
  /** Exclusive: sessions started before this (started_at, id) pair, newest first. */
  before?: { startedAt: number; id: string };
}

export class SessionsRepository {
  /** Per user: their recent sessions and when that list was read. */
  private readonly byUser = new Map<string, { sessions: Session[]; readAt: number }>();
  private readonly byId = new Map<string, { session: Session; readAt: number }>();

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    private readonly opts: { cacheTtlMs?: number; clock?: () => number } = {},
  ) {}

  private get now(): number {
    return (this.opts.clock ?? Date.now)();
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
    const s: Session = {
      id: randomUUID(),
      orgId: input.orgId,
      userId: input.userId,
      deviceId: input.deviceId ?? '',
      type: input.type ?? 'coherence',
      title: input.title ?? '',
      status: 'active',
      startedAt: input.startedAt ?? now,
      endedAt: null,
      coherenceThreshold: input.coherenceThreshold ?? 0.5,
      thresholdDurationS: input.thresholdDurationS ?? 30,
      createdAt: now,
      updatedAt: now,
      metadata: input.metadata ?? {},
    };
    await this.write(s);
    return s;
  }

  async end(given: Session, at?: number): Promise<Session> {
    // Read afresh: another process may have ended it already (ending is idempotent).
    const s = (await this.get(given.id, { fresh: true })) ?? given;
    if (s.status === 'ended') return s;
    const now = this.now;
    const ended: Session = { ...s, status: 'ended', endedAt: Math.max(at ?? now, s.startedAt), updatedAt: Math.max(now, s.updatedAt + 1) };
    await this.write(ended);
    return ended;
  }

  private async write(s: Session): Promise<void> {
    await this.client.insert({ table: `${this.database}.${Tables.sessions}`, values: [toRow(s)], format: 'JSONEachRow' });
    this.remember(s);
    const cached = this.byUser.get(`${s.orgId}/${s.userId}`);
    if (cached) {
      cached.sessions = [s, ...cached.sessions.filter((x) => x.id !== s.id)].sort((a, b) => b.startedAt - a.startedAt);
    }
  }

  /**
   * The session, from a cache of at most cacheTtlMs (other processes may end or change it;
   * an ended session does not change again), or from the store with `fresh`.
   */
  async get(id: string, opts: { fresh?: boolean } = {}): Promise<Session | null> {
    const hit = this.byId.get(id);
    if (hit && !opts.fresh && (hit.session.status === 'ended' || this.now - hit.readAt < this.ttl)) return hit.session;
    const rs = await this.client.query({
      query: `SELECT ${SESSION_COLUMNS} FROM ${this.database}.sessions FINAL WHERE session_id = {id:String} LIMIT 1`,
      query_params: { id },
      format: 'JSONEachRow',
    });
    const rows = (await rs.json()) as SessionRow[];
    if (rows.length === 0) return null;
    const s = fromRow(rows[0]);
    this.remember(s);
    return s;
  }

  private remember(s: Session): void {
    if (this.byId.size > 50_000) this.byId.clear();
    this.byId.set(s.id, { session: s, readAt: this.now });
  }

  private get ttl(): number {
    return this.opts.cacheTtlMs ?? 2_000;
  }

  async list(o: ListOptions): Promise<Session[]> {
    const where = ['org_id = {org:String}'];
    const params: Record<string, unknown> = { org: o.orgId, limit: o.limit };
    if (o.userId !== null) {
      where.push('user_id = {user:String}');
      params.user = o.userId;
    }
    if (o.status) {
      where.push('status = {status:String}');
      params.status = o.status;
    }
    if (o.before) {
      where.push('(toUnixTimestamp64Milli(started_at), session_id) < ({bt:Int64}, {bid:String})');
      params.bt = o.before.startedAt;
      params.bid = o.before.id;
    }
    const rs = await this.client.query({
      query: `SELECT ${SESSION_COLUMNS} FROM ${this.database}.sessions FINAL
              WHERE ${where.join(' AND ')}
              ORDER BY started_at DESC, session_id DESC LIMIT {limit:UInt32}`,
      query_params: params,
      format: 'JSONEachRow',
    });
    return ((await rs.json()) as SessionRow[]).map(fromRow);
  }

  /**
   * The user's session active at `t` (the latest started, if several), or null. Served from a
   * per-user cache of recent sessions; a miss re-reads at most once per TTL, so sessions
   * created by another process are found within the TTL.
   */
  async activeAt(orgId: string, userId: string, t: number): Promise<Session | null> {
    const key = `${orgId}/${userId}`;
    let cached = this.byUser.get(key);
    const find = (list: Session[]) => list.find((s) => isActiveAt(s, t)) ?? null;
    // Within the TTL the cached list answers (hit or miss); past it, sessions started or
    // ended by other processes are read again.
    if (cached && this.now - cached.readAt < this.ttl) return find(cached.sessions);
    const rs = await this.client.query({
      query: `SELECT ${SESSION_COLUMNS} FROM ${this.database}.sessions FINAL
              WHERE org_id = {org:String} AND user_id = {user:String}
              ORDER BY started_at DESC LIMIT 100`,
      query_params: { org: orgId, user: userId },
      format: 'JSONEachRow',
    });
    const sessions = ((await rs.json()) as SessionRow[]).map(fromRow);
    cached = { sessions, readAt: this.now };
    if (this.byUser.size > 100_000) this.byUser.clear();
    this.byUser.set(key, cached);
    for (const s of sessions) this.remember(s);
    return find(sessions);
  }
}

interface DeviceRow {
  device_id: string;
  org_id: string;
  user_id: string;
  name: string;
  model: string;
  firmware: string;
  registered_at_ms: string | number;
  updated_at_ms: string | number;
}

export class DevicesRepository {
  private readonly cache = new Map<string, Device>();
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Registers a device to (org, user); re-registering by its owner updates it. */
  async register(input: { id: string; orgId: string; userId: string; name?: string; model?: string; firmware?: string }): Promise<{ device: Device; created: boolean }> {
    const existing = await this.get(input.id);
    if (existing && (existing.orgId !== input.orgId || existing.userId !== input.userId)) {
      throw new AttuneError('conflict', `device ${input.id} is registered to another user`, [{ field: '/device_id', reason: 'already_registered' }]);
    }
    const now = this.clock();
    const device: Device = {
      id: input.id,
      orgId: input.orgId,
      userId: input.userId,
      name: input.name ?? existing?.name ?? '',
      model: input.model ?? existing?.model ?? '',
      firmware: input.firmware ?? existing?.firmware ?? '',
      registeredAt: existing?.registeredAt ?? now,
      updatedAt: Math.max(now, (existing?.updatedAt ?? 0) + 1),
    };
    const row: DeviceWriteRow = {
      device_id: device.id,
      org_id: device.orgId,
      user_id: device.userId,
      name: device.name,
      model: device.model,
      firmware: device.firmware,
      registered_at: device.registeredAt,
      updated_at: device.updatedAt,
      last_seen_at: null,
      battery_level_pct: null,
    };
    await this.client.insert({ table: `${this.database}.${Tables.devices}`, values: [row], format: 'JSONEachRow' });
    this.cache.set(device.id, device);
    return { device, created: existing === null };
  }

  async get(id: string): Promise<Device | null> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const rs = await this.client.query({
      query: `SELECT device_id, org_id, user_id, name, model, firmware,
                toUnixTimestamp64Milli(registered_at) AS registered_at_ms,
                toUnixTimestamp64Milli(updated_at) AS updated_at_ms
              FROM ${this.database}.devices FINAL WHERE device_id = {id:String} LIMIT 1`,
      query_params: { id },
      format: 'JSONEachRow',
    });
    const rows = (await rs.json()) as DeviceRow[];
    if (rows.length === 0) return null;
    const r = rows[0];
    const d: Device = {
      id: r.device_id,
      orgId: r.org_id,
      userId: r.user_id,
      name: r.name,
      model: r.model,
      firmware: r.firmware,
      registeredAt: int64(r.registered_at_ms),
      updatedAt: int64(r.updated_at_ms),
    };
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(id, d);
    return d;
  }
}
