// A server carrying the speech API for the api/speech-*.test.ts files: chDB in a temporary
// directory (migrated), the embedded bus in memory, the local schema registry, an HS256
// authenticator, the speech repositories and a started SpeechLiveHub, listening on a free
// port. Rows of the speech tables are inserted directly (insertRows): the tests do not depend
// on the speech worker.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createEmbeddedBus } from '../bus/embedded.js';
import { type Bus } from '../bus/types.js';
import { Topics } from '../schemas/topics.js';
import { silentLogger } from '../lib/log.js';
import { createCodec, type Codec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import type { SpeechEvent } from '../schemas/registry/schemas.js';
import type { StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { storeImplementations, type StoreImplementation } from '../store/test-stores.test-util.js';
import { createAuthenticator, type Authenticator } from '../http/auth.js';
import { withApiKeys } from '../http/api-key-auth.js';
import { ApiKeysRepository } from '../store/postgres/api-keys-repo.js';
import type { AppContext } from '../http/context.js';
import { createCoherenceLiveHub } from './live.js';
import { buildServer } from '../cli/server.js';
import { DevicesRepository, SessionsRepository } from '../store/postgres/sessions-repo.js';
import { createSpeechLiveHub } from './speech-live.js';
import type { LiveHub } from '../http/live-hub.js';
import type { SpeechEventRecord } from '../schemas/records.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from '../store/postgres/speech-sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../store/postgres/test-databases.test-util.js';

export interface SpeechTestServer {
  baseUrl: string;
  wsUrl: string;
  app: FastifyInstance;
  store: StoreClient;
  bus: Bus;
  codec: Codec;
  auth: Authenticator;
  /** API keys, which the server's authenticator takes beside its tokens (as in cli/roles.ts). */
  apiKeys: ApiKeysRepository;
  speechSessions: SpeechSessionsRepository;
  speechLive: LiveHub<SpeechEventRecord>;
  token(userId: string, orgId: string, scopes?: string[]): string;
  request<T = any>(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<{ status: number; body: T }>;
  /** Inserts rows into a table of the test database (epoch-ms integers for DateTime64). */
  insertRows(table: string, rows: object[]): Promise<void>;
  /** Inserts speech sessions into the entity database as they would be after their history (ids generated). */
  seedSpeechSessions(rows: SpeechSessionSeed[]): Promise<void>;
  /** The entity database (PostgreSQL or PGlite). */
  entities: TestDatabase;
  /** Publishes SpeechEvent records on the bus, keyed by session. */
  publishEvents(events: SpeechEvent[]): Promise<void>;
  close(): Promise<void>;
}

export interface SpeechSessionSeed {
  orgId: string;
  userId: string;
  title: string;
  kind?: string;
  status?: string;
  source?: 'upload' | 'live';
  startedAt?: number;
  audioDurationS?: number;
  sampleRateHz?: number;
  createdAt: number;
  updatedAt?: number;
}

export const SPEECH_READ = ['read:speech'];
export const SPEECH_ALL = ['read:speech', 'write:speech'];

export async function startSpeechTestServer(opts: { maxBufferedMessages?: number } = {}): Promise<SpeechTestServer> {
  const impl: StoreImplementation = (await storeImplementations())[0];
  const store = await impl.open();
  await migrate(store);
  const bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const clock = Date.now;
  const entities = await entityTestDatabase();
  const apiKeys = new ApiKeysRepository(entities.client, { clock });
  const auth = withApiKeys(createAuthenticator({ secret: randomBytes(32).toString('hex'), publicKey: null, issuer: 'attune-test', audience: 'attune-test' }), {
    keys: apiKeys,
    tokenSecret: randomBytes(32).toString('hex'),
    audience: 'attune-test',
  });
  const liveOptions = { maxBufferedMessages: opts.maxBufferedMessages ?? 1024, heartbeatMs: 30_000 };
  const speechSessions = new SpeechSessionsRepository(entities.client, { clock });
  const speechLive = createSpeechLiveHub({ log: silentLogger, ...liveOptions, clock }, Topics);
  await speechLive.start(bus, codec);
  const ctx: AppContext = {
    log: silentLogger,
    auth,
    clickhouse: store.client,
    database: store.database,
    bus,
    topics: Topics,
    codec,
    sessions: new SessionsRepository(entities.client, { clock }),
    devices: new DevicesRepository(entities.client, { clock }),
    // The heart live routes are registered with the API role; their hub is not started here.
    live: createCoherenceLiveHub({ log: silentLogger, ...liveOptions, clock }, Topics),
    speechSessions,
    speechUploads: new SpeechUploadsRepository(entities.client, { clock }),
    speechLive,
    health: [],
    clock,
    roles: { ingest: false, api: true, worker: false },
    liveOptions,
    ingestLimit: { readingsPerS: 0, burst: 0 },
  };
  const app = await buildServer(ctx);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    baseUrl: url,
    wsUrl: url.replace(/^http/, 'ws'),
    app,
    store,
    bus,
    codec,
    auth,
    apiKeys,
    speechSessions,
    speechLive,
    token: (userId, orgId, scopes = SPEECH_ALL) => auth.sign({ userId, orgId, scopes, ttlSeconds: 600 }),
    async request(method, path, o = {}) {
      const headers: Record<string, string> = {};
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(o.body);
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed };
    },
    async insertRows(table, rows) {
      await store.client.insert({ table: store.table(table), values: rows, format: 'JSONEachRow' });
    },
    async publishEvents(events) {
      await bus.publish(
        Topics.speechEvents,
        events.map((e) => ({ key: e.session_id, value: codec.encode(Topics.speechEvents, e) })),
      );
    },
    async seedSpeechSessions(rows) {
      for (const r of rows) {
        await entities.client.query(
          `INSERT INTO speech_sessions (session_id, org_id, user_id, title, kind, status, source, started_at, audio_duration_s, sample_rate_hz, created_at, updated_at)
           VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [r.orgId, r.userId, r.title, r.kind ?? 'speech', r.status ?? 'created', r.source ?? null, r.startedAt === undefined ? null : new Date(r.startedAt),
            r.audioDurationS ?? null, r.sampleRateHz ?? null, new Date(r.createdAt), new Date(r.updatedAt ?? r.createdAt)],
        );
      }
    },
    entities,
    async close() {
      await app.close();
      await speechLive.stop();
      await bus.close();
      await impl.dispose();
      await entities.dispose();
    },
  };
}

/** Polls `check` until it is truthy, or throws naming `what` once `timeoutMs` has passed. */
export async function waitUntil<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 10_000, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
