// Drives a simulated group (mesh) session through Attune's public API, as N people with
// their own straps would (issue 11 item 5): participant 1 creates a public group session
// (POST /v1/mesh/sessions, mesh:create), every participant registers a device, opens a
// coherence session on it and joins the group with that device (mesh:join), then uploads
// its beats through the ordinary ingest (POST /v1/devices/{id}/sync), breathing with the
// session's pacer or not (group-profiles.ts). There is no other path for the data: the
// group worker sees what any device sends.
//
// A group left active by an earlier run of the same host that did not end it (a crash) is
// ended first, so a restarted `npm start` lists one simulated group, not one per start.
import { AttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { Mulberry32, deriveSeed } from '../lib/prng.js';
import { defaultRetryPolicy, postWithRetry, type PostOutcome, type RequestCounters, type RetryPolicy } from './http-client.js';
import { groupParticipants, groupUserId, lockedCount, validateGroupPlan, type GroupParticipant } from './group-profiles.js';
import { simulatedOrgId } from './profiles.js';
import { Battery } from './readings.js';
import { RrGenerator } from './rr-generator.js';
import { uploadBeats } from './upload.js';

/** The scopes a simulated participant's token needs (participant 1 also creates and ends the group). */
export const GROUP_SIMULATOR_SCOPES = ['mesh:create', 'mesh:join', 'write:devices', 'write:sessions', 'write:readings', 'read:sessions'] as const;

/** Names of simulated groups start with this (a stale one is recognised by it and its host). */
export const SIMULATED_GROUP_NAME = 'Simulated group';

export interface GroupSimulatorOptions {
  /** API root, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Participants: users `sim-group-user-1` … in org `sim-org`, each with device `sim-group-device-<i>`. */
  participants: number;
  /** Share breathing in phase with the pacer, 0..1. Default 0.75. */
  lockedShare?: number;
  /** The pacer's rate (the session's breathing_rate_bpm), breaths a minute. Default 6. */
  breathingRateBpm?: number;
  /** Bearer token for a participant, with GROUP_SIMULATOR_SCOPES (asked before every request). */
  tokenFor: (userId: string, orgId: string) => string;
  /** Event time each upload covers, ms. Default 1000. */
  batchIntervalMs?: number;
  /** Upload on the wall clock (true) or as fast as the server accepts (false, the default). */
  realtime?: boolean;
  /** Event time to simulate, ms. Required unless realtime (which then runs until `signal`). */
  durationMs?: number;
  signal?: AbortSignal;
  log: Logger;
  /** Seed of every random choice; the same seed (and start) sends the same beats. Default 1. */
  seed?: number;
  /** The group's start and the first beats' event time, epoch ms. Default: now, or now − durationMs when not realtime. */
  startTimeMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Readings per sync request at most. Default 600. */
  maxReadingsPerRequest?: number;
  /** End the participants' sessions and the group once the duration is done, or when stopped. Default true. */
  endSessions?: boolean;
  /** End active groups this host left from an earlier run before creating one. Default true. */
  endStaleGroups?: boolean;
}

export type GroupStep = 'create' | 'register' | 'session' | 'join' | 'sync' | 'end';

export interface ParticipantStats extends RequestCounters {
  index: number;
  userId: string;
  deviceId: string;
  locked: boolean;
  breathingRatePerMin: number;
  sessionId: string | null;
  participantId: string | null;
  position: number | null;
  readingsSent: number;
  beatsSent: number;
  outcome: 'completed' | 'stopped' | 'gave_up';
  failure?: { step: GroupStep; status?: number; message: string; body?: unknown };
}

export interface GroupSimulatorStats extends RequestCounters {
  meshSessionId: string | null;
  /** The pacer's start (the group's started_at), epoch ms. */
  pacerStartMs: number | null;
  breathingRateBpm: number;
  participants: number;
  locked: number;
  joined: number;
  readingsSent: number;
  beatsSent: number;
  participantsGaveUp: number;
  /** Stale groups of this host ended before the new one was created. */
  staleGroupsEnded: number;
  elapsedMs: number;
  /** Why the group could not be created. */
  failure?: { step: GroupStep; status?: number; message: string; body?: unknown };
  perParticipant: ParticipantStats[];
}

const jitterStream = 2_000_000;

interface Resolved {
  baseUrl: string;
  lockedShare: number;
  breathingRateBpm: number;
  batchIntervalMs: number;
  realtime: boolean;
  startTimeMs: number;
  endTimeMs: number;
  seed: number;
  retry: RetryPolicy;
  maxReadingsPerRequest: number;
  endSessions: boolean;
  endStaleGroups: boolean;
}

function resolve(opts: GroupSimulatorOptions): Resolved {
  const realtime = opts.realtime ?? false;
  const batchIntervalMs = opts.batchIntervalMs ?? 1000;
  const maxReadingsPerRequest = opts.maxReadingsPerRequest ?? 600;
  const problems: { field: string; reason: 'invalid_argument'; message: string }[] = [];
  if (!(batchIntervalMs > 0)) problems.push({ field: 'batchIntervalMs', reason: 'invalid_argument', message: 'must be > 0' });
  if (opts.durationMs !== undefined && !(opts.durationMs > 0)) problems.push({ field: 'durationMs', reason: 'invalid_argument', message: 'must be > 0' });
  if (!realtime && opts.durationMs === undefined) problems.push({ field: 'durationMs', reason: 'invalid_argument', message: 'is required unless realtime' });
  if (!Number.isInteger(maxReadingsPerRequest) || maxReadingsPerRequest < 1) problems.push({ field: 'maxReadingsPerRequest', reason: 'invalid_argument', message: 'must be an integer >= 1' });
  if (problems.length > 0) throw new AttuneError('validation_error', 'invalid group simulator options', problems);
  const now = Date.now();
  const startTimeMs = Math.round(opts.startTimeMs ?? (realtime ? now : now - opts.durationMs!));
  const r: Resolved = {
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    lockedShare: opts.lockedShare ?? 0.75,
    breathingRateBpm: opts.breathingRateBpm ?? 6,
    batchIntervalMs,
    realtime,
    startTimeMs,
    endTimeMs: opts.durationMs === undefined ? Infinity : startTimeMs + opts.durationMs,
    seed: opts.seed ?? 1,
    retry: { ...defaultRetryPolicy, ...opts.retry },
    maxReadingsPerRequest,
    endSessions: opts.endSessions ?? true,
    endStaleGroups: opts.endStaleGroups ?? true,
  };
  validateGroupPlan({ participants: opts.participants, lockedShare: r.lockedShare, pacerRateBpm: r.breathingRateBpm, pacerStartMs: startTimeMs, seed: r.seed });
  return r;
}

const idOf = (outcome: PostOutcome, field = 'id'): string | undefined => {
  if (outcome.kind !== 'ok') return undefined;
  const v = (outcome.body as Record<string, unknown> | null)?.[field];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

function failureOf(step: GroupStep, outcome: PostOutcome): { step: GroupStep; status?: number; message: string; body?: unknown } {
  if (outcome.kind === 'refused') return { step, status: outcome.status, message: `server refused the ${step} request with ${outcome.status}`, body: outcome.body };
  if (outcome.kind === 'exhausted') return { step, status: outcome.status, message: outcome.message };
  if (outcome.kind === 'ok') return { step, status: outcome.status, message: `the ${step} answer lacks what the simulator needs`, body: outcome.body };
  return { step, message: 'stopped' };
}

export async function runGroupSimulator(opts: GroupSimulatorOptions): Promise<GroupSimulatorStats> {
  const r = resolve(opts);
  const began = Date.now();
  const log = opts.log.child({ role: 'group-simulator' });
  const hostUserId = groupUserId(1);
  const hostCounters: RequestCounters = { requests: 0, errors: 0, retries: 0 };
  const hostJitter = new Mulberry32(deriveSeed(r.seed, jitterStream));
  const hostPost = (path: string, body: unknown, retry: RetryPolicy = r.retry): Promise<PostOutcome> =>
    postWithRetry({ url: `${r.baseUrl}${path}`, body, token: () => opts.tokenFor(hostUserId, simulatedOrgId), log, counters: hostCounters, rng: hostJitter, retry, signal: opts.signal });
  const stats: GroupSimulatorStats = {
    meshSessionId: null,
    pacerStartMs: null,
    breathingRateBpm: r.breathingRateBpm,
    participants: opts.participants,
    locked: lockedCount(opts.participants, r.lockedShare),
    joined: 0,
    readingsSent: 0,
    beatsSent: 0,
    participantsGaveUp: 0,
    staleGroupsEnded: 0,
    elapsedMs: 0,
    requests: 0,
    errors: 0,
    retries: 0,
    perParticipant: [],
  };
  const finish = (): GroupSimulatorStats => {
    const all = [hostCounters, ...stats.perParticipant];
    stats.requests = all.reduce((s, c) => s + c.requests, 0);
    stats.errors = all.reduce((s, c) => s + c.errors, 0);
    stats.retries = all.reduce((s, c) => s + c.retries, 0);
    stats.readingsSent = stats.perParticipant.reduce((s, p) => s + p.readingsSent, 0);
    stats.beatsSent = stats.perParticipant.reduce((s, p) => s + p.beatsSent, 0);
    stats.joined = stats.perParticipant.filter((p) => p.participantId !== null).length;
    stats.participantsGaveUp = stats.perParticipant.filter((p) => p.outcome === 'gave_up').length;
    stats.elapsedMs = Date.now() - began;
    const { perParticipant: _, ...summary } = stats;
    log.info(summary, 'group simulator finished');
    return stats;
  };

  if (r.endStaleGroups) stats.staleGroupsEnded = await endStaleGroups(r, opts, hostPost, log);

  const created = await hostPost('/v1/mesh/sessions', {
    name: `${SIMULATED_GROUP_NAME} (${opts.participants} participants, ${stats.locked} with the pacer)`,
    visibility: 'public',
    // Room for a few real people to join the demo group.
    max_participants: Math.min(10_000, opts.participants + 10),
    scheduled_start: new Date(r.startTimeMs).toISOString(),
    breathing_rate_bpm: r.breathingRateBpm,
    host_display_name: 'Attune simulator',
  });
  const meshId = idOf(created);
  const startedAt = created.kind === 'ok' ? Date.parse(String((created.body as { started_at?: unknown } | null)?.started_at)) : NaN;
  if (!meshId || !Number.isFinite(startedAt)) {
    stats.failure = failureOf('create', created);
    if (created.kind !== 'aborted') log.error({ failure: stats.failure }, 'group simulator: the group session could not be created');
    return finish();
  }
  stats.meshSessionId = meshId;
  // The pacer starts with the session (api/mesh-pacer.ts): the participants' breathing clock.
  stats.pacerStartMs = startedAt;
  const participants = groupParticipants({ participants: opts.participants, lockedShare: r.lockedShare, pacerRateBpm: r.breathingRateBpm, pacerStartMs: startedAt, seed: r.seed });
  log.info({ mesh_session_id: meshId, participants: participants.length, locked: stats.locked, breathing_rate_bpm: r.breathingRateBpm, started_at: new Date(startedAt).toISOString() }, 'simulated group created');

  const runners = participants.map((p) => participantRunner(r, opts, p, meshId, log));
  stats.perParticipant = runners.map((x) => x.stats);
  // Devices and sessions in parallel; joins one after the other, so positions follow the participants' order.
  await Promise.all(runners.map((x) => x.prepare()));
  for (const x of runners) await x.join();
  await Promise.all(runners.map((x) => x.stream()));

  if (r.endSessions) {
    const stopped = opts.signal?.aborted ?? false;
    // A stopped simulator (Ctrl-C) ends the group once and briefly, so restarts do not leave it open.
    const ended = await postWithRetry({
      url: `${r.baseUrl}/v1/mesh/sessions/${encodeURIComponent(meshId)}/end`,
      body: {},
      token: () => opts.tokenFor(hostUserId, simulatedOrgId),
      log,
      counters: hostCounters,
      rng: hostJitter,
      retry: stopped ? { ...r.retry, maxAttempts: 1, requestTimeoutMs: 2000 } : r.retry,
    });
    if (ended.kind !== 'ok') log.warn({ mesh_session_id: meshId, failure: failureOf('end', ended) }, 'the simulated group was not ended');
  }
  return finish();
}

/** Ends the active groups `sim-group-user-1` hosts under the simulator's name (an earlier run's); how many. */
async function endStaleGroups(r: Resolved, opts: GroupSimulatorOptions, hostPost: (path: string, body: unknown, retry?: RetryPolicy) => Promise<PostOutcome>, log: Logger): Promise<number> {
  const hostUserId = groupUserId(1);
  let body: { sessions?: Array<{ id: string; name: string; host?: { id?: string } }> };
  try {
    const res = await fetch(`${r.baseUrl}/v1/mesh/sessions?status=active&per_page=100`, {
      headers: { authorization: `Bearer ${opts.tokenFor(hostUserId, simulatedOrgId)}`, 'user-agent': 'attune-simulator' },
      signal: opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(r.retry.requestTimeoutMs)]) : AbortSignal.timeout(r.retry.requestTimeoutMs),
    });
    if (!res.ok) {
      log.warn({ status: res.status }, 'group simulator: could not list active groups; an earlier run\'s group may stay listed');
      return 0;
    }
    body = (await res.json()) as typeof body;
  } catch (err) {
    log.warn({ err }, 'group simulator: could not list active groups; an earlier run\'s group may stay listed');
    return 0;
  }
  let ended = 0;
  for (const s of body.sessions ?? []) {
    if (s.host?.id !== hostUserId || !s.name.startsWith(SIMULATED_GROUP_NAME)) continue;
    const outcome = await hostPost(`/v1/mesh/sessions/${encodeURIComponent(s.id)}/end`, {}, { ...r.retry, maxAttempts: 3 });
    if (outcome.kind === 'ok') {
      ended++;
      log.info({ mesh_session_id: s.id }, 'ended a simulated group an earlier run left active');
    }
  }
  return ended;
}

