// Issue 9's "a silent ingest socket is closed and its speech session analysed", on a whole
// Attune (every role, embedded bus, chDB or CLICKHOUSE_URL) with a 300 ms ping and a 1 s idle
// timeout (ATTUNE_WS_HEARTBEAT_MS, ATTUNE_WS_IDLE_TIMEOUT_S):
//   - a live-audio client that vanishes mid-stream (stops reading: no pongs) is closed with
//     4408 ping_timeout and its speech session is completed and analysed from the audio it
//     sent (transcript within the clip's WER bound), as if it had sent stop; the fan-out socket
//     watching the session, which sends nothing but answers pings, stays open throughout;
//   - a fan-out (live coherence) client that answers no ping is closed with 4408 ping_timeout;
//   - a live-ingest client that answers no ping is closed with 4408 ping_timeout;
//   - a live-ingest client that answers pings but sends nothing is closed with 4408
//     idle_timeout, not before the idle timeout;
//   - an active live-ingest client (a reading every 300 ms) outlives several idle timeouts.
// Every wait is on an event (a close, a message) or a condition, never a fixed sleep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import WebSocket from 'ws';
import { getTestServices } from '../test/services.js';
import { rsaReadings, startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { SpeechEventListener, createSpeechSession } from '../test/speech-client.js';
import { clips } from '../test/speech-e2e.scenario.js';
import { REAL_SPEECH } from '../pipelines/speech/fillers/filler-clips.test-util.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { wordErrors } from '../pipelines/speech/asr/wer.js';
import { toPcm16 } from '../schemas/audio-frames.js';
import { WS_TIMEOUT } from './ws-heartbeat.js';

const PING_MS = 300;
const IDLE_S = 1;

interface Client {
  ws: WebSocket;
  inbox: any[];
  pings: number;
  closed: Promise<{ code: number; reason: string; at: number }>;
  next(type: string, timeoutMs?: number): Promise<any>;
}

async function open(url: string, opts: WebSocket.ClientOptions = {}): Promise<Client> {
  const ws = new WebSocket(url, opts);
  const c: Client = {
    ws,
    inbox: [],
    pings: 0,
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() }))),
    next: (type, timeoutMs = 20_000) => waitFor(`a ${type} message`, () => c.inbox.find((m) => m.type === type), timeoutMs, 10),
  };
  ws.on('message', (d, isBinary) => {
    if (!isBinary) c.inbox.push(JSON.parse(d.toString()));
  });
  ws.on('ping', () => c.pings++);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return c;
}

