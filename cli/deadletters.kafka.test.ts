// `attune deadletters` on a real broker: the dead letters of one deployment (its topic prefix),
// written by the workers' own deadLetter(), printed one JSON object a line with the source's
// place, the reason, the group and the original value (decoded when it is Attune's Avro);
// --reason filters, --limit stops early. Before 12-06 there was no way to read their Avro
// bodies with what Attune or the machine had (an operator walkthrough).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getTestServices } from '../test/services.js';
import { loadConfig } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import { openBus, openCodec } from './roles.js';
import { prefixedTopics } from '../schemas/topics.js';
import { deadLetter, batchItemDeadLetter } from '../pipelines/dead-letter.js';

const services = await getTestServices({ needKafka: true }).catch((err: Error) => {
  if (process.env.CI === 'true') throw err;
  return null;
});
const root = fileURLToPath(new URL('..', import.meta.url));

function attune(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(${JSON.stringify(args)}))`], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
}

test('attune deadletters prints each dead letter of its prefix with source, reason, group and the original value', { timeout: 180_000, skip: services?.kafkaBrokers ? undefined : 'no Kafka' }, async () => {
  const prefix = `dl-${randomUUID().slice(0, 8)}.`;
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-deadletters-'));
  const env = { KAFKA_BROKERS: services!.kafkaBrokers!.join(','), ATTUNE_TOPIC_PREFIX: prefix, ATTUNE_TOPIC_PARTITIONS: '2', ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex'), DATABASE_URL: '' };
  const config = loadConfig(env);
  const topics = prefixedTopics(prefix);
  const bus = await openBus(config, silentLogger, topics);
  try {
    const codec = await openCodec(config);
    const reading = { reading_id: 'r-1', org_id: 'o1', user_id: 'u1', device_id: 'd1', session_id: 's1', recorded_at: 1_700_000_000_000, received_at: 1_700_000_000_100, hr: 300, rr_intervals_ms: [900], hrv: null, coherence: null, battery_level: null, source: 'sync' };
    const record = (offset: string, value: Buffer) => ({ topic: topics.heartReadings, partition: 1, offset, key: 'd1', value, headers: {}, timestamp: 1_700_000_000_000 });
    await deadLetter(bus, topics, codec, `${prefix}attune-readings-sink`, [{ record: record('41', Buffer.from('not avro')), reasonCode: 'undecodable', reason: 'unknown magic byte' }], 1_700_000_001_000);
    await deadLetter(bus, topics, codec, `${prefix}attune-coherence`, [batchItemDeadLetter(codec, record('42', Buffer.from('batch')), 3, reading as never, 'implausible_hr', 'hr 300 outside 25-250')], 1_700_000_002_000);

    const all = await attune(['deadletters', '--idle-ms', '2000'], env);
    assert.equal(all.code, 0, all.err.slice(-800));
    const lines = all.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 2, all.out);
    const byReason = new Map(lines.map((l) => [l.reason_code, l]));
    const bad = byReason.get('undecodable');
    assert.deepEqual(
      [bad.topic, bad.source_topic, bad.source_partition, bad.source_offset, bad.source_index, bad.consumer_group, bad.key, Buffer.from(bad.value_base64, 'base64').toString(), bad.value, bad.failed_at, bad.reason],
      [topics.deadLetter, topics.heartReadings, 1, '41', null, `${prefix}attune-readings-sink`, 'd1', 'not avro', null, new Date(1_700_000_001_000).toISOString(), 'unknown magic byte'],
    );
    const hr = byReason.get('implausible_hr');
    assert.deepEqual([hr.source_offset, hr.source_index, hr.consumer_group, hr.value?.reading_id, hr.value?.device_id], ['42', 3, `${prefix}attune-coherence`, 'r-1', 'd1']);
    assert.match(hr.reason, /readings\[3\]: hr 300/);

    const filtered = await attune(['deadletters', '--reason', 'implausible_hr', '--idle-ms', '2000'], env);
    assert.deepEqual(filtered.out.trim().split('\n').map((l) => JSON.parse(l).reason_code), ['implausible_hr']);
    const limited = await attune(['deadletters', '--limit', '1', '--idle-ms', '60000'], env);
    assert.equal(limited.code, 0);
    assert.equal(limited.out.trim().split('\n').length, 1, 'stops after --limit, without waiting out --idle-ms');
  } finally {
    await bus.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('attune deadletters without Kafka: exit 2, saying where dead letters are on the embedded bus', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-deadletters-'));
  try {
    const r = await attune(['deadletters'], { KAFKA_BROKERS: '', ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex') });
    assert.equal(r.code, 2);
    assert.match(r.err, /^attune: deadletters reads Kafka \(KAFKA_BROKERS\)/m);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
