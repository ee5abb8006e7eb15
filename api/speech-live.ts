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
import { LiveHub, onAuthenticateMessages, subscribedEnvelope, type Envelope, type LiveHubOptions } from '../http/live-hub.js';

export type SpeechEnvelope = Envelope<SpeechEventType>;

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
  return { id: e.event_id, type: e.type, timestamp: iso(e.occurred_at), payload };
}

const speechSessionKey = (sessionId: string) => `speech-session:${sessionId}`;

/** The hub of the live speech stream: each speech event to the sockets of its session. */
export function createSpeechLiveHub(opts: LiveHubOptions, topics: TopicNames = Topics): LiveHub<SpeechEventRecord> {
  return new LiveHub<SpeechEventRecord>(opts, {
    name: 'speech-live',
    topics: [topics.speechEvents],
    route: (e) => ({ keys: [speechSessionKey(e.session_id)], envelope: () => speechEventEnvelope(e) }),
  });
}

export async function registerSpeechLiveRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hub = ctx.speechLive;
  const sessions = ctx.speechSessions;
  if (!hub || !sessions) throw new Error('the live speech stream needs a SpeechLiveHub and a SpeechSessionsRepository');

  app.get<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id/stream',
    {
      config: { auth: { scope: Scopes.readSpeech, socket: true } },
      websocket: true,
      schema: {
        tags: ['speech'],
        summary:
          'Live events of one speech session (WebSocket): asr:token (partial and final transcript), metrics:update (at least once a second while audio flows) and processing:status (stage, progress, eta). ' +
          'Authenticate with Authorization: Bearer, ?token=, or a first {"type":"authenticate","token":"<jwt>"} message; needs read:speech. ' +
          'The first message is {"type":"subscribed","payload":{"session_id","status"}}; then envelopes {"id","type","timestamp","payload"}. ' +
          'Close codes: 4401 unauthenticated, 4403 missing scope, 4404 no such session (or not yours), 4408 no pong before the next ping, 4029 over the open-socket quota, 4008 too slow a reader (all of them: docs/websocket-protocols.md).',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { id: string } }>) => {
      const auth = socketAuth(ctx, socket, req, async (p) => {
        const s = await sessions.getVisible(p, req.params.id);
        if (!hub.attach(socket, [speechSessionKey(s.id)])) return;
        socket.send(subscribedEnvelope(ctx.clock(), { session_id: s.id, status: s.status }));
      });
      onAuthenticateMessages(socket, auth);
    },
  );
}
