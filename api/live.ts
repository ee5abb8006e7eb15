// Live fan-out. Each API process reads the coherence-window and session-event topics as its
// own consumer group (starting at the newest records, never committing: live is live) and
// pushes envelopes `{id, type, timestamp, payload}` to the WebSocket clients that may see
// them. Every client has a bounded send queue: a client that does not keep up is
// disconnected (close code 4008) instead of stalling the others or growing memory.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Topics, type Bus, type Subscription, type TopicNames } from '../bus/types.js';
import type { Logger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import { iso } from '../lib/time.js';
import type { CoherenceWindow, SessionEvent } from '../schemas/registry/schemas.js';
import { Scopes, canAccess } from './auth.js';
import { decodeRecord, type AppContext, type RecordCodec } from './context.js';
import { CloseCodes, socketAuth } from './http-auth.js';

export interface Envelope {
  id: string;
  type: 'coherence_update' | 'session_event' | 'heartbeat' | 'subscribed';
  timestamp: string;
  payload: Record<string, unknown>;
}

/** Records as decoded from the bus: every field present (absent optionals take their Avro defaults). */
export type CoherenceWindowRecord = Required<CoherenceWindow>;
export type SessionEventRecord = Required<SessionEvent>;

export function coherenceEnvelope(w: CoherenceWindowRecord, now: number): Envelope {
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

export function sessionEventEnvelope(e: SessionEventRecord, now: number): Envelope {
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

/** Bytes the socket may hold unsent before messages wait in the client's own queue. */
const SOCKET_HIGH_WATER_BYTES = 256 * 1024;

/**
 * One WebSocket client. Messages go straight to the socket while it drains; a burst the
 * kernel cannot take at once waits in a queue of at most `maxQueued` messages, sent as the
 * socket drains. A client whose queue overflows is not reading: it is disconnected, and
 * nothing it does slows the hub or the other clients. Shared by every live hub (heart and
 * speech).
 */
export class LiveClient {
  alive = true;
  closed = false;
  private readonly queue: string[] = [];
  private waiting = false;

  constructor(
    readonly socket: WebSocket,
    readonly maxQueued: number,
    private readonly onOverflow: (c: LiveClient) => void,
  ) {}

  send(text: string): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    if (this.queue.length === 0 && this.socket.bufferedAmount < SOCKET_HIGH_WATER_BYTES) {
      this.socket.send(text);
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.queue.length = 0;
      this.onOverflow(this);
      return;
    }
    this.queue.push(text);
    this.awaitDrain();
  }

  /** Sends queued messages when the TCP socket has drained. */
  private awaitDrain(): void {
    if (this.waiting) return;
    this.waiting = true;
    const flush = () => {
      this.waiting = false;
      while (!this.closed && this.queue.length > 0 && this.socket.bufferedAmount < SOCKET_HIGH_WATER_BYTES) {
        this.socket.send(this.queue.shift()!);
      }
      if (this.queue.length > 0 && !this.closed) this.awaitDrain();
    };
    const raw = (this.socket as unknown as { _socket?: NodeJS.EventEmitter })._socket;
    if (raw) raw.once('drain', flush);
    else setImmediate(flush);
  }
}

/**
 * Pings every client and sends it a heartbeat envelope; a client that has not answered the
 * previous ping (its `alive` was not set again by a pong) is terminated.
 */
export function heartbeatClients(clients: Iterable<LiveClient>, now: number): void {
  const text = JSON.stringify({ id: randomUUID(), type: 'heartbeat', timestamp: iso(now), payload: {} } satisfies Envelope);
  for (const c of clients) {
    if (!c.alive) {
      // No pong since the last ping: the peer is gone without a close.
      c.socket.terminate();
      continue;
    }
    c.alive = false;
    c.socket.ping();
    c.send(text);
  }
}

/** Disconnects a client whose queue overflowed (close code 4008); false when it was closed already. */
export function disconnectSlowClient(c: LiveClient, log: Logger): boolean {
  if (c.closed) return false;
  c.closed = true;
  log.warn('live: disconnecting a client whose send buffer overflowed');
  // close() would queue behind the very data the client is not reading; terminate frees it now.
  c.socket.close(CloseCodes.slowConsumer, 'slow consumer');
  setTimeout(() => c.socket.terminate(), 1000).unref();
  return true;
}

export interface LiveStats {
  clients: number;
  delivered: number;
  slowDisconnects: number;
}

export class LiveHub {
  private readonly byUser = new Map<string, Set<LiveClient>>();
  private readonly bySession = new Map<string, Set<LiveClient>>();
  private readonly all = new Set<LiveClient>();
  private subscription: Subscription | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  readonly stats: LiveStats = { clients: 0, delivered: 0, slowDisconnects: 0 };

  constructor(
    private readonly opts: { log: Logger; maxBufferedMessages: number; heartbeatMs: number; clock: () => number },
  ) {}

  /** Starts reading the live topics from the bus. */
  async start(bus: Bus, codec: RecordCodec, topics: TopicNames = Topics): Promise<void> {
    const groupId = `attune-live-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.subscription = await bus.subscribe({
      groupId,
      topics: [topics.coherenceWindows, topics.sessionEvents],
      fromBeginning: false,
      ephemeral: true,
      eachBatch: async (batch) => {
        // Nobody listening: nothing to decode.
        if (this.all.size === 0) return;
        for (const r of batch.records) {
          try {
            let rec = decodeRecord<Record<string, unknown>>(codec, r.value);
            if (rec instanceof Promise) rec = await rec;
            if (batch.topic === topics.coherenceWindows) this.publishWindow(rec as unknown as CoherenceWindowRecord);
            else this.publishEvent(rec as unknown as SessionEventRecord);
          } catch (err) {
            // A record the API cannot decode is the worker's to dead-letter; live skips it.
            this.opts.log.warn({ err, topic: batch.topic, offset: r.offset }, 'live: undecodable record skipped');
          }
        }
      },
    });
    this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  publishWindow(w: CoherenceWindowRecord): void {
    this.dispatch(w.org_id, w.user_id, w.session_id, () => coherenceEnvelope(w, this.opts.clock()));
  }

  publishEvent(e: SessionEventRecord): void {
    this.dispatch(e.org_id, e.user_id, e.session_id, () => sessionEventEnvelope(e, this.opts.clock()));
  }

  private dispatch(orgId: string, userId: string, sessionId: string, envelope: () => Envelope): void {
    const targets = [this.byUser.get(`${orgId}/${userId}`), this.bySession.get(sessionId)];
    if (!targets[0] && !targets[1]) return;
    const text = JSON.stringify(envelope());
    for (const set of targets) {
      if (!set) continue;
      for (const c of set) {
        c.send(text);
        this.stats.delivered++;
      }
    }
  }

  private beat(): void {
    heartbeatClients(this.all, this.opts.clock());
  }

  /** Registers a socket for a user's or a session's updates; it is removed when it closes. */
  attach(socket: WebSocket, key: { user?: { orgId: string; userId: string }; sessionId?: string }): LiveClient | null {
    // The client may have gone while its authentication was being checked: its 'close'
    // has fired already, so registering it now would leak it.
    if (socket.readyState !== socket.OPEN) return null;
    const client = new LiveClient(socket, this.opts.maxBufferedMessages, (c) => this.overflow(c));
    const sets: Set<LiveClient>[] = [];
    const add = (map: Map<string, Set<LiveClient>>, k: string) => {
      let set = map.get(k);
      if (!set) map.set(k, (set = new Set()));
      set.add(client);
      sets.push(set);
    };
    if (key.user) add(this.byUser, `${key.user.orgId}/${key.user.userId}`);
    if (key.sessionId) add(this.bySession, key.sessionId);
    this.all.add(client);
    this.stats.clients = this.all.size;
    socket.on('pong', () => {
      client.alive = true;
    });
    socket.once('close', () => {
      client.closed = true;
      this.all.delete(client);
      this.stats.clients = this.all.size;
      for (const set of sets) set.delete(client);
      if (key.user) this.prune(this.byUser, `${key.user.orgId}/${key.user.userId}`);
      if (key.sessionId) this.prune(this.bySession, key.sessionId);
    });
    return client;
  }

  private prune(map: Map<string, Set<LiveClient>>, k: string): void {
    if (map.get(k)?.size === 0) map.delete(k);
  }

  private overflow(c: LiveClient): void {
    if (disconnectSlowClient(c, this.opts.log)) this.stats.slowDisconnects++;
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.subscription?.stop();
    for (const c of this.all) c.socket.close(1001, 'server shutting down');
  }
}

export async function registerLiveRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const hub = ctx.live;
  if (!hub) throw new Error('live routes need a LiveHub');

  app.get(
    '/v1/coherence',
    {
      websocket: true,
      schema: {
        tags: ['live'],
        summary: "Live coherence_update and session_event messages for all of the caller's sessions (WebSocket).",
      },
    },
    (socket: WebSocket, req: FastifyRequest) => {
      const auth = socketAuth(ctx, socket, req, Scopes.readCoherence, async (p) => {
        hub.attach(socket, { user: { orgId: p.orgId, userId: p.userId } });
        socket.send(JSON.stringify({ id: randomUUID(), type: 'subscribed', timestamp: iso(ctx.clock()), payload: { user_id: p.userId } } satisfies Envelope));
      });
      onFirstMessages(socket, auth);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/sessions/:id/stream',
    {
      websocket: true,
      schema: {
        tags: ['live'],
        summary: "Live coherence_update and session_event messages for one session (WebSocket).",
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { id: string } }>) => {
      const auth = socketAuth(ctx, socket, req, Scopes.readSessions, async (p) => {
        const s = await ctx.sessions.get(req.params.id);
        if (!s || !canAccess(p, s)) throw new AttuneError('not_found', `session ${req.params.id} not found`);
        hub.attach(socket, { sessionId: s.id });
        socket.send(JSON.stringify({ id: randomUUID(), type: 'subscribed', timestamp: iso(ctx.clock()), payload: { session_id: s.id } } satisfies Envelope));
      });
      onFirstMessages(socket, auth);
    },
  );
}

/** Live sockets only read the authenticate message; anything after it is ignored. */
export function onFirstMessages(socket: WebSocket, auth: ReturnType<typeof socketAuth>): void {
  let chain: Promise<unknown> = auth.initial;
  socket.on('message', (data: Buffer) => {
    chain = chain.then(async () => {
      if (auth.principal) return;
      let msg: unknown = null;
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        msg = null;
      }
      await auth.handleFirstMessage(msg);
    });
  });
}
