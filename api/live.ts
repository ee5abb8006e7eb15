// Live coherence: the WebSockets /v1/coherence (every session of the caller) and
// /v1/sessions/{id}/stream (one session). Each API process reads the coherence-window and
// session-event topics through a LiveHub (http/live-hub.ts: ephemeral consumer group, bounded
// send queues, heartbeats) and pushes envelopes `{id, type, timestamp, payload}` to the
// sockets of the record's user and session.
//
// Issue 12 (docs/websocket-protocols.md has the messages):
//  - a client that opens either socket with the subprotocol `auf-protocol-v1` (the coherence
//    platform document's) gets its messages in that document's shapes, `{type, timestamp,
//    data}` (coherence_update with coherence, hrv, hr, breathing_phase, breathing_progress)
//    and `{type: "session_event", event, data}`, each with its `id` too; without it, the
//    session-sync envelope stays the default;
//  - `{"type":"heartbeat"}` (bare or as an envelope) is answered with `ping`; 120 s without
//    one times the socket out (http/live-hub.ts);
//  - resume: the last message id a client saw, as `?last_id=` on the upgrade or as
//    `lastVersion` of a `subscribe` message (`{type:"subscribe", payload:{sessionId,
//    lastVersion}}`), gets the messages after it from the hub's bounded buffers (per session
//    and per user) before live ones.
// breathing_phase and breathing_progress are the breathing pacer's guidance at the message's
// timestamp (api/mesh-pacer.ts: inhale the first half of each breath, exhale the second), from
// the session's start at the protocols' 6 breaths a minute; null until this process knows the
// session's start (looked up on the session's first message, or when the socket opens).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { LRUCache } from 'lru-cache';
import { Topics, type TopicNames } from '../schemas/topics.js';
import { AttuneError } from '../lib/errors.js';
import { iso } from '../lib/time.js';
import type { CoherenceWindowRecord, SessionEventRecord } from '../schemas/records.js';
import { Scopes, canAccess } from '../lib/principal.js';
import type { AppContext } from '../http/context.js';
import { socketAuth } from '../http/http-auth.js';
import { LiveHub, controlOf, lastIdOf, onAuthenticateMessages, subscribeWithResume, type Envelope, type EnvelopeRenderer, type LiveClient, type LiveHubOptions } from '../http/live-hub.js';
import type { VerifiedToken } from '../http/auth.js';
import { randomUUID } from 'node:crypto';
import { pacerAt } from './mesh-pacer.js';
import { PROTOCOLS } from './sessions.js';
import { socketErrorMessage } from '../http/errors.js';

export type CoherenceEnvelope = Envelope<'coherence_update' | 'session_event'>;

/**
 * A window's `coherence_update`. A provisional one (the window read before its allowed
 * lateness ran out, live display only) has an id of its own, so that a client keeping ids
 * does not take the final one for a repeat.
 */
export function coherenceEnvelope(w: CoherenceWindowRecord, now: number, provisional = false): CoherenceEnvelope {
  return {
    // Deterministic: a window re-sent after a worker restart carries the same id.
    id: provisional ? `${w.session_id}:${w.window_end}:provisional` : `${w.session_id}:${w.window_end}`,
    type: 'coherence_update',
    timestamp: iso(now),
    payload: {
      session_id: w.session_id,
      user_id: w.user_id,
      device_id: w.device_id,
      window_start: iso(w.window_start),
      window_end: iso(w.window_end),
      valid: w.valid,
      // Why a window is not trusted (null when valid), and what it holds: the first windows of
      // a session are partial until a full 64 s of data is in, and a client can show that.
      invalid_reason: w.invalid_reason,
      partial: w.partial,
      coverage: w.coverage,
      longest_gap_ms: w.longest_gap_ms,
      coherence: w.coherence,
      coherence_ratio: w.coherence_ratio,
      hr: w.mean_hr_bpm,
      hrv: w.rmssd_ms,
      breathing_rate: w.breathing_rate_bpm,
      peak_frequency_hz: w.peak_frequency_hz,
      artifact_ratio: w.artifact_ratio,
      provisional,
    },
  };
}

