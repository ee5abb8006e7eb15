// Heavy and native packages load only where used (issue 8): `attune token` loads no server,
// store, bus or model code; chDB loads only without CLICKHOUSE_URL, PGlite only without
// DATABASE_URL, onnxruntime only when the speech worker opens its models.
//
// Each case runs in a child process from the sources (through tsx) with test/load-recorder.mjs,
// which lists every module the process loaded (ESM loader, require's cache, and the shared
// objects mapped into the process), and checks the list. Positive controls (chDB without a URL,
// onnxruntime once a model is opened) show that the recorder does see these packages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOAD_RECORDER, readLoadLog, type LoadedModules } from '../test/loaded-modules.js';

const ROOT = new URL('..', import.meta.url).pathname;
const NATIVE_CHDB = /chdb/i;
const NATIVE_ONNX = /onnxruntime/i;

const work = mkdtempSync(join(tmpdir(), 'attune-lazy-load-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface ChildRun extends LoadedModules {
  status: number | null;
  stdout: string;
  stderr: string;
}

let runs = 0;
/** Runs `code` (an ES module, imports relative to the repository root) in a child and lists what it loaded. */
function runChild(code: string, env: Record<string, string | undefined> = {}): Promise<ChildRun> {
  const log = join(work, `load-${++runs}.log`);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ATTUNE_LOAD_LOG: log, LOG_LEVEL: 'error' };
  for (const name of ['CLICKHOUSE_URL', 'DATABASE_URL', 'KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL']) delete childEnv[name];
  Object.assign(childEnv, env);
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', LOAD_RECORDER, '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr, ...readLoadLog(log) }));
  });
}

function assertNotLoaded(run: ChildRun, packages: string[], natives: RegExp[] = []): void {
  const loaded = packages.filter((p) => run.packages.has(p));
  assert.deepEqual(loaded, [], `loaded: ${loaded.join(', ')}`);
  const mapped = run.natives.filter((n) => natives.some((re) => re.test(n)));
  assert.deepEqual(mapped, [], `native libraries mapped: ${mapped.join(', ')}`);
}

function assertOk(run: ChildRun): void {
  assert.equal(run.status, 0, `child failed (status ${run.status}):\n${run.stderr}`);
}

