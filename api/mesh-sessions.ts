// Group ("mesh") sessions (issue 11 item 1): create, list, read (with the group's state and
// timeline of group windows), join, leave, end. The shapes follow the coherence platform's API
// document (its "Mesh Network Endpoints"), so a client written against it works unchanged:
//  - the list answers {sessions, meta: {total, page, per_page}}, each session with id, name,
//    type, visibility, participant_count, average_coherence, started_at, scheduled_end,
//    host {id, display_name, verified} and join_requirements {min_tier, min_coherence_history};
//    its `?type=public|private` is read as the visibility (the document's query uses it so),
//    `?type=scheduled|instant` as the session's type;
//  - create takes the document's `invitation_emails` as well as the issue's `invited_user_ids`;
//  - join answers the document's fields {joined, participant_id, position, websocket_url,
//    group_coherence, your_contribution_weight} and Attune's participant_count and
//    already_joined.
// Errors are Attune's catalogue: a full session is 409 with the document's code `mesh_full`
// (reason `mesh_full`), a tier refusal 403 `insufficient_tier` (lib/error-catalogue.ts).
// Tenant rule: a session is its organisation's; a private one is visible to its host,
// invitees, participants and the organisation's admins (403 not_invited for other members,
// 404 for other organisations).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { iso, int64, parseTimestamp } from '../lib/time.js';
import { Scopes, type Principal } from '../lib/principal.js';
import { TIER_NAMES, type Tier } from '../lib/tiers.js';
import type { AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { MeshLive, participantPayload, publishMeshEvent, registerMeshStreamRoute } from './mesh-live.js';
import { MESH_PROTOCOLS, type MeshRepository, type MeshSession, type MeshViewer, type MeshStatus, type MeshVisibility, type MeshKind } from '../store/postgres/mesh-repo.js';

/** Days of a joiner's own history that join_requirements.min_coherence_history averages over. */
export const COHERENCE_HISTORY_DAYS = 30;
/**
 * A group window older than this is not "current": an active session's average_coherence is then
 * null. A group window is final only after both allowed latenesses (the coherence worker's 10 s,
 * then the group worker's 10 s of event time) and up to one 5 s step, so the newest stored one
 * normally ends 20-25 s ago (A1 measured 21-27 s at load 10-20); 30 s left active sessions
 * null much of the time. 45 s: that delay plus the sinks' batching under load.
 */
export const CURRENT_WINDOW_MAX_AGE_MS = 45_000;

const idPattern = '^[A-Za-z0-9._:@|-]{1,128}$';

const meshJsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string', enum: ['scheduled', 'instant'], description: 'scheduled: created with a start in the future; instant: started when created.' },
    visibility: { type: 'string', enum: ['public', 'private'] },
    status: { type: 'string', enum: ['scheduled', 'active', 'ended'], description: 'Follows the clock: active from scheduled_start, ended at scheduled_end or when the host ends it.' },
    participant_count: { type: 'integer', description: 'Participants present now.' },
    max_participants: { type: 'integer' },
    average_coherence: {
      type: ['number', 'null'],
      description: `Group coherence 0..1: of the latest group window while active (null when none in the last ${CURRENT_WINDOW_MAX_AGE_MS / 1000} s), the mean over the session's windows once ended.`,
    },
    started_at: { type: 'string', format: 'date-time', description: 'When the session started, or (status scheduled) when it is scheduled to.' },
    scheduled_start: { type: 'string', format: 'date-time' },
    scheduled_end: { type: ['string', 'null'], format: 'date-time', description: 'scheduled_start + duration; null without a duration.' },
    ended_at: { type: ['string', 'null'], format: 'date-time' },
    duration: { type: ['integer', 'null'], description: 'Planned length, seconds.' },
    protocol: { type: 'string', enum: [...MESH_PROTOCOLS] },
    breathing_rate_bpm: { type: 'number', description: "The pacer's breathing rate, breaths per minute." },
    coherence_threshold: { type: 'number' },
    threshold_duration_s: { type: 'integer' },
    host: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        display_name: { type: 'string' },
        verified: { type: 'boolean', description: 'Always false: Attune has no host verification.' },
      },
    },
    join_requirements: {
      type: 'object',
      properties: {
        min_tier: { type: ['string', 'null'], enum: [...TIER_NAMES, null] },
        min_coherence_history: { type: ['number', 'null'], description: `Average coherence 0..1 over the joiner's last ${COHERENCE_HISTORY_DAYS} days required.` },
      },
    },
    created_at: { type: 'string', format: 'date-time' },
    websocket_url: { type: 'string', description: 'The live stream of the group (WebSocket).' },
  },
} as const;