export function sessionEventEnvelope(e: SessionEventRecord, now: number): CoherenceEnvelope {
  let extra: Record<string, unknown> = {};
  try {
    extra = JSON.parse(e.payload_json);
  } catch {
    extra = {};
  }
  return {
    id: e.event_id,
    type: 'session_event',
    timestamp: iso(now),
    payload: { event: e.type, session_id: e.session_id, user_id: e.user_id, occurred_at: iso(e.occurred_at), ...extra },
  };
}

export type CoherenceLiveRecord = CoherenceWindowRecord | SessionEventRecord;

const userKey = (orgId: string, userId: string) => `user:${orgId}/${userId}`;
const sessionKey = (sessionId: string) => `session:${sessionId}`;
/** Sockets that asked for provisional windows (`?provisional=true`) are attached under these too. */
const provisionalKey = (key: string) => `provisional:${key}`;
/** Per coherence hub: its open sockets that asked for provisional windows. */
const provisionalSockets = new WeakMap<LiveHub<CoherenceLiveRecord>, { count: number }>();

/** The hub of the coherence live routes: windows and session events to their user's and session's sockets. */
export function createCoherenceLiveHub(opts: LiveHubOptions, topics: TopicNames = Topics): LiveHub<CoherenceLiveRecord> {
  // Per session, the newest final and provisional window ends routed, for the most recently
  // active sessions (about 100 bytes an entry). Past them, each client still drops a
  // provisional window whose final one it had (LiveDelivery.supersededBy).
  const finalThrough = new LRUCache<string, number>({ max: 100_000 });
  const provisionalThrough = new LRUCache<string, number>({ max: 100_000 });
  const asking = { count: 0 };
  const hub = new LiveHub<CoherenceLiveRecord>(opts, {
    name: 'live',
    topics: [topics.coherenceWindows, topics.sessionEvents, topics.coherenceWindowsProvisional],
    resume: true,
    // Provisional windows are decoded only while some socket asked for them.
    wanted: (topic) => topic !== topics.coherenceWindowsProvisional || asking.count > 0,
    route(rec, topic) {
      const keys = [userKey(rec.org_id, rec.user_id), sessionKey(rec.session_id)];
      // The envelope's timestamp is when the record was read, also for one built at a resume.
      const receivedAt = opts.clock();
      if (topic === topics.coherenceWindows) {
        const w = rec as CoherenceWindowRecord;
        if (w.window_end > (finalThrough.get(w.session_id) ?? -Infinity)) finalThrough.set(w.session_id, w.window_end);
        return { keys, resumeKeys: keys, envelope: () => coherenceEnvelope(w, receivedAt) };
      }
      if (topic === topics.coherenceWindowsProvisional) {
        const w = rec as CoherenceWindowRecord;
        // The two topics are read independently, and a worker that restarts or takes a
        // partition over reads again what it had read: a provisional window whose final one, or
        // a newer provisional one, was already sent would only take the display back. Not kept
        // for resume.
        if (w.window_end <= (finalThrough.get(w.session_id) ?? -Infinity)) return null;
        if (w.window_end <= (provisionalThrough.get(w.session_id) ?? -Infinity)) return null;
        provisionalThrough.set(w.session_id, w.window_end);
        return { keys: keys.map(provisionalKey), envelope: () => coherenceEnvelope(w, receivedAt, true), supersededBy: `${w.session_id}:${w.window_end}` };
      }
      const e = rec as SessionEventRecord;
      return { keys, resumeKeys: keys, envelope: () => sessionEventEnvelope(e, receivedAt) };
    },
  });
  provisionalSockets.set(hub, asking);
  return hub;
}

/** The coherence platform document's WebSocket subprotocol. */
export const AUF_PROTOCOL = 'auf-protocol-v1';

/** The pacer's rate: every documented protocol paces at 6 breaths a minute (api/sessions.ts PROTOCOLS). */
const PACE_BPM = PROTOCOLS.heart_breath_sync.breathingRateBpm;

/** Where the pacer of a session is at `t`: phase and progress, or nulls when its start is unknown. */
export function breathingGuidance(startMs: number | undefined, t: number): { breathing_phase: 'inhale' | 'exhale' | null; breathing_progress: number | null } {
  const p = startMs === undefined ? null : pacerAt(startMs, PACE_BPM, t);
  return { breathing_phase: p?.phase ?? null, breathing_progress: p ? Number(p.progress.toFixed(3)) : null };
}

