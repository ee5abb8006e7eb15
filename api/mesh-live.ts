// The live stream of a group (mesh) session: the WebSocket /v1/mesh/sessions/{id}/stream
// (issue 11 item 3), with the envelope `{id, type, timestamp, payload}` and the socket
// authentication of the other streams (http/http-auth.ts). Two sources:
//  - the bus topic attune.mesh.events.v1 (MeshEvent.avsc), read by every API process through
//    a LiveHub (ephemeral consumer group, bounded send queues, heartbeats):
//    participant_joined / participant_left / session_ended, published by the join, leave and
//    end routes of whichever process served them, and group_coherence / manifestation_event
//    once the group worker publishes them;
//  - sync_pulse, computed in this process every PULSE_MS while a socket of the session is
//    open: the pacer's phase and progress (api/mesh-pacer.ts, a pure function of the time, the
//    session's start and its breathing rate, so every process sends the same pulse for the
//    same instant) and group_sync, the Kuramoto R of the latest group_coherence event seen
//    (null until the group worker publishes one).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Topics, type TopicNames } from '../schemas/topics.js';
import { iso } from '../lib/time.js';
import { Scopes } from '../lib/principal.js';
import type { Logger } from '../lib/log.js';
import type { Bus } from '../bus/types.js';
import type { Codec } from '../schemas/registry/codec.js';
import type { MeshEventRecord } from '../schemas/records.js';
import type { MeshEventType } from '../schemas/registry/schemas.js';
import type { AppContext } from '../http/context.js';
import { socketAuth } from '../http/http-auth.js';
import { LiveHub, lastIdOf, onAuthenticateMessages, streamControl, subscribeWithResume, type Envelope, type LiveClient, type LiveHubOptions } from '../http/live-hub.js';
import type { MeshParticipant, MeshSession, MeshViewer } from '../store/postgres/mesh-repo.js';
import { pacerAt } from './mesh-pacer.js';
import { LRUCache } from 'lru-cache';

/** How often a session's sockets get a sync_pulse, ms ("at least once a second"). */
export const PULSE_MS = 500;

/**
 * A resume from a sync_pulse (the message a group socket's client most often saw last; pulses
 * are not kept) replays the events routed from this long before the pulse: another API process
 * may have routed an event the client saw a little later than the one it saw it on did. Events
 * the client had come again (their ids tell), none is lost.
 */
export const PULSE_RESUME_MARGIN_MS = 2_000;

/** The resume instant of a sync_pulse id of session `meshId` (`<mesh>:sync_pulse:<ms>`), less the margin; null for any other id. */
export function pulseResumeSince(meshId: string, lastId: string): number | null {
  const prefix = `${meshId}:sync_pulse:`;
  if (!lastId.startsWith(prefix)) return null;
  const t = Number(lastId.slice(prefix.length));
  return Number.isSafeInteger(t) ? t - PULSE_RESUME_MARGIN_MS : null;
}

/**
 * The session-sync envelope plus `data`, the same object as `payload`: the coherence platform
 * document's mesh messages name no place for their fields, and its other socket messages carry
 * them in `data` (`{type, timestamp, data}`), so a client of the document finds them there too.
 */
export type MeshEnvelope = Envelope<MeshEventType | 'sync_pulse'> & { data: Record<string, unknown> };

/** A pulse computed in this process: delivered through the hub, never through the bus. */
interface PulseRecord {
  kind: 'pulse';
  mesh_id: string;
  envelope: MeshEnvelope;
}
export type MeshLiveRecord = MeshEventRecord | PulseRecord;

const meshKey = (meshId: string) => `mesh:${meshId}`;
/** Sockets that asked for provisional group windows (`?provisional=true`) are attached under this too. */
const provisionalMeshKey = (meshId: string) => `mesh-provisional:${meshId}`;

