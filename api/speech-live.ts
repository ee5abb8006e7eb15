// Live speech events: the WebSocket /v1/speech-sessions/{id}/stream. Each API process reads
// the speech-events topic as its own ephemeral consumer group (newest records only, never
// committing: live is live) and forwards each SpeechEvent to the sockets watching its
// session as `{id, type, timestamp, payload}`, with type asr:token, metrics:update or
// processing:status and the event's payload_json as payload. Clients share LiveClient's
// bounded send queue with the heart live hub: a client that does not keep up is dropped
// (close code 4008) instead of slowing the others.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Topics, type Bus, type Subscription, type TopicNames } from '../bus/types.js';
import type { Logger } from '../lib/log.js';
import { iso } from '../lib/time.js';
import type { SpeechEvent, SpeechEventType } from '../schemas/registry/schemas.js';
import { Scopes } from './auth.js';
import { decodeRecord, type AppContext, type RecordCodec } from './context.js';
import { socketAuth } from './http-auth.js';
import { LiveClient, disconnectSlowClient, heartbeatClients, onFirstMessages, type LiveStats } from './live.js';

/** A SpeechEvent as decoded from the bus (absent optionals take their Avro defaults). */
export type SpeechEventRecord = Required<SpeechEvent>;

export interface SpeechEnvelope {
  id: string;
  type: SpeechEventType | 'subscribed' | 'heartbeat';
  timestamp: string;
  payload: Record<string, unknown>;
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
  return { id: e.event_id, type: e.type, timestamp: iso(e.occurred_at), payload };
}

export interface SpeechLiveHubOptions {
  log: Logger;
  /** Messages a client may have waiting before it is dropped as a slow consumer. */
  maxBufferedMessages: number;
  heartbeatMs: number;
  clock: () => number;
}

export class SpeechLiveHub {
  private readonly bySession = new Map<string, Set<LiveClient>>();
  private readonly all = new Set<LiveClient>();
  private subscription: Subscription | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  readonly stats: LiveStats = { clients: 0, delivered: 0, slowDisconnects: 0 };

  constructor(private readonly opts: SpeechLiveHubOptions) {}

  /** Starts reading the speech-events topic from the bus (only records published from now on). */
  async start(bus: Bus, codec: RecordCodec, topics: TopicNames = Topics): Promise<void> {
    const groupId = `attune-speech-live-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.subscription = await bus.subscribe({
      groupId,
      topics: [topics.speechEvents],
      fromBeginning: false,
      ephemeral: true,
      eachBatch: async (batch) => {
        if (this.bySession.size === 0) return;
        for (const r of batch.records) {
          try {
            let rec = decodeRecord<SpeechEventRecord>(codec, r.value);
            if (rec instanceof Promise) rec = await rec;
            this.publish(rec);
          } catch (err) {
            this.opts.log.warn({ err, topic: batch.topic, offset: r.offset }, 'speech live: undecodable record skipped');
          }
        }
      },
    });
    this.heartbeat = setInterval(() => heartbeatClients(this.all, this.opts.clock()), this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Sends the event to the clients of its session. */
  publish(e: SpeechEventRecord): void {
    const set = this.bySession.get(e.session_id);
    if (!set) return;
    const text = JSON.stringify(speechEventEnvelope(e));
    for (const c of set) {
      c.send(text);
      this.stats.delivered++;
    }
  }

  /** Registers a socket for a session's events; it is removed when it closes. Null when it closed already. */
  attach(socket: WebSocket, sessionId: string): LiveClient | null {
    // The client may have gone while its authentication was checked: registering it would leak it.
    if (socket.readyState !== socket.OPEN) return null;
    const client = new LiveClient(socket, this.opts.maxBufferedMessages, (c) => {
      if (disconnectSlowClient(c, this.opts.log)) this.stats.slowDisconnects++;
    });
    let set = this.bySession.get(sessionId);
    if (!set) this.bySession.set(sessionId, (set = new Set()));
    set.add(client);
    this.all.add(client);
    this.stats.clients = this.all.size;
    socket.on('pong', () => {
      client.alive = true;
    });
    socket.once('close', () => {
      client.closed = true;
      this.all.delete(client);
      this.stats.clients = this.all.size;
      set.delete(client);
      if (set.size === 0 && this.bySession.get(sessionId) === set) this.bySession.delete(sessionId);
    });
    return client;
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.subscription?.stop();
    this.subscription = null;
    for (const c of this.all) c.socket.close(1001, 'server shutting down');
  }
}

export async function registerSpeechLiveRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hub = ctx.speechLive;
  const sessions = ctx.speechSessions;
  if (!hub || !sessions) throw new Error('the live speech stream needs a SpeechLiveHub and a SpeechSessionsRepository');

  app.get<{ Params: { id: string } }>(
    '/v1/speech-sessions/:id/stream',
    {
      websocket: true,
      schema: {
        tags: ['speech'],
        summary:
          'Live events of one speech session (WebSocket): asr:token (partial and final transcript), metrics:update (at least once a second while audio flows) and processing:status (stage, progress, eta). ' +
          'Authenticate with Authorization: Bearer, ?token=, or a first {"type":"authenticate","token":"<jwt>"} message; needs read:speech. ' +
          'The first message is {"type":"subscribed","payload":{"session_id","status"}}; then envelopes {"id","type","timestamp","payload"}. ' +
          'Close codes: 4401 unauthenticated, 4403 missing scope, 4404 no such session (or not yours), 4008 too slow a reader.',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { id: string } }>) => {
      const auth = socketAuth(ctx, socket, req, Scopes.readSpeech, async (p) => {
        const s = await sessions.getVisible(p, req.params.id);
        if (!hub.attach(socket, s.id)) return;
        socket.send(
          JSON.stringify({ id: randomUUID(), type: 'subscribed', timestamp: iso(ctx.clock()), payload: { session_id: s.id, status: s.status } } satisfies SpeechEnvelope),
        );
      });
      onFirstMessages(socket, auth);
    },
  );
}
