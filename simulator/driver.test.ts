import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { runSimulator, type SimulatorOptions } from './driver.js';
import type { SyncReading } from './readings.js';
import { AttuneError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';

interface Recorded {
  method: string;
  url: string;
  authorization: string | undefined;
  body: any;
  /** Wall clock at receipt. */
  at: number;
  status: number;
}

/** What the fake server does with the n-th (1-based) sync request of a device. */
type SyncResponder = (deviceId: string, n: number) => { status: number; body?: unknown; headers?: Record<string, string> } | 'drop-connection';

/** A stand-in for the ingest API that records every request and answers like the real one. */
class FakeApi extends EventEmitter {
  readonly requests: Recorded[] = [];
  readonly app: FastifyInstance;
  baseUrl = '';
  private readonly registered = new Set<string>();
  private readonly syncCounts = new Map<string, number>();

  constructor(
    private readonly respondSync: SyncResponder = () => ({ status: 202 }),
    private readonly respondRegister: (deviceId: string) => number | undefined = () => undefined,
  ) {
    super();
    // Close keep-alive connections at close, so a test does not wait for their idle timeout.
    this.app = Fastify({ forceCloseConnections: true });
    const record = (req: { method: string; url: string; headers: Record<string, unknown>; body: unknown }, status: number) => {
      const r: Recorded = { method: req.method, url: req.url, authorization: req.headers.authorization as string | undefined, body: req.body, at: Date.now(), status };
      this.requests.push(r);
      this.emit('request', r);
    };
    this.app.post<{ Body: { device_id: string } }>('/v1/devices', async (req, reply) => {
      const forced = this.respondRegister(req.body.device_id);
      if (forced !== undefined) {
        record(req, forced);
        return reply.status(forced).send({ error: { code: 'unauthorized', message: 'bad token' } });
      }
      const status = this.registered.has(req.body.device_id) ? 200 : 201;
      this.registered.add(req.body.device_id);
      record(req, status);
      return reply.status(status).send({ ...req.body, user_id: 'x' });
    });
    this.app.post<{ Body: { device_id: string } }>('/v1/sessions', async (req, reply) => {
      record(req, 201);
      return reply.status(201).send({ id: `session-of-${req.body.device_id}`, state: 'active' });
    });
    this.app.post('/v1/sessions/:id/end', async (req, reply) => {
      record(req, 200);
      return reply.status(200).send({ status: 'ended' });
    });
    this.app.post<{ Params: { device_id: string }; Body: { readings: unknown[] } }>('/v1/devices/:device_id/sync', async (req, reply) => {
      const n = (this.syncCounts.get(req.params.device_id) ?? 0) + 1;
      this.syncCounts.set(req.params.device_id, n);
      const answer = this.respondSync(req.params.device_id, n);
      if (answer === 'drop-connection') {
        record(req, 0);
        reply.hijack();
        req.raw.socket.destroy();
        return;
      }
      record(req, answer.status);
      const body = answer.body ?? { accepted: req.body.readings.length, device_id: req.params.device_id };
      return reply.status(answer.status).headers(answer.headers ?? {}).send(body);
    });
  }

  async start(): Promise<this> {
    this.baseUrl = await this.app.listen({ port: 0, host: '127.0.0.1' });
    return this;
  }

  syncs(deviceId?: string): Recorded[] {
    return this.requests.filter((r) => r.url.endsWith('/sync') && (deviceId === undefined || r.url === `/v1/devices/${deviceId}/sync`));
  }

  /** Readings the server accepted, per device, in arrival order. */
  accepted(deviceId: string): SyncReading[] {
    return this.syncs(deviceId)
      .filter((r) => r.status >= 200 && r.status < 300)
      .flatMap((r) => r.body.readings as SyncReading[]);
  }

  /** Resolves when `predicate` holds for the recorded requests; rejects after `deadlineMs`. */
  async waitFor(predicate: (requests: Recorded[]) => boolean, deadlineMs = 10_000): Promise<void> {
    if (predicate(this.requests)) return;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), deadlineMs);
    try {
      while (!predicate(this.requests)) await once(this, 'request', { signal: ac.signal });
    } finally {
      clearTimeout(timer);
    }
  }
}

