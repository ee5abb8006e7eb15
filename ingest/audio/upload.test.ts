// Speech file uploads end to end on chDB and the embedded bus: real clips (and files made
// here in other rates, channel counts and encodings) become SpeechAudioFrame records whose
// audio is exactly the resampled file; bad files, sessions and tokens get coded refusals,
// and a failed upload leaves the session free for another try.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadConfig, ConfigError } from '../../lib/config.js';
import { parseWav } from '../../pipelines/speech/wav.test-util.js';
import { resample } from './resample.js';
import { toPcm16, MAX_FRAME_BYTES } from '../../schemas/audio-frames.js';
import {
  encodeWav,
  injectUpload,
  startIngestTestServer,
  streamPcm,
  wavHeader,
  wavPart,
  type FormPart,
  type IngestTestServer,
} from './speech-ingest.test-util.js';
import type { FastifyInstance } from 'fastify';

const data = new URL('../../../shared/data/', import.meta.url).pathname;
const clip = (name: string) => readFileSync(`${data}speech/${name}`);

let srv: IngestTestServer;
before(async () => {
  srv = await startIngestTestServer();
});
after(async () => {
  await srv?.close();
});

/** What the bus must carry for a WAV file: its mono mix resampled to 16 kHz, as PCM16. */
function expectedPcm(wav: Buffer): Buffer {
  const { samples, sampleRate } = parseWav(wav);
  return toPcm16(resample(samples, sampleRate, 16000));
}

/** A real clip at 16 kHz made into other files: rate, channels and encoding. */
function variants() {
  const jfk = parseWav(clip('jfk_1961_inaugural_M.wav')).samples;
  const up48 = resample(jfk, 16000, 48000);
  const up44 = resample(jfk.subarray(0, 16000 * 4), 16000, 44100);
  const right48 = up48.map((v) => -0.5 * v);
  const right44 = up44.map((v) => 0.25 * v);
  return {
    'jfk_float32_stereo_48k.wav': encodeWav([up48, right48], 48000, 'float32'),
    'jfk_pcm16_stereo_44k1.wav': encodeWav([up44, right44], 44100, 'pcm16'),
  };
}

async function uploadAndCollect(app: FastifyInstance, file: Buffer, name: string, extra: { metadataFirst?: object; metadataAfter?: object } = {}) {
  const session = await srv.newSession('u-up', 'o-up', { pause_ms: 300, model: 'moonshine-tiny' });
  const token = srv.token('u-up', 'o-up');
  const parts: FormPart[] = [];
  if (extra.metadataFirst) parts.push({ name: 'metadata', value: JSON.stringify(extra.metadataFirst) });
  parts.push(wavPart(file, name));
  if (extra.metadataAfter) parts.push({ name: 'metadata', value: JSON.stringify(extra.metadataAfter), contentType: 'application/json' });
  const before = Date.now();
  const res = await injectUpload(app, session.id, token, parts);
  return { session, res, before, after: Date.now() };
}

