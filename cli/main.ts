// The `attune` command: one binary, one role per subcommand.
//   attune all        every role in one process (embedded bus + chDB by default)
//   attune ingest     the ingest gateway alone
//   attune worker     the compute workers alone (coherence; Kafka in, Kafka out, no ClickHouse)
//   attune sink       the ClickHouse writers alone (readings, windows, events, sessions; speech)
//   attune api        the query API and live fan-out alone
//   attune migrate    applies pending ClickHouse migrations
//   attune simulate   drives a running server's ingest API with simulated devices (--group N: a simulated group session)
//   attune token      prints a development JWT the running server accepts
//
// Each command imports what it runs, when it runs (dynamic imports): `attune token` loads the
// JWT code alone, not the server, bus, stores or pipelines behind the roles, so it answers in
// a fraction of a second. The native modules load further down, only where used: chDB when no
// CLICKHOUSE_URL is set (store/clickhouse.ts), PGlite without DATABASE_URL
// (store/postgres/client.ts), onnxruntime when the speech worker opens its models
// (models/loader.ts). cli/lazy-load.test.ts checks this.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type AttuneConfig } from '../lib/config.js';
import { createLogger, type Logger } from '../lib/log.js';
import type { Roles } from './roles.js';
import { isAttuneError } from '../lib/errors.js';
import { ATTUNE_UMASK, secureDataDir } from '../lib/data-dir.js';
import { TIER_NAMES, tierOfClaim } from '../lib/tiers.js';
import { Scopes } from '../lib/principal.js';

const USAGE = `usage: attune <command> [options]

commands:
  all                 every role in one process (embedded default)
  ingest | worker | sink | api
                      one role, for scale-out against Kafka, PostgreSQL and a ClickHouse server
  api,sink (any roles joined by commas)
                      several roles in one process: without a ClickHouse server, the API and
                      the sinks share one process (chDB is one process's)
  migrate             apply pending PostgreSQL (entities) and ClickHouse (facts) migrations
  simulate            drive a running server with simulated devices
                      (--group N: a simulated group session of N participants instead)
  token               print a development JWT
  deadletters         print the dead letters on Kafka (ATTUNE_TOPIC_PREFIX's), one JSON object a line:
                      source topic/partition/offset, reason, consumer group, time, the original value
                      (--reason CODE, --limit N, --idle-ms MS: stop after MS without a record once assigned, default 3000)

options (each also an environment variable, see README):
  --port N            PORT (default 8080)
  --data-dir DIR      ATTUNE_DATA_DIR (default ./data)
  --simulate          all: also run the simulator (unless ATTUNE_SIMULATE=0)
  --devices N         simulate/all: simulated devices (ATTUNE_SIM_DEVICES, default 3)
  --url URL           simulate: server to drive (default http://127.0.0.1:$PORT)
  --duration S        simulate: stop after S seconds of simulated time, sent at once as history (default: run until Ctrl-C,
                      in real time); with --group, history predates the joins, so no group windows (README)
  --group N           simulate: a public group (mesh) session of N simulated participants;
                      all --simulate: its size (ATTUNE_SIM_GROUP, default 8; 0: no group)
  --locked-share X    simulate/all: share of the group breathing in phase with the pacer, 0..1 (default 0.75)
  --breathing-rate R  simulate/all: the group's pacer, breaths per minute, 2..30 (default 6)
  --seed S            simulate --group: seed of the participants' beats (default: 1 with --duration, else the clock)
  --user U --org O --scopes "a b" [--ttl S] [--tier T]   (--scopes all: every scope)
                      token: claims of the token (ttl default 86400 s, at most JWT_MAX_AGE_S;
                      tier free|plus|pro|enterprise, default none: ATTUNE_DEFAULT_TIER applies)
`;

const ROLE_SETS: Record<string, Roles> = {
  all: { ingest: true, api: true, worker: true, sink: true },
  ingest: { ingest: true, api: false, worker: false, sink: false },
  worker: { ingest: false, api: false, worker: true, sink: false },
  sink: { ingest: false, api: false, worker: false, sink: true },
  api: { ingest: false, api: true, worker: false, sink: false },
};