function capturedLogger() {
  const lines: any[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

const tokenFor = (userId: string, orgId: string) => `token:${userId}:${orgId}`;
const start = Date.UTC(2025, 5, 1, 9, 0, 0);
const isoMs = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function fastRun(api: FakeApi, extra: Partial<SimulatorOptions> = {}) {
  return runSimulator({ baseUrl: api.baseUrl, devices: 3, tokenFor, durationMs: 120_000, startTimeMs: start, seed: 7, log: silentLogger, ...extra });
}

test('fast mode: registers, opens a session and syncs well-formed readings for every device', async (t) => {
  const api = await new FakeApi().start();
  t.after(() => api.app.close());
  const began = Date.now();
  const stats = await fastRun(api);
  const wallMs = Date.now() - began;
  assert.ok(wallMs < 30_000, `120 s of data took ${wallMs} ms of wall time`);

  const meanHrs: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const deviceId = `sim-device-${i}`;
    const mine = api.requests.filter((r) => r.body?.device_id === deviceId || r.url === `/v1/devices/${deviceId}/sync`);
    for (const r of mine) {
      assert.equal(r.method, 'POST');
      assert.equal(r.authorization, `Bearer token:sim-user-${i}:sim-org`);
    }
    assert.equal(mine[0].url, '/v1/devices');
    assert.deepEqual(mine[0].body, { device_id: deviceId, name: `Simulated strap ${i}`, model: 'attune-sim', firmware: '1.0.0' });
    assert.equal(mine[1].url, '/v1/sessions');
    assert.deepEqual(mine[1].body, {
      device_id: deviceId,
      type: 'coherence',
      title: 'Simulated session',
      started_at: new Date(start).toISOString(),
      coherence_threshold: 0.5,
      threshold_duration_s: 30,
    });
    const ends = api.requests.filter((r) => r.url === `/v1/sessions/session-of-${deviceId}/end`);
    assert.equal(ends.length, 1);
    assert.deepEqual(ends[0].body, { ended_at: new Date(start + 120_000).toISOString() });
    assert.equal(ends[0].authorization, `Bearer token:sim-user-${i}:sim-org`);
    assert.ok(ends[0].at >= mine[mine.length - 1].at, 'the session ends after the last sync');
    const syncs = mine.slice(2);
    assert.ok(syncs.length > 100, `${syncs.length} syncs`);
    let previous = start;
    let previousBattery = 100;
    let contiguous = 0;
    let rrSum = 0;
    let rrCount = 0;
    for (const s of syncs) {
      assert.equal(s.url, `/v1/devices/${deviceId}/sync`);
      assert.equal(s.body.session_id, `session-of-${deviceId}`);
      assert.deepEqual(Object.keys(s.body).sort(), ['readings', 'session_id']);
      // batchIntervalMs 1000: one reading of about one second per request
      assert.equal(s.body.readings.length, 1);
      for (const r of s.body.readings as SyncReading[]) {
        assert.deepEqual(Object.keys(r).sort(), ['battery_level', 'hr', 'rr_intervals_ms', 'timestamp']);
        assert.match(r.timestamp, isoMs);
        const t = Date.parse(r.timestamp);
        assert.ok(t > previous && t <= start + 120_000, `timestamp ${r.timestamp} after ${new Date(previous).toISOString()}`);
        assert.ok(r.rr_intervals_ms.length >= 1 && r.rr_intervals_ms.length <= 4);
        for (const rr of r.rr_intervals_ms) assert.ok(Number.isInteger(rr) && rr >= 250 && rr <= 2500, `rr ${rr}`);
        const mean = r.rr_intervals_ms.reduce((a, b) => a + b, 0) / r.rr_intervals_ms.length;
        assert.ok(Math.abs(r.hr - 60000 / mean) <= 0.05, `hr ${r.hr} vs rr mean ${mean}`);
        assert.ok(r.battery_level <= previousBattery && r.battery_level > 0);
        // The intervals of a reading end at its timestamp: they add up to the time since the
        // previous reading unless contact was lost in between.
        if (t - previous === r.rr_intervals_ms.reduce((a, b) => a + b, 0)) contiguous++;
        rrSum += r.rr_intervals_ms.reduce((a, b) => a + b, 0);
        rrCount += r.rr_intervals_ms.length;
        previous = t;
        previousBattery = r.battery_level;
      }
    }
    assert.ok(contiguous >= syncs.length - 5, `${contiguous} of ${syncs.length} readings continue the previous one`);
    meanHrs.push(60000 / (rrSum / rrCount));
    const d = stats.perDevice[i - 1];
    assert.equal(d.deviceId, deviceId);
    assert.equal(d.outcome, 'completed');
    assert.equal(d.sessionId, `session-of-${deviceId}`);
    assert.equal(d.readingsSent, api.accepted(deviceId).length);
    assert.equal(d.beatsSent, rrCount);
  }
  // every simulated person has a heart of their own
  assert.equal(new Set(meanHrs.map((hr) => Math.round(hr))).size, 3, `mean HRs ${meanHrs}`);
  for (const hr of meanHrs) assert.ok(hr > 45 && hr < 95, `mean HR ${hr}`);
  assert.equal(stats.errors, 0);
  assert.equal(stats.devicesGaveUp, 0);
  assert.equal(stats.requests, api.requests.length);
  assert.equal(api.requests.length, 3 * 2 + api.syncs().length + 3);
  assert.equal(stats.readingsSent, api.syncs().reduce((s, r) => s + r.body.readings.length, 0));
});

test('the same seed sends the same readings (re-registration answered 200 is fine); another seed differs', async (t) => {
  const api = await new FakeApi().start();
  t.after(() => api.app.close());
  await fastRun(api, { devices: 2, durationMs: 30_000 });
  const first = api.accepted('sim-device-2');
  const registrations = api.requests.length;
  const again = await fastRun(api, { devices: 2, durationMs: 30_000 });
  assert.deepEqual(api.requests.filter((r) => r.url === '/v1/devices').map((r) => r.status), [201, 201, 200, 200]);
  assert.equal(again.devicesGaveUp, 0);
  const second = api.accepted('sim-device-2').slice(first.length);
  assert.ok(api.requests.length > registrations);
  assert.deepEqual(second, first);

  const other = await new FakeApi().start();
  t.after(() => other.app.close());
  await fastRun(other, { devices: 2, durationMs: 30_000, seed: 8 });
  assert.notDeepEqual(other.accepted('sim-device-2').map((r) => r.rr_intervals_ms), first.map((r) => r.rr_intervals_ms));
});

test('503, 429 and a dropped connection are retried with the same readings: nothing lost, nothing duplicated', async (t) => {
  const reference = await new FakeApi().start();
  t.after(() => reference.app.close());
  await fastRun(reference, { devices: 2, durationMs: 20_000 });

  const flaky = await new FakeApi((deviceId, n) => {
    if (deviceId !== 'sim-device-1') return { status: 202 };
    if (n === 3) return { status: 503, body: { error: { code: 'unavailable', message: 'bus is down' } } };
    if (n === 4) return { status: 429, body: { error: { code: 'rate_limited', message: 'slow down' } }, headers: { 'retry-after': '0' } };
    if (n === 7) return 'drop-connection';
    return { status: 202 };
  }).start();
  t.after(() => flaky.app.close());
  const { log, lines } = capturedLogger();
  const stats = await fastRun(flaky, { devices: 2, durationMs: 20_000, log, retry: { initialDelayMs: 20 } });

  for (const deviceId of ['sim-device-1', 'sim-device-2']) {
    assert.deepEqual(flaky.accepted(deviceId), reference.accepted(deviceId), deviceId);
  }
  const d1 = stats.perDevice[0];
  assert.equal(d1.outcome, 'completed');
  assert.equal(d1.errors, 3);
  assert.equal(d1.retries, 3);
  assert.equal(stats.perDevice[1].errors, 0);
  // the failed attempts carried the very readings that were later accepted
  const attempts = flaky.syncs('sim-device-1').map((r) => r.body.readings[0].timestamp);
  assert.equal(attempts[2], attempts[3]);
  assert.equal(attempts[3], attempts[4]);
  assert.equal(attempts[6], attempts[7]);
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 3);
  assert.equal(warnings[0].status, 503);
  assert.deepEqual(warnings[0].body, { error: { code: 'unavailable', message: 'bus is down' } });
  assert.equal(warnings[1].status, 429);
  assert.equal(warnings[2].status, undefined);
  assert.match(warnings[2].failure, /fetch failed|socket|closed/i);
});

