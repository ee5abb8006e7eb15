// The local broker script's life cycle, on its own ports and data directory so that it does
// not disturb the shared broker other test files use: two concurrent starts make one broker,
// kafkajs can create a topic and produce/consume through a consumer group, data survives a
// restart, and stop really stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs, { Kafka, logLevel } from 'kafkajs';

// A CommonJS module whose enums Node cannot see as named exports.
const { ConfigResourceTypes } = kafkajs;

const script = fileURLToPath(new URL('./kafka.sh', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [script, cmd], { env, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.on('connect', () => (sock.destroy(), resolve(true)));
    sock.on('error', () => resolve(false));
  });
}

/** Live processes whose command line runs kafka.Kafka on this data directory. */
function brokerProcesses(dataDir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(`kafka.Kafka ${dataDir}/server.properties`)) pids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

function hasJava(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('kafka.sh: concurrent start, produce/consume, restart keeps data, stop', { timeout: 400_000 }, async (t) => {
  if (!hasJava()) {
    if (process.env.CI === 'true') assert.fail('CI must have Java 17 for infra/kafka/kafka.sh');
    t.skip('java not installed');
    return;
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-kafka-test-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const env = { ...process.env, KAFKA_DATA_DIR: dataDir, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controllerPort) };
  const brokers = [`127.0.0.1:${port}`];
  const t0 = Date.now();
  const phase = (name: string) => t.diagnostic(`${name} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    assert.equal((await run('status', env)).code, 1, 'not running before start');

    const [a, b] = await Promise.all([run('start', env), run('start', env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    for (const r of [a, b]) assert.match(r.stdout, new RegExp(`^KAFKA_BROKERS=127\\.0\\.0\\.1:${port}$`, 'm'));
    phase('both starts returned');
    const pids = brokerProcesses(dataDir);
    assert.equal(pids.length, 1, `exactly one broker, got ${pids.join(',')}`);
    assert.equal(readFileSync(join(dataDir, 'kafka.pid'), 'utf8').trim(), String(pids[0]));
    assert.equal((await run('status', env)).code, 0);
    assert.ok(!existsSync(`${dataDir}.lock`), 'the start lock is released');

    const kafka = new Kafka({ clientId: 'kafka-sh-test', brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: 'kafka-sh-test' });
    await admin.connect();
    await producer.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: 'lifecycle', numPartitions: 2 }], waitForLeaders: true }), true);
      await producer.send({ topic: 'lifecycle', acks: -1, messages: [{ key: 'device-1', value: 'rr:812' }] });
      // Topics are never created by accident: a misspelt name must fail.
      const config = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.BROKER, name: '1', configNames: ['auto.create.topics.enable'] }],
      });
      assert.equal(config.resources[0].configEntries[0].configValue, 'false');

      await consumer.connect();
      await consumer.subscribe({ topic: 'lifecycle', fromBeginning: true });
      const received = await new Promise<{ key: string; value: string; partition: number; offset: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 60 s')), 60_000);
        void consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            clearTimeout(timer);
            resolve({ key: String(message.key), value: String(message.value), partition, offset: message.offset });
          },
        });
      });
      assert.equal(received.key, 'device-1');
      assert.equal(received.value, 'rr:812');
      await consumer.commitOffsets([{ topic: 'lifecycle', partition: received.partition, offset: String(Number(received.offset) + 1) }]);
      const committed = await admin.fetchOffsets({ groupId: 'kafka-sh-test', topics: ['lifecycle'] });
      const p = committed[0].partitions.find((x) => x.partition === received.partition);
      assert.equal(p?.offset, '1');
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }

    phase('produced and consumed');
    const again = await run('start', env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(brokerProcesses(dataDir), pids, 'start while running is a no-op');

    const stopped = await run('stop', env);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(brokerProcesses(dataDir), []);
    assert.equal(await portOpen(port), false);
    assert.ok(!existsSync(join(dataDir, 'kafka.pid')));
    assert.equal((await run('status', env)).code, 1);
    assert.equal((await run('stop', env)).code, 0, 'stop when stopped is fine');

    phase('stopped');
    // Restart on the same data: no reformat, the topic is still there.
    const restarted = await run('start', env);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.doesNotMatch(restarted.stderr, /formatting/);
    const admin2 = kafka.admin();
    await admin2.connect();
    try {
      assert.ok((await admin2.listTopics()).includes('lifecycle'));
      phase('restarted');
    } finally {
      await admin2.disconnect();
    }
  } finally {
    await run('stop', env);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
