// Live speech audio over a WebSocket: `/v1/ingest/audio/{speech_session_id}`.
//
// Protocol (after authentication: Authorization header, `?token=`, or a first
// `{"type":"authenticate","token":…}` message, answered with
// `{"type":"authenticated","session_id"}`):
//   client → {"type":"start","sample_rate":16000|44100|48000,"encoding":"pcm16"}
//   server → {"type":"started","stream_id","session_id","sample_rate"}
//   client → binary messages: PCM16 little-endian mono at the declared rate, any length (an
//            odd trailing byte is kept for the next message)
//   client → {"type":"stop"}
//   server → {"type":"stopped","stream_id","samples","duration_s"} (16 kHz samples) and closes (1000)
// Errors are `{"type":"error","error":{code,message,details}}`. Binary before start, a bad
// start (rate, encoding) or a session that already has audio also close the socket (4400,
// 4400, 4409); bad JSON, an unknown type or a second start are answered and ignored. A
// socket that closes without stop is treated as a stop: the audio it sent is processed.
//
// Each binary message is resampled to 16 kHz and published at once (frames of at most
// 250 ms), so the worker can report metrics every second. Back-pressure: when more than
// PAUSE_AFTER_S of audio is waiting for the bus, the socket stops being read (TCP then
// slows the client) until less than RESUME_BELOW_S is waiting; a client that still piles up
// MAX_PENDING_S (messages already buffered when reading stopped) is closed with 4029.
//
// Heartbeat (http/ws-heartbeat.ts): the socket is pinged every ATTUNE_WS_HEARTBEAT_MS; a ping
// unanswered when the next is due, or no message for ATTUNE_WS_IDLE_TIMEOUT_S, closes it with
// 4408 (`ping_timeout` / `idle_timeout`) after an error message. That counts as a stop: the
// stream is ended at once (finish, the path of stop and of a bare close; it runs once,
// whichever of them comes first), its claim released, and the session analysed.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AttuneError, isAttuneError } from '../../lib/errors.js';
import type { AppContext } from '../../http/context.js';
import { CloseCodes, reauthenticationAhead, socketAuth } from '../../http/http-auth.js';
import { WS_TIMEOUT, heartbeatSettings, watchSocket } from '../../http/ws-heartbeat.js';
import type { SpeechSession } from '../../store/postgres/speech-sessions-repo.js';
import { LiveFraming, SpeechAudioPublisher, BUS_SAMPLE_RATE } from './publisher.js';
import { SpeechScopes, audioConflict, speechRepos, takesAudio, type SpeechRepos } from './speech-access.js';
import { socketErrorMessage } from '../../http/errors.js';

export const LIVE_SAMPLE_RATES = [16000, 44100, 48000] as const;
/** Close codes of this socket beyond the shared ones: 4000 + the HTTP status. */
export const LiveAudioCloseCodes = { ...CloseCodes, badRequest: 4400, conflict: 4409, unavailable: 4503, internal: 4500, timeout: WS_TIMEOUT } as const;
export const PAUSE_AFTER_S = 5;
export const RESUME_BELOW_S = 1;
export const MAX_PENDING_S = 30;

const sessionIdParam = {
  type: 'object',
  properties: { speech_session_id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' } },
  required: ['speech_session_id'],
} as const;

export async function registerLiveAudioRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { speech_session_id: string } }>(
    '/v1/ingest/audio/:speech_session_id',
    {
      config: { auth: { scope: SpeechScopes.write, socket: true } },
      websocket: true,
      schema: {
        tags: ['speech'],
        summary: 'Live speech audio over a WebSocket: start message, binary PCM16 messages, stop (see README).',
        params: sessionIdParam,
      },
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: { speech_session_id: string } }>) => {
      new LiveAudioConnection(ctx, socket, req).listen();
    },
  );
}

type State = 'authenticating' | 'ready' | 'streaming' | 'finished';