test('a 400 on sync makes that device give up with a clear log line; the others carry on', async (t) => {
  const refusal = { error: { code: 'validation_error', message: 'invalid reading at index 0', details: [{ field: '/readings/0/hr', index: 0, reason: 'too high' }] } };
  const api = await new FakeApi((deviceId, n) => (deviceId === 'sim-device-2' && n === 5 ? { status: 400, body: refusal } : { status: 202 })).start();
  t.after(() => api.app.close());
  const { log, lines } = capturedLogger();
  const stats = await fastRun(api, { devices: 3, durationMs: 20_000, log, retry: { initialDelayMs: 20 } });

  assert.equal(api.syncs('sim-device-2').length, 5, 'no retry after the 400');
  assert.ok(api.syncs('sim-device-1').length > 15);
  assert.ok(api.syncs('sim-device-3').length > 15);
  assert.equal(stats.devicesGaveUp, 1);
  const d2 = stats.perDevice[1];
  assert.equal(d2.outcome, 'gave_up');
  assert.equal(d2.readingsSent, 4);
  assert.deepEqual(d2.failure, { step: 'sync', status: 400, message: 'server refused the sync request with 400', body: refusal });
  const errors = lines.filter((l) => l.level === 50);
  assert.ok(errors.some((l) => l.status === 400 && l.body?.error?.code === 'validation_error' && /refused with 400/.test(l.msg)), JSON.stringify(errors));
  assert.ok(errors.some((l) => l.device_id === 'sim-device-2' && /gives up/.test(l.msg)));
  // a device that gave up leaves its session alone; the others end theirs
  assert.deepEqual(api.requests.filter((r) => r.url.endsWith('/end')).map((r) => r.url).sort(), ['/v1/sessions/session-of-sim-device-1/end', '/v1/sessions/session-of-sim-device-3/end']);
});

