// Live speech audio over the WebSocket, with a real ws client against a listening server on
// chDB and the embedded bus: a 48 kHz clip sent in 20 ms messages arrives on the bus as
// small frames, published while the client is still sending, exactly the resampled audio;
// stop and a bare close both end the stream; protocol errors are coded; a client that stops
// answering pings, or sends nothing for the idle timeout, is closed with 4408 and its stream
// ended once, as by stop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Bus } from '../../bus/types.js';
import { parseWav } from '../../pipelines/speech/wav.test-util.js';
import { readFileSync } from 'node:fs';
import { resample } from './resample.js';
import { toPcm16 } from '../../schemas/audio-frames.js';
import { LiveAudioCloseCodes, PAUSE_AFTER_S } from './live-socket.js';
import { AudioStreamLeases } from './stream-leases.js';
import { STREAM_LOST_SEQUENCE } from '../../schemas/audio-frames.js';
import { silentLogger } from '../../lib/log.js';
import { startIngestTestServer, streamPcm, waitFor, type IngestTestServer } from './speech-ingest.test-util.js';

const data = new URL('../../../shared/data/', import.meta.url).pathname;
/** PTDB-TUG F01: real speech recorded at 48 kHz. */
const clip48 = parseWav(readFileSync(`${data}pitch/mic_F01_sa1.wav`));
const pcm48 = toPcm16(clip48.samples);

/** The bus may be held back by the test (back-pressure), or refuse every publish (an outage). */
let gate: Promise<void> | null = null;
let busDown = false;
const gatedBus = (bus: Bus): Bus => ({
  kind: bus.kind,
  ensureTopics: (s) => bus.ensureTopics(s),
  publish: async (topic, records) => {
    if (gate) await gate;
    if (busDown) throw new Error('broker unavailable (test)');
    return bus.publish(topic, records);
  },
  subscribe: (o) => bus.subscribe(o),
  committed: (g, t) => bus.committed(g, t),
  partitionCount: (t) => bus.partitionCount(t),
  close: () => bus.close(),
});

let srv: IngestTestServer;
before(async () => {
  srv = await startIngestTestServer({ wrapBus: gatedBus });
});
after(async () => {
  await srv?.close();
});

interface Client {
  ws: WebSocket;
  inbox: any[];
  closed: Promise<{ code: number; reason: string }>;
  next(type: string, timeoutMs?: number): Promise<any>;
  sendAsync(data: Buffer | string): Promise<void>;
}