class LiveAudioConnection {
  private state: State = 'authenticating';
  private repos: SpeechRepos | null = null;
  private session: SpeechSession | null = null;
  private publisher: SpeechAudioPublisher | null = null;
  private sampleRate = 0;
  /** An odd byte left over from the previous binary message. */
  private carry: number | null = null;
  /** Messages are handled one at a time, in arrival order. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Samples (at the client's rate) accepted so far. */
  private inputSamples = 0;
  /** Bytes of audio received and not yet on the bus. */
  private pendingBytes = 0;
  private paused = false;
  private readonly auth;

  constructor(
    private readonly ctx: AppContext,
    private readonly socket: WebSocket,
    private readonly req: FastifyRequest<{ Params: { speech_session_id: string } }>,
  ) {
    this.auth = socketAuth(ctx, socket, req, async (p) => {
      const repos = speechRepos(ctx);
      const session = await repos.sessions.getVisible(p, req.params.speech_session_id);
      this.repos = repos;
      this.session = session;
      this.state = 'ready';
      this.send({ type: 'authenticated', session_id: session.id });
    });
    this.chain = this.auth.initial;
  }

  listen(): void {
    this.socket.on('message', (data: Buffer, isBinary: boolean) => {
      // A fresh token goes ahead of the audio waiting for the bus (see reauthenticationAhead).
      if (!isBinary && this.auth.principal && reauthenticationAhead(this.auth, data)) return;
      if (isBinary) this.pendingBytes += data.length;
      this.applyBackpressure();
      this.enqueue(() => this.onMessage(data, isBinary));
    });
    // A close without stop is a stop: the messages already queued are handled first.
    this.socket.on('close', () =>
      this.enqueue(async () => {
        await this.finish(false);
        this.ctx.log.debug({ session_id: this.session?.id ?? null, request_id: String(this.req.id) }, 'live audio: socket closed and handled');
      }),
    );
    // So is a heartbeat timeout: the stream ends now, not when a vanished peer's socket is finally destroyed.
    watchSocket(this.socket, {
      ...heartbeatSettings(this.ctx.liveOptions, true),
      log: this.ctx.log,
      name: 'live-audio',
      onTimeout: (t) => {
        this.sendError(new AttuneError('request_timeout', `socket closed: ${t.text}`, [{ reason: t.reason }]));
        this.enqueue(() => this.finish(false));
      },
    });
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err) => this.ctx.log.error({ err }, 'live audio: message handling failed'));
  }

  private async onMessage(data: Buffer, isBinary: boolean): Promise<void> {
    if (this.state === 'finished') return;
    if (isBinary) {
      this.pendingBytes -= data.length;
      try {
        await this.onAudio(data);
      } finally {
        this.applyBackpressure();
      }
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch (err) {
      if (this.state === 'authenticating') return void (await this.auth.handleFirstMessage(null));
      return this.sendError(new AttuneError('validation_error', 'message is not valid JSON', [{ field: '/', reason: 'invalid_json', message: (err as Error).message }]));
    }
    if (this.state === 'authenticating') {
      await this.auth.handleFirstMessage(msg);
      return;
    }
    if (await this.auth.handleReauthentication(msg)) return;
    const type = msg && typeof msg === 'object' && !Array.isArray(msg) ? (msg as Record<string, unknown>).type : undefined;
    if (type === 'start') return this.start(msg as Record<string, unknown>);
    if (type === 'stop') return this.finish(true);
    this.sendError(new AttuneError('validation_error', `unknown message type ${JSON.stringify(type ?? null)}; expected start or stop`, [{ field: '/type', reason: 'unknown_type' }]));
  }

  private async start(msg: Record<string, unknown>): Promise<void> {
    const receivedAt = this.ctx.clock();
    if (this.state !== 'ready') {
      return this.sendError(new AttuneError('validation_error', 'the stream has started already; one start per connection', [{ field: '/type', reason: 'already_started' }]));
    }
    const rate = msg.sample_rate;
    if (!LIVE_SAMPLE_RATES.includes(rate as (typeof LIVE_SAMPLE_RATES)[number])) {
      return this.refuse(
        new AttuneError('validation_error', `sample_rate must be one of ${LIVE_SAMPLE_RATES.join(', ')}`, [
          { field: '/sample_rate', reason: 'invalid_value', allowed: [...LIVE_SAMPLE_RATES], got: rate ?? null },
        ]),
        LiveAudioCloseCodes.badRequest,
      );
    }
    if (msg.encoding !== undefined && msg.encoding !== 'pcm16') {
      return this.refuse(
        new AttuneError('validation_error', 'encoding must be pcm16 (signed 16-bit little-endian mono)', [{ field: '/encoding', reason: 'invalid_value', got: msg.encoding }]),
        LiveAudioCloseCodes.badRequest,
      );
    }
    const session = this.session!;
    if (!takesAudio(session)) return this.refuse(audioConflict(session), LiveAudioCloseCodes.conflict);
    const sampleRate = rate as number;
    let claimed: SpeechSession;
    // The claim is a row in PostgreSQL: of two starts for one session, from any processes,
    // exactly one gets it; the other is refused with 4409.
    const streamId = `live-${randomUUID()}`;
    try {
      claimed = await this.repos!.sessions.claimForAudio(session.id, { source: 'live', startedAt: receivedAt, sampleRateHz: sampleRate, streamId, leaseMs: this.ctx.audioLeases?.leaseMs });
    } catch (err) {
      const code = isAttuneError(err) && err.code === 'conflict' ? LiveAudioCloseCodes.conflict : LiveAudioCloseCodes.unavailable;
      return this.refuse(err, code);
    }
    // Renewed while the socket streams; if another process ended it (this one could not renew
    // for a whole lease), the audio would go nowhere: the socket is closed.
    this.ctx.audioLeases?.hold(streamId, () => this.onLeaseLost());
    this.sampleRate = sampleRate;
    this.publisher = new SpeechAudioPublisher(
      { bus: this.ctx.bus, topics: this.ctx.topics, codec: this.ctx.codec },
      {
        sessionId: session.id,
        orgId: session.orgId,
        userId: session.userId,
        streamId,
        source: 'live',
        audioStartedAt: receivedAt,
        sourceSampleRateHz: sampleRate,
        expectedSamples: null,
        settingsJson: JSON.stringify(claimed.settings ?? session.settings ?? {}),
      },
      LiveFraming,
    );
    this.state = 'streaming';
    this.send({ type: 'started', stream_id: this.publisher.streamId, session_id: session.id, sample_rate: sampleRate });
  }

  private async onAudio(data: Buffer): Promise<void> {
    if (this.state !== 'streaming') {
      const err = new AttuneError('validation_error', 'send {"type":"start","sample_rate":…,"encoding":"pcm16"} before audio', [{ reason: 'audio_before_start' }]);
      // Before authentication this is the auth's refusal (4401); after it, a protocol error.
      if (this.state === 'authenticating') return void (await this.auth.handleFirstMessage(null));
      return this.refuse(err, LiveAudioCloseCodes.badRequest);
    }
    const samples = this.decodePcm16(data);
    if (samples.length === 0) return;
    this.inputSamples += samples.length;
    try {
      await this.publisher!.write(samples);
    } catch (err) {
      await this.failStream(err);
    }
  }

  /** PCM16 LE to floats (v / 32768, like the WAV reader), carrying an odd byte over. */
  private decodePcm16(data: Buffer): Float32Array {
    let bytes = data;
    if (this.carry !== null) {
      bytes = Buffer.concat([Buffer.from([this.carry]), data]);
      this.carry = null;
    }
    const n = bytes.length >> 1;
    if (bytes.length % 2 === 1) this.carry = bytes[bytes.length - 1];
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bytes.readInt16LE(2 * i) / 32768;
    return out;
  }

  /**
   * Stop (or the socket closed): the rest of the audio and the last frame go out. The session
   * row is updated first, so the worker, which completes the session after the last frame,
   * never has its status overwritten by this one.
   */
  private async finish(byClient: boolean): Promise<void> {
    if (this.state === 'finished') return;
    const wasStreaming = this.state === 'streaming';
    this.state = 'finished';
    this.resume();
    if (!wasStreaming) {
      if (byClient) this.refuse(new AttuneError('validation_error', 'stop before start', [{ reason: 'stop_before_start' }]), LiveAudioCloseCodes.badRequest);
      return;
    }
    const publisher = this.publisher!;
    // The odd byte is half a sample: nothing to publish.
    this.carry = null;
    try {
      // The length of what the client sent (the resampler still holds its last few samples).
      const audioDurationS = this.inputSamples / this.sampleRate;
      await this.repos!.sessions.update(this.session!.id, { status: 'processing', endedAt: this.ctx.clock(), audioDurationS }).catch((err) => {
        this.ctx.log.error({ err, session_id: this.session!.id }, 'live audio: could not record the end of the stream');
      });
      await publisher.end();
    } catch (err) {
      await this.failStream(err);
      return;
    }
    await this.repos!.sessions.releaseAudio(this.session!.id, { outcome: 'ended', streamId: publisher.streamId }).catch((err) => {
      this.ctx.log.error({ err, session_id: this.session!.id }, 'live audio: could not release the stream claim');
    });
    this.ctx.audioLeases?.drop(publisher.streamId);
    const samples = publisher.samplesPublished;
    this.ctx.log.info({ session_id: this.session!.id, stream_id: publisher.streamId, samples, by_client: byClient }, 'live speech stream ended');
    this.send({ type: 'stopped', stream_id: publisher.streamId, samples, duration_s: samples / BUS_SAMPLE_RATE });
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(1000, 'stopped');
  }

  /** Another process ended the stream (its lease passed): what arrives now would be dropped. */
  private onLeaseLost(): void {
    if (this.state !== 'streaming') return;
    this.state = 'finished';
    this.resume();
    this.refuse(
      new AttuneError('unavailable', 'the stream was ended: this server could not renew its claim in time; the audio received so far is analysed', [{ reason: 'stream_lost' }]),
      LiveAudioCloseCodes.unavailable,
    );
  }

  /** The bus failed: tell the client, end the stream as aborted, fail the session. */
  private async failStream(err: unknown): Promise<void> {
    this.state = 'finished';
    if (this.publisher) this.ctx.audioLeases?.drop(this.publisher.streamId);
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) this.ctx.log.error({ err }, 'live audio failed');
    const reason = String(coded.details[0]?.reason ?? coded.code);
    let ended = true;
    await this.publisher?.abort(reason).catch((e) => {
      ended = false;
      this.ctx.log.error({ err: e }, 'live audio: could not abort the stream; its lease will end it');
    });
    if (this.session && this.repos && ended) {
      await this.repos.sessions.update(this.session.id, { status: 'failed', endedAt: this.ctx.clock() }).catch((e) => this.ctx.log.error({ err: e }, 'live audio: could not fail the session'));
    }
    // Not ended (the bus took no abort either): failing the session would release the claim and
    // leave the stream open on the bus for good. The claim, no longer renewed, is left to the
    // lease sweep (stream-leases.ts), which publishes the stream's end marker once the bus takes
    // it: the audio that arrived is analysed, as for a process that died.
    this.refuse(coded, coded.statusCode >= 500 ? LiveAudioCloseCodes.unavailable : LiveAudioCloseCodes.badRequest);
  }

  private applyBackpressure(): void {
    if (this.state !== 'streaming' || this.sampleRate === 0) return;
    const pendingS = this.pendingBytes / 2 / this.sampleRate;
    if (pendingS > MAX_PENDING_S) {
      this.pendingBytes = 0;
      this.sendError(new AttuneError('rate_limited', `more than ${MAX_PENDING_S} s of audio waiting for the bus; send at real-time pace`, [{ reason: 'too_much_pending_audio' }]));
      // The close event then ends the stream with what was accepted.
      this.socket.close(LiveAudioCloseCodes.rateLimited, 'rate_limited');
      return;
    }
    if (!this.paused && pendingS > PAUSE_AFTER_S) {
      this.paused = true;
      this.socket.pause();
    } else if (this.paused && pendingS < RESUME_BELOW_S) {
      this.resume();
    }
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  private send(msg: unknown): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(msg));
  }

  private sendError(err: unknown): void {
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) this.ctx.log.error({ err }, 'live audio failed');
    this.send(socketErrorMessage(coded, String(this.req.id), this.ctx.clock()));
  }

  /** Answers with the error and closes the socket with `code`. */
  private refuse(err: unknown, code: number): void {
    this.sendError(err);
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(code, isAttuneError(err) ? err.code : 'internal_error');
  }
}