test('a refused registration (401) stops the device before it opens a session', async (t) => {
  const api = await new FakeApi(undefined, (deviceId) => (deviceId === 'sim-device-1' ? 401 : undefined)).start();
  t.after(() => api.app.close());
  const stats = await fastRun(api, { devices: 2, durationMs: 5_000 });
  assert.equal(stats.perDevice[0].outcome, 'gave_up');
  assert.equal(stats.perDevice[0].failure?.step, 'register');
  assert.equal(stats.perDevice[0].failure?.status, 401);
  assert.equal(api.requests.filter((r) => r.body?.device_id === 'sim-device-1' || r.url.includes('sim-device-1')).length, 1);
  assert.equal(stats.perDevice[1].outcome, 'completed');
});

test('realtime mode uploads each batch once its time has passed, never ahead of the clock', async (t) => {
  const api = await new FakeApi().start();
  t.after(() => api.app.close());
  const began = Date.now();
  const common = { devices: 2, tokenFor, durationMs: 3000, batchIntervalMs: 500, startTimeMs: began, seed: 3, log: silentLogger };
  const stats = await runSimulator({ ...common, baseUrl: api.baseUrl, realtime: true });
  const wallMs = Date.now() - began;
  assert.ok(wallMs >= 2900, `3 s of realtime data took only ${wallMs} ms`);
  assert.equal(stats.devicesGaveUp, 0);
  // the same beats as fast mode sends for the same seed and start
  const fast = await new FakeApi().start();
  t.after(() => fast.app.close());
  await runSimulator({ ...common, baseUrl: fast.baseUrl, realtime: false });
  for (const deviceId of ['sim-device-1', 'sim-device-2']) {
    const syncs = api.syncs(deviceId);
    assert.ok(syncs.length >= 2, `${syncs.length} syncs`);
    for (const s of syncs) {
      for (const r of s.body.readings as SyncReading[]) {
        const t = Date.parse(r.timestamp);
        assert.ok(t > began && t <= s.at, `reading of ${r.timestamp} arrived at ${new Date(s.at).toISOString()}`);
        assert.ok(s.at - t < 2000, `reading ${s.at - t} ms old on arrival`);
      }
    }
    // spread over the run, not sent in a burst
    assert.ok(syncs[syncs.length - 1].at - syncs[0].at >= 1000, 'syncs spread over the run');
    const beats = (readings: SyncReading[]) => readings.flatMap((r) => r.rr_intervals_ms);
    assert.ok(beats(api.accepted(deviceId)).length >= 2);
    assert.deepEqual(beats(api.accepted(deviceId)), beats(fast.accepted(deviceId)));
  }
});

