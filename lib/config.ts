// Configuration: environment variables, overridable by command-line flags, validated once
// at start. A bad value stops the program with one line naming the variable, because a
// half-configured stream worker that starts anyway is worse than one that refuses.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { TIER_NAMES, type Tier } from './tiers.js';

export interface AttuneConfig {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  /** The embedded in-process bus, or Kafka when brokers are given. */
  bus: 'embedded' | 'kafka';
  kafkaBrokers: string[];
  kafkaClientId: string;
  /** Bound of one bus publish (ATTUNE_PUBLISH_TIMEOUT_MS, 5 s): past it the gateway answers 503 + Retry-After. */
  publishTimeoutMs: number;
  /** The Kafka client behind the bus (ATTUNE_KAFKA_CLIENT): @platformatic/kafka (the default: maintained) or kafkajs (no release since 2023). */
  kafkaClient: 'platformatic' | 'kafkajs';
  /** Consumer group session timeout (ATTUNE_KAFKA_SESSION_TIMEOUT_MS, 10 s): how long a crashed member holds its partitions. */
  kafkaSessionTimeoutMs: number;
  /** How long a starting process waits for an unreachable Kafka (ATTUNE_KAFKA_CONNECT_WAIT_MS, 60 s) before it exits with a clear error. */
  kafkaConnectWaitMs: number;
  /** How long a starting process waits for an unreachable PostgreSQL server (ATTUNE_POSTGRES_CONNECT_WAIT_MS, 60 s) before it exits with a clear error. */
  postgresConnectWaitMs: number;
  /** Static group membership (ATTUNE_KAFKA_INSTANCE_ID, platformatic only): a restarted process with the same id gets its partitions back at once. */
  kafkaInstanceId: string | null;
  schemaRegistryUrl: string | null;
  /** Partitions per topic when Attune creates its topics. */
  topicPartitions: number;
  /** Prepended to every topic name, so deployments can share a Kafka cluster. */
  topicPrefix: string;
  /** PostgreSQL server for entities (devices, sessions, speech sessions, uploads); null means PGlite in `${dataDir}/postgres`. */
  databaseUrl: string | null;
  /** ClickHouse server URL; null means chDB in `${dataDir}/clickhouse`. */
  clickhouseUrl: string | null;
  clickhouseUser: string;
  clickhousePassword: string;
  clickhouseDatabase: string;
  jwt: {
    /** HS256 shared secret; in embedded mode generated once into the data dir when unset. */
    secret: string | null;
    /** RS256 public key (PEM), for verifying tokens issued elsewhere. */
    publicKey: string | null;
    /** An identity provider's JWKS document (RS256 keys by kid). */
    jwksUrl: string | null;
    issuer: string;
    audience: string;
    /** Oldest token accepted (by its iat), seconds. */
    maxAgeS: number;
  };
  coherence: {
    allowedLatenessMs: number;
    /**
     * Event time a session may stay silent while its partition's event time moves on before it
     * is ended and its last windows closed (as its end call would); never the wall clock.
     */
    sessionIdleEndMs: number;
    /** Publish provisional windows for live display (pipelines/coherence/worker.ts). */
    provisionalWindows: boolean;
  };
  /**
   * The group worker's (pipelines/group/group-windows.ts): how far the group's newest
   * participant window must be past a group window for it to be final (a participant whose
   * windows reach the worker later than that is left out of it), and whether a window closes
   * as soon as everyone who could count in it has sent theirs.
   */
  group: { allowedLatenessMs: number; earlyClose: boolean; silentAfterMs: number };
  writer: { maxRows: number; maxDelayMs: number };
  /**
   * Per-device ingest limit (readings a second, and the burst saved up; 0 turns it off), and
   * when a reading may be dated (ingest/readings.ts ReadingRules): at most maxFutureMs ahead
   * (never more than the allowed lateness), at most maxAgeMs old when it names no session,
   * within [started_at − sessionLeadMs, ended_at + sessionGraceMs] of the session it names.
   */
  ingestLimit: { readingsPerS: number; burst: number; readingsPerRecord: number; maxFutureMs: number; maxAgeMs: number; sessionLeadMs: number; sessionGraceMs: number; userReadingsPerS: number; userBurst: number };
  /**
   * Request rate limits and quotas (http/rate-limit.ts, lib/tiers.ts): on unless
   * ATTUNE_RATE_LIMIT=off; tokens without a `tier` claim get defaultTier (ATTUNE_DEFAULT_TIER);
   * with REDIS_URL the counts are shared by every instance using that Redis.
   */
  rateLimit: { enabled: boolean; defaultTier: Tier; redisUrl: string | null; trustProxy: boolean | number | string[] };
  live: {
    /** Messages queued for one WebSocket client before it is disconnected as too slow. */
    maxBufferedMessages: number;
    heartbeatMs: number;
    /** An ingest socket (live readings, live audio) with no message for this long is closed with 4408 (pings alone do not keep it). */
    idleTimeoutMs: number;
  };
  /** Speech file uploads: larger or longer files are refused with 413. */
  speechUpload: { maxBytes: number; maxDurationS: number };
  /** ATTUNE_AUDIO_LEASE_S: how long an audio stream's claim lasts unless its ingest process renews it (ingest/audio/stream-leases.ts). */
  audioLeaseMs: number;
  /** Largest stored JSON field (session metadata, speech-session settings, upload metadata), bytes. */
  maxStoredJsonBytes: number;
  /** Origins whose pages may read answers (CORS, http/response-headers.ts): ATTUNE_CORS_ORIGINS, a comma list or `*`; empty (default): no CORS headers. */
  corsOrigins: string[];
  /** ATTUNE_ERROR_DOCS_URL: where this deployment publishes Attune's README; error bodies then carry documentation_url at its error catalogue (http/errors.ts). Null: no such field. */
  errorDocsUrl: string | null;
  /**
   * HTTP timeouts (http/timeouts.ts HttpTimeouts): request line and headers, the whole request
   * with its body (the ceiling for uploads), an idle socket, an idle kept-alive connection, and
   * the body's minimum rate after its first seconds.
   */
  httpTimeouts: { headersTimeoutMs: number; requestTimeoutMs: number; idleTimeoutMs: number; keepAliveTimeoutMs: number; bodyInitialS: number; bodyMinRate: number };
  /**
   * GET /metrics (http/metrics.ts): on a listener of its own at host:port (ATTUNE_METRICS_PORT,
   * unset = none; ATTUNE_METRICS_HOST, default 127.0.0.1), and on the main port only behind
   * ATTUNE_METRICS_TOKEN (which the metrics listener then asks for too). Neither: no /metrics.
   */
  metrics: { port: number | null; host: string; token: string | null };
  /** The speech worker (runs with the worker role). */
  speech: {
    enabled: boolean;
    /** Recognition model when a session names none: moonshine-tiny, moonshine-base, or a folder with a Moonshine-signature model. */
    model: string;
    /** The same for uploads (ATTUNE_SPEECH_UPLOAD_MODEL, default moonshine-base); `model` is then the live streams' default. */
    uploadModel: string;
    /** A scoring model with the rubric's signature; null for the shipped rubric. */
    scoreModelPath: string | null;
    /** Forced alignment of word times (else syllable estimates). */
    alignment: boolean;
  };
  simulate: boolean;
  simulatorDevices: number;
  /** Participants of the simulated group session `attune all --simulate` runs (0: none). */
  simulatorGroup: number;
  /**
   * API keys (http/api-key-auth.ts): the HS256 key of the tokens POST /v1/auth/token mints
   * (ATTUNE_TOKEN_SECRET; null: JWT_SECRET, else the data directory's secret) and their
   * lifetime (ATTUNE_TOKEN_TTL_S, 900).
   */
  apiKeys: { tokenSecret: string | null; tokenTtlS: number };
  /**
   * Webhooks (pipelines/webhooks/): ATTUNE_WEBHOOKS_ALLOW_PRIVATE=1 lets them reach loopback,
   * private and link-local addresses; ATTUNE_WEBHOOKS_ALLOW_HOSTS names hosts or CIDRs that
   * may be reached although private (comma list). ATTUNE_WEBHOOKS=0 runs no dispatcher.
   * ATTUNE_WEBHOOKS_SETTLE_MS: how long session.completed waits for the session's last windows;
   * ATTUNE_WEBHOOKS_MAX_SETTLE_MS: how long at most, when they do not reach its last beat by then.
   */
  webhooks: { enabled: boolean; allowPrivate: boolean; allowHosts: string[]; settleMs: number | null; maxSettleMs: number };
}

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `expected 1/0, true/false, yes/no or on/off, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], def: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function postgresUrl(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('protocol');
    return raw;
  } catch {
    // Not echoed: the URL may carry a password.
    throw new ConfigError(name, 'expected a postgres:// or postgresql:// URL');
  }
}

function url(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
    return raw;
  } catch {
    throw new ConfigError(name, `expected an http(s) URL, got "${raw}"`);
  }
}

/**
 * ATTUNE_TRUST_PROXY: whose X-Forwarded-For gives the client address (rate limits by address,
 * logs). Empty (default): nobody's, the address is the TCP peer's; a number: that many proxy
 * hops in front; addresses or CIDRs (comma list): those proxies; `true`: any (only when
 * nothing can reach Attune but through the proxy: the header is the client's to write).
 */
function trustProxy(env: Env, name: string): boolean | number | string[] {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return int(env, name, 0, 0, 100);
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of list) {
    const [addr, bits, extra] = a.split('/');
    const v = isIP(addr);
    if (v === 0 || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= (v === 4 ? 32 : 128)))) {
      throw new ConfigError(name, `expected true, a number of hops, or addresses/CIDRs, got "${a}"`);
    }
  }
  return list;
}

function redisUrl(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error('protocol');
    return raw;
  } catch {
    // Not echoed: the URL may carry a password.
    throw new ConfigError(name, 'expected a redis:// or rediss:// URL');
  }
}

function brokers(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return [];
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const b of list) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b)) throw new ConfigError(name, `expected host:port[,host:port...], got "${b}"`);
  }
  return list;
}

function topicPrefix(env: Env): string {
  const raw = env.ATTUNE_TOPIC_PREFIX ?? '';
  if (raw !== '' && !/^[A-Za-z0-9._-]{1,100}$/.test(raw)) throw new ConfigError('ATTUNE_TOPIC_PREFIX', `may hold only letters, digits, '.', '_' and '-', got "${raw}"`);
  return raw;
}

/** When readings may be dated: the future tolerance defaults to, and may not exceed, the allowed lateness. */
function readingRules(e: Env): { maxFutureMs: number; maxAgeMs: number; sessionLeadMs: number; sessionGraceMs: number } {
  const lateness = int(e, 'ATTUNE_ALLOWED_LATENESS_MS', 10_000, 0, 600_000);
  const maxFutureMs = int(e, 'ATTUNE_READING_MAX_FUTURE_MS', lateness, 0, 600_000);
  if (maxFutureMs > lateness) {
    throw new ConfigError('ATTUNE_READING_MAX_FUTURE_MS', `must not exceed ATTUNE_ALLOWED_LATENESS_MS (${lateness}): a reading further ahead would make every later beat of its session late`);
  }
  return {
    maxFutureMs,
    maxAgeMs: int(e, 'ATTUNE_READING_MAX_AGE_DAYS', 30, 1, 36_500) * 86_400_000,
    sessionLeadMs: lateness,
    sessionGraceMs: int(e, 'ATTUNE_SESSION_GRACE_MS', lateness, 0, 86_400_000),
  };
}

/** Where GET /metrics is served: ATTUNE_METRICS_PORT (0: a free port) and _HOST, ATTUNE_METRICS_TOKEN. */
function metricsConfig(e: Env): AttuneConfig['metrics'] {
  const port = e.ATTUNE_METRICS_PORT === undefined || e.ATTUNE_METRICS_PORT === '' ? null : int(e, 'ATTUNE_METRICS_PORT', 0, 0, 65535);
  if (port !== null && port !== 0 && port === int(e, 'PORT', 8080, 0, 65535)) throw new ConfigError('ATTUNE_METRICS_PORT', `must differ from PORT (${port}): metrics stay off the public port`);
  const token = e.ATTUNE_METRICS_TOKEN === undefined || e.ATTUNE_METRICS_TOKEN === '' ? null : e.ATTUNE_METRICS_TOKEN;
  if (token !== null && !/^[\x21-\x7e]{16,512}$/.test(token)) throw new ConfigError('ATTUNE_METRICS_TOKEN', 'must be 16 to 512 printable characters without spaces');
  return { port, host: e.ATTUNE_METRICS_HOST?.trim() || '127.0.0.1', token };
}

/** ATTUNE_CORS_ORIGINS: origins such as https://app.example.com or http://localhost:3000, comma-separated, or `*`. */
function corsOrigins(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return [];
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const o of list) {
    if (o === '*') continue;
    let u: URL | null = null;
    try {
      u = new URL(o);
    } catch {
      /* reported below */
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== o) {
      throw new ConfigError(name, `expected origins scheme://host[:port] (no path, no trailing slash) or *, got "${o}"`);
    }
  }
  return [...new Set(list)];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Reads the configuration. `flags` are command-line values that take precedence over the
 * environment (they are given in the environment variables' names).
 */
export function loadConfig(env: Env = process.env, flags: Env = {}): AttuneConfig {
  const e: Env = { ...env, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
  const kafkaBrokers = brokers(e, 'KAFKA_BROKERS');
  const bus = oneOf(e, 'ATTUNE_BUS', ['embedded', 'kafka'] as const, kafkaBrokers.length > 0 ? 'kafka' : 'embedded');
  if (bus === 'kafka' && kafkaBrokers.length === 0) {
    throw new ConfigError('KAFKA_BROKERS', 'required when ATTUNE_BUS=kafka');
  }
  const database = e.CLICKHOUSE_DATABASE ?? 'attune';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new ConfigError('CLICKHOUSE_DATABASE', `must be a plain identifier, got "${database}"`);
  }
  const publicKey = e.JWT_PUBLIC_KEY ?? null;
  if (publicKey !== null && !publicKey.includes('BEGIN PUBLIC KEY')) {
    throw new ConfigError('JWT_PUBLIC_KEY', 'expected a PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  const secret = e.JWT_SECRET ?? null;
  if (secret !== null && publicKey !== null) {
    throw new ConfigError('JWT_PUBLIC_KEY', 'set either JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256), not both');
  }
  const jwksUrl = url(e, 'JWT_JWKS_URL');
  // Keys fetched in the clear could be swapped by anyone on the path: https, except on this machine.
  if (jwksUrl !== null && new URL(jwksUrl).protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(new URL(jwksUrl).hostname)) {
    throw new ConfigError('JWT_JWKS_URL', 'must be https (http only for 127.0.0.1, localhost or [::1])');
  }
  if (jwksUrl !== null && (secret !== null || publicKey !== null)) {
    throw new ConfigError('JWT_JWKS_URL', 'set one of JWT_SECRET (HS256), JWT_PUBLIC_KEY or JWT_JWKS_URL (RS256), not several');
  }
  if (secret !== null && secret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters');
  }
  return {
    host: e.HOST ?? '0.0.0.0',
    port: int(e, 'PORT', 8080, 0, 65535),
    dataDir: resolve(e.ATTUNE_DATA_DIR ?? './data'),
    logLevel: oneOf(e, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    bus,
    kafkaBrokers,
    kafkaClientId: e.KAFKA_CLIENT_ID ?? 'attune',
    publishTimeoutMs: int(e, 'ATTUNE_PUBLISH_TIMEOUT_MS', 5_000, 100, 120_000),
    kafkaClient: oneOf(e, 'ATTUNE_KAFKA_CLIENT', ['platformatic', 'kafkajs'] as const, 'platformatic'),
    kafkaSessionTimeoutMs: int(e, 'ATTUNE_KAFKA_SESSION_TIMEOUT_MS', 10_000, 6_000, 300_000),
    kafkaConnectWaitMs: int(e, 'ATTUNE_KAFKA_CONNECT_WAIT_MS', 60_000, 0, 86_400_000),
    postgresConnectWaitMs: int(e, 'ATTUNE_POSTGRES_CONNECT_WAIT_MS', 60_000, 0, 86_400_000),
    kafkaInstanceId: e.ATTUNE_KAFKA_INSTANCE_ID?.trim() || null,
    schemaRegistryUrl: url(e, 'SCHEMA_REGISTRY_URL'),
    topicPartitions: int(e, 'ATTUNE_TOPIC_PARTITIONS', 6, 1, 1024),
    topicPrefix: topicPrefix(e),
    databaseUrl: postgresUrl(e, 'DATABASE_URL'),
    clickhouseUrl: url(e, 'CLICKHOUSE_URL'),
    clickhouseUser: e.CLICKHOUSE_USER ?? 'default',
    clickhousePassword: e.CLICKHOUSE_PASSWORD ?? '',
    clickhouseDatabase: database,
    jwt: {
      secret,
      publicKey,
      jwksUrl,
      issuer: e.JWT_ISSUER ?? 'attune',
      audience: e.JWT_AUDIENCE ?? 'attune-api',
      // One day by default; at most a year.
      maxAgeS: int(e, 'JWT_MAX_AGE_S', 86_400, 60, 31_536_000),
    },
    coherence: {
      allowedLatenessMs: int(e, 'ATTUNE_ALLOWED_LATENESS_MS', 10_000, 0, 600_000),
      sessionIdleEndMs: int(e, 'ATTUNE_SESSION_IDLE_END_MS', 300_000, 10_000, 86_400_000),
      provisionalWindows: bool(e, 'ATTUNE_PROVISIONAL_WINDOWS', true),
    },
    group: {
      allowedLatenessMs: int(e, 'ATTUNE_GROUP_ALLOWED_LATENESS_MS', 10_000, 0, 600_000),
      earlyClose: bool(e, 'ATTUNE_GROUP_EARLY_CLOSE', false),
      silentAfterMs: int(e, 'ATTUNE_GROUP_SILENT_AFTER_MS', 120_000, 10_000, 86_400_000),
    },
    httpTimeouts: {
      headersTimeoutMs: int(e, 'HTTP_HEADERS_TIMEOUT_S', 10, 1, 300) * 1000,
      requestTimeoutMs: int(e, 'HTTP_REQUEST_TIMEOUT_S', 900, 10, 86_400) * 1000,
      idleTimeoutMs: int(e, 'HTTP_IDLE_TIMEOUT_S', 60, 1, 3_600) * 1000,
      keepAliveTimeoutMs: int(e, 'HTTP_KEEP_ALIVE_TIMEOUT_S', 30, 1, 3_600) * 1000,
      bodyInitialS: int(e, 'HTTP_BODY_TIMEOUT_S', 10, 1, 3_600),
      bodyMinRate: int(e, 'HTTP_BODY_MIN_BYTES_PER_S', 8_192, 1, 1_000_000_000),
    },
    writer: {
      maxRows: int(e, 'ATTUNE_WRITE_BATCH_ROWS', 50_000, 1_000, 1_000_000),
      maxDelayMs: int(e, 'ATTUNE_WRITE_FLUSH_MS', 1_000, 10, 60_000),
    },
    ingestLimit: {
      readingsPerS: int(e, 'ATTUNE_RATE_LIMIT_READINGS_PER_S', 5_000, 0, 10_000_000),
      burst: int(e, 'ATTUNE_RATE_LIMIT_BURST', 50_000, 10_000, 100_000_000),
      // Readings of one device and session per bus record (schemas/reading-batches.ts); 1: one
      // HeartReading record each, as before batches (for consumers that do not read batches).
      readingsPerRecord: int(e, 'ATTUNE_READINGS_PER_RECORD', 1_000, 1, 10_000),
      ...readingRules(e),
      // The same budget per user, over all their devices (default: one device's).
      userReadingsPerS: int(e, 'ATTUNE_RATE_LIMIT_USER_READINGS_PER_S', int(e, 'ATTUNE_RATE_LIMIT_READINGS_PER_S', 5_000, 0, 10_000_000), 0, 10_000_000),
      userBurst: int(e, 'ATTUNE_RATE_LIMIT_USER_BURST', int(e, 'ATTUNE_RATE_LIMIT_BURST', 50_000, 10_000, 100_000_000), 10_000, 100_000_000),
    },
    rateLimit: {
      enabled: bool(e, 'ATTUNE_RATE_LIMIT', true),
      defaultTier: oneOf(e, 'ATTUNE_DEFAULT_TIER', TIER_NAMES, 'free'),
      redisUrl: redisUrl(e, 'REDIS_URL'),
      trustProxy: trustProxy(e, 'ATTUNE_TRUST_PROXY'),
    },
    live: {
      maxBufferedMessages: int(e, 'ATTUNE_WS_MAX_BUFFERED', 256, 1, 100_000),
      heartbeatMs: int(e, 'ATTUNE_WS_HEARTBEAT_MS', 15_000, 100, 600_000),
      idleTimeoutMs: int(e, 'ATTUNE_WS_IDLE_TIMEOUT_S', 60, 1, 86_400) * 1000,
    },
    speechUpload: {
      maxBytes: int(e, 'ATTUNE_SPEECH_UPLOAD_MAX_BYTES', 200 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024),
      maxDurationS: int(e, 'ATTUNE_SPEECH_UPLOAD_MAX_DURATION_S', 4 * 3600, 1, 24 * 3600),
    },
    audioLeaseMs: int(e, 'ATTUNE_AUDIO_LEASE_S', 60, 1, 3600) * 1000,
    maxStoredJsonBytes: int(e, 'ATTUNE_MAX_STORED_JSON_BYTES', 16_384, 1_024, 1_048_576),
    corsOrigins: corsOrigins(e, 'ATTUNE_CORS_ORIGINS'),
    errorDocsUrl: url(e, 'ATTUNE_ERROR_DOCS_URL'),
    metrics: metricsConfig(e),
    speech: {
      enabled: bool(e, 'ATTUNE_SPEECH', true),
      model: e.ATTUNE_SPEECH_MODEL?.trim() || 'moonshine-tiny',
      uploadModel: e.ATTUNE_SPEECH_UPLOAD_MODEL?.trim() || 'moonshine-base',
      scoreModelPath: e.ATTUNE_SPEECH_SCORE_MODEL?.trim() || null,
      alignment: bool(e, 'ATTUNE_SPEECH_ALIGNMENT', true),
    },
    simulate: bool(e, 'ATTUNE_SIMULATE', false),
    simulatorDevices: int(e, 'ATTUNE_SIM_DEVICES', 3, 1, 10_000),
    simulatorGroup: int(e, 'ATTUNE_SIM_GROUP', 8, 0, 10_000),
    apiKeys: { tokenSecret: tokenSecret(e), tokenTtlS: int(e, 'ATTUNE_TOKEN_TTL_S', 900, 60, 86_400) },
    webhooks: {
      enabled: bool(e, 'ATTUNE_WEBHOOKS', true),
      allowPrivate: bool(e, 'ATTUNE_WEBHOOKS_ALLOW_PRIVATE', false),
      allowHosts: (e.ATTUNE_WEBHOOKS_ALLOW_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
      // How long a completed session's event waits for its last windows; default the allowed lateness + 20 s.
      settleMs: e.ATTUNE_WEBHOOKS_SETTLE_MS === undefined ? null : int(e, 'ATTUNE_WEBHOOKS_SETTLE_MS', 30_000, 0, 3_600_000),
      maxSettleMs: int(e, 'ATTUNE_WEBHOOKS_MAX_SETTLE_MS', 600_000, 0, 86_400_000),
    },
  };
}

function tokenSecret(e: Env): string | null {
  const v = e.ATTUNE_TOKEN_SECRET ?? null;
  if (v !== null && v.length < 32) throw new ConfigError('ATTUNE_TOKEN_SECRET', 'must be at least 32 characters');
  return v;
}
