// Speech sessions, uploads and live audio stream claims in PostgreSQL (speech_sessions,
// speech_uploads, speech_audio_streams of schemas/postgres/0001_entities.sql). The methods are
// those of the ClickHouse repositories (store/speech-sessions-repo.ts), but:
//  - update is one UPDATE of the patched columns: concurrent changes of different fields, from
//    any process, all land, with no per-process queue; `version` grows by one per change and a
//    caller passing the version it read (expectedVersion) gets VersionConflictError when
//    someone changed the record since;
//  - claimForAudio is a transaction that locks the session row, checks its status and inserts
//    the stream claim; the partial unique index speech_audio_streams_one_open_per_session
//    makes "one open audio stream per session" a database constraint, so a second claim from
//    any process fails (conflict). releaseAudio closes the claim; a session that turns failed
//    or completed releases its open stream in the same statement.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AttuneError } from '../../lib/errors.js';
import { canAccess, type Principal } from '../../lib/principal.js';
import { SqlStates, sqlState, type SqlClient, type SqlQueryable } from './client.js';
import {
  emptyToNull,
  isUuid,
  keptRowOrMiss,
  jsonObject,
  ms,
  msOrNull,
  num,
  numOrNull,
  toDate,
  toDateOrNull,
  updateFromPatch,
  type UpdateOptions,
} from './sql.js';

export type SpeechSessionKind = 'presentation' | 'interview' | 'conversation' | 'speech';
export type SpeechSessionStatus = 'created' | 'recording' | 'processing' | 'completed' | 'failed';
export type SpeechUploadStatus = 'queued' | 'processing' | 'completed' | 'failed';

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
  /** 1 on creation, +1 on every change. */
  version: number;
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
  /** The file's audio coding: pcm16 or float32 (WAV), mp3, opus (Ogg or WebM); empty before the header was read. */
  encoding: 'pcm16' | 'float32' | 'mp3' | 'opus' | '';
  channelCount: number;
  sampleRateHz: number;
  audioDurationS: number | null;
  metadata: Record<string, unknown>;
  errorCode: string;
  errorMessage: string;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  version: number;
}

/** A claim on a speech session's audio: one open (releasedAt null) per session at most. */
export interface AudioStreamClaim {
  streamId: string;
  sessionId: string;
  source: 'upload' | 'live';
  holder: string;
  claimedAt: number;
  releasedAt: number | null;
  outcome: AudioStreamOutcome | null;
  /** Until when the holder has the open stream (epoch ms); null once released, or for a claim made before leases. */
  leaseUntil: number | null;
}

/** `lost`: its lease passed (the holding process died or stopped renewing) and another process ended it. */
export type AudioStreamOutcome = 'ended' | 'failed' | 'aborted' | 'superseded' | 'lost';

/** An open stream whose lease had passed, as taken by sweepLostAudioStreams, with what its end marker needs. */
export interface LostAudioStream {
  streamId: string;
  sessionId: string;
  orgId: string;
  userId: string;
  source: 'upload' | 'live';
  holder: string;
  /** The session's audio start and rate (the claim set them). */
  startedAt: number;
  sampleRateHz: number;
  settings: Record<string, unknown>;
}

/** How long a claim lasts unless renewed (ATTUNE_AUDIO_LEASE_S). */
export const DEFAULT_AUDIO_LEASE_MS = 60_000;

export type SpeechSessionPatch = Partial<
  Pick<SpeechSession, 'status' | 'source' | 'startedAt' | 'endedAt' | 'audioDurationS' | 'sampleRateHz' | 'title' | 'description' | 'settings' | 'expectedDurationS'>
>;

export type SpeechUploadPatch = Partial<Omit<SpeechUpload, 'id' | 'sessionId' | 'orgId' | 'userId' | 'createdAt' | 'updatedAt' | 'version'>>;

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
  /** Skip this many sessions first (page-numbered lists; not with cursor). */
  offset?: number;
  /** Read each session's settings too (up to 16 KB each); left out (not even read) by default. */
  withSettings?: boolean;
}

