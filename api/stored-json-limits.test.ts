// Issue 9, memory and size: what a client stores as free-form JSON (session metadata, speech
// session settings) is at most 16 KB and 32 levels deep, lists leave it out unless asked, and
// the sessions repository's caches are bounded in bytes as well as entries. Real requests
// against a whole Attune (PGlite entities), and the repository on its own.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAttune, type TestAttune } from '../test/attune.js';
import { loadConfig, ConfigError } from '../lib/config.js';
import { checkStoredJson, jsonBytesDepth, jsonTextDepth, jsonValueDepth, DEFAULT_MAX_STORED_JSON_BYTES, MAX_STORED_JSON_DEPTH } from '../lib/json-limits.js';
import { AttuneError } from '../lib/errors.js';
import { SessionsRepository, sessionCacheBytes } from '../store/postgres/sessions-repo.js';
import { pgliteDatabase } from '../store/postgres/test-databases.test-util.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { effectiveSettings } from './speech-sessions.js';

let app: TestAttune;
let token: string;
before(async () => {
  app = await startTestAttune({ entities: 'pglite' });
  token = app.token('u-limits', 'o-limits');
});
after(async () => {
  await app?.cleanup();
});

const CAP = DEFAULT_MAX_STORED_JSON_BYTES;
/** An object of exactly `bytes` bytes of JSON. */
const ofSize = (bytes: number) => ({ k: 'x'.repeat(bytes - '{"k":""}'.length) });
const nested = (levels: number): Record<string, unknown> => {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { d: v };
  return v;
};

function refusal(res: { status: number; body: any }, reason: string, field: string) {
  assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
  assert.equal(res.body.error.code, 'validation_error');
  assert.equal(res.body.error.details[0].reason, reason, JSON.stringify(res.body.error.details));
  assert.equal(res.body.error.details[0].field, field);
  return res.body.error.details[0];
}

test('the limits: 16 KB by default, configurable, 32 levels; depth counted without recursion and brackets in strings ignored', () => {
  assert.equal(loadConfig({}).maxStoredJsonBytes, 16_384);
  assert.equal(loadConfig({ ATTUNE_MAX_STORED_JSON_BYTES: '4096' }).maxStoredJsonBytes, 4096);
  assert.throws(() => loadConfig({ ATTUNE_MAX_STORED_JSON_BYTES: '16KB' }), (e: unknown) => e instanceof ConfigError && e.variable === 'ATTUNE_MAX_STORED_JSON_BYTES');
  assert.throws(() => loadConfig({ ATTUNE_MAX_STORED_JSON_BYTES: '10' }), (e: unknown) => e instanceof ConfigError);
  assert.equal(MAX_STORED_JSON_DEPTH, 32);
  assert.equal(jsonValueDepth(nested(32)), 32);
  assert.equal(jsonValueDepth([[], { a: [1] }]), 3);
  assert.equal(jsonValueDepth('text'), 0);
  assert.equal(jsonTextDepth(JSON.stringify(nested(32))), 32);
  assert.equal(jsonTextDepth('{"a":"[[[{{{\\"[[["}'), 1);
  // The byte scan (request bodies) agrees with the string scan, multi-byte text included.
  for (const t of ['{"a":"[[[{{{\\"[[["}', JSON.stringify(nested(32)), '[{"é€":["\\\\",[{}]]}]', '["\\\\"]]]', '']) {
    assert.equal(jsonBytesDepth(Buffer.from(t)), jsonTextDepth(t), t);
  }
  // A 100,000-deep value is measured (no stack overflow) and the scan stops past the limit.
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.equal(jsonValueDepth(deep, 32), 33);
  assert.equal(jsonTextDepth('['.repeat(100_000), 64), 65);
  assert.throws(() => checkStoredJson(deep, '/metadata', { maxBytes: CAP, maxDepth: 32 }), (e: unknown) => e instanceof AttuneError && e.details[0].reason === 'json_too_deep');
  // Bytes are UTF-8 bytes, not characters.
  assert.equal(checkStoredJson({ k: 'é'.repeat(10) }, '/m', { maxBytes: 100, maxDepth: 32 }), 28);
  assert.throws(() => checkStoredJson({ k: 'é'.repeat(50) }, '/m', { maxBytes: 100, maxDepth: 32 }), (e: unknown) => e instanceof AttuneError && e.details[0].reason === 'json_too_large');
  // A configured cap reaches speech settings (the routes take it from AppContext.maxStoredJsonBytes).
  assert.throws(() => effectiveSettings(ofSize(2048), { maxBytes: 1024, maxDepth: 32 }), (e: unknown) => e instanceof AttuneError && e.details[0].field === '/settings');
});

