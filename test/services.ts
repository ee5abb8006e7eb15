// The test harness's service chooser: which Kafka, ClickHouse and Schema Registry a test
// talks to. In order of preference:
//   1. services named in the environment: KAFKA_BROKERS (comma-separated host:port),
//      CLICKHOUSE_URL (+ CLICKHOUSE_USER / CLICKHOUSE_PASSWORD), SCHEMA_REGISTRY_URL;
//   2. testcontainers, when a Docker engine answers: Kafka (KRaft), a ClickHouse server and
//      a Schema Registry on one Docker network, stopped by `stop()`;
//   3. the local broker of infra/kafka/kafka.sh (only when Kafka is needed), with chDB for
//      ClickHouse (clickhouseUrl null) and no Schema Registry.
// When Kafka is needed and none of these provides it, CI (CI=true) fails with an error;
// elsewhere kafkaBrokers is null and the test decides, usually through kafkaOrSkip(t).
//
// A local broker started here is deliberately left running after the test process exits:
// each test file runs in its own process and the next one reuses it (kafka.sh start is a
// no-op when it is up). `.ci/run` stops it at the end; by hand, `bash infra/kafka/kafka.sh stop`.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AttuneError } from '../lib/errors.js';

export interface TestServices {
  kafkaBrokers: string[] | null;
  /** null = use chDB. Credentials, when any, are in the URL (as @clickhouse/client's `url` takes them). */
  clickhouseUrl: string | null;
  schemaRegistryUrl: string | null;
  source: 'env' | 'testcontainers' | 'local';
  /** Stops what this process started (containers). A local broker is left running, see above. */
  stop(): Promise<void>;
}

/** The part of node:test's TestContext that kafkaOrSkip uses. */
export interface SkippableTest {
  skip(message?: string): void;
}

export interface ChooseDeps {
  env: NodeJS.ProcessEnv;
  /** Whether a Docker engine answers, quickly. */
  dockerAnswers(): Promise<boolean>;
  startContainers(): Promise<ContainerServices>;
  /** Starts (or finds) the local broker; returns its bootstrap addresses. */
  startLocalKafka(): Promise<string[]>;
  /** Where the one-line choice goes. */
  report(line: string): void;
}

export interface ContainerServices {
  kafkaBrokers: string[];
  clickhouseUrl: string;
  schemaRegistryUrl: string;
  stop(): Promise<void>;
}

// Images for the testcontainers path; the same as docker-compose.yml where the module allows
// (@testcontainers/kafka drives Confluent's cp-kafka image, KRaft from 8.0 on).
export const TEST_IMAGES = {
  kafka: 'confluentinc/cp-kafka:8.0.0',
  schemaRegistry: 'confluentinc/cp-schema-registry:8.0.0',
  clickhouse: 'clickhouse/clickhouse-server:25.8',
} as const;

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const KAFKA_SCRIPT = fileURLToPath(new URL('../infra/kafka/kafka.sh', import.meta.url));
export const SCHEMA_REGISTRY_SCRIPT = fileURLToPath(new URL('../infra/schema-registry/registry.sh', import.meta.url));

const isCi = (env: NodeJS.ProcessEnv): boolean => env.CI === 'true';

/** Splits a KAFKA_BROKERS value; an empty or blank value means none. */
export function parseBrokers(raw: string | undefined): string[] | null {
  if (raw === undefined) return null;
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  return list.length > 0 ? list : null;
}

/** Puts user and password into a ClickHouse URL that has none. */
export function clickhouseUrlWithCredentials(url: string, user?: string, password?: string): string {
  const u = new URL(url);
  if (u.username === '' && user) {
    u.username = user;
    if (password) u.password = password;
  }
  return u.toString().replace(/\/$/, '');
}

/**
 * The choice itself, with its effects injected so that it can be tested; getTestServices
 * is this with the real effects, memoised.
 */
