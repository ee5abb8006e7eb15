// Request rate limits and per-user quotas (issue 9), with the tiers of the coherence platform's
// API (lib/tiers.ts):
//   - every request is counted by @fastify/rate-limit in two fixed windows per key, a minute
//     (free 60, plus 300, pro 1,000, enterprise 10,000) and a second (the burst: 10, 50, 100,
//     500); the key is the token's user (org/sub) when the request carries a valid token,
//     else the client's address (IPv6 by /64). The 61st request of a minute, or the 11th of a
//     second, on the free tier is a coded 429 `rate_limited` with Retry-After.
//   - X-RateLimit-Limit (requests a minute), X-RateLimit-Remaining (left in this minute) and
//     X-RateLimit-Reset (when the minute window ends, Unix seconds, as in the platform
//     document) on every response except the health probes, which are not limited: a load
//     balancer probes from one address and must never be refused. A 429 for the burst carries
//     the second window's instead (its limit, 0 left, its end).
//   - open WebSockets per user (1, 2, 5, unlimited), all kinds together (live ingest, live
//     audio, live coherence, live speech): one more is closed with 4029 `rate_limited`
//     (reason socket_quota) right after it authenticates.
//   - registered devices per user (2, 5, 20, unlimited): one more is a 409 `conflict`
//     (reason device_quota); re-registering a device the user has is always allowed.
// With REDIS_URL every count (both windows and the open sockets) lives in Redis, so all API
// instances using it share one budget per user. When Redis cannot be reached the request is
// let through (logged): an outage of the limiter does not take the API down.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimitPlugin, { normalizeIP } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import type { WebSocket } from 'ws';
import { AttuneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Principal } from '../lib/principal.js';
import { Tiers, type Tier, type TierLimits } from '../lib/tiers.js';
import { bearerToken, type Authenticator } from './auth.js';
import { routeAuthOf } from './auth-plugin.js';

export interface RateLimitConfig {
  /** Off: no request limits and no quotas (ATTUNE_RATE_LIMIT=off). */
  enabled: boolean;
  /** The tier of tokens without a `tier` claim, and of requests without a valid token. */
  defaultTier: Tier;
  /** Shared counts across instances (REDIS_URL); null: in this process. */
  redisUrl: string | null;
  /** Whose X-Forwarded-For gives the client address (ATTUNE_TRUST_PROXY; Fastify's trustProxy); absent: nobody's. */
  trustProxy?: boolean | number | string[];
}

/** How long a Redis socket entry lives without a refresh (a crashed instance's sockets free up after it). */
const SOCKET_TTL_MS = 60_000;
const SOCKET_REFRESH_MS = 20_000;

/** Open WebSockets per user, counted in this process or in Redis. */
export interface SocketQuota {
  /**
   * Counts `socket` for `p`'s user until it closes, or throws a coded 429 (socket_quota) when
   * the user already has their tier's number open.
   */
  acquire(p: Principal, socket: WebSocket): Promise<void>;
  /** Open sockets of a user (this process, or all instances with Redis). */
  count(p: Pick<Principal, 'orgId' | 'userId'>): Promise<number>;
}

/** A token bucket's rate and burst (readings a second, and saved up). */
export interface BucketLimits {
  ratePerS: number;
  burst: number;
}

/**
 * The ingest readings budget kept in Redis (a device's and its user's token buckets, both
 * charged or neither), so every gateway using that Redis spends one budget. Without Redis the
 * gateway keeps it in process (lib/token-bucket.ts ReadingBudget), with the same answers.
 */
export interface SharedReadingBudget {
  take(userKey: string, deviceKey: string, n: number, device: BucketLimits, user: BucketLimits): Promise<{ scope: 'device' | 'user'; waitS: number; limit: BucketLimits } | null>;
  refund(userKey: string, deviceKey: string, n: number, device: BucketLimits, user: BucketLimits): Promise<void>;
}

