// Issue 13's audio formats and synchronous speech-to-text end to end on the embedded default
// (in-process bus, chDB, every role in one process):
//   - the JFK clip uploaded as WAV and as MP3, Ogg Opus, WebM Opus (and WebM as a browser's
//     MediaRecorder writes it, elements of unknown size) is analysed to the same transcript;
//   - an MP4/AAC file is 415 naming the accepted formats, a cut-off file a coded 400, and the
//     session takes a good file afterwards;
//   - POST /v1/speech/stt answers the communication platform's fields for each format, with the
//     upload's transcript; over 60 s is 413 pointing at the upload route.
// The encoded clips are committed (test/fixtures/audio-formats, ~300 KB; remade by
// scripts/fixtures/make-audio-format-clips.sh with ffmpeg, which Attune never runs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { getTestServices } from './services.js';
import { startTestAttune, waitFor, type TestAttune } from './attune.js';
import { createSpeechSession } from './speech-client.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { encodeWavPcm16 } from '../pipelines/speech/wav.test-util.js';

const fixtures = new URL('./fixtures/audio-formats/', import.meta.url);
const clip = (name: string) => readFileSync(new URL(name, fixtures));
const wavPath = new URL('../../shared/data/speech/jfk_1961_inaugural_M.wav', import.meta.url).pathname;

const ENCODED = [
  { file: 'jfk.mp3', type: 'audio/mpeg' },
  { file: 'jfk.opus.ogg', type: 'audio/ogg' },
  { file: 'jfk.webm', type: 'audio/webm' },
  // A browser sends its MediaRecorder blob; the type is not what tells the format.
  { file: 'jfk.live.webm', type: 'application/octet-stream' },
];

