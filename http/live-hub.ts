// Live fan-out, shared by every live WebSocket route (heart coherence, speech events). A hub
// reads some bus topics as its own ephemeral consumer group (newest records only, never
// committing: live is live), turns each record into an envelope `{id, type, timestamp,
// payload}` and sends it to the sockets attached under the record's keys (a user, a session).
// What a record's keys and envelope are is the route's business (api/live.ts,
// api/speech-live.ts); this module owns the sockets: bounded send queues, heartbeats, slow
// consumers, and clean shutdown.
//
// Also, for feeds that ask for it (the session-sync document's parts, issue 12):
//  - a client's format: a socket may get each envelope rendered its own way (the coherence
//    platform's `auf-protocol-v1` messages, api/live.ts); one text per format per record;
//  - client heartbeats: a `{"type":"heartbeat"}` message is answered with a `ping` message,
//    and a client that has sent one and then sends none for the document's connection timeout
//    (120 s: its three missed 30 s heartbeats and one interval's grace) is closed with 4408
//    (`heartbeat_timeout`); clients that never send one are kept by WebSocket pongs alone;
//  - resume: the feed's envelopes are kept under their resume keys (a session, a user) in a
//    bounded buffer, the last `resumePerKey` of each of at most `resumeMaxKeys` keys (least
//    recently written dropped first), even while nobody listens; a client that reconnects
//    with the id of the last message it saw gets the ones after it before live ones.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { WebSocket } from 'ws';
import type { Bus, Subscription } from '../bus/types.js';
import type { Logger } from '../lib/log.js';
import { iso } from '../lib/time.js';
import { AttuneError } from '../lib/errors.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import { CloseCodes, type SocketAuth } from './http-auth.js';
import { WS_TIMEOUT, realTimers, watchSocket, type HeartbeatTimers, type WsTimeoutReason } from './ws-heartbeat.js';
import { socketErrorMessage, toAttuneError } from './errors.js';

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
  /** How this client's envelopes are written; JSON of the envelope when absent. */
  render: EnvelopeRenderer | null = null;
  /** Ids of envelopes sent to this client (the last RECENT_IDS), so a replay sends none twice. */
  private readonly sentIds = new Set<string>();
  /** While held (a replay being prepared), live messages wait here, in order. */
  private held: Array<{ text: string; id?: string; supersededBy?: string }> | null = null;
  /**
   * Keys this client unsubscribed from (the session-sync document's `unsubscribe`): a message
   * routed under any of them is not sent to it, whichever of its keys it came by (a user's
   * socket muting one of the user's sessions). Null when none, the common case.
   */
  muted: Set<string> | null = null;

  constructor(
    readonly socket: WebSocket,
    readonly maxQueued: number,
    private readonly onOverflow: (c: LiveClient) => void,
  ) {}

  /** Sends an envelope (its id noted, rendered in the client's format); `now` passes a hold (a replay). */
  sendEnvelope(env: Envelope, now = false): void {
    this.send(renderWith(this.render, env), env.id, now);
  }

  /** Stops the messages routed under `keys` (unsubscribe), until unmute. */
  mute(keys: readonly string[]): void {
    this.muted ??= new Set();
    for (const k of keys) this.muted.add(k);
  }

  /** Lets the messages routed under `keys` through again (a subscribe after an unsubscribe). */
  unmute(keys: readonly string[]): void {
    if (this.muted === null) return;
    for (const k of keys) this.muted.delete(k);
    if (this.muted.size === 0) this.muted = null;
  }

  /** Whether this client unsubscribed from one of `keys`. */
  mutes(keys: readonly string[]): boolean {
    const m = this.muted;
    if (m === null) return false;
    for (const k of keys) if (m.has(k)) return true;
    return false;
  }

  /** Whether an envelope with this id went to this client already. */
  hasSent(id: string): boolean {
    return this.sentIds.has(id);
  }

  /** Live messages wait until release() (a replay goes first). */
  hold(): void {
    this.held ??= [];
  }

  /** Sends what waited while held, skipping ids sent meanwhile (by the replay). */
  release(): void {
    const held = this.held;
    this.held = null;
    for (const m of held ?? []) if (m.id === undefined || !this.sentIds.has(m.id)) this.send(m.text, m.id, false, m.supersededBy);
  }

  /**
   * Sends a message (`now` passes a hold). `supersededBy`: the id of a message that makes this
   * one pointless once this client has had it (a provisional window's final one): then this
   * one is dropped, also when it was held and the other went out meanwhile.
   */
  send(text: string, id?: string, now = false, supersededBy?: string): void {
    if (supersededBy !== undefined && this.sentIds.has(supersededBy)) return;
    if (this.held && !now) {
      this.held.push({ text, id, supersededBy });
      return;
    }
    if (id !== undefined) {
      this.sentIds.add(id);
      if (this.sentIds.size > RECENT_IDS) this.sentIds.delete(this.sentIds.values().next().value as string);
    }
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

/** Ids a client remembers having been sent (a replay skips them). */
const RECENT_IDS = 1024;

/** A non-ws consumer of a hub's envelopes (LiveHub.listen). */
export type LiveListener = (env: Envelope) => void;

/** Writes an envelope in a client's format. */
export type EnvelopeRenderer = (env: Envelope) => string;

const renderWith = (r: EnvelopeRenderer | null, env: Envelope) => (r ? r(env) : JSON.stringify(env));

/**
 * How long after its last heartbeat a client that sends them is timed out. The session-sync
 * document says both "missing 3 consecutive heartbeats = connection timeout" (30 s apart) and,
 * in its limits table, "connection timeout: 120 seconds (no heartbeat)"; the larger one is kept
 * so that a client written against either reading is never cut off early.
 */
export const DEFAULT_CLIENT_HEARTBEAT_TIMEOUT_MS = 120_000;

export interface LiveStats {
  clients: number;
  delivered: number;
  slowDisconnects: number;
}

/** Where a record goes: the keys of the sockets that see it, and its envelope (built once, only when someone listens or resumes). */
export interface LiveDelivery {
  keys: readonly string[];
  /**
   * Builds the envelope. It may be called late (at a resume, minutes after the record was
   * read), so what it holds must not depend on when it is called: a route takes the receipt
   * time when it routes the record, not inside this function.
   */
  envelope: () => Envelope;
  /** Keys the envelope is kept under for resume (a session, a user); none: not kept. */
  resumeKeys?: readonly string[];
  /** An envelope id that, once a client has had it, makes this one pointless for that client (LiveClient.send). */
  supersededBy?: string;
}

export interface LiveHubOptions {
  log: Logger;
  /** Messages a client may have waiting before it is dropped as a slow consumer. */
  maxBufferedMessages: number;
  /** Ping interval: a socket that has not answered a ping when the next is due is closed with 4408 (http/ws-heartbeat.ts). */
  heartbeatMs: number;
  clock: () => number;
  /** The heartbeat's timers (tests); real ones when absent. Also the client heartbeats' timers. */
  heartbeatTimers?: HeartbeatTimers;
  /** Time after a client's last heartbeat message at which it is timed out (default DEFAULT_CLIENT_HEARTBEAT_TIMEOUT_MS). */
  clientHeartbeatTimeoutMs?: number;
  /** Envelopes kept per resume key (default 60: 5 min of a session's 5 s windows; a session's and its user's keys share the envelope objects). */
  resumePerKey?: number;
  /** Resume keys kept (default 2,000; the least recently written is dropped first). */
  resumeMaxKeys?: number;
}

export interface LiveFeed<R> {
  /** Names the consumer group (with host, pid and a random suffix) and the log lines. */
  name: string;
  /** Keep envelopes for resume (under each delivery's resumeKeys), read even while nobody listens. */
  resume?: boolean;
  /** The bus topics to read. */
  topics: readonly string[];
  /** The delivery of one decoded record read from `topic`; null to drop it. */
  route(record: R, topic: string): LiveDelivery | null;
  /** Whether a batch of `topic` is worth decoding now (default: always); false skips it whole. */
  wanted?(topic: string): boolean;
}

/** A resume buffer's entry: the envelope once built, and how to build it. */
interface KeptEnvelope {
  env: Envelope | null;
  make: () => Envelope;
  /** This process's clock when the record was routed (a resume from a message that is not kept: missed()). */
  at: number;
  /** The hub's count of kept envelopes when this one was kept (its position: a resume from a heartbeat or ping, missed()). */
  seq: number;
}

/** Heartbeat and ping ids a hub remembers with its position when it sent them (a resume from one: LiveHub.missed). */
const MAX_MARKS = 20_000;

function envelopeOf(k: KeptEnvelope): Envelope {
  return (k.env ??= k.make());
}

export class LiveHub<R = unknown> {
  private readonly byKey = new Map<string, Set<LiveClient>>();
  private readonly all = new Set<LiveClient>();
  /** Listeners by key: transports other than ws (socket.io, api/speech-socketio.ts) fed by this hub's one consumer. */
  private readonly listenersByKey = new Map<string, Set<LiveListener>>();
  private listenerCount = 0;
  private subscription: Subscription | null = null;
  readonly stats: LiveStats = { clients: 0, delivered: 0, slowDisconnects: 0 };
  /**
   * Resume buffers by key; Map order is write recency (a key written is moved to the end).
   * Kept lazily: the envelope (ISO times, a payload object) is built only if a client resumes
   * through it or one is listening when it arrives. Built eagerly it cost 0.8–1.7 µs a reading
   * in bench:kafka with nobody resuming (H6's CPU profile), for what is almost never read.
   */
  private readonly resume = new Map<string, KeptEnvelope[]>();
  /** Per resume key, when the newest envelope dropped from its buffer was routed (none dropped: absent). */
  private readonly droppedThrough = new Map<string, number>();
  /** Envelopes kept so far (each kept envelope's `seq`). */
  private seq = 0;
  /** Per resume key, the seq of the newest envelope dropped from its buffer. */
  private readonly droppedSeq = new Map<string, number>();
  /** Per key whose buffer was let go whole (resumeMaxKeys), the newest seq it held (the last MAX_MARKS keys). */
  private readonly evictedSeq = new Map<string, number>();
  /** The newest seq of the evicted keys forgotten from evictedSeq. */
  private evictedForgottenSeq = 0;
  /**
   * The ids of the heartbeat and ping envelopes sent lately (the last MAX_MARKS), with the
   * hub's seq when each was sent. A client's last message is often one of them (a heartbeat
   * comes with every ping); one that resumes from it gets the kept envelopes after it, not
   * the whole buffer again (missed()).
   */
  private readonly marks = new Map<string, number>();
  private readonly heartbeats = new WeakMap<LiveClient, ClientHeartbeat>();

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
        // Nobody listening and nothing to keep for resume: nothing to decode.
        if (this.all.size === 0 && this.listenerCount === 0 && !this.feed.resume) return;
        if (this.feed.wanted && !this.feed.wanted(batch.topic)) return;
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

  /** Sends one record to the clients attached under its keys (and keeps it for resume). */
  publish(record: R, topic: string): void {
    const delivery = this.feed.route(record, topic);
    if (!delivery) return;
    let env: Envelope | null = null;
    let kept: KeptEnvelope | null = null;
    if (this.feed.resume && delivery.resumeKeys?.length) {
      // One entry shared by the keys (a session's and its user's), so it is built at most once.
      kept = { env: null, make: delivery.envelope, at: this.opts.clock(), seq: ++this.seq };
      for (const key of delivery.resumeKeys) this.keep(key, kept);
    }
    // One text per format (clients of one format share it).
    const texts = new Map<EnvelopeRenderer | null, string>();
    for (const key of delivery.keys) {
      const set = this.byKey.get(key);
      if (!set) continue;
      env ??= kept ? envelopeOf(kept) : delivery.envelope();
      for (const c of set) {
        if (c.muted !== null && c.mutes(delivery.keys)) continue;
        let text = texts.get(c.render);
        if (text === undefined) texts.set(c.render, (text = renderWith(c.render, env)));
        c.send(text, env.id, false, delivery.supersededBy);
        this.stats.delivered++;
      }
    }
    for (const key of delivery.keys) {
      const set = this.listenersByKey.get(key);
      if (!set) continue;
      env ??= kept ? envelopeOf(kept) : delivery.envelope();
      for (const l of set) {
        try {
          l(env);
        } catch (err) {
          this.opts.log.warn({ err }, `${this.feed.name}: a live listener failed`);
        }
        this.stats.delivered++;
      }
    }
  }

  /**
   * Calls `listener` with each envelope routed under one of `keys` (not a replay, not the
   * ws sockets' heartbeats: the transport keeps its own connection alive and bounds its own
   * queue). Returns the function that removes it.
   */
  listen(keys: readonly string[], listener: LiveListener): () => void {
    for (const key of keys) {
      let set = this.listenersByKey.get(key);
      if (!set) this.listenersByKey.set(key, (set = new Set()));
      set.add(listener);
    }
    this.listenerCount++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.listenerCount--;
      for (const key of keys) {
        const set = this.listenersByKey.get(key);
        if (!set) continue;
        set.delete(listener);
        if (set.size === 0) this.listenersByKey.delete(key);
      }
    };
  }

  /** Listeners registered with listen() and not removed. */
  get listeners(): number {
    return this.listenerCount;
  }

  private keep(key: string, env: KeptEnvelope): void {
    const perKey = this.opts.resumePerKey ?? 60;
    let buf = this.resume.get(key);
    if (buf) this.resume.delete(key);
    else buf = [];
    this.resume.set(key, buf);
    buf.push(env);
    if (buf.length > perKey) {
      const dropped = buf.splice(0, buf.length - perKey);
      this.droppedThrough.set(key, dropped[dropped.length - 1].at);
      this.droppedSeq.set(key, dropped[dropped.length - 1].seq);
    }
    const maxKeys = this.opts.resumeMaxKeys ?? 2_000;
    while (this.resume.size > maxKeys) {
      const oldest = this.resume.keys().next().value as string;
      const gone = this.resume.get(oldest)!;
      if (gone.length > 0) {
        this.evictedSeq.delete(oldest);
        this.evictedSeq.set(oldest, gone[gone.length - 1].seq);
        if (this.evictedSeq.size > MAX_MARKS) {
          const [forgotten, seq] = this.evictedSeq.entries().next().value as [string, number];
          this.evictedSeq.delete(forgotten);
          this.evictedForgottenSeq = Math.max(this.evictedForgottenSeq, seq);
        }
      }
      this.resume.delete(oldest);
      this.droppedThrough.delete(oldest);
      this.droppedSeq.delete(oldest);
    }
  }

  /** Envelopes kept under `key` (oldest first). */
  buffered(key: string): readonly Envelope[] {
    return (this.resume.get(key) ?? []).map(envelopeOf);
  }

  /**
   * The envelopes kept under `key` after the one with id `lastId` (all of them when it is not
   * among them) that `client` was not sent already (subscribeWithResume sends them). `sinceMs`: when `lastId` is not kept, the
   * instant of that message if the route can tell it (a group socket's sync_pulse id carries
   * it): the kept envelopes routed after it are sent instead of all of them, `found` unless one
   * routed after it was dropped from the buffer. A heartbeat or ping id this hub sent (marked())
   * gets the envelopes kept after it was sent.
   */
  missed(client: LiveClient, key: string, lastId: string, sinceMs: number | null = null): { envelopes: Envelope[]; found: boolean } {
    const kept = this.resume.get(key) ?? [];
    const at = kept.findIndex((k) => envelopeOf(k).id === lastId);
    const mark = at < 0 ? this.marks.get(lastId) : undefined;
    if (mark !== undefined) {
      // A heartbeat or ping this hub sent: everything kept before it went to that socket ahead
      // of it (a client's messages go out in order), so the ones kept after it are what it
      // missed. Complete unless one of those was dropped, or the key's buffer was let go since.
      const after = kept.filter((k) => k.seq > mark).map(envelopeOf);
      const evicted = this.evictedSeq.get(key) ?? this.evictedForgottenSeq;
      return { envelopes: after.filter((e) => !client.hasSent(e.id)), found: (this.droppedSeq.get(key) ?? 0) <= mark && evicted <= mark };
    }
    if (at < 0 && sinceMs !== null) {
      const after = kept.filter((k) => k.at > sinceMs).map(envelopeOf);
      // Complete unless an envelope routed after that instant was dropped (or nothing is kept: the key may have been let go).
      const dropped = this.droppedThrough.get(key);
      return { envelopes: after.filter((e) => !client.hasSent(e.id)), found: kept.length > 0 && (dropped === undefined || dropped <= sinceMs) };
    }
    return { envelopes: kept.slice(at + 1).map(envelopeOf).filter((e) => !client.hasSent(e.id)), found: at >= 0 };
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
    // The coded error before a timeout's close (docs/websocket-protocols.md).
    const sendTimeout = (text: string, reason: WsTimeoutReason | 'heartbeat_timeout') =>
      client.send(JSON.stringify(socketErrorMessage({ code: 'request_timeout', message: `socket closed: ${text}`, details: [{ reason }] }, null, this.opts.clock())));
    const clientBeat = new ClientHeartbeat(socket, this.opts.clientHeartbeatTimeoutMs ?? DEFAULT_CLIENT_HEARTBEAT_TIMEOUT_MS, this.opts.heartbeatTimers ?? realTimers, (text) => {
      this.opts.log.info({ code: 'request_timeout', reason: 'heartbeat_timeout', close_code: WS_TIMEOUT, socket: this.feed.name }, `websocket closed: ${text}`);
      sendTimeout(text, 'heartbeat_timeout');
    });
    this.heartbeats.set(client, clientBeat);
    // Pong only: these sockets read nothing but authenticate messages, so a quiet client that
    // answers pings is kept (no idle timeout); each ping comes with a heartbeat envelope.
    watchSocket(socket, {
      pingIntervalMs: this.opts.heartbeatMs,
      idleTimeoutMs: null,
      timers: this.opts.heartbeatTimers,
      log: this.opts.log,
      name: this.feed.name,
      onPing: () => client.sendEnvelope(this.marked(heartbeatEnvelopeOf(this.opts.clock()))),
      // As before every coded close (docs/websocket-protocols.md), though a peer that stopped answering rarely reads it.
      onTimeout: (t) => sendTimeout(t.text, t.reason),
    });
    socket.once('close', () => {
      client.closed = true;
      clientBeat.stop();
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

  /** A client's `heartbeat` message: answered with a `ping` message; from now on the heartbeat timeout applies to the socket. */
  heartbeat(client: LiveClient): void {
    this.heartbeats.get(client)?.beat();
    client.sendEnvelope(this.marked(pingEnvelope(this.opts.clock())));
  }

  /** Notes a heartbeat or ping envelope's id with the hub's position (a resume from it: missed()). */
  private marked<E extends Envelope>(env: E): E {
    if (!this.feed.resume) return env;
    this.marks.set(env.id, this.seq);
    if (this.marks.size > MAX_MARKS) this.marks.delete(this.marks.keys().next().value as string);
    return env;
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = null;
    for (const c of this.all) c.socket.close(1001, 'server shutting down');
  }
}

/** The `ping` envelope answering a client's heartbeat message (session-sync document: payload {timestamp}). */
export function pingEnvelope(now: number): Envelope<'ping'> {
  const timestamp = iso(now);
  return { id: randomUUID(), type: 'ping', timestamp, payload: { timestamp } };
}

/**
 * The session-sync document's client heartbeats on one socket: off until the client's first
 * heartbeat; then `timeoutMs` without one closes the socket with 4408
 * (`heartbeat_timeout: …`), after `onTimeout` (which sends the coded error message).
 */
export class ClientHeartbeat {
  private timer: unknown = null;
  private stopped = false;

  constructor(
    private readonly socket: Pick<WebSocket, 'close' | 'readyState' | 'OPEN'>,
    private readonly timeoutMs: number,
    private readonly timers: HeartbeatTimers,
    private readonly onTimeout: (text: string) => void,
  ) {}

  beat(): void {
    if (this.stopped) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    const limit = this.timeoutMs;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (this.stopped || this.socket.readyState !== this.socket.OPEN) return;
      this.stopped = true;
      const text = `heartbeat_timeout: no heartbeat for ${limit / 1000} s`;
      try {
        this.onTimeout(text);
      } finally {
        this.socket.close(WS_TIMEOUT, text);
      }
    }, limit);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The `heartbeat` envelope sent with each ping. */
export function heartbeatEnvelopeOf(now: number): Envelope<'heartbeat'> {
  return { id: randomUUID(), type: 'heartbeat', timestamp: iso(now), payload: {} };
}

/** The `heartbeat` envelope sent with each ping, as text. */
export function heartbeatEnvelope(now: number): string {
  return JSON.stringify(heartbeatEnvelopeOf(now));
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

/** A control message's fields, bare (`{type, sessionId}`) or in an envelope (`{type, payload: {…}}`). */
export function controlOf(msg: unknown): { type: string; fields: Record<string, unknown> } | null {
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return null;
  const m = msg as Record<string, unknown>;
  if (typeof m.type !== 'string') return null;
  const payload = m.payload && typeof m.payload === 'object' && !Array.isArray(m.payload) ? (m.payload as Record<string, unknown>) : {};
  return { type: m.type, fields: { ...m, ...payload } };
}

/** A message id given as lastVersion / last_id: a string, or a number written as one. */
export function lastIdOf(v: unknown): string | null {
  if (typeof v === 'string' && v !== '' && v.length <= 200) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/**
 * The session-sync document's `connected` envelope, sent once a live socket is authenticated,
 * right after Attune's own `subscribed`: `{sessionId, serverTime}` (no sessionId on a socket that
 * streams all of a user's sessions).
 */
export function connectedEnvelope(sessionId: string | null, now: number): Envelope<'connected'> {
  const serverTime = iso(now);
  return { id: randomUUID(), type: 'connected', timestamp: serverTime, payload: sessionId === null ? { serverTime } : { sessionId, serverTime } };
}

/**
 * Sends `subscribed` (with how a resume went: `last_id`, `replayed`, `complete`), at a socket's
 * first subscription (`connected` given) the session-sync document's `connected`, and then the
 * envelopes kept under `key` after `lastId` that the client missed, ahead of anything held
 * (the session-sync document's resume from the last seen message). `subscribed` stays the first
 * message, as Attune's clients have read it since before `connected` (2026-12-06).
 */
export function subscribeWithResume(
  hub: LiveHub<never>,
  c: LiveClient,
  key: string,
  lastId: string | null,
  payload: Record<string, unknown>,
  now: number,
  sinceOf: (lastId: string) => number | null = () => null,
  connected?: { sessionId: string | null },
): void {
  const plan = lastId === null ? { envelopes: [], found: false } : hub.missed(c, key, lastId, sinceOf(lastId));
  const info = lastId === null ? {} : { last_id: lastId, replayed: plan.envelopes.length, complete: plan.found };
  c.sendEnvelope({ id: randomUUID(), type: 'subscribed', timestamp: iso(now), payload: { ...payload, ...info } }, true);
  if (connected) c.sendEnvelope(connectedEnvelope(connected.sessionId, now), true);
  for (const env of plan.envelopes) c.sendEnvelope(env, true);
}

/**
 * The control messages of a socket that streams one key: `heartbeat` → `ping` (and from then on
 * missed heartbeats time it out), `subscribe` with `lastVersion` / `last_id` → `subscribed` and
 * what it missed (subscribeWithResume), `unsubscribe` → no more messages of the stream (the key,
 * or `mutedKeys` when given: its provisional key too) until the next `subscribe`. Other messages
 * (the document's `ack`: resume goes by the id a client last saw) are ignored.
 *
 * `subscribed` reads the stream's state now (a session's status changes while a socket is
 * open); live messages wait while it does, so that the missed ones still go first. When it
 * fails (the session was deleted meanwhile) the client gets the error as a message.
 */
export async function streamControl(
  hub: LiveHub<never>,
  c: LiveClient,
  key: string,
  msg: unknown,
  subscribed: () => Record<string, unknown> | Promise<Record<string, unknown>>,
  now: () => number,
  sinceOf?: (lastId: string) => number | null,
  mutedKeys?: readonly string[],
): Promise<void> {
  const m = controlOf(msg);
  if (!m) return;
  if (m.type === 'heartbeat') return hub.heartbeat(c);
  if (m.type === 'unsubscribe') return c.mute(mutedKeys ?? [key]);
  if (m.type !== 'subscribe') return;
  c.unmute(mutedKeys ?? [key]);
  const lastId = lastIdOf(m.fields.lastVersion ?? m.fields.last_id);
  c.hold();
  try {
    const payload = await subscribed();
    subscribeWithResume(hub, c, key, lastId, payload, now(), sinceOf);
  } catch (err) {
    c.sendEnvelope(socketErrorMessage(toAttuneError(err as Error), null, now()), true);
  } finally {
    c.release();
  }
}

/**
 * Live sockets read authenticate messages: the first one (when the upgrade carried no token)
 * and fresh ones before the token expires. Once authenticated, any other message goes to
 * `onControl` (a route's heartbeat and subscribe messages) when given, else it is ignored.
 */
export function onAuthenticateMessages(socket: WebSocket, auth: SocketAuth, onControl?: (msg: unknown) => void | Promise<void>): void {
  let chain: Promise<unknown> = auth.initial;
  // Checks run one at a time; a client that sends faster than tokens can be checked is not
  // reading the protocol, and is closed rather than queued without bound.
  let pending = 0;
  let refused = false;
  socket.on('message', (data: Buffer) => {
    if (++pending > MAX_PENDING_AUTH_MESSAGES) {
      if (refused) return;
      refused = true;
      // As before every coded close (docs/websocket-protocols.md): the error message, then the close.
      const e = new AttuneError('rate_limited', `more than ${MAX_PENDING_AUTH_MESSAGES} messages waiting to be read on this socket; send fewer at once`, [{ reason: 'rate_limited' }]);
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(socketErrorMessage(e, null, Date.now())));
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
      if (auth.principal) {
        if (!(await auth.handleReauthentication(msg)) && onControl) await onControl(msg);
      } else await auth.handleFirstMessage(msg);
    }).finally(() => {
      pending--;
    });
  });
}

/** Messages a live (read-only) socket may have waiting for their token checks. */
const MAX_PENDING_AUTH_MESSAGES = 16;
