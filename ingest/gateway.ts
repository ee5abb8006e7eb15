// The ingest gateway: device registration, batched sync over HTTP, live beats over a
// WebSocket. Everything is validated (JSON Schema, then plausibility), resolved to a user
// and a session, and published to the bus before it is acknowledged.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AttuneError, isAttuneError, type ErrorDetail, type ReasonFor } from '../lib/errors.js';
import { ReadingBudget } from '../lib/token-bucket.js';
import { Scopes, canAccess, type Principal } from '../lib/principal.js';
import type { AppContext } from '../http/context.js';
import { errorBodySchema, socketErrorMessage } from '../http/errors.js';
import { CloseCodes, reauthenticationAhead, socketAuth } from '../http/http-auth.js';
import { heartbeatSettings, watchSocket } from '../http/ws-heartbeat.js';
import { principalOf } from '../http/auth-plugin.js';
import type { SharedReadingBudget } from '../http/rate-limit.js';
import type { Device, Session } from '../store/postgres/sessions-repo.js';
import { publishReadings } from './publisher.js';
import { busUnavailable } from '../bus/publish-timeout.js';
import { readingId, type HeartReadingRecord } from '../schemas/records.js';
import { parseTimestamp } from '../lib/time.js';
import { deviceProfileJson } from '../store/postgres/users-repo.js';
import { Ajv } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { Limits, checkLastWorn, checkTimestamps, defaultReadingRules, parseReadings, parseSyncBody, syncBodySchema, type ReadingInput, type ReadingRules, type SyncBody } from './readings.js';

/** Messages one live-ingest socket may have waiting before it is closed as too fast. */
export const MAX_QUEUED_MESSAGES = 64;

const deviceIdParam = {
  type: 'object',
  properties: { device_id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$' } },
  required: ['device_id'],
} as const;

// Two forms: Attune's (the client names the device: device_id) and the coherence platform
// document's (type, serial_number, firmware_version: the server assigns the id, the serial is
// unique per organisation).
const deviceBodySchema = {
  type: 'object',
  properties: {
    device_id: deviceIdParam.properties.device_id,
    name: { type: 'string', maxLength: 200 },
    model: { type: 'string', maxLength: 200 },
    firmware: { type: 'string', maxLength: 100 },
    type: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,31}$', description: 'Kind of sensor, e.g. solas (document form).' },
    serial_number: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@/-]+$', description: 'Unique within the organisation (document form).' },
    firmware_version: { type: 'string', maxLength: 100, description: 'Firmware version (document form; firmware in the device_id form).' },
  },
  anyOf: [{ required: ['device_id'] }, { required: ['type', 'serial_number'] }],
} as const;

const deviceResponse = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The device id (server-assigned in the document form); the same as device_id.' },
    type: { type: 'string' },
    serial_number: { type: ['string', 'null'] },
    firmware_version: { type: 'string' },
    last_sync: { type: ['string', 'null'], format: 'date-time' },
    battery_level: { type: ['number', 'null'] },
    last_worn: { type: ['string', 'null'], format: 'date-time' },
    device_id: { type: 'string' },
    user_id: { type: 'string' },
    org_id: { type: 'string' },
    name: { type: 'string' },
    model: { type: 'string' },
    firmware: { type: 'string' },
    registered_at: { type: 'string', format: 'date-time' },
  },
} as const;

const deviceJson = (d: Device) => ({
  device_id: d.id,
  user_id: d.userId,
  org_id: d.orgId,
  name: d.name,
  model: d.model,
  firmware: d.firmware,
  registered_at: new Date(d.registeredAt).toISOString(),
});

const unknownDevice = (deviceId: string) => new AttuneError('not_found', `device ${deviceId} is not registered`, [{ field: 'device_id', reason: 'unknown_device' }]);

/** The device, if `p` may send readings for it. Unknown and foreign devices look the same (404). */
async function ownedDevice(ctx: AppContext, p: Principal, deviceId: string): Promise<Device> {
  const device = await ctx.devices.get(p.orgId, deviceId);
  if (!device || !canAccess(p, device)) throw unknownDevice(deviceId);
  return device;
}

/**
 * The reading rules of a context: config.ingestLimit carries them (lib/config.ts); contexts
 * built by hand (tests) get the defaults.
 */
