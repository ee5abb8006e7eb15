// The webhook dispatcher against a real PostgreSQL (the server when there is one, else PGlite)
// and the embedded bus, with a clock the test drives: a local receiver verifies every
// delivery with the coherence platform document's own verifyWebhook (copied below, and checked
// against the document's text); the receiver is down for two minutes of that clock while the
// dispatcher restarts, and the deliveries arrive once each at the back-off's times; the retry
// schedule lasts over 24 h; a loopback URL is refused at delivery time; the events each bus
// record makes; and a receiver that answers 200 and then trickles its body for ever: its attempt
// is cut at the total deadline and retried, and meanwhile another organisation's deliveries go
// out (the running loop, as in production).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AttuneError } from '../../lib/errors.js';
import crypto from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createEmbeddedBus } from '../../bus/embedded.js';
import type { Bus } from '../../bus/types.js';
import { silentLogger } from '../../lib/log.js';
import { createCodec, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SessionChange } from '../../schemas/registry/schemas.js';
import { Topics } from '../../schemas/topics.js';
import { toBatches } from '../../schemas/reading-batches.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { WebhooksRepository, type Webhook } from '../../store/postgres/webhooks-repo.js';
import { waitFor } from '../../test/attune.js';
import { MAX_ATTEMPTS, RETRY_DELAYS_S, WebhookDispatcher, type WebhookDispatcherOptions } from './dispatcher.js';
// The receiver's side of the timestamped signature, as a user runs it.
// @ts-expect-error an example in plain JavaScript, without types
import { TOLERANCE_S as SIGNATURE_TOLERANCE_S, verify as verifyTimestampedSignature } from '../../examples/webhook-receiver.mjs';

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

const DOC = fileURLToPath(new URL('../../../shared/seeds/000_b16363771ac160cb.txt', import.meta.url));
const PORT = 18431;
/** The trickling receiver's port. */
const SLOW_PORT = 18433;
const SLOW_URL = `http://127.0.0.1:${SLOW_PORT}/auf-webhook`;
const SECRET = 'your-webhook-secret';
const T0 = Date.parse('2026-12-03T06:00:00Z');

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on PORT that can be stopped and started; it records what it is sent. */
class Receiver {
  received: Received[] = [];
  status = 200;
  private server: Server | null = null;
  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = this.status;
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
}

/**
 * A receiver on SLOW_PORT that reads the request, answers 200 at once and then sends its body a
 * piece every `everyMs` (by default a byte every 200 ms, well inside any idle timeout) and never
 * ends it; `open`: answers under way (the dispatcher has not closed the connection yet).
 */
class TricklingReceiver {
  requests: IncomingHttpHeaders[] = [];
  open = 0;
  written = 0;
  private server: Server | null = null;
  constructor(private readonly piece = '.', private readonly everyMs = 200) {
    trickling.push(this);
  }
  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.requests.push(req.headers);
        this.open++;
        res.writeHead(200, { 'content-type': 'text/plain' });
        const send = () => {
          res.write(this.piece);
          this.written += this.piece.length;
        };
        send();
        const timer = setInterval(send, this.everyMs);
        res.on('close', () => {
          clearInterval(timer);
          this.open--;
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(SLOW_PORT, '127.0.0.1', resolve));
  }
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); });
  }
}

/** Every trickling receiver, closed after the tests too (a dispatcher stuck on one would keep the process alive). */
const trickling: TricklingReceiver[] = [];
let db: TestDatabase;
let bus: Bus;
let codec: Codec;
let now = T0;
const clock = () => now;
let repo: WebhooksRepository;
const receiver = new Receiver();
const running: WebhookDispatcher[] = [];

async function dispatcher(over: Partial<WebhookDispatcherOptions> = {}): Promise<WebhookDispatcher> {
  const d = new WebhookDispatcher({
    bus,
    topics: Topics,
    codec,
    sql: db.client,
    webhooks: repo,
    store: null,
    log: silentLogger,
    clock,
    guard: { allowPrivate: false, allowHosts: ['127.0.0.1'] },
    settleMs: 30_000,
    pollMs: 0,
    timeoutMs: 2_000,
    ...over,
  });
  await d.start();
  running.push(d);
  return d;
}

function sessionChange(id: string, org: string, over: Partial<SessionChange> = {}): SessionChange {
  return {
    session_id: id,
    org_id: org,
    user_id: 'usr_abc123',
    device_id: '',
    type: 'solo',
    title: '',
    status: 'ended',
    started_at: T0 - 623_000,
    ended_at: T0,
    coherence_threshold: 0.7,
    threshold_duration_s: 30,
    metadata_json: '{}',
    version: 2,
    created_at: T0 - 623_000,
    updated_at: T0,
    ...over,
  };
}

async function publishChange(c: SessionChange): Promise<void> {
  await bus.publish(Topics.sessionChanges, [{ key: c.session_id, value: await codec.encode(Topics.sessionChanges, c) }]);
}

async function eventCount(org: string): Promise<number> {
  const { rows } = await db.client.query<{ n: string | number }>('SELECT count(*) AS n FROM webhook_events WHERE org_id = $1', [org]);
  return Number(rows[0].n);
}