test('session metadata: at the cap 201, one byte over 400 json_too_large, 33 levels 400 json_too_deep; PATCH alike', async () => {
  const at = await app.request('POST', '/v1/sessions', { token, body: { title: 'at cap', metadata: ofSize(CAP) } });
  assert.equal(at.status, 201, JSON.stringify(at.body).slice(0, 300));
  assert.equal(Buffer.byteLength(JSON.stringify(at.body.metadata)), CAP);
  const over = refusal(await app.request('POST', '/v1/sessions', { token, body: { metadata: ofSize(CAP + 1) } }), 'json_too_large', '/metadata');
  assert.equal(over.max_bytes, CAP);
  assert.equal(over.bytes, CAP + 1);
  // Multi-byte characters count as bytes.
  refusal(await app.request('POST', '/v1/sessions', { token, body: { metadata: { k: '€'.repeat(6000) } } }), 'json_too_large', '/metadata');
  assert.equal((await app.request('POST', '/v1/sessions', { token, body: { metadata: nested(32) } })).status, 201);
  refusal(await app.request('POST', '/v1/sessions', { token, body: { metadata: nested(33) } }), 'json_too_deep', '/metadata');

  const id = at.body.id;
  refusal(await app.request('PATCH', `/v1/sessions/${id}`, { token, body: { metadata: ofSize(CAP + 1) } }), 'json_too_large', '/metadata');
  refusal(await app.request('PATCH', `/v1/sessions/${id}`, { token, body: { metadata: nested(33) } }), 'json_too_deep', '/metadata');
  const patched = await app.request('PATCH', `/v1/sessions/${id}`, { token, body: { metadata: { small: true } } });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.body.metadata, { small: true });
});

test('speech-session settings: the stored settings (defaults included) at most 16 KB and 32 levels, naming /settings', async () => {
  const base = { type: 'speech' };
  // The defaults take some of the 16 KB: a custom key of 16 KB is over.
  refusal(await app.request('POST', '/v1/speech-sessions', { token, body: { ...base, settings: { custom: 'x'.repeat(CAP - 20) } } }), 'json_too_large', '/settings');
  refusal(await app.request('POST', '/v1/speech-sessions', { token, body: { ...base, settings: { custom: nested(32) } } }), 'json_too_deep', '/settings');
  const ok = await app.request('POST', '/v1/speech-sessions', { token, body: { ...base, settings: { custom: 'x'.repeat(CAP - 200) } } });
  assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
  assert.ok(Buffer.byteLength(JSON.stringify(ok.body.settings)) <= CAP);
});

test('lists leave metadata and settings out unless include= asks; GET by id always has them', async () => {
  const t = app.token('u-list', 'o-limits');
  const made = await app.request('POST', '/v1/sessions', { token: t, body: { title: 'listed', metadata: { note: 'kept' } } });
  const list = await app.request('GET', '/v1/sessions', { token: t });
  assert.equal(list.status, 200);
  assert.equal(list.body.data.length, 1);
  assert.equal(list.body.data[0].id, made.body.id);
  assert.equal(list.body.data[0].title, 'listed');
  assert.ok(!('metadata' in list.body.data[0]), JSON.stringify(list.body.data[0]));
  const withMeta = await app.request('GET', '/v1/sessions?include=metadata', { token: t });
  assert.deepEqual(withMeta.body.data[0].metadata, { note: 'kept' });
  assert.equal((await app.request('GET', '/v1/sessions?include=everything', { token: t })).status, 400);
  // The session itself still carries it.
  assert.equal((await app.request('GET', `/v1/sessions/${made.body.id}`, { token: t })).body.metadata?.note, 'kept');

  await app.request('POST', '/v1/speech-sessions', { token: t, body: { type: 'speech', settings: { min_pause_ms: 300 } } });
  const speech = await app.request('GET', '/v1/speech-sessions', { token: t });
  assert.equal(speech.body.items.length, 1);
  assert.ok(!('settings' in speech.body.items[0]));
  assert.equal(speech.body.items[0].type, 'speech');
  const speechWith = await app.request('GET', '/v1/speech-sessions?include=settings', { token: t });
  assert.equal(speechWith.body.items[0].settings.min_pause_ms, 300);
});

test('the sessions cache is bounded in bytes as well as entries', async () => {
  const db = await pgliteDatabase();
  try {
    await migratePostgres(db.client);
    const maxBytes = 256 * 1024;
    const repo = new SessionsRepository(db.client, { cacheMax: 10_000, cacheMaxBytes: maxBytes });
    const big: string[] = [];
    for (let i = 0; i < 40; i++) big.push((await repo.create({ orgId: 'o', userId: `u${i}`, metadata: ofSize(CAP) })).id);
    const stats = repo.cacheStats();
    // 40 sessions of 16 KB metadata are ~1.3 MB of JSON: the cache keeps what fits its bytes.
    assert.ok(stats.byId.bytes <= maxBytes, JSON.stringify(stats));
    assert.ok(stats.byId.entries < 40 && stats.byId.entries >= 5, JSON.stringify(stats));
    // The newest are kept, and an evicted one is still read (from the database).
    const last = await repo.get(big[39]);
    assert.equal(Buffer.byteLength(JSON.stringify(last!.metadata)), CAP);
    assert.equal((await repo.get(big[0]))!.id, big[0]);
    assert.ok(sessionCacheBytes(last!) >= 2 * CAP);
    // activeAt's per-user lists count too.
    for (let i = 0; i < 40; i++) await repo.activeAt('o', `u${i}`, Date.now());
    assert.ok(repo.cacheStats().byUser.bytes <= maxBytes);
    // Small sessions: the entry bound decides.
    const small = new SessionsRepository(db.client, { cacheMax: 3 });
    for (let i = 0; i < 5; i++) await small.create({ orgId: 'o', userId: 'small' });
    assert.equal(small.cacheStats().byId.entries, 3);
  } finally {
    await db.dispose();
  }
});
