// Live coherence: the WebSockets /v1/coherence (every session of the caller) and
// /v1/sessions/{id}/stream (one session). Each API process reads the coherence-window and
// session-event topics through a LiveHub (http/live-hub.ts: ephemeral consumer group, bounded
// send queues, heartbeats) and pushes envelopes `{id, type, timestamp, payload}` to the
// sockets of the record's user and session.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Topics, type TopicNames } from '../schemas/topics.js';
import { AttuneError } from '../lib/errors.js';
import { iso } from '../lib/time.js';
import type { CoherenceWindowRecord, SessionEventRecord } from '../schemas/records.js';
import { Scopes, canAccess } from '../lib/principal.js';
import type { AppContext } from '../http/context.js';
import { socketAuth } from '../http/http-auth.js';
import { LiveHub, onAuthenticateMessages, subscribedEnvelope, type Envelope, type LiveHubOptions } from '../http/live-hub.js';

export type CoherenceEnvelope = Envelope<'coherence_update' | 'session_event'>;

export function coherenceEnvelope(w: CoherenceWindowRecord, now: number): CoherenceEnvelope {
  return {
    // Deterministic: a window re-sent after a worker restart carries the same id.
    id: `${w.session_id}:${w.window_end}`,
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

/** The hub of the coherence live routes: windows and session events to their user's and session's sockets. */
export function createCoherenceLiveHub(opts: LiveHubOptions, topics: TopicNames = Topics): LiveHub<CoherenceLiveRecord> {
  return new LiveHub<CoherenceLiveRecord>(opts, {
    name: 'live',
    topics: [topics.coherenceWindows, topics.sessionEvents],
    route(rec, topic) {
      const keys = [userKey(rec.org_id, rec.user_id), sessionKey(rec.session_id)];
      if (topic === topics.coherenceWindows) {
        const w = rec as CoherenceWindowRecord;
        return { keys, envelope: () => coherenceEnvelope(w, opts.clock()) };
      }
      const e = rec as SessionEventRecord;
      return { keys, envelope: () => sessionEventEnvelope(e, opts.clock()) };
    },
  });
}

export async function registerLiveRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hub = ctx.live;
  if (!hub) throw new Error('live routes need a LiveHub');

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
      const auth = socketAuth(ctx, socket, req, async (p) => {
        if (!hub.attach(socket, [userKey(p.orgId, p.userId)])) return;
        socket.send(subscribedEnvelope(ctx.clock(), { user_id: p.userId }));
      });
      onAuthenticateMessages(socket, auth);
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
      const auth = socketAuth(ctx, socket, req, async (p) => {
        const s = await ctx.sessions.get(req.params.id);
        if (!s || !canAccess(p, s)) throw new AttuneError('not_found', `session ${req.params.id} not found`);
        if (!hub.attach(socket, [sessionKey(s.id)])) return;
        socket.send(subscribedEnvelope(ctx.clock(), { session_id: s.id }));
      });
      onAuthenticateMessages(socket, auth);
    },
  );
}
