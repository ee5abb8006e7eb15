import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from './config.js';

const refuses = (env: Record<string, string>, variable: string) =>
  assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.startsWith(`${variable}: `));

test('defaults: embedded bus, chDB in ./data, port 8080', () => {
  const c = loadConfig({});
  assert.equal(c.bus, 'embedded');
  assert.equal(c.port, 8080);
  assert.equal(c.clickhouseUrl, null);
  assert.ok(c.dataDir.endsWith('/data'));
  assert.equal(c.writer.maxRows, 50_000);
  assert.equal(c.coherence.allowedLatenessMs, 10_000);
  assert.deepEqual(c.group, { allowedLatenessMs: 10_000, earlyClose: false, silentAfterMs: 120_000 });
});

test('the group worker: its own allowed lateness (for devices that upload in batches) and early close', () => {
  assert.deepEqual(loadConfig({ ATTUNE_GROUP_ALLOWED_LATENESS_MS: '60000', ATTUNE_GROUP_EARLY_CLOSE: 'true' }).group, { allowedLatenessMs: 60_000, earlyClose: true, silentAfterMs: 120_000 });
  assert.equal(loadConfig({ ATTUNE_GROUP_SILENT_AFTER_MS: '600000' }).group.silentAfterMs, 600_000);
  refuses({ ATTUNE_GROUP_SILENT_AFTER_MS: '5000' }, 'ATTUNE_GROUP_SILENT_AFTER_MS');
  // Independent of the coherence worker's.
  assert.equal(loadConfig({ ATTUNE_GROUP_ALLOWED_LATENESS_MS: '60000' }).coherence.allowedLatenessMs, 10_000);
  refuses({ ATTUNE_GROUP_ALLOWED_LATENESS_MS: '-1' }, 'ATTUNE_GROUP_ALLOWED_LATENESS_MS');
  refuses({ ATTUNE_GROUP_ALLOWED_LATENESS_MS: '700000' }, 'ATTUNE_GROUP_ALLOWED_LATENESS_MS');
  refuses({ ATTUNE_GROUP_EARLY_CLOSE: 'soon' }, 'ATTUNE_GROUP_EARLY_CLOSE');
});

test('Kafka brokers switch the bus; flags override the environment', () => {
  const c = loadConfig({ KAFKA_BROKERS: 'a:9092, b:9093', PORT: '1' }, { PORT: '9000' });
  assert.equal(c.bus, 'kafka');
  assert.deepEqual(c.kafkaBrokers, ['a:9092', 'b:9093']);
  assert.equal(c.port, 9000);
  // The maintained client by default (issue 10); kafkajs on request; anything else refused.
  assert.equal(c.kafkaClient, 'platformatic');
  assert.equal(loadConfig({ KAFKA_BROKERS: 'a:9092', ATTUNE_KAFKA_CLIENT: 'kafkajs' }).kafkaClient, 'kafkajs');
  assert.throws(() => loadConfig({ KAFKA_BROKERS: 'a:9092', ATTUNE_KAFKA_CLIENT: 'librdkafka' }), (e: unknown) => e instanceof ConfigError && e.variable === 'ATTUNE_KAFKA_CLIENT');
});

test('a bad value is refused with one line naming the variable', () => {
  refuses({ PORT: 'eighty' }, 'PORT');
  refuses({ PORT: '70000' }, 'PORT');
  refuses({ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS');
  refuses({ ATTUNE_BUS: 'kafka' }, 'KAFKA_BROKERS');
  refuses({ CLICKHOUSE_URL: 'ftp://x' }, 'CLICKHOUSE_URL');
  refuses({ CLICKHOUSE_DATABASE: 'a;drop' }, 'CLICKHOUSE_DATABASE');
  refuses({ JWT_SECRET: 'short' }, 'JWT_SECRET');
  refuses({ JWT_PUBLIC_KEY: 'not a pem' }, 'JWT_PUBLIC_KEY');
  refuses({ JWT_SECRET: 'x'.repeat(40), JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----' }, 'JWT_PUBLIC_KEY');
  refuses({ ATTUNE_SIMULATE: 'maybe' }, 'ATTUNE_SIMULATE');
  refuses({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
  refuses({ ATTUNE_TOPIC_PREFIX: 'has space' }, 'ATTUNE_TOPIC_PREFIX');
  refuses({ ATTUNE_WRITE_BATCH_ROWS: '10' }, 'ATTUNE_WRITE_BATCH_ROWS');
});

test('entities: PGlite without DATABASE_URL, a postgres:// URL otherwise (never echoed back)', () => {
  assert.equal(loadConfig({}).databaseUrl, null);
  assert.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/attune' }).databaseUrl, 'postgres://u:p@db:5432/attune');
  refuses({ DATABASE_URL: 'mysql://u:secret@db/attune' }, 'DATABASE_URL');
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://u:secret@db/attune' }), (e: unknown) => !(e as Error).message.includes('secret'));
});

test('tokens: JWKS over https (http on this machine only), one key source, a bounded maximum age', () => {
  assert.equal(loadConfig({ JWT_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json' }).jwt.jwksUrl, 'https://idp.example.com/.well-known/jwks.json');
  assert.equal(loadConfig({ JWT_JWKS_URL: 'http://127.0.0.1:8000/jwks' }).jwt.jwksUrl, 'http://127.0.0.1:8000/jwks');
  refuses({ JWT_JWKS_URL: 'http://idp.example.com/jwks' }, 'JWT_JWKS_URL');
  refuses({ JWT_JWKS_URL: 'https://idp.example.com/jwks', JWT_SECRET: 'x'.repeat(40) }, 'JWT_JWKS_URL');
  assert.equal(loadConfig({}).jwt.maxAgeS, 86_400);
  refuses({ JWT_MAX_AGE_S: '10' }, 'JWT_MAX_AGE_S');
});