test('stops promptly on abort, in realtime and while backing off', async (t) => {
  const api = await new FakeApi((deviceId, n) => (deviceId === 'sim-device-2' && n >= 2 ? { status: 503 } : { status: 202 })).start();
  t.after(() => api.app.close());
  const ac = new AbortController();
  const run = runSimulator({ baseUrl: api.baseUrl, devices: 2, tokenFor, realtime: true, batchIntervalMs: 200, signal: ac.signal, log: silentLogger, retry: { initialDelayMs: 5000, maxDelayMs: 5000 }, profileOverrides: { gapsPerMinute: 0 } });
  // device 1 streaming, device 2 in a long back-off after its second sync failed
  await api.waitFor((rs) => rs.filter((r) => r.url === '/v1/devices/sim-device-1/sync').length >= 3 && rs.some((r) => r.url === '/v1/devices/sim-device-2/sync' && r.status === 503));
  const abortedAt = Date.now();
  ac.abort();
  const stats = await run;
  assert.ok(Date.now() - abortedAt < 1000, `stopped ${Date.now() - abortedAt} ms after abort`);
  assert.deepEqual(stats.perDevice.map((d) => d.outcome), ['stopped', 'stopped']);
  assert.equal(stats.perDevice[1].errors, 1);
  // Each device that got readings accepted ends its session once, where its data stops.
  for (const device of ['sim-device-1', 'sim-device-2']) {
    const accepted = api.requests.filter((r) => r.url === `/v1/devices/${device}/sync` && r.status === 202);
    const lastReadings = (accepted[accepted.length - 1].body as { readings: Array<{ timestamp: string }> }).readings;
    const ends = api.requests.filter((r) => r.url === `/v1/sessions/session-of-${device}/end`);
    assert.equal(ends.length, 1, device);
    // The last reading the device saw accepted (a response cut off by the abort is not known to it).
    const endedAt = Date.parse((ends[0].body as { ended_at: string }).ended_at);
    assert.ok(endedAt <= Date.parse(lastReadings[lastReadings.length - 1].timestamp), device);
    assert.ok(endedAt >= Date.parse((accepted[0].body as { readings: Array<{ timestamp: string }> }).readings[0].timestamp), device);
  }
  const seen = api.requests.length;
  await api.app.close(); // waits for anything still in flight
  assert.equal(api.requests.length, seen);
  assert.equal(stats.requests, seen);
});

test('options are checked: fast mode needs a duration', async () => {
  await assert.rejects(
    runSimulator({ baseUrl: 'http://127.0.0.1:1', devices: 0, tokenFor, log: silentLogger }),
    (e: unknown) => e instanceof AttuneError && e.code === 'validation_error' && e.details.map((d) => d.field).join() === 'devices,durationMs',
  );
});
