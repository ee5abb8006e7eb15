// Strict readings (issue 9, "Strict input"): the sync route and the live socket validate
// readings with one function, so they accept and refuse alike with the same details. `null`
// means absent, wrong types, empty readings and unknown fields are coded 400s naming the field
// and index, readings outside the session they name are refused, and the future tolerance is
// the allowed lateness (not 5 minutes). Everything goes through real HTTP and WebSocket
// requests to a running Attune.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { ConfigError, loadConfig } from '../lib/config.js';
import { Reasons } from '../lib/error-catalogue.js';

let app: TestAttune;
let token = '';
const DEVICE = 'dev-strict';

before(async () => {
  app = await startTestAttune();
  token = app.token('u-strict', 'o-strict');
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: DEVICE } })).status, 201);
});
after(async () => {
  await app?.cleanup();
});

interface Detail {
  field?: string;
  index?: number;
  reason: string;
  message?: string;
}

async function sync(body: unknown, device = DEVICE) {
  return app.request('POST', `/v1/devices/${device}/sync`, { token, body });
}

/** A live-ingest socket; `send` returns the answer (ack or error) to one message. */
async function liveSocket(device = DEVICE) {
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/${device}?token=${token}`);
  const inbox: any[] = [];
  ws.on('message', (d) => inbox.push(JSON.parse(d.toString())));
  await waitFor('authenticated', () => inbox.find((m) => m.type === 'authenticated'), 10_000);
  let n = 0;
  return {
    async send(msg: Record<string, unknown> | unknown[]): Promise<any> {
      const id = `m${++n}`;
      ws.send(JSON.stringify(Array.isArray(msg) ? msg : { ...msg, id }));
      // Bare arrays are answered with the socket's own sequence number: take the next answer.
      const seen = inbox.length;
      return waitFor(`the answer to ${id}`, () => (Array.isArray(msg) ? inbox.slice(seen).find((m) => m.type === 'ack' || m.type === 'error') : inbox.find((m) => m.id === id)), 10_000);
    },
    close: () => ws.close(),
  };
}

/** Sends one batch over HTTP and as a `readings` message on the socket; both must refuse it with the same details. */
async function refusedAlike(ws: Awaited<ReturnType<typeof liveSocket>>, body: Record<string, unknown>): Promise<Detail[]> {
  const http = await sync(body);
  assert.equal(http.status, 400, JSON.stringify(http.body));
  assert.equal(http.body.error.code, 'validation_error');
  const live = await ws.send({ type: 'readings', ...body });
  assert.equal(live.type, 'error', JSON.stringify(live));
  assert.equal(live.error.code, 'validation_error');
  assert.deepEqual(live.error.details, http.body.error.details, 'the same details on HTTP and WebSocket');
  for (const d of http.body.error.details as Detail[]) assert.ok(d.reason in Reasons, `catalogued reason ${d.reason}`);
  return http.body.error.details;
}

async function acceptedAlike(ws: Awaited<ReturnType<typeof liveSocket>>, body: Record<string, unknown>): Promise<void> {
  const http = await sync(body);
  assert.equal(http.status, 202, JSON.stringify(http.body));
  assert.equal(http.body.accepted, (body.readings as unknown[]).length);
  const live = await ws.send({ type: 'readings', ...body });
  assert.equal(live.type, 'ack', JSON.stringify(live));
  assert.equal(live.accepted, (body.readings as unknown[]).length);
}

const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
const fields = (details: Detail[]) => details.map((d) => [d.field, d.index, d.reason]);

describe('strict readings, alike on HTTP and WebSocket', () => {
  let ws: Awaited<ReturnType<typeof liveSocket>>;
  before(async () => {
    ws = await liveSocket();
  });
  after(() => ws?.close());

  test('wrong types are 400 invalid_type naming the field and index, not converted', async () => {
    const ok = { timestamp: at(-60_000), hr: 60 };
    const cases: Array<[string, Record<string, unknown>, string, number]> = [
      ['hr as a string', { ...ok, hr: '60' }, '/readings/3/hr', 3],
      ['hrv false', { ...ok, hrv: false }, '/readings/3/hrv', 3],
      ['coherence as a string', { ...ok, coherence: '0.6' }, '/readings/3/coherence', 3],
      ['battery_level true', { ...ok, battery_level: true }, '/readings/3/battery_level', 3],
      ['an RR interval null', { ...ok, rr_intervals_ms: [800, null] }, '/readings/3/rr_intervals_ms/1', 3],
      ['RR intervals as a number', { ...ok, rr_intervals_ms: 800 }, '/readings/3/rr_intervals_ms', 3],
      ['timestamp true', { ...ok, timestamp: true }, '/readings/3/timestamp', 3],
    ];
    for (const [name, bad, field, index] of cases) {
      const details = await refusedAlike(ws, { readings: [ok, ok, ok, bad] });
      assert.deepEqual(fields(details)[0], [field, index, 'invalid_type'], name);
    }
    // The envelope too.
    const battery = await refusedAlike(ws, { readings: [ok], battery_level: '87' });
    assert.deepEqual(fields(battery), [['/battery_level', undefined, 'invalid_type']]);
    const session = await refusedAlike(ws, { readings: [ok], session_id: 42 });
    assert.deepEqual(fields(session), [['/session_id', undefined, 'invalid_type']]);
  });

  test('null means absent: accepted and stored as absent (not 0), alike on both paths', async () => {
    const t = Date.now() - 120_000;
    const withNulls = (ms: number) => ({ timestamp: new Date(ms).toISOString(), hr: 61, hrv: null, coherence: null, battery_level: null, session_id: null, rr_intervals_ms: null });
    const http = await sync({ readings: [withNulls(t)], battery_level: null, last_worn: null, session_id: null });
    assert.equal(http.status, 202, JSON.stringify(http.body));
    const live = await ws.send({ type: 'readings', readings: [withNulls(t + 1000)] });
    assert.equal(live.type, 'ack', JSON.stringify(live));
    // Both rows reach ClickHouse with the device's values absent.
    const rows = await waitFor('the two readings in ClickHouse', async () => {
      const rs = await app.store.client.query({
        query: `SELECT hr_bpm, device_hrv_ms, device_coherence, battery_level_pct, source FROM ${app.database}.heart_readings FINAL WHERE device_id = {d:String} AND hr_bpm = 61 ORDER BY event_time`,
        query_params: { d: DEVICE },
        format: 'JSONEachRow',
      });
      const r = (await rs.json()) as Array<Record<string, unknown>>;
      return r.length >= 2 ? r : null;
    });
    assert.deepEqual(rows.map((r) => [r.device_hrv_ms, r.device_coherence, r.battery_level_pct]), [[null, null, null], [null, null, null]]);
    assert.deepEqual(rows.map((r) => r.source), ['sync', 'live']);
  });

  test('an empty reading (neither hr nor an RR interval) is 400 naming the reading', async () => {
    const ok = { timestamp: at(-60_000), hr: 60 };
    for (const empty of [
      { timestamp: ok.timestamp },
      { timestamp: ok.timestamp, rr_intervals_ms: [] },
      { timestamp: ok.timestamp, hr: null },
      { timestamp: ok.timestamp, hr: null, rr_intervals_ms: null, battery_level: 80 },
    ]) {
      const details = await refusedAlike(ws, { readings: [ok, empty] });
      assert.deepEqual(fields(details), [['/readings/1', 1, 'required']], JSON.stringify(empty));
    }
    // HR with no new RR interval is a reading.
    await acceptedAlike(ws, { readings: [{ timestamp: at(-50_000), hr: 62, rr_intervals_ms: [] }] });
  });

  test('unknown fields are 400 unknown_field; the documented sync fields are accepted', async () => {
    const ok = { timestamp: at(-60_000), hr: 60 };
    assert.deepEqual(fields(await refusedAlike(ws, { readings: [ok, { ...ok, bpm: 60 }] })), [['/readings/1/bpm', 1, 'unknown_field']]);
    assert.deepEqual(fields(await refusedAlike(ws, { readings: [ok], pad: 'x' })), [['/pad', undefined, 'unknown_field']]);
    // A misspelled field that leaves a required one missing is named first, then what is missing.
    assert.deepEqual(fields(await refusedAlike(ws, { readings: [ok, { timestamp: ok.timestamp, heart_rate: 60 }] })), [
      ['/readings/1/heart_rate', 1, 'unknown_field'],
      ['/readings/1', 1, 'required'],
    ]);
    const envelope = await sync({ reading: [ok] });
    assert.equal(envelope.status, 400);
    assert.deepEqual(fields(envelope.body.error.details), [
      ['/reading', undefined, 'unknown_field'],
      ['/readings', undefined, 'required'],
    ]);
    // The coherence platform document's body: readings with timestamp, hrv, hr, coherence; battery_level and last_worn beside them.
    await acceptedAlike(ws, {
      readings: [{ timestamp: new Date(Date.now() - 40_000).toISOString().replace(/\.\d{3}Z$/, 'Z'), hrv: 45, hr: 72, coherence: 0.62 }],
      battery_level: 87,
      last_worn: at(-30_000),
    });
    const badWorn = await refusedAlike(ws, { readings: [ok], last_worn: 'yesterday' });
    assert.deepEqual(fields(badWorn), [['/last_worn', undefined, 'invalid_timestamp']]);
  });

  test('a reading 4 minutes in the future is 400; one within the allowed lateness (10 s) passes', async () => {
    const details = await refusedAlike(ws, { readings: [{ timestamp: at(-1000), hr: 60 }, { timestamp: at(4 * 60_000), hr: 60 }] });
    assert.deepEqual(fields(details), [['/readings/1/timestamp', 1, 'out_of_range']]);
    assert.match(details[0].message!, /10 s in the future/);
    // 11 s ahead: past the default tolerance too.
    assert.deepEqual(fields(await refusedAlike(ws, { readings: [{ timestamp: at(11_000), hr: 60 }] })), [['/readings/0/timestamp', 0, 'out_of_range']]);
    await acceptedAlike(ws, { readings: [{ timestamp: at(5_000), hr: 60 }] });
    // A single reading sent on its own is refused too.
    const single = await ws.send({ timestamp: at(4 * 60_000), hr: 60 });
    assert.equal(single.type, 'error');
    assert.deepEqual(fields(single.error.details), [['/0/timestamp', 0, 'out_of_range']]);
  });

  test('readings outside the session they name are 400 outside_session; inside (with the lateness and grace) they pass', async () => {
    const started = Date.now() - 10 * 60_000;
    const ended = Date.now() - 5 * 60_000;
    const created = await app.request('POST', '/v1/sessions', { token, body: { device_id: DEVICE, title: 'ended', started_at: new Date(started).toISOString() } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    const end = await app.request('POST', `/v1/sessions/${id}/end`, { token, body: { ended_at: new Date(ended).toISOString() } });
    assert.equal(end.status, 200, JSON.stringify(end.body));
    const r = (ms: number, extra: Record<string, unknown> = {}) => ({ timestamp: new Date(ms).toISOString(), hr: 60, ...extra });

    // After the end (plus the 10 s grace), through the batch session_id and the reading's own.
    const late = await refusedAlike(ws, { session_id: id, readings: [r(ended - 1000), r(ended + 60_000)] });
    assert.deepEqual(fields(late), [['/readings/1/timestamp', 1, 'outside_session']]);
    assert.match(late[0].message!, new RegExp(id));
    const now = await refusedAlike(ws, { readings: [r(Date.now() - 1000, { session_id: id })] });
    assert.deepEqual(fields(now), [['/readings/0/timestamp', 0, 'outside_session']]);
    // Before the start (less the allowed lateness, 10 s).
    const early = await refusedAlike(ws, { session_id: id, readings: [r(started - 60_000)] });
    assert.deepEqual(fields(early), [['/readings/0/timestamp', 0, 'outside_session']]);
    // Inside, and within the lateness before the start and the grace after the end.
    await acceptedAlike(ws, { session_id: id, readings: [r(started - 5_000), r(started + 60_000), r(ended + 5_000)] });

    // An open session takes readings up to now (plus the future tolerance).
    const open = await app.request('POST', '/v1/sessions', { token, body: { device_id: DEVICE, title: 'open', started_at: new Date(Date.now() - 60_000).toISOString() } });
    assert.equal(open.status, 201);
    await acceptedAlike(ws, { session_id: open.body.id, readings: [r(Date.now() - 1000)] });
    assert.deepEqual(fields(await refusedAlike(ws, { session_id: open.body.id, readings: [r(Date.now() - 5 * 60_000)] })), [['/readings/0/timestamp', 0, 'outside_session']]);
  });

  test('a reading that names no session may be at most 30 days old', async () => {
    await acceptedAlike(ws, { readings: [{ timestamp: at(-2 * 86_400_000), hr: 60 }] });
    const old = await refusedAlike(ws, { readings: [{ timestamp: at(-2 * 86_400_000), hr: 60 }, { timestamp: at(-31 * 86_400_000), hr: 60 }] });
    assert.deepEqual(fields(old), [['/readings/1/timestamp', 1, 'out_of_range']]);
    assert.match(old[0].message!, /30 days old/);
  });
});

test('query strings are still converted on other routes (?limit=10)', async () => {
  const res = await app.request('GET', '/v1/sessions?limit=10', { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.pagination.limit, 10);
});

test('config: the future tolerance defaults to the allowed lateness and may not exceed it', () => {
  assert.equal(loadConfig({}).ingestLimit.maxFutureMs, 10_000);
  assert.equal(loadConfig({ ATTUNE_ALLOWED_LATENESS_MS: '20000' }).ingestLimit.maxFutureMs, 20_000);
  assert.equal(loadConfig({ ATTUNE_READING_MAX_FUTURE_MS: '2000' }).ingestLimit.maxFutureMs, 2_000);
  assert.throws(() => loadConfig({ ATTUNE_READING_MAX_FUTURE_MS: '300000' }), (e: unknown) => e instanceof ConfigError && e.variable === 'ATTUNE_READING_MAX_FUTURE_MS');
  const c = loadConfig({ ATTUNE_SESSION_GRACE_MS: '60000', ATTUNE_READING_MAX_AGE_DAYS: '7' });
  assert.deepEqual([c.ingestLimit.sessionLeadMs, c.ingestLimit.sessionGraceMs, c.ingestLimit.maxAgeMs], [10_000, 60_000, 7 * 86_400_000]);
});