async function webhook(org: string, url = `http://127.0.0.1:${PORT}/auf-webhook`): Promise<Webhook> {
  return repo.create({ orgId: org, createdBy: 'admin', url, events: ['session.started', 'session.completed'], secret: SECRET, description: '' });
}

before(async () => {
  db = await entityTestDatabase();
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  codec = await createCodec(LocalSchemaRegistry.fromManifest());
  repo = new WebhooksRepository(db.client, { clock });
});
after(async () => {
  for (const r of trickling) await r.down();
  for (const d of running) await d.stop();
  await receiver.down();
  await bus?.close();
  await db?.dispose();
});

test("the test's verifyWebhook is the document's", () => {
  // Compared as tokens: without white space, semicolons and the quote style (tsx may reformat
  // the function's source text; the parameter types are gone at run time).
  const tokens = (text: string) => text.replace(/\s+/g, '').replace(/;/g, '').replace(/"/g, "'");
  const doc = tokens(readFileSync(DOC, 'utf8'));
  const mine = tokens(verifyWebhook.toString());
  assert.ok(doc.includes('functionverifyWebhook(payload,signature,secret){'));
  assert.ok(doc.includes(mine.slice(mine.indexOf('{'))), `the document no longer has this function body: ${mine}`);
});

test('receiver down for 2 minutes while the dispatcher restarts: each event arrives once, signed, at the back-off times', async () => {
  const org = 'org-down';
  const hook = await webhook(org);
  let a = await dispatcher();
  // The same record twice (a replay) is one event.
  const change = sessionChange('sess_xyz789', org);
  await publishChange(change);
  await publishChange(change);
  await waitFor('two events from the session change', async () => (await eventCount(org)) === 2);

  // t = 0: the receiver is down; session.started is attempted and fails; session.completed waits 30 s for its windows.
  now = T0;
  assert.equal(await a.runOnce(), 1);
  let log = await repo.deliveries(org, hook.id, 10);
  assert.equal(log.length, 1);
  assert.equal(log[0].eventType, 'session.started');
  assert.equal(log[0].status, 'pending');
  assert.equal(log[0].attempts, 1);
  assert.match(log[0].lastError ?? '', /ECONNREFUSED/);
  assert.equal(log[0].nextAttemptAt, T0 + RETRY_DELAYS_S[0] * 1000);

  // The dispatcher restarts (state is in PostgreSQL, nothing in its memory matters).
  await a.stop();
  a = await dispatcher();

  // t = 29 s: nothing is due.
  now = T0 + 29_000;
  assert.equal(await a.runOnce(), 0);
  // t = 30 s: started's 2nd attempt, completed's 1st: both refused.
  now = T0 + 30_000;
  assert.equal(await a.runOnce(), 2);
  // t = 90 s: started's 3rd (30 + 60), completed's 2nd (30 + 30): refused.
  now = T0 + 90_000;
  assert.equal(await a.runOnce(), 2);
  // t = 120 s: the receiver is back after 2 minutes down; nothing is due until 150 s.
  now = T0 + 120_000;
  await receiver.up();
  assert.equal(await a.runOnce(), 0);
  assert.equal(receiver.received.length, 0);
  // t = 150 s: completed's 3rd attempt (90 + 60) arrives; t = 210 s: started's 4th (90 + 120).
  now = T0 + 150_000;
  assert.equal(await a.runOnce(), 1);
  now = T0 + 210_000;
  assert.equal(await a.runOnce(), 1);
  // Much later nothing is sent again.
  now = T0 + 30 * 3600_000;
  assert.equal(await a.runOnce(), 0);

  assert.equal(receiver.received.length, 2);
  const bodies = receiver.received.map((r) => {
    const signature = r.headers['x-auf-signature'];
    assert.equal(typeof signature, 'string');
    assert.equal(verifyWebhook(r.body, signature as string, SECRET), true, 'the document\'s verifyWebhook accepts the signature');
    assert.equal(verifyWebhook(r.body, signature as string, 'another-secret'), false);
    assert.equal(r.headers['content-type'], 'application/json');
    return JSON.parse(r.body);
  });
  const [completed, started] = bodies;
  assert.deepEqual(Object.keys(completed), ['id', 'type', 'created', 'event', 'timestamp', 'data']);
  // The communication platform document's payload style too: {event, timestamp, data}.
  assert.deepEqual([completed.event, completed.timestamp], [completed.type, completed.created]);
  assert.equal(completed.type, 'session.completed');
  assert.match(completed.id, /^evt_[0-9a-f]{24}$/);
  assert.equal(completed.created, new Date(T0).toISOString());
  // The document's payload fields (without ClickHouse here the coherence figures are null).
  assert.equal(completed.data.user_id, 'usr_abc123');
  assert.equal(completed.data.session_id, 'sess_xyz789');
  assert.equal(completed.data.duration, 623);
  assert.ok('average_coherence' in completed.data && 'peak_coherence' in completed.data);
  assert.equal(started.type, 'session.started');
  assert.equal(started.data.session_id, 'sess_xyz789');

  log = await repo.deliveries(org, hook.id, 10);
  const byType = Object.fromEntries(log.map((d) => [d.eventType, d]));
  assert.equal(byType['session.started'].status, 'delivered');
  assert.equal(byType['session.started'].attempts, 4);
  assert.equal(byType['session.started'].deliveredAt, T0 + 210_000);
  assert.equal(byType['session.completed'].status, 'delivered');
  assert.equal(byType['session.completed'].attempts, 3);
  assert.equal(byType['session.completed'].lastStatusCode, 200);
  receiver.received = [];
});

test('a receiver that keeps failing is retried with exponential back-off for over 24 h, then the delivery fails', async () => {
  const org = 'org-failing';
  const hook = await webhook(org);
  receiver.status = 500;
  const d = await dispatcher();
  now = T0 + 100 * 3600_000;
  const first = now;
  await publishChange(sessionChange('sess_fail', org, { status: 'active', ended_at: null }));
  await waitFor('the started event', async () => (await eventCount(org)) === 1);
  const attemptsAt: number[] = [];
  for (let i = 0; i < 40; i++) {
    const made = await d.runOnce();
    if (made > 0) attemptsAt.push(now);
    const [delivery] = await repo.deliveries(org, hook.id, 1);
    if (delivery.status !== 'pending') break;
    now = delivery.nextAttemptAt!;
  }
  const [delivery] = await repo.deliveries(org, hook.id, 1);
  assert.equal(delivery.status, 'failed');
  assert.equal(delivery.attempts, MAX_ATTEMPTS);
  assert.equal(delivery.lastStatusCode, 500);
  assert.equal(attemptsAt.length, MAX_ATTEMPTS);
  const gaps = attemptsAt.slice(1).map((t, i) => (t - attemptsAt[i]) / 1000);
  assert.deepEqual(gaps, RETRY_DELAYS_S);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1], 'delays never shrink');
  const spanH = (attemptsAt[attemptsAt.length - 1] - first) / 3600_000;
  assert.ok(spanH >= 24, `retried for ${spanH} h`);
  assert.equal(receiver.received.length, MAX_ATTEMPTS, 'each attempt reached the receiver');
  // Each attempt signed at its own time: it verifies then, and a copy of the first sent again
  // more than the tolerance later does not (within it, the event id tells a repeat), nor one
  // with another secret or body.
  receiver.received.forEach((r, i) => {
    const header = String(r.headers['x-attune-signature']);
    assert.equal(header.split(',')[0], `t=${Math.floor(attemptsAt[i] / 1000)}`);
    assert.equal(verifyTimestampedSignature(r.body, header, SECRET, attemptsAt[i]), true, `attempt ${i + 1}`);
    assert.equal(verifyTimestampedSignature(r.body, header, SECRET, attemptsAt[i] + (SIGNATURE_TOLERANCE_S - 1) * 1000), true, 'a slow network, within the tolerance');
    const replayed = verifyTimestampedSignature(receiver.received[0].body, String(receiver.received[0].headers['x-attune-signature']), SECRET, attemptsAt[i]);
    assert.equal(replayed, attemptsAt[i] - attemptsAt[0] <= SIGNATURE_TOLERANCE_S * 1000, `the first attempt replayed at attempt ${i + 1}'s time`);
    assert.equal(verifyTimestampedSignature(r.body, header, 'another-secret', attemptsAt[i]), false);
    assert.equal(verifyTimestampedSignature(r.body.replace('"type"', '"typ"'), header, SECRET, attemptsAt[i]), false);
    // The document's body-only signature is the same on every attempt.
    assert.equal(r.headers['x-auf-signature'], receiver.received[0].headers['x-auf-signature']);
  });
  assert.equal(verifyTimestampedSignature('{}', 'v1=abc', SECRET, attemptsAt[0]), false, 'no time');
  receiver.received = [];
  receiver.status = 200;
});