/** What a report or a search result shows of a session besides its ClickHouse figures. */
export type DescribedSpeechSession = Pick<SpeechSession, 'title' | 'type' | 'status' | 'createdAt' | 'audioDurationS'> & {
  /** Analysed with the speech-coaching document's enableFluencyAnalysis false: no fillers or repetitions were looked for. */
  fluencyOff: boolean;
};

/** A speech session as a list gives it: settings only when asked for (SpeechSessionFilter.withSettings). */
export type ListedSpeechSession = Omit<SpeechSession, 'settings'> & { settings?: Record<string, unknown> };

interface SessionRow {
  session_id: string;
  org_id: string;
  user_id: string;
  title: string;
  description: string;
  kind: SpeechSessionKind;
  expected_duration_s: number | null;
  settings: unknown;
  status: SpeechSessionStatus;
  source: 'upload' | 'live' | null;
  started_at: Date | null;
  ended_at: Date | null;
  audio_duration_s: number | null;
  sample_rate_hz: number | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

interface UploadRow {
  upload_id: string;
  session_id: string;
  org_id: string;
  user_id: string;
  status: SpeechUploadStatus;
  stage: string;
  progress: number;
  eta_s: number | null;
  file_name: string;
  size_bytes: string | number;
  encoding: 'pcm16' | 'float32' | 'mp3' | 'opus' | null;
  channel_count: number;
  sample_rate_hz: number;
  audio_duration_s: number | null;
  metadata: unknown;
  error_code: string | null;
  error_message: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}

interface StreamRow {
  stream_id: string;
  session_id: string;
  source: 'upload' | 'live';
  holder: string;
  claimed_at: Date;
  released_at: Date | null;
  outcome: AudioStreamOutcome | null;
  lease_until: Date | null;
}

const SESSION_COLUMNS = `session_id::text AS session_id, org_id, user_id, title, description, kind, expected_duration_s, settings, status, source,
  started_at, ended_at, audio_duration_s, sample_rate_hz, version, created_at, updated_at`;
/** A list's columns: no settings (a page of 200 sessions would otherwise carry up to 3 MB of them). */
const SESSION_LIST_COLUMNS = SESSION_COLUMNS.replace(' settings,', '');
const UPLOAD_COLUMNS = `upload_id::text AS upload_id, session_id::text AS session_id, org_id, user_id, status, stage, progress, eta_s, file_name,
  size_bytes, encoding, channel_count, sample_rate_hz, audio_duration_s, metadata, error_code, error_message, version, created_at, updated_at, completed_at`;
const STREAM_COLUMNS = 'stream_id, session_id::text AS session_id, source, holder, claimed_at, released_at, outcome, lease_until';

function sessionFromRow(r: SessionRow): SpeechSession {
  return {
    id: r.session_id,
    orgId: r.org_id,
    userId: r.user_id,
    title: r.title,
    description: r.description,
    type: r.kind,
    expectedDurationS: numOrNull(r.expected_duration_s),
    settings: jsonObject(r.settings),
    status: r.status,
    source: r.source ?? '',
    startedAt: msOrNull(r.started_at),
    endedAt: msOrNull(r.ended_at),
    audioDurationS: numOrNull(r.audio_duration_s),
    sampleRateHz: numOrNull(r.sample_rate_hz),
    createdAt: ms(r.created_at),
    updatedAt: ms(r.updated_at),
    version: num(r.version),
  };
}

function uploadFromRow(r: UploadRow): SpeechUpload {
  return {
    id: r.upload_id,
    sessionId: r.session_id,
    orgId: r.org_id,
    userId: r.user_id,
    status: r.status,
    stage: r.stage,
    progress: num(r.progress),
    etaS: numOrNull(r.eta_s),
    fileName: r.file_name,
    sizeBytes: num(r.size_bytes),
    encoding: r.encoding ?? '',
    channelCount: num(r.channel_count),
    sampleRateHz: num(r.sample_rate_hz),
    audioDurationS: numOrNull(r.audio_duration_s),
    metadata: jsonObject(r.metadata),
    errorCode: r.error_code ?? '',
    errorMessage: r.error_message ?? '',
    createdAt: ms(r.created_at),
    updatedAt: ms(r.updated_at),
    completedAt: msOrNull(r.completed_at),
    version: num(r.version),
  };
}

function streamFromRow(r: StreamRow): AudioStreamClaim {
  return {
    streamId: r.stream_id,
    sessionId: r.session_id,
    source: r.source,
    holder: r.holder,
    claimedAt: ms(r.claimed_at),
    releasedAt: msOrNull(r.released_at),
    outcome: r.outcome,
    leaseUntil: msOrNull(r.lease_until),
  };
}

const json = (v: Record<string, unknown>) => JSON.stringify(v);

const sessionUpdate = {
  table: 'speech_sessions',
  key: 'session_id',
  returning: SESSION_COLUMNS,
  columns: {
    status: { column: 'status' },
    source: { column: 'source', toDb: (v: string) => emptyToNull(v) },
    startedAt: { column: 'started_at', toDb: (v: number | null) => toDateOrNull(v) },
    endedAt: { column: 'ended_at', toDb: (v: number | null) => toDateOrNull(v) },
    audioDurationS: { column: 'audio_duration_s' },
    sampleRateHz: { column: 'sample_rate_hz' },
    title: { column: 'title' },
    description: { column: 'description' },
    settings: { column: 'settings', toDb: json, cast: 'jsonb' },
    expectedDurationS: { column: 'expected_duration_s' },
  },
};

const uploadUpdate = {
  table: 'speech_uploads',
  key: 'upload_id',
  returning: UPLOAD_COLUMNS,
  columns: {
    status: { column: 'status' },
    stage: { column: 'stage' },
    progress: { column: 'progress' },
    etaS: { column: 'eta_s' },
    fileName: { column: 'file_name' },
    sizeBytes: { column: 'size_bytes', toDb: (v: number) => String(Math.round(v)), cast: 'bigint' },
    encoding: { column: 'encoding', toDb: (v: string) => emptyToNull(v) },
    channelCount: { column: 'channel_count' },
    sampleRateHz: { column: 'sample_rate_hz' },
    audioDurationS: { column: 'audio_duration_s' },
    metadata: { column: 'metadata', toDb: json, cast: 'jsonb' },
    errorCode: { column: 'error_code', toDb: (v: string) => emptyToNull(v) },
    errorMessage: { column: 'error_message', toDb: (v: string) => emptyToNull(v) },
    completedAt: { column: 'completed_at', toDb: (v: number | null) => toDateOrNull(v) },
  },
};

const notFound = (id: string) => new AttuneError('not_found', `speech session ${id} not found`, [{ field: 'id', reason: 'not_found' }]);
const uploadNotFound = (id: string) => new AttuneError('not_found', `upload ${id} not found`, [{ field: 'id', reason: 'not_found' }]);

function encodeCursor(s: Pick<SpeechSession, 'createdAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([s.createdAt, s.id])).toString('base64url');
}

function decodeCursor(c: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (Number.isSafeInteger(createdAt) && typeof id === 'string' && isUuid(id)) return { createdAt, id };
  } catch {
    /* fall through */
  }
  throw new AttuneError('validation_error', 'invalid cursor', [{ field: '?cursor', reason: 'invalid_cursor' }]);
}