// A stand-in ClickHouse server: answers every query with 200 and an empty body, and /ping
// with "Ok.", which is all that opening a store against a server asks of it.
let clickhouse: Server;
let clickhouseUrl = '';
const clickhouseQueries: string[] = [];
before(async () => {
  clickhouse = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      clickhouseQueries.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.url?.startsWith('/ping') ? 'Ok.\n' : '');
    });
  });
  await new Promise<void>((resolve) => clickhouse.listen(0, '127.0.0.1', resolve));
  clickhouseUrl = `http://127.0.0.1:${(clickhouse.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => clickhouse.close(() => resolve())));

const SERVER_GRAPH = [
  'fastify',
  '@fastify/websocket',
  '@fastify/multipart',
  'kafkajs',
  '@kafkajs/confluent-schema-registry',
  '@clickhouse/client',
  'chdb',
  '@chdb/lib-linux-x64-gnu',
  'pg',
  '@electric-sql/pglite',
  'onnxruntime-node',
  'onnxruntime-common',
  'soundswallower',
  'avsc',
];

test('attune token loads the JWT code and none of the server, stores, bus or models', async () => {
  const dataDir = join(work, 'token');
  const run = await runChild(
    `import { main } from './cli/main.ts';
     await main(['token', '--user', 'u', '--org', 'o', '--data-dir', ${JSON.stringify(dataDir)}]);`,
  );
  assertOk(run);
  assert.match(run.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'prints a JWT');
  assert.ok(run.packages.has('fast-jwt'), 'the recorder sees the packages token does load');
  assertNotLoaded(run, SERVER_GRAPH, [NATIVE_CHDB, NATIVE_ONNX]);
  const ours = run.files.filter((f) => f.startsWith(ROOT) && !f.includes('/node_modules/')).map((f) => f.slice(ROOT.length));
  const roleWiring = ours.filter((f) => /^(cli\/(roles|server)|api|ingest|pipelines|store|bus|models)\//.test(f) || f.startsWith('cli/roles') || f.startsWith('cli/server'));
  assert.deepEqual(roleWiring, [], 'no role wiring, routes, workers, stores, bus or models');
});

test('a store opened on a ClickHouse URL does not load chDB', async () => {
  const run = await runChild(
    `import { createStoreClient } from './store/clickhouse.ts';
     import { silentLogger } from './lib/log.ts';
     const store = await createStoreClient({ url: process.env.CLICKHOUSE_URL, database: 'attune_lazy', log: silentLogger });
     if (store.kind !== 'server') throw new Error('expected a server store, got ' + store.kind);
     await store.close();`,
    { CLICKHOUSE_URL: clickhouseUrl },
  );
  assertOk(run);
  assert.ok(clickhouseQueries.some((q) => q.includes('CREATE DATABASE IF NOT EXISTS attune_lazy')), 'the store did talk to the server');
  assert.ok(run.packages.has('@clickhouse/client'));
  assertNotLoaded(run, ['chdb', '@chdb/lib-linux-x64-gnu'], [NATIVE_CHDB]);
});

test('a store without a URL loads chDB (the recorder sees it)', async () => {
  const run = await runChild(
    `import { createStoreClient } from './store/clickhouse.ts';
     import { silentLogger } from './lib/log.ts';
     const store = await createStoreClient({ dataDir: ${JSON.stringify(join(work, 'chdb'))}, database: 'attune_lazy', log: silentLogger });
     if (store.kind !== 'chdb') throw new Error('expected chDB, got ' + store.kind);
     await store.close();`,
  );
  assertOk(run);
  assert.ok(run.packages.has('chdb'), 'chdb package loaded');
  assert.ok(run.natives.some((n) => /libchdb\.so$/.test(n)), `libchdb.so mapped: ${run.natives.join(', ')}`);
});

test('the speech modules load onnxruntime only when a model is opened', async () => {
  const run = await runChild(
    `import { readFileSync } from 'node:fs';
     import { SpeechWorker } from './pipelines/speech/worker.ts';
     import { SileroVad } from './pipelines/speech/vad/silero.ts';
     import { ScoreModel } from './pipelines/speech/scoring/model.ts';
     import { MoonshineRecognizer } from './pipelines/speech/asr/moonshine.ts';
     const maps = () => readFileSync('/proc/self/maps', 'utf8');
     if (/onnxruntime/.test(maps())) throw new Error('onnxruntime mapped before any model was opened');
     if (typeof SpeechWorker !== 'function' || typeof ScoreModel !== 'function' || typeof MoonshineRecognizer !== 'function') throw new Error('imports');
     const vad = await SileroVad.load();
     const probs = await vad.process(new Float32Array(1024));
     await vad.release();
     console.log(JSON.stringify({ chunks: probs.length, mapped: /onnxruntime/.test(maps()) }));`,
  );
  assertOk(run);
  assert.deepEqual(JSON.parse(run.stdout.trim()), { chunks: 2, mapped: true });
  assert.ok(run.packages.has('onnxruntime-node'));
});

test('the Moonshine vocabulary (llama-tokenizer-js) loads at the first decode, not with the speech modules', async () => {
  const imports = `import { SpeechWorker } from './pipelines/speech/worker.ts';
     import { decodeTokens } from './pipelines/speech/asr/tokenizer.ts';
     if (typeof SpeechWorker !== 'function') throw new Error('imports');`;
  const without = await runChild(imports);
  assertOk(without);
  assertNotLoaded(without, ['llama-tokenizer-js']);
  // And the recorder sees it once a decode needs it.
  const decoded = await runChild(`${imports}
     console.log(JSON.stringify(decodeTokens([1, 15043, 2])));`);
  assertOk(decoded);
  assert.ok(decoded.packages.has('llama-tokenizer-js'), [...decoded.packages].join(', '));
  assert.equal(JSON.parse(decoded.stdout.trim()), 'Hello');
});

test('the api role with CLICKHOUSE_URL and DATABASE_URL loads neither chDB, PGlite nor onnxruntime', async () => {
  const dataDir = join(work, 'api');
  const run = await runChild(
    `import { loadConfig } from './lib/config.ts';
     import { silentLogger } from './lib/log.ts';
     import { startAttune } from './cli/roles.ts';
     const config = loadConfig(process.env, { ATTUNE_DATA_DIR: ${JSON.stringify(dataDir)} });
     const running = await startAttune(config, { api: true, ingest: false, worker: false }, silentLogger, { listen: false });
     console.log(JSON.stringify({ store: running.store?.kind ?? null, server: running.server !== null }));
     await running.stop();`,
    // Nothing listens on port 1: the api role opens a pool but runs no query at start.
    { CLICKHOUSE_URL: clickhouseUrl, DATABASE_URL: 'postgres://attune:attune@127.0.0.1:1/attune' },
  );
  assertOk(run);
  const started = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
  assert.equal(started.store, 'server');
  assert.equal(started.server, true);
  assert.ok(run.packages.has('fastify') && run.packages.has('@clickhouse/client'), 'the recorder sees the api role\'s packages');
  assertNotLoaded(run, ['chdb', '@chdb/lib-linux-x64-gnu', '@electric-sql/pglite', 'onnxruntime-node', 'onnxruntime-common'], [NATIVE_CHDB, NATIVE_ONNX]);
  // Nor what this configuration does not use: no Redis URL, no JWKS, the embedded bus.
  assertNotLoaded(run, ['ioredis', 'jose', 'kafkajs', '@platformatic/kafka']);
});

test('the Kafka bus loads only the configured client: @platformatic/kafka (the default) without kafkajs, and kafkajs without it', async () => {
  // Nothing listens on port 1: each open fails after its client's retries, having loaded its client.
  const open = (client: string) =>
    runChild(
      `import { createKafkaBus } from './bus/kafka-open.ts';
       import { silentLogger } from './lib/log.ts';
       const opened = await createKafkaBus({ brokers: ['127.0.0.1:1'], clientId: 'lazy-load', log: silentLogger, client: ${JSON.stringify(client)} }).then(() => true, () => false);
       console.log(JSON.stringify({ opened }));`,
    );
  const [platformatic, kafkajs] = await Promise.all([open('platformatic'), open('kafkajs')]);
  for (const run of [platformatic, kafkajs]) {
    assertOk(run);
    assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').at(-1)!), { opened: false });
  }
  assert.ok(platformatic.packages.has('@platformatic/kafka'), 'the recorder sees the client that was used');
  assertNotLoaded(platformatic, ['kafkajs']);
  assert.ok(kafkajs.packages.has('kafkajs'));
  assertNotLoaded(kafkajs, ['@platformatic/kafka']);
});
