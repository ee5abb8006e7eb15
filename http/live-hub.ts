// Live fan-out, shared by every live WebSocket route (heart coherence, speech events). A hub
// reads some bus topics as its own ephemeral consumer group (newest records only, never
// committing: live is live), turns each record into an envelope `{id, type, timestamp,
// payload}` and sends it to the sockets attached under the record's keys (a user, a session).
// What a record's keys and envelope are is the route's business (api/live.ts,
// api/speech-live.ts); this module owns the sockets: bounded send queues, heartbeats, slow
// consumers, and clean shutdown.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { WebSocket } from 'ws';
import type { Bus, Subscription } from '../bus/types.js';
import type { Logger } from '../lib/log.js';
import { iso } from '../lib/time.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import { CloseCodes, type SocketAuth } from './http-auth.js';
import { watchSocket, type HeartbeatTimers } from './ws-heartbeat.js';

/** What every live message looks like on the socket. */
export interface Envelope<T extends string = string> {
  id: string;
  type: T;
  timestamp: string;
  payload: Record<string, unknown>;
}

/** Bytes the socket may hold unsent before messages wait in the client's own queue. */
const SOCKET_HIGH_WATER_BYTES = 256 * 1024;

/**
 * One WebSocket client. Messages go straight to the socket while it drains; a burst the
 * kernel cannot take at once waits in a queue of at most `maxQueued` messages, sent as the
 * socket drains. A client whose queue overflows is not reading: it is disconnected, and
 * nothing it does slows the hub or the other clients.
 */
export class LiveClient {
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

export interface LiveStats {
  clients: number;
  delivered: number;
  slowDisconnects: number;
}

/** Where a record goes: the keys of the sockets that see it, and its envelope (built once, only when someone listens). */
export interface LiveDelivery {
  keys: readonly string[];
  envelope: () => Envelope;
}

export interface LiveHubOptions {
  log: Logger;
  /** Messages a client may have waiting before it is dropped as a slow consumer. */
  maxBufferedMessages: number;
  /** Ping interval: a socket that has not answered a ping when the next is due is closed with 4408 (http/ws-heartbeat.ts). */
  heartbeatMs: number;
  clock: () => number;
  /** The heartbeat's timers (tests); real ones when absent. */
  heartbeatTimers?: HeartbeatTimers;
}

export interface LiveFeed<R> {
  /** Names the consumer group (with host, pid and a random suffix) and the log lines. */
  name: string;
  /** The bus topics to read. */
  topics: readonly string[];
  /** The delivery of one decoded record read from `topic`; null to drop it. */
  route(record: R, topic: string): LiveDelivery | null;
}

export class LiveHub<R = unknown> {
  private readonly byKey = new Map<string, Set<LiveClient>>();
  private readonly all = new Set<LiveClient>();
  private subscription: Subscription | null = null;
  readonly stats: LiveStats = { clients: 0, delivered: 0, slowDisconnects: 0 };

  constructor(
    private readonly opts: LiveHubOptions,
    private readonly feed: LiveFeed<R>,
  ) {}

