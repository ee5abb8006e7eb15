// A refused audio upload is answered to a client that is still sending the file, and the
// connection stays usable. The routes refuse a file from its first bytes (an M4A, a WAV
// declaring more than the limit) while the rest is on its way; they closed the connection with
// the body half read, the kernel reset it, and a client still writing got EPIPE: Node's fetch
// (undici) failed with "fetch failed" instead of reading the 415 or 413, often (a walkthrough
// against `attune all`: 2 of 3 tries of a 36 KB M4A), while curl happened to read it. Now the
// rest is read and dropped (http/refused-body.ts), bounded, and the connection takes the
// client's next request. The client here is a raw socket that reads the answer before it sends
// the rest of the file, so the order is fixed, not left to timing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { startIngestTestServer, wavHeader, type IngestTestServer } from './speech-ingest.test-util.js';

const m4a = readFileSync(new URL('../../test/fixtures/audio-formats/jfk.m4a', import.meta.url));
const REST = 8 * 1024 * 1024;
const BOUNDARY = 'attune-refused-body';

let srv: IngestTestServer;
before(async () => {
  srv = await startIngestTestServer({
    keepAudio: false,
    speechToText: {
      transcribe: async (samples) => ({ text: 'ok', language: 'en', confidence: 1, duration_seconds: samples.length / 16000, words: [], model: 'stub', segments: [] }),
      close: async () => {},
    },
  });
});
after(async () => {
  await srv?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: any;
}

/** Reads HTTP answers off one socket, in order; fails on the socket's end or error. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiting: { resolve: (a: Answer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.deliver();
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      this.waiting?.reject(e);
      this.waiting = null;
    };
    this.socket.on('error', fail);
    this.socket.on('end', () => fail(new Error('the server closed the connection')));
  }
  private deliver(): void {
    if (!this.waiting) return;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const [statusLine, ...lines] = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const length = Number(headers['content-length']);
    if (this.buf.length < end + 4 + length) return;
    const body = JSON.parse(this.buf.subarray(end + 4, end + 4 + length).toString('utf8'));
    this.buf = this.buf.subarray(end + 4 + length);
    const w = this.waiting;
    this.waiting = null;
    w.resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
  }
  answer(): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }
}

/** A multipart POST of `file` (field "file"): the request head and the part up to the file's bytes, the file, the closing boundary. */
function multipartRequest(path: string, token: string, fileLength: number) {
  const partHead = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="clip"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  const head = Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: attune\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${partHead.length + fileLength + tail.length}\r\n\r\n`,
  );
  return { head: Buffer.concat([head, partHead]), tail };
}

/** Sends `first` of a file of `first.length + REST` bytes, reads the answer, then sends the rest: the refusal comes while the client still has 8 MB to send. */
async function refusedThenRest(client: RawClient, path: string, token: string, first: Buffer): Promise<Answer> {
  const req = multipartRequest(path, token, first.length + REST);
  await client.write(Buffer.concat([req.head, first]));
  const answer = await client.answer();
  await client.write(Buffer.alloc(REST));
  await client.write(req.tail);
  return answer;
}

async function sttOk(client: RawClient, token: string): Promise<Answer> {
  const wav = Buffer.concat([wavHeader({ sampleRate: 16000, channels: 1, bitsPerSample: 16, formatTag: 1, dataBytes: 32000 }), Buffer.alloc(32000)]);
  const req = multipartRequest('/v1/speech/stt', token, wav.length);
  await client.write(Buffer.concat([req.head, wav, req.tail]));
  return client.answer();
}

test('POST /v1/speech/stt: a refused file is answered while the client still sends it, and the connection serves the next request', async () => {
  const token = srv.token('u-rb', 'o-rb');
  const client = new RawClient(Number(new URL(srv.baseUrl).port));
  try {
    const mp4 = await refusedThenRest(client, '/v1/speech/stt', token, m4a);
    assert.equal(mp4.status, 415, JSON.stringify(mp4.body));
    assert.equal(mp4.body.error.details[0].reason, 'unsupported_format');
    // A WAV whose header declares 70 s: 413 from the header.
    const long = await refusedThenRest(client, '/v1/speech/stt', token, wavHeader({ sampleRate: 16000, channels: 1, bitsPerSample: 16, formatTag: 1, dataBytes: 70 * 32000 }));
    assert.equal(long.status, 413, JSON.stringify(long.body));
    assert.equal(long.body.error.details[0].reason, 'too_long');
    const ok = await sttOk(client, token);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.duration_seconds, 1);
  } finally {
    client.socket.destroy();
  }
});

test('POST /v1/speech-sessions/{id}/upload: a refused file is answered while the client still sends it, and the connection serves the next request', async () => {
  const token = srv.token('u-rb', 'o-rb');
  const session = await srv.newSession('u-rb', 'o-rb');
  const client = new RawClient(Number(new URL(srv.baseUrl).port));
  try {
    const mp4 = await refusedThenRest(client, `/v1/speech-sessions/${session.id}/upload`, token, m4a);
    assert.equal(mp4.status, 415, JSON.stringify(mp4.body));
    assert.equal(mp4.body.error.details[0].reason, 'unsupported_format');
    const ok = await sttOk(client, token);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  } finally {
    client.socket.destroy();
  }
});
