// Ping and idle timeouts of Attune's WebSockets (live ingest, live audio, the live fan-out).
// A client that vanishes without a close (a phone that lost its network, a killed process)
// leaves its TCP connection open for as long as the kernel keeps it; without a ping nothing
// notices, and a live-audio session would stay `recording` forever. So every socket is pinged
// every `pingIntervalMs`:
//   - a ping still unanswered when the next one is due closes the socket with 4408 and the
//     reason `ping_timeout: …` (4000 + HTTP 408, as the other application close codes);
//   - where an idle timeout is set (the ingest sockets), no message from the client for
//     `idleTimeoutMs` closes it with 4408 `idle_timeout: …`; pongs keep a socket from the
//     ping timeout, not from the idle one. The fan-out sockets only read authenticate
//     messages, so they have no idle timeout: answering pings keeps them.
// A socket the server has paused (back-pressure: it is not reading, so it cannot see pongs or
// messages) is never timed out while paused; its clocks restart when it resumes.
// A verdict is not given on the spot: a timer runs before the I/O that queued up while it
// waited, so a suspected timeout waits two turns of the event loop for a pong or message
// already sent, and half an interval more (once) when the timer fired half an interval late
// (a stalled process, which may not have read what the client sent in time).
// After the coded close the peer has `closeGraceMs` to answer the closing handshake; then the
// socket is destroyed, so its `close` event (where the routes end streams) comes promptly
// even when the peer is gone. Each socket has one timer, armed for its next ping or its idle
// deadline, whichever is first; a message only records its time. The timers and the clock
// are injectable, so tests need not wait out real intervals.
import type { WebSocket } from 'ws';
import type { Logger } from '../lib/log.js';

/** Close code of a socket closed for a missing pong or for idleness (HTTP 408 in the 4000-4999 application range). */
export const WS_TIMEOUT = 4408;

export type WsTimeoutReason = 'ping_timeout' | 'idle_timeout';

export interface WsTimeout {
  reason: WsTimeoutReason;
  /** The close frame's reason text, `<reason>: …` (at most 123 bytes). */
  text: string;
  /** How long the socket waited: the ping interval, or the idle timeout. */
  afterMs: number;
}

