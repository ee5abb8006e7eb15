import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { isAttuneError } from '../lib/errors.js';
import {
  chooseTestServices,
  clickhouseUrlWithCredentials,
  dockerAnswers,
  getTestServices,
  kafkaOrSkip,
  parseBrokers,
  startLocalKafka,
  type ChooseDeps,
  type TestServices,
} from './services.js';

/** Deps that count what was asked of them; each effect can be replaced. */
function fakeDeps(over: Partial<ChooseDeps> & { env: NodeJS.ProcessEnv }) {
  const calls = { docker: 0, containers: 0, local: 0, lines: [] as string[] };
  const base: ChooseDeps = {
    dockerAnswers: async () => false,
    startContainers: async () => {
      throw new Error('no containers in this test');
    },
    startLocalKafka: async () => {
      throw new Error('no java');
    },
    report: (line) => calls.lines.push(line),
    ...over,
  };
  const deps: ChooseDeps = {
    ...base,
    dockerAnswers: () => (calls.docker++, base.dockerAnswers()),
    startContainers: () => (calls.containers++, base.startContainers()),
    startLocalKafka: () => (calls.local++, base.startLocalKafka()),
  };
  return { deps, calls };
}

test('services named in the environment win, with ClickHouse credentials folded into the URL', async () => {
  const { deps, calls } = fakeDeps({
    env: {
      KAFKA_BROKERS: ' k1:9092 , k2:9093 ,',
      CLICKHOUSE_URL: 'http://ch.local:8123',
      CLICKHOUSE_USER: 'attune',
      CLICKHOUSE_PASSWORD: 's3cret',
      SCHEMA_REGISTRY_URL: 'http://sr.local:8081',
    },
    dockerAnswers: async () => true,
  });
  const s = await chooseTestServices({ needKafka: true }, deps);
  assert.equal(s.source, 'env');
  assert.deepEqual(s.kafkaBrokers, ['k1:9092', 'k2:9093']);
  assert.equal(s.clickhouseUrl, 'http://attune:s3cret@ch.local:8123');
  assert.equal(s.schemaRegistryUrl, 'http://sr.local:8081');
  assert.equal(calls.docker, 0, 'Docker is not even probed when the environment names services');
  assert.equal(calls.local, 0);
  assert.equal(calls.lines.length, 1);
  assert.match(calls.lines[0], /\(env\): kafka=k1:9092,k2:9093 clickhouse=http:\/\/attune:\*\*\*@ch\.local:8123/);
  assert.doesNotMatch(calls.lines[0], /s3cret/, 'the password is not printed');
});

test('an environment without Kafka gets the local broker when Kafka is needed, chDB stays', async () => {
  const { deps, calls } = fakeDeps({
    env: { SCHEMA_REGISTRY_URL: 'http://sr:8081' },
    startLocalKafka: async () => ['127.0.0.1:19092'],
  });
  const s = await chooseTestServices({ needKafka: true }, deps);
  assert.equal(s.source, 'env');
  assert.deepEqual(s.kafkaBrokers, ['127.0.0.1:19092']);
  assert.equal(s.clickhouseUrl, null);
  assert.equal(calls.local, 1);
});

test('testcontainers are used when Docker answers, and their stop is passed through', async () => {
  let stopped = 0;
  const { deps, calls } = fakeDeps({
    env: {},
    dockerAnswers: async () => true,
    startContainers: async () => ({
      kafkaBrokers: ['localhost:32790'],
      clickhouseUrl: 'http://test:test@localhost:32791',
      schemaRegistryUrl: 'http://localhost:32792',
      stop: async () => {
        stopped++;
      },
    }),
  });
  const s = await chooseTestServices({ needKafka: true }, deps);
  assert.equal(s.source, 'testcontainers');
  assert.deepEqual(s.kafkaBrokers, ['localhost:32790']);
  assert.equal(s.schemaRegistryUrl, 'http://localhost:32792');
  assert.equal(calls.local, 0);
  assert.equal(calls.containers, 1);
  await s.stop();
  assert.equal(stopped, 1);
});

test('failing containers fall back to the local broker and say why', async () => {
  const { deps, calls } = fakeDeps({
    env: {},
    dockerAnswers: async () => true,
    startContainers: async () => {
      throw new Error('pull access denied\n for image');
    },
    startLocalKafka: async () => ['127.0.0.1:9092'],
  });
  const s = await chooseTestServices({ needKafka: true }, deps);
  assert.equal(s.source, 'local');
  assert.deepEqual(s.kafkaBrokers, ['127.0.0.1:9092']);
  assert.equal(s.clickhouseUrl, null);
  assert.match(calls.lines[0], /testcontainers failed: pull access denied for image/);
});

test('without needKafka the local broker is not started', async () => {
  const { deps, calls } = fakeDeps({ env: { CI: 'true' } });
  const s = await chooseTestServices({}, deps);
  assert.equal(s.source, 'local');
  assert.equal(s.kafkaBrokers, null);
  assert.equal(calls.local, 0);
});