async function connect(sessionId: string, token: string | null, onMessage?: (msg: any, ws: WebSocket) => void): Promise<Client> {
  const ws = new WebSocket(`${srv.wsUrl}/v1/ingest/audio/${sessionId}${token ? `?token=${token}` : ''}`);
  if (onMessage) ws.on('message', (d, isBinary) => !isBinary && onMessage(JSON.parse(d.toString()), ws));
  const inbox: any[] = [];
  ws.on('message', (d, isBinary) => {
    if (!isBinary) inbox.push(JSON.parse(d.toString()));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    inbox,
    closed,
    next: (type, timeoutMs = 10_000) => waitFor(`a ${type} message`, () => inbox.find((m) => m.type === type), timeoutMs),
    sendAsync: (d) => new Promise<void>((resolve, reject) => ws.send(d, (err) => (err ? reject(err) : resolve()))),
  };
}

/** What the bus must carry for PCM16 sent at `rate`: the same conversion, in one go. */
const expectedAt16k = (pcm: Buffer, rate: number) => {
  const f = new Float32Array(pcm.length / 2);
  for (let i = 0; i < f.length; i++) f[i] = pcm.readInt16LE(2 * i) / 32768;
  return toPcm16(resample(f, rate, 16000));
};

async function startedClient(userId = 'u-live', orgId = 'o-live', rate = 48000, onMessage?: (msg: any, ws: WebSocket) => void) {
  const session = await srv.newSession(userId, orgId, { pause_ms: 250 });
  const c = await connect(session.id, srv.token(userId, orgId), onMessage);
  assert.equal((await c.next('authenticated')).session_id, session.id);
  c.ws.send(JSON.stringify({ type: 'start', sample_rate: rate, encoding: 'pcm16' }));
  const started = await c.next('started');
  return { session, c, started };
}

describe('streaming', () => {
  test('a 48 kHz clip in 20 ms messages: small frames published while sending, exact audio, stop → stopped + is_last', async () => {
    const before = Date.now();
    const { session, c, started } = await startedClient();
    assert.match(started.stream_id, /^live-[0-9a-f-]{36}$/);
    assert.equal(started.session_id, session.id);
    assert.equal(started.sample_rate, 48000);
    const claimed = (await srv.sessions.get(session.id))!;
    assert.equal(claimed.status, 'recording');
    assert.equal(claimed.source, 'live');

    const step = 960 * 2; // 20 ms at 48 kHz
    const half = Math.floor(pcm48.length / 2 / step) * step;
    for (let at = 0; at < half; at += step) await c.sendAsync(pcm48.subarray(at, Math.min(at + step, pcm48.length)));
    // Frames arrive before stop: nothing waits for a full frame or for the end.
    const streamed = await waitFor('frames of the first half', () => {
      const s = srv.frames.streams.get(started.stream_id);
      return s && s.samples >= (half / 2 / 3) * 0.99 && s;
    });
    assert.equal(streamed.last, null, 'not ended yet');
    for (let at = half; at < pcm48.length; at += step) await c.sendAsync(pcm48.subarray(at, Math.min(at + step, pcm48.length)));
    c.ws.send(JSON.stringify({ type: 'stop' }));
    const stopped = await c.next('stopped');
    const closed = await c.closed;
    assert.equal(closed.code, 1000);

    const stream = await srv.frames.finished(started.stream_id);
    const expected = expectedAt16k(pcm48, 48000);
    assert.ok(streamPcm(stream).equals(expected), `audio differs (${streamPcm(stream).length} vs ${expected.length} bytes)`);
    assert.deepEqual(stopped, { type: 'stopped', stream_id: started.stream_id, samples: expected.length / 2, duration_s: expected.length / 2 / 16000 });
    const frames = [...stream.frames].sort((a, b) => a.sequence - b.sequence);
    let offset = 0;
    frames.forEach((f, i) => {
      assert.equal(f.sequence, i);
      assert.equal(f.sample_offset, offset);
      offset += f.pcm16.length / 2;
      assert.ok(f.pcm16.length <= 4000 * 2, `frame ${i}: ${f.pcm16.length / 2} samples (≤ 250 ms)`);
      assert.equal(f.is_last, i === frames.length - 1);
      assert.equal(f.source, 'live');
      assert.equal(f.source_sample_rate_hz, 48000);
      assert.equal(f.expected_samples, null);
      assert.equal(f.aborted_reason, null);
      assert.equal(f.audio_started_at, frames[0].audio_started_at);
      assert.deepEqual(JSON.parse(f.settings_json!), { pause_ms: 250 });
    });
    assert.ok(frames[0].audio_started_at >= before && frames[0].audio_started_at <= Date.now());
    // ~one frame per 20 ms message (the resampler holds a few samples back at first).
    assert.ok(frames.length >= pcm48.length / step - 2, `${frames.length} frames for ${Math.ceil(pcm48.length / step)} messages`);
    assert.deepEqual([...srv.frames.keys.get(started.stream_id)!], [session.id]);

    const s = (await srv.sessions.get(session.id))!;
    assert.equal(s.status, 'processing');
    assert.equal(s.sampleRateHz, 48000);
    assert.equal(s.startedAt, frames[0].audio_started_at);
    assert.ok(s.endedAt !== null && s.endedAt >= s.startedAt!);
    assert.ok(Math.abs(s.audioDurationS! - pcm48.length / 2 / 48000) < 1e-9);
  });

  test('odd-sized messages at 44.1 kHz: the odd byte is carried over; a close without stop ends the stream', async () => {
    const pcm44 = toPcm16(resample(clip48.samples.subarray(0, 48000 * 2), 48000, 44100));
    const { c, started } = await startedClient('u-live', 'o-live', 44100);
    for (let at = 0; at < pcm44.length; at += 1001) await c.sendAsync(pcm44.subarray(at, Math.min(at + 1001, pcm44.length)));
    c.ws.close();
    const stream = await srv.frames.finished(started.stream_id);
    assert.ok(streamPcm(stream).equals(expectedAt16k(pcm44, 44100)));
    assert.equal(stream.last!.aborted_reason, null, 'a close is a normal end');
  });

  test('16 kHz passes through unchanged', async () => {
    const pcm16k = toPcm16(parseWav(readFileSync(`${data}speech/librispeech_251-137823-0002_M.wav`)).samples);
    const { c, started } = await startedClient('u-live', 'o-live', 16000);
    for (let at = 0; at < pcm16k.length; at += 640) await c.sendAsync(pcm16k.subarray(at, at + 640));
    c.ws.send(JSON.stringify({ type: 'stop' }));
    await c.next('stopped');
    const stream = await srv.frames.finished(started.stream_id);
    assert.ok(streamPcm(stream).equals(pcm16k));
  });

  test(`back-pressure: with more than ${PAUSE_AFTER_S} s waiting for the bus the socket is paused, then resumes; nothing is lost`, async () => {
    const { c, started } = await startedClient('u-live', 'o-live', 16000);
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const serverSocket = () => [...srv.app.websocketServer.clients].find((ws) => ws.readyState === WebSocket.OPEN) as WebSocket & { isPaused: boolean };
    const audio = Buffer.alloc(16000 * 2 * 20); // 20 s of a 16 kHz tone
    for (let i = 0; i < audio.length / 2; i++) audio.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 300 * i) / 16000)), 2 * i);
    for (let at = 0; at < audio.length; at += 640) c.ws.send(audio.subarray(at, at + 640));
    await waitFor('the server to pause reading', () => serverSocket()?.isPaused === true, 10_000);
    const held = srv.frames.streams.get(started.stream_id)?.samples ?? 0;
    assert.equal(held, 0, 'nothing reached the bus while it was held');
    gate = null;
    release();
    await waitFor('the server to resume', () => serverSocket()?.isPaused === false, 20_000);
    c.ws.send(JSON.stringify({ type: 'stop' }));
    const stopped = await c.next('stopped', 20_000);
    assert.equal(stopped.samples, audio.length / 2);
    const stream = await srv.frames.finished(started.stream_id);
    assert.ok(streamPcm(stream).equals(audio));
  });
});