describe('WebSocket heartbeat on a running Attune', () => {
  let app: TestAttune;
  const ws = (path: string, token: string) => `${app.baseUrl.replace(/^http/, 'ws')}${path}?token=${encodeURIComponent(token)}`;

  before(async () => {
    const services = await getTestServices({ needKafka: false });
    app = await startTestAttune({
      clickhouseUrl: services.clickhouseUrl,
      // enterprise: no socket or request quota gets in the way of the few sockets and polls here.
      env: { ATTUNE_WS_HEARTBEAT_MS: String(PING_MS), ATTUNE_WS_IDLE_TIMEOUT_S: String(IDLE_S), ATTUNE_DEFAULT_TIER: 'enterprise' },
    });
  });
  after(async () => {
    await app?.cleanup();
  });

  /** A registered device of `user` with a live-ingest socket authenticated. */
  async function ingestSocket(user: string, deviceId: string, opts: WebSocket.ClientOptions = {}) {
    const token = app.token(user, 'org-hb');
    const reg = await app.request('POST', '/v1/devices', { token, body: { device_id: deviceId } });
    assert.ok(reg.status === 201 || reg.status === 200, JSON.stringify(reg.body));
    const c = await open(ws(`/v1/ingest/devices/${deviceId}`, token), opts);
    return c;
  }

  test('a live-audio client that vanishes mid-stream is closed with 4408 ping_timeout and its session is analysed; the quiet fan-out socket stays open', { timeout: 180_000 }, async (tc) => {
    const clip = clips.find((c) => c.file === 'librispeech_251-137823-0002_M.wav')!;
    const wav = readWavFile(join(REAL_SPEECH, clip.file));
    assert.equal(wav.sampleRate, 16_000);
    const token = app.token('hb-speaker', 'org-hb');
    const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'vanishing client' });
    const events = await SpeechEventListener.open(app.baseUrl, token, session.id);
    let eventsClosed = false;
    (events as unknown as { ws: WebSocket }).ws.on('close', () => (eventsClosed = true));

    const c = await open(ws(`/v1/ingest/audio/${session.id}`, token));
    await c.next('authenticated');
    c.ws.send(JSON.stringify({ type: 'start', sample_rate: 16_000, encoding: 'pcm16' }));
    await c.next('started');
    const pcm = toPcm16(wav.samples);
    for (let at = 0; at < pcm.length; at += 640) {
      await new Promise<void>((resolve, reject) => c.ws.send(pcm.subarray(at, at + 640), (err) => (err ? reject(err) : resolve())));
    }
    // Gone without stop or close: the client reads nothing more (so answers no ping).
    c.ws.pause();
    const vanishedAt = performance.now();
    const done = await events.waitFor((e) => e.msg.type === 'processing:status' && e.msg.payload.status === 'completed', 120_000, 'the session to complete');
    assert.equal(done.msg.payload.status, 'completed');
    tc.diagnostic(`completed ${(done.at - vanishedAt).toFixed(0)} ms after the client vanished (${(wav.samples.length / 16).toFixed(0)} ms of audio, ${PING_MS} ms ping)`);
    const s = await app.request('GET', `/v1/speech-sessions/${session.id}`, { token });
    assert.equal(s.body.status, 'completed', JSON.stringify(s.body));
    assert.ok(Math.abs(s.body.audio_duration_s - wav.samples.length / 16_000) < 0.01, `audio_duration_s ${s.body.audio_duration_s}`);
    const transcript = await app.request('GET', `/v1/speech-sessions/${session.id}/transcript`, { token });
    assert.equal(transcript.status, 200, JSON.stringify(transcript.body));
    const wer = wordErrors(clip.transcript, transcript.body.text);
    tc.diagnostic(`transcript of the vanished stream: "${transcript.body.text}", WER ${(wer.wer * 100).toFixed(1)}%`);
    // The read-speech WER bound of the speech end-to-end test: the whole clip was analysed.
    assert.ok(wer.wer <= 0.15, `WER ${(wer.wer * 100).toFixed(1)}%`);

    c.ws.resume();
    const closed = await c.closed;
    assert.deepEqual([closed.code, closed.reason], [WS_TIMEOUT, `ping_timeout: no pong within ${PING_MS / 1000} s`]);
    const err = c.inbox.find((m) => m.type === 'error');
    assert.deepEqual([err?.error.code, err?.error.details[0].reason], ['request_timeout', 'ping_timeout']);

    // The fan-out socket sent nothing the whole time (many idle timeouts) but answered pings: kept.
    assert.equal(eventsClosed, false);
    assert.ok(events.of('heartbeat').length >= 3, `${events.of('heartbeat').length} heartbeat envelopes`);
    events.close();
  });

  test('a live-coherence (fan-out) client that answers no ping is closed with 4408 ping_timeout and leaves the hub', { timeout: 30_000 }, async () => {
    const token = app.token('hb-watcher', 'org-hb', ['read:coherence']);
    const before = app.live!.stats.clients;
    const c = await open(ws('/v1/coherence', token), { autoPong: false });
    await c.next('subscribed');
    const closed = await c.closed;
    assert.deepEqual([closed.code, closed.reason], [WS_TIMEOUT, `ping_timeout: no pong within ${PING_MS / 1000} s`]);
    assert.ok(c.inbox.some((m) => m.type === 'heartbeat'), 'the heartbeat envelope comes with the ping');
    const err = c.inbox.find((m) => m.type === 'error');
    assert.deepEqual([err?.error.code, err?.error.details[0].reason], ['request_timeout', 'ping_timeout']);
    await waitFor('the hub to drop the client', () => app.live!.stats.clients === before, 5_000, 10);
  });

  test('a live-ingest client that answers no ping is closed with 4408 ping_timeout', { timeout: 30_000 }, async (tc) => {
    const c = await ingestSocket('hb-silent', 'hb-dev-silent', { autoPong: false });
    const openedAt = performance.now();
    const closed = await c.closed;
    tc.diagnostic(`closed ${(closed.at - openedAt).toFixed(0)} ms after opening (${PING_MS} ms ping: due at 2 intervals)`);
    assert.deepEqual([closed.code, closed.reason], [WS_TIMEOUT, `ping_timeout: no pong within ${PING_MS / 1000} s`]);
    assert.ok(c.pings >= 1);
    const err = c.inbox.find((m) => m.type === 'error');
    assert.deepEqual([err?.error.code, err?.error.details[0].reason], ['request_timeout', 'ping_timeout']);
  });

  test('a live-ingest client that answers pings but sends nothing is closed with 4408 idle_timeout, not before the idle timeout', { timeout: 30_000 }, async (tc) => {
    const c = await ingestSocket('hb-idle', 'hb-dev-idle');
    await c.next('authenticated');
    const reading = rsaReadings({ startMs: Date.now() - 30_000, durationS: 5 })[0];
    c.ws.send(JSON.stringify({ ...reading, id: 'only' }));
    const lastSent = performance.now();
    assert.equal((await c.next('ack')).accepted, 1);
    const closed = await c.closed;
    assert.deepEqual([closed.code, closed.reason], [WS_TIMEOUT, `idle_timeout: no message for ${IDLE_S} s`]);
    tc.diagnostic(`closed ${(closed.at - lastSent).toFixed(0)} ms after the last message (idle timeout ${IDLE_S} s)`);
    assert.ok(closed.at - lastSent >= IDLE_S * 1000, `closed ${(closed.at - lastSent).toFixed(0)} ms after the last message`);
    assert.ok(c.pings >= 2, `${c.pings} pings answered meanwhile`);
    const err = c.inbox.find((m) => m.type === 'error');
    assert.deepEqual([err?.error.code, err?.error.details[0].reason], ['request_timeout', 'idle_timeout']);
  });

  test('an active live-ingest client (a reading every 300 ms) outlives several idle timeouts', { timeout: 30_000 }, async () => {
    const c = await ingestSocket('hb-active', 'hb-dev-active');
    await c.next('authenticated');
    const readings = rsaReadings({ startMs: Date.now() - 60_000, durationS: 30 }).slice(0, 12);
    const t0 = performance.now();
    for (let i = 0; i < readings.length; i++) {
      c.ws.send(JSON.stringify({ ...readings[i], id: `r${i}` }));
      await waitFor(`ack r${i}`, () => c.inbox.find((m) => m.type === 'ack' && m.id === `r${i}`), 10_000, 10);
      // The client's pace: a reading every 300 ms.
      const wait = t0 + (i + 1) * 300 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    assert.ok(performance.now() - t0 >= 3 * IDLE_S * 1000);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    assert.equal(c.inbox.some((m) => m.type === 'error'), false, JSON.stringify(c.inbox.filter((m) => m.type === 'error')));
    c.ws.close(1000);
    assert.equal((await c.closed).code, 1000);
  });
});