/**
 * The roles a command runs: `all`, one role, or several joined by commas (`api,sink`: on a
 * machine without a ClickHouse server the API must share a process with the sinks, as chDB
 * is one process's); null when it is not a role command.
 */
export function rolesOf(command: string): Roles | null {
  if (Object.hasOwn(ROLE_SETS, command)) return ROLE_SETS[command];
  const names = command.split(',');
  if (names.length < 2 || names.some((n) => n === 'all' || !Object.hasOwn(ROLE_SETS, n))) return null;
  const roles: Roles = { ingest: false, api: false, worker: false, sink: false };
  for (const n of names) for (const [k, v] of Object.entries(ROLE_SETS[n])) if (v) roles[k as keyof Roles] = true;
  return roles;
}

/**
 * Start-up warnings about ClickHouse for one process of several (Kafka): chDB (no
 * CLICKHOUSE_URL) is this process's alone, so an API without the sinks in the same process
 * reads tables no sink writes (every history empty), and sinks without the API write tables
 * no API reads. Until 12-06 both started without a word (an operator walkthrough: a session
 * of 61 stored windows read back with no metrics and an empty timeline).
 */
export function clickhouseWarnings(roles: Roles, config: Pick<AttuneConfig, 'bus' | 'clickhouseUrl'>): string[] {
  if (config.bus !== 'kafka' || config.clickhouseUrl) return [];
  if (roles.api && !roles.sink) {
    return ['CLICKHOUSE_URL is not set: this API reads chDB in ATTUNE_DATA_DIR, which no sink writes (chDB is one process\'s), so histories and session figures stay empty; set CLICKHOUSE_URL to the ClickHouse server the sinks write to, or run the API with the sinks in one process (`attune api,sink`)'];
  }
  if (roles.sink && !roles.api) {
    return ['CLICKHOUSE_URL is not set: these sinks write chDB in ATTUNE_DATA_DIR, which no other process can read (chDB is one process\'s), so no API process sees what they store; set CLICKHOUSE_URL to a ClickHouse server, or run the sinks with the API in one process (`attune api,sink`)'];
  }
  return [];
}

function fail(message: string): never {
  process.stderr.write(`attune: ${message}\n`);
  process.exit(2);
}

/** Whether a command keeps anything in the data directory (embedded bus, chDB, PGlite, the generated JWT secret). */
function usesDataDir(command: string, config: AttuneConfig): boolean {
  const ownSecret = !config.jwt.secret && !config.jwt.publicKey && !config.jwt.jwksUrl;
  if (command === 'token') return ownSecret;
  return config.bus === 'embedded' || !config.clickhouseUrl || !config.databaseUrl || ownSecret;
}

/** A refusal to start on insecure data at rest (lib/data-dir.ts), as one coded line. */
function failOnInsecure(err: unknown): void {
  const reason = isAttuneError(err) ? err.details[0]?.reason : undefined;
  if (reason === 'insecure_permissions' || reason === 'weak_key') fail(`${reason}: ${(err as Error).message}`);
}

