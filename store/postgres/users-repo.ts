// Users, the document form of devices, and the practice fields of sessions in PostgreSQL
// (tables users, devices' 0004 columns, session_practice of schemas/postgres/0004_users.sql).
//  - a user is created on first sight of a token's subject: `ensure` is one
//    INSERT ... ON CONFLICT DO NOTHING, remembered per process (a bounded LRU of subjects
//    already ensured), so routes may call it on every request for one round trip per subject
//    per process at most;
//  - every change is one statement; `version` increases with each change (as 0001);
//  - devices registered by serial number get a server-assigned id (dev_<type>_<8 hex>); the
//    serial is unique per organisation (a partial unique index), so two registrations of one
//    serial by two users of one organisation cannot both succeed, in any number of processes.
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { AttuneError } from '../../lib/errors.js';
import { iso } from '../../lib/time.js';
import { SqlStates, sqlState, type SqlClient } from './client.js';
import { isUuid, ms, msOrNull, num, numOrNull, toDate, toDateOrNull } from './sql.js';

export interface User {
  orgId: string;
  userId: string;
  displayName: string;
  email: string | null;
  notificationsEnabled: boolean;
  reminderTime: string | null;
  timezone: string;
  createdAt: number;
  updatedAt: number;
  version: number;
}

export type UserPatch = Partial<Pick<User, 'displayName' | 'notificationsEnabled' | 'reminderTime' | 'timezone'>>;

/** A device as the coherence platform document lists it (GET /v1/users/me devices[]). */
export interface DeviceProfile {
  id: string;
  orgId: string;
  userId: string;
  /** '' for devices registered by id without a type. */
  type: string;
  serialNumber: string | null;
  firmware: string;
  name: string;
  model: string;
  registeredAt: number;
  /** When a sync was last accepted (devices.last_seen_at); null when never. */
  lastSync: number | null;
  batteryLevel: number | null;
  lastWorn: number | null;
  version: number;
  /** Removed by its user (DELETE /v1/devices/{id}): counts toward no quota, takes no readings. */
  removed: boolean;
}

export interface SessionPractice {
  sessionId: string;
  protocol: string | null;
  targetDurationS: number | null;
  intention: string;
  notes: string | null;
  subjectiveRating: number | null;
}

