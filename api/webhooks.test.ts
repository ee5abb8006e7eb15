// Webhooks through a running Attune: a URL on a loopback, private or link-local address is
// refused by default (400 private_address); with the receiver's address allowed, a session's
// start and completion reach a local receiver, signed so that the coherence platform
// document's own verifyWebhook accepts them, with the document's session.completed payload;
// a delivery that failed while the receiver was down is sent by the restarted Attune (its
// state is in PostgreSQL). The back-off schedule itself, driven by a test clock, is in
// pipelines/webhooks/dispatcher.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { ALL_SCOPES, rsaReadings, startTestAttune, waitFor, type TestAttune, type TestAttuneOptions } from '../test/attune.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from '../store/postgres/test-databases.test-util.js';

// ---- The document's verification function, verbatim but for the parameter types. ----
function verifyWebhook(payload: string, signature: string, secret: string) {
  const expected = crypto
    .createHmac('sha256', secret)
    .update(payload)
    .digest('hex');
  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(`sha256=${expected}`)
  );
}
// -------------------------------------------------------------------------------------

const PORT = 18432;
const HOOK_URL = `http://127.0.0.1:${PORT}/auf-webhook`;
const ORG = 'org-hooks';
const SECRET = 'your-webhook-secret';

class Receiver {
  received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  private server: Server | null = null;
  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(PORT, '127.0.0.1', resolve));
  }
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); });
  }
  /** The verified payloads received so far (every signature checked with the document's function). */
  payloads(): Array<{ id: string; type: string; created: string; data: Record<string, any> }> {
    return this.received.map((r) => {
      const sig = r.headers['x-auf-signature'];
      assert.equal(typeof sig, 'string', 'X-AUF-Signature header');
      assert.equal(verifyWebhook(r.body, sig as string, SECRET), true, "the document's verifyWebhook accepts the delivery");
      return JSON.parse(r.body);
    });
  }
}

const receiver = new Receiver();
const dataDir = mkdtempSync('/tmp/hB1-webhooks-');
const database = `t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let db: TestDatabase | null = null;
let app: TestAttune | null = null;
const jwtSecret = randomBytes(32).toString('hex');

/** Attune with the receiver's address allowed, sharing dataDir (chDB, PGlite) and the server database across restarts. */
async function startOpen(): Promise<TestAttune> {
  const env: Record<string, string> = { JWT_SECRET: jwtSecret, ATTUNE_WEBHOOKS_ALLOW_HOSTS: '127.0.0.1', ATTUNE_WEBHOOKS_SETTLE_MS: '5000' };
  if (db) env.DATABASE_URL = db.url!;
  const opts: TestAttuneOptions = { dataDir, database, entities: 'pglite', env };
  return startTestAttune(opts);
}

before(async () => {
  const url = await serverDatabaseUrl();
  if (url) db = await serverDatabase(url);
});
after(async () => {
  await app?.cleanup();
  await receiver.down();
  await db?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

test('by default a webhook URL on a loopback, private or link-local address is refused with 400 private_address', async () => {
  const strict = await startTestAttune({ entities: db ? 'pglite' : undefined, env: db ? { DATABASE_URL: db.url! } : {} });
  try {
    const admin = strict.token('admin-1', ORG, [...ALL_SCOPES, 'admin:org']);
    for (const url of [HOOK_URL, 'http://localhost:18432/x', 'http://[::1]:18432/x', 'http://169.254.169.254/latest/meta-data/', 'http://10.0.0.5/x', 'http://192.168.1.20/x', 'http://[::ffff:127.0.0.1]/x']) {
      const res = await strict.request('POST', '/v1/webhooks', { token: admin, body: { url, events: ['session.completed'], secret: SECRET } });
      assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`);
      assert.deepEqual([res.body.error.code, res.body.error.details[0].reason, res.body.error.details[0].field], ['validation_error', 'private_address', '/url'], url);
    }
    const ftp = await strict.request('POST', '/v1/webhooks', { token: admin, body: { url: 'ftp://example.com/x', events: ['session.completed'], secret: SECRET } });
    assert.deepEqual([ftp.status, ftp.body.error.details[0].reason], [400, 'invalid_format']);
    const unknownEvent = await strict.request('POST', '/v1/webhooks', { token: admin, body: { url: 'https://example.com/x', events: ['user.upgraded'], secret: SECRET } });
    assert.deepEqual([unknownEvent.status, unknownEvent.body.error.details[0].field], [400, '/events/0'], 'an event type no document names');
    // Every event type of the coherence platform document, user.tier_upgraded included (accepted,
    // never sent: Attune sees no billing), as a client subscribing to all of them sends it.
    const documented = ['session.started', 'session.completed', 'user.streak_milestone', 'user.tier_upgraded', 'mesh.threshold_reached', 'device.low_battery'];
    const all = await strict.request('POST', '/v1/webhooks', { token: admin, body: { url: 'https://93.184.216.34/all', events: documented, secret: SECRET } });
    assert.equal(all.status, 201, JSON.stringify(all.body));
    assert.deepEqual(all.body.events, documented);
    assert.equal((await strict.request('DELETE', `/v1/webhooks/${all.body.id}`, { token: admin })).status, 200);
    const notAdmin = await strict.request('POST', '/v1/webhooks', { token: strict.token('u-1', ORG), body: { url: 'https://example.com/x', events: ['session.completed'], secret: SECRET } });
    assert.deepEqual([notAdmin.status, notAdmin.body.error.details[0].reason], [403, 'missing_scope']);
    assert.deepEqual((await strict.request('GET', '/v1/webhooks', { token: admin })).body, { webhooks: [] });
  } finally {
    await strict.cleanup();
  }
});