/**
 * An envelope in the `auf-protocol-v1` shapes: `{type, id, timestamp, data}`, session events
 * with `event` beside `data` (and `duration_above`, the document's name for hold_s). `startOf`
 * gives a session's start (epoch ms) when known.
 */
export function aufMessage(env: Envelope, startOf: (sessionId: string) => number | undefined): Record<string, unknown> {
  const payload = env.payload;
  if (env.type === 'coherence_update') {
    const sessionId = String(payload.session_id ?? '');
    const { coherence, hrv, hr, ...rest } = payload;
    return {
      type: env.type,
      id: env.id,
      timestamp: env.timestamp,
      data: { coherence: coherence ?? null, hrv: hrv ?? null, hr: hr ?? null, ...breathingGuidance(startOf(sessionId), Date.parse(env.timestamp)), ...rest },
    };
  }
  if (env.type === 'session_event') {
    const { event, ...rest } = payload;
    const data: Record<string, unknown> = { ...rest };
    if (typeof rest.hold_s === 'number' && data.duration_above === undefined) data.duration_above = rest.hold_s;
    return { type: env.type, id: env.id, event, timestamp: env.timestamp, data };
  }
  return { type: env.type, id: env.id, timestamp: env.timestamp, data: payload };
}

/** Session starts for the pacer, looked up once per session (LRU) through the sessions repository. */
class SessionStarts {
  private readonly starts = new LRUCache<string, number>({ max: 20_000 });
  private readonly pending = new Set<string>();

  constructor(private readonly lookup: (id: string) => Promise<{ startedAt: number } | null>) {}

  get(id: string): number | undefined {
    const t = this.starts.get(id);
    if (t === undefined && id !== '') void this.fetch(id);
    return t;
  }

  set(id: string, startedAt: number): void {
    this.starts.set(id, startedAt);
  }

  private async fetch(id: string): Promise<void> {
    if (this.pending.has(id) || this.pending.size > 1_000) return;
    this.pending.add(id);
    try {
      const s = await this.lookup(id);
      if (s) this.starts.set(id, s.startedAt);
    } catch {
      // Next message tries again; the pacer fields stay null meanwhile.
    } finally {
      this.pending.delete(id);
    }
  }
}

/** `?provisional=true` (or 1) on the upgrade: this socket also gets provisional windows. */
function wantsProvisional(v: unknown): boolean {
  return v === 'true' || v === '1';
}