interface UserRow {
  org_id: string;
  user_id: string;
  display_name: string;
  email: string | null;
  notifications_enabled: boolean;
  reminder_time: string | null;
  timezone: string;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const USER_COLUMNS = 'org_id, user_id, display_name, email, notifications_enabled, reminder_time, timezone, created_at, updated_at, version';

const userFromRow = (r: UserRow): User => ({
  orgId: r.org_id,
  userId: r.user_id,
  displayName: r.display_name,
  email: r.email,
  notificationsEnabled: Boolean(r.notifications_enabled),
  reminderTime: r.reminder_time,
  timezone: r.timezone,
  createdAt: ms(r.created_at),
  updatedAt: ms(r.updated_at),
  version: num(r.version),
});

interface DeviceProfileRow {
  device_id: string;
  org_id: string;
  user_id: string;
  device_type: string | null;
  serial_number: string | null;
  firmware: string;
  name: string;
  model: string;
  registered_at: Date;
  last_seen_at: Date | null;
  battery_level_pct: number | null;
  last_worn_at: Date | null;
  version: number;
  removed_at: Date | null;
  created?: boolean;
}

const DEVICE_COLUMNS = 'device_id, org_id, user_id, device_type, serial_number, firmware, name, model, registered_at, last_seen_at, battery_level_pct, last_worn_at, version, removed_at';

const deviceFromRow = (r: DeviceProfileRow): DeviceProfile => ({
  id: r.device_id,
  orgId: r.org_id,
  userId: r.user_id,
  type: r.device_type ?? '',
  serialNumber: r.serial_number,
  firmware: r.firmware,
  name: r.name,
  model: r.model,
  registeredAt: ms(r.registered_at),
  lastSync: msOrNull(r.last_seen_at),
  batteryLevel: numOrNull(r.battery_level_pct),
  lastWorn: msOrNull(r.last_worn_at),
  version: num(r.version),
  removed: r.removed_at !== null && r.removed_at !== undefined,
});

interface PracticeRow {
  session_id: string;
  protocol: string | null;
  target_duration_s: number | null;
  intention: string;
  notes: string | null;
  subjective_rating: number | null;
}

const practiceFromRow = (r: PracticeRow): SessionPractice => ({
  sessionId: r.session_id,
  protocol: r.protocol,
  targetDurationS: numOrNull(r.target_duration_s),
  intention: r.intention,
  notes: r.notes,
  subjectiveRating: numOrNull(r.subjective_rating),
});

/** A device as the API shows it (GET /v1/users/me devices[], POST /v1/devices): the document's fields and Attune's. */
export function deviceProfileJson(d: DeviceProfile) {
  return {
    id: d.id,
    type: d.type,
    serial_number: d.serialNumber,
    firmware_version: d.firmware,
    last_sync: d.lastSync === null ? null : iso(d.lastSync),
    battery_level: d.batteryLevel,
    last_worn: d.lastWorn === null ? null : iso(d.lastWorn),
  };
}

interface PendingSync {
  orgId: string;
  deviceId: string;
  /** The device's user when it synced (null: not said): written only while the device is still theirs. */
  userId: string | null;
  at: number;
  batteryLevel: number | null;
  lastWorn: number | null;
}

/** Two syncs of one device as one: the later time, the later sync's battery (else the other's), the later last-worn. */
function mergeSync(a: PendingSync | undefined, b: PendingSync): PendingSync {
  if (!a) return b;
  const [older, newer] = a.at <= b.at ? [a, b] : [b, a];
  return {
    orgId: b.orgId,
    deviceId: b.deviceId,
    userId: b.userId,
    at: newer.at,
    batteryLevel: newer.batteryLevel ?? older.batteryLevel,
    lastWorn: a.lastWorn === null ? b.lastWorn : b.lastWorn === null ? a.lastWorn : Math.max(a.lastWorn, b.lastWorn),
  };
}

/** A server-assigned device id: dev_<type>_<8 hex> (the document's dev_solas_a7f3 style). */
export function newDeviceId(type: string): string {
  return `dev_${type}_${randomBytes(4).toString('hex')}`;
}

export class UsersRepository {
  /** Subjects this process has ensured (org/user): ensure() skips the insert for them. */
  private readonly ensured = new LRUCache<string, true>({ max: 100_000 });
  /** Syncs held back by noteSync, by org/device, and when each device's last one was written (wall clock). */
  private readonly pendingSyncs = new Map<string, PendingSync>();
  private readonly lastSyncWrite = new LRUCache<string, number>({ max: 100_000 });
  private syncTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly sql: SqlClient,
    private readonly opts: { clock?: () => number; syncWriteIntervalMs?: number } = {},
  ) {}

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  /** Creates the user on first sight (nothing else changes when it exists). */
  async ensure(orgId: string, userId: string, init: { email?: string | null } = {}): Promise<void> {
    const key = `${orgId}/${userId}`;
    if (this.ensured.has(key)) return;
    const now = toDate(this.now);
    await this.sql.query(
      `INSERT INTO users (org_id, user_id, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (org_id, user_id) DO NOTHING`,
      [orgId, userId, init.email ?? null, now],
    );
    this.ensured.set(key, true);
  }

  /** The user, created first if never seen. */
  async getOrCreate(orgId: string, userId: string, init: { email?: string | null } = {}): Promise<User> {
    const found = await this.get(orgId, userId);
    if (found) return found;
    this.ensured.delete(`${orgId}/${userId}`);
    await this.ensure(orgId, userId, init);
    const created = await this.get(orgId, userId);
    if (!created) throw new AttuneError('internal_error', `user ${userId} could not be created`);
    return created;
  }