function parsePayload(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

/** The envelope of a bus event; timestamp is when it occurred. */
export function meshEventEnvelope(e: MeshEventRecord): MeshEnvelope {
  const payload = parsePayload(e.payload_json);
  return { id: e.event_id, type: e.type, timestamp: iso(e.occurred_at), payload, data: payload };
}

/** What participant_joined / participant_left say about a participant: no name or user id when anonymous. */
export function participantPayload(p: MeshParticipant, participantCount: number) {
  return {
    participant_id: p.id,
    position: p.position,
    user_id: p.anonymous ? null : p.userId,
    display_name: p.anonymous ? null : p.displayName || p.userId,
    anonymous: p.anonymous,
    participant_count: participantCount,
  };
}

interface Pulsing {
  sockets: number;
  timer: NodeJS.Timeout;
}

/** The hub of the mesh streams and the pulse timers of the sessions watched in this process. */
export class MeshLive {
  readonly hub: LiveHub<MeshLiveRecord>;
  /**
   * The latest group synchrony (sync_r of group_coherence) per session. Bounded: every mesh
   * event of the deployment is routed here (the hub keeps them for resume, listeners or not).
   */
  private readonly groupSync = new LRUCache<string, { r: number | null }>({ max: 100_000 });
  /** Per session, the newest final and provisional group window ends routed (recently active sessions, ~100 bytes each). */
  private readonly finalThrough = new LRUCache<string, number>({ max: 100_000 });
  private readonly provisionalThrough = new LRUCache<string, number>({ max: 100_000 });
  private readonly pulsing = new Map<string, Pulsing>();
  private readonly ended = new LRUCache<string, true>({ max: 100_000 });
  /** The newest participant_count a join or leave said, per session (for a session_ended by its duration). */
  private readonly participantCounts = new LRUCache<string, number>({ max: 100_000 });

  constructor(
    private readonly opts: LiveHubOptions & { pulseMs?: number },
    topics: TopicNames = Topics,
  ) {
    this.hub = new LiveHub<MeshLiveRecord>(opts, {
      name: 'mesh-live',
      // The session-sync document's resume from the last seen message: the session's events
      // are kept (read even while nobody listens), pulses and provisional windows are not (a
      // pulse is stale at once; a provisional window's final one is kept).
      resume: true,
      topics: [topics.meshEvents],
      route: (rec) => {
        if ('kind' in rec) return { keys: [meshKey(rec.mesh_id)], envelope: () => rec.envelope };
        if (rec.type === 'group_coherence') {
          const payload = parsePayload(rec.payload_json);
          if (payload.provisional === true) {
            // Only to the sockets that asked for them. The final and provisional windows come
            // from two consumers, and a worker taking a partition over may read again: a
            // provisional window whose final one, or a newer provisional one, was already routed
            // would only take the display back (as api/live.ts does for coherence windows).
            if (rec.occurred_at <= (this.finalThrough.get(rec.mesh_id) ?? -Infinity)) return null;
            if (rec.occurred_at <= (this.provisionalThrough.get(rec.mesh_id) ?? -Infinity)) return null;
            this.provisionalThrough.set(rec.mesh_id, rec.occurred_at);
            return {
              keys: [provisionalMeshKey(rec.mesh_id)],
              envelope: () => meshEventEnvelope(rec),
              supersededBy: rec.event_id.replace(/:provisional$/, ''),
            };
          }
          if (rec.occurred_at > (this.finalThrough.get(rec.mesh_id) ?? -Infinity)) this.finalThrough.set(rec.mesh_id, rec.occurred_at);
          const r = payload.sync_r;
          this.groupSync.set(rec.mesh_id, { r: typeof r === 'number' && Number.isFinite(r) ? r : null });
        } else if (rec.type === 'session_ended') {
          this.ended.set(rec.mesh_id, true);
          this.stopPulses(rec.mesh_id);
        } else if (rec.type === 'participant_joined' || rec.type === 'participant_left') {
          const n = parsePayload(rec.payload_json).participant_count;
          if (typeof n === 'number') this.participantCounts.set(rec.mesh_id, n);
        }
        return { keys: [meshKey(rec.mesh_id)], resumeKeys: [meshKey(rec.mesh_id)], envelope: () => meshEventEnvelope(rec) };
      },
    });
  }

  start(bus: Bus, codec: Codec): Promise<void> {
    return this.hub.start(bus, codec);
  }

  async stop(): Promise<void> {
    for (const id of [...this.pulsing.keys()]) this.stopPulses(id);
    await this.hub.stop();
  }

  /** Sessions with a pulse timer running (tests, metrics). */
  get pulsingSessions(): number {
    return this.pulsing.size;
  }

  /** The sync_pulse of `s` at `t`, or null before its start or after its end. */
  pulseAt(s: Pick<MeshSession, 'id' | 'startedAt' | 'scheduledStart' | 'scheduledEnd' | 'endedAt' | 'breathingRateBpm'>, t: number): MeshEnvelope | null {
    const end = s.endedAt ?? s.scheduledEnd;
    if (this.ended.has(s.id) || (end !== null && t >= end)) return null;
    const pacer = pacerAt(s.startedAt ?? s.scheduledStart, s.breathingRateBpm, t);
    if (!pacer) return null;
    const payload = {
      phase: pacer.phase,
      progress: Number(pacer.progress.toFixed(4)),
      group_sync: this.groupSync.get(s.id)?.r ?? null,
      breathing_rate_bpm: s.breathingRateBpm,
      cycle: pacer.cycle,
    };
    return { id: `${s.id}:sync_pulse:${t}`, type: 'sync_pulse', timestamp: iso(t), payload, data: payload };
  }

  /**
   * Attaches a socket to session `s`'s stream and keeps its pulse running while any socket of
   * it is open; then sends `subscribed` and the events kept after `lastId` (a resume), in the
   * same turn so nothing live comes between. Null when the socket closed already.
   */
  attach(socket: WebSocket, s: MeshSession, provisional: boolean, lastId: string | null, subscribed: Record<string, unknown>): LiveClient | null {
    const client = this.hub.attach(socket, provisional ? [meshKey(s.id), provisionalMeshKey(s.id)] : [meshKey(s.id)]);
    if (!client) return null;
    subscribeWithResume(this.hub, client, meshKey(s.id), lastId, subscribed, this.opts.clock(), (id) => pulseResumeSince(s.id, id), { sessionId: s.id });
    let p = this.pulsing.get(s.id);
    if (!p) {
      const timer = setInterval(() => {
        const now = this.opts.clock();
        const envelope = this.pulseAt(s, now) ?? this.endedByDuration(s, now);
        if (envelope) this.hub.publish({ kind: 'pulse', mesh_id: s.id, envelope }, '');
      }, this.opts.pulseMs ?? PULSE_MS);
      timer.unref();
      p = { sockets: 0, timer };
      this.pulsing.set(s.id, p);
    }
    p.sockets++;
    socket.once('close', () => {
      const q = this.pulsing.get(s.id);
      if (q && --q.sockets <= 0) this.stopPulses(s.id);
    });
    return client;
  }

  /**
   * A control message of an attached socket: `heartbeat` → `ping` (and from then on missed
   * heartbeats time it out), `subscribe` with `lastVersion` / `last_id` → `subscribed` and the
   * events it missed, as on the coherence sockets.
   */
  control(client: LiveClient, meshId: string, msg: unknown, subscribed: () => Promise<Record<string, unknown>>): Promise<void> {
    return streamControl(this.hub, client, meshKey(meshId), msg, subscribed, this.opts.clock, (id) => pulseResumeSince(meshId, id), [meshKey(meshId), provisionalMeshKey(meshId)]);
  }

  /**
   * A session that ends by its duration (no end call, so no session_ended on the bus): its
   * sockets in this process get session_ended at the planned end, once, with the id the end
   * call's would have, and its pulse stops. Until 12-06 the pulses stopped and nothing said
   * why (a walkthrough: no session_ended in the 20 s after a 60 s session's end).
   */
  private endedByDuration(s: Pick<MeshSession, 'id' | 'scheduledEnd' | 'endedAt' | 'participantCount'>, t: number): MeshEnvelope | null {
    if (s.endedAt !== null || s.scheduledEnd === null || t < s.scheduledEnd || this.ended.has(s.id)) return null;
    this.ended.set(s.id, true);
    queueMicrotask(() => this.stopPulses(s.id));
    const payload = { ended_at: iso(s.scheduledEnd), participant_count: this.participantCounts.get(s.id) ?? s.participantCount };
    return { id: `${s.id}:session_ended`, type: 'session_ended', timestamp: iso(s.scheduledEnd), payload, data: payload };
  }

  private stopPulses(meshId: string): void {
    const p = this.pulsing.get(meshId);
    if (!p) return;
    clearInterval(p.timer);
    this.pulsing.delete(meshId);
  }
}

/** Publishes a mesh event on the bus (keyed by session). A failure is logged: the change it reports is committed already. */
export async function publishMeshEvent(ctx: Pick<AppContext, 'bus' | 'codec' | 'topics'>, log: Logger, e: Omit<MeshEventRecord, 'payload_json'> & { payload: Record<string, unknown> }): Promise<void> {
  const { payload, ...rest } = e;
  const record: MeshEventRecord = { ...rest, payload_json: JSON.stringify(payload) };
  try {
    await ctx.bus.publish(ctx.topics.meshEvents, [{ key: record.mesh_id, value: ctx.codec.encode(Topics.meshEvents, record) }]);
  } catch (err) {
    log.warn({ err, mesh_id: record.mesh_id, type: record.type }, 'mesh event not published (live streams miss it)');
  }
}

export function registerMeshStreamRoute(app: FastifyInstance, ctx: AppContext, live: MeshLive, access: (id: string, v: MeshViewer) => Promise<{ session: MeshSession; participant: MeshParticipant | null }>): void {
  app.get<{ Params: { id: string }; Querystring: { provisional?: string; last_id?: string } }>(
    '/v1/mesh/sessions/:id/stream',
    {
      config: { auth: { scope: Scopes.meshJoin, socket: true } },
      websocket: true,
      schema: {
        tags: ['mesh'],
        summary:
          'Live events of one group session (WebSocket): participant_joined and participant_left {participant_id, position, user_id and display_name (null when anonymous), participant_count}, ' +
          `sync_pulse every ${PULSE_MS} ms {phase: inhale|exhale, progress 0..1, group_sync, breathing_rate_bpm, cycle}, session_ended, and group_coherence / manifestation_event from the group worker. ` +
          'group_coherence comes once per 5 s window, final (payload provisional: false), 25-30 s after the window\'s end (the participants\' and the group\'s allowed lateness); ' +
          'with ?provisional=true the socket also gets a provisional one per window (provisional: true, id ending :provisional) about 15 s sooner, read from the participants\' windows before their lateness ran out, for live display: key by payload.window_end, the final one follows. ' +
          'Authenticate with Authorization: Bearer, ?token=, or a first {"type":"authenticate","token":"<jwt>"} message; needs mesh:join. ' +
          'The first message is {"type":"subscribed","payload":{"mesh_id","status","participant_count","breathing_rate_bpm"}}, the second {"type":"connected","payload":{"sessionId","serverTime"}}; then envelopes {"id","type","timestamp","payload"}. {"type":"unsubscribe"} stops them until the next subscribe; ack is ignored. ' +
          'Resume: the id of the last message seen, as ?last_id= on the upgrade or in a {"type":"subscribe","payload":{"lastVersion":"<id>"}} message, gets the session\'s events after it (not pulses or provisional windows) right after subscribed, which then carries last_id, replayed and complete (false: the id is no longer kept, everything kept is sent). ' +
          `A sync_pulse id resumes from that pulse's instant less ${PULSE_RESUME_MARGIN_MS / 1000} s (events the client had may come again; their ids tell). ` +
          '{"type":"heartbeat"} is answered with ping {timestamp}; after the first, 120 s without one close the socket (4408). ' +
          'Close codes: 4401 unauthenticated, 4403 missing scope or a private session you are not invited to, 4404 no such session, 4408 no pong before the next ping, 4029 over the open-socket quota, 4008 too slow a reader.',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { id: string }; Querystring: { provisional?: string; last_id?: string } }>) => {
      const provisional = req.query?.provisional === 'true' || req.query?.provisional === '1';
      let attached: { client: LiveClient; subscribed: () => Promise<Record<string, unknown>> } | null = null;
      const auth = socketAuth(ctx, socket, req, async (p) => {
        const caller = { orgId: p.orgId, userId: p.userId, admin: p.scopes.has(Scopes.adminOrg) };
        const subscribedOf = (session: MeshSession) => ({
          mesh_id: session.id,
          status: session.status,
          participant_count: session.participantCount,
          breathing_rate_bpm: session.breathingRateBpm,
          ...(provisional ? { provisional: true } : {}),
        });
        const { session } = await access(req.params.id, caller);
        const client = live.attach(socket, session, provisional, lastIdOf(req.query?.last_id), subscribedOf(session));
        // A later subscribe reports the group as it is then (participants joined, ended).
        if (client) attached = { client, subscribed: async () => subscribedOf((await access(req.params.id, caller)).session) };
      });
      onAuthenticateMessages(socket, auth, async (msg) => {
        if (attached) await live.control(attached.client, req.params.id, msg, attached.subscribed);
      });
    },
  );
}