describe('the bus failing mid-stream', () => {
  test('the client gets 4503; with the abort not published either, the claim is left to the lease sweep, which ends the stream once the bus is back (the audio that arrived stays the stream\'s)', async () => {
    const { session, c, started } = await startedClient('u-live', 'o-live', 16000);
    const second = toPcm16(resample(clip48.samples.subarray(0, 48000), 48000, 16000));
    await c.sendAsync(second);
    await waitFor('the first second on the bus', () => (srv.frames.streams.get(started.stream_id)?.frames.length ?? 0) > 0);
    busDown = true;
    try {
      await c.sendAsync(second);
      assert.equal((await c.closed).code, LiveAudioCloseCodes.unavailable);
    } finally {
      busDown = false;
    }
    // Failing the session would have released the claim and left the stream open on the bus.
    assert.equal((await srv.sessions.get(session.id))?.status, 'recording');
    assert.equal((await srv.sessions.openAudioStream(session.id))?.streamId, started.stream_id);
    // The lease passes (as if a minute went by) and any ingest process's sweep ends the stream.
    await srv.entities.client.query("UPDATE speech_audio_streams SET lease_until = now() - interval '1 second' WHERE stream_id = $1", [started.stream_id]);
    const leases = new AudioStreamLeases({ sessions: srv.sessions, bus: srv.bus, topics: srv.ctx.topics, codec: srv.codec, log: silentLogger, leaseMs: 60_000 });
    await leases.tick();
    assert.equal(leases.stats.swept, 1);
    const stream = await srv.frames.finished(started.stream_id);
    assert.deepEqual([stream.last!.sequence, stream.last!.aborted_reason], [STREAM_LOST_SEQUENCE, null], 'a live stream: its audio so far is analysed');
    assert.equal(await srv.sessions.openAudioStream(session.id), null);
  });
});

