// A server carrying only the speech audio ingest routes, for ingest/audio/*.test.ts: chDB in
// a temporary directory (migrated), the embedded bus, the local schema registry, an HS256
// authenticator and the speech repositories; plus what the tests need around it: a
// collector of the SpeechAudioFrame records on the bus, WAV and multipart encoders.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { type Bus } from '../../bus/types.js';
import { Topics } from '../../schemas/topics.js';
import { silentLogger } from '../../lib/log.js';
import { createCodec, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SpeechAudioFrame } from '../../schemas/registry/schemas.js';
import { createAuthenticator, type Authenticator } from '../../http/auth.js';
import type { AppContext } from '../../http/context.js';
import { createHttpServer } from '../../http/server.js';
import { DevicesRepository, SessionsRepository } from '../../store/postgres/sessions-repo.js';
import { SpeechSessionsRepository, SpeechUploadsRepository, type SpeechSession } from '../../store/postgres/speech-sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { Limits } from '../readings.js';
import { registerSpeechIngestRoutes } from './routes.js';
import { registerSpeechUploadStatusRoute } from './upload.js';

export const SPEECH_WRITE = ['write:speech', 'read:speech'];

export interface IngestTestServer {
  ctx: AppContext;
  app: FastifyInstance;
  baseUrl: string;
  wsUrl: string;
  /** The entity database (PostgreSQL or PGlite); the ingest role has no ClickHouse. */
  entities: TestDatabase;
  bus: Bus;
  codec: Codec;
  sessions: SpeechSessionsRepository;
  uploads: SpeechUploadsRepository;
  frames: FrameCollector;
  token(userId: string, orgId: string, scopes?: string[]): string;
  /** A new speech session of (userId, orgId). */
  newSession(userId: string, orgId: string, settings?: Record<string, unknown>): Promise<SpeechSession>;
  /** Another app on the same context with other upload limits (not listening; use inject). */
  withLimits(limits: { maxBytes: number; maxDurationS: number }): Promise<FastifyInstance>;
  close(): Promise<void>;
}

export interface IngestTestOptions {
  /** Wraps the bus the routes publish to (e.g. to hold publishes back). */
  wrapBus?: (bus: Bus) => Bus;
  /** Keep the frames' audio (default true); false keeps counts only. */
  keepAudio?: boolean;
  /** The embedded bus's in-memory tail per partition (its default is 16 MB). */
  busMemoryBytesPerPartition?: number;
  /** POST /v1/speech/stt's recogniser (the route is registered only with one). */
  speechToText?: AppContext['speechToText'];
}

async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  const app = await createHttpServer(ctx, { bodyLimit: Limits.maxBodyBytes, maxWsMessageBytes: Limits.maxWsMessageBytes });
  await registerSpeechIngestRoutes(app, ctx);
  // As cli/server.ts does where the ingest role runs.
  await registerSpeechUploadStatusRoute(app, ctx);
  return app;
}

