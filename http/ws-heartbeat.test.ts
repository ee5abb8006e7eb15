// The heartbeat's rules on a fake socket and a manual clock (no real waiting): a missing pong
// by the next ping closes with 4408 ping_timeout; no message for the idle timeout closes with
// 4408 idle_timeout; pongs keep a socket without an idle timeout; messages and pongs keep an
// ingest socket; a paused socket is never timed out; after the close the socket is destroyed
// once the grace is over; a closed socket's timers end. Real sockets: ws-heartbeat.attune.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ConfigError, loadConfig } from '../lib/config.js';
import { WS_TIMEOUT, heartbeatSettings, watchSocket, type HeartbeatSocket, type HeartbeatTimers, type WsTimeout } from './ws-heartbeat.js';

class ManualTimers implements HeartbeatTimers {
  private t = 0;
  private seq = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.due.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.due.delete(h as number);
  };
  get pending(): number {
    return this.due.size;
  }
  /** A stalled process: the clock jumps to `to`, then every timer due by then runs late, at `to`. */
  stallTo(to: number): void {
    this.t = to;
    for (;;) {
      const next = [...this.due].filter((e) => e[1].at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.due.delete(next[0]);
      next[1].fn();
    }
  }
  /** Moves the clock to `to`, running every timer due on the way in order. */
  advanceTo(to: number): void {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.due) if (e[1].at <= to && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = to;
  }
}

class FakeSocket extends EventEmitter {
  readonly OPEN = 1 as const;
  readyState: 0 | 1 | 2 | 3 = 1;
  isPaused = false;
  pings: number[] = [];
  closes: Array<{ code?: number; reason?: string }> = [];
  terminated = 0;
  /** autoPong: answer each ping at once (a microtask); pongAfterMs: answer it this much later on the manual clock. */
  constructor(private readonly timers: ManualTimers, private readonly autoPong: boolean, private readonly pongAfterMs: number | null = null) {
    super();
  }
  ping(): void {
    this.pings.push(this.timers.now());
    if (this.autoPong) queueMicrotask(() => this.emit('pong'));
    const after = this.pongAfterMs;
    // Scheduled after the heartbeat's own next timer, so a pong due with it comes just after it.
    if (after !== null) queueMicrotask(() => this.timers.setTimeout(() => this.emit('pong'), after));
  }
  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = 2;
  }
  terminate(): void {
    this.terminated++;
    if (this.readyState !== 3) {
      this.readyState = 3;
      this.emit('close', 1006, Buffer.alloc(0));
    }
  }
}

const as = (s: FakeSocket) => s as unknown as HeartbeatSocket;
/** Lets queued pongs (microtasks) arrive. */
const flush = () => new Promise<void>((r) => setImmediate(r));

async function advance(timers: ManualTimers, to: number, step = 10): Promise<void> {
  for (let t = timers.now() + step; t <= to; t += step) {
    timers.advanceTo(t);
    await flush();
  }
}

