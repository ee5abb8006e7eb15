// Live speech events: the WebSocket /v1/speech-sessions/{id}/stream. Each API process reads
// the speech-events topic through a LiveHub (http/live-hub.ts: ephemeral consumer group,
// bounded send queues, heartbeats) and forwards each SpeechEvent to the sockets watching its
// session as `{id, type, timestamp, payload}`, with type asr:token, metrics:update or
// processing:status and the event's payload_json as payload.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Topics, type TopicNames } from '../schemas/topics.js';
import { iso } from '../lib/time.js';
import type { SpeechEventType } from '../schemas/registry/schemas.js';
import type { SpeechEventRecord } from '../schemas/records.js';
import { Scopes } from '../lib/principal.js';
import { type AppContext } from '../http/context.js';
import { socketAuth } from '../http/http-auth.js';
import { LiveHub, lastIdOf, onAuthenticateMessages, streamControl, subscribeWithResume, type Envelope, type LiveClient, type LiveHubOptions } from '../http/live-hub.js';

/** Attune's envelope plus `data`: the event as the speech-coaching document names it (its events are `{type, data}`). */
export type SpeechEnvelope = Envelope<SpeechEventType> & { data: Record<string, unknown> };

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const seconds = (ms: unknown): number | null => {
  const v = num(ms);
  return v === null ? null : Math.round(v) / 1000;
};

/**
 * The document's fields of an event, from Attune's payload: asr:token {token (the utterance's
 * text so far, or final), confidence (the recogniser's, exp mean token log p; null without
 * tokens), start, end (s), isFinal}; metrics:update {timestamp (s of audio), wpm (rolling 30 s), pitch (Hz, null when
 * unvoiced), volume (dBFS), pauses found since the previous update [{start, end, duration}] (s)};
 * processing:status {stage, progress (percent), estimatedTime (s, null while unknown), status}.
 */
export function docEventData(type: SpeechEventType, p: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case 'asr:token':
      return { token: typeof p.text === 'string' ? p.text : '', confidence: num(p.confidence), start: seconds(p.startMs), end: seconds(p.endMs), isFinal: p.isFinal === true };
    case 'metrics:update': {
      const pauses = Array.isArray(p.newPauses) ? (p.newPauses as Array<Record<string, unknown>>) : [];
      return {
        timestamp: seconds(p.atMs),
        wpm: num(p.rollingWpm),
        pitch: num(p.pitchHz),
        volume: num(p.volumeDbfs),
        pauses: pauses.map((x) => ({ start: seconds(x.startMs), end: seconds(x.endMs), duration: seconds(x.durationMs), type: x.kind })),
      };
    }
    case 'processing:status': {
      const progress = num(p.progress);
      return { stage: p.stage, progress: progress === null ? null : Math.round(progress * 1000) / 10, estimatedTime: num(p.etaS), status: p.status };
    }
    default:
      return {};
  }
}

export const SPEECH_EVENT_TYPES: readonly SpeechEventType[] = ['asr:token', 'metrics:update', 'processing:status'];

/** The envelope of a speech event; timestamp is when the event occurred. */
export function speechEventEnvelope(e: SpeechEventRecord): SpeechEnvelope {
  let payload: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(e.payload_json || '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) payload = parsed;
  } catch {
    payload = {};
  }
  return { id: e.event_id, type: e.type, timestamp: iso(e.occurred_at), payload, data: docEventData(e.type, payload) };
}

export const speechSessionKey = (sessionId: string) => `speech-session:${sessionId}`;

/** The hub of the live speech stream: each speech event to the sockets of its session. */
export function createSpeechLiveHub(opts: LiveHubOptions, topics: TopicNames = Topics): LiveHub<SpeechEventRecord> {
  return new LiveHub<SpeechEventRecord>(opts, {
    name: 'speech-live',
    // The session-sync document's resume from the last seen message: each session's last
    // events are kept (read even while nobody listens).
    resume: true,
    topics: [topics.speechEvents],
    route: (e) => ({ keys: [speechSessionKey(e.session_id)], resumeKeys: [speechSessionKey(e.session_id)], envelope: () => speechEventEnvelope(e) }),
  });
}

export async function registerSpeechLiveRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hub = ctx.speechLive;
  const sessions = ctx.speechSessions;
  if (!hub || !sessions) throw new Error('the live speech stream needs a SpeechLiveHub and a SpeechSessionsRepository');

  app.get<{ Params: { id: string }; Querystring: { last_id?: string } }>(
    '/v1/speech-sessions/:id/stream',
    {
      config: { auth: { scope: Scopes.readSpeech, socket: true } },
      websocket: true,
      schema: {
        tags: ['speech'],
        summary:
          'Live events of one speech session (WebSocket): asr:token (partial and final transcript), metrics:update (at least once a second while audio flows) and processing:status (stage, progress, eta). ' +
          'Authenticate with Authorization: Bearer, ?token=, or a first {"type":"authenticate","token":"<jwt>"} message; needs read:speech. ' +
          'The first message is {"type":"subscribed","payload":{"session_id","status"}}, the second {"type":"connected","payload":{"sessionId","serverTime"}}; then envelopes {"id","type","timestamp","payload"}. {"type":"unsubscribe"} stops them until the next subscribe; ack is ignored. ' +
          'Resume: the id of the last message seen, as ?last_id= on the upgrade or in a {"type":"subscribe","payload":{"lastVersion":"<id>"}} message, gets the session\'s last 60 events after it right after subscribed (which then carries last_id, replayed, complete); {"type":"heartbeat"} is answered with ping {timestamp}. ' +
          'Close codes: 4401 unauthenticated, 4403 missing scope, 4404 no such session (or not yours), 4408 no pong before the next ping, 4029 over the open-socket quota, 4008 too slow a reader (all of them: docs/websocket-protocols.md).',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { id: string }; Querystring: { last_id?: string } }>) => {
      let attached: { client: LiveClient; key: string; subscribed: () => Promise<Record<string, unknown>> } | null = null;
      const auth = socketAuth(ctx, socket, req, async (p) => {
        const s = await sessions.getVisible(p, req.params.id);
        const key = speechSessionKey(s.id);
        const client = hub.attach(socket, [key]);
        if (!client) return;
        subscribeWithResume(hub, client, key, lastIdOf(req.query?.last_id), { session_id: s.id, status: s.status }, ctx.clock(), undefined, { sessionId: s.id });
        // A later subscribe reports the session as it is then (recording → completed).
        const subscribed = async () => {
          const now = await sessions.getVisible(p, s.id);
          return { session_id: now.id, status: now.status };
        };
        attached = { client, key, subscribed };
      });
      onAuthenticateMessages(socket, auth, async (msg) => {
        if (attached) await streamControl(hub, attached.client, attached.key, msg, attached.subscribed, ctx.clock);
      });
    },
  );
}
