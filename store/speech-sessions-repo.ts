// Speech sessions and uploads live in ClickHouse (speech_sessions, speech_uploads:
// ReplacingMergeTree by updated_at, one row per version). The API, the audio ingest and the
// speech worker all change the same records, in one process in the embedded default and in
// several when scaled out, so every change is a read-modify-write that reads the store (no
// cache) and writes the full record with an updated_at strictly above the version it read.
// Within a process, changes to one record are queued one after another, so two writers here
// never both build on the same version (across processes the latest write wins).
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { AttuneError } from '../lib/errors.js';
import { canAccess, type Principal } from '../lib/principal.js';
import { queryRows, toNullableNumber, toNumber } from './clickhouse.js';
import {
  SpeechTables,
  type SpeechSessionKind,
  type SpeechSessionRow,
  type SpeechSessionStatus,
  type SpeechUploadRow,
  type SpeechUploadStatus,
} from './rows.js';

export type { SpeechSessionKind, SpeechSessionStatus, SpeechUploadStatus };

export interface SpeechSession {
  id: string;
  orgId: string;
  userId: string;
  title: string;
  description: string;
  type: SpeechSessionKind;
  expectedDurationS: number | null;
  settings: Record<string, unknown>;
  status: SpeechSessionStatus;
  source: 'upload' | 'live' | '';
  startedAt: number | null;
  endedAt: number | null;
  audioDurationS: number | null;
  sampleRateHz: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface SpeechUpload {
  id: string;
  sessionId: string;
  orgId: string;
  userId: string;
  status: SpeechUploadStatus;
  stage: string;
  progress: number;
  etaS: number | null;
  fileName: string;
  sizeBytes: number;
  encoding: 'pcm16' | 'float32' | '';
  channelCount: number;
  sampleRateHz: number;
  audioDurationS: number | null;
  metadata: Record<string, unknown>;
  errorCode: string;
  errorMessage: string;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
}

export type SpeechSessionPatch = Partial<
  Pick<SpeechSession, 'status' | 'source' | 'startedAt' | 'endedAt' | 'audioDurationS' | 'sampleRateHz' | 'title' | 'description' | 'settings' | 'expectedDurationS'>
>;

export type SpeechUploadPatch = Partial<Omit<SpeechUpload, 'id' | 'sessionId' | 'orgId' | 'userId' | 'createdAt' | 'updatedAt'>>;

export interface SpeechSessionFilter {
  orgId: string;
  /** Only this user's sessions; all of the org's when absent (an org admin's listing). */
  userId?: string;
  status?: SpeechSessionStatus;
  type?: SpeechSessionKind;
  /** created_at at or after, epoch ms. */
  from?: number;
  /** created_at before, epoch ms. */
  to?: number;
  limit: number;
  /** From a previous page's nextCursor. */
  cursor?: string;
}

/** A DateTime64 column read as epoch ms (NULL kept): no string parsing, same on chDB and servers. */
const msColumn = (col: string, nullable = false) =>
  nullable
    ? `if(isNull(${col}), NULL, toUnixTimestamp64Milli(assumeNotNull(${col}))) AS ${col}_ms`
    : `toUnixTimestamp64Milli(${col}) AS ${col}_ms`;

const SESSION_COLUMNS = [
  'session_id', 'org_id', 'user_id', 'title', 'description', 'kind', 'expected_duration_s', 'settings_json', 'status', 'source',
  msColumn('started_at', true), msColumn('ended_at', true), 'audio_duration_s', 'sample_rate_hz', msColumn('created_at'), msColumn('updated_at'),
].join(', ');

const UPLOAD_COLUMNS = [
  'upload_id', 'session_id', 'org_id', 'user_id', 'status', 'stage', 'progress', 'eta_s', 'file_name', 'size_bytes', 'encoding',
  'channel_count', 'sample_rate_hz', 'audio_duration_s', 'metadata_json', 'error_code', 'error_message',
  msColumn('created_at'), msColumn('updated_at'), msColumn('completed_at', true),
].join(', ');

type Int = string | number;
type ReadSessionRow = Omit<SpeechSessionRow, 'started_at' | 'ended_at' | 'created_at' | 'updated_at' | 'expected_duration_s' | 'sample_rate_hz' | 'audio_duration_s'> & {
  expected_duration_s: Int | null;
  sample_rate_hz: Int | null;
  audio_duration_s: Int | null;
  started_at_ms: Int | null;
  ended_at_ms: Int | null;
  created_at_ms: Int;
  updated_at_ms: Int;
};
type ReadUploadRow = Omit<SpeechUploadRow, 'created_at' | 'updated_at' | 'completed_at' | 'size_bytes' | 'progress' | 'eta_s'> & {
  size_bytes: Int;
  progress: Int;
  eta_s: Int | null;
  created_at_ms: Int;
  updated_at_ms: Int;
  completed_at_ms: Int | null;
};

function parseObject(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

/** Float32 columns come back with float noise (0.3 → 0.30000001192092896). */
const float32 = (v: number) => Number(v.toPrecision(7));
const nullableFloat32 = (v: number | null) => (v === null ? null : float32(v));

function sessionFromRow(r: ReadSessionRow): SpeechSession {
  return {
    id: r.session_id,
    orgId: r.org_id,
    userId: r.user_id,
    title: r.title,
    description: r.description,
    type: r.kind,
    expectedDurationS: toNullableNumber(r.expected_duration_s),
    settings: parseObject(r.settings_json),
    status: r.status,
    source: r.source,
    startedAt: toNullableNumber(r.started_at_ms),
    endedAt: toNullableNumber(r.ended_at_ms),
    audioDurationS: toNullableNumber(r.audio_duration_s),
    sampleRateHz: toNullableNumber(r.sample_rate_hz),
    createdAt: toNumber(r.created_at_ms),
    updatedAt: toNumber(r.updated_at_ms),
  };
}

function sessionToRow(s: SpeechSession): SpeechSessionRow {
  return {
    session_id: s.id,
    org_id: s.orgId,
    user_id: s.userId,
    title: s.title,
    description: s.description,
    kind: s.type,
    expected_duration_s: s.expectedDurationS,
    settings_json: JSON.stringify(s.settings),
    status: s.status,
    source: s.source,
    started_at: s.startedAt === null ? null : Math.round(s.startedAt),
    ended_at: s.endedAt === null ? null : Math.round(s.endedAt),
    audio_duration_s: s.audioDurationS,
    sample_rate_hz: s.sampleRateHz,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  };
}

function uploadFromRow(r: ReadUploadRow): SpeechUpload {
  return {
    id: r.upload_id,
    sessionId: r.session_id,
    orgId: r.org_id,
    userId: r.user_id,
    status: r.status,
    stage: r.stage,
    progress: float32(toNumber(r.progress)),
    etaS: nullableFloat32(toNullableNumber(r.eta_s)),
    fileName: r.file_name,
    sizeBytes: toNumber(r.size_bytes),
    encoding: r.encoding,
    channelCount: toNumber(r.channel_count),
    sampleRateHz: toNumber(r.sample_rate_hz),
    audioDurationS: toNullableNumber(r.audio_duration_s),
    metadata: parseObject(r.metadata_json),
    errorCode: r.error_code,
    errorMessage: r.error_message,
    createdAt: toNumber(r.created_at_ms),
    updatedAt: toNumber(r.updated_at_ms),
    completedAt: toNullableNumber(r.completed_at_ms),
  };
}

function uploadToRow(u: SpeechUpload): SpeechUploadRow {
  return {
    upload_id: u.id,
    session_id: u.sessionId,
    org_id: u.orgId,
    user_id: u.userId,
    status: u.status,
    stage: u.stage,
    progress: u.progress,
    eta_s: u.etaS,
    file_name: u.fileName,
    size_bytes: Math.round(u.sizeBytes),
    encoding: u.encoding,
    channel_count: u.channelCount,
    sample_rate_hz: u.sampleRateHz,
    audio_duration_s: u.audioDurationS,
    metadata_json: JSON.stringify(u.metadata),
    error_code: u.errorCode,
    error_message: u.errorMessage,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
    completed_at: u.completedAt === null ? null : Math.round(u.completedAt),
  };
}

/** Runs tasks for the same key one after another (a failed task does not block the next). */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

/** The version to write after `prevUpdatedAt`: now, or just after it when the clock has not moved (or went back). */
const nextVersion = (now: number, prevUpdatedAt: number) => Math.max(Math.round(now), prevUpdatedAt + 1);

function encodeCursor(s: SpeechSession): string {
  return Buffer.from(JSON.stringify([s.createdAt, s.id])).toString('base64url');
}

function decodeCursor(c: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (Number.isSafeInteger(createdAt) && typeof id === 'string' && id.length <= 64) return { createdAt, id };
  } catch {
    /* fall through */
  }
  throw new AttuneError('validation_error', 'invalid cursor', [{ field: '?cursor', reason: 'not a cursor returned by this API' }]);
}

export class SpeechSessionsRepository {
  private readonly queue = new KeyedQueue();
  private readonly claiming = new Set<string>();

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    private readonly opts: { clock?: () => number } = {},
  ) {}

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  async create(input: {
    orgId: string;
    userId: string;
    title?: string;
    description?: string;
    type: SpeechSessionKind;
    expectedDurationS?: number | null;
    settings?: Record<string, unknown>;
  }): Promise<SpeechSession> {
    const now = this.now;
    const s: SpeechSession = {
      id: randomUUID(),
      orgId: input.orgId,
      userId: input.userId,
      title: input.title ?? '',
      description: input.description ?? '',
      type: input.type,
      expectedDurationS: input.expectedDurationS ?? null,
      settings: input.settings ?? {},
      status: 'created',
      source: '',
      startedAt: null,
      endedAt: null,
      audioDurationS: null,
      sampleRateHz: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.write(s);
    return s;
  }

  /** The session if `p` may see it (its user, or an admin of its org); unknown and foreign ones are the same 404. */
  async getVisible(p: Principal, id: string): Promise<SpeechSession> {
    const s = await this.get(id);
    if (!s || !canAccess(p, s)) throw new AttuneError('not_found', `speech session ${id} not found`, [{ field: 'id', reason: 'not_found' }]);
    return s;
  }

  async get(id: string): Promise<SpeechSession | null> {
    const rows = await queryRows<ReadSessionRow>(
      this.client,
      `SELECT ${SESSION_COLUMNS} FROM ${this.database}.${SpeechTables.speechSessions} FINAL WHERE session_id = {id:String} LIMIT 1`,
      { id },
    );
    return rows.length === 0 ? null : sessionFromRow(rows[0]);
  }

  /** Newest first (created_at, then id); nextCursor is null on the last page. */
  async list(filter: SpeechSessionFilter): Promise<{ items: SpeechSession[]; nextCursor: string | null }> {
    const where = ['org_id = {org:String}'];
    const params: Record<string, unknown> = { org: filter.orgId, limit: filter.limit + 1 };
    if (filter.userId !== undefined) {
      where.push('user_id = {user:String}');
      params.user = filter.userId;
    }
    if (filter.status) {
      where.push('status = {status:String}');
      params.status = filter.status;
    }
    if (filter.type) {
      where.push('kind = {kind:String}');
      params.kind = filter.type;
    }
    if (filter.from !== undefined) {
      where.push('toUnixTimestamp64Milli(created_at) >= {from:Int64}');
      params.from = Math.round(filter.from);
    }
    if (filter.to !== undefined) {
      where.push('toUnixTimestamp64Milli(created_at) < {to:Int64}');
      params.to = Math.round(filter.to);
    }
    if (filter.cursor) {
      const c = decodeCursor(filter.cursor);
      where.push('(toUnixTimestamp64Milli(created_at), session_id) < ({ct:Int64}, {cid:String})');
      params.ct = c.createdAt;
      params.cid = c.id;
    }
    // FINAL before WHERE: the filters see each session's current version only.
    const rows = (
      await queryRows<ReadSessionRow>(
        this.client,
        `SELECT ${SESSION_COLUMNS} FROM ${this.database}.${SpeechTables.speechSessions} FINAL
         WHERE ${where.join(' AND ')}
         ORDER BY created_at DESC, session_id DESC LIMIT {limit:UInt32}`,
        params,
      )
    ).map(sessionFromRow);
    const items = rows.slice(0, filter.limit);
    const nextCursor = rows.length > filter.limit && items.length > 0 ? encodeCursor(items[items.length - 1]) : null;
    return { items, nextCursor };
  }

  /**
   * Read-modify-write of the full record; updated_at strictly greater than the previous
   * version's (max(now, prev + 1)) so the latest write wins under FINAL. not_found when absent.
   */
  update(id: string, patch: SpeechSessionPatch): Promise<SpeechSession> {
    return this.queue.run(id, () => this.applyPatch(id, () => patch));
  }

  /**
   * Starts the session's audio: allowed when status is 'created' or 'failed' (a retry);
   * otherwise AttuneError('conflict') "session already has audio". Sets status ('recording'
   * for live, 'processing' for upload), source, startedAt, sampleRateHz, endedAt null.
   * Serialised per session id within the process (a second concurrent claim gets conflict).
   */
  async claimForAudio(id: string, audio: { source: 'upload' | 'live'; startedAt: number; sampleRateHz: number }): Promise<SpeechSession> {
    if (this.claiming.has(id)) throw new AttuneError('conflict', 'session already has audio', [{ reason: 'claim_in_progress' }]);
    this.claiming.add(id);
    try {
      return await this.queue.run(id, () =>
        this.applyPatch(id, (current) => {
          if (current.status !== 'created' && current.status !== 'failed') {
            throw new AttuneError('conflict', 'session already has audio', [{ reason: `status is ${current.status}`, status: current.status }]);
          }
          return {
            status: audio.source === 'live' ? 'recording' : 'processing',
            source: audio.source,
            startedAt: Math.round(audio.startedAt),
            sampleRateHz: audio.sampleRateHz,
            endedAt: null,
          };
        }),
      );
    } finally {
      this.claiming.delete(id);
    }
  }

  private async applyPatch(id: string, makePatch: (current: SpeechSession) => SpeechSessionPatch): Promise<SpeechSession> {
    const current = await this.get(id);
    if (!current) throw new AttuneError('not_found', `speech session ${id} not found`);
    const patch = makePatch(current);
    const next: SpeechSession = { ...current };
    for (const [k, v] of Object.entries(patch) as Array<[keyof SpeechSessionPatch, unknown]>) {
      if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
    }
    next.updatedAt = nextVersion(this.now, current.updatedAt);
    await this.write(next);
    return next;
  }

  private async write(s: SpeechSession): Promise<void> {
    await this.client.insert({ table: `${this.database}.${SpeechTables.speechSessions}`, values: [sessionToRow(s)], format: 'JSONEachRow' });
  }
}

export class SpeechUploadsRepository {
  private readonly queue = new KeyedQueue();

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    private readonly opts: { clock?: () => number } = {},
  ) {}

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  /** A new upload: status 'queued', stage 'receiving', progress 0. */
  async create(input: { sessionId: string; orgId: string; userId: string; fileName: string; metadata?: Record<string, unknown> }): Promise<SpeechUpload> {
    const now = this.now;
    const u: SpeechUpload = {
      id: randomUUID(),
      sessionId: input.sessionId,
      orgId: input.orgId,
      userId: input.userId,
      status: 'queued',
      stage: 'receiving',
      progress: 0,
      etaS: null,
      fileName: input.fileName,
      sizeBytes: 0,
      encoding: '',
      channelCount: 0,
      sampleRateHz: 0,
      audioDurationS: null,
      metadata: input.metadata ?? {},
      errorCode: '',
      errorMessage: '',
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    };
    await this.write(u);
    return u;
  }

  async get(id: string): Promise<SpeechUpload | null> {
    const rows = await queryRows<ReadUploadRow>(
      this.client,
      `SELECT ${UPLOAD_COLUMNS} FROM ${this.database}.${SpeechTables.speechUploads} FINAL WHERE upload_id = {id:String} LIMIT 1`,
      { id },
    );
    return rows.length === 0 ? null : uploadFromRow(rows[0]);
  }

  /** Read-modify-write like SpeechSessionsRepository.update; not_found when absent. */
  update(id: string, patch: SpeechUploadPatch): Promise<SpeechUpload> {
    return this.queue.run(id, async () => {
      const current = await this.get(id);
      if (!current) throw new AttuneError('not_found', `upload ${id} not found`);
      const next: SpeechUpload = { ...current };
      for (const [k, v] of Object.entries(patch) as Array<[keyof SpeechUploadPatch, unknown]>) {
        if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
      }
      next.updatedAt = nextVersion(this.now, current.updatedAt);
      await this.write(next);
      return next;
    });
  }

  private async write(u: SpeechUpload): Promise<void> {
    await this.client.insert({ table: `${this.database}.${SpeechTables.speechUploads}`, values: [uploadToRow(u)], format: 'JSONEachRow' });
  }
}