export async function main(argv: string[]): Promise<void> {
  // Nothing the command creates (data directory, bus logs, chDB and PGlite files, the secret)
  // is open to group or others: chDB and PGlite create their own files, under this umask.
  process.umask(ATTUNE_UMASK);
  try {
    await run(argv);
  } catch (err) {
    failOnInsecure(err);
    // A configuration a dependency refused (PostgreSQL's credentials in DATABASE_URL): one line naming the variable.
    if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`);
    // A dependency that never came up (Kafka past ATTUNE_KAFKA_CONNECT_WAIT_MS): one line
    // naming it and a non-zero exit (1: the environment, not the command line), no stack trace.
    if (isAttuneError(err) && err.code === 'unavailable') {
      process.stderr.write(`attune: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

async function run(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        simulate: { type: 'boolean' },
        devices: { type: 'string' },
        url: { type: 'string' },
        duration: { type: 'string' },
        group: { type: 'string' },
        'locked-share': { type: 'string' },
        'breathing-rate': { type: 'string' },
        seed: { type: 'string' },
        user: { type: 'string' },
        org: { type: 'string' },
        scopes: { type: 'string' },
        ttl: { type: 'string' },
        tier: { type: 'string' },
        reason: { type: 'string' },
        limit: { type: 'string' },
        'idle-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return;
  }

  let config: AttuneConfig;
  try {
    const flags: Record<string, string | undefined> = {
      PORT: values.port,
      ATTUNE_DATA_DIR: values['data-dir'],
      ATTUNE_SIM_DEVICES: values.devices,
      ATTUNE_SIM_GROUP: values.group,
    };
    // --simulate turns the simulator on, but an explicit ATTUNE_SIMULATE=0 wins: that is how
    // `npm start` (which passes --simulate) is run without it.
    if (values.simulate && process.env.ATTUNE_SIMULATE === undefined) flags.ATTUNE_SIMULATE = '1';
    config = loadConfig(process.env, flags);
  } catch (err) {
    if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`);
    throw err;
  }
  // A command whose answer is its standard output (a token, what migrate applied) logs to
  // standard error, so that TOKEN=$(attune token …) holds the token alone (a warning about the
  // data directory's mode came before it, an STT walkthrough found).
  const toStderr = command === 'token' || command === 'migrate';
  const log = createLogger({ level: config.logLevel, stderr: toStderr });
  const groupFlags = groupOptions(values);
  if ((rolesOf(command) !== null || command === 'migrate' || command === 'token') && usesDataDir(command, config)) {
    const { fixedFrom } = secureDataDir(config.dataDir);
    if (fixedFrom) log.warn({ dataDir: config.dataDir, was: fixedFrom }, 'the data directory was open to group or others: now 0700');
    // The key file is checked before any database opens, so a refusal is immediate.
    if (!config.jwt.secret && !config.jwt.publicKey && !config.jwt.jwksUrl) (await import('../http/auth.js')).loadOrCreateSecret(config.dataDir);
  }

  switch (command) {
    case 'all':
    case 'ingest':
    case 'worker':
    case 'sink':
    case 'api':
      return runRoles(command, config, log, groupFlags);
    case 'migrate': {
      // Entities (PostgreSQL, or PGlite in the data dir) first, then facts (ClickHouse).
      const [{ openEntities, openStore }, { migrate }, { migratePostgres }] = await Promise.all([
        import('./roles.js'),
        import('../store/migrate.js'),
        import('../store/postgres/migrate.js'),
      ]);
      const sql = await openEntities(config, log, { wait: true });
      try {
        const { applied } = await migratePostgres(sql);
        process.stdout.write(applied.length ? `postgres applied: ${applied.join(', ')}\n` : 'postgres up to date\n');
      } finally {
        await sql.close();
      }
      const store = await openStore(config, log);
      try {
        const { applied } = await migrate(store);
        process.stdout.write(applied.length ? `clickhouse applied: ${applied.join(', ')}\n` : 'clickhouse up to date\n');
      } finally {
        await store.close();
      }
      return;
    }
    case 'token': {
      if (!values.user || !values.org) fail('token needs --user and --org');
      const ttl = values.ttl ? Number(values.ttl) : Math.min(86_400, config.jwt.maxAgeS);
      if (!Number.isInteger(ttl) || ttl <= 0) fail('--ttl must be a positive number of seconds');
      // `all` is every scope Attune knows (lib/principal.ts), so a tool such as the fuzzer is not
      // left with a list that misses the scopes of newer routes.
      const named = (values.scopes ?? 'read:sessions read:coherence').split(/[\s,]+/).filter(Boolean);
      const scopes = named.flatMap((s) => (s === 'all' ? Object.values(Scopes) : [s]));
      // Signed as given (an identity provider's tokens may carry other services' scopes too),
      // but a name no route checks is most likely a typo that would only show later as a 403.
      const known = new Set<string>(Object.values(Scopes));
      const unknown = scopes.filter((s) => !known.has(s));
      if (unknown.length > 0) process.stderr.write(`attune token: no route checks ${unknown.join(', ')} (signed as given; Attune's scopes: ${[...known].join(' ')})\n`);
      const tier = values.tier === undefined ? undefined : tierOfClaim(values.tier);
      if (tier === null) fail(`--tier must be one of ${TIER_NAMES.join(', ')}`);
      const { authFromConfig } = await import('./auth-config.js');
      try {
        process.stdout.write(authFromConfig(config, log).sign({ userId: values.user, orgId: values.org, scopes, ttlSeconds: ttl, tier }) + '\n');
      } catch (err) {
        failOnInsecure(err);
        fail((err as Error).message);
      }
      return;
    }
    case 'simulate': {
      const baseUrl = values.url ?? `http://127.0.0.1:${config.port}`;
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      process.once('SIGTERM', () => controller.abort());
      const durationMs = values.duration ? Number(values.duration) * 1000 : undefined;
      if (durationMs !== undefined && !(durationMs > 0)) fail('--duration must be a positive number of seconds');
      const { authFromConfig } = await import('./auth-config.js');
      const auth = authFromConfig(config, log);
      if (values.group !== undefined) {
        if (config.simulatorGroup < 1) fail('--group must be at least 1');
        const { startGroupSimulator } = await import('./simulate-group.js');
        const stats = await startGroupSimulator(baseUrl, auth, log, controller.signal, { participants: config.simulatorGroup, ...groupFlags, durationMs });
        process.stdout.write(JSON.stringify(stats) + '\n');
        if (stats.meshSessionId === null && !controller.signal.aborted) process.exit(1);
        return;
      }
      const stats = durationMs
        ? await (await import('../simulator/index.js')).runSimulator({
            baseUrl,
            devices: config.simulatorDevices,
            // Simulated devices send a batch a second each: the enterprise tier keeps them clear of the request limits.
            tokenFor: (u, o) => auth.sign({ userId: u, orgId: o, scopes: ['write:sessions', 'write:devices', 'write:readings', 'read:sessions'], tier: 'enterprise' }),
            durationMs,
            signal: controller.signal,
            log,
          })
        : await (await import('./roles.js')).startSimulator(config, baseUrl, auth, log, controller.signal);
      process.stdout.write(JSON.stringify(stats) + '\n');
      return;
    }
    case 'deadletters': {
      if (config.bus !== 'kafka') fail('deadletters reads Kafka (KAFKA_BROKERS): on the embedded bus the dead letters are in the running process\'s log; /metrics counts them (attune_dead_letters_total)');
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) fail(`--limit must be a positive integer, got "${values.limit}"`);
      const idleMs = values['idle-ms'] === undefined ? 3_000 : Number(values['idle-ms']);
      if (!(Number.isInteger(idleMs) && idleMs >= 100 && idleMs <= 600_000)) fail(`--idle-ms must be an integer 100..600000, got "${values['idle-ms']}"`);
      // Lines on stdout, the process's own log on stderr (warnings only unless LOG_LEVEL says more).
      const quiet = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', destination: process.stderr });
      const [{ openBus, openCodec }, { printDeadLetters }, { prefixedTopics }] = await Promise.all([import('./roles.js'), import('./deadletters.js'), import('../schemas/topics.js')]);
      const bus = await openBus(config, quiet, prefixedTopics(config.topicPrefix));
      try {
        await printDeadLetters(config, quiet, { reason: values.reason, limit, idleMs, write: (l) => process.stdout.write(l) }, { bus, codec: await openCodec(config) });
      } finally {
        await bus.close();
      }
      return;
    }
    default:
      if (rolesOf(command)) return runRoles(command, config, log, groupFlags);
      fail(`unknown command "${command}"\n${USAGE}`);
  }
}