test('a session started and completed reaches the receiver, signed, with the documented payload; the delivery log shows it', async () => {
  await receiver.up();
  app = await startOpen();
  const admin = app.token('admin-1', ORG, [...ALL_SCOPES, 'admin:org']);
  const created = await app.request('POST', '/v1/webhooks', { token: admin, body: { url: HOOK_URL, events: ['session.started', 'session.completed', 'user.streak_milestone', 'device.low_battery'], secret: SECRET } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.ok(!JSON.stringify(created.body).includes(SECRET), 'the secret is not returned');
  const refused = await app.request('POST', '/v1/webhooks', { token: admin, body: { url: 'http://127.0.0.2:18432/x', events: ['session.started'], secret: SECRET } });
  assert.equal(refused.body.error?.details?.[0]?.reason, 'private_address', 'only the listed address is allowed');

  const user = app.token('usr_abc123', ORG);
  assert.equal((await app.request('POST', '/v1/devices', { token: user, body: { device_id: 'hook-strap' } })).status, 201);
  const start = Math.floor((Date.now() - 10 * 60_000) / 5000) * 5000 + 4000;
  const s = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo', protocol: 'heart_breath_sync', target_duration: 600, started_at: new Date(start).toISOString() } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const sid: string = s.body.id;
  // The strap's battery falls below 15 % in the last 30 readings: one device.low_battery (the
  // gateway publishes readings in batch records, which the dispatcher did not read until 12-05).
  const readings = rsaReadings({ startMs: start + 250, durationS: 150, breathHz: 0.1, seed: 5 }).map((r, i, all) => ({ ...r, battery_level: i < all.length - 30 ? 40 : 10 }));
  for (let i = 0; i < readings.length; i += 60) {
    const r: { status: number; body: unknown } = await app!.request('POST', '/v1/devices/hook-strap/sync', { token: user, body: { session_id: sid, readings: readings.slice(i, i + 60) } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  const endedAt = start + 160_000;
  assert.equal((await app.request('POST', `/v1/sessions/${sid}/end`, { token: user, body: { ended_at: new Date(endedAt).toISOString() } })).status, 200);

  const types = () => receiver.payloads().filter((p) => p.data.session_id === sid).map((p) => p.type);
  await waitFor('session.started and session.completed at the receiver', () => types().includes('session.started') && types().includes('session.completed'), 90_000, 200);
  const payloads = receiver.payloads().filter((p) => p.data.session_id === sid);
  assert.deepEqual(payloads.map((p) => p.type).sort(), ['session.completed', 'session.started'], 'each once');
  const completed = payloads.find((p) => p.type === 'session.completed')!;
  assert.deepEqual(Object.keys(completed), ['id', 'type', 'created', 'event', 'timestamp', 'data']);
  assert.match(completed.id, /^evt_/);
  assert.equal(completed.created, new Date(endedAt).toISOString());
  // The document's example payload: user_id, session_id, duration, average_coherence, peak_coherence.
  assert.equal(completed.data.user_id, 'usr_abc123');
  assert.equal(completed.data.duration, 160);
  for (const f of ['average_coherence', 'peak_coherence']) {
    assert.equal(typeof completed.data[f], 'number', `${f}: ${JSON.stringify(completed.data)}`);
    assert.ok(completed.data[f] >= 0 && completed.data[f] <= 1);
  }
  assert.ok(completed.data.peak_coherence >= completed.data.average_coherence);
  // The figures are the session's, all its windows in: those GET answers.
  const detail = await app.request('GET', `/v1/sessions/${sid}`, { token: user });
  assert.deepEqual(
    [completed.data.average_coherence, completed.data.peak_coherence, completed.data.valid_window_count],
    [detail.body.metrics.average_coherence, detail.body.metrics.peak_coherence, detail.body.metrics.valid_window_count],
  );

  await waitFor('device.low_battery at the receiver', () => receiver.payloads().some((p) => p.type === 'device.low_battery'), 30_000, 200);
  const battery = receiver.payloads().filter((p) => p.type === 'device.low_battery');
  assert.deepEqual(battery.map((p) => [p.data.device_id, p.data.battery_level, p.data.threshold]), [['hook-strap', 10, 15]], 'once per fall');

  const log = await app.request('GET', `/v1/webhooks/${created.body.id}/deliveries`, { token: admin });
  assert.equal(log.status, 200, JSON.stringify(log.body));
  const mine = log.body.deliveries.filter((d: { event_id: string }) => payloads.some((p) => p.id === d.event_id));
  assert.equal(mine.length, 2);
  for (const d of mine) assert.deepEqual([d.status, d.attempts, d.last_status_code], ['delivered', 1, 200]);
  const listed = await app.request('GET', '/v1/webhooks', { token: admin });
  assert.deepEqual(listed.body.webhooks.map((w: { id: string }) => w.id), [created.body.id]);
  assert.ok(!JSON.stringify(listed.body).includes(SECRET));
});

test('a delivery that failed while the receiver was down is sent after Attune restarts', async () => {
  assert.ok(app, 'the previous test started Attune');
  const admin = app!.token('admin-1', ORG, [...ALL_SCOPES, 'admin:org']);
  const hookId: string = (await app!.request('GET', '/v1/webhooks', { token: admin })).body.webhooks[0].id;
  await receiver.down();
  receiver.received = [];
  const user = app!.token('usr_restart', ORG);
  const s = await app!.request('POST', '/v1/sessions', { token: user, body: { type: 'solo' } });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const sid: string = s.body.id;
  const failed = await waitFor('a failed attempt of session.started', async () => {
    const log = await app!.request('GET', `/v1/webhooks/${hookId}/deliveries`, { token: admin });
    return log.body.deliveries.find((d: { event_type: string; attempts: number; status: string }) => d.event_type === 'session.started' && d.attempts >= 1 && d.status === 'pending');
  }, 30_000, 100);
  assert.match(failed.last_error, /ECONNREFUSED/);
  assert.ok(Date.parse(failed.next_attempt_at) > Date.now(), 'the retry waits for its back-off (30 s)');

  await app!.cleanup();
  app = await startOpen();
  await receiver.up();
  // The back-off's wait is not what this test is about (pipelines/webhooks/dispatcher.test.ts
  // drives it with a clock): the delivery's next attempt is moved to now, as time passing would.
  const moved = await app.sql.query(`UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE status = 'pending' AND delivery_id = $2`, [new Date(), failed.id]);
  assert.equal(moved.rowCount, 1, 'the pending delivery survived the restart');
  await waitFor('the delivery from the restarted Attune', () => receiver.payloads().some((p) => p.type === 'session.started' && p.data.session_id === sid), 30_000, 100);
  assert.equal(receiver.payloads().filter((p) => p.type === 'session.started' && p.data.session_id === sid).length, 1, 'once');
  const log = await app.request('GET', `/v1/webhooks/${hookId}/deliveries`, { token: admin });
  const d = log.body.deliveries.find((x: { id: string }) => x.id === failed.id);
  assert.deepEqual([d.status, d.attempts, d.last_status_code, d.last_error], ['delivered', 2, 200, null]);

  // Paused, then that delivery sent again by hand: held while paused, sent once resumed.
  const paused = await app.request('PATCH', `/v1/webhooks/${hookId}`, { token: admin, body: { active: false } });
  assert.deepEqual([paused.status, paused.body.active], [200, false]);
  assert.equal((await app.request('GET', `/v1/webhooks/${hookId}`, { token: admin })).body.active, false);
  assert.equal((await app.request('PATCH', `/v1/webhooks/${hookId}`, { token: admin, body: {} })).status, 400);
  assert.equal((await app.request('PATCH', `/v1/webhooks/${hookId}`, { token: admin, body: { secret: 'new' } })).status, 400);
  const privateUrl = await app.request('PATCH', `/v1/webhooks/${hookId}`, { token: admin, body: { url: 'http://10.0.0.1/x' } });
  assert.equal(privateUrl.body.error?.details?.[0]?.reason, 'private_address');
  assert.equal((await app.request('PATCH', `/v1/webhooks/${hookId}`, { token: app.token('u-9', ORG), body: { active: true } })).status, 403);
  assert.equal((await app.request('PATCH', '/v1/webhooks/00000000-0000-4000-8000-000000000000', { token: admin, body: { active: true } })).status, 404);
  const again = await app.request('POST', `/v1/webhooks/${hookId}/deliveries/${failed.id}/redeliver`, { token: admin });
  assert.deepEqual([again.status, again.body.status, again.body.attempts], [202, 'pending', 2]);
  const twice = await app.request('POST', `/v1/webhooks/${hookId}/deliveries/${failed.id}/redeliver`, { token: admin });
  assert.deepEqual([twice.status, twice.body.error?.details?.[0]?.reason], [409, 'delivery_pending']);
  assert.equal((await app.request('POST', `/v1/webhooks/${hookId}/deliveries/123456789/redeliver`, { token: admin })).status, 404);
  const copies = () => receiver.received.filter((r) => r.headers['x-auf-delivery'] === failed.id).length;
  const before = copies();
  // The dispatcher goes on meanwhile: another, active webhook gets a new session's start, sent
  // after the redelivery was due; the paused webhook's delivery stays pending, unattempted.
  const other = await app.request('POST', '/v1/webhooks', { token: admin, body: { url: HOOK_URL, events: ['session.started'], secret: SECRET } });
  assert.equal(other.status, 201);
  const s2 = await app.request('POST', '/v1/sessions', { token: user, body: { type: 'solo' } });
  await waitFor('the other webhook\'s delivery', () => receiver.payloads().some((p) => p.type === 'session.started' && p.data.session_id === s2.body.id), 30_000, 100);
  assert.equal(copies(), before);
  const heldLog = await app.request('GET', `/v1/webhooks/${hookId}/deliveries`, { token: admin });
  assert.deepEqual(
    (({ status, attempts }) => [status, attempts])(heldLog.body.deliveries.find((x: { id: string }) => x.id === failed.id)),
    ['pending', 2],
  );
  assert.equal((await app.request('PATCH', `/v1/webhooks/${hookId}`, { token: admin, body: { active: true, description: 'resumed' } })).body.description, 'resumed');
  await waitFor('the delivery sent again', () => copies() === before + 1, 30_000, 100);
  const resent = receiver.received.filter((r) => r.headers['x-auf-delivery'] === failed.id).at(-1)!;
  assert.equal(resent.headers['x-auf-attempt'], '3');

  // Deleting the webhook removes it and its log.
  assert.equal((await app.request('DELETE', `/v1/webhooks/${hookId}`, { token: admin })).status, 200);
  assert.equal((await app.request('GET', `/v1/webhooks/${hookId}`, { token: admin })).status, 404);
  assert.equal((await app.request('GET', `/v1/webhooks/${hookId}/deliveries`, { token: admin })).status, 404);
});