describe('uploads of real and converted clips', () => {
  const files: Array<[string, Buffer]> = [
    ['jfk_1961_inaugural_M.wav', clip('jfk_1961_inaugural_M.wav')],
    ['librispeech_3536-23268-0010_F.wav', clip('librispeech_3536-23268-0010_F.wav')],
    ['speechcommands_yes_no_go_stop_4spk.wav', clip('speechcommands_yes_no_go_stop_4spk.wav')],
    ['mic_F01_sa1.wav (48 kHz)', readFileSync(`${data}pitch/mic_F01_sa1.wav`)],
    ...Object.entries(variants()),
  ];
  for (const [name, file] of files) {
    test(`${name}: frames carry exactly the resampled audio; rows and the 202 answer describe it`, async () => {
      const header = parseWav(file);
      const { session, res, before, after } = await uploadAndCollect(srv.app, file, name, name.startsWith('jfk_float') ? { metadataAfter: { device: 'phone', take: 2 } } : { metadataFirst: { device: 'laptop' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const uploadId = res.body.upload_id as string;
      const { success, data, meta, ...attune } = res.body;
      assert.deepEqual(attune, {
        upload_id: uploadId,
        session_id: session.id,
        status: 'processing',
        status_url: `/v1/speech-sessions/${session.id}/upload/${uploadId}/status`,
      });
      // The speech-coaching document's answer (C1): uploadId, status, progress (percent), estimatedTime (s).
      assert.equal(success, true);
      assert.equal(typeof meta.requestId, 'string');
      assert.equal(data.uploadId, uploadId);
      assert.ok(['processing', 'completed', 'failed'].includes(data.status), data.status);
      assert.ok(data.progress >= 0 && data.progress <= 100 && data.estimatedTime >= 0, JSON.stringify(data));

      const stream = await srv.frames.finished(uploadId);
      const frames = [...stream.frames].sort((a, b) => a.sequence - b.sequence);
      const expected = expectedPcm(file);
      assert.ok(streamPcm(stream).equals(expected), `audio differs (${streamPcm(stream).length} vs ${expected.length} bytes)`);
      let offset = 0;
      frames.forEach((f, i) => {
        assert.equal(f.sequence, i, 'sequences are 0, 1, 2…');
        assert.equal(f.sample_offset, offset, 'sample_offset continues the previous frame');
        offset += f.pcm16.length / 2;
        assert.ok(f.pcm16.length <= MAX_FRAME_BYTES && f.pcm16.length <= 64000, `frame ${i} carries ${f.pcm16.length} bytes`);
        if (i < frames.length - 1) assert.equal(f.pcm16.length, 64000, 'every frame but the last is a full 2 s');
        assert.equal(f.is_last, i === frames.length - 1);
        assert.equal(f.aborted_reason, null);
        assert.equal(f.session_id, session.id);
        assert.equal(f.org_id, 'o-up');
        assert.equal(f.user_id, 'u-up');
        assert.equal(f.source, 'upload');
        assert.equal(f.source_sample_rate_hz, header.sampleRate);
        assert.equal(f.expected_samples, expected.length / 2, 'expected_samples from the header, at 16 kHz');
        assert.deepEqual(JSON.parse(f.settings_json!), { pause_ms: 300, model: 'moonshine-tiny' });
        assert.ok(f.audio_started_at >= before && f.audio_started_at <= after);
        assert.ok(f.sent_at >= f.audio_started_at && f.sent_at <= after);
      });
      assert.deepEqual([...srv.frames.keys.get(uploadId)!], [session.id], 'keyed by session');

      const durationS = header.samples.length / header.sampleRate;
      const upload = (await srv.uploads.get(uploadId))!;
      assert.equal(upload.status, 'processing');
      assert.equal(upload.stage, 'receiving');
      assert.equal(upload.sizeBytes, file.length);
      assert.equal(upload.encoding, name.includes('float32') ? 'float32' : 'pcm16');
      assert.equal(upload.channelCount, header.channels);
      assert.equal(upload.sampleRateHz, header.sampleRate);
      assert.ok(Math.abs(upload.audioDurationS! - durationS) < 1e-9);
      assert.equal(upload.fileName, name);
      assert.deepEqual(upload.metadata, name.startsWith('jfk_float') ? { device: 'phone', take: 2 } : { device: 'laptop' });
      const s = (await srv.sessions.get(session.id))!;
      assert.equal(s.status, 'processing');
      assert.equal(s.source, 'upload');
      assert.equal(s.sampleRateHz, header.sampleRate);
      assert.equal(s.startedAt, frames[0].audio_started_at);
      assert.ok(s.endedAt !== null && s.endedAt >= s.startedAt!);
      assert.ok(Math.abs(s.audioDurationS! - durationS) < 1e-9);

      const status = await srv.app.inject({ method: 'GET', url: res.body.status_url, headers: { authorization: `Bearer ${srv.token('u-up', 'o-up', ['read:speech'])}` } });
      assert.equal(status.statusCode, 200);
      const st = status.json();
      assert.equal(st.upload_id, uploadId);
      assert.equal(st.session_id, session.id);
      assert.equal(st.status, 'processing');
      assert.equal(st.size_bytes, file.length);
      assert.equal(st.channel_count, header.channels);
      assert.equal(st.sample_rate_hz, header.sampleRate);
      assert.equal(st.file_name, name);
      assert.equal(st.error, null);
      assert.equal(st.completed_at, null);
      assert.equal(typeof st.created_at, 'string');
      assert.ok(Date.parse(st.updated_at) >= Date.parse(st.created_at));
      // The document's status: the transfer is complete (all bytes in), the analysis has its own status.
      assert.deepEqual(
        [st.data.uploadId, st.data.status, st.data.progress, st.data.fileSize, st.data.uploadedBytes, st.data.processingStatus],
        [uploadId, 'completed', 100, file.length, file.length, 'processing'],
      );
    });
  }
});

describe('refusals', () => {
  const token = () => srv.token('u-bad', 'o-bad');
  const expectError = (res: { status: number; body: any }, status: number, code: string, reason?: string, field?: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error.code, code);
    assert.equal(typeof res.body.error.message, 'string');
    assert.equal(typeof res.body.error.request_id, 'string');
    if (reason !== undefined) assert.equal(res.body.error.details[0]?.reason, reason, JSON.stringify(res.body.error.details));
    if (field !== undefined) assert.equal(res.body.error.details[0]?.field, field);
  };
  const small = readFileSync(`${data}speech/librispeech_251-137823-0002_M.wav`);

  /** The session is untouched (a refused file never claims it) and takes a good upload after. */
  async function assertSessionStillFree(sessionId: string) {
    const s = (await srv.sessions.get(sessionId))!;
    assert.ok(s.status === 'created' || s.status === 'failed', `status ${s.status}`);
    const ok = await injectUpload(srv.app, sessionId, token(), [wavPart(small)]);
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
  }

  test('a broken header is 400 naming the reason; the upload is failed, the session still free', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    const notWave = Buffer.concat([small.subarray(0, 8), Buffer.from('AVI '), small.subarray(12)]);
    const res = await injectUpload(srv.app, s.id, token(), [wavPart(notWave)]);
    expectError(res, 400, 'validation_error', 'not_wave', 'file');
    // First bytes of no accepted format: not a broken WAV but another kind of file (decoders/).
    const junk = Buffer.concat([Buffer.from('JUNK'), small.subarray(4)]);
    expectError(await injectUpload(srv.app, s.id, token(), [wavPart(junk)]), 415, 'unsupported_media_type', 'unsupported_format', 'file');
    const cut = await injectUpload(srv.app, s.id, token(), [wavPart(small.subarray(0, 10))]);
    expectError(cut, 400, 'validation_error', 'truncated_header');
    await assertSessionStillFree(s.id);
  });

  test('8-bit PCM and ADPCM are 415', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    const pcm8 = encodeWav([new Float32Array(8000).fill(0.1)], 8000, 'pcm8');
    expectError(await injectUpload(srv.app, s.id, token(), [wavPart(pcm8)]), 415, 'unsupported_media_type', 'unsupported_encoding', 'file');
    const adpcm = Buffer.concat([wavHeader({ sampleRate: 16000, channels: 1, bitsPerSample: 4, formatTag: 2, dataBytes: 1024 }), Buffer.alloc(1024)]);
    expectError(await injectUpload(srv.app, s.id, token(), [wavPart(adpcm)]), 415, 'unsupported_media_type', 'unsupported_encoding', 'file');
    await assertSessionStillFree(s.id);
  });

  test('over the size limit (from config) is 413, whether the header says so or the body runs over', async () => {
    const limits = loadConfig({ ATTUNE_SPEECH_UPLOAD_MAX_BYTES: String(64 * 1024), ATTUNE_SPEECH_UPLOAD_MAX_DURATION_S: '60' }).speechUpload;
    assert.deepEqual(limits, { maxBytes: 65536, maxDurationS: 60 });
    const app = await srv.withLimits(limits);
    const s = await srv.newSession('u-bad', 'o-bad');
    // Declared: refused on the header, before any audio.
    const declared = await injectUpload(app, s.id, token(), [wavPart(small)]);
    expectError(declared, 413, 'payload_too_large', 'too_large', 'file');
    assert.equal(declared.body.error.details[0].max_bytes, 65536);
    assert.equal((await srv.sessions.get(s.id))!.status, 'created');

    // Streamed (size unknown in the header): the multipart limit cuts the file after frames
    // went out, so the stream is aborted and the session failed, free for another upload.
    const streamed = Buffer.concat([wavHeader({ sampleRate: 16000, channels: 1, bitsPerSample: 16, formatTag: 1, dataBytes: 0xffffffff }), small.subarray(44)]);
    const res = await injectUpload(app, s.id, token(), [wavPart(streamed)]);
    expectError(res, 413, 'payload_too_large', 'too_large', 'file');
    const upload = await failedUploadOf(s.id);
    assert.equal(upload.errorCode, 'payload_too_large');
    const stream = await srv.frames.finished(upload.id);
    assert.equal(stream.last!.aborted_reason, 'too_large');
    assert.equal(stream.last!.pcm16.length, 0);
    assert.ok(stream.frames.length >= 2, 'audio frames went out before the limit');
    assert.equal((await srv.sessions.get(s.id))!.status, 'failed');
    await assertSessionStillFree(s.id);
  });

  test('longer than the duration limit is 413 naming the duration', async () => {
    const app = await srv.withLimits(loadConfig({ ATTUNE_SPEECH_UPLOAD_MAX_DURATION_S: '2' }).speechUpload);
    const s = await srv.newSession('u-bad', 'o-bad');
    const res = await injectUpload(app, s.id, token(), [wavPart(small)]);
    expectError(res, 413, 'payload_too_large', 'too_long', 'file');
    assert.equal(res.body.error.details[0].max_duration_s, 2);
    assert.ok(Math.abs(res.body.error.details[0].declared_duration_s - 3.13) < 0.01);
    await assertSessionStillFree(s.id);
  });

  test('config refuses bad limits naming the variable', () => {
    assert.throws(() => loadConfig({ ATTUNE_SPEECH_UPLOAD_MAX_BYTES: '12MB' }), (e: unknown) => e instanceof ConfigError && e.variable === 'ATTUNE_SPEECH_UPLOAD_MAX_BYTES');
    assert.throws(() => loadConfig({ ATTUNE_SPEECH_UPLOAD_MAX_DURATION_S: '0' }), (e: unknown) => e instanceof ConfigError && e.variable === 'ATTUNE_SPEECH_UPLOAD_MAX_DURATION_S');
    assert.deepEqual(loadConfig({}).speechUpload, { maxBytes: 200 * 1024 * 1024, maxDurationS: 4 * 3600 });
  });

  test('a missing file field is 400; so is a file in another field', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    expectError(await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: '{}' }]), 400, 'validation_error', 'required', 'file');
    expectError(await injectUpload(srv.app, s.id, token(), [{ ...wavPart(small), name: 'audio' }]), 400, 'validation_error', 'unexpected_file_field', 'audio');
    expectError(await injectUpload(srv.app, s.id, token(), [{ name: 'file', value: 'not a file part' }]), 400, 'validation_error', 'not_a_file', 'file');
    await assertSessionStillFree(s.id);
  });

  test('metadata that is not a JSON object is 400 naming the field, before or after the file', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    const notJson = await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: '{nope' }, wavPart(small)]);
    expectError(notJson, 400, 'validation_error', 'invalid_metadata', 'metadata');
    assert.equal(notJson.body.error.details[0].message, 'not valid JSON');
    const notObject = await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: '[1,2]' }, wavPart(small)]);
    expectError(notObject, 400, 'validation_error', 'invalid_metadata', 'metadata');
    assert.equal(notObject.body.error.details[0].message, 'not an object');
    assert.equal((await srv.sessions.get(s.id))!.status, 'created', 'refused before the file: nothing claimed');
    // After the file the audio is on the bus already: the stream is aborted, the session failed.
    const res = await injectUpload(srv.app, s.id, token(), [wavPart(small), { name: 'metadata', value: '"text"' }]);
    expectError(res, 400, 'validation_error', 'invalid_metadata', 'metadata');
    assert.equal(res.body.error.details[0].message, 'not an object');
    const upload = await failedUploadOf(s.id);
    const stream = await srv.frames.finished(upload.id);
    assert.equal(stream.last!.aborted_reason, 'invalid_metadata');
    assert.equal((await srv.sessions.get(s.id))!.status, 'failed');
    // Sent as application/json, the multipart plugin parses it and reports a bad one only
    // when the body ends: after the file, so that stream is aborted the same way.
    const s2 = await srv.newSession('u-bad', 'o-bad');
    const bad = await injectUpload(srv.app, s2.id, token(), [{ name: 'metadata', value: '{nope', contentType: 'application/json' }, wavPart(small)]);
    expectError(bad, 400, 'validation_error', 'invalid_metadata', 'metadata');
    assert.equal(bad.body.error.details[0].message, 'not valid JSON');
    assert.equal((await srv.frames.finished((await failedUploadOf(s2.id)).id)).last!.aborted_reason, 'invalid_metadata');
    await assertSessionStillFree(s.id);
    await assertSessionStillFree(s2.id);
  });

  test('a float WAV with a NaN sample is 400 naming its time; the upload is failed, the session free again', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    const samples = new Float32Array(48_000).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 48_000));
    samples[36_000] = Number.NaN; // 0.75 s
    const res = await injectUpload(srv.app, s.id, token(), [wavPart(encodeWav([samples], 48_000, 'float32'))]);
    expectError(res, 400, 'validation_error', 'non_finite_sample', 'file');
    assert.equal(res.body.error.details[0].at_s, 0.75);
    assert.match(res.body.error.message, /at 0\.75 s/);
    assert.equal((await failedUploadOf(s.id)).errorCode, 'validation_error');
    await assertSessionStillFree(s.id);
  });

  test('metadata over the stored-JSON cap (16 KB) or nested over 32 levels is 400 naming the field; at the cap it is stored', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    const atCap = { k: 'x'.repeat(16_384 - '{"k":""}'.length) };
    assert.equal(Buffer.byteLength(JSON.stringify(atCap)), 16_384);
    const over = { k: 'x'.repeat(16_384 - '{"k":""}'.length + 1) };
    const big = await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: JSON.stringify(over) }, wavPart(small)]);
    expectError(big, 400, 'validation_error', 'json_too_large', 'metadata');
    assert.equal(big.body.error.details[0].max_bytes, 16_384);
    let deep: unknown = 1;
    for (let i = 0; i < 33; i++) deep = { d: deep };
    expectError(await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: JSON.stringify(deep) }, wavPart(small)]), 400, 'validation_error', 'json_too_deep', 'metadata');
    // Thousands deep, as text or as a JSON part: the same 400, never a 500.
    const thousands = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
    expectError(await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: thousands }, wavPart(small)]), 400, 'validation_error', 'json_too_deep', 'metadata');
    expectError(
      await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: thousands, contentType: 'application/json' }, wavPart(small)]),
      400, 'validation_error', 'json_too_deep', 'metadata',
    );
    assert.equal((await srv.sessions.get(s.id))!.status, 'created', 'refused before the file: nothing claimed');
    const ok = await injectUpload(srv.app, s.id, token(), [{ name: 'metadata', value: JSON.stringify(atCap) }, wavPart(small)]);
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.deepEqual((await srv.uploads.get(ok.body.upload_id))!.metadata, atCap);
  });

  test('someone else\'s or an unknown session is 404; a session with audio is 409', async () => {
    const s = await srv.newSession('u-owner', 'o-bad');
    expectError(await injectUpload(srv.app, s.id, token(), [wavPart(small)]), 404, 'not_found');
    expectError(await injectUpload(srv.app, s.id, srv.token('u-owner', 'o-other'), [wavPart(small)]), 404, 'not_found');
    expectError(await injectUpload(srv.app, 'no-such-session', token(), [wavPart(small)]), 404, 'not_found');
    const ownerToken = srv.token('u-owner', 'o-bad');
    assert.equal((await injectUpload(srv.app, s.id, ownerToken, [wavPart(small)])).status, 202);
    const again = await injectUpload(srv.app, s.id, ownerToken, [wavPart(small)]);
    expectError(again, 409, 'conflict');
    // An org admin may upload to a session of the org (and is refused the same way here).
    expectError(await injectUpload(srv.app, s.id, srv.token('u-admin', 'o-bad', ['write:speech', 'admin:org']), [wavPart(small)]), 409, 'conflict');
  });

  test('a token without write:speech is 403; no token 401; a JSON body 415', async () => {
    const s = await srv.newSession('u-bad', 'o-bad');
    const res = await injectUpload(srv.app, s.id, srv.token('u-bad', 'o-bad', ['read:speech']), [wavPart(small)]);
    expectError(res, 403, 'forbidden', 'missing_scope');
    assert.equal(res.body.error.details[0].scope, 'write:speech');
    expectError(await injectUpload(srv.app, s.id, null, [wavPart(small)]), 401, 'unauthorized');
    const json = await srv.app.inject({ method: 'POST', url: `/v1/speech-sessions/${s.id}/upload`, headers: { authorization: `Bearer ${token()}` }, payload: { file: 'x' } });
    expectError({ status: json.statusCode, body: json.json() }, 415, 'unsupported_media_type', 'not_multipart');
    await assertSessionStillFree(s.id);
  });

  test('upload status: 404 for unknown, foreign or another session\'s uploads; 403 without read:speech', async () => {
    const a = await srv.newSession('u-st', 'o-st');
    const b = await srv.newSession('u-st', 'o-st');
    const t = srv.token('u-st', 'o-st');
    const up = await injectUpload(srv.app, a.id, t, [wavPart(small)]);
    assert.equal(up.status, 202);
    const get = async (sessionId: string, uploadId: string, tok: string) => {
      const r = await srv.app.inject({ method: 'GET', url: `/v1/speech-sessions/${sessionId}/upload/${uploadId}/status`, headers: { authorization: `Bearer ${tok}` } });
      return { status: r.statusCode, body: r.json() };
    };
    assert.equal((await get(a.id, up.body.upload_id, t)).status, 200);
    expectError(await get(b.id, up.body.upload_id, t), 404, 'not_found');
    expectError(await get(a.id, 'nope', t), 404, 'not_found');
    expectError(await get(a.id, up.body.upload_id, srv.token('u-x', 'o-st')), 404, 'not_found');
    expectError(await get(a.id, up.body.upload_id, srv.token('u-st', 'o-st', ['write:sessions'])), 403, 'forbidden');
    // A failed upload reports its error.
    const failed = await injectUpload(srv.app, b.id, t, [wavPart(Buffer.from('RIFF....WAVEjunk'))]);
    assert.equal(failed.status, 400);
    const row = await failedUploadOf(b.id);
    const st = await get(b.id, row.id, t);
    assert.equal(st.body.status, 'failed');
    assert.deepEqual(st.body.error, { code: 'validation_error', message: failed.body.error.message });
    assert.equal(typeof st.body.completed_at, 'string');
  });
});

/** The session's failed upload (the newest one). */
async function failedUploadOf(sessionId: string) {
  const { rows } = await srv.entities.client.query<{ upload_id: string }>(
    `SELECT upload_id FROM speech_uploads WHERE session_id = $1 AND status = 'failed' ORDER BY created_at DESC LIMIT 1`,
    [sessionId],
  );
  assert.equal(rows.length, 1, 'one failed upload');
  return (await srv.uploads.get(rows[0].upload_id))!;
}
