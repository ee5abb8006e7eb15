// Wires the adapters and the roles of one process. `all` runs ingest, the workers, the sinks
// and the API in one process on the embedded bus and chDB; `ingest`, `worker`, `sink` and `api`
// each run one role against Kafka and a ClickHouse server, so users scale out on those engines.
// `worker` is compute only (Kafka in, Kafka out: it opens no ClickHouse); `sink` holds every
// ClickHouse writer.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ConfigError, type AttuneConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { AttuneError, isAttuneError } from '../lib/errors.js';
import { type Bus } from '../bus/types.js';
import { prefixedTopics, type TopicNames } from '../schemas/topics.js';
import { createEmbeddedBus } from '../bus/embedded.js';
import { createKafkaBus } from '../bus/kafka-open.js';
import { isUnreachable, someNestedError } from '../bus/kafka-common.js';
import { withPublishTimeout } from '../bus/publish-timeout.js';
import { createCodec, type Codec } from '../schemas/registry/codec.js';
import { ConfluentSchemaRegistry, LocalSchemaRegistry, type SchemaRegistry } from '../schemas/registry/registry.js';
import { createStoreClient, type StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { createSqlClient, type SqlClient } from '../store/postgres/client.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { loadOrCreateSecret, type Authenticator } from '../http/auth.js';
import { withApiKeys } from '../http/api-key-auth.js';
import { ApiKeysRepository } from '../store/postgres/api-keys-repo.js';
import { WebhooksRepository } from '../store/postgres/webhooks-repo.js';
import { WebhookDispatcher } from '../pipelines/webhooks/dispatcher.js';
import { authFromConfig } from './auth-config.js';
import type { AppContext } from '../http/context.js';
import { createCoherenceLiveHub, type CoherenceLiveRecord } from '../api/live.js';
import { buildServer } from './server.js';
import { DevicesRepository, SessionsRepository } from '../store/postgres/sessions-repo.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from '../store/postgres/speech-sessions-repo.js';
import { UsersRepository } from '../store/postgres/users-repo.js';
import { MeshRepository } from '../store/postgres/mesh-repo.js';
import { SinkProgressRepository } from '../store/postgres/sink-progress-repo.js';
import { OrgAnalyticsRepository } from '../store/postgres/org-analytics-repo.js';
import { createSpeechLiveHub } from '../api/speech-live.js';
import type { LiveHub } from '../http/live-hub.js';
import type { SpeechEventRecord } from '../schemas/records.js';
import { SpeechWorker } from '../pipelines/speech/worker.js';
import { SpeechResultsSink } from '../pipelines/sinks/speech-results-sink.js';
import { SpeechToText } from '../pipelines/speech/stt.js';
import { AudioStreamLeases } from '../ingest/audio/stream-leases.js';
import { ReadingsSink } from '../pipelines/readings-sink.js';
import { CoherenceWorker } from '../pipelines/coherence/worker.js';
import { GroupWorker } from '../pipelines/group/worker.js';
import { GroupWindowsSink } from '../pipelines/sinks/group-windows-sink.js';
import { CoherenceWindowsSink, GroupEventsSink, SessionEventsSink } from '../pipelines/sinks/result-sinks.js';
import { SessionChangesRelay, SessionDimensionSink } from '../pipelines/session-changes.js';
import { runSimulator } from '../simulator/index.js';
import { Metrics } from '../lib/metrics.js';
import { probeAnswers } from '../http/health.js';
import { startMetricsListener, type MetricsListener } from '../http/metrics.js';
import { instrumentBus, instrumentStore, registerWorkerMetrics } from './metrics.js';

export interface Roles {
  ingest: boolean;
  api: boolean;
  /** Compute: the coherence worker and the session-changes relay (no ClickHouse). */
  worker: boolean;
  /** The ClickHouse writers: readings, windows, events, sessions dimension, and the speech worker. Default: as `worker`. */
  sink?: boolean;
}

export interface RunningAttune {
  server: FastifyInstance | null;
  /** Where the server listens, e.g. http://127.0.0.1:8080. */
  url: string | null;
  /** ClickHouse; null in the ingest-only role, which needs none. */
  store: StoreClient | null;
  /** The entity database (PostgreSQL or PGlite). */
  sql: SqlClient;
  bus: Bus;
  codec: Codec;
  auth: Authenticator;
  sink: ReadingsSink | null;
  /** The sink role's writers of the coherence worker's results. */
  windowsSink: CoherenceWindowsSink | null;
  eventsSink: SessionEventsSink | null;
  /** The worker role's relay of session changes (PostgreSQL outbox → bus). */
  sessionChanges: SessionChangesRelay | null;
  /** The sink role's sink of session changes into the ClickHouse sessions dimension. */
  sessionDimension: SessionDimensionSink | null;
  /** The sink role's webhook dispatcher (bus → PostgreSQL outbox → signed deliveries). */
  webhookDispatcher: WebhookDispatcher | null;
  worker: CoherenceWorker | null;
  /** The worker role's group worker (mesh sessions: participants' windows → group windows and live events). */
  groupWorker: GroupWorker | null;
  /** The sink role's writer of group windows (group_windows, group_participant_windows). */
  groupWindowsSink: GroupWindowsSink | null;
  /** The sink role's writer of group (mesh) events but group_coherence (group_events). */
  groupEventsSink: GroupEventsSink | null;
  /** The worker role's speech worker (audio frames → live speech events and speech results); null with ATTUNE_SPEECH=0. */
  speechWorker: SpeechWorker | null;
  /** The sink role's writer of speech results (the speech_* tables), which completes speech sessions. */
  speechResultsSink: SpeechResultsSink | null;
  live: LiveHub<CoherenceLiveRecord> | null;
  speechLive: LiveHub<SpeechEventRecord> | null;
  /** This process's metrics (GET /metrics: cli/metrics.ts, http/metrics.ts). */
  metrics: Metrics;
  /** The metrics listener (ATTUNE_METRICS_PORT), e.g. http://127.0.0.1:9464; null without one. */
  metricsUrl: string | null;
  stop(): Promise<void>;
}

export async function openStore(config: AttuneConfig, log: Logger): Promise<StoreClient> {
  return createStoreClient({
    url: config.clickhouseUrl ?? undefined,
    username: config.clickhouseUser,
    password: config.clickhousePassword,
    dataDir: config.dataDir,
    database: config.clickhouseDatabase,
    log,
  });
}

/** The entity database: the PostgreSQL server of DATABASE_URL, else PGlite in `${dataDir}/postgres`. */
/** The entity database; with `wait` (the `attune` command), a PostgreSQL server is checked first (waitForPostgres). */
export async function openEntities(config: AttuneConfig, log?: Logger, opts: { wait?: boolean } = {}): Promise<SqlClient> {
  const sql = await createSqlClient({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  if (!opts.wait || sql.kind !== 'pg' || !config.databaseUrl) return sql;
  try {
    await waitForPostgres(sql, config.databaseUrl, config.postgresConnectWaitMs, log);
  } catch (err) {
    await sql.close().catch(() => undefined);
    throw err;
  }
  return sql;
}

/** host:port/database of a PostgreSQL URL, without the user and password (for messages). */
export function postgresTarget(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * A starting process checks its PostgreSQL server before it listens: until 12-06 a process
 * with a wrong DATABASE_URL (a closed port, a wrong password) listened as if nothing were
 * wrong, and answered 500 to every request needing PostgreSQL. A server that cannot be reached
 * (refused, reset, starting up) is waited for, with a back-off and each attempt logged, for
 * ATTUNE_POSTGRES_CONNECT_WAIT_MS, as Kafka is, then the start fails with one line naming it
 * (exit 1); a refusal that waiting cannot cure (credentials, a missing database) fails at
 * once as a configuration error naming DATABASE_URL (exit 2).
 */
export async function waitForPostgres(sql: SqlClient, databaseUrl: string, waitMs: number, log?: Logger): Promise<void> {
  const target = postgresTarget(databaseUrl);
  const deadline = Date.now() + waitMs;
  for (let delay = 1_000, attempt = 1; ; attempt++, delay = Math.min(delay * 2, 10_000)) {
    try {
      await sql.query('SELECT 1');
      return;
    } catch (err) {
      const message = (err as Error).message;
      if (!(isAttuneError(err) && err.code === 'unavailable')) {
        throw new ConfigError('DATABASE_URL', `PostgreSQL at ${target} refused the connection: ${message}`);
      }
      const givingUp = Date.now() + delay > deadline;
      // The driver's error (connect ECONNREFUSED …), not the clients' generic 503 message.
      const cause = ((err as Error & { cause?: Error }).cause ?? (err as Error)).message;
      log?.warn({ postgres: target, attempt, retry_in_ms: givingUp ? null : delay, err: cause }, givingUp ? 'PostgreSQL unreachable at start; giving up' : 'PostgreSQL unreachable at start; waiting for it');
      if (givingUp) {
        throw new AttuneError('unavailable', `PostgreSQL at ${target} (DATABASE_URL) unreachable for ${Math.round(waitMs / 1000)} s (ATTUNE_POSTGRES_CONNECT_WAIT_MS): ${cause}`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Kafka's retention.ms for the provisional windows topics (schemas/topics.ts). */
export const PROVISIONAL_RETENTION_MS = 3_600_000;

/**
 * Attune creates its topics with ATTUNE_TOPIC_PARTITIONS partitions and never changes an
 * existing one: a topic that has another count keeps it. Logged once at start, naming the
 * topics and counts, so an operator who raised the setting to run more workers learns that
 * nothing changed (until 12-06 nothing said so). Returns the topics that differ; a failed
 * metadata read is logged at debug and skipped (the start goes on).
 */
export async function warnOnPartitionCounts(bus: Pick<Bus, 'partitionCount'>, topicNames: string[], expected: number, log: Logger): Promise<string[]> {
  const counts = await Promise.all(topicNames.map((t) => bus.partitionCount(t).then((n) => [t, n] as const, () => [t, null] as const)));
  const differ = counts.filter(([, n]) => n !== null && n !== expected);
  if (differ.length > 0) {
    log.warn(
      { expected, topics: Object.fromEntries(differ) },
      `ATTUNE_TOPIC_PARTITIONS is ${expected}, but ${differ.length} existing topic(s) have another partition count, which they keep: Attune creates topics, never changes them (add partitions with Kafka's own tools; a changed count sends keys to other partitions)`,
    );
  }
  if (counts.some(([, n]) => n === null)) log.debug({ topics: counts.filter(([, n]) => n === null).map(([t]) => t) }, 'partition counts not read');
  return differ.map(([t]) => t);
}

export async function openBus(config: AttuneConfig, log: Logger, topics: TopicNames): Promise<Bus> {
  const specs = Object.values(topics).map((topic) => ({
    topic,
    partitions: config.topicPartitions,
    compacted: topic === topics.sessionChanges,
    // Live display only: an hour covers any reader's restart; no reader replays it (they start at the newest records).
    ...(topic === topics.coherenceWindowsProvisional || topic === topics.groupParticipantWindowsProvisional ? { retentionMs: PROVISIONAL_RETENTION_MS } : {}),
  }));
  if (config.bus === 'embedded') {
    const bus = await createEmbeddedBus({ dir: join(config.dataDir, 'bus'), defaultPartitions: config.topicPartitions, log });
    await bus.ensureTopics(specs);
    await warnOnPartitionCounts(bus, specs.map((s) => s.topic), config.topicPartitions, log);
    return withPublishTimeout(bus, config.publishTimeoutMs);
  }
  // A process started while Kafka is away (both restarted by an orchestrator, the broker
  // slower to come up) waits for it, with a back-off, for ATTUNE_KAFKA_CONNECT_WAIT_MS; then it
  // exits with an error naming the brokers, not with a client's stack trace.
  const deadline = Date.now() + config.kafkaConnectWaitMs;
  for (let delay = 1_000, attempt = 1; ; attempt++, delay = Math.min(delay * 2, 10_000)) {
    let bus: Bus | null = null;
    try {
      bus = await createKafkaBus({
        client: config.kafkaClient,
        brokers: config.kafkaBrokers,
        clientId: config.kafkaClientId,
        log,
        sessionTimeoutMs: config.kafkaSessionTimeoutMs,
        groupInstanceId: config.kafkaInstanceId ?? undefined,
      });
      await bus.ensureTopics(specs);
      await warnOnPartitionCounts(bus, specs.map((s) => s.topic), config.topicPartitions, log);
      // Every publish settles within ATTUNE_PUBLISH_TIMEOUT_MS: the gateway answers 503 + Retry-After, never hangs.
      return withPublishTimeout(bus, config.publishTimeoutMs);
    } catch (err) {
      await bus?.close().catch(() => undefined);
      const brokers = config.kafkaBrokers.join(',');
      if (!brokerUnreachable(err)) throw err;
      const givingUp = Date.now() + delay > deadline;
      log.warn({ brokers, attempt, retry_in_ms: givingUp ? null : delay, err: (err as Error).message }, givingUp ? 'Kafka unreachable at start; giving up' : 'Kafka unreachable at start; waiting for it');
      if (givingUp) {
        throw new AttuneError('unavailable', `Kafka at ${brokers} unreachable for ${Math.round(config.kafkaConnectWaitMs / 1000)} s (ATTUNE_KAFKA_CONNECT_WAIT_MS): ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Whether a bus client's error (either client) means the brokers could not be reached. */
function brokerUnreachable(err: unknown): boolean {
  if (isUnreachable(err)) return true;
  // Causes and, for @platformatic/kafka's MultipleErrors (an AggregateError: "metadata failed 4
  // times" holding "Cannot connect to any broker" holding the socket's ECONNREFUSED), the
  // errors it aggregates too.
  return someNestedError(err, (e) => UNREACHABLE.test(`${e.code ?? ''} ${e.message ?? ''}`), { causes: true });
}
const UNREACHABLE = /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNRESET/;

export async function openCodec(config: AttuneConfig): Promise<Codec> {
  const registry: SchemaRegistry = config.schemaRegistryUrl
    ? new ConfluentSchemaRegistry({ url: config.schemaRegistryUrl, clientId: config.kafkaClientId })
    : LocalSchemaRegistry.fromManifest();
  return createCodec(registry);
}

export async function startAttune(
  config: AttuneConfig,
  roles: Roles,
  log: Logger,
  opts: { migrate?: boolean; listen?: boolean; onListening?: () => void; /** Check PostgreSQL before listening (openEntities' wait): the `attune` command. */ waitForPostgres?: boolean } = {},
): Promise<RunningAttune> {
  const clock = Date.now;
  const metrics = new Metrics();
  // Entities live in PostgreSQL (PGlite without DATABASE_URL); facts in ClickHouse, which the
  // ingest role does not need: it validates, resolves sessions in Postgres and publishes.
  const sinks = roles.sink ?? roles.worker;
  const topics = prefixedTopics(config.topicPrefix);
  // The bus connects (and checks its topics) while the databases open and migrate: each waits on
  // its own I/O, and after a crash every second before the first 202 counts (issue 10).
  // Milliseconds from here to the end of each startup phase, logged with 'attune listening': after
  // a crash every second before the first 202 counts, and this says which phase took them.
  const startedAt = performance.now();
  const startup: Record<string, number> = {};
  const mark = <T>(phase: string, p: Promise<T>): Promise<T> => p.then((v) => ((startup[phase] = Math.round(performance.now() - startedAt)), v));
  const busOpening = mark('bus', openBus(config, log, topics));
  busOpening.catch(() => undefined); // awaited below; a failure meanwhile is not unhandled
  const [sql, rawStore] = await Promise.all([mark('postgres', openEntities(config, log, { wait: opts.waitForPostgres })), roles.api || sinks ? mark('clickhouse', openStore(config, log)) : null]).catch(async (err) => {
    await busOpening.then((b) => b.close(), () => undefined);
    throw err;
  });
  const store = rawStore ? instrumentStore(rawStore, metrics) : null;
  if (opts.migrate) {
    const entities = await migratePostgres(sql);
    if (entities.applied.length > 0) log.info({ applied: entities.applied }, 'postgres migrations applied');
    startup.postgresMigrations = Math.round(performance.now() - startedAt);
    if (store) {
      const { applied } = await migrate(store);
      if (applied.length > 0) log.info({ applied }, 'clickhouse migrations applied');
    }
    startup.migrations = Math.round(performance.now() - startedAt);
  }
  const bus = instrumentBus(await busOpening, metrics, topics);
  const codec = await openCodec(config);
  // API keys (and the tokens exchanged for them, signed with Attune's own key) beside the
  // identity provider's tokens: http/api-key-auth.ts.
  const apiKeys = new ApiKeysRepository(sql, { clock });
  const keyAuth = withApiKeys(authFromConfig(config, log), {
    keys: apiKeys,
    tokenSecret: config.apiKeys.tokenSecret ?? config.jwt.secret ?? loadOrCreateSecret(config.dataDir),
    audience: config.jwt.audience,
    tokenTtlS: config.apiKeys.tokenTtlS,
    clock,
  });
  const auth: Authenticator = keyAuth;
  const webhooks = new WebhooksRepository(sql, { clock });
  const webhookGuard = { allowPrivate: config.webhooks.allowPrivate, allowHosts: config.webhooks.allowHosts };
  const sessions = new SessionsRepository(sql, { clock });
  const devices = new DevicesRepository(sql, { clock });
  const speechSessions = new SpeechSessionsRepository(sql, { clock });
  const speechUploads = new SpeechUploadsRepository(sql, { clock });
  const users = new UsersRepository(sql, { clock });

  let sink: ReadingsSink | null = null;
  let windowsSink: CoherenceWindowsSink | null = null;
  let eventsSink: SessionEventsSink | null = null;
  let worker: CoherenceWorker | null = null;
  let groupWorker: GroupWorker | null = null;
  let groupWindowsSink: GroupWindowsSink | null = null;
  let groupEventsSink: GroupEventsSink | null = null;
  let speechWorker: SpeechWorker | null = null;
  let speechResultsSink: SpeechResultsSink | null = null;
  let sessionChanges: SessionChangesRelay | null = null;
  let sessionDimension: SessionDimensionSink | null = null;
  let webhookDispatcher: WebhookDispatcher | null = null;
  let live: LiveHub<CoherenceLiveRecord> | null = null;
  let speechLive: LiveHub<SpeechEventRecord> | null = null;
  let server: FastifyInstance | null = null;
  let url: string | null = null;
  // Where ingest runs: renews the claims of the audio streams this process holds, and ends
  // those whose process died (their lease passed).
  const audioLeases = roles.ingest
    ? new AudioStreamLeases({ sessions: speechSessions, bus, topics, codec, log: log.child({ role: 'audio-leases' }), leaseMs: config.audioLeaseMs, clock })
    : null;
  // What /health and /health/ready check (on the main port, or the metrics port without one).
  const healthChecks: AppContext['health'] = [
    { name: 'postgres', check: async () => (await sql.query('SELECT 1'), true) },
    ...(store ? [{ name: 'clickhouse', check: () => store.ping() }] : []),
    { name: 'bus', check: async () => (await bus.committed('attune-health', topics.heartReadings), true) },
  ];
  if (roles.api || roles.ingest) {
    // The live hubs join their groups while the server builds (CPU: route schemas compile), and
    // before it listens, so no socket is accepted before its hub consumes.
    let hubsStarting: Promise<unknown> = Promise.resolve();
    if (roles.api) {
      live = createCoherenceLiveHub({ log: log.child({ role: 'live' }), ...config.live, clock }, topics);
      speechLive = createSpeechLiveHub({ log: log.child({ role: 'speech-live' }), ...config.live, clock }, topics);
      hubsStarting = Promise.all([live.start(bus, codec), speechLive.start(bus, codec)]);
      hubsStarting.catch(() => undefined); // awaited below
    }
    const ctx: AppContext = {
      log,
      auth,
      clickhouse: store?.client,
      database: store?.database ?? config.clickhouseDatabase,
      bus,
      topics,
      codec,
      sessions,
      devices,
      users,
      live: live ?? undefined,
      speechSessions,
      speechUploads,
      speechLive: speechLive ?? undefined,
      // POST /v1/speech/stt where ingest runs; its models open on the first request (ingest/audio/stt.ts closes it with the server).
      speechToText: roles.ingest && config.speech.enabled ? new SpeechToText({ model: config.speech.uploadModel, alignment: config.speech.alignment }) : undefined,
      mesh: new MeshRepository(sql, { clock }),
      apiKeys: { repo: apiKeys, auth: keyAuth },
      webhooks: { repo: webhooks, guard: webhookGuard },
      orgAnalytics: new OrgAnalyticsRepository(sql),
      audioLeases: audioLeases ?? undefined,
      speechUploadLimits: config.speechUpload,
      maxStoredJsonBytes: config.maxStoredJsonBytes,
      httpTimeouts: config.httpTimeouts,
      corsOrigins: config.corsOrigins,
      errorDocsUrl: config.errorDocsUrl,
      health: healthChecks,
      clock,
      roles: { ...roles },
      liveOptions: config.live,
      ingestLimit: config.ingestLimit,
      rateLimit: config.rateLimit,
    };
    server = await mark('server', buildServer(ctx, { metrics, metricsToken: config.metrics.token }));
    await mark('liveHubs', hubsStarting);
    if (opts.listen !== false) {
      url = await server.listen({ host: config.host, port: config.port });
      startup.listening = Math.round(performance.now() - startedAt);
      // From the process's start: what loading the modules took comes before startedAt.
      startup.sinceProcessStart = Math.round(performance.now());
      // The roles as /health lists them; not under `roles`, which the command's logger already
      // binds (the command's name): the line had two `roles` keys until 12-06, which log
      // pipelines that reject or merge duplicate keys read as one or the other.
      log.info({ url, enabled_roles: (Object.keys(roles) as (keyof Roles)[]).filter((k) => roles[k]), startupMs: startup }, 'attune listening');
      opts.onListening?.();
    } else {
      await server.ready();
    }
  }

  // The workers start after the server listens (issue 10): joining their consumer groups takes
  // seconds on Kafka (after a crash, until the dead member's session expires), and ingest
  // needs none of them. Until they have joined, their records wait on the bus.
  try {
    const starting: Array<Promise<void>> = [];
    if (roles.worker) {
      worker = new CoherenceWorker({
        bus,
        topics,
        codec,
        sessions,
        log: log.child({ role: 'coherence-worker' }),
        allowedLatenessMs: config.coherence.allowedLatenessMs,
        sessionIdleEndMs: config.coherence.sessionIdleEndMs,
        provisionalWindows: config.coherence.provisionalWindows,
        // Mesh participations (PostgreSQL): group participants' windows also go to the group repartition topic.
        groups: new MeshRepository(sql, { clock }),
      });
      groupWorker = new GroupWorker({ bus, topics, codec, log: log.child({ role: 'group-worker' }), allowedLatenessMs: config.group.allowedLatenessMs, silentAfterMs: config.group.silentAfterMs, earlyClose: config.group.earlyClose, provisionalWindows: config.coherence.provisionalWindows });
      starting.push(worker.start(), groupWorker.start());
    }
    if (sinks && store) {
      sink = new ReadingsSink({
        bus,
        topics,
        codec,
        store,
        log: log.child({ role: 'readings-sink' }),
        writer: config.writer,
        // The coherence worker's clock guard, applied to the raw beats too (same defaults).
        sessions,
        clockHorizonMs: config.coherence.allowedLatenessMs,
        sessionIdleEndMs: config.coherence.sessionIdleEndMs,
        // The partition's event time per commit, so a new owner decides idle ends as the run before.
        progress: new SinkProgressRepository(sql),
      });
      windowsSink = new CoherenceWindowsSink({ bus, topics, codec, store, log: log.child({ role: 'windows-sink' }), writer: config.writer });
      eventsSink = new SessionEventsSink({ bus, topics, codec, store, log: log.child({ role: 'events-sink' }), writer: config.writer });
      sessionDimension = new SessionDimensionSink({ bus, topics, codec, store, log: log.child({ role: 'session-dimension' }), writer: config.writer });
      groupWindowsSink = new GroupWindowsSink({ bus, topics, codec, store, log: log.child({ role: 'group-windows-sink' }), writer: config.writer });
      groupEventsSink = new GroupEventsSink({ bus, topics, codec, store, log: log.child({ role: 'group-events-sink' }), writer: config.writer });
      starting.push(sink.start(), windowsSink.start(), eventsSink.start(), sessionDimension.start(), groupWindowsSink.start(), groupEventsSink.start());
      // Whatever ATTUNE_SPEECH says here: it loads no models, and the speech worker may run in
      // other processes (a sink host left without it would leave their sessions processing).
      speechResultsSink = new SpeechResultsSink({ bus, topics, codec, store, sessions: speechSessions, uploads: speechUploads, log: log.child({ role: 'speech-results-sink' }), writer: config.writer });
      starting.push(speechResultsSink.start());
    }
    // Webhooks run with the sinks: a completed session's figures and streaks come from ClickHouse.
    if (sinks && store && config.webhooks.enabled) {
      webhookDispatcher = new WebhookDispatcher({
        bus,
        topics,
        codec,
        sql,
        webhooks,
        store,
        log: log.child({ role: 'webhooks' }),
        clock,
        guard: webhookGuard,
        // A completed session's event waits for its last windows (they close after the end).
        settleMs: config.webhooks.settleMs ?? config.coherence.allowedLatenessMs + 20_000,
        maxSettleMs: config.webhooks.maxSettleMs,
      });
      starting.push(webhookDispatcher.start());
    }
    // Their groups join in parallel: each join is a round of the group protocol.
    await Promise.all(starting);
    if (roles.worker) {
      // Session changes: PostgreSQL's outbox → attune.session.changes.v1 → end markers and the ClickHouse dimension.
      sessionChanges = new SessionChangesRelay({ sql, bus, codec, topics, log: log.child({ role: 'session-changes' }) });
      sessionChanges.start();
    }
    // The speech worker publishes its results (the speech results sink stores them): a compute
    // worker like the coherence worker, it scales out with its consumer group.
    if (roles.worker && config.speech.enabled) {
      speechWorker = new SpeechWorker({
        bus,
        topics,
        codec,
        sessions: speechSessions,
        uploads: speechUploads,
        log: log.child({ role: 'speech-worker' }),
        clock,
        defaultModel: config.speech.model,
        uploadModel: config.speech.uploadModel,
        scoreModelPath: config.speech.scoreModelPath ?? undefined,
        alignment: config.speech.alignment,
      });
      await speechWorker.start();
    }
  } catch (err) {
    await server?.close().catch(() => undefined);
    throw err;
  }
  audioLeases?.start();

  registerWorkerMetrics(metrics, { sink, worker, groupWorker, groupWindowsSink, speechWorker, speechResultsSink, sessionChanges, sessionDimension, live, speechLive, audioLeases });
  let metricsListener: MetricsListener | null = null;
  if (config.metrics.port !== null && opts.listen !== false) {
    // A process without an HTTP server (worker, sink) answers its health probes here.
    const probes = server ? undefined : probeAnswers(healthChecks, (Object.keys(roles) as (keyof Roles)[]).filter((k) => roles[k]));
    metricsListener = await startMetricsListener({ host: config.metrics.host, port: config.metrics.port, token: config.metrics.token, metrics, log, probes });
    log.info({ url: `${metricsListener.url}/metrics` }, 'metrics listening');
  }

  let stopped = false;
  return {
    server,
    url,
    store,
    sql,
    bus,
    codec,
    auth,
    sink,
    windowsSink,
    eventsSink,
    sessionChanges,
    sessionDimension,
    webhookDispatcher,
    worker,
    groupWorker,
    groupWindowsSink,
    groupEventsSink,
    speechWorker,
    speechResultsSink,
    live,
    speechLive,
    metrics,
    metricsUrl: metricsListener?.url ?? null,
    async stop() {
      if (stopped) return;
      stopped = true;
      await metricsListener?.close();
      // Stop taking input first, then drain the workers, then close the adapters.
      await server?.close();
      // The sockets and uploads closed with the server have released their claims.
      await audioLeases?.stop();
      // Every consumer, the live hubs' and the workers', leaves its group at once (in parallel),
      // so their partitions move on now: each waits for its fetch in flight, and one after the
      // other they held the workers' partitions ~10 s past a SIGTERM (the fault suite's check).
      await Promise.all([groupWorker?.stop(), groupWindowsSink?.stop(), live?.stop(), speechLive?.stop(), sink?.stop(), worker?.stop(), speechWorker?.stop(), speechResultsSink?.stop(), sessionChanges?.stop(), sessionDimension?.stop(), webhookDispatcher?.stop(), windowsSink?.stop(), eventsSink?.stop(), groupEventsSink?.stop()]);
      await bus.close();
      await store?.close();
      await sql.close();
    },
  };
}

/** Runs the simulator against a running server until `signal` aborts. */
export function startSimulator(config: AttuneConfig, baseUrl: string, auth: Authenticator, log: Logger, signal: AbortSignal) {
  const scopes = ['read:sessions', 'write:sessions', 'write:devices', 'write:readings', 'read:coherence'];
  // Tokens are re-minted a while before they expire, not on every request.
  const tokens = new Map<string, { token: string; until: number }>();
  const tokenFor = (userId: string, orgId: string) => {
    const now = Date.now();
    const hit = tokens.get(userId);
    if (hit && hit.until > now) return hit.token;
    // A batch a second per simulated device: the enterprise tier keeps them clear of the request limits.
    const token = auth.sign({ userId, orgId, scopes, ttlSeconds: 3600, tier: 'enterprise' });
    tokens.set(userId, { token, until: now + 3000_000 });
    return token;
  };
  return runSimulator({
    baseUrl,
    devices: config.simulatorDevices,
    tokenFor,
    realtime: true,
    // Two minutes of history first, so a fresh `npm start` shows coherence within seconds
    // instead of after the first full 64 s window.
    startTimeMs: Date.now() - 120_000,
    signal,
    log: log.child({ role: 'simulator' }),
    seed: Date.now() % 1_000_000,
  });
}