export interface ClaimAudio {
  source: 'upload' | 'live';
  startedAt: number;
  sampleRateHz: number;
  /** The stream's id (e.g. the bus stream id); a new uuid when absent. */
  streamId?: string;
  /** Who holds it, shown to operators; host/pid by default. */
  holder?: string;
  /** How long the claim lasts unless renewed (renewAudioLeases); DEFAULT_AUDIO_LEASE_MS by default. */
  leaseMs?: number;
}

export class SpeechSessionsRepository {
  private readonly holder = `${hostname()}/${process.pid}`;

  constructor(
    private readonly sql: SqlClient,
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
    const now = toDate(this.now);
    const { rows } = await this.sql.query<SessionRow>(
      `INSERT INTO speech_sessions (session_id, org_id, user_id, title, description, kind, expected_duration_s, settings, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $9)
       RETURNING ${SESSION_COLUMNS}`,
      [randomUUID(), input.orgId, input.userId, input.title ?? '', input.description ?? '', input.type, input.expectedDurationS ?? null, json(input.settings ?? {}), now],
    );
    return sessionFromRow(rows[0]);
  }

  /** The session if `p` may see it (its user, or an admin of its org); unknown and foreign ones are the same 404. */
  async getVisible(p: Principal, id: string): Promise<SpeechSession> {
    const s = await this.get(id);
    if (!s || !canAccess(p, s)) throw notFound(id);
    return s;
  }