async function postFile(app: TestAttune, path: string, token: string, bytes: Uint8Array, name: string, type: string, field = 'file') {
  const form = new FormData();
  form.append(field, new Blob([bytes], { type }), name);
  const res = await fetch(`${app.baseUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

function expectError(res: { status: number; body: any }, status: number, code: string, reason: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error.code, code);
  assert.equal(res.body.error.details[0]?.reason, reason, JSON.stringify(res.body.error.details));
}

describe('audio formats and speech to text, embedded', () => {
  let app: TestAttune;
  let token: string;
  before(async () => {
    const services = await getTestServices({ needKafka: false });
    app = await startTestAttune({ clickhouseUrl: services.clickhouseUrl });
    token = app.token('fmt-user', 'fmt-org');
  });
  after(async () => {
    await app?.cleanup();
  });

  async function uploadAndTranscript(bytes: Uint8Array, name: string, type: string) {
    const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: name });
    const up = await postFile(app, `/v1/speech-sessions/${session.id}/upload`, token, bytes, name, type);
    assert.equal(up.status, 202, `${name}: ${JSON.stringify(up.body)}`);
    const status = await waitFor(
      `${name} analysed`,
      async () => {
        const r = await app.request('GET', `/v1/speech-sessions/${session.id}/upload/${up.body.upload_id}/status`, { token });
        return r.body.status === 'completed' || r.body.status === 'failed' ? r.body : null;
      },
      180_000,
      200,
    );
    assert.equal(status.status, 'completed', JSON.stringify(status));
    const t = await app.request('GET', `/v1/speech-sessions/${session.id}/transcript`, { token });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    return { status, text: t.body.text as string, sessionId: session.id };
  }

  let wavText = '';

  test('MP3, Ogg Opus and WebM Opus uploads are analysed to the same transcript as the WAV original', async (tc) => {
    const wav = await uploadAndTranscript(readFileSync(wavPath), 'jfk.wav', 'audio/wav');
    wavText = wav.text;
    tc.diagnostic(`WAV: "${wav.text}"`);
    assert.ok(wav.text.split(' ').length >= 15, 'the original has its transcript');
    for (const f of ENCODED) {
      const got = await uploadAndTranscript(clip(f.file), f.file, f.type);
      tc.diagnostic(`${f.file}: encoding ${got.status.encoding}, ${got.status.sample_rate_hz} Hz, ${got.status.audio_duration_s} s: "${got.text}"`);
      assert.equal(got.text, wav.text, `${f.file}: same transcript as the WAV`);
      assert.equal(got.status.encoding, f.file.endsWith('.mp3') ? 'mp3' : 'opus');
      assert.ok(Math.abs(got.status.audio_duration_s - 11) < 0.03, `${f.file}: ${got.status.audio_duration_s} s`);
    }
  });

  test('an MP4/AAC upload is 415 naming the accepted formats; a cut-off Ogg is 400; the session then takes a good file', async () => {
    const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'refusals' });
    const path = `/v1/speech-sessions/${session.id}/upload`;
    const m4a = await postFile(app, path, token, clip('jfk.m4a'), 'jfk.m4a', 'audio/mp4');
    expectError(m4a, 415, 'unsupported_media_type', 'unsupported_format');
    assert.deepEqual(m4a.body.error.details[0].accepted, ['WAV (PCM16 or float32)', 'MP3', 'Ogg Opus', 'WebM Opus']);
    const ogg = clip('jfk.opus.ogg');
    const cut = await postFile(app, path, token, ogg.subarray(0, Math.floor(ogg.length / 2)), 'cut.ogg', 'audio/ogg');
    expectError(cut, 400, 'validation_error', 'truncated_audio');
    const ok = await postFile(app, path, token, clip('jfk.mp3'), 'jfk.mp3', 'audio/mpeg');
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
  });

  test('POST /v1/speech/stt: the documented fields for every format, with the upload transcript', async (tc) => {
    assert.ok(wavText, 'runs after the upload test');
    for (const f of [{ file: 'jfk.wav', type: 'audio/wav' }, ...ENCODED]) {
      const bytes = f.file === 'jfk.wav' ? readFileSync(wavPath) : clip(f.file);
      const started = performance.now();
      const res = await postFile(app, '/v1/speech/stt', token, bytes, f.file, f.type);
      assert.equal(res.status, 200, `${f.file}: ${JSON.stringify(res.body)}`);
      const b = res.body;
      tc.diagnostic(`${f.file}: ${(performance.now() - started).toFixed(0)} ms, confidence ${b.confidence}, ${b.words.length} words`);
      assert.equal(b.text, wavText, `${f.file}: the upload's transcript`);
      assert.equal(b.language, 'en');
      assert.ok(b.confidence === null || (b.confidence >= 0 && b.confidence <= 1));
      assert.ok(Math.abs(b.duration_seconds - 11) < 0.03, `${b.duration_seconds}`);
      assert.equal(b.words.length, wavText.split(' ').length);
      let previous = 0;
      // The document's words carry no punctuation; `text` is the word as written, and the words as written are the text.
      assert.deepEqual(b.words.map((w: { text: string }) => w.text).join(' '), wavText);
      for (const w of b.words) {
        assert.equal(typeof w.word, 'string');
        assert.match(w.word, /^[\p{L}\p{N}].*[\p{L}\p{N}]$|^[\p{L}\p{N}]$/u, `"${w.word}" has no punctuation around it`);
        assert.ok(w.start >= previous - 0.001 && w.end >= w.start && w.end <= b.duration_seconds + 0.001, `${w.word} ${w.start}-${w.end} in seconds, in order`);
        previous = w.start;
      }
    }
  });

  test('POST /v1/speech/stt: over 60 s is 413 pointing at the upload route; other refusals are coded', async () => {
    // 66 s: the JFK clip six times. The WAV header declares it, so nothing is decoded.
    const one = readWavFile(wavPath).samples;
    const long = new Float32Array(one.length * 6);
    for (let i = 0; i < 6; i++) long.set(one, i * one.length);
    const tooLong = await postFile(app, '/v1/speech/stt', token, encodeWavPcm16(long, 16000, 1), 'long.wav', 'audio/wav');
    expectError(tooLong, 413, 'payload_too_large', 'too_long');
    assert.equal(tooLong.body.error.details[0].upload_route, '/v1/speech-sessions/{id}/upload');
    assert.match(tooLong.body.error.message, /\/v1\/speech-sessions/);
    expectError(await postFile(app, '/v1/speech/stt', token, clip('jfk.m4a'), 'jfk.m4a', 'audio/mp4'), 415, 'unsupported_media_type', 'unsupported_format');
    const ogg = clip('jfk.opus.ogg');
    expectError(await postFile(app, '/v1/speech/stt', token, ogg.subarray(0, 9000), 'cut.ogg', 'audio/ogg'), 400, 'validation_error', 'truncated_audio');
    const json = await app.request('POST', '/v1/speech/stt', { token, body: { audio: 'x' } });
    expectError(json, 415, 'unsupported_media_type', 'not_multipart');
    const noScope = await postFile(app, '/v1/speech/stt', app.token('fmt-user', 'fmt-org', ['read:speech']), clip('jfk.mp3'), 'jfk.mp3', 'audio/mpeg');
    expectError(noScope, 403, 'forbidden', 'missing_scope');
    const form = new FormData();
    form.append('file', new Blob([clip('jfk.mp3')]), 'jfk.mp3');
    const anonymous = await fetch(`${app.baseUrl}/v1/speech/stt`, { method: 'POST', body: form });
    assert.equal(anonymous.status, 401);
  });
});