export async function chooseTestServices(opts: { needKafka?: boolean }, deps: ChooseDeps): Promise<TestServices> {
  const needKafka = opts.needKafka ?? false;
  const { env } = deps;
  const envBrokers = parseBrokers(env.KAFKA_BROKERS);
  const envClickhouse = env.CLICKHOUSE_URL?.trim()
    ? clickhouseUrlWithCredentials(env.CLICKHOUSE_URL.trim(), env.CLICKHOUSE_USER, env.CLICKHOUSE_PASSWORD)
    : null;
  const envRegistry = env.SCHEMA_REGISTRY_URL?.trim() || null;
  const notes: string[] = [];

  // 1. The environment. Whatever it does not name comes from the local fallbacks (chDB,
  //    the local broker), never from containers: someone who points at services wants those.
  if (envBrokers || envClickhouse || envRegistry) {
    let kafkaBrokers = envBrokers;
    if (!kafkaBrokers && needKafka) kafkaBrokers = await tryLocalKafka(deps, notes);
    return finish(deps, needKafka, notes, {
      kafkaBrokers,
      clickhouseUrl: envClickhouse,
      schemaRegistryUrl: envRegistry,
      source: 'env',
      stop: async () => {},
    });
  }

  // 2. Containers, when Docker answers and testcontainers can run here.
  if (await deps.dockerAnswers()) {
    try {
      const started = await deps.startContainers();
      return finish(deps, needKafka, notes, { ...started, source: 'testcontainers' });
    } catch (err) {
      notes.push(`testcontainers failed: ${oneLine(err)}`);
    }
  }

  // 3. The local broker and chDB.
  const kafkaBrokers = needKafka ? await tryLocalKafka(deps, notes) : null;
  return finish(deps, needKafka, notes, {
    kafkaBrokers,
    clickhouseUrl: null,
    schemaRegistryUrl: null,
    source: 'local',
    stop: async () => {},
  });
}

async function tryLocalKafka(deps: ChooseDeps, notes: string[]): Promise<string[] | null> {
  try {
    return await deps.startLocalKafka();
  } catch (err) {
    notes.push(`local Kafka failed: ${oneLine(err)}`);
    return null;
  }
}

function finish(deps: ChooseDeps, needKafka: boolean, notes: string[], services: TestServices): TestServices {
  const kafka = services.kafkaBrokers ? services.kafkaBrokers.join(',') : 'none';
  deps.report(
    `test services (${services.source}): kafka=${kafka} clickhouse=${services.clickhouseUrl ? redact(services.clickhouseUrl) : 'chDB'} ` +
      `schema-registry=${services.schemaRegistryUrl ?? 'none'}${notes.length ? ` [${notes.join('; ')}]` : ''}`,
  );
  if (needKafka && !services.kafkaBrokers && isCi(deps.env)) {
    throw new AttuneError('unavailable', `CI needs Kafka and nothing provided it: ${notes.join('; ') || 'no KAFKA_BROKERS'}`);
  }
  return services;
}

const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

const oneLine = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim().slice(0, 500);

// ---- the real effects -------------------------------------------------------------------

/** Runs `infra/kafka/kafka.sh start` (idempotent, locked) and reads its KAFKA_BROKERS line. */
export function startLocalKafka(
  opts: { script?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string[]> {
  const script = opts.script ?? KAFKA_SCRIPT;
  // First use downloads the jars with Maven; later starts take seconds.
  const timeoutMs = opts.timeoutMs ?? 300_000;
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, 'start'],
      { cwd: repoRoot, env: opts.env ?? process.env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const tail = stderr.trim().split('\n').slice(-5).join(' | ');
          reject(new Error(`${script} start failed (${err.code ?? err.signal ?? err.message}): ${tail}`));
          return;
        }
        const line = stdout.split('\n').find((l) => l.startsWith('KAFKA_BROKERS='));
        const brokers = parseBrokers(line?.slice('KAFKA_BROKERS='.length));
        if (!brokers) reject(new Error(`${script} start printed no KAFKA_BROKERS line`));
        else resolve(brokers);
      },
    );
  });
}