export interface RateLimits {
  readonly config: RateLimitConfig;
  readonly redis: Redis | null;
  readonly sockets: SocketQuota;
  /** The readings budget in Redis; null without REDIS_URL (the gateway keeps it in process). */
  readonly readings: SharedReadingBudget | null;
  tierOf(p: Pick<Principal, 'tier'> | null | undefined): Tier;
  limitsOf(p: Pick<Principal, 'tier'> | null | undefined): TierLimits;
  /**
   * Registers a device within the user's device quota: `register` runs when the device is
   * known already (re-registration, or another user's: register refuses that) or the user
   * has fewer than their tier's number; else a coded 409 device_quota. Registrations of one
   * user run one at a time: in this process, and with Redis across instances (a lock per
   * user), so concurrent ones cannot overshoot together.
   */
  withDeviceQuota<T>(p: Principal, deviceId: string, devices: DeviceCounter, register: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** What the device quota needs from the devices repository. */
export interface DeviceCounter {
  get(orgId: string, id: string): Promise<unknown | null>;
  countOfUser(orgId: string, userId: string): Promise<number>;
}

const userKey = (p: Pick<Principal, 'orgId' | 'userId'>) => `${p.orgId}/${p.userId}`;

/**
 * The limits of one process. With a Redis URL it connects first and refuses to start when
 * Redis does not answer (a misspelt URL should not silently mean "no shared limits").
 */
export async function createRateLimits(config: RateLimitConfig, log: Logger): Promise<RateLimits> {
  let redis: Redis | null = null;
  if (config.enabled && config.redisUrl) {
    // Imported only with a Redis URL: most processes have none, and loading ioredis (46 files)
    // would lengthen every start before Attune can listen.
    const { Redis } = await import('ioredis');
    redis = new Redis(config.redisUrl, {
      lazyConnect: true,
      // A limiter that waits for Redis would stall every request: fail fast, let through.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5_000,
      commandTimeout: 1_000,
    });
    let lastWarn = 0;
    redis.on('error', (err) => {
      if (Date.now() - lastWarn > 10_000) {
        lastWarn = Date.now();
        log.warn({ err: err.message }, 'redis (shared rate limits) unavailable: requests are let through');
      }
    });
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new Error(`REDIS_URL: cannot connect (${(err as Error).message})`);
    }
  }
  const tierOf = (p: Pick<Principal, 'tier'> | null | undefined): Tier => p?.tier ?? config.defaultTier;
  const sockets = redis ? redisSocketQuota(redis, tierOf, log) : memorySocketQuota(tierOf);
  const deviceLocks = new Map<string, Promise<unknown>>();
  return {
    config,
    redis,
    sockets: config.enabled ? sockets : { acquire: async () => {}, count: sockets.count },
    readings: redis ? redisReadingBudget(redis, log) : null,
    tierOf,
    limitsOf: (p) => Tiers[tierOf(p)],
    async withDeviceQuota(p, deviceId, devices, register) {
      const quota = Tiers[tierOf(p)].devices;
      if (!config.enabled || !Number.isFinite(quota)) return register();
      const key = userKey(p);
      const previous = deviceLocks.get(key) ?? Promise.resolve();
      const run = previous.catch(() => {}).then(async () => {
        const unlock = redis ? await redisLock(redis, `attune:devices-lock:${key}`, log) : null;
        try {
          if (!(await devices.get(p.orgId, deviceId))) {
            const n = await devices.countOfUser(p.orgId, p.userId);
            if (n >= quota) {
              throw new AttuneError('conflict', `the ${tierOf(p)} tier allows ${quota} devices per user; this user has ${n}`, [
                { field: '/device_id', reason: 'device_quota', tier: tierOf(p), limit: quota },
              ]);
            }
          }
          return await register();
        } finally {
          await unlock?.();
        }
      });
      deviceLocks.set(key, run);
      try {
        return await run;
      } finally {
        if (deviceLocks.get(key) === run) deviceLocks.delete(key);
      }
    },
    async close() {
      if ('stop' in sockets) (sockets as { stop(): void }).stop();
      if (redis) await redis.quit().catch(() => redis?.disconnect());
    },
  };
}

const UNLOCK_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * A short lock in Redis (SET NX PX, released only by its holder; it expires by itself after
 * 10 s should its holder die). Waits up to 5 s for it; without an answer from Redis, or after
 * the wait, goes on unlocked (logged): a lock that cannot be had must not stop registrations.
 */
async function redisLock(redis: Redis, key: string, log: Logger): Promise<() => Promise<void>> {
  const token = randomUUID();
  const deadline = Date.now() + 5_000;
  for (let delay = 5; ; delay = Math.min(100, delay * 2)) {
    try {
      if ((await redis.set(key, token, 'PX', 10_000, 'NX')) === 'OK') {
        return async () => {
          await redis.eval(UNLOCK_LUA, 1, key, token).catch(() => {});
        };
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'redis unavailable: device registration not locked');
      return async () => {};
    }
    if (Date.now() > deadline) {
      log.warn({ key }, 'device registration lock not had in 5 s: going on without it');
      return async () => {};
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

function quotaError(tier: Tier, limit: number, open: number): AttuneError {
  return new AttuneError('rate_limited', `the ${tier} tier allows ${limit} open WebSocket${limit === 1 ? '' : 's'} per user; close one first`, [
    { reason: 'socket_quota', tier, limit, open },
  ]);
}

/** Counts in this process (one instance, or no Redis). */
function memorySocketQuota(tierOf: (p: Principal) => Tier): SocketQuota {
  const open = new Map<string, Set<WebSocket>>();
  return {
    async acquire(p, socket) {
      const tier = tierOf(p);
      const limit = Tiers[tier].sockets;
      if (!Number.isFinite(limit)) return;
      const key = userKey(p);
      let set = open.get(key);
      if (!set) open.set(key, (set = new Set()));
      if (set.has(socket)) return;
      if (set.size >= limit) throw quotaError(tier, limit, set.size);
      if (socket.readyState === socket.CLOSED || socket.readyState === socket.CLOSING) return;
      set.add(socket);
      socket.once('close', () => {
        set.delete(socket);
        if (set.size === 0 && open.get(key) === set) open.delete(key);
      });
    },
    async count(p) {
      return open.get(userKey(p))?.size ?? 0;
    },
  };
}

// One sorted set per user: members are this instance's socket ids, scores when they expire
// (Redis server time). Expired members (an instance that died) are dropped before counting;
// every instance refreshes its own members' scores.
const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return -n - 1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return n + 1
`;
const REFRESH_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`;
const COUNT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`;

function redisSocketQuota(redis: Redis, tierOf: (p: Principal) => Tier, log: Logger): SocketQuota & { stop(): void } {
  const instance = randomUUID();
  let seq = 0;
  const mine = new Map<WebSocket, { key: string; member: string }>();
  const zkey = (p: Pick<Principal, 'orgId' | 'userId'>) => `attune:sockets:${userKey(p)}`;
  const refresh = setInterval(() => {
    for (const { key, member } of mine.values()) {
      redis.eval(REFRESH_LUA, 1, key, member, SOCKET_TTL_MS).catch(() => {});
    }
  }, SOCKET_REFRESH_MS);
  refresh.unref();
  return {
    async acquire(p, socket) {
      const tier = tierOf(p);
      const limit = Tiers[tier].sockets;
      if (!Number.isFinite(limit) || mine.has(socket)) return;
      const key = zkey(p);
      const member = `${instance}:${++seq}`;
      let n: number;
      try {
        n = Number(await redis.eval(ACQUIRE_LUA, 1, key, member, limit, SOCKET_TTL_MS));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'redis unavailable: socket quota not checked');
        return;
      }
      if (n < 0) throw quotaError(tier, limit, -n - 1);
      const release = () => {
        mine.delete(socket);
        redis.zrem(key, member).catch(() => {});
      };
      if (socket.readyState === socket.CLOSED || socket.readyState === socket.CLOSING) return release();
      mine.set(socket, { key, member });
      socket.once('close', release);
    },
    async count(p) {
      return Number(await redis.eval(COUNT_LUA, 1, zkey(p)));
    },
    stop() {
      clearInterval(refresh);
    },
  };
}

// Two token buckets (device, user) as hashes {tokens, at}; refilled by Redis server time; both
// charged or neither. Returns the seconds each would make the caller wait, as strings (Lua
// numbers would be truncated to integers): "0" passes, "-1" never (more than the burst).
const BUDGET_TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local function level(key, rate, burst)
  if rate <= 0 then return nil end
  local v = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(v[1]), tonumber(v[2])
  if tokens == nil or at == nil then return burst end
  return math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
end
local function wait(tokens, rate, burst)
  if tokens == nil or n <= tokens then return 0 end
  if n > burst then return -1 end
  return (n - tokens) / rate
end
local dRate, dBurst, uRate, uBurst = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local d, u = level(KEYS[1], dRate, dBurst), level(KEYS[2], uRate, uBurst)
local dw, uw = wait(d, dRate, dBurst), wait(u, uRate, uBurst)
if dw ~= 0 or uw ~= 0 then return { tostring(dw), tostring(uw) } end
if d ~= nil then
  redis.call('HSET', KEYS[1], 'tokens', tostring(d - n), 'at', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(dBurst / dRate * 1000) + 1000)
end
if u ~= nil then
  redis.call('HSET', KEYS[2], 'tokens', tostring(u - n), 'at', now)
  redis.call('PEXPIRE', KEYS[2], math.ceil(uBurst / uRate * 1000) + 1000)
end
return { '0', '0' }
`;
const BUDGET_REFUND_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
for i = 1, 2 do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(v[1]), tonumber(v[2])
  if rate > 0 and tokens ~= nil and at ~= nil then
    tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate + n)
    redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'at', now)
  end
end
return 1
`;

function redisReadingBudget(redis: Redis, log: Logger): SharedReadingBudget {
  const keys = (userKey: string, deviceKey: string) => [`attune:readings:device:${deviceKey}`, `attune:readings:user:${userKey}`];
  return {
    async take(userKey, deviceKey, n, device, user) {
      let answer: [string, string];
      try {
        answer = (await redis.eval(BUDGET_TAKE_LUA, 2, ...keys(userKey, deviceKey), n, device.ratePerS, device.burst, user.ratePerS, user.burst)) as [string, string];
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'redis unavailable: readings budget not checked');
        return null;
      }
      const [dw, uw] = answer.map((w) => (Number(w) < 0 ? Infinity : Number(w)));
      if (dw === 0 && uw === 0) return null;
      return dw >= uw ? { scope: 'device', waitS: dw, limit: device } : { scope: 'user', waitS: uw, limit: user };
    },
    async refund(userKey, deviceKey, n, device, user) {
      await redis.eval(BUDGET_REFUND_LUA, 2, ...keys(userKey, deviceKey), n, device.ratePerS, device.burst, user.ratePerS, user.burst).catch(() => {});
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The server's limits and quotas (registerRateLimit); null when off or not configured. */
    rateLimits: RateLimits | null;
  }
  interface FastifyRequest {
    /** Who the rate limits count this request against (set by the rate-limit hook). */
    rateLimitSubject?: { key: string; tier: Tier };
  }
}

/** Fastify's trustProxy for ATTUNE_TRUST_PROXY: a number of hops as the function Fastify makes of one (its types take no number). */
export function trustProxyOption(tp: boolean | number | string[] | undefined): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof tp === 'number') return (_address, hop) => hop < tp;
  return tp ?? false;
}

/** Routes never limited and without the headers: the health probes (a load balancer's address must never be refused). */
const EXEMPT = /^\/health(\/|$)/;

/**
 * Adds the limits to `app` (and `app.rateLimits`, for the device and socket quotas): call
 * before registerAuth, so that requests refused by the authentication are counted (by
 * address) too. Without `ctx.rateLimit` (contexts built by hand in tests) or with it off,
 * nothing is limited. Redis, if any, is closed with the server.
 */
export async function registerRateLimit(app: FastifyInstance, ctx: { rateLimit?: RateLimitConfig; auth: Authenticator; log: Logger }): Promise<void> {
  if (!ctx.rateLimit || !ctx.rateLimit.enabled) {
    app.decorate('rateLimits', null);
    return;
  }
  const limits = await createRateLimits(ctx.rateLimit, ctx.log);
  app.decorate('rateLimits', limits);
  app.addHook('onClose', async () => limits.close());
  await app.register(rateLimitPlugin, {
    global: false,
    ...(limits.redis ? { redis: limits.redis, nameSpace: 'attune:rl:' } : {}),
    // Redis down or slow: let the request through rather than fail it.
    skipOnError: true,
    cache: 100_000,
  });
  const subject = (req: FastifyRequest) => req.rateLimitSubject!;
  // Two fixed windows per key; the keys differ by prefix (the plugin's Redis store gives both
  // limiters the same namespace).
  const perMinute = app.createRateLimit({
    keyGenerator: (req) => `m:${subject(req).key}`,
    max: (req) => Tiers[subject(req).tier].perMinute,
    timeWindow: 60_000,
  });
  const perSecond = app.createRateLimit({
    keyGenerator: (req) => `s:${subject(req).key}`,
    max: (req) => Tiers[subject(req).tier].burst,
    timeWindow: 1_000,
  });
  app.addHook('onRequest', async (req, reply) => {
    if (EXEMPT.test(req.routeOptions.url ?? req.url)) return;
    req.rateLimitSubject = await subjectOf(req, ctx.auth, limits);
    const [m, s] = await Promise.all([perMinute(req), perSecond(req)]);
    // isAllowed only comes from an allow list, which is not used here.
    if (m.isAllowed || s.isAllowed) return;
    const minute = m;
    const second = s;
    const tier = req.rateLimitSubject.tier;
    const now = Date.now();
    // Without an answer from the store (skipOnError) the result has no ttl: no headers then.
    if (minute.ttl > 0) {
      void reply.header('x-ratelimit-limit', String(Tiers[tier].perMinute));
      void reply.header('x-ratelimit-remaining', String(minute.remaining));
      void reply.header('x-ratelimit-reset', String(Math.ceil((now + minute.ttl) / 1000)));
    }
    const over = refusalOf(minute, second);
    if (!over) return;
    const retryAfterS = Math.max(1, over.r.ttlInSeconds);
    void reply.header('retry-after', String(retryAfterS));
    if (over.window === 'second' && second.ttl > 0) {
      // Refused for the burst: the headers are the second window's, so a client that waits for
      // X-RateLimit-Reset (the session-sync document's example) waits the second it must, not
      // to the end of the minute (up to 59 s; a walkthrough).
      void reply.header('x-ratelimit-limit', String(Tiers[tier].burst));
      void reply.header('x-ratelimit-remaining', '0');
      void reply.header('x-ratelimit-reset', String(Math.ceil((now + second.ttl) / 1000)));
    }
    throw new AttuneError(
      'rate_limited',
      over.window === 'minute'
        ? minute.isExceeded
          ? `over ${Tiers[tier].perMinute} requests a minute (${tier} tier); retry in ${retryAfterS} s`
          : `over ${Tiers[tier].burst} requests a second (${tier} tier burst), and that was the last of the minute's ${Tiers[tier].perMinute}; retry in ${retryAfterS} s`
        : `over ${Tiers[tier].burst} requests a second (${tier} tier burst); retry in ${retryAfterS} s`,
      [{ reason: 'rate_limited', window: over.window, tier, limit: over.window === 'minute' ? Tiers[tier].perMinute : Tiers[tier].burst, retry_after_s: retryAfterS }],
    );
  });
}