test('a loopback URL is refused at delivery time by default (the guard runs when sending, not only at creation)', async () => {
  const org = 'org-ssrf';
  // Stored directly: as if it had been allowed when created, or its name re-pointed since.
  const byIp = await webhook(org);
  const byName = await webhook(org, `http://localhost:${PORT}/auf-webhook`);
  const d = await dispatcher({ guard: { allowPrivate: false, allowHosts: [] } });
  now = T0 + 200 * 3600_000;
  await publishChange(sessionChange('sess_ssrf', org, { status: 'active', ended_at: null }));
  await waitFor('the started event', async () => (await eventCount(org)) === 1);
  assert.equal(await d.runOnce(), 2);
  for (const h of [byIp, byName]) {
    const [delivery] = await repo.deliveries(org, h.id, 1);
    assert.equal(delivery.status, 'pending');
    assert.match(delivery.lastError ?? '', /^private_address/);
    assert.equal(delivery.lastStatusCode, null);
  }
  assert.equal(receiver.received.length, 0, 'nothing reached the loopback receiver');
});

test('events of the other topics: low battery once per fall below 15 %, mesh threshold, speech completed', async () => {
  const d = await dispatcher();
  const reading = (level: number | null, n: number) => ({
    reading_id: `r${n}`, device_id: 'solas-1', user_id: 'u1', org_id: 'org-ev', session_id: null, recorded_at: T0 + n * 1000, received_at: T0 + n * 1000,
    hr_bpm: 60, rr_intervals_ms: [1000], device_hrv_ms: null, device_coherence: null, battery_level_pct: level, source: 'sync' as const,
  });
  const types = async (topic: string, v: unknown) => (await d.eventsOf(topic, v)).map((e) => e.type);
  assert.deepEqual(await types(Topics.heartReadings, reading(50, 1)), []);
  assert.deepEqual(await types(Topics.heartReadings, reading(null, 2)), []);
  const low = await d.eventsOf(Topics.heartReadings, reading(14, 3));
  assert.deepEqual(low.map((e) => e.type), ['device.low_battery']);
  assert.equal(low[0].data?.battery_level, 14);
  assert.deepEqual(await types(Topics.heartReadings, reading(12, 4)), [], 'still low: no second event');
  // A restarted dispatcher (empty memory) knows the device is low from PostgreSQL.
  const d2 = await dispatcher();
  assert.deepEqual((await d2.eventsOf(Topics.heartReadings, reading(11, 5))).map((e) => e.type), []);
  assert.deepEqual(await types(Topics.heartReadings, reading(15, 6)), [], '15 % is not below 15 %');
  assert.deepEqual(await types(Topics.heartReadings, reading(9, 7)), ['device.low_battery'], 'after a recharge, a new fall');

  const mesh = { event_id: 'm1', mesh_id: 'mesh_global_morning', org_id: 'org-ev', type: 'manifestation_event', occurred_at: T0, payload_json: '{"group_coherence":0.81}' };
  const m = await d.eventsOf(Topics.meshEvents, mesh);
  assert.deepEqual(m.map((e) => [e.type, e.data?.mesh_session_id, e.data?.group_coherence]), [['mesh.threshold_reached', 'mesh_global_morning', 0.81]]);
  assert.deepEqual(await types(Topics.meshEvents, { ...mesh, type: 'group_coherence' }), []);

  const speech = { event_id: 's1', session_id: 'sp1', user_id: 'u1', org_id: 'org-ev', type: 'processing:status', occurred_at: T0, payload_json: '{"status":"completed","uploadId":"up1","wordCount":120,"durationS":61.5,"score":72.4}' };
  const s = await d.eventsOf(Topics.speechEvents, speech);
  assert.deepEqual(s.map((e) => [e.type, e.data?.speech_session_id, e.data?.word_count, e.data?.duration]), [['speech.session.completed', 'sp1', 120, 61.5]]);
  // The speech-coaching document's session.completed data {status, score, duration}; its score null when the session was not scored.
  assert.deepEqual([s[0].data?.status, s[0].data?.score], ['completed', 72.4]);
  const unscored = await d.eventsOf(Topics.speechEvents, { ...speech, event_id: 's2', session_id: 'sp2', payload_json: '{"status":"completed","uploadId":"up2","wordCount":0,"durationS":3}' });
  assert.equal(unscored[0].data?.score, null);
  assert.deepEqual(await types(Topics.speechEvents, { ...speech, payload_json: '{"status":"processing"}' }), []);
});