  async get(orgId: string, userId: string): Promise<User | null> {
    const { rows } = await this.sql.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE org_id = $1 AND user_id = $2`, [orgId, userId]);
    return rows[0] ? userFromRow(rows[0]) : null;
  }

  /** Changes the given fields in one statement (the user is created first if never seen). */
  async update(orgId: string, userId: string, patch: UserPatch): Promise<User> {
    await this.ensure(orgId, userId);
    const sets: string[] = [];
    const params: unknown[] = [orgId, userId, toDate(this.now)];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (patch.displayName !== undefined) set('display_name', patch.displayName);
    if (patch.notificationsEnabled !== undefined) set('notifications_enabled', patch.notificationsEnabled);
    if (patch.reminderTime !== undefined) set('reminder_time', patch.reminderTime);
    if (patch.timezone !== undefined) set('timezone', patch.timezone);
    sets.push('version = version + 1', "updated_at = GREATEST($3, updated_at + interval '1 millisecond')");
    const { rows } = await this.sql.query<UserRow>(
      `UPDATE users SET ${sets.join(', ')} WHERE org_id = $1 AND user_id = $2 RETURNING ${USER_COLUMNS}`,
      params,
    );
    if (!rows[0]) {
      // Deleted by hand after this process ensured it: create again and retry once.
      this.ensured.delete(`${orgId}/${userId}`);
      await this.ensure(orgId, userId);
      const again = await this.sql.query<UserRow>(`UPDATE users SET ${sets.join(', ')} WHERE org_id = $1 AND user_id = $2 RETURNING ${USER_COLUMNS}`, params);
      return userFromRow(again.rows[0]);
    }
    return userFromRow(rows[0]);
  }

  /**
   * Registers a device by serial number (the document's form) to `userId`, with a
   * server-assigned id. The same serial registered again by the same user updates its type and
   * firmware (created false); registered to another user of the organisation: conflict.
   */
  async registerDevice(input: { orgId: string; userId: string; type: string; serialNumber: string; firmware?: string }): Promise<{ device: DeviceProfile; created: boolean }> {
    const now = toDate(this.now);
    const existing = await this.deviceBySerial(input.orgId, input.serialNumber, { removed: true });
    if (existing) return this.reRegister(existing, input, now);
    try {
      const { rows } = await this.sql.query<DeviceProfileRow>(
        `INSERT INTO devices (org_id, device_id, user_id, device_type, serial_number, firmware, model, registered_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, COALESCE($6, ''), $4, $7, $7)
         RETURNING ${DEVICE_COLUMNS}`,
        [input.orgId, newDeviceId(input.type), input.userId, input.type, input.serialNumber, input.firmware ?? null, now],
      );
      return { device: deviceFromRow(rows[0]), created: true };
    } catch (err) {
      // Another registration of the same serial won the race: answer as if it came first.
      if (sqlState(err) !== SqlStates.uniqueViolation) throw err;
      const winner = await this.deviceBySerial(input.orgId, input.serialNumber, { removed: true });
      if (!winner) throw err;
      return this.reRegister(winner, input, now);
    }
  }

  private async reRegister(
    existing: DeviceProfile,
    input: { orgId: string; userId: string; type: string; serialNumber: string; firmware?: string },
    now: Date,
  ): Promise<{ device: DeviceProfile; created: boolean }> {
    // A removed device is registered again, to whoever registers it (created: it counts again).
    if (existing.userId !== input.userId && !existing.removed) {
      throw new AttuneError('conflict', `serial number ${input.serialNumber} is registered to another user`, [{ field: '/serial_number', reason: 'already_registered' }]);
    }
    const { rows } = await this.sql.query<DeviceProfileRow>(
      `UPDATE devices SET user_id = $6, device_type = $3, firmware = COALESCE($4, firmware), removed_at = NULL, version = version + 1,
         -- Another user's now: its last owner's name, last sync, battery and last-worn time go (as DevicesRepository.register).
         name = CASE WHEN user_id = $6 THEN name ELSE '' END,
         last_seen_at = CASE WHEN user_id = $6 THEN last_seen_at END,
         battery_level_pct = CASE WHEN user_id = $6 THEN battery_level_pct END,
         last_worn_at = CASE WHEN user_id = $6 THEN last_worn_at END,
         updated_at = GREATEST($5, updated_at + interval '1 millisecond')
       WHERE org_id = $1 AND device_id = $2 AND (user_id = $6 OR removed_at IS NOT NULL)
       RETURNING ${DEVICE_COLUMNS}`,
      [input.orgId, existing.id, input.type, input.firmware ?? null, now, input.userId],
    );
    if (!rows[0]) throw new AttuneError('conflict', `serial number ${input.serialNumber} is registered to another user`, [{ field: '/serial_number', reason: 'already_registered' }]);
    return { device: deviceFromRow(rows[0]), created: existing.removed };
  }

  /** The device with this serial number; a removed one only with `removed` (the quota counts only the others). */
  async deviceBySerial(orgId: string, serialNumber: string, opts: { removed?: boolean } = {}): Promise<DeviceProfile | null> {
    const { rows } = await this.sql.query<DeviceProfileRow>(
      `SELECT ${DEVICE_COLUMNS} FROM devices WHERE org_id = $1 AND serial_number = $2${opts.removed ? '' : ' AND removed_at IS NULL'}`,
      [orgId, serialNumber],
    );
    return rows[0] ? deviceFromRow(rows[0]) : null;
  }

  async device(orgId: string, deviceId: string): Promise<DeviceProfile | null> {
    await this.flushSyncs();
    const { rows } = await this.sql.query<DeviceProfileRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE org_id = $1 AND device_id = $2`, [orgId, deviceId]);
    return rows[0] ? deviceFromRow(rows[0]) : null;
  }

  /** The user's devices, first registered first. */
  async devicesOf(orgId: string, userId: string): Promise<DeviceProfile[]> {
    await this.flushSyncs();
    const { rows } = await this.sql.query<DeviceProfileRow>(
      `SELECT ${DEVICE_COLUMNS} FROM devices WHERE org_id = $1 AND user_id = $2 AND removed_at IS NULL ORDER BY registered_at, device_id`,
      [orgId, userId],
    );
    return rows.map(deviceFromRow);
  }

  /**
   * Records an accepted sync: last_sync = `at`; the battery and last-worn time when given.
   * Never moves last_sync back (two syncs finishing out of order keep the later). Written at
   * most once per syncWriteIntervalMs (1 s) per device: a device syncing faster has its later
   * syncs merged and written when the interval is up (the sync path then costs no query), and
   * this process's reads (device, devicesOf) write what is waiting first. Other processes see
   * a sync within the interval; a crash loses at most that much of last_sync.
   */
  async noteSync(orgId: string, deviceId: string, s: { at: number; batteryLevel?: number | null; lastWorn?: number | null; userId?: string }): Promise<void> {
    // Per owner too: a sync held while the device was removed and taken by another user is
    // not theirs, and is written only while it is still its owner's (updateSync).
    const key = `${orgId}/${deviceId}/${s.userId ?? ''}`;
    this.pendingSyncs.set(key, mergeSync(this.pendingSyncs.get(key), { orgId, deviceId, userId: s.userId ?? null, at: s.at, batteryLevel: s.batteryLevel ?? null, lastWorn: s.lastWorn ?? null }));
    const interval = this.opts.syncWriteIntervalMs ?? 1_000;
    const last = this.lastSyncWrite.get(key);
    const wall = Date.now();
    if (last === undefined || wall - last >= interval) return this.writeSync(key);
    this.scheduleSyncFlush(interval - (wall - last));
  }

  /** Writes every sync this process holds back (the reads call it; so may a shutdown). */
  async flushSyncs(): Promise<void> {
    if (this.pendingSyncs.size === 0) return;
    if (this.syncTimer) {
      clearTimeout(this.syncTimer);
      this.syncTimer = null;
    }
    await Promise.all([...this.pendingSyncs.keys()].map((k) => this.writeSync(k)));
  }

  /** Syncs held back and not written yet (tests). */
  get pendingSyncCount(): number {
    return this.pendingSyncs.size;
  }

  private scheduleSyncFlush(ms: number): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      // A failed write puts its sync back (writeSync), to be tried with the next one.
      this.flushSyncs().catch(() => this.scheduleSyncFlush(this.opts.syncWriteIntervalMs ?? 1_000));
    }, Math.max(1, ms));
    this.syncTimer.unref?.();
  }

  private async writeSync(key: string): Promise<void> {
    const p = this.pendingSyncs.get(key);
    if (!p) return;
    this.pendingSyncs.delete(key);
    this.lastSyncWrite.set(key, Date.now());
    try {
      await this.updateSync(p);
    } catch (err) {
      this.pendingSyncs.set(key, mergeSync(this.pendingSyncs.get(key), p));
      throw err;
    }
  }

  private async updateSync(s: PendingSync): Promise<void> {
    const { orgId, deviceId } = s;
    // Never onto a removed device, nor onto one another user has registered since the sync.
    await this.sql.query(
      `UPDATE devices SET
         last_seen_at = GREATEST(COALESCE(last_seen_at, $3), $3),
         battery_level_pct = CASE WHEN $4::double precision IS NOT NULL AND (last_seen_at IS NULL OR last_seen_at <= $3) THEN $4 ELSE battery_level_pct END,
         last_worn_at = CASE WHEN $5::timestamptz IS NOT NULL THEN GREATEST(COALESCE(last_worn_at, $5), $5) ELSE last_worn_at END
       WHERE org_id = $1 AND device_id = $2 AND removed_at IS NULL AND ($6::text IS NULL OR user_id = $6)`,
      [orgId, deviceId, toDate(s.at), s.batteryLevel ?? null, toDateOrNull(s.lastWorn), s.userId],
    );
  }

  /** Sessions of the user (any status): the stats' total_sessions. */
  async sessionCount(orgId: string, userId: string): Promise<number> {
    const { rows } = await this.sql.query<{ n: number | string }>('SELECT count(*) AS n FROM sessions WHERE org_id = $1 AND user_id = $2', [orgId, userId]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Mesh sessions the user has joined (0 while the mesh tables do not exist). */
  async meshSessionsJoined(orgId: string, userId: string): Promise<number> {
    const { rows: t } = await this.sql.query<{ t: string | null }>(`SELECT to_regclass('mesh_participants')::text AS t`);
    if (!t[0]?.t) return 0;
    const { rows } = await this.sql.query<{ n: number | string }>(
      'SELECT count(DISTINCT mesh_id) AS n FROM mesh_participants WHERE org_id = $1 AND user_id = $2',
      [orgId, userId],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Stores a session's practice fields (created with the document's form). */
  async setPractice(p: { sessionId: string; protocol?: string | null; targetDurationS?: number | null; intention?: string }): Promise<SessionPractice> {
    const { rows } = await this.sql.query<PracticeRow>(
      `INSERT INTO session_practice (session_id, protocol, target_duration_s, intention) VALUES ($1, $2, $3, COALESCE($4, ''))
       ON CONFLICT (session_id) DO UPDATE SET protocol = EXCLUDED.protocol, target_duration_s = EXCLUDED.target_duration_s, intention = EXCLUDED.intention
       RETURNING session_id::text AS session_id, protocol, target_duration_s, intention, notes, subjective_rating`,
      [p.sessionId, p.protocol ?? null, p.targetDurationS ?? null, p.intention ?? null],
    );
    return practiceFromRow(rows[0]);
  }

  /** Stores the end's notes and rating (those given; a later end with none keeps them). */
  async setOutcome(sessionId: string, o: { notes?: string; subjectiveRating?: number }): Promise<SessionPractice> {
    const { rows } = await this.sql.query<PracticeRow>(
      `INSERT INTO session_practice (session_id, notes, subjective_rating) VALUES ($1, $2, $3)
       ON CONFLICT (session_id) DO UPDATE SET notes = COALESCE(EXCLUDED.notes, session_practice.notes),
         subjective_rating = COALESCE(EXCLUDED.subjective_rating, session_practice.subjective_rating)
       RETURNING session_id::text AS session_id, protocol, target_duration_s, intention, notes, subjective_rating`,
      [sessionId, o.notes ?? null, o.subjectiveRating ?? null],
    );
    return practiceFromRow(rows[0]);
  }

  /** The practice fields of several sessions (a list page), by session id; sessions without them are absent. */
  async practices(sessionIds: string[]): Promise<Map<string, SessionPractice>> {
    const ids = sessionIds.filter(isUuid);
    if (ids.length === 0) return new Map();
    const { rows } = await this.sql.query<PracticeRow>(
      `SELECT session_id::text AS session_id, protocol, target_duration_s, intention, notes, subjective_rating FROM session_practice WHERE session_id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(rows.map((r) => [r.session_id, practiceFromRow(r)]));
  }

  async practice(sessionId: string): Promise<SessionPractice | null> {
    if (!isUuid(sessionId)) return null;
    const { rows } = await this.sql.query<PracticeRow>(
      `SELECT session_id::text AS session_id, protocol, target_duration_s, intention, notes, subjective_rating FROM session_practice WHERE session_id = $1`,
      [sessionId],
    );
    return rows[0] ? practiceFromRow(rows[0]) : null;
  }
}