/** --locked-share, --breathing-rate and --seed of the simulated group, checked. */
function groupOptions(values: { 'locked-share'?: string; 'breathing-rate'?: string; seed?: string }): { lockedShare: number; breathingRateBpm: number; seed?: number } {
  const num = (raw: string | undefined, def: number, flag: string, ok: (x: number) => boolean, what: string): number => {
    if (raw === undefined) return def;
    const x = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(x) || !ok(x)) fail(`${flag} must be ${what}, got "${raw}"`);
    return x;
  };
  const seed = values.seed === undefined ? undefined : num(values.seed, 0, '--seed', (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32, 'an integer 0..4294967295');
  return {
    lockedShare: num(values['locked-share'], 0.75, '--locked-share', (x) => x >= 0 && x <= 1, 'a number 0..1'),
    breathingRateBpm: num(values['breathing-rate'], 6, '--breathing-rate', (x) => x >= 2 && x <= 30, 'breaths per minute 2..30'),
    ...(seed === undefined ? {} : { seed }),
  };
}

async function runRoles(command: string, config: AttuneConfig, log: Logger, groupFlags: ReturnType<typeof groupOptions>): Promise<void> {
  const roles = rolesOf(command)!;
  // One role on Kafka is one process of several, which must share one PostgreSQL: without
  // DATABASE_URL this one would keep devices and sessions in a PGlite folder of its own, never
  // migrated, which no other process sees (until 12-06 it started so, and answered every sync
  // 500 "relation … does not exist").
  if (command !== 'all' && config.bus === 'kafka' && !config.databaseUrl) {
    fail(`invalid configuration: DATABASE_URL: \`attune ${command}\` on Kafka needs the PostgreSQL server every process of the deployment shares (postgres://user:password@host:port/db); only \`attune all\` may run without it (PGlite in ATTUNE_DATA_DIR)`);
  }
  for (const warning of clickhouseWarnings(roles, config)) log.warn({ roles: command }, warning);
  if (command !== 'all' && config.bus === 'embedded') {
    log.warn('running a single role on the embedded bus: other processes cannot reach it; set KAFKA_BROKERS to scale out');
  }
  // The signals are taken before the start, not after it: the process listens before its
  // workers have joined their groups (cli/roles.ts), and a SIGTERM in between (a rolling
  // deploy, a supervisor's stop) would otherwise kill it without leaving its groups or
  // closing its clients. A signal before it listens exits at once (nothing was accepted yet,
  // and the start may be waiting on Kafka for a minute or on another process's migrations);
  // one after stops it once the start has finished; a second one exits at once.
  let listening = false;
  let signalled: string | null = null;
  let onSignal = (signal: string): void => {
    if (!listening) {
      log.info({ signal }, 'signal before the server listened: exiting');
      process.exit(0);
    }
    if (signalled) process.exit(1);
    signalled = signal;
    log.info({ signal }, 'signal during the start: stopping once it has finished (a second signal exits at once)');
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const { startAttune, startSimulator } = await import('./roles.js');
  const running = await startAttune(config, roles, log.child({ roles: command }), { migrate: command === 'all', waitForPostgres: true, onListening: () => (listening = true) });
  listening = true; // a role without a server (attune worker) has nothing to wait for
  const controller = new AbortController();
  let simulator: Promise<unknown> | null = null;
  if (config.simulate && running.url) {
    // The port listened on (PORT=0 picks a free one), not the configured one.
    const baseUrl = `http://127.0.0.1:${new URL(running.url).port}`;
    const devices = startSimulator(config, baseUrl, running.auth, log, controller.signal).catch((err) => log.error({ err }, 'simulator stopped'));
    // And a live group session, so GET /v1/mesh/sessions?status=active lists one at once.
    const group =
      config.simulatorGroup > 0
        ? import('./simulate-group.js')
            .then(({ startGroupSimulator }) => startGroupSimulator(baseUrl, running.auth, log, controller.signal, { participants: config.simulatorGroup, ...groupFlags }))
            .catch((err) => log.error({ err }, 'group simulator stopped'))
        : null;
    simulator = Promise.all([devices, group]);
    log.info({ devices: config.simulatorDevices, group: config.simulatorGroup }, 'simulator running (ATTUNE_SIMULATE=0 turns it off, ATTUNE_SIM_GROUP=0 only the group)');
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    controller.abort();
    await simulator;
    await running.stop();
    process.exit(0);
  };
  onSignal = (signal) => void shutdown(signal);
  if (signalled) onSignal(signalled);
}