test('a fall whose event could not be stored is reported when its batch comes again (the state and the event are written together)', async () => {
  // The dispatcher's batch: events from each record, then stored; here the store fails once,
  // as a database hiccup would, and the bus hands the same batch over again.
  class FlakyRepo extends WebhooksRepository {
    failures = 1;
    override async addEvents(events: Parameters<WebhooksRepository['addEvents']>[0], q?: Parameters<WebhooksRepository['addEvents']>[1]): Promise<void> {
      if (this.failures-- > 0) throw new Error('database hiccup');
      return super.addEvents(events, q);
    }
  }
  const flaky = new FlakyRepo(db.client, { clock });
  const d = await dispatcher({ webhooks: flaky });
  const r = {
    reading_id: 'f1', device_id: 'solas-f', user_id: 'uf', org_id: 'org-flaky', session_id: null, recorded_at: T0, received_at: T0,
    hr_bpm: 60, rr_intervals_ms: [1000], device_hrv_ms: null, device_coherence: null, battery_level_pct: 9, source: 'sync' as const,
  };
  const batch = async () => {
    const events = await d.eventsOf(Topics.heartReadings, r);
    await flaky.addEvents(events);
    return events.map((e) => e.type);
  };
  await assert.rejects(batch(), /database hiccup/);
  assert.deepEqual(await batch(), ['device.low_battery'], 'the redelivered batch reports the fall');
  assert.equal(await eventCount('org-flaky'), 1);
});