function participantRunner(r: Resolved, opts: GroupSimulatorOptions, p: GroupParticipant, meshId: string, groupLog: Logger) {
  const log = groupLog.child({ device_id: p.deviceId, user_id: p.userId });
  const stats: ParticipantStats = {
    index: p.index,
    userId: p.userId,
    deviceId: p.deviceId,
    locked: p.locked,
    breathingRatePerMin: Math.round(p.profile.breathingRatePerMin * 1000) / 1000,
    sessionId: null,
    participantId: null,
    position: null,
    readingsSent: 0,
    beatsSent: 0,
    requests: 0,
    errors: 0,
    retries: 0,
    outcome: 'completed',
  };
  const jitter = new Mulberry32(deriveSeed(p.seed, jitterStream));
  const post = (path: string, body: unknown, retry: RetryPolicy = r.retry) =>
    postWithRetry({ url: `${r.baseUrl}${path}`, body, token: () => opts.tokenFor(p.userId, p.orgId), log, counters: stats, rng: jitter, retry, signal: opts.signal });
  /** Records why the participant stops; true when it must stop. */
  const stopsOn = (step: GroupStep, outcome: PostOutcome, ok: boolean): boolean => {
    if (ok) return false;
    if (outcome.kind === 'aborted') {
      stats.outcome = 'stopped';
      return true;
    }
    stats.outcome = 'gave_up';
    stats.failure = failureOf(step, outcome);
    log.error({ step, failure: stats.failure }, `participant ${p.index} gives up: ${stats.failure.message}`);
    return true;
  };
  let coveredAt = r.startTimeMs;
  const active = () => stats.outcome === 'completed';

  return {
    stats,
    async prepare(): Promise<void> {
      const registered = await post('/v1/devices', { device_id: p.deviceId, name: `Simulated strap ${p.index} (group)`, model: 'attune-sim', firmware: '1.0.0' });
      if (stopsOn('register', registered, registered.kind === 'ok')) return;
      // started_at is the group's start, so that history sent at once falls inside the session.
      const session = await post('/v1/sessions', {
        device_id: p.deviceId,
        type: 'coherence',
        title: 'Simulated group participant',
        started_at: new Date(r.startTimeMs).toISOString(),
        coherence_threshold: 0.5,
        threshold_duration_s: 30,
        metadata: { mesh_session_id: meshId },
      });
      const sessionId = idOf(session);
      if (stopsOn('session', session, sessionId !== undefined)) return;
      stats.sessionId = sessionId!;
    },
    async join(): Promise<void> {
      if (!active()) return;
      const joined = await post(`/v1/mesh/sessions/${encodeURIComponent(meshId)}/join`, { device_id: p.deviceId, display_name: p.displayName });
      const participantId = idOf(joined, 'participant_id');
      if (stopsOn('join', joined, participantId !== undefined)) return;
      stats.participantId = participantId!;
      const position = (joined.kind === 'ok' ? (joined.body as { position?: unknown }).position : undefined);
      stats.position = typeof position === 'number' ? position : null;
    },
    async stream(): Promise<void> {
      let uploaded: 'done' | 'not_done' = 'not_done';
      if (active()) {
        log.info({ session_id: stats.sessionId, participant_id: stats.participantId, locked: p.locked, breathing_rate_per_min: stats.breathingRatePerMin }, 'participant streaming');
        const end = await uploadBeats({
          generator: new RrGenerator(p.profile, new Mulberry32(p.seed), r.startTimeMs),
          battery: new Battery(p.batteryStartPct, r.startTimeMs),
          deviceId: p.deviceId,
          sessionId: stats.sessionId!,
          startMs: r.startTimeMs,
          endMs: r.endTimeMs,
          batchIntervalMs: r.batchIntervalMs,
          realtime: r.realtime,
          staggerMs: Math.floor((r.batchIntervalMs * (p.index - 1)) / opts.participants),
          maxReadingsPerRequest: r.maxReadingsPerRequest,
          signal: opts.signal,
          post: (path, body) => post(path, body),
          onAccepted: (chunk) => {
            stats.readingsSent += chunk.length;
            stats.beatsSent += chunk.reduce((sum, x) => sum + x.rr_intervals_ms.length, 0);
            coveredAt = Date.parse(chunk[chunk.length - 1].timestamp);
          },
        });
        if (end.kind === 'done') uploaded = 'done';
        else if (end.kind === 'stopped') stats.outcome = 'stopped';
        else stopsOn('sync', end.outcome, false);
      }
      // The participant's session is ended whatever stopped it (a refused join too), so none stays open.
      if (!r.endSessions || stats.sessionId === null) return;
      const path = `/v1/sessions/${encodeURIComponent(stats.sessionId)}/end`;
      if (uploaded === 'done') {
        const ended = await post(path, { ended_at: new Date(r.endTimeMs).toISOString() });
        stopsOn('end', ended, ended.kind === 'ok');
        return;
      }
      // Stopped or given up: end the session where its data stops, once and briefly.
      await postWithRetry({
        url: `${r.baseUrl}${path}`,
        body: { ended_at: new Date(coveredAt).toISOString() },
        token: () => opts.tokenFor(p.userId, p.orgId),
        log,
        counters: stats,
        rng: jitter,
        retry: { ...r.retry, maxAttempts: 1, requestTimeoutMs: 2000 },
      });
    },
  };
}
