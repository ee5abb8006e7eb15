// A server carrying the mesh API for the api/mesh-*.test.ts files: PGlite in memory
// (migrated: the entity database of the embedded default), chDB in a temporary directory
// (migrated, for the group windows), the embedded bus in memory, an HS256 authenticator,
// listening on a free port. Group windows are inserted directly (insertRows): the tests do
// not depend on the group worker. The clock is the test's (`now`).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createEmbeddedBus } from '../bus/embedded.js';
import type { Bus } from '../bus/types.js';
import { Topics } from '../schemas/topics.js';
import { silentLogger } from '../lib/log.js';
import { createCodec } from '../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../schemas/registry/registry.js';
import type { StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { storeImplementations, type StoreImplementation } from '../store/test-stores.test-util.js';
import { createAuthenticator, type Authenticator } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { buildServer } from '../cli/server.js';
import { createCoherenceLiveHub } from './live.js';
import type { Tier } from '../lib/tiers.js';
import { DevicesRepository, SessionsRepository } from '../store/postgres/sessions-repo.js';
import { MeshRepository } from '../store/postgres/mesh-repo.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { pgliteDatabase, type TestDatabase } from '../store/postgres/test-databases.test-util.js';

export const MESH_ALL = ['mesh:create', 'mesh:join'];

export interface MeshTestServer {
  baseUrl: string;
  wsUrl: string;
  app: FastifyInstance;
  store: StoreClient;
  bus: Bus;
  auth: Authenticator;
  entities: TestDatabase;
  mesh: MeshRepository;
  devices: DevicesRepository;
  /** The server's clock (ms); tests move it (unless realClock). */
  clock: { now: number };
  token(userId: string, orgId: string, scopes?: string[], tier?: Tier): string;
  request<T = any>(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<{ status: number; body: T }>;
  insertRows(table: string, rows: object[]): Promise<void>;
  close(): Promise<void>;
}

export interface MeshTestServerOptions {
  defaultTier?: Tier;
  /** The wall clock instead of the test's hand-moved one (the live stream's pulses follow it). */
  realClock?: boolean;
  /** Another server's bus, ClickHouse and entity database: a second API process of one deployment. */
  shareWith?: MeshTestServer;
}

export async function startMeshTestServer(opts: MeshTestServerOptions = {}): Promise<MeshTestServer> {
  const shared = opts.shareWith;
  const impl: StoreImplementation | null = shared ? null : (await storeImplementations())[0];
  const store = shared ? shared.store : await impl!.open();
  if (!shared) await migrate(store);
  const bus = shared ? shared.bus : await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  if (!shared) await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const auth = shared ? shared.auth : createAuthenticator({ secret: randomBytes(32).toString('hex'), publicKey: null, issuer: 'attune-test', audience: 'attune-test' });
  const clockState = { now: Date.now() };
  const clock = opts.realClock ? () => Date.now() : () => clockState.now;
  const liveOptions = { maxBufferedMessages: 1024, heartbeatMs: 30_000 };
  const entities = shared ? shared.entities : await pgliteDatabase();
  if (!shared) await migratePostgres(entities.client);
  const mesh = new MeshRepository(entities.client, { clock });
  const devices = new DevicesRepository(entities.client, { clock });
  const ctx: AppContext = {
    log: silentLogger,
    auth,
    clickhouse: store.client,
    database: store.database,
    bus,
    topics: Topics,
    codec,
    sessions: new SessionsRepository(entities.client, { clock }),
    devices,
    // The heart live routes are registered with the API role; their hub is not started here.
    live: createCoherenceLiveHub({ log: silentLogger, ...liveOptions, clock }, Topics),
    mesh,
    health: [],
    clock,
    roles: { ingest: false, api: true, worker: false },
    liveOptions,
    ingestLimit: { readingsPerS: 0, burst: 0 },
    ...(opts.defaultTier
      ? { rateLimit: { enabled: false, defaultTier: opts.defaultTier, redisUrl: null } }
      : {}),
  };
  const app = await buildServer(ctx);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    baseUrl: url,
    wsUrl: url.replace(/^http/, 'ws'),
    app,
    store,
    bus,
    auth,
    entities,
    mesh,
    devices,
    clock: clockState,
    token: (userId, orgId, scopes = MESH_ALL, tier) => auth.sign({ userId, orgId, scopes, ttlSeconds: 600, ...(tier ? { tier } : {}) }),
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
    async close() {
      await app.close();
      // What a shared server owns is closed by it.
      if (shared) return;
      await bus.close();
      await impl!.dispose();
      await entities.dispose();
    },
  };
}