test('low battery through the bus: decoded only while a webhook takes device.low_battery; one event per fall', async () => {
  for (const d of running.splice(0)) await d.stop();
  const org = 'org-battery';
  const committed = async () => [...(await bus.committed('attune-webhooks', Topics.heartReadings)).values()].reduce((a, o) => a + Number(o), 0);
  // No webhook takes device.low_battery yet: the reading is passed over (committed, not decoded).
  const idle = await dispatcher();
  const before = await committed();
  await bus.publish(Topics.heartReadings, [{ key: 'solas-8', value: await codec.encode(Topics.heartReadings, {
    reading_id: 'b0', device_id: 'solas-8', user_id: 'u8', org_id: org, session_id: null, recorded_at: T0, received_at: T0,
    hr_bpm: 60, rr_intervals_ms: [1000], device_hrv_ms: null, device_coherence: null, battery_level_pct: 10, source: 'sync' as const,
  }) }]);
  await waitFor('the reading committed', async () => (await committed()) === before + 1);
  const { rows } = await db.client.query('SELECT * FROM webhook_device_battery WHERE device_id = $1', ['solas-8']);
  assert.deepEqual(rows, [], 'not decoded: no battery state kept');
  assert.equal(await eventCount(org), 0);
  await idle.stop();
  running.splice(running.indexOf(idle), 1);

  const hook = await repo.create({ orgId: org, createdBy: 'admin', url: `http://127.0.0.1:${PORT}/auf-webhook`, events: ['device.low_battery'], secret: SECRET, description: '' });
  const d = await dispatcher();
  const reading = (level: number, n: number) => ({
    reading_id: `b${n}`, device_id: 'solas-9', user_id: 'u9', org_id: org, session_id: null, recorded_at: T0 + n * 1000, received_at: T0 + n * 1000,
    hr_bpm: 60, rr_intervals_ms: [1000], device_hrv_ms: null, device_coherence: null, battery_level_pct: level, source: 'sync' as const,
  });
  // As the gateway publishes them: a request's readings in one HeartReadingBatch record (until
  // 12-05 the dispatcher read only single HeartReading records, so no gateway reading ever made
  // a low-battery event), and a single record as older producers wrote.
  const asBatch = async (rs: ReturnType<typeof reading>[]) => {
    const [b] = toBatches(rs.map((r) => ({ ...r, received_at: T0 })));
    return { key: b.device_id, value: await codec.encodeRecord('HeartReadingBatch', b) };
  };
  await bus.publish(Topics.heartReadings, [await asBatch([reading(40, 1), reading(14, 2), reading(12, 3)])]);
  await bus.publish(Topics.heartReadings, [{ key: 'solas-9', value: await codec.encode(Topics.heartReadings, reading(16, 4)) }]);
  await bus.publish(Topics.heartReadings, [await asBatch([reading(8, 5)])]);
  await waitFor('two low-battery events', async () => (await eventCount(org)) === 2);
  now = T0 + 300 * 3600_000;
  await d.runOnce(); // (the refused loopback deliveries of the test before are due again too)
  const levels = receiver.received.map((r) => JSON.parse(r.body)).filter((p) => p.type === 'device.low_battery').map((p) => p.data.battery_level);
  assert.deepEqual(levels.sort(), [14, 8].sort());
  const log = await repo.deliveries(org, hook.id, 10);
  assert.deepEqual(log.map((x) => [x.status, x.attempts]), [['delivered', 1], ['delivered', 1]]);
});

test("session.completed reads its figures from ClickHouse; a streak of 7, 30 or 100 days ending on the session's day is a user.streak_milestone", async () => {
  for (const d of running.splice(0)) await d.stop();
  const org = 'org-streak';
  const hook = await repo.create({ orgId: org, createdBy: 'admin', url: `http://127.0.0.1:${PORT}/auf-webhook`, events: ['session.completed', 'user.streak_milestone'], secret: SECRET, description: '' });
  // ClickHouse as the dispatcher asks it (the same SQL runs on chDB in api/webhooks.test.ts):
  // the session's trusted windows, and the user's practice days (newest first) with the session's day.
  const day = (offset: number) => new Date(Date.parse('2026-12-03T00:00:00Z') - offset * 86_400_000).toISOString().slice(0, 10);
  let practiceDays: string[] = [];
  const queries: string[] = [];
  const store = {
    database: 'attune',
    client: {
      query: async ({ query }: { query: string }) => {
        queries.push(query);
        const rows = query.includes('avgIf(coherence')
          ? [{ windows: '30', n: '24', average: 0.612345, peak: 0.9, last_end: String(T0) }]
          : query.includes('heart_readings')
            ? [{ last_beat: String(T0 - 2000), beats: '150' }]
            : practiceDays.map((d) => ({ d, today: day(0) }));
        return { json: async () => rows };
      },
    },
  };
  const d = await dispatcher({ store: store as never, settleMs: 0 });
  const completedWithStreak = async (sid: string, days: number) => {
    practiceDays = Array.from({ length: days }, (_, i) => day(i));
    await publishChange(sessionChange(sid, org, { user_id: 'u-streak' }));
    await waitFor(`the events of ${sid}`, async () => {
      const { rows } = await db.client.query<{ n: string | number }>("SELECT count(*) AS n FROM webhook_events WHERE org_id = $1 AND subject->>'session_id' = $2", [org, sid]);
      return Number(rows[0].n) === 1;
    });
    now += 1000;
    await d.runOnce(); // fans out session.completed (and adds the milestone, if any)
    await d.runOnce(); // fans out the milestone
  };
  receiver.received = [];
  await completedWithStreak('sess-streak-6', 6);
  await completedWithStreak('sess-streak-7', 7);
  await completedWithStreak('sess-streak-8', 8);
  const got = receiver.received.map((r) => JSON.parse(r.body));
  const completed = got.filter((p) => p.type === 'session.completed');
  assert.equal(completed.length, 3);
  assert.deepEqual([completed[0].data.average_coherence, completed[0].data.peak_coherence, completed[0].data.valid_window_count, completed[0].data.metrics_source], [0.6123, 0.9, 24, 'rr']);
  const milestones = got.filter((p) => p.type === 'user.streak_milestone');
  assert.deepEqual(milestones.map((p) => [p.data.user_id, p.data.streak_days, p.data.date, p.data.session_id]), [['u-streak', 7, day(0), 'sess-streak-7']]);
  assert.ok(queries.some((q) => q.includes('GROUP BY d')), 'the practice days were asked');
  assert.equal((await repo.deliveries(org, hook.id, 10)).length, 4);
});