describe('ws heartbeat', () => {
  test('a socket that stops answering pings is closed with 4408 ping_timeout when the next ping is due, then destroyed after the grace', async () => {
    const timers = new ManualTimers();
    const s = new FakeSocket(timers, false);
    const seen: WsTimeout[] = [];
    const hb = watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: null, closeGraceMs: 50, timers, onTimeout: (t) => seen.push(t) });
    await advance(timers, 199);
    assert.deepEqual(s.pings, [100]);
    assert.equal(s.closes.length, 0, 'not closed before the next ping is due');
    await advance(timers, 200);
    assert.deepEqual(s.closes, [{ code: WS_TIMEOUT, reason: 'ping_timeout: no pong within 0.1 s' }]);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].reason, 'ping_timeout');
    assert.equal(hb.timedOut?.reason, 'ping_timeout');
    assert.equal(s.terminated, 0);
    await advance(timers, 250);
    assert.equal(s.terminated, 1, 'destroyed when the peer did not answer the close');
    assert.equal(timers.pending, 0, 'no timer left');
  });

  test('a pong that arrives just after a late timer (a busy event loop) still keeps the socket', async () => {
    const timers = new ManualTimers();
    // Each pong arrives exactly when the next ping is due, after the heartbeat's timer has fired.
    const s = new FakeSocket(timers, false, 100);
    watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: null, timers });
    await advance(timers, 2_000, 100);
    assert.equal(s.closes.length, 0);
    assert.equal(s.pings.length, 20);
  });

  test('a stalled process: a pong read only after the stall keeps the socket; with none it is closed half an interval later', async () => {
    for (const pongAfterStall of [true, false]) {
      const timers = new ManualTimers();
      const s = new FakeSocket(timers, false);
      watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: null, timers });
      await advance(timers, 100);
      assert.deepEqual(s.pings, [100]);
      // Stalled from just after the ping until 260: the verdict due at 200 runs 60 ms late.
      timers.stallTo(260);
      assert.equal(s.closes.length, 0, 'no verdict given on a stalled turn');
      if (pongAfterStall) s.emit('pong');
      await advance(timers, 309);
      assert.equal(s.closes.length, 0);
      await advance(timers, 320);
      if (pongAfterStall) {
        assert.equal(s.closes.length, 0, 'the pong read after the stall counts');
        assert.equal(s.pings.at(-1), 310, 'and the next ping goes out at the deferred verdict');
      } else {
        assert.equal(s.closes.length, 1, 'still no pong half an interval after the stall: closed');
        assert.equal(s.closes[0].reason, 'ping_timeout: no pong within 0.1 s');
      }
    }
  });

  test('pongs keep a socket without an idle timeout open however long it sends nothing', async () => {
    const timers = new ManualTimers();
    const s = new FakeSocket(timers, true);
    watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: null, timers });
    await advance(timers, 10_000);
    assert.equal(s.pings.length, 100);
    assert.equal(s.closes.length, 0);
  });

  test('an ingest socket that answers pings but sends nothing is closed with 4408 idle_timeout at the idle deadline', async () => {
    const timers = new ManualTimers();
    const s = new FakeSocket(timers, true);
    watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: 350, timers });
    await advance(timers, 340);
    s.emit('message', Buffer.from('{}'), false);
    await advance(timers, 680);
    assert.equal(s.closes.length, 0, 'a message at 340 ms moved the deadline to 690 ms');
    await advance(timers, 690);
    assert.deepEqual(s.closes, [{ code: WS_TIMEOUT, reason: 'idle_timeout: no message for 0.35 s' }]);
  });

  test('an active client (messages and pongs) is never closed', async () => {
    const timers = new ManualTimers();
    const s = new FakeSocket(timers, true);
    watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: 300, timers });
    for (let t = 250; t <= 20_000; t += 250) {
      await advance(timers, t);
      s.emit('message', Buffer.from('{}'), false);
    }
    assert.equal(s.closes.length, 0);
    assert.ok(s.pings.length >= 199);
  });

  test('a socket the server paused is not timed out; its clocks restart when it resumes', async () => {
    const timers = new ManualTimers();
    const s = new FakeSocket(timers, false);
    watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: 300, timers });
    s.isPaused = true;
    await advance(timers, 5_000);
    assert.equal(s.closes.length, 0);
    assert.equal(s.pings.length, 0, 'no ping to a socket whose pongs cannot be read');
    s.isPaused = false;
    // Resumed at 5000: the next ping at ≤ 5100, unanswered, closes at the one after.
    await advance(timers, 5_300);
    assert.equal(s.closes.length, 1);
    assert.equal(s.closes[0].reason, 'ping_timeout: no pong within 0.1 s');
  });

  test('a socket that closes on its own leaves no timer behind, and is never closed again', async () => {
    const timers = new ManualTimers();
    const s = new FakeSocket(timers, false);
    watchSocket(as(s), { pingIntervalMs: 100, idleTimeoutMs: 300, timers });
    await advance(timers, 150);
    s.readyState = 3;
    s.emit('close', 1000, Buffer.alloc(0));
    assert.equal(timers.pending, 0);
    await advance(timers, 1_000);
    assert.equal(s.closes.length, 0);
    assert.equal(s.terminated, 0);
  });
});

test('configuration: ping every ATTUNE_WS_HEARTBEAT_MS (15 s), ingest sockets idle after ATTUNE_WS_IDLE_TIMEOUT_S (60 s), fan-out sockets never idle', () => {
  const live = loadConfig({}).live;
  assert.deepEqual(heartbeatSettings(live, true), { pingIntervalMs: 15_000, idleTimeoutMs: 60_000 });
  assert.deepEqual(heartbeatSettings(live, false), { pingIntervalMs: 15_000, idleTimeoutMs: null });
  const short = loadConfig({ ATTUNE_WS_HEARTBEAT_MS: '250', ATTUNE_WS_IDLE_TIMEOUT_S: '2' }).live;
  assert.deepEqual(heartbeatSettings(short, true), { pingIntervalMs: 250, idleTimeoutMs: 2_000 });
  for (const bad of ['0', '-1', '1.5', 'soon', '86401']) {
    assert.throws(() => loadConfig({ ATTUNE_WS_IDLE_TIMEOUT_S: bad }), (e: unknown) => e instanceof ConfigError && e.variable === 'ATTUNE_WS_IDLE_TIMEOUT_S');
  }
});