  async get(id: string): Promise<SpeechSession | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.sql.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM speech_sessions WHERE session_id = $1`, [id]);
    return rows.length === 0 ? null : sessionFromRow(rows[0]);
  }

  /** Newest first (created_at, then id), without settings unless `withSettings`; nextCursor is null on the last page. */
  async list(filter: SpeechSessionFilter): Promise<{ items: ListedSpeechSession[]; nextCursor: string | null }> {
    const { where, params } = this.listWhere(filter);
    if (filter.cursor) {
      const c = decodeCursor(filter.cursor);
      params.push(toDate(c.createdAt), c.id);
      where.push(`(created_at, session_id) < ($${params.length - 1}, $${params.length}::uuid)`);
    }
    params.push(filter.limit + 1);
    const limitParam = params.length;
    params.push(filter.offset ?? 0);
    const { rows } = await this.sql.query<SessionRow>(
      `SELECT ${filter.withSettings ? SESSION_COLUMNS : SESSION_LIST_COLUMNS} FROM speech_sessions WHERE ${where.join(' AND ')}
       ORDER BY created_at DESC, session_id DESC LIMIT $${limitParam} OFFSET $${params.length}`,
      params,
    );
    const all: ListedSpeechSession[] = rows.map((r) => {
      const s = sessionFromRow(r);
      if (filter.withSettings) return s;
      const { settings: _none, ...listed } = s;
      return listed;
    });
    const items = all.slice(0, filter.limit);
    const nextCursor = all.length > filter.limit && items.length > 0 ? encodeCursor(items[items.length - 1]) : null;
    return { items, nextCursor };
  }

  /**
   * Title, type, status and creation time of those of `ids` that are sessions of the org (a
   * report enriches the ClickHouse rows it streams with them, one page of ids at a time).
   */
  async describeMany(orgId: string, ids: readonly string[]): Promise<Map<string, DescribedSpeechSession>> {
    const out = new Map<string, DescribedSpeechSession>();
    const uuids = ids.filter(isUuid);
    if (uuids.length === 0) return out;
    // The one setting a report needs, not the settings (up to 16 KB a session).
    const { rows } = await this.sql.query<{ session_id: string; title: string; kind: SpeechSessionKind; status: SpeechSessionStatus; created_at: Date; audio_duration_s: number | null; fluency_off: boolean }>(
      `SELECT session_id::text AS session_id, title, kind, status, created_at, audio_duration_s,
              COALESCE(settings->'enableFluencyAnalysis' = 'false'::jsonb, false) AS fluency_off
       FROM speech_sessions WHERE org_id = $1 AND session_id = ANY($2::uuid[])`,
      [orgId, uuids],
    );
    for (const r of rows) out.set(r.session_id, { title: r.title, type: r.kind, status: r.status, createdAt: ms(r.created_at), audioDurationS: numOrNull(r.audio_duration_s), fluencyOff: r.fluency_off === true });
    return out;
  }

  /** How many sessions the filter matches (cursor, offset and limit ignored). */
  async count(filter: Omit<SpeechSessionFilter, 'limit'>): Promise<number> {
    const { where, params } = this.listWhere(filter);
    const { rows } = await this.sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM speech_sessions WHERE ${where.join(' AND ')}`, params);
    return Number(rows[0].n);
  }

  /** Deletes the session; its uploads and audio streams go with it (ON DELETE CASCADE). False when it was not there. */
  async delete(id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rows } = await this.sql.query<{ session_id: string }>('DELETE FROM speech_sessions WHERE session_id = $1 RETURNING session_id::text AS session_id', [id]);
    return rows.length > 0;
  }

  private listWhere(filter: Omit<SpeechSessionFilter, 'limit'>): { where: string[]; params: unknown[] } {
    const where = ['org_id = $1'];
    const params: unknown[] = [filter.orgId];
    const add = (clause: (n: number) => string, value: unknown) => {
      params.push(value);
      where.push(clause(params.length));
    };
    if (filter.userId !== undefined) add((n) => `user_id = $${n}`, filter.userId);
    if (filter.status) add((n) => `status = $${n}`, filter.status);
    if (filter.type) add((n) => `kind = $${n}`, filter.type);
    if (filter.from !== undefined) add((n) => `created_at >= $${n}`, toDate(filter.from));
    if (filter.to !== undefined) add((n) => `created_at < $${n}`, toDate(filter.to));
    return { where, params };
  }

  /**
   * Changes the patched fields in one statement; nothing else is overwritten. not_found when
   * absent; VersionConflictError when expectedVersion is given and no longer stored; with
   * `unlessStatus`, a session in one of those statuses is returned unchanged. A session that
   * becomes failed or completed releases its open audio stream (outcome failed / ended).
   */
  async update(id: string, patch: SpeechSessionPatch, opts: UpdateOptions = {}): Promise<SpeechSession> {
    if (!isUuid(id)) throw notFound(id);
    const now = this.now;
    const closes = patch.status === 'failed' || patch.status === 'completed';
    const run = async (q: SqlQueryable) => {
      const row = await updateFromPatch<SessionRow>(q, sessionUpdate, id, patch, now, opts);
      if (!row) return sessionFromRow(await keptRowOrMiss<SessionRow>(q, sessionUpdate, 'speech session', id, opts));
      if (closes) await releaseOpen(q, id, now, patch.status === 'failed' ? 'failed' : 'ended', null);
      return sessionFromRow(row);
    };
    return closes ? this.sql.transaction(run) : run(this.sql);
  }

  /**
   * Starts the session's audio: allowed when its status is 'created' or 'failed' (a retry);
   * otherwise AttuneError('conflict') "session already has audio". Sets status ('recording'
   * for live, 'processing' for upload), source, startedAt, sampleRateHz, endedAt null, and
   * opens the stream claim. One transaction with the session row locked: of two claims at
   * once, from any processes, exactly one wins.
   */
  async claimForAudio(id: string, audio: ClaimAudio): Promise<SpeechSession> {
    return (await this.claimAudioStream(id, audio)).session;
  }

  /** claimForAudio, returning the claim too. */
  async claimAudioStream(id: string, audio: ClaimAudio): Promise<{ session: SpeechSession; stream: AudioStreamClaim }> {
    if (!isUuid(id)) throw notFound(id);
    const now = this.now;
    const streamId = audio.streamId ?? randomUUID();
    try {
      return await this.sql.transaction(async (tx) => {
        const { rows: locked } = await tx.query<{ status: SpeechSessionStatus }>('SELECT status FROM speech_sessions WHERE session_id = $1 FOR UPDATE', [id]);
        if (locked.length === 0) throw notFound(id);
        const status = locked[0].status;
        if (status !== 'created' && status !== 'failed') {
          throw new AttuneError('conflict', 'session already has audio', [{ reason: 'audio_exists', message: `status is ${status}`, status }]);
        }
        // A retry after a failure: a stream the failure left open is over.
        await releaseOpen(tx, id, now, 'superseded', null);
        const { rows: streams } = await tx.query<StreamRow>(
          `INSERT INTO speech_audio_streams (stream_id, session_id, source, holder, claimed_at, lease_until) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${STREAM_COLUMNS}`,
          [streamId, id, audio.source, audio.holder ?? this.holder, toDate(now), toDate(now + (audio.leaseMs ?? DEFAULT_AUDIO_LEASE_MS))],
        );
        const row = await updateFromPatch<SessionRow>(
          tx,
          sessionUpdate,
          id,
          {
            status: audio.source === 'live' ? 'recording' : 'processing',
            source: audio.source,
            startedAt: Math.round(audio.startedAt),
            sampleRateHz: audio.sampleRateHz,
            endedAt: null,
          },
          now,
        );
        return { session: sessionFromRow(row!), stream: streamFromRow(streams[0]) };
      });
    } catch (err) {
      if (sqlState(err) === SqlStates.uniqueViolation) {
        // The constraint itself: an open stream exists (or this stream id was used before).
        throw new AttuneError('conflict', 'session already has audio', [{ reason: 'stream_already_open' }]);
      }
      throw err;
    }
  }

  /**
   * Whether another stream of the session was claimed after `streamId` was released (a retry
   * after a failure): the released stream's frames, read again from the bus, are not to be
   * analysed, or their results would come after the retry's. False when `streamId` has no
   * claim row or is still open.
   */
  async streamSuperseded(sessionId: string, streamId: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const { rows } = await this.sql.query<{ superseded: boolean }>(
      `SELECT EXISTS (
         SELECT 1 FROM speech_audio_streams o JOIN speech_audio_streams n ON n.session_id = o.session_id
         WHERE o.session_id = $1 AND o.stream_id = $2 AND o.released_at IS NOT NULL AND n.stream_id <> o.stream_id AND n.claimed_at >= o.released_at
       ) AS superseded`,
      [sessionId, streamId],
    );
    return rows[0]?.superseded === true;
  }

  /**
   * Closes the session's open audio stream (only `streamId`'s when given). Returns whether one
   * was open. Idempotent: releasing a released stream changes nothing.
   */
  async releaseAudio(id: string, opts: { outcome: Exclude<AudioStreamOutcome, 'superseded'>; streamId?: string }): Promise<boolean> {
    if (!isUuid(id)) return false;
    return (await releaseOpen(this.sql, id, this.now, opts.outcome, opts.streamId ?? null)) > 0;
  }

  /**
   * Extends the leases of the open streams among `streamIds` to now + leaseMs. Returns the ids
   * still open (renewed): a held id missing from it was ended by another process (its lease
   * had passed) or released.
   */
  async renewAudioLeases(streamIds: readonly string[], leaseMs: number): Promise<Set<string>> {
    if (streamIds.length === 0) return new Set();
    const { rows } = await this.sql.query<{ stream_id: string }>(
      'UPDATE speech_audio_streams SET lease_until = $2 WHERE stream_id = ANY($1::text[]) AND released_at IS NULL RETURNING stream_id',
      [[...streamIds], toDate(this.now + leaseMs)],
    );
    return new Set(rows.map((r) => r.stream_id));
  }

  /**
   * Ends up to `limit` open streams whose lease has passed: in one transaction, locks them
   * (SKIP LOCKED: processes sweeping at once take different ones), calls `beforeRelease` with
   * them (the caller publishes their end markers; if it throws, nothing is changed and the
   * next sweep tries again), fails each upload stream's upload (with `uploadError`) and its
   * session, unless completed or failed already, and releases them with outcome 'lost'.
   * Returns them.
   */
  async sweepLostAudioStreams(
    beforeRelease: (lost: LostAudioStream[]) => Promise<void>,
    uploadError: { code: string; message: string },
    limit = 100,
  ): Promise<LostAudioStream[]> {
    const now = this.now;
    return this.sql.transaction(async (tx) => {
      const { rows } = await tx.query<{
        stream_id: string;
        session_id: string;
        org_id: string;
        user_id: string;
        source: 'upload' | 'live';
        holder: string;
        started_at: Date | null;
        sample_rate_hz: number | null;
        settings: Record<string, unknown> | string | null;
      }>(
        `SELECT a.stream_id, a.session_id::text AS session_id, s.org_id, s.user_id, a.source, a.holder, s.started_at, s.sample_rate_hz, s.settings
         FROM speech_audio_streams a JOIN speech_sessions s ON s.session_id = a.session_id
         WHERE a.released_at IS NULL AND a.lease_until < $1
         ORDER BY a.lease_until LIMIT $2
         FOR UPDATE OF a SKIP LOCKED`,
        [toDate(now), limit],
      );
      if (rows.length === 0) return [];
      const lost: LostAudioStream[] = rows.map((r) => ({
        streamId: r.stream_id,
        sessionId: r.session_id,
        orgId: r.org_id,
        userId: r.user_id,
        source: r.source,
        holder: r.holder,
        startedAt: msOrNull(r.started_at) ?? now,
        sampleRateHz: Number(r.sample_rate_hz ?? 16000),
        settings: jsonObject(r.settings),
      }));
      await beforeRelease(lost);
      const finished = { unlessStatus: ['completed', 'failed'] };
      for (const l of lost) {
        if (l.source !== 'upload') continue;
        // An upload's stream id is its upload id (a uuid); a claim made otherwise has no upload row.
        if (isUuid(l.streamId)) {
          await updateFromPatch(tx, uploadUpdate, l.streamId, { status: 'failed', errorCode: uploadError.code, errorMessage: uploadError.message, completedAt: now, etaS: null }, now, finished);
        }
        await updateFromPatch(tx, sessionUpdate, l.sessionId, { status: 'failed', endedAt: now }, now, finished);
      }
      await tx.query(
        `UPDATE speech_audio_streams SET released_at = GREATEST($2, claimed_at), outcome = 'lost', lease_until = NULL
         WHERE stream_id = ANY($1::text[]) AND released_at IS NULL`,
        [lost.map((l) => l.streamId), toDate(now)],
      );
      return lost;
    });
  }

  /** The session's open audio stream, or null. */
  async openAudioStream(id: string): Promise<AudioStreamClaim | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.sql.query<StreamRow>(`SELECT ${STREAM_COLUMNS} FROM speech_audio_streams WHERE session_id = $1 AND released_at IS NULL`, [id]);
    return rows.length === 0 ? null : streamFromRow(rows[0]);
  }
}