test("session.completed waits until the stored windows reach the session's last beat (a worker behind), then has their figures; at most ATTUNE_WEBHOOKS_MAX_SETTLE_MS, then the windows there are", async () => {
  for (const d of running.splice(0)) await d.stop();
  const org = 'org-behind';
  await repo.create({ orgId: org, createdBy: 'admin', url: `http://127.0.0.1:${PORT}/auf-webhook`, events: ['session.completed'], secret: SECRET, description: '' });
  // The session's last RR beat dated up to its end is 4.2 s before it: the end closes windows
  // up to the one ending on the next 5 s grid point after that beat.
  const lastBeat = T0 - 4200;
  const needEnd = Math.floor(lastBeat / 5000) * 5000 + 5000;
  // What ClickHouse holds, as the worker and the sinks get on: windows up to `storedThrough`.
  const storedThrough = new Map<string, number>();
  const store = {
    database: 'attune',
    client: {
      query: async ({ query, query_params }: { query: string; query_params: { sid: string } }) => {
        const through = storedThrough.get(query_params.sid)!;
        const rows = query.includes('avgIf(coherence')
          ? [{ windows: '40', n: '30', average: through >= needEnd ? 0.7 : 0.5, peak: 0.9, last_end: String(through) }]
          : query.includes('heart_readings')
            ? [{ last_beat: String(lastBeat), beats: '600' }]
            : [];
        return { json: async () => rows };
      },
    },
  };
  const d = await dispatcher({ store: store as never, settleMs: 30_000, maxSettleMs: 300_000 });
  receiver.received = [];
  const mine = () => receiver.received.map((r) => JSON.parse(r.body)).filter((p) => p.data.user_id === 'u-behind');
  const publishEnded = async (sid: string) => {
    await publishChange(sessionChange(sid, org, { user_id: 'u-behind' }));
    await waitFor(`the event of ${sid}`, async () => {
      const { rows } = await db.client.query<{ n: string | number }>("SELECT count(*) AS n FROM webhook_events WHERE org_id = $1 AND subject->>'session_id' = $2", [org, sid]);
      return Number(rows[0].n) === 1;
    });
  };
  const start = now;
  // The worker is 25 s behind: at the settle time the windows end 20 s short of the last one.
  storedThrough.set('sess-behind', needEnd - 20_000);
  await publishEnded('sess-behind');
  now = start + 30_000;
  await d.runOnce();
  assert.deepEqual(mine(), [], 'not sent while the last windows are not in');
  storedThrough.set('sess-behind', needEnd);
  now = start + 60_000;
  await d.runOnce();
  assert.deepEqual(mine().map((p) => [p.data.session_id, p.data.average_coherence]), [['sess-behind', 0.7]], 'sent once they are, with their figures');

  // Never complete (a worker down): sent after the longest wait, with the windows stored so far.
  storedThrough.set('sess-stuck', needEnd - 60_000);
  await publishEnded('sess-stuck');
  const ended = now;
  for (now = ended + 30_000; now < ended + 30_000 + 300_000; now += 30_000) {
    await d.runOnce();
    assert.equal(mine().length, 1, `still waiting ${(now - ended) / 1000} s after the end`);
  }
  now = ended + 30_000 + 300_000;
  await d.runOnce();
  assert.deepEqual(mine().map((p) => [p.data.session_id, p.data.average_coherence]).at(-1), ['sess-stuck', 0.5]);

  // ATTUNE_WEBHOOKS_MAX_SETTLE_MS=0: sent at the settle time, whatever is stored.
  for (const x of running.splice(0)) await x.stop();
  const d0 = await dispatcher({ store: store as never, settleMs: 30_000, maxSettleMs: 0 });
  storedThrough.set('sess-nowait', needEnd - 60_000);
  await publishEnded('sess-nowait');
  now += 30_000;
  await d0.runOnce();
  assert.deepEqual(mine().map((p) => p.data.session_id).at(-1), 'sess-nowait');
});

test('delivered and failed deliveries and their events are forgotten after 30 days; pending ones stay', async () => {
  for (const d of running.splice(0)) await d.stop();
  const org = 'org-prune';
  const ok = await webhook(org);
  const broken = await webhook(org, 'http://127.0.0.1:18439/nobody-listens');
  const d = await dispatcher();
  now = T0 + 400 * 3600_000;
  await publishChange(sessionChange('sess_prune', org, { status: 'active', ended_at: null }));
  await waitFor('the started event', async () => (await eventCount(org)) === 1);
  await d.runOnce();
  assert.deepEqual((await repo.deliveries(org, ok.id, 5)).map((x) => x.status), ['delivered']);
  assert.deepEqual((await repo.deliveries(org, broken.id, 5)).map((x) => x.status), ['pending']);
  // 29 days on: kept (and the broken one retried meanwhile, still pending).
  now += 29 * 86_400_000;
  await d.runOnce();
  assert.equal((await repo.deliveries(org, ok.id, 5)).length, 1);
  // 31 days on: the delivered one and its log entry are gone; the pending one and its event stay.
  now += 2 * 86_400_000;
  await d.runOnce();
  assert.deepEqual(await repo.deliveries(org, ok.id, 5), []);
  assert.equal((await repo.deliveries(org, broken.id, 5))[0].status, 'pending');
  assert.equal(await eventCount(org), 1, 'the event stays while a delivery names it');
});