test('no Kafka when needed: an error in CI, null elsewhere', async () => {
  const inCi = fakeDeps({ env: { CI: 'true' } });
  await assert.rejects(chooseTestServices({ needKafka: true }, inCi.deps), (err: unknown) => {
    assert.ok(isAttuneError(err));
    assert.equal(err.code, 'unavailable');
    assert.match(err.message, /local Kafka failed: no java/);
    return true;
  });
  const dev = fakeDeps({ env: {} });
  const s = await chooseTestServices({ needKafka: true }, dev.deps);
  assert.equal(s.kafkaBrokers, null);
  assert.equal(dev.calls.local, 1);
  assert.match(dev.calls.lines[0], /kafka=none clickhouse=chDB/);
});

test('kafkaOrSkip skips outside CI and throws in CI', async () => {
  const noKafka = async (): Promise<TestServices> => ({
    kafkaBrokers: null,
    clickhouseUrl: null,
    schemaRegistryUrl: null,
    source: 'local',
    stop: async () => {},
  });
  const savedCi = process.env.CI;
  try {
    const skips: string[] = [];
    delete process.env.CI;
    assert.equal(await kafkaOrSkip({ skip: (m) => skips.push(m ?? '') }, noKafka), null);
    assert.equal(skips.length, 1);
    assert.match(skips[0], /KAFKA_BROKERS/);

    process.env.CI = 'true';
    await assert.rejects(kafkaOrSkip({ skip: () => assert.fail('must not skip in CI') }, noKafka), /CI needs Kafka/);

    const withKafka = async (): Promise<TestServices> => ({ ...(await noKafka()), kafkaBrokers: ['h:1'] });
    assert.deepEqual(await kafkaOrSkip({ skip: () => assert.fail('must not skip') }, withKafka), ['h:1']);
  } finally {
    if (savedCi === undefined) delete process.env.CI;
    else process.env.CI = savedCi;
  }
});

test('parseBrokers and clickhouseUrlWithCredentials', () => {
  assert.equal(parseBrokers(undefined), null);
  assert.equal(parseBrokers(' , '), null);
  assert.deepEqual(parseBrokers('a:1,b:2'), ['a:1', 'b:2']);
  assert.equal(clickhouseUrlWithCredentials('http://h:8123/', 'u', 'p w'), 'http://u:p%20w@h:8123');
  // Credentials already in the URL are kept.
  assert.equal(clickhouseUrlWithCredentials('http://a:b@h:8123', 'u', 'p'), 'http://a:b@h:8123');
  assert.equal(clickhouseUrlWithCredentials('https://h:8443'), 'https://h:8443');
});

test('startLocalKafka reads the KAFKA_BROKERS line and reports a failing script with its stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-services-'));
  try {
    const ok = join(dir, 'ok.sh');
    writeFileSync(ok, 'echo "kafka.sh: starting" >&2\necho "noise"\necho "KAFKA_BROKERS=127.0.0.1:1234,127.0.0.1:1235"\n');
    const bad = join(dir, 'bad.sh');
    writeFileSync(bad, 'echo "kafka.sh: error: java not found" >&2\nexit 3\n');
    const silent = join(dir, 'silent.sh');
    writeFileSync(silent, 'exit 0\n');
    for (const f of [ok, bad, silent]) chmodSync(f, 0o755);

    assert.deepEqual(await startLocalKafka({ script: ok }), ['127.0.0.1:1234', '127.0.0.1:1235']);
    await assert.rejects(startLocalKafka({ script: bad }), /failed \(3\): kafka\.sh: error: java not found/);
    await assert.rejects(startLocalKafka({ script: silent }), /printed no KAFKA_BROKERS line/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dockerAnswers pings the engine socket and needs a 200', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-docker-'));
  const socketPath = join(dir, 'docker.sock');
  let status = 200;
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.statusCode = status;
    res.end('OK');
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    assert.equal(await dockerAnswers({ DOCKER_HOST: `unix://${socketPath}` }), true);
    assert.deepEqual(paths, ['/_ping']);
    status = 500;
    assert.equal(await dockerAnswers({ DOCKER_HOST: `unix://${socketPath}` }), false);
    assert.equal(await dockerAnswers({ DOCKER_HOST: `unix://${join(dir, 'absent.sock')}` }), false);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the chosen Kafka is a real broker that answers metadata requests', async (t) => {
  const brokers = await kafkaOrSkip(t);
  if (!brokers) return;
  // Memoised: a second call gives the same choice without starting anything.
  const again = await getTestServices({ needKafka: true });
  assert.deepEqual(again.kafkaBrokers, brokers);

  const admin = new Kafka({ clientId: 'services-test', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const cluster = await admin.describeCluster();
    assert.ok(cluster.brokers.length >= 1);
    assert.ok(cluster.clusterId.length > 0);
  } finally {
    await admin.disconnect();
  }
});