export interface HeartbeatTimers {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers (unref'd: a heartbeat never keeps the process alive) on performance.now(). */
export const realTimers: HeartbeatTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface HeartbeatOptions {
  pingIntervalMs: number;
  /** No message from the client for this long closes the socket; null for none (pongs alone keep it). */
  idleTimeoutMs: number | null;
  /** How long the peer has to answer the coded close before the socket is destroyed (default min(ping interval, 2 s)). */
  closeGraceMs?: number;
  timers?: HeartbeatTimers;
  /** The info line of a timeout; none when absent. */
  log?: Logger;
  /** Names the socket in the log line (e.g. `live-audio`). */
  name?: string;
  /** Called once, just before the coded close (e.g. to send an error message, or to end a stream). */
  onTimeout?: (t: WsTimeout) => void;
  /** Called with each ping (the fan-out sends its `heartbeat` envelope along). */
  onPing?: () => void;
}

/** The socket's ping and idle timers; `stop` ends them (they end by themselves when the socket closes). */
export interface Heartbeat {
  stop(): void;
  /** True once the socket was closed for a timeout. */
  readonly timedOut: WsTimeout | null;
}

/** The part of a ws WebSocket the heartbeat uses (a test may hand in a fake). */
export type HeartbeatSocket = Pick<WebSocket, 'ping' | 'close' | 'terminate' | 'on' | 'once' | 'off' | 'readyState' | 'OPEN' | 'isPaused'>;

/** Heartbeat settings from the live options (`config.live`: heartbeatMs, idleTimeoutMs). */
export function heartbeatSettings(live: { heartbeatMs: number; idleTimeoutMs?: number }, ingest: boolean): Pick<HeartbeatOptions, 'pingIntervalMs' | 'idleTimeoutMs'> {
  return { pingIntervalMs: live.heartbeatMs, idleTimeoutMs: ingest ? (live.idleTimeoutMs ?? DEFAULT_WS_IDLE_TIMEOUT_MS) : null };
}

/** Idle timeout of the ingest sockets when the configuration names none (ATTUNE_WS_IDLE_TIMEOUT_S's default). */
export const DEFAULT_WS_IDLE_TIMEOUT_MS = 60_000;

/** Event-loop turns a suspected timeout waits before its verdict. */
const CONFIRM_TURNS = 2;

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;

/** Starts pinging `socket`; see the module comment for the rules. */
export function watchSocket(socket: HeartbeatSocket, opts: HeartbeatOptions): Heartbeat {
  const timers = opts.timers ?? realTimers;
  const interval = opts.pingIntervalMs;
  const idle = opts.idleTimeoutMs;
  const grace = opts.closeGraceMs ?? Math.min(interval, 2_000);
  let lastMessageAt = timers.now();
  let nextPingAt = lastMessageAt + interval;
  let awaitingPong = false;
  let timer: unknown = null;
  let stopped = false;
  let graceTimer: unknown = null;
  let timedOut: WsTimeout | null = null;
  /** When the armed timer was due (its lateness tells a stalled process). */
  let dueAt = 0;
  /** Turns of the event loop given to a suspected timeout before the verdict. */
  let confirmTurns = 0;
  /** The verdict was put off once already because the process had stalled. */
  let stallDeferred = false;

  const onMessage = () => {
    lastMessageAt = timers.now();
  };
  const onPong = () => {
    awaitingPong = false;
  };
  const onClose = () => {
    stop();
    if (graceTimer !== null) timers.clearTimeout(graceTimer);
    graceTimer = null;
  };

  function stop(): void {
    if (stopped) return;
    stopped = true;
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
    socket.off('message', onMessage);
    socket.off('pong', onPong);
  }

  function arm(now: number): void {
    if (stopped) return;
    dueAt = idle === null ? nextPingAt : Math.min(nextPingAt, lastMessageAt + idle);
    timer = timers.setTimeout(tick, Math.max(0, dueAt - now));
  }

  function tick(): void {
    timer = null;
    if (stopped) return;
    const now = timers.now();
    if (socket.readyState !== socket.OPEN) return stop();
    if (socket.isPaused) {
      // The server is not reading this socket: pongs and messages wait in the kernel. Not the client's fault.
      lastMessageAt = now;
      awaitingPong = false;
      nextPingAt = now + interval;
      confirmTurns = 0;
      stallDeferred = false;
      return arm(now);
    }
    const idleOver = idle !== null && now - lastMessageAt >= idle;
    if (idleOver || (now >= nextPingAt && awaitingPong)) {
      // A process that stalled (GC, CPU starvation, a long synchronous task) for half an
      // interval or more may not have read a pong or message the client sent in time: the
      // verdict waits another half interval, once.
      if (confirmTurns === 0 && !stallDeferred && now - dueAt >= interval / 2) {
        stallDeferred = true;
        timer = timers.setTimeout(tick, interval / 2);
        return;
      }
      // A timer runs before the I/O that queued up meanwhile is read: two turns of the event
      // loop let a pong or a message already sent arrive (on loopback the peer may first have
      // to read our ping in the same process).
      if (confirmTurns < CONFIRM_TURNS) {
        confirmTurns++;
        timer = timers.setTimeout(tick, 0);
        return;
      }
    }
    confirmTurns = 0;
    stallDeferred = false;
    if (idleOver) {
      return expire({ reason: 'idle_timeout', text: `idle_timeout: no message for ${seconds(idle!)}`, afterMs: idle! });
    }
    if (now >= nextPingAt) {
      if (awaitingPong) return expire({ reason: 'ping_timeout', text: `ping_timeout: no pong within ${seconds(interval)}`, afterMs: interval });
      awaitingPong = true;
      nextPingAt = now + interval;
      socket.ping();
      opts.onPing?.();
    }
    arm(now);
  }

  function expire(t: WsTimeout): void {
    stop();
    timedOut = t;
    opts.log?.info({ code: 'request_timeout', reason: t.reason, close_code: WS_TIMEOUT, after_ms: t.afterMs, socket: opts.name }, `websocket closed: ${t.text}`);
    try {
      opts.onTimeout?.(t);
    } finally {
      if (socket.readyState === socket.OPEN) socket.close(WS_TIMEOUT, t.text);
      // A vanished peer never answers the close: destroy the socket after the grace, so its close event comes now, not after ws's 30 s.
      graceTimer = timers.setTimeout(() => {
        graceTimer = null;
        socket.terminate();
      }, grace);
    }
  }

  socket.on('message', onMessage);
  socket.on('pong', onPong);
  socket.once('close', onClose);
  arm(lastMessageAt);
  return {
    stop,
    get timedOut() {
      return timedOut;
    },
  };
}