const groupPointSchema = {
  type: 'object',
  properties: {
    timestamp: { type: 'string', format: 'date-time', description: 'End of the group window.' },
    participant_count: { type: 'integer', description: 'Participants counted in the window.' },
    coherence: { type: ['number', 'null'], description: 'Group coherence 0..1 (quality-weighted mean).' },
    sync_r: { type: ['number', 'null'], description: 'Kuramoto order parameter R 0..1.' },
    plv: { type: ['number', 'null'], description: 'Mean pairwise phase-locking value 0..1.' },
    sync_z: { type: ['number', 'null'] },
    sync_p: { type: ['number', 'null'] },
    breathing_sync: { type: ['number', 'null'] },
  },
} as const;

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

interface GroupWindowPoint {
  window_end_ms: number | string;
  participant_count: number | string;
  coherence: number | null;
  sync_r: number | null;
  plv: number | null;
  sync_z: number | null;
  sync_p: number | null;
  breathing_sync: number | null;
}

const round = (v: number | null | undefined, digits = 4) => (v === null || v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(digits)));

const viewerOf = (p: Principal): MeshViewer => ({ orgId: p.orgId, userId: p.userId, admin: p.scopes.has(Scopes.adminOrg) });

function meshRepo(ctx: AppContext): MeshRepository {
  if (!ctx.mesh) throw new AttuneError('internal_error', 'mesh sessions are not wired in this process');
  return ctx.mesh;
}

/** The stream's URL as the client reached this server (ws:// or wss://, the Host it used). */
export function meshWebsocketUrl(req: FastifyRequest, id: string): string {
  return `${req.protocol === 'https' ? 'wss' : 'ws'}://${req.host}/v1/mesh/sessions/${id}/stream`;
}

export function meshJson(s: MeshSession, averageCoherence: number | null, websocketUrl: string) {
  return {
    id: s.id,
    name: s.name,
    type: s.type,
    visibility: s.visibility,
    status: s.status,
    participant_count: s.participantCount,
    max_participants: s.maxParticipants,
    average_coherence: round(averageCoherence),
    started_at: iso(s.startedAt ?? s.scheduledStart),
    scheduled_start: iso(s.scheduledStart),
    scheduled_end: s.scheduledEnd === null ? null : iso(s.scheduledEnd),
    ended_at: s.endedAt === null ? null : iso(s.endedAt),
    duration: s.durationS,
    protocol: s.protocol,
    breathing_rate_bpm: s.breathingRateBpm,
    coherence_threshold: s.coherenceThreshold,
    threshold_duration_s: s.thresholdDurationS,
    host: { id: s.hostUserId, display_name: s.hostDisplayName || s.hostUserId, verified: false },
    join_requirements: { min_tier: s.minTier, min_coherence_history: s.minCoherenceHistory },
    created_at: iso(s.createdAt),
    websocket_url: websocketUrl,
  };
}

/**
 * average_coherence of each session (see its schema), from group_windows FINAL in one query.
 * Empty where this process has no ClickHouse or the table holds nothing yet.
 */