describe('protocol errors', () => {
  const errorOf = (m: any) => m.error as { code: string; message: string; details: Array<Record<string, unknown>> };

  test('binary before start: coded error and close 4400', async () => {
    const session = await srv.newSession('u-live', 'o-live');
    const c = await connect(session.id, srv.token('u-live', 'o-live'));
    await c.next('authenticated');
    c.ws.send(Buffer.alloc(640));
    const err = errorOf(await c.next('error'));
    assert.equal(err.code, 'validation_error');
    assert.equal(err.details[0].reason, 'audio_before_start');
    assert.equal((await c.closed).code, LiveAudioCloseCodes.badRequest);
    assert.equal((await srv.sessions.get(session.id))!.status, 'created', 'the session was not claimed');
  });

  test('an unsupported rate or encoding: coded error and close 4400', async () => {
    for (const start of [{ sample_rate: 22050, encoding: 'pcm16' }, { sample_rate: 16000, encoding: 'float32' }]) {
      const session = await srv.newSession('u-live', 'o-live');
      const c = await connect(session.id, srv.token('u-live', 'o-live'));
      await c.next('authenticated');
      c.ws.send(JSON.stringify({ type: 'start', ...start }));
      const err = errorOf(await c.next('error'));
      assert.equal(err.code, 'validation_error');
      assert.equal(err.details[0].field, start.sample_rate === 22050 ? '/sample_rate' : '/encoding');
      assert.equal((await c.closed).code, 4400);
    }
  });

  test('bad JSON, an unknown type and a second start are answered and ignored', async () => {
    const { c, started } = await startedClient('u-live', 'o-live', 16000);
    c.ws.send('{not json');
    c.ws.send(JSON.stringify({ type: 'pause' }));
    c.ws.send(JSON.stringify({ type: 'start', sample_rate: 16000 }));
    await waitFor('three errors', () => c.inbox.filter((m) => m.type === 'error').length === 3);
    const reasons = c.inbox.filter((m) => m.type === 'error').map((m) => errorOf(m).details[0].reason);
    assert.deepEqual(reasons, [reasons[0], 'unknown_type', 'already_started']);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await c.sendAsync(Buffer.alloc(3200));
    c.ws.send(JSON.stringify({ type: 'stop' }));
    assert.equal((await c.next('stopped')).samples, 1600);
    assert.equal((await srv.frames.finished(started.stream_id)).samples, 1600);
  });

  test('a session that already has audio: conflict and close 4409', async () => {
    const { session, c } = await startedClient('u-live', 'o-live', 16000);
    const second = await connect(session.id, srv.token('u-live', 'o-live'));
    await second.next('authenticated');
    second.ws.send(JSON.stringify({ type: 'start', sample_rate: 16000, encoding: 'pcm16' }));
    assert.equal(errorOf(await second.next('error')).code, 'conflict');
    assert.equal((await second.closed).code, LiveAudioCloseCodes.conflict);
    c.ws.send(JSON.stringify({ type: 'stop' }));
    await c.next('stopped');
  });

  test('no write:speech scope: 4403; someone else\'s session: 4404; no token: 4401 at the first message', async () => {
    const session = await srv.newSession('u-owner', 'o-live');
    const noScope = await connect(session.id, srv.token('u-owner', 'o-live', ['read:speech']));
    assert.equal(errorOf(await noScope.next('error')).code, 'forbidden');
    assert.equal((await noScope.closed).code, 4403);
    const foreign = await connect(session.id, srv.token('u-other', 'o-live'));
    assert.equal(errorOf(await foreign.next('error')).code, 'not_found');
    assert.equal((await foreign.closed).code, 4404);
    const anonymous = await connect(session.id, null);
    anonymous.ws.send(Buffer.alloc(64));
    assert.equal(errorOf(await anonymous.next('error')).code, 'unauthorized');
    assert.equal((await anonymous.closed).code, 4401);
    // Authenticating with a first message works too.
    const late = await connect(session.id, null);
    late.ws.send(JSON.stringify({ type: 'authenticate', token: srv.token('u-owner', 'o-live') }));
    assert.equal((await late.next('authenticated')).session_id, session.id);
    late.ws.close();
  });
});

