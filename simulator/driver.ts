// Drives Attune's public ingest API with simulated heart-rate straps: each device
// registers, opens a coherence session and then uploads its beats batch by batch,
// either in real time (a batch when its last second has passed on the wall clock) or as
// fast as the server accepts (tests, benchmarks). Failed uploads are retried with the
// same readings, so back-pressure from the server delays data but does not lose it.
import { AttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { defaultRetryPolicy, postWithRetry, type PostOutcome, type RequestCounters, type RetryPolicy } from './http-client.js';
import { Mulberry32, deriveSeed } from '../lib/prng.js';
import { simulatedDevices, type SimulatedDevice } from './profiles.js';
import { Battery } from './readings.js';
import { uploadBeats } from './upload.js';
import { RrGenerator, type RrProfile } from './rr-generator.js';

export interface SimulatorOptions {
  /** API root, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Number of devices: `sim-device-1` … of users `sim-user-1` … in org `sim-org`. */
  devices: number;
  /** Bearer token for a simulated user (asked before every request). */
  tokenFor: (userId: string, orgId: string) => string;
  /** Event time each upload covers, ms. Default 1000. */
  batchIntervalMs?: number;
  /** Upload on the wall clock (true) or as fast as the server accepts (false, the default). */
  realtime?: boolean;
  /** Event time to simulate, ms. Required unless realtime (which then runs until `signal`). */
  durationMs?: number;
  signal?: AbortSignal;
  log: Logger;
  /** Seed of every random choice; the same seed sends the same readings. Default 1. */
  seed?: number;
  /**
   * Event time of the start, ms since the epoch. Default: now, or now − durationMs when not
   * realtime. In realtime mode a start in the past is sent as fast as accepted, then the
   * device keeps pace with the clock.
   */
  startTimeMs?: number;
  /** Applied over every device's generated profile (e.g. `{ gapsPerMinute: 0 }`). */
  profileOverrides?: Partial<RrProfile>;
  retry?: Partial<RetryPolicy>;
  /** Readings per sync request at most (a realtime device catching up sends several). Default 600. */
  maxReadingsPerRequest?: number;
  /** End each device's session (`POST /v1/sessions/{id}/end`) once its duration is done. Default true. */
  endSessions?: boolean;
}

/** The requests a device makes, in order. */
export type Step = 'register' | 'session' | 'sync' | 'end';

export type DeviceOutcome = 'completed' | 'stopped' | 'gave_up';

export interface DeviceStats extends RequestCounters {
  deviceId: string;
  userId: string;
  sessionId: string | null;
  readingsSent: number;
  beatsSent: number;
  outcome: DeviceOutcome;
  /** Why the device gave up. */
  failure?: { step: Step; status?: number; message: string; body?: unknown };
}

export interface SimulatorStats extends RequestCounters {
  devices: number;
  readingsSent: number;
  beatsSent: number;
  devicesGaveUp: number;
  elapsedMs: number;
  perDevice: DeviceStats[];
}

interface RunContext {
  baseUrl: string;
  tokenFor: SimulatorOptions['tokenFor'];
  batchIntervalMs: number;
  realtime: boolean;
  startTimeMs: number;
  endTimeMs: number;
  signal?: AbortSignal;
  log: Logger;
  retry: RetryPolicy;
  maxReadingsPerRequest: number;
  profileOverrides: Partial<RrProfile>;
  endSessions: boolean;
  deviceCount: number;
}

function resolveOptions(opts: SimulatorOptions): { ctx: RunContext; seed: number } {
  const realtime = opts.realtime ?? false;
  const batchIntervalMs = opts.batchIntervalMs ?? 1000;
  const problems: { field: string; reason: 'invalid_argument'; message: string }[] = [];
  if (!Number.isInteger(opts.devices) || opts.devices < 1) problems.push({ field: 'devices', reason: 'invalid_argument', message: 'must be an integer >= 1' });
  if (!(batchIntervalMs > 0)) problems.push({ field: 'batchIntervalMs', reason: 'invalid_argument', message: 'must be > 0' });
  if (opts.durationMs !== undefined && !(opts.durationMs > 0)) problems.push({ field: 'durationMs', reason: 'invalid_argument', message: 'must be > 0' });
  if (!realtime && opts.durationMs === undefined) problems.push({ field: 'durationMs', reason: 'invalid_argument', message: 'is required unless realtime' });
  const maxReadingsPerRequest = opts.maxReadingsPerRequest ?? 600;
  if (!Number.isInteger(maxReadingsPerRequest) || maxReadingsPerRequest < 1) problems.push({ field: 'maxReadingsPerRequest', reason: 'invalid_argument', message: 'must be an integer >= 1' });
  if (problems.length > 0) throw new AttuneError('validation_error', 'invalid simulator options', problems);

  const now = Date.now();
  const startTimeMs = Math.round(opts.startTimeMs ?? (realtime ? now : now - opts.durationMs!));
  return {
    seed: opts.seed ?? 1,
    ctx: {
      baseUrl: opts.baseUrl.replace(/\/+$/, ''),
      tokenFor: opts.tokenFor,
      batchIntervalMs,
      realtime,
      startTimeMs,
      // Realtime event time is wall time: a start in the past is history, sent at once (catch-up).
      endTimeMs: opts.durationMs === undefined ? Infinity : startTimeMs + opts.durationMs,
      signal: opts.signal,
      log: opts.log,
      retry: { ...defaultRetryPolicy, ...opts.retry },
      maxReadingsPerRequest,
      profileOverrides: opts.profileOverrides ?? {},
      endSessions: opts.endSessions ?? true,
      deviceCount: opts.devices,
    },
  };
}

export async function runSimulator(opts: SimulatorOptions): Promise<SimulatorStats> {
  const { ctx, seed } = resolveOptions(opts);
  const began = Date.now();
  const devices = simulatedDevices(opts.devices, seed);
  ctx.log.info(
    { devices: devices.length, realtime: ctx.realtime, startTime: new Date(ctx.startTimeMs).toISOString(), durationMs: opts.durationMs ?? null, batchIntervalMs: ctx.batchIntervalMs },
    'simulator starting',
  );
  const perDevice = await Promise.all(devices.map((d) => runDevice(ctx, d)));
  const sum = (f: (d: DeviceStats) => number) => perDevice.reduce((s, d) => s + f(d), 0);
  const stats: SimulatorStats = {
    devices: devices.length,
    readingsSent: sum((d) => d.readingsSent),
    beatsSent: sum((d) => d.beatsSent),
    requests: sum((d) => d.requests),
    errors: sum((d) => d.errors),
    retries: sum((d) => d.retries),
    devicesGaveUp: perDevice.filter((d) => d.outcome === 'gave_up').length,
    elapsedMs: Date.now() - began,
    perDevice,
  };
  const { perDevice: _, ...summary } = stats;
  ctx.log.info(summary, 'simulator finished');
  return stats;
}

/** Each device's back-off jitter has its own stream, apart from its beats. */
const jitterStream = 2_000_000;

async function runDevice(ctx: RunContext, device: SimulatedDevice): Promise<DeviceStats> {
  const { deviceId, userId, orgId } = device;
  const log = ctx.log.child({ device_id: deviceId, user_id: userId });
  const stats: DeviceStats = { deviceId, userId, sessionId: null, readingsSent: 0, beatsSent: 0, requests: 0, errors: 0, retries: 0, outcome: 'completed' };
  const jitter = new Mulberry32(deriveSeed(device.seed, jitterStream));
  const post = (path: string, body: unknown): Promise<PostOutcome> =>
    postWithRetry({
      url: `${ctx.baseUrl}${path}`,
      body,
      token: () => ctx.tokenFor(userId, orgId),
      log,
      counters: stats,
      rng: jitter,
      retry: ctx.retry,
      signal: ctx.signal,
    });
  /** Records why the device stops; true when it must stop. */
  const stopsOn = (step: Step, outcome: PostOutcome): boolean => {
    if (outcome.kind === 'ok') return false;
    if (outcome.kind === 'aborted') {
      stats.outcome = 'stopped';
      return true;
    }
    stats.outcome = 'gave_up';
    stats.failure =
      outcome.kind === 'refused'
        ? { step, status: outcome.status, message: `server refused the ${step} request with ${outcome.status}`, body: outcome.body }
        : { step, status: outcome.status, message: outcome.message };
    log.error({ step, failure: stats.failure }, `device ${deviceId} gives up: ${stats.failure.message}`);
    return true;
  };

  const registered = await post('/v1/devices', { device_id: deviceId, name: `Simulated strap ${device.index}`, model: 'attune-sim', firmware: '1.0.0' });
  if (stopsOn('register', registered)) return stats;

  // started_at is the simulation's start, so that past (fast-mode) readings fall inside the session.
  const session = await post('/v1/sessions', {
    device_id: deviceId,
    type: 'coherence',
    title: 'Simulated session',
    started_at: new Date(ctx.startTimeMs).toISOString(),
    coherence_threshold: 0.5,
    threshold_duration_s: 30,
  });
  if (stopsOn('session', session)) return stats;
  const sessionId = session.kind === 'ok' ? (session.body as { id?: unknown } | null)?.id : undefined;
  if (typeof sessionId !== 'string' || sessionId === '') {
    stats.outcome = 'gave_up';
    stats.failure = { step: 'session', message: 'session response has no string id', body: session.kind === 'ok' ? session.body : undefined };
    log.error({ failure: stats.failure }, `device ${deviceId} gives up: ${stats.failure.message}`);
    return stats;
  }
  stats.sessionId = sessionId;
  log.info({ session_id: sessionId, profile: device.profile }, 'device streaming');
  /** Event time of the last reading the server accepted. */
  let coveredAt = ctx.startTimeMs;
  const done = await stream(sessionId);
  // A stopped simulator (Ctrl-C) ends its sessions where the data stops, once and briefly,
  // so that restarts do not leave sessions open for ever.
  if (ctx.endSessions && done === 'stopped' && stats.readingsSent > 0) {
    await postWithRetry({
      url: `${ctx.baseUrl}/v1/sessions/${encodeURIComponent(sessionId)}/end`,
      body: { ended_at: new Date(coveredAt).toISOString() },
      token: () => ctx.tokenFor(userId, orgId),
      log,
      counters: stats,
      rng: jitter,
      retry: { ...ctx.retry, maxAttempts: 1, requestTimeoutMs: 2000 },
    });
  }
  return stats;

  async function stream(sessionId: string): Promise<'stopped' | 'done'> {
  const generator = new RrGenerator({ ...device.profile, ...ctx.profileOverrides }, new Mulberry32(device.seed), ctx.startTimeMs);
  const uploaded = await uploadBeats({
    generator,
    battery: new Battery(device.batteryStartPct, ctx.startTimeMs),
    deviceId,
    sessionId,
    startMs: ctx.startTimeMs,
    endMs: ctx.endTimeMs,
    batchIntervalMs: ctx.batchIntervalMs,
    realtime: ctx.realtime,
    // Real straps are not synchronised: spread the devices' uploads over the batch interval.
    staggerMs: Math.floor((ctx.batchIntervalMs * (device.index - 1)) / ctx.deviceCount),
    maxReadingsPerRequest: ctx.maxReadingsPerRequest,
    signal: ctx.signal,
    post,
    onAccepted: (chunk) => {
      stats.readingsSent += chunk.length;
      stats.beatsSent += chunk.reduce((s, r) => s + r.rr_intervals_ms.length, 0);
      coveredAt = Date.parse(chunk[chunk.length - 1].timestamp);
    },
  });
  if (uploaded.kind === 'stopped') {
    stats.outcome = 'stopped';
    return 'stopped';
  }
  if (uploaded.kind === 'failed') {
    stopsOn('sync', uploaded.outcome);
    return 'done';
  }
  if (ctx.endSessions) {
    const ended = await post(`/v1/sessions/${encodeURIComponent(sessionId)}/end`, { ended_at: new Date(ctx.endTimeMs).toISOString() });
    if (stopsOn('end', ended)) return 'done';
  }
  log.info({ readings: stats.readingsSent, beats: stats.beatsSent }, 'device finished');
  return 'done';
  }
}