export async function startIngestTestServer(opts: IngestTestOptions = {}): Promise<IngestTestServer> {
  const entities = await entityTestDatabase();
  const busDir = mkdtempSync(join(tmpdir(), 'attune-speech-ingest-bus-'));
  const bus = await createEmbeddedBus({ dir: busDir, log: silentLogger, defaultPartitions: 2, memoryBytesPerPartition: opts.busMemoryBytesPerPartition });
  await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  const codec = await createCodec(LocalSchemaRegistry.fromManifest());
  const auth: Authenticator = createAuthenticator({ secret: randomBytes(32).toString('hex'), publicKey: null, issuer: 'attune-test', audience: 'attune-test' });
  const clock = Date.now;
  const sessions = new SpeechSessionsRepository(entities.client, { clock });
  const uploads = new SpeechUploadsRepository(entities.client, { clock });
  const ctx: AppContext = {
    log: silentLogger,
    auth,
    database: 'attune',
    bus: opts.wrapBus ? opts.wrapBus(bus) : bus,
    topics: Topics,
    codec,
    sessions: new SessionsRepository(entities.client, { clock }),
    devices: new DevicesRepository(entities.client, { clock }),
    speechSessions: sessions,
    speechUploads: uploads,
    health: [],
    clock,
    roles: { ingest: true, api: false, worker: false },
    liveOptions: { maxBufferedMessages: 256, heartbeatMs: 30_000 },
    ingestLimit: { readingsPerS: 0, burst: 0 },
    ...(opts.speechToText ? { speechToText: opts.speechToText } : {}),
  };
  const frames = await FrameCollector.start(bus, codec, opts.keepAudio ?? true);
  const app = await buildApp(ctx);
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const extraApps: FastifyInstance[] = [];
  return {
    ctx,
    app,
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, 'ws'),
    entities,
    bus,
    codec,
    sessions,
    uploads,
    frames,
    token: (userId, orgId, scopes = SPEECH_WRITE) => auth.sign({ userId, orgId, scopes, ttlSeconds: 600 }),
    newSession: (userId, orgId, settings = { pause_ms: 300 }) => sessions.create({ orgId, userId, type: 'speech', settings }),
    async withLimits(limits) {
      const other = await buildApp({ ...ctx, speechUploadLimits: limits });
      extraApps.push(other);
      return other;
    },
    async close() {
      for (const a of extraApps) await a.close();
      await app.close();
      await frames.stop();
      await bus.close();
      await entities.dispose();
      rmSync(busDir, { recursive: true, force: true });
    },
  };
}

export interface CollectedStream {
  frames: SpeechAudioFrame[];
  /** 16 kHz samples of all frames. */
  samples: number;
  last: SpeechAudioFrame | null;
}

/** Every SpeechAudioFrame on the bus, grouped by stream. */
export class FrameCollector {
  readonly streams = new Map<string, CollectedStream>();
  /** Message keys seen per stream (must be the session id). */
  readonly keys = new Map<string, Set<string>>();
  private stopFn: () => Promise<void> = async () => {};

  static async start(bus: Bus, codec: Codec, keepAudio: boolean): Promise<FrameCollector> {
    const c = new FrameCollector();
    const sub = await bus.subscribe({
      groupId: `collector-${randomUUID()}`,
      topics: [Topics.speechAudio],
      fromBeginning: true,
      ephemeral: true,
      eachBatch: async (batch) => {
        for (const r of batch.records) {
          const f = await codec.decode<SpeechAudioFrame>(r.value);
          let s = c.streams.get(f.stream_id);
          if (!s) c.streams.set(f.stream_id, (s = { frames: [], samples: 0, last: null }));
          let keys = c.keys.get(f.stream_id);
          if (!keys) c.keys.set(f.stream_id, (keys = new Set()));
          keys.add(r.key);
          s.samples += f.pcm16.length / 2;
          if (f.is_last) s.last = f;
          s.frames.push(keepAudio ? f : { ...f, pcm16: Buffer.alloc(0) });
        }
      },
    });
    c.stopFn = () => sub.stop();
    return c;
  }

  /** Resolves with the stream once its last frame arrived. */
  async finished(streamId: string, timeoutMs = 20_000): Promise<CollectedStream> {
    return waitFor(`the last frame of stream ${streamId}`, () => this.streams.get(streamId)?.last && this.streams.get(streamId), timeoutMs);
  }

  stop(): Promise<void> {
    return this.stopFn();
  }
}