export function readingRulesOf(ctx: Pick<AppContext, 'ingestLimit'>): ReadingRules {
  const given = ctx.ingestLimit as Partial<ReadingRules>;
  return {
    maxFutureMs: given.maxFutureMs ?? defaultReadingRules.maxFutureMs,
    maxAgeMs: given.maxAgeMs ?? defaultReadingRules.maxAgeMs,
    sessionLeadMs: given.sessionLeadMs ?? defaultReadingRules.sessionLeadMs,
    sessionGraceMs: given.sessionGraceMs ?? defaultReadingRules.sessionGraceMs,
  };
}

// The sync route's body is checked strictly by parseSyncBody (the live socket's function
// too); its other parts (the path) with the server's usual options.
const pathAjv = new Ajv({ allErrors: false, strict: false, coerceTypes: 'array', useDefaults: true, removeAdditional: true });
const strictBodyCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  if (httpPart !== 'body') return pathAjv.compile(schema as object);
  return (data: unknown) => {
    try {
      return { value: parseSyncBody(data) };
    } catch (err) {
      return { error: err as Error };
    }
  };
};

/** A session started without a device takes readings from any of its user's devices. */
const usableBy = (s: Session, d: Device) => s.deviceId === '' || s.deviceId === d.id;

/**
 * Turns validated readings into bus records: timestamps checked, sessions resolved. Throws
 * a coded error naming the first bad field (with its index) and accepts nothing then, so a
 * client can fix and resend the whole batch. `sessionEnds` is given the ended_at of every
 * session of the readings that had ended (publishReadings writes it on their batches).
 */
export async function toRecords(
  ctx: AppContext,
  device: Device,
  readings: ReadingInput[],
  batchSessionId: string | undefined,
  source: HeartReadingRecord['source'],
  prefix = '/readings',
  sessionEnds: Map<string, number> | null = null,
): Promise<HeartReadingRecord[]> {
  const now = ctx.clock();
  const rules = readingRulesOf(ctx);
  const times = checkTimestamps(readings, now, prefix, rules.maxFutureMs);
  const outside: ErrorDetail<ReasonFor<'validation_error'>>[] = [];
  const explicit = new Map<string, Session>();
  const out: HeartReadingRecord[] = new Array(readings.length);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i];
    const named = r.session_id ?? batchSessionId;
    let sessionId: string | null = null;
    if (named !== undefined) {
      let s = explicit.get(named);
      if (!s) {
        const found = await ctx.sessions.get(named);
        const field = r.session_id !== undefined ? `${prefix}/${i}/session_id` : '/session_id';
        const index = r.session_id !== undefined ? i : undefined;
        // Someone else's session is reported exactly like a missing one.
        if (!found || found.orgId !== device.orgId || found.userId !== device.userId) {
          throw new AttuneError('validation_error', `unknown session ${named}`, [{ field, index, reason: 'unknown_session' }]);
        }
        // One session, one sensor: windows are computed per session in event time, and two
        // sensors' beats interleaved in one series would be nonsense.
        if (!usableBy(found, device)) {
          throw new AttuneError('validation_error', `session ${named} records device ${found.deviceId}`, [{ field, index, reason: 'session_of_another_device' }]);
        }
        s = found;
        explicit.set(named, s);
      }
      sessionId = s.id;
      if (s.endedAt !== null) sessionEnds?.set(s.id, s.endedAt);
      // A reading belongs to the session it names only while that session runs, give or take
      // the allowed lateness before its start and the grace after its end.
      const from = s.startedAt - rules.sessionLeadMs;
      const to = s.endedAt === null ? Infinity : s.endedAt + rules.sessionGraceMs;
      if ((times[i] < from || times[i] > to) && outside.length < 10) {
        outside.push({
          field: `${prefix}/${i}/timestamp`,
          index: i,
          reason: 'outside_session',
          message: `is outside session ${s.id} (${new Date(s.startedAt).toISOString()} – ${s.endedAt === null ? 'open' : new Date(s.endedAt).toISOString()}, ${rules.sessionLeadMs / 1000} s before and ${rules.sessionGraceMs / 1000} s after allowed)`,
        });
      }
    } else {
      // A reading without a session may still be synced late, but not without bound.
      if (times[i] < now - rules.maxAgeMs && outside.length < 10) {
        outside.push({
          field: `${prefix}/${i}/timestamp`,
          index: i,
          reason: 'out_of_range',
          message: `is more than ${Math.round(rules.maxAgeMs / 86_400_000)} days old; older readings must name their session`,
        });
        continue;
      }
      const active = await ctx.sessions.activeAt(device.orgId, device.userId, times[i]);
      sessionId = active && usableBy(active, device) ? active.id : null;
      if (sessionId !== null && active!.endedAt !== null) sessionEnds?.set(sessionId, active!.endedAt);
    }
    out[i] = {
      reading_id: readingId(device.orgId, device.id, times[i]),
      device_id: device.id,
      user_id: device.userId,
      org_id: device.orgId,
      session_id: sessionId,
      recorded_at: times[i],
      received_at: now,
      hr_bpm: r.hr ?? null,
      rr_intervals_ms: r.rr_intervals_ms ?? [],
      device_hrv_ms: r.hrv ?? null,
      device_coherence: r.coherence ?? null,
      battery_level_pct: r.battery_level ?? null,
      source,
    };
  }
  if (outside.length > 0) {
    throw new AttuneError('validation_error', `invalid timestamp at index ${outside[0].index}: ${outside[0].message}`, outside);
  }
  return out;
}