test('a paused webhook holds its deliveries and sends them in order when resumed; a delivery sent again by hand has the whole retry schedule ahead', async () => {
  const org = 'org-paused';
  const hook = await webhook(org);
  const d = await dispatcher();
  now = T0 + 2000 * 3600_000;
  receiver.received = [];
  receiver.status = 200;
  await repo.update(org, hook.id, { active: false });
  assert.equal((await repo.get(org, hook.id)).active, false);
  await publishChange(sessionChange('sess_paused_1', org, { status: 'active', ended_at: null }));
  await waitFor('the started event', async () => (await eventCount(org)) === 1);
  // Paused: the event becomes a delivery, held, never attempted, however long.
  for (let i = 0; i < 3; i++) {
    await d.runOnce();
    now += 3600_000;
  }
  let [held] = await repo.deliveries(org, hook.id, 5);
  assert.deepEqual([held.status, held.attempts], ['pending', 0]);
  assert.equal(receiver.received.filter((r) => r.headers['x-auf-delivery'] === held.id).length, 0);
  // Resumed: sent at once, delivered.
  await repo.update(org, hook.id, { active: true });
  await d.runOnce();
  [held] = await repo.deliveries(org, hook.id, 5);
  assert.deepEqual([held.status, held.attempts], ['delivered', 1]);

  // Sent again by hand (the receiver lost it): pending, due now, then delivered once more,
  // the same event id and body, attempt 2 in the header.
  const again = await repo.redeliver(org, hook.id, held.id, now);
  assert.deepEqual([again?.status, again?.nextAttemptAt], ['pending', now]);
  await d.runOnce();
  const mine = receiver.received.filter((r) => r.headers['x-auf-delivery'] === held.id);
  assert.equal(mine.length, 2);
  assert.equal(mine[1].body, mine[0].body);
  assert.deepEqual([mine[0].headers['x-auf-attempt'], mine[1].headers['x-auf-attempt']], ['1', '2']);
  assert.equal((await repo.deliveries(org, hook.id, 5))[0].status, 'delivered');

  // A failed delivery sent again gets the schedule from its start: 30 s after the next failure, not "failed".
  receiver.status = 500;
  const failing = await repo.create({ orgId: org, createdBy: 'admin', url: `http://127.0.0.1:${PORT}/other`, events: ['session.completed'], secret: SECRET, description: '' });
  await publishChange(sessionChange('sess_paused_2', org));
  await waitFor('the completed event', async () => (await eventCount(org)) === 3);
  now += 60_000; // past the settle time
  for (let i = 0; i < 40; i++) {
    await d.runOnce();
    const [x] = await repo.deliveries(org, failing.id, 1);
    if (x && x.status !== 'pending') break;
    if (x) now = x.nextAttemptAt!;
  }
  let [f] = await repo.deliveries(org, failing.id, 1);
  assert.deepEqual([f.status, f.attempts], ['failed', MAX_ATTEMPTS]);
  await repo.redeliver(org, failing.id, f.id, now);
  await d.runOnce();
  [f] = await repo.deliveries(org, failing.id, 1);
  assert.deepEqual([f.status, f.attempts, f.nextAttemptAt], ['pending', MAX_ATTEMPTS + 1, now + RETRY_DELAYS_S[0] * 1000]);
  assert.equal(await repo.redeliver(org, failing.id, '999999999', now), null, 'no such delivery');
  // Pending again (its next attempt, maybe under way): not sent again by hand.
  await assert.rejects(repo.redeliver(org, failing.id, f.id, now), (e: unknown) => e instanceof AttuneError && e.code === 'conflict' && e.details[0].reason === 'delivery_pending');
  await assert.rejects(repo.redeliver('another-org', failing.id, f.id, now), /not found/);

  // Paused for longer than the log is kept: held deliveries older than 30 days are dropped.
  await repo.update(org, failing.id, { active: false });
  now += 31 * 86_400_000;
  await d.runOnce();
  assert.deepEqual(await repo.deliveries(org, failing.id, 5), []);
  receiver.status = 200;
  receiver.received = [];
});