/** What a fixed-window limiter answered for one request (the fields the refusal reads). */
interface WindowAnswer {
  isExceeded: boolean;
  remaining: number;
  ttl: number;
  ttlInSeconds: number;
}

/**
 * Which window refuses a request, if any. The minute's when it is exceeded, and also when the
 * burst refused a request that was the minute's last allowed one (none left, not yet over): no
 * request passes before the minute ends then, so a refusal naming the second ("retry in 1 s")
 * sent the client back into a refusal for the minute (a review of 12-06). Otherwise the
 * second's when it is exceeded.
 */
export function refusalOf<R extends WindowAnswer>(minute: R, second: R): { window: 'minute' | 'second'; r: R } | null {
  if (minute.isExceeded || (second.isExceeded && minute.remaining === 0)) return { window: 'minute', r: minute };
  return second.isExceeded ? { window: 'second', r: second } : null;
}

/**
 * The key a request is counted under: its token's user when the token is valid (the token of
 * a WebSocket may also be in ?token=), else the client's address. Verifying here and again in
 * the auth hook costs one lookup: the verifier caches tokens.
 */
async function subjectOf(req: FastifyRequest, auth: Authenticator, limits: RateLimits): Promise<{ key: string; tier: Tier }> {
  const declared = routeAuthOf(req);
  let token = bearerToken(req.headers.authorization);
  // An API key may come in X-API-Key instead (http/api-key-auth.ts): counted under its user too.
  const apiKey = req.headers['x-api-key'];
  if (!token && typeof apiKey === 'string' && apiKey.trim() !== '') token = apiKey.trim();
  if (!token && declared && declared !== 'public' && declared.socket) {
    const q = (req.query as Record<string, unknown> | undefined)?.token;
    if (typeof q === 'string') token = q;
  }
  if (token) {
    try {
      const p = await auth.verify(token);
      return { key: `u:${userKey(p)}`, tier: limits.tierOf(p) };
    } catch {
      // Counted by address; the auth hook answers 401.
    }
  }
  return { key: `ip:${normalizeIP(req.ip)}`, tier: limits.config.defaultTier };
}