describe('heartbeat: a timeout counts as stop', () => {
  /** Runs `fn` with the sockets' heartbeat settings (read when a socket connects). */
  async function withHeartbeat(live: { heartbeatMs: number; idleTimeoutMs: number }, fn: () => Promise<void>, log?: typeof srv.ctx.log): Promise<void> {
    const saved = srv.ctx.liveOptions;
    const savedLog = srv.ctx.log;
    const options: typeof saved = { ...saved, ...live };
    srv.ctx.liveOptions = options;
    if (log) srv.ctx.log = log;
    try {
      await fn();
    } finally {
      srv.ctx.liveOptions = saved;
      srv.ctx.log = savedLog;
    }
  }
  /** The server's log lines (debug and up) while a test runs with `capture`. */
  const logged: any[] = [];
  const capture = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) logged.push(JSON.parse(line));
        done();
      },
    }),
  );
  const pcm16k = toPcm16(parseWav(readFileSync(`${data}speech/librispeech_251-137823-0002_M.wav`)).samples.subarray(0, 16000));
  const lastFrames = (id: string) => srv.frames.streams.get(id)!.frames.filter((f) => f.is_last).length;

  async function assertEndedAsStop(sessionId: string, streamId: string, pcm: Buffer) {
    const stream = await srv.frames.finished(streamId);
    assert.ok(streamPcm(stream).equals(pcm), 'every sample sent before the timeout is on the bus');
    assert.equal(stream.last!.aborted_reason, null, 'a normal end, as by stop');
    const s = await waitFor('the session to leave recording', async () => {
      const r = (await srv.sessions.get(sessionId))!;
      return r.status !== 'recording' && r;
    });
    assert.equal(s.status, 'processing', 'handed to the worker for analysis');
    assert.ok(s.endedAt !== null);
    assert.ok(Math.abs(s.audioDurationS! - pcm.length / 2 / 16000) < 1e-9);
    // Released after the last frame is published (finish: the session row, the last frame, the
    // claim), so it may come just after what was awaited above (ci95 on a loaded machine).
    await waitFor('the stream claim released', async () => (await srv.sessions.openAudioStream(sessionId)) === null);
  }

  test('a client that vanishes mid-stream (reads nothing, so answers no ping) is closed with 4408 ping_timeout; its stream ends as with stop', { timeout: 60_000 }, async () => {
    await withHeartbeat({ heartbeatMs: 250, idleTimeoutMs: 60_000 }, async () => {
      const { session, c, started } = await startedClient('u-live', 'o-live', 16000);
      for (let at = 0; at < pcm16k.length; at += 640) await c.sendAsync(pcm16k.subarray(at, at + 640));
      // Gone without a close: the client no longer reads its socket (pings included).
      c.ws.pause();
      // The server ends the stream on its own: no stop, no close from the client.
      await assertEndedAsStop(session.id, started.stream_id, pcm16k);
      assert.equal(lastFrames(started.stream_id), 1);
      c.ws.resume();
      const closed = await c.closed;
      assert.equal(closed.code, LiveAudioCloseCodes.timeout);
      assert.equal(closed.code, 4408);
      assert.equal(closed.reason, 'ping_timeout: no pong within 0.25 s');
      const err = c.inbox.find((m) => m.type === 'error');
      assert.equal(err?.error.code, 'request_timeout');
      assert.equal(err?.error.details[0].reason, 'ping_timeout');
      assert.equal(c.inbox.some((m) => m.type === 'stopped'), false, 'no stopped message to a socket that is closing');
    });
  });

  test('a client that answers pings but sends nothing is closed with 4408 idle_timeout; a stop racing the close and the close itself end the stream only once', { timeout: 60_000 }, async () => {
    await withHeartbeat({ heartbeatMs: 200, idleTimeoutMs: 1_500 }, async () => {
      let stopSent = false;
      const { session, c, started } = await startedClient('u-live', 'o-live', 16000, (msg, ws) => {
        // The timeout's error message arrives just before its close frame: answer it with a
        // stop, which reaches the server after it closed the socket and ended the stream.
        if (msg.type === 'error' && msg.error.details[0]?.reason === 'idle_timeout' && ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: 'stop' }));
          stopSent = true;
        }
      });
      const versionAfterStart = (await srv.sessions.get(session.id))!.version;
      for (let at = 0; at < pcm16k.length; at += 640) await c.sendAsync(pcm16k.subarray(at, at + 640));
      const closed = await c.closed;
      assert.equal(closed.code, 4408);
      assert.equal(closed.reason, 'idle_timeout: no message for 1.5 s');
      assert.ok(stopSent, 'the stop was sent after the timeout');
      await assertEndedAsStop(session.id, started.stream_id, pcm16k);
      // The server has handled the stop and the close (everything queued on the connection) ...
      await waitFor('the server to handle the close', () => logged.some((l) => l.msg === 'live audio: socket closed and handled' && l.session_id === session.id));
      // ... and ended the stream once: one last frame, the session updated once (created, claimed, ended).
      assert.equal(lastFrames(started.stream_id), 1);
      assert.equal((await srv.sessions.get(session.id))!.version, versionAfterStart + 1);
    }, capture);
  });

  // The idle timeout is 1.5 s and the audio 6 s (four timeouts long): with 600 ms, a CI machine
  // running two test files at once stalled this process's event loop past it once.
  test('an active client is not closed: 6 s of audio at real-time pace with a 200 ms ping and a 1.5 s idle timeout, then stop', { timeout: 60_000 }, async () => {
    await withHeartbeat({ heartbeatMs: 200, idleTimeoutMs: 1500 }, async () => {
      const { c, started } = await startedClient('u-live', 'o-live', 16000);
      const pcm = Buffer.concat([pcm16k, pcm16k, pcm16k, pcm16k, pcm16k, pcm16k]);
      const t0 = performance.now();
      for (let at = 0, i = 1; at < pcm.length; at += 640, i++) {
        await c.sendAsync(pcm.subarray(at, at + 640));
        // 20 ms of audio per message, sent when it would have been spoken.
        const wait = t0 + i * 20 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      c.ws.send(JSON.stringify({ type: 'stop' }));
      const stopped = await c.next('stopped');
      assert.equal(stopped.samples, pcm.length / 2);
      assert.equal((await c.closed).code, 1000);
      assert.equal(c.inbox.some((m) => m.type === 'error'), false);
      assert.equal(lastFrames(started.stream_id), 1);
    });
  });
});