test('a receiver that answers 200 and trickles its body for ever: the attempt is a timeout failure at its deadline, retried by the back-off', { timeout: 60_000 }, async () => {
  for (const d of running.splice(0)) await d.stop();
  const org = 'org-trickle';
  const slow = new TricklingReceiver();
  await slow.up();
  try {
    const hook = await webhook(org, SLOW_URL);
    const deadlineMs = 1_500;
    const d = await dispatcher({ timeoutMs: deadlineMs });
    now = T0 + 3000 * 3600_000;
    await publishChange(sessionChange('sess_trickle', org, { status: 'active', ended_at: null }));
    await waitFor('the started event', async () => (await eventCount(org)) === 1);
    for (const [attempt, retryS] of [[1, RETRY_DELAYS_S[0]], [2, RETRY_DELAYS_S[1]]]) {
      const written = slow.written;
      const t = performance.now();
      assert.equal(await d.runOnce(), 1);
      const took = performance.now() - t;
      // Cut at the total deadline (the idle timeout alone never fired: a byte every 200 ms).
      assert.ok(took >= deadlineMs - 50 && took < deadlineMs + 1_000, `attempt ${attempt} ended after ${Math.round(took)} ms`);
      assert.ok(slow.written - written >= 5, 'the receiver trickled its answer meanwhile');
      const [x] = await repo.deliveries(org, hook.id, 1);
      assert.deepEqual([x.status, x.attempts, x.lastStatusCode], ['pending', attempt, null]);
      assert.equal(x.lastError, `timeout: the answer (HTTP 200) did not complete within ${deadlineMs} ms`);
      assert.equal(x.nextAttemptAt, now + retryS * 1000);
      await waitFor('the connection closed by the dispatcher', () => slow.open === 0, 5_000, 20);
      assert.equal(slow.requests.length, attempt);
      now = x.nextAttemptAt!;
    }
    await repo.delete(org, hook.id);
  } finally {
    await slow.down();
  }
});

test('an answer longer than 64 KiB is not read to its end: its status counts, well before the deadline', { timeout: 60_000 }, async () => {
  for (const d of running.splice(0)) await d.stop();
  const org = 'org-flood';
  const flood = new TricklingReceiver('x'.repeat(16 * 1024), 5);
  await flood.up();
  try {
    const hook = await webhook(org, SLOW_URL);
    const d = await dispatcher({ timeoutMs: 5_000 });
    now = T0 + 3500 * 3600_000;
    await publishChange(sessionChange('sess_flood', org, { status: 'active', ended_at: null }));
    await waitFor('the started event', async () => (await eventCount(org)) === 1);
    const t = performance.now();
    assert.equal(await d.runOnce(), 1);
    assert.ok(performance.now() - t < 2_500, 'not read until the deadline');
    const [x] = await repo.deliveries(org, hook.id, 1);
    assert.deepEqual([x.status, x.attempts, x.lastStatusCode, x.lastError], ['delivered', 1, 200, null]);
    await waitFor('the connection closed by the dispatcher', () => flood.open === 0, 5_000, 20);
    await repo.delete(org, hook.id);
  } finally {
    await flood.down();
  }
});

test("one organisation's trickling receiver does not hold up another organisation's deliveries (the running loop: no round waits for every attempt)", { timeout: 60_000 }, async () => {
  for (const d of running.splice(0)) await d.stop();
  const slow = new TricklingReceiver();
  await slow.up();
  receiver.status = 200;
  try {
    const slowHook = await webhook('org-slow', SLOW_URL);
    const fastHook = await webhook('org-fast');
    now = T0 + 4000 * 3600_000;
    const deadlineMs = 8_000;
    // The running loop, as in production (not runOnce): polls every 50 ms and on each new batch.
    await dispatcher({ timeoutMs: deadlineMs, pollMs: 50 });
    await publishChange(sessionChange('sess_slow', 'org-slow', { status: 'active', ended_at: null }));
    await waitFor("the slow receiver's attempt under way", () => slow.open === 1, 10_000, 20);
    // A session starts in another organisation while that attempt trickles on.
    const t = performance.now();
    await publishChange(sessionChange('sess_fast', 'org-fast', { status: 'active', ended_at: null }));
    const fast = await waitFor("org-fast's delivery", async () => (await repo.deliveries('org-fast', fastHook.id, 1)).find((x) => x.status === 'delivered'), 3_000, 20);
    const took = performance.now() - t;
    assert.equal(fast.attempts, 1);
    assert.ok(took < deadlineMs / 2, `delivered after ${Math.round(took)} ms`);
    // Meanwhile the slow attempt is still under way, its outcome not yet recorded.
    const [held] = await repo.deliveries('org-slow', slowHook.id, 1);
    assert.deepEqual([held.status, held.attempts, held.lastError, slow.open], ['pending', 1, null, 1]);
    // Then it is cut at its deadline and waits for its retry.
    const cut = await waitFor('the slow attempt cut at its deadline', async () => (await repo.deliveries('org-slow', slowHook.id, 1)).find((x) => x.lastError !== null), deadlineMs + 5_000, 50);
    assert.match(cut.lastError ?? '', /^timeout: the answer \(HTTP 200\) did not complete within 8000 ms$/);
    assert.deepEqual([cut.status, cut.attempts, cut.nextAttemptAt], ['pending', 1, now + RETRY_DELAYS_S[0] * 1000]);
    await waitFor('the connection closed by the dispatcher', () => slow.open === 0, 5_000, 20);
    await repo.delete('org-slow', slowHook.id);
    await repo.delete('org-fast', fastHook.id);
  } finally {
    // (Against a dispatcher whose round never ends, this is what lets it stop.)
    await slow.down();
  }
});