/**
 * The coherence platform document's sync body carries the battery at sync time
 * (`battery_level` beside `readings`), not per reading. It goes on the newest reading when that
 * reading has no level of its own, so that it is stored with the readings and the webhook
 * dispatcher, which reads levels from the readings on the bus, sends device.low_battery for it
 * (a client following the document never got the alert).
 */
export function withSyncBattery(records: HeartReadingRecord[], battery: number | null | undefined): void {
  if (battery === undefined || battery === null || records.length === 0) return;
  let newest = 0;
  for (let i = 1; i < records.length; i++) if (records[i].recorded_at >= records[newest].recorded_at) newest = i;
  if (records[newest].battery_level_pct === null) records[newest].battery_level_pct = battery;
}

/**
 * The battery a sync leaves its device at: the body's, else that of its newest reading (by
 * time, not by place in the request: readings may come in any order) that has one.
 */
export function syncBattery(records: HeartReadingRecord[], body: number | null | undefined): number | null {
  if (body !== undefined && body !== null) return body;
  let best: HeartReadingRecord | null = null;
  for (const r of records) if (r.battery_level_pct !== null && (best === null || r.recorded_at >= best.recorded_at)) best = r;
  return best?.battery_level_pct ?? null;
}

/** The readings budget of the gateway (see readingBudget). */
interface Budget {
  /** Takes `readings` from the device's and its user's budgets, or returns a coded 429 saying when to retry. */
  take(device: Device, readings: number): Promise<AttuneError | null>;
  /** Gives them back: the readings were refused after all (only accepted readings count). */
  refund(device: Device, readings: number): Promise<void>;
}

/**
 * Readings rate limits: a device (or a backend syncing for it) gets `readingsPerS` readings a
 * second with `burst` saved up, and so does its user over all their devices
 * (ATTUNE_RATE_LIMIT_USER_READINGS_PER_S / _BURST, by default a device's), so neither one
 * runaway sender nor one token with many devices can take the gateway.
 */
function readingBudget(ctx: AppContext, shared: SharedReadingBudget | null): Budget {
  const { readingsPerS, burst } = ctx.ingestLimit;
  if (readingsPerS === 0) return { take: async () => null, refund: async () => {} };
  const perUser = ctx.ingestLimit as { userReadingsPerS?: number; userBurst?: number };
  const deviceLimits = { ratePerS: readingsPerS, burst };
  const userLimits = { ratePerS: perUser.userReadingsPerS ?? readingsPerS, burst: perUser.userBurst ?? burst };
  // With REDIS_URL every gateway spends one budget (http/rate-limit.ts), else this process's.
  const budget = new ReadingBudget(deviceLimits, userLimits);
  const userKey = (d: Device) => `${d.orgId}/${d.userId}`;
  const deviceKey = (d: Device) => `${d.orgId}/${d.id}`;
  return {
    async take(device, readings) {
      const refused = shared
        ? await shared.take(userKey(device), deviceKey(device), readings, deviceLimits, userLimits)
        : budget.take(userKey(device), deviceKey(device), readings, ctx.clock());
      if (!refused) return null;
      const retryAfterS = Number.isFinite(refused.waitS) ? Math.ceil(refused.waitS) : null;
      const who = refused.scope === 'device' ? `device ${device.id}` : `user ${device.userId} (all their devices)`;
      return new AttuneError('rate_limited', `${who} is over its limit of ${refused.limit.ratePerS} readings/s (burst ${refused.limit.burst})`, [
        { field: refused.scope === 'device' ? 'device_id' : 'user_id', reason: 'rate_limited', scope: refused.scope, retry_after_s: retryAfterS },
      ]);
    },
    async refund(device, readings) {
      if (shared) await shared.refund(userKey(device), deviceKey(device), readings, deviceLimits, userLimits);
      else budget.refund(userKey(device), deviceKey(device), readings, ctx.clock());
    },
  };
}