async function averageCoherences(ctx: AppContext, orgId: string, sessions: MeshSession[]): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  if (!ctx.clickhouse || sessions.length === 0) return out;
  const rs = await ctx.clickhouse.query({
    query: `SELECT group_id, toUnixTimestamp64Milli(argMax(window_end, window_end)) AS latest_end_ms,
              argMax(coherence, window_end) AS latest, avg(coherence) AS mean
            FROM ${ctx.database}.group_windows FINAL
            WHERE org_id = {org:String} AND group_id IN {ids:Array(String)} AND coherence IS NOT NULL
            GROUP BY group_id`,
    query_params: { org: orgId, ids: sessions.map((s) => s.id) },
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as Array<{ group_id: string; latest_end_ms: number | string; latest: number | null; mean: number | null }>;
  const now = ctx.clock();
  const byId = new Map(sessions.map((s) => [s.id, s]));
  for (const r of rows) {
    const s = byId.get(r.group_id);
    if (!s) continue;
    if (s.status === 'ended') out.set(r.group_id, r.mean);
    else out.set(r.group_id, now - int64(r.latest_end_ms) <= CURRENT_WINDOW_MAX_AGE_MS ? r.latest : null);
  }
  return out;
}

/** The session's group windows, oldest first (empty until the group worker has written some). */
async function groupTimeline(ctx: AppContext, s: MeshSession): Promise<GroupWindowPoint[]> {
  if (!ctx.clickhouse) return [];
  const rs = await ctx.clickhouse.query({
    query: `SELECT toUnixTimestamp64Milli(window_end) AS window_end_ms, participant_count, coherence, sync_r, plv, sync_z, sync_p, breathing_sync
            FROM ${ctx.database}.group_windows FINAL
            WHERE org_id = {org:String} AND group_id = {id:String}
            ORDER BY window_end`,
    query_params: { org: s.orgId, id: s.id },
    format: 'JSONEachRow',
  });
  return (await rs.json()) as GroupWindowPoint[];
}

/** The participant's weight in the group's latest window (0 when they have none: not counted yet). */
async function contributionWeight(ctx: AppContext, s: MeshSession, participantId: string): Promise<number> {
  if (!ctx.clickhouse) return 0;
  const rs = await ctx.clickhouse.query({
    query: `SELECT argMax(contribution_weight, window_end) AS w, toUnixTimestamp64Milli(max(window_end)) AS end_ms
            FROM ${ctx.database}.group_participant_windows FINAL
            WHERE org_id = {org:String} AND group_id = {id:String} AND participant_id = {pid:String}`,
    query_params: { org: s.orgId, id: s.id, pid: participantId },
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as Array<{ w: number | null; end_ms: number | string }>;
  const r = rows[0];
  if (!r || r.w === null || ctx.clock() - int64(r.end_ms) > CURRENT_WINDOW_MAX_AGE_MS) return 0;
  return Number(r.w);
}

/** The caller's average coherence over their last COHERENCE_HISTORY_DAYS days of valid windows, or null without any. */
async function coherenceHistory(ctx: AppContext, p: Principal): Promise<number | null> {
  if (!ctx.clickhouse) return null;
  const rs = await ctx.clickhouse.query({
    query: `SELECT avg(coherence) AS mean, count() AS n FROM ${ctx.database}.coherence_windows FINAL
            WHERE org_id = {org:String} AND user_id = {user:String} AND valid AND NOT partial AND coherence IS NOT NULL
              AND window_end >= fromUnixTimestamp64Milli({since:Int64})`,
    query_params: { org: p.orgId, user: p.userId, since: ctx.clock() - COHERENCE_HISTORY_DAYS * 86_400_000 },
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as Array<{ mean: number | null; n: number | string }>;
  return rows[0] && int64(rows[0].n) > 0 ? rows[0].mean : null;
}

/** Refuses a joiner the session's join requirements exclude (the host is never refused). */
async function checkJoinRequirements(ctx: AppContext, p: Principal, s: MeshSession): Promise<void> {
  if (s.hostUserId === p.userId) return;
  if (s.minTier) {
    const tier: Tier = p.tier ?? ctx.rateLimit?.defaultTier ?? 'free';
    if (TIER_NAMES.indexOf(tier) < TIER_NAMES.indexOf(s.minTier as Tier)) {
      throw new AttuneError('insufficient_tier', `this mesh session requires the ${s.minTier} tier; yours is ${tier}`, [
        { reason: 'insufficient_tier', required_tier: s.minTier, current_tier: tier },
      ]);
    }
  }
  if (s.minCoherenceHistory !== null) {
    const history = await coherenceHistory(ctx, p);
    if (history === null || history < s.minCoherenceHistory) {
      throw new AttuneError('forbidden', `this mesh session requires an average coherence of ${s.minCoherenceHistory} over your last ${COHERENCE_HISTORY_DAYS} days; yours is ${history === null ? 'unknown' : round(history, 2)}`, [
        { reason: 'insufficient_coherence_history', required: s.minCoherenceHistory, current: round(history) },
      ]);
    }
  }
}

/**
 * A start given by a client: ISO-8601 with a zone or epoch ms, from 2000 to a year from now. A
 * start in the past is taken as given (the session is active from it, or ended already when
 * its duration has passed), as the coherence platform document's own create example is dated.
 */
function startTime(v: string | number, now: number): number {
  const t = parseTimestamp(v);
  if (Number.isNaN(t)) throw new AttuneError('validation_error', 'scheduled_start must be ISO-8601 with a zone or epoch ms', [{ field: '/scheduled_start', reason: 'invalid_timestamp' }]);
  if (t < Date.UTC(2000, 0, 1) || t > now + 366 * 86_400_000) {
    throw new AttuneError('validation_error', 'scheduled_start is out of range', [{ field: '/scheduled_start', reason: 'out_of_range', message: 'must lie between 2000-01-01 and a year from now' }]);
  }
  return Math.round(t);
}

export interface MeshCreateBody {
  name: string;
  visibility?: MeshVisibility;
  max_participants?: number;
  scheduled_start?: string | number;
  duration?: number;
  protocol?: (typeof MESH_PROTOCOLS)[number];
  breathing_rate_bpm?: number;
  coherence_threshold?: number;
  threshold_duration_s?: number;
  invited_user_ids?: string[];
  invitation_emails?: string[];
  join_requirements?: { min_tier?: Tier | null; min_coherence_history?: number | null };
  host_display_name?: string;
}

export async function registerMeshRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const mesh = () => meshRepo(ctx);
  const log = ctx.log.child({ role: 'mesh' });
  // The live stream's hub: this module's own, started with the routes and stopped with the server.
  const live = new MeshLive({ log: ctx.log.child({ role: 'mesh-live' }), ...ctx.liveOptions, clock: ctx.clock }, ctx.topics);
  await live.start(ctx.bus, ctx.codec);
  app.addHook('onClose', async () => {
    await live.stop();
  });
  registerMeshStreamRoute(app, ctx, live, (id, viewer) => mesh().access(id, viewer));

  app.post<{ Body: MeshCreateBody }>(
    '/v1/mesh/sessions',
    {
      config: { auth: { scope: Scopes.meshCreate } },
      schema: {
        tags: ['mesh'],
        summary: 'Create a group (mesh) session hosted by the caller.',
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            visibility: { type: 'string', enum: ['public', 'private'], default: 'public', description: 'public: anyone in the organisation may join; private: only invited users.' },
            max_participants: { type: 'integer', minimum: 1, maximum: 10_000, default: 50 },
            scheduled_start: { anyOf: [{ type: 'number' }, { type: 'string', maxLength: 40 }], description: 'Defaults to now (an instant session).' },
            duration: { type: 'integer', minimum: 60, maximum: 86_400, description: 'Planned length, seconds; the session ends at scheduled_start + duration. None: until the host ends it.' },
            protocol: { type: 'string', enum: [...MESH_PROTOCOLS], default: 'heart_breath_sync' },
            breathing_rate_bpm: { type: 'number', minimum: 2, maximum: 30, default: 6, description: "The pacer's breathing rate, breaths per minute." },
            coherence_threshold: { type: 'number', minimum: 0, maximum: 1, default: 0.7, description: 'Group coherence that, held for threshold_duration_s, is a manifestation_event.' },
            threshold_duration_s: { type: 'integer', minimum: 5, maximum: 3600, default: 30 },
            invited_user_ids: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: idPattern } },
            invitation_emails: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' } },
            join_requirements: {
              type: 'object',
              properties: {
                min_tier: { type: ['string', 'null'], enum: [...TIER_NAMES, null] },
                min_coherence_history: { type: ['number', 'null'], minimum: 0, maximum: 1 },
              },
              additionalProperties: false,
            },
            host_display_name: { type: 'string', maxLength: 200, description: "The host's name as participants see it (tokens carry none); the host's user id when absent." },
          },
          additionalProperties: false,
        },
        response: { 201: meshJsonSchema, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const b = req.body;
      const s = await mesh().create({
        orgId: p.orgId,
        hostUserId: p.userId,
        hostDisplayName: b.host_display_name,
        name: b.name,
        visibility: b.visibility ?? 'public',
        maxParticipants: b.max_participants ?? 50,
        scheduledStart: b.scheduled_start === undefined ? undefined : startTime(b.scheduled_start, ctx.clock()),
        durationS: b.duration ?? null,
        protocol: b.protocol,
        breathingRateBpm: b.breathing_rate_bpm,
        coherenceThreshold: b.coherence_threshold,
        thresholdDurationS: b.threshold_duration_s,
        minTier: b.join_requirements?.min_tier ?? null,
        minCoherenceHistory: b.join_requirements?.min_coherence_history ?? null,
        invitedUserIds: b.invited_user_ids,
        invitationEmails: b.invitation_emails,
      });
      return reply.status(201).send(meshJson(s, null, meshWebsocketUrl(req, s.id)));
    },
  );

  app.get<{ Querystring: { status?: MeshStatus; visibility?: MeshVisibility; type?: MeshVisibility | MeshKind; page?: number; per_page?: number } }>(
    '/v1/mesh/sessions',
    {
      config: { auth: { scope: Scopes.meshJoin } },
      schema: {
        tags: ['mesh'],
        summary: 'List the group sessions the caller may see (public ones of the organisation, and private ones they host or are invited to), newest scheduled start first.',
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: ['scheduled', 'active', 'ended'] },
            visibility: { type: 'string', enum: ['public', 'private'] },
            type: { type: 'string', enum: ['public', 'private', 'scheduled', 'instant'], description: 'public/private: the visibility (as the coherence platform\'s document uses it); scheduled/instant: the session type.' },
            page: { type: 'integer', minimum: 1, maximum: 10_000, default: 1 },
            per_page: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              sessions: { type: 'array', items: meshJsonSchema },
              meta: { type: 'object', properties: { total: { type: 'integer' }, page: { type: 'integer' }, per_page: { type: 'integer' } } },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const q = req.query;
      let visibility = q.visibility;
      let type: MeshKind | undefined;
      if (q.type === 'public' || q.type === 'private') {
        if (visibility && visibility !== q.type) {
          throw new AttuneError('validation_error', `type=${q.type} (a visibility) contradicts visibility=${visibility}`, [{ field: '?type', reason: 'invalid_value' }]);
        }
        visibility = q.type;
      } else if (q.type) type = q.type;
      const page = q.page ?? 1;
      const perPage = q.per_page ?? 10;
      const { sessions, total } = await mesh().list({ viewer: viewerOf(p), status: q.status, visibility, type, page, perPage });
      const averages = await averageCoherences(ctx, p.orgId, sessions);
      return {
        sessions: sessions.map((s) => meshJson(s, averages.get(s.id) ?? null, meshWebsocketUrl(req, s.id))),
        meta: { total, page, per_page: perPage },
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/mesh/sessions/:id',
    {
      config: { auth: { scope: Scopes.meshJoin } },
      schema: {
        tags: ['mesh'],
        summary: "A group session: its details, the group's current state, the caller's participation and the timeline of group windows (one per 5 s).",
        security: [{ bearerAuth: [] }],
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              ...meshJsonSchema.properties,
              state: {
                type: 'object',
                description: 'The latest group window (all null before the group worker has written one).',
                properties: {
                  window_end: { type: ['string', 'null'], format: 'date-time' },
                  participant_count: groupPointSchema.properties.participant_count,
                  coherence: groupPointSchema.properties.coherence,
                  sync_r: groupPointSchema.properties.sync_r,
                  plv: groupPointSchema.properties.plv,
                  sync_z: groupPointSchema.properties.sync_z,
                  sync_p: groupPointSchema.properties.sync_p,
                  breathing_sync: groupPointSchema.properties.breathing_sync,
                },
              },
              you: {
                type: ['object', 'null'],
                description: "The caller's participant, null when they never joined.",
                properties: { participant_id: { type: 'string' }, position: { type: 'integer' }, present: { type: 'boolean' }, anonymous: { type: 'boolean' } },
              },
              timeline: { type: 'array', items: groupPointSchema },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const { session, participant } = await mesh().access(req.params.id, viewerOf(p));
      const rows = await groupTimeline(ctx, session);
      const timeline = rows.map((r) => ({
        timestamp: iso(int64(r.window_end_ms)),
        participant_count: int64(r.participant_count),
        coherence: round(r.coherence),
        sync_r: round(r.sync_r),
        plv: round(r.plv),
        sync_z: round(r.sync_z, 3),
        sync_p: round(r.sync_p),
        breathing_sync: round(r.breathing_sync),
      }));
      const last = timeline[timeline.length - 1];
      const averages = await averageCoherences(ctx, p.orgId, [session]);
      return {
        ...meshJson(session, averages.get(session.id) ?? null, meshWebsocketUrl(req, session.id)),
        state: {
          window_end: last?.timestamp ?? null,
          participant_count: last?.participant_count ?? 0,
          coherence: last?.coherence ?? null,
          sync_r: last?.sync_r ?? null,
          plv: last?.plv ?? null,
          sync_z: last?.sync_z ?? null,
          sync_p: last?.sync_p ?? null,
          breathing_sync: last?.breathing_sync ?? null,
        },
        you: participant ? { participant_id: participant.id, position: participant.position, present: participant.leftAt === null, anonymous: participant.anonymous } : null,
        timeline,
      };
    },
  );

  app.post<{ Params: { id: string }; Body: { intention?: string; anonymous?: boolean; device_id?: string; display_name?: string } | undefined }>(
    '/v1/mesh/sessions/:id/join',
    {
      config: { auth: { scope: Scopes.meshJoin } },
      schema: {
        tags: ['mesh'],
        summary: 'Join a group session (409 mesh_full at capacity; 403 not_invited for a private session). Joining again answers the same participant.',
        security: [{ bearerAuth: [] }],
        params: idParams,
        body: {
          type: ['object', 'null'],
          properties: {
            intention: { type: 'string', maxLength: 500 },
            anonymous: { type: 'boolean', default: false, description: 'Leave your display name out of what other participants see.' },
            device_id: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$', description: 'The device whose readings count; any of yours when absent.' },
            display_name: { type: 'string', maxLength: 200, description: 'Your name as other participants see it (unless anonymous).' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              joined: { type: 'boolean' },
              participant_id: { type: 'string' },
              position: { type: 'integer', description: 'Order of arrival, 1 for the first participant; kept when you leave and come back.' },
              websocket_url: { type: 'string' },
              group_coherence: { type: ['number', 'null'], description: 'The group coherence of the latest window; null when none is current.' },
              your_contribution_weight: { type: 'number', description: 'Your weight in the latest group window; 0 until you have a valid window.' },
              participant_count: { type: 'integer' },
              already_joined: { type: 'boolean', description: 'You were present already: the same participant is answered.' },
            },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const b = req.body ?? {};
      const viewer = viewerOf(p);
      const { session, participant } = await mesh().access(req.params.id, viewer);
      if (b.device_id) {
        const d = await ctx.devices.get(p.orgId, b.device_id);
        if (!d || d.userId !== p.userId) {
          throw new AttuneError('validation_error', `device ${b.device_id} is not registered to you`, [{ field: '/device_id', reason: 'not_registered' }]);
        }
      }
      // Requirements are checked on the first join only: a participant coming back was admitted.
      if (!participant) await checkJoinRequirements(ctx, p, session);
      const result = await mesh().join(session.id, viewer, { intention: b.intention, anonymous: b.anonymous, deviceId: b.device_id, displayName: b.display_name });
      if (result.joined) {
        await publishMeshEvent(ctx, log, {
          event_id: `${session.id}:participant_joined:${result.participant.id}:${result.participant.joinedAt}`,
          mesh_id: session.id,
          org_id: session.orgId,
          type: 'participant_joined',
          occurred_at: result.participant.joinedAt,
          payload: participantPayload(result.participant, result.session.participantCount),
        });
      }
      const averages = await averageCoherences(ctx, p.orgId, [result.session]);
      return {
        joined: true,
        participant_id: result.participant.id,
        position: result.participant.position,
        websocket_url: meshWebsocketUrl(req, session.id),
        group_coherence: round(averages.get(session.id) ?? null),
        your_contribution_weight: round(await contributionWeight(ctx, result.session, result.participant.id), 6) ?? 0,
        participant_count: result.session.participantCount,
        already_joined: !result.joined,
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/mesh/sessions/:id/leave',
    {
      config: { auth: { scope: Scopes.meshJoin } },
      schema: {
        tags: ['mesh'],
        summary:
          'Leave a group session (idempotent). Your seat is free for others; joining again brings back the same participant. ' +
          'Once the session has ended nothing changes (left_at: when you left, or the session\'s end if you were there to the end).',
        security: [{ bearerAuth: [] }],
        params: idParams,
        body: { type: ['object', 'null'], properties: {}, additionalProperties: false, description: 'Nothing (an empty object or no body).' },
        response: {
          200: {
            type: 'object',
            properties: { left: { type: 'boolean' }, participant_id: { type: 'string' }, left_at: { type: 'string', format: 'date-time' } },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const { participant, left, participantCount, sessionEndedAt } = await mesh().leave(req.params.id, viewerOf(p));
      if (left && participant.leftAt !== null) {
        await publishMeshEvent(ctx, log, {
          event_id: `${participant.meshId}:participant_left:${participant.id}:${participant.leftAt}`,
          mesh_id: participant.meshId,
          org_id: participant.orgId,
          type: 'participant_left',
          occurred_at: participant.leftAt,
          payload: participantPayload(participant, participantCount),
        });
      }
      // After the session's end nothing changes: a participant present at the end left with it.
      return { left: true, participant_id: participant.id, left_at: iso(participant.leftAt ?? sessionEndedAt ?? ctx.clock()) };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/mesh/sessions/:id/end',
    {
      config: { auth: { scope: Scopes.meshCreate } },
      schema: {
        tags: ['mesh'],
        summary: 'End a group session (its host or an organisation admin; idempotent).',
        security: [{ bearerAuth: [] }],
        params: idParams,
        body: { type: ['object', 'null'], properties: {}, additionalProperties: false, description: 'Nothing (an empty object or no body).' },
        response: { 200: meshJsonSchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const viewer = viewerOf(p);
      const { session } = await mesh().access(req.params.id, viewer);
      if (session.hostUserId !== p.userId && !viewer.admin) {
        throw new AttuneError('forbidden', 'only the host may end a mesh session', [{ reason: 'not_host' }]);
      }
      const ended = await mesh().end(session.id);
      if (session.status !== 'ended' && ended.endedAt !== null) {
        await publishMeshEvent(ctx, log, {
          event_id: `${ended.id}:session_ended`,
          mesh_id: ended.id,
          org_id: ended.orgId,
          type: 'session_ended',
          occurred_at: ended.endedAt,
          payload: { ended_at: iso(ended.endedAt), participant_count: ended.participantCount },
        });
      }
      const averages = await averageCoherences(ctx, p.orgId, [ended]);
      return meshJson(ended, averages.get(ended.id) ?? null, meshWebsocketUrl(req, ended.id));
    },
  );
}