export async function registerLiveRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hub = ctx.live;
  if (!hub) throw new Error('live routes need a LiveHub');
  const starts = new SessionStarts((id) => ctx.sessions.get(id));
  // One renderer for every auf client: the hub writes each record's text once for all of them.
  const auf: EnvelopeRenderer = (env) => JSON.stringify(aufMessage(env, (id) => starts.get(id)));

  const resume = (c: LiveClient, key: string, lastId: string | null, payload: Record<string, unknown>, connected?: { sessionId: string | null }) =>
    subscribeWithResume(hub, c, key, lastId, payload, ctx.clock(), undefined, connected);

  /**
   * One live socket: attached under `key` once authenticated, in the format its subprotocol
   * asks, `subscribed` and (with `?last_id=` on the upgrade) what it missed, in one turn of the
   * event loop so nothing live comes between; then its control messages: `heartbeat` → ping,
   * `subscribe` with lastVersion → the missed messages of its stream or of one of the user's
   * sessions (held live messages follow).
   */
  function liveSocket(socket: WebSocket, req: FastifyRequest, streamSession: string | null) {
    let client: LiveClient | null = null;
    let ownKey: string | null = null;
    let principal: VerifiedToken | null = null;
    let provisional = false;
    const sendError = (c: LiveClient, message: string) =>
      c.sendEnvelope(socketErrorMessage({ code: 'not_found', message, details: [{ field: 'sessionId', reason: 'not_found' }] }, null, ctx.clock()), true);
    return {
      attach(p: VerifiedToken, key: string, subscribed: Record<string, unknown>): boolean {
        const query = req.query as Record<string, unknown> | undefined;
        provisional = wantsProvisional(query?.provisional);
        const c = hub!.attach(socket, provisional ? [key, provisionalKey(key)] : [key]);
        if (!c) return false;
        const asking = provisional ? provisionalSockets.get(hub as LiveHub<CoherenceLiveRecord>) : undefined;
        if (asking) {
          asking.count++;
          socket.once('close', () => asking.count--);
        }
        if (socket.protocol === AUF_PROTOCOL) c.render = auf;
        client = c;
        ownKey = key;
        principal = p;
        resume(c, key, lastIdOf(query?.last_id), provisional ? { ...subscribed, provisional: true } : subscribed, { sessionId: streamSession });
        return true;
      },
      async control(msg: unknown): Promise<void> {
        const c = client;
        const m = controlOf(msg);
        if (!c || !m || !ownKey || !principal) return;
        if (m.type === 'heartbeat') return hub!.heartbeat(c);
        if (m.type !== 'subscribe' && m.type !== 'unsubscribe') return;
        const asked = typeof m.fields.sessionId === 'string' ? m.fields.sessionId : typeof m.fields.session_id === 'string' ? m.fields.session_id : null;
        // unsubscribe: this socket's stream, or on a user's socket one of the user's sessions
        // (its messages come under the session's key too); a later subscribe lets them through.
        const streamKeys = (k: string) => [k, provisionalKey(k)];
        const mutedKeys = streamKeys(asked !== null && streamSession === null ? sessionKey(asked) : ownKey);
        if (m.type === 'unsubscribe') return c.mute(mutedKeys);
        // A subscribe lets the socket's own stream through again too: on a user's socket whose
        // whole stream was unsubscribed, a session's messages come by the user's key as well
        // (a review: subscribing to one session after that left its messages muted).
        c.unmute([...mutedKeys, ...streamKeys(ownKey)]);
        const lastId = lastIdOf(m.fields.lastVersion ?? m.fields.last_id);
        c.hold();
        try {
          let key = ownKey;
          let payload: Record<string, unknown> = streamSession ? { session_id: streamSession } : { user_id: principal.userId };
          if (asked !== null && asked !== streamSession) {
            if (streamSession !== null) return sendError(c, `this socket streams session ${streamSession}`);
            const s = await ctx.sessions.get(asked);
            if (!s || !canAccess(principal, s)) return sendError(c, `session ${JSON.stringify(asked)} not found`);
            starts.set(s.id, s.startedAt);
            key = sessionKey(s.id);
            payload = { session_id: s.id };
          }
          resume(c, key, lastId, provisional ? { ...payload, provisional: true } : payload);
        } finally {
          c.release();
        }
      },
    };
  }

  app.get(
    '/v1/coherence',
    {
      config: { auth: { scope: Scopes.readCoherence, socket: true } },
      websocket: true,
      schema: {
        tags: ['live'],
        summary: "Live coherence_update and session_event messages for all of the caller's sessions (WebSocket).",
      },
    },
    (socket: WebSocket, req: FastifyRequest) => {
      const live = liveSocket(socket, req, null);
      const auth = socketAuth(ctx, socket, req, async (p) => {
        live.attach(p, userKey(p.orgId, p.userId), { user_id: p.userId });
      });
      onAuthenticateMessages(socket, auth, (msg) => live.control(msg));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/sessions/:id/stream',
    {
      config: { auth: { scope: Scopes.readSessions, socket: true } },
      websocket: true,
      schema: {
        tags: ['live'],
        summary: "Live coherence_update and session_event messages for one session (WebSocket).",
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { id: string } }>) => {
      const live = liveSocket(socket, req, req.params.id);
      const auth = socketAuth(ctx, socket, req, async (p) => {
        const s = await ctx.sessions.get(req.params.id);
        if (!s || !canAccess(p, s)) throw new AttuneError('not_found', `session ${JSON.stringify(req.params.id)} not found`);
        starts.set(s.id, s.startedAt);
        live.attach(p, sessionKey(s.id), { session_id: s.id });
      });
      onAuthenticateMessages(socket, auth, (msg) => live.control(msg));
    },
  );
}