export async function registerIngestRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const budget = readingBudget(ctx, app.rateLimits?.readings ?? null);
  app.post<{ Body: { device_id?: string; name?: string; model?: string; firmware?: string; type?: string; serial_number?: string; firmware_version?: string } }>(
    '/v1/devices',
    {
      config: { auth: { scope: Scopes.writeDevices } },
      // For clients and the fuzzer (scripts/fuzz): a registered device's id goes to the sync route.
      links: Object.fromEntries(['200', '201'].map((s) => [s, { sync: { operationId: 'syncReadings', parameters: { device_id: '$response.body#/device_id' } } }])),
      schema: {
        tags: ['ingest'],
        summary: 'Register a device to the calling user (re-registering updates it): by device_id, or by type and serial_number (the server assigns the id).',
        security: [{ bearerAuth: [] }],
        body: deviceBodySchema,
        response: { 200: deviceResponse, 201: deviceResponse, '4xx': errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const users = ctx.users;
      if (req.body.device_id === undefined || users === undefined) {
        if (!users || req.body.type === undefined || req.body.serial_number === undefined) {
          throw new AttuneError('validation_error', 'device_id, or type and serial_number, are required', [{ field: '/device_id', reason: 'required' }]);
        }
        const input = { orgId: p.orgId, userId: p.userId, type: req.body.type, serialNumber: req.body.serial_number, firmware: req.body.firmware_version ?? req.body.firmware };
        await users.ensure(p.orgId, p.userId);
        // The quota counts the user's devices; the serial stands for the id not known yet.
        const counter = { get: (org: string, serial: string) => users.deviceBySerial(org, serial), countOfUser: (org: string, user: string) => ctx.devices.countOfUser(org, user) };
        const register = () => users.registerDevice(input);
        const { device, created } = app.rateLimits ? await app.rateLimits.withDeviceQuota(p, input.serialNumber, counter, register) : await register();
        return reply.status(created ? 201 : 200).send({
          ...deviceProfileJson(device),
          device_id: device.id,
          user_id: device.userId,
          org_id: device.orgId,
          name: device.name,
          model: device.model,
          firmware: device.firmware,
          registered_at: new Date(device.registeredAt).toISOString(),
        });
      }
      const deviceId = req.body.device_id;
      // The two forms mixed: the document's type and firmware_version are kept (they were
      // dropped without a word); a serial number names a device the server gives the id of,
      // which a client naming the id cannot also ask for.
      if (req.body.serial_number !== undefined) {
        throw new AttuneError('validation_error', 'serial_number registers a device by serial, with an id the server assigns: send it without device_id, or device_id without it', [
          { field: '/serial_number', reason: 'invalid_value', message: 'not with device_id' },
        ]);
      }
      await users?.ensure(p.orgId, p.userId);
      const register = () =>
        ctx.devices.register({
          id: deviceId,
          orgId: p.orgId,
          userId: p.userId,
          name: req.body.name,
          model: req.body.model ?? req.body.type,
          firmware: req.body.firmware ?? req.body.firmware_version,
          type: req.body.type,
        });
      // Devices per user by tier (http/rate-limit.ts): a new one beyond it is 409 device_quota.
      const { device, created } = app.rateLimits ? await app.rateLimits.withDeviceQuota(p, deviceId, ctx.devices, register) : await register();
      // The document's fields too (id, type, firmware_version, last_sync, ...), as the serial form answers.
      const profile = ctx.users ? await ctx.users.device(device.orgId, device.id) : null;
      return reply.status(created ? 201 : 200).send(profile ? { ...deviceProfileJson(profile), ...deviceJson(device) } : deviceJson(device));
    },
  );

  app.delete<{ Params: { device_id: string } }>(
    '/v1/devices/:device_id',
    {
      config: { auth: { scope: Scopes.writeDevices } },
      schema: {
        tags: ['ingest'],
        summary:
          "Remove a device of the caller's (an organisation admin: of the organisation's): it stops counting toward the tier's device quota and takes no more readings (404 unknown_device), and leaves the user's devices. Its sessions and readings stay. Registering it again (by id or serial number) restores it.",
        security: [{ bearerAuth: [] }],
        params: deviceIdParam,
        response: {
          200: { type: 'object', properties: { device_id: { type: 'string' }, removed: { type: 'boolean' } }, required: ['device_id', 'removed'] },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const device = await ownedDevice(ctx, p, req.params.device_id);
      // False: removed by a concurrent request since it was read.
      if (!(await ctx.devices.remove(device.orgId, device.userId, device.id))) throw unknownDevice(device.id);
      return { device_id: device.id, removed: true };
    },
  );

  app.post<{ Params: { device_id: string }; Body: SyncBody }>(
    '/v1/devices/:device_id/sync',
    {
      config: { auth: { scope: Scopes.writeReadings } },
      bodyLimit: Limits.maxBodyBytes,
      // Strict body (no type conversion, null = absent, no unknown fields), as on the live socket.
      validatorCompiler: strictBodyCompiler,
      schema: {
        tags: ['ingest'],
        summary: 'Upload a batch of readings from a device.',
        operationId: 'syncReadings',
        description: `At most ${Limits.maxReadingsPerBatch} readings and 1 MB per request. RR ${Limits.rrMinMs}–${Limits.rrMaxMs} ms, HR ${Limits.hrMin}–${Limits.hrMax} bpm, timestamps at most ${defaultReadingRules.maxFutureMs / 1000} s in the future by default (ATTUNE_READING_MAX_FUTURE_MS, at most the allowed lateness), within the session they name (from its start less the allowed lateness to its end plus ATTUNE_SESSION_GRACE_MS), and at most ${defaultReadingRules.maxAgeMs / 86_400_000} days old when they name none (ATTUNE_READING_MAX_AGE_DAYS). Types are strict, \`null\` means absent, unknown fields are refused. A batch is accepted whole or refused whole (400 naming the first bad field and its index).`,
        security: [{ bearerAuth: [] }],
        params: deviceIdParam,
        body: syncBodySchema,
        response: {
          202: {
            type: 'object',
            properties: { accepted: { type: 'integer' }, device_id: { type: 'string' }, session_ids: { type: 'array', items: { type: 'string' } } },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const device = await ownedDevice(ctx, p, req.params.device_id);
      // Users are created on first sight (one insert per user and process, then a cache hit).
      await ctx.users?.ensure(device.orgId, device.userId);
      // The simulator says who it is, so its data can be told apart from real devices' in the tables.
      const source = req.headers['user-agent']?.startsWith('attune-simulator') ? 'simulator' : 'sync';
      checkLastWorn(req.body.last_worn, ctx.clock(), readingRulesOf(ctx).maxFutureMs);
      const limited = await budget.take(device, req.body.readings.length);
      if (limited) {
        const after = limited.details[0].retry_after_s;
        if (typeof after === 'number') void reply.header('retry-after', String(after));
        throw limited;
      }
      let records: HeartReadingRecord[];
      try {
        const ends = new Map<string, number>();
        records = await toRecords(ctx, device, req.body.readings, req.body.session_id, source, undefined, ends);
        withSyncBattery(records, req.body.battery_level);
        await publish(ctx, records, ends);
      } catch (err) {
        await budget.refund(device, req.body.readings.length);
        throw err;
      }
      const sessionIds = sessionIdsOf(records);
      // The document's device fields: last_sync (this sync's acceptance), battery (the body's,
      // else the last reading's that has one) and last_worn, kept per device.
      if (ctx.users) {
        const battery = syncBattery(records, req.body.battery_level);
        const lastWorn = req.body.last_worn === undefined ? null : Math.round(parseTimestamp(req.body.last_worn));
        // The readings are on the bus: a failed bookkeeping write must not turn that into an error.
        await ctx.users.noteSync(device.orgId, device.id, { at: ctx.clock(), batteryLevel: battery ?? null, lastWorn, userId: device.userId }).catch((err) => {
          ctx.log.warn({ err, device_id: device.id }, 'recording the sync on the device failed');
        });
      }
      return reply.status(202).send({ accepted: records.length, device_id: device.id, session_ids: sessionIds });
    },
  );

  app.get<{ Params: { device_id: string } }>(
    '/v1/ingest/devices/:device_id',
    {
      config: { auth: { scope: Scopes.writeReadings, socket: true } },
      websocket: true,
      schema: {
        tags: ['ingest'],
        summary: 'Live beats over a WebSocket (see README: session-sync protocol).',
        params: deviceIdParam,
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { device_id: string } }>) => {
      handleIngestSocket(ctx, socket, req, budget);
    },
  );
}

/** The sessions of the records, each once, in the order they first appear (one loop: up to 10,000 records a request). */
export function sessionIdsOf(records: HeartReadingRecord[]): string[] {
  const seen = new Set<string>();
  let last: string | null = null;
  for (const r of records) {
    const s = r.session_id;
    if (s !== null && s !== last) {
      seen.add(s);
      last = s;
    }
  }
  return [...seen];
}

async function publish(ctx: AppContext, records: HeartReadingRecord[], sessionEnds: ReadonlyMap<string, number>): Promise<void> {
  try {
    await publishReadings(ctx.bus, ctx.topics, ctx.codec, records, ctx.ingestLimit.readingsPerRecord, sessionEnds);
  } catch (err) {
    // The 503 says why and when to retry, as documented (Delivery guarantees): bus_publish_failed
    // with retry_after_s (the Retry-After header), and the bus's own cause (publish_timeout, …).
    // Until 12-06 it answered `details: []`, dropping both.
    const inner = isAttuneError(err) ? err.details.find((d) => typeof d.cause === 'string')?.cause : undefined;
    const cause = typeof inner === 'string' ? inner : (err as Error)?.message ?? String(err);
    ctx.log.error({ err, readings: records.length }, 'publishing readings failed');
    throw busUnavailable('the bus did not accept the readings; nothing was stored, retry later', cause);
  }
}

/**
 * Live ingest protocol. After authentication (header, `?token=` or a first
 * `{"type":"authenticate","token":…}` message) a client sends JSON messages, each one
 * reading, an array of readings, or `{"type":"readings","id":…,"readings":[…]}`. Every
 * message is answered with `{"type":"ack","id","accepted"}` once its readings are on the
 * bus, or `{"type":"error","id","error":{code,message,details}}`; the socket stays open.
 * Pinged every ATTUNE_WS_HEARTBEAT_MS: an unanswered ping, or no message for
 * ATTUNE_WS_IDLE_TIMEOUT_S, closes it with 4408 (http/ws-heartbeat.ts) after an error message.
 */
function handleIngestSocket(
  ctx: AppContext,
  socket: WebSocket,
  req: FastifyRequest<{ Params: { device_id: string } }>,
  budget: Budget,
): void {
  let device: Device | null = null;
  let seq = 0;
  const send = (msg: unknown) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg));
  };
  const sendError = (id: unknown, err: unknown) => {
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) ctx.log.error({ err }, 'live ingest failed');
    send(socketErrorMessage(coded, String(req.id), ctx.clock(), id));
  };
  const auth = socketAuth(ctx, socket, req, async (p) => {
    device = await ownedDevice(ctx, p, req.params.device_id);
    await ctx.users?.ensure(device.orgId, device.userId);
    send({ type: 'authenticated', device_id: device.id });
  });
  watchSocket(socket, {
    ...heartbeatSettings(ctx.liveOptions, true),
    log: ctx.log,
    name: 'live-ingest',
    onTimeout: (t) => sendError(null, new AttuneError('request_timeout', `socket closed: ${t.text}`, [{ reason: t.reason }])),
  });
  // Messages are processed one at a time, after authentication, so acks come back in order.
  let chain: Promise<unknown> = auth.initial;
  // A device that sends faster than the bus takes its readings is told so and closed, rather
  // than queueing without bound in this process.
  let queued = 0;

  socket.on('message', (data: Buffer, isBinary: boolean) => {
    // A fresh token goes ahead of the readings waiting for the bus, so a busy device is not
    // closed at expiry with its new token still in the queue.
    if (!isBinary && auth.principal && reauthenticationAhead(auth, data)) return;
    if (++queued > MAX_QUEUED_MESSAGES) {
      sendError(null, new AttuneError('rate_limited', `more than ${MAX_QUEUED_MESSAGES} messages waiting; wait for acks before sending more`));
      socket.close(CloseCodes.rateLimited, 'rate_limited');
      return;
    }
    chain = chain.then(async () => {
      if (socket.readyState !== socket.OPEN) return;
      const id = ++seq;
      let msg: unknown;
      try {
        if (isBinary) throw new AttuneError('unsupported_media_type', 'send readings as JSON text messages');
        msg = JSON.parse(data.toString('utf8'));
      } catch (err) {
        return sendError(id, isAttuneError(err) ? err : new AttuneError('validation_error', 'message is not valid JSON', [{ field: '/', reason: 'invalid_json', message: (err as Error).message }]));
      }
      if (!auth.principal || !device) {
        await auth.handleFirstMessage(msg);
        return;
      }
      if (await auth.handleReauthentication(msg)) return;
      const m = msg as Record<string, unknown>;
      const clientId = m && typeof m === 'object' && !Array.isArray(m) && m.id !== undefined ? m.id : id;
      // The device again for each message, as the sync route does for each request: one removed
      // since the socket opened (DELETE /v1/devices/{id}), or registered again by another user,
      // takes no more readings here either. The check at connect alone let an open socket go on
      // syncing a removed device, and write its battery onto the new owner's (a security review).
      try {
        device = await ownedDevice(ctx, auth.principal, req.params.device_id);
      } catch (err) {
        sendError(clientId, err);
        if (isAttuneError(err) && err.code === 'not_found') socket.close(CloseCodes.notFound, 'not_found');
        return;
      }
      try {
        let readings: ReadingInput[];
        let sessionId: string | undefined;
        let bodyBattery: number | undefined;
        let prefix = '';
        // The same validation as the sync route (parseSyncBody / parseReadings), so a reading
        // is accepted or refused alike, with the same details, on HTTP and here.
        if (m && typeof m === 'object' && !Array.isArray(m) && (m.type === 'readings' || 'readings' in m)) {
          const { type: _t, id: _i, ...body } = m;
          if (Array.isArray(body.readings) && body.readings.length === 0) return send({ type: 'ack', id: clientId, accepted: 0 });
          const parsed = parseSyncBody(body);
          readings = parsed.readings;
          sessionId = parsed.session_id;
          bodyBattery = parsed.battery_level;
          prefix = '/readings';
        } else {
          const list: unknown[] = Array.isArray(msg) ? msg : [m];
          if (list.length === 0) return send({ type: 'ack', id: clientId, accepted: 0 });
          if (list.length > Limits.maxReadingsPerBatch) {
            throw new AttuneError('validation_error', `at most ${Limits.maxReadingsPerBatch} readings per message`, [{ field: '/', reason: 'too_many_readings' }]);
          }
          // A reading sent on its own may carry the message's type and id.
          readings = parseReadings(
            list.map((r) => {
              if (!r || typeof r !== 'object' || Array.isArray(r)) return r;
              const { type: _t, id: _i, ...rest } = r as Record<string, unknown>;
              return rest;
            }),
            '',
          );
        }
        const limited = await budget.take(device, readings.length);
        if (limited) throw limited;
        let records: HeartReadingRecord[];
        try {
          const ends = new Map<string, number>();
          records = await toRecords(ctx, device, readings, sessionId, 'live', prefix, ends);
          withSyncBattery(records, bodyBattery);
          await publish(ctx, records, ends);
        } catch (err) {
          await budget.refund(device, readings.length);
          throw err;
        }
        send({ type: 'ack', id: clientId, accepted: records.length });
        // Live readings count as a sync of the device too (last_sync and battery in GET /v1/users/me).
        const synced = device;
        if (ctx.users && synced) {
          const battery = syncBattery(records, bodyBattery);
          await ctx.users.noteSync(synced.orgId, synced.id, { at: ctx.clock(), batteryLevel: battery ?? null, userId: synced.userId }).catch((err) => {
            ctx.log.warn({ err, device_id: synced.id }, 'recording the sync on the device failed');
          });
        }
      } catch (err) {
        sendError(clientId, err);
      }
    }).finally(() => {
      queued--;
    });
  });
}
