// A small client of Attune's speech API for the end-to-end tests and the benchmarks: create a
// session, upload a WAV (multipart), stream audio live over the ingest socket at real-time
// pace, and collect the live events of a session.
import WebSocket from 'ws';
import { toPcm16 } from '../schemas/audio-frames.js';
import { encodeWavPcm16 } from '../pipelines/speech/wav.test-util.js';

export interface SpeechEventMessage {
  id: string;
  type: string;
  timestamp: string;
  payload: Record<string, any>;
  /** The speech-coaching document's fields of the event (api/speech-live.ts docEventData). */
  data?: Record<string, any>;
}

export interface ReceivedEvent {
  /** performance.now() when the message arrived. */
  at: number;
  msg: SpeechEventMessage;
}

const wsUrl = (baseUrl: string, path: string, token: string) => `${baseUrl.replace(/^http/, 'ws')}${path}?token=${encodeURIComponent(token)}`;

export async function createSpeechSession(baseUrl: string, token: string, body: Record<string, unknown> = { type: 'speech' }): Promise<{ id: string }> {
  const res = await fetch(`${baseUrl}/v1/speech-sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (res.status !== 201) throw new Error(`create speech session: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Uploads WAV bytes as multipart field `file` (with optional `metadata`); returns status and body. */
export async function uploadWav(
  baseUrl: string,
  token: string,
  sessionId: string,
  wav: Uint8Array,
  opts: { fileName?: string; metadata?: unknown } = {},
): Promise<{ status: number; body: any }> {
  const form = new FormData();
  if (opts.metadata !== undefined) form.append('metadata', JSON.stringify(opts.metadata));
  form.append('file', new Blob([wav], { type: 'audio/wav' }), opts.fileName ?? 'audio.wav');
  const res = await fetch(`${baseUrl}/v1/speech-sessions/${sessionId}/upload`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A mono PCM16 WAV file of float samples. */
export function wavBytes(samples: Float32Array, sampleRate: number): Buffer {
  return encodeWavPcm16(samples, sampleRate, 1);
}

/** Listens to `/v1/speech-sessions/{id}/stream` and keeps every event with its arrival time. */
export class SpeechEventListener {
  readonly events: ReceivedEvent[] = [];
  private waiters: Array<() => void> = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as SpeechEventMessage;
      this.events.push({ at: performance.now(), msg });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(baseUrl: string, token: string, sessionId: string): Promise<SpeechEventListener> {
    const ws = new WebSocket(wsUrl(baseUrl, `/v1/speech-sessions/${sessionId}/stream`, token));
    const listener = new SpeechEventListener(ws);
    await listener.waitFor((e) => e.msg.type === 'subscribed', 10_000, 'subscribed');
    return listener;
  }

  of(type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.msg.type === type);
  }

  /** Resolves with the first event matching `pred` (already received or arriving). */
  waitFor(pred: (e: ReceivedEvent) => boolean, timeoutMs: number, what: string): Promise<ReceivedEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const check = () => {
        const hit = this.events.find(pred);
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  close(): void {
    this.ws.close();
  }
}

export interface LiveStreamResult {
  /** performance.now() when the start message was acknowledged (the audio's time origin). */
  startedAt: number;
  /** performance.now() when stop was sent (withoutStop: when the last audio was). */
  stoppedAt: number;
  stopped: { stream_id: string; samples: number; duration_s: number };
  /** The started message's stream id. */
  streamId: string;
}

/**
 * Streams `samples` (mono, at `sampleRate`) to `/v1/ingest/audio/{id}` as PCM16 messages of
 * `chunkMs`, each sent when its audio would have been spoken (real-time pace), then stops.
 * withoutStop: leaves the socket open after the audio and resolves at once (`stopped` has no
 * samples); `onOpenSocket` gets the socket to end it.
 */
export async function streamLiveAudio(
  baseUrl: string,
  token: string,
  sessionId: string,
  samples: Float32Array,
  sampleRate: number,
  opts: { chunkMs?: number; realtime?: boolean; onSent?: (sentMs: number) => void; withoutStop?: boolean; onOpenSocket?: (ws: WebSocket) => void } = {},
): Promise<LiveStreamResult> {
  const ws = new WebSocket(wsUrl(baseUrl, `/v1/ingest/audio/${sessionId}`, token));
  const replies: any[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    replies.push(JSON.parse(String(data)));
    wake?.();
  });
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  const next = async (type: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = replies.findIndex((r) => r.type === type || r.type === 'error');
      if (i >= 0) {
        const r = replies.splice(i, 1)[0];
        if (r.type === 'error') throw new Error(`live audio: ${JSON.stringify(r.error)}`);
        return r;
      }
      if (Date.now() > deadline) throw new Error(`live audio: no ${type} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  };
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  opts.onOpenSocket?.(ws);
  ws.send(JSON.stringify({ type: 'start', sample_rate: sampleRate, encoding: 'pcm16' }));
  const { stream_id: streamId } = await next('started');
  const startedAt = performance.now();
  const chunk = Math.round(((opts.chunkMs ?? 20) * sampleRate) / 1000);
  for (let at = 0; at < samples.length; at += chunk) {
    if (opts.realtime !== false) {
      // Pace: the chunk ending at `at + chunk` is sent when that much audio has been "spoken".
      const due = startedAt + ((at + chunk) * 1000) / sampleRate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    ws.send(toPcm16(samples.subarray(at, Math.min(samples.length, at + chunk))));
    opts.onSent?.(((Math.min(samples.length, at + chunk)) * 1000) / sampleRate);
  }
  const stoppedAt = performance.now();
  if (opts.withoutStop) return { startedAt, stoppedAt, stopped: { stream_id: streamId, samples: 0, duration_s: 0 }, streamId };
  ws.send(JSON.stringify({ type: 'stop' }));
  const stopped = await next('stopped');
  await closed;
  return { startedAt, stoppedAt, stopped, streamId };
}