/** Polls `check` until it returns a truthy value, or throws naming `what` after the deadline. */
export async function waitFor<T>(what: string, check: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Concatenated PCM16 of a stream's frames, in sequence order. */
export function streamPcm(s: CollectedStream): Buffer {
  return Buffer.concat([...s.frames].sort((a, b) => a.sequence - b.sequence).map((f) => f.pcm16));
}

// --- WAV encoding -------------------------------------------------------------------------

export interface WavHeaderFields {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** 1 PCM, 3 IEEE float, 2 MS ADPCM… */
  formatTag: number;
  /** The data chunk's size field (0xFFFFFFFF: streamed, size unknown). */
  dataBytes: number;
  magic?: string;
}

/** A 44-byte canonical WAV header. */
export function wavHeader(h: WavHeaderFields): Buffer {
  const buf = Buffer.alloc(44);
  const blockAlign = Math.max(1, (h.channels * h.bitsPerSample) >> 3);
  buf.write(h.magic ?? 'RIFF', 0, 'latin1');
  buf.writeUInt32LE(Math.min(0xffffffff, 36 + h.dataBytes), 4);
  buf.write('WAVE', 8, 'latin1');
  buf.write('fmt ', 12, 'latin1');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(h.formatTag, 20);
  buf.writeUInt16LE(h.channels, 22);
  buf.writeUInt32LE(h.sampleRate, 24);
  buf.writeUInt32LE(h.sampleRate * blockAlign, 28);
  buf.writeUInt16LE(blockAlign, 32);
  buf.writeUInt16LE(h.bitsPerSample, 34);
  buf.write('data', 36, 'latin1');
  buf.writeUInt32LE(h.dataBytes, 40);
  return buf;
}

/** WAV bytes of the given channels (equal lengths) in PCM16, float32 or unsigned 8-bit. */
export function encodeWav(channels: Float32Array[], sampleRate: number, encoding: 'pcm16' | 'float32' | 'pcm8'): Buffer {
  const bits = encoding === 'pcm16' ? 16 : encoding === 'float32' ? 32 : 8;
  const bytes = bits / 8;
  const frames = channels[0].length;
  const data = Buffer.alloc(frames * channels.length * bytes);
  let p = 0;
  for (let i = 0; i < frames; i++) {
    for (const ch of channels) {
      const v = ch[i];
      if (encoding === 'float32') data.writeFloatLE(v, p);
      else if (encoding === 'pcm16') data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v * 32768))), p);
      else data.writeUInt8(Math.max(0, Math.min(255, Math.round(v * 128) + 128)), p);
      p += bytes;
    }
  }
  const header = wavHeader({ sampleRate, channels: channels.length, bitsPerSample: bits, formatTag: encoding === 'float32' ? 3 : 1, dataBytes: data.length });
  return Buffer.concat([header, data]);
}

// --- multipart/form-data ------------------------------------------------------------------

export interface FormPart {
  name: string;
  /** Text, bytes, or a stream of bytes (a file generated on the fly). */
  value: string | Buffer | AsyncIterable<Buffer>;
  filename?: string;
  contentType?: string;
}

export interface FormBody {
  contentType: string;
  /** The body as a stream (nothing is buffered beyond the current chunk). */
  stream(): Readable;
}

export function multipartForm(parts: FormPart[]): FormBody {
  const boundary = `----attune-test-${randomBytes(8).toString('hex')}`;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    stream() {
      return Readable.from(
        (async function* () {
          for (const part of parts) {
            let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
            if (part.filename !== undefined) head += `; filename="${part.filename}"`;
            head += '\r\n';
            if (part.contentType) head += `Content-Type: ${part.contentType}\r\n`;
            yield Buffer.from(head + '\r\n');
            if (typeof part.value === 'string') yield Buffer.from(part.value);
            else if (Buffer.isBuffer(part.value)) yield part.value;
            else for await (const chunk of part.value) yield chunk;
            yield Buffer.from('\r\n');
          }
          yield Buffer.from(`--${boundary}--\r\n`);
        })(),
        { objectMode: false },
      );
    },
  };
}

/** Sends a multipart upload through app.inject; the body streams. */
export async function injectUpload(app: FastifyInstance, sessionId: string, token: string | null, parts: FormPart[]) {
  const form = multipartForm(parts);
  const headers: Record<string, string> = { 'content-type': form.contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await app.inject({ method: 'POST', url: `/v1/speech-sessions/${sessionId}/upload`, headers, payload: form.stream() });
  let body: any = res.body;
  try {
    body = JSON.parse(res.body);
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, body, headers: res.headers };
}

/** A WAV file part. */
export const wavPart = (bytes: Buffer | AsyncIterable<Buffer>, filename = 'clip.wav'): FormPart => ({ name: 'file', value: bytes, filename, contentType: 'audio/wav' });