async function releaseOpen(q: SqlQueryable, sessionId: string, now: number, outcome: AudioStreamOutcome, streamId: string | null): Promise<number> {
  const { rowCount } = await q.query(
    `UPDATE speech_audio_streams SET released_at = GREATEST($2, claimed_at), outcome = $3, lease_until = NULL
     WHERE session_id = $1 AND released_at IS NULL AND ($4::text IS NULL OR stream_id = $4::text)`,
    [sessionId, toDate(now), outcome, streamId],
  );
  return rowCount;
}

export class SpeechUploadsRepository {
  constructor(
    private readonly sql: SqlClient,
    private readonly opts: { clock?: () => number } = {},
  ) {}

  private get now(): number {
    return Math.round((this.opts.clock ?? Date.now)());
  }

  /** A new upload of session `sessionId` (which must exist, with this org and user): status 'queued', stage 'receiving', progress 0. */
  async create(input: { sessionId: string; orgId: string; userId: string; fileName: string; metadata?: Record<string, unknown> }): Promise<SpeechUpload> {
    if (!isUuid(input.sessionId)) throw notFound(input.sessionId);
    try {
      const { rows } = await this.sql.query<UploadRow>(
        `INSERT INTO speech_uploads (upload_id, session_id, org_id, user_id, file_name, metadata, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $7)
         RETURNING ${UPLOAD_COLUMNS}`,
        [randomUUID(), input.sessionId, input.orgId, input.userId, input.fileName, json(input.metadata ?? {}), toDate(this.now)],
      );
      return uploadFromRow(rows[0]);
    } catch (err) {
      if (sqlState(err) === SqlStates.foreignKeyViolation) throw notFound(input.sessionId);
      throw err;
    }
  }

  async get(id: string): Promise<SpeechUpload | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.sql.query<UploadRow>(`SELECT ${UPLOAD_COLUMNS} FROM speech_uploads WHERE upload_id = $1`, [id]);
    return rows.length === 0 ? null : uploadFromRow(rows[0]);
  }

  /**
   * Changes the patched fields in one statement; not_found when absent; VersionConflictError on a
   * stale expectedVersion; with `unlessStatus`, an upload in one of those statuses is returned
   * unchanged.
   */
  async update(id: string, patch: SpeechUploadPatch, opts: UpdateOptions = {}): Promise<SpeechUpload> {
    if (!isUuid(id)) throw uploadNotFound(id);
    const row = await updateFromPatch<UploadRow>(this.sql, uploadUpdate, id, patch as Record<string, unknown>, this.now, opts);
    if (!row) return uploadFromRow(await keptRowOrMiss<UploadRow>(this.sql, uploadUpdate, 'upload', id, opts));
    return uploadFromRow(row);
  }
}