/** Where a Docker engine may listen, in the order the Docker CLI and testcontainers look. */
function dockerEndpoints(env: NodeJS.ProcessEnv): Array<{ socketPath: string } | { host: string; port: number }> {
  const host = env.DOCKER_HOST;
  if (host) {
    if (host.startsWith('unix://')) return [{ socketPath: host.slice('unix://'.length) }];
    const m = /^tcp:\/\/([^:/]+):(\d+)/.exec(host);
    return m ? [{ host: m[1], port: Number(m[2]) }] : [];
  }
  const candidates = ['/var/run/docker.sock', `${homedir()}/.docker/run/docker.sock`];
  if (env.XDG_RUNTIME_DIR) candidates.push(`${env.XDG_RUNTIME_DIR}/docker.sock`, `${env.XDG_RUNTIME_DIR}/podman/podman.sock`);
  return candidates.filter((p) => existsSync(p)).map((socketPath) => ({ socketPath }));
}

/**
 * True when a Docker engine answers its /_ping within `timeoutMs`. Probed by hand rather
 * than through testcontainers: importing testcontainers is slow, and testcontainers 12
 * does not load at all on Node older than 22.22.
 */
export async function dockerAnswers(env: NodeJS.ProcessEnv = process.env, timeoutMs = 1500): Promise<boolean> {
  for (const endpoint of dockerEndpoints(env)) {
    const ok = await new Promise<boolean>((resolve) => {
      if ('socketPath' in endpoint) {
        const req = request({ socketPath: endpoint.socketPath, path: '/_ping', timeout: timeoutMs }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
        req.end();
      } else {
        // tcp:// may be TLS; an accepted connection is taken as an answer.
        const sock = connect({ host: endpoint.host, port: endpoint.port, timeout: timeoutMs });
        sock.on('connect', () => {
          sock.destroy();
          resolve(true);
        });
        sock.on('timeout', () => {
          sock.destroy();
          resolve(false);
        });
        sock.on('error', () => resolve(false));
      }
    });
    if (ok) return true;
  }
  return false;
}

/** Kafka (KRaft), a Schema Registry on the same network, and a ClickHouse server. */
export async function startContainers(): Promise<ContainerServices> {
  // Imported here, not at the top: most runs never get this far, and the import throws on
  // Node versions testcontainers does not support (the caller reports it and falls back).
  const { GenericContainer, Network, Wait } = await import('testcontainers');
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { ClickHouseContainer } = await import('@testcontainers/clickhouse');

  const stops: Array<() => Promise<unknown>> = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const network = await new Network().start();
    stops.push(() => network.stop());
    const [kafka, clickhouse] = await Promise.all([
      // The module's internal listener for other containers is kafka:9092; the host gets 9093.
      new KafkaContainer(TEST_IMAGES.kafka).withNetwork(network).withNetworkAliases('kafka').start(),
      new ClickHouseContainer(TEST_IMAGES.clickhouse).start(),
    ]);
    stops.push(() => kafka.stop(), () => clickhouse.stop());
    const registry = await new GenericContainer(TEST_IMAGES.schemaRegistry)
      .withNetwork(network)
      .withNetworkAliases('schema-registry')
      .withEnvironment({
        SCHEMA_REGISTRY_HOST_NAME: 'schema-registry',
        SCHEMA_REGISTRY_LISTENERS: 'http://0.0.0.0:8081',
        SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: 'PLAINTEXT://kafka:9092',
        SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR: '1',
      })
      .withExposedPorts(8081)
      .withWaitStrategy(Wait.forHttp('/subjects', 8081).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start();
    stops.push(() => registry.stop());
    return {
      kafkaBrokers: [`${kafka.getHost()}:${kafka.getMappedPort(9093)}`],
      clickhouseUrl: clickhouseUrlWithCredentials(clickhouse.getHttpUrl(), clickhouse.getUsername(), clickhouse.getPassword()),
      schemaRegistryUrl: `http://${registry.getHost()}:${registry.getMappedPort(8081)}`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

const realDeps = (): ChooseDeps => ({
  env: process.env,
  dockerAnswers: () => dockerAnswers(process.env),
  startContainers,
  startLocalKafka: () => startLocalKafka(),
  report: (line) => console.error(line),
});

let memo: { withKafka: boolean; services: Promise<TestServices> } | null = null;

/**
 * The services for this test process, chosen once (memoised). A call that needs Kafka after
 * one that did not chooses again, keeping any containers already running. A failed choice
 * is not remembered, and `stop()` forgets the choice, so the next call chooses afresh.
 */
export function getTestServices(opts: { needKafka?: boolean } = {}): Promise<TestServices> {
  const needKafka = opts.needKafka ?? false;
  if (memo && (memo.withKafka || !needKafka)) return memo.services;
  const previous = memo?.services;
  const chosen = (async () => {
    const before = previous ? await previous.catch(() => null) : null;
    // Containers always include Kafka, so only the env and local choices need redoing.
    if (before && before.source === 'testcontainers') return before;
    return chooseTestServices({ needKafka }, realDeps());
  })();
  const entry = {
    withKafka: needKafka,
    services: chosen.then((s) => ({
      ...s,
      stop: async () => {
        if (memo === entry) memo = null;
        await s.stop();
      },
    })),
  };
  memo = entry;
  entry.services.catch(() => {
    if (memo === entry) memo = null;
  });
  return entry.services;
}

/**
 * Kafka bootstrap addresses for a test that needs a real broker, or null after marking the
 * test skipped (outside CI only: in CI a missing Kafka throws, so it fails).
 *
 *   const brokers = await kafkaOrSkip(t);
 *   if (!brokers) return;
 */
export async function kafkaOrSkip(
  t: SkippableTest,
  get: (opts: { needKafka: boolean }) => Promise<TestServices> = getTestServices,
): Promise<string[] | null> {
  const services = await get({ needKafka: true });
  if (services.kafkaBrokers) return services.kafkaBrokers;
  if (isCi(process.env)) throw new AttuneError('unavailable', 'CI needs Kafka and nothing provided it');
  t.skip('no Kafka: set KAFKA_BROKERS, run Docker, or install Java 17 + Maven for infra/kafka/kafka.sh');
  return null;
}

// ---- the Schema Registry ------------------------------------------------------------------

/**
 * Runs `infra/schema-registry/registry.sh start` (a real Apicurio Registry speaking the
 * Confluent API; idempotent, locked) and reads its SCHEMA_REGISTRY_URL line. Like the local
 * broker, a registry started here is left running for the next test file.
 */
export function startLocalSchemaRegistry(
  opts: { script?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  const script = opts.script ?? SCHEMA_REGISTRY_SCRIPT;
  // First use builds the registry with Maven (about 1.5 min); later starts take ~15 s.
  const timeoutMs = opts.timeoutMs ?? 400_000;
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, 'start'],
      { cwd: repoRoot, env: opts.env ?? process.env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const tail = stderr.trim().split('\n').slice(-5).join(' | ');
          reject(new Error(`${script} start failed (${err.code ?? err.signal ?? err.message}): ${tail}`));
          return;
        }
        const line = stdout.split('\n').find((l) => l.startsWith('SCHEMA_REGISTRY_URL='));
        const url = line?.slice('SCHEMA_REGISTRY_URL='.length).trim();
        if (!url) reject(new Error(`${script} start printed no SCHEMA_REGISTRY_URL line`));
        else resolve(url);
      },
    );
  });
}

/**
 * The URL of a real Confluent-compatible registry for a test, or null after marking the test
 * skipped: SCHEMA_REGISTRY_URL when set (CI exports the one .ci/run started), else the local
 * registry of infra/schema-registry/registry.sh, started on first use. In CI a missing
 * registry throws, so the test fails rather than skips.
 */
export async function schemaRegistryOrSkip(
  t: SkippableTest,
  start: () => Promise<string> = () => startLocalSchemaRegistry(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | null> {
  const fromEnv = env.SCHEMA_REGISTRY_URL?.trim();
  if (fromEnv) return fromEnv;
  try {
    return await start();
  } catch (err) {
    if (isCi(env)) throw new AttuneError('unavailable', `CI needs a schema registry and none started: ${oneLine(err)}`);
    t.skip(`no schema registry: set SCHEMA_REGISTRY_URL, or install Java 17 + Maven for infra/schema-registry/registry.sh (${oneLine(err)})`);
    return null;
  }
}