  /** Starts reading the feed's topics from the bus (only records published from now on). */
  async start(bus: Bus, codec: Codec): Promise<void> {
    const groupId = `attune-${this.feed.name}-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.subscription = await bus.subscribe({
      groupId,
      topics: [...this.feed.topics],
      fromBeginning: false,
      ephemeral: true,
      eachBatch: async (batch) => {
        // Nobody listening: nothing to decode.
        if (this.all.size === 0) return;
        for (const r of batch.records) {
          try {
            let rec = decodeRecord<R>(codec, r.value);
            if (rec instanceof Promise) rec = await rec;
            this.publish(rec, batch.topic);
          } catch (err) {
            // A record the API cannot decode is the worker's to dead-letter; live skips it.
            this.opts.log.warn({ err, topic: batch.topic, offset: r.offset }, `${this.feed.name}: undecodable record skipped`);
          }
        }
      },
    });
  }

  /** Sends one record to the clients attached under its keys. */
  publish(record: R, topic: string): void {
    const delivery = this.feed.route(record, topic);
    if (!delivery) return;
    let text: string | null = null;
    for (const key of delivery.keys) {
      const set = this.byKey.get(key);
      if (!set) continue;
      text ??= JSON.stringify(delivery.envelope());
      for (const c of set) {
        c.send(text);
        this.stats.delivered++;
      }
    }
  }

  /**
   * Registers a socket under `keys`; it is removed when it closes. Null when the socket closed
   * already (the client may have gone while its authentication was checked: registering it
   * would leak it).
   */
  attach(socket: WebSocket, keys: readonly string[]): LiveClient | null {
    if (socket.readyState !== socket.OPEN) return null;
    const client = new LiveClient(socket, this.opts.maxBufferedMessages, (c) => {
      if (disconnectSlowClient(c, this.opts.log)) this.stats.slowDisconnects++;
    });
    for (const key of keys) {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(client);
    }
    this.all.add(client);
    this.stats.clients = this.all.size;
    // Pong only: these sockets read nothing but authenticate messages, so a quiet client that
    // answers pings is kept (no idle timeout); each ping comes with a heartbeat envelope.
    watchSocket(socket, {
      pingIntervalMs: this.opts.heartbeatMs,
      idleTimeoutMs: null,
      timers: this.opts.heartbeatTimers,
      log: this.opts.log,
      name: this.feed.name,
      onPing: () => client.send(heartbeatEnvelope(this.opts.clock())),
      // As before every coded close (docs/websocket-protocols.md), though a peer that stopped answering rarely reads it.
      onTimeout: (t) => client.send(JSON.stringify({ type: 'error', error: { code: 'request_timeout', message: `socket closed: ${t.text}`, details: [{ reason: t.reason }] } })),
    });
    socket.once('close', () => {
      client.closed = true;
      this.all.delete(client);
      this.stats.clients = this.all.size;
      for (const key of keys) {
        const set = this.byKey.get(key);
        if (!set) continue;
        set.delete(client);
        if (set.size === 0) this.byKey.delete(key);
      }
    });
    return client;
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = null;
    for (const c of this.all) c.socket.close(1001, 'server shutting down');
  }
}

/** The `heartbeat` envelope sent with each ping. */
export function heartbeatEnvelope(now: number): string {
  return JSON.stringify({ id: randomUUID(), type: 'heartbeat', timestamp: iso(now), payload: {} } satisfies Envelope);
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

/** The first message after attaching: which stream the socket now receives. */
export function subscribedEnvelope(now: number, payload: Record<string, unknown>): string {
  return JSON.stringify({ id: randomUUID(), type: 'subscribed', timestamp: iso(now), payload } satisfies Envelope);
}

/**
 * Live sockets only read authenticate messages: the first one (when the upgrade carried no
 * token) and fresh ones before the token expires; anything else is ignored.
 */
export function onAuthenticateMessages(socket: WebSocket, auth: SocketAuth): void {
  let chain: Promise<unknown> = auth.initial;
  // Checks run one at a time; a client that sends faster than tokens can be checked is not
  // reading the protocol, and is closed rather than queued without bound.
  let pending = 0;
  socket.on('message', (data: Buffer) => {
    if (++pending > MAX_PENDING_AUTH_MESSAGES) {
      socket.close(CloseCodes.rateLimited, 'rate_limited');
      return;
    }
    chain = chain.then(async () => {
      let msg: unknown = null;
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        msg = null;
      }
      if (auth.principal) await auth.handleReauthentication(msg);
      else await auth.handleFirstMessage(msg);
    }).finally(() => {
      pending--;
    });
  });
}

/** Messages a live (read-only) socket may have waiting for their token checks. */
const MAX_PENDING_AUTH_MESSAGES = 16;
