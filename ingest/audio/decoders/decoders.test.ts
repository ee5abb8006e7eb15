// The audio decoders on real encoded clips (test/fixtures/audio-formats, made from the JFK clip
// of ../shared/data/speech by scripts/fixtures/make-audio-format-clips.sh with ffmpeg): each
// format comes out as the original's audio (its length, and its loudness over time), whatever
// the chunking of the bytes; other formats and codecs are 415 naming the accepted ones; cut-off
// and damaged files are coded 400s; the limits hold before the audio is decoded where the file
// declares its length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AttuneError } from '../../../lib/errors.js';
import { readWavFile } from '../../../pipelines/speech/wav.test-util.js';
import { resample } from '../resample.js';
import { AudioFileDecoder, sniffAudioFormat, ACCEPTED_AUDIO_FORMATS } from './index.js';
import { readMp3FrameHeader } from './mp3.js';
import { Mulberry32 } from '../../../lib/prng.js';

const fixtures = new URL('../../../test/fixtures/audio-formats/', import.meta.url);
const clip = (name: string) => readFileSync(new URL(name, fixtures));
const original = readWavFile(new URL('../../../../shared/data/speech/jfk_1961_inaugural_M.wav', import.meta.url).pathname);

/** The formats and their decoder's frame: the most a decoded length may differ by. */
const FORMATS = [
  { file: 'jfk.mp3', format: 'MP3', encoding: 'mp3', rate: 44100, channels: 2, frameS: 1152 / 44100 },
  { file: 'jfk.opus.ogg', format: 'Ogg Opus', encoding: 'opus', rate: 48000, channels: 1, frameS: 0.02 },
  { file: 'jfk.webm', format: 'WebM Opus', encoding: 'opus', rate: 48000, channels: 1, frameS: 0.02 },
  { file: 'jfk.live.webm', format: 'WebM Opus', encoding: 'opus', rate: 48000, channels: 1, frameS: 0.02 },
] as const;

const LIMITS = { maxBytes: 50 * 1024 * 1024, maxDurationS: 3600 };

async function decodeAll(bytes: Buffer, chunk: number, limits = LIMITS) {
  const d = new AudioFileDecoder(limits);
  const pieces: Float32Array[] = [];
  try {
    for (let i = 0; i < bytes.length; i += chunk) pieces.push(...(await d.push(bytes.subarray(i, i + chunk))));
    pieces.push(...(await d.end()));
  } finally {
    d.free();
  }
  const samples = new Float32Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    samples.set(p, at);
    at += p.length;
  }
  return { samples, info: d.info!, format: d.format, durationS: d.durationS };
}

/** Loudness (RMS) of each 10 ms at 16 kHz. */
function envelope(x: Float32Array): Float64Array {
  const out = new Float64Array(Math.floor(x.length / 160));
  for (let i = 0; i < out.length; i++) {
    let e = 0;
    for (let k = i * 160; k < (i + 1) * 160; k++) e += x[k] * x[k];
    out[i] = Math.sqrt(e / 160);
  }
  return out;
}

function correlation(a: Float64Array, b: Float64Array): number {
  const n = Math.min(a.length, b.length);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

async function rejects(p: Promise<unknown>, status: number, reason: string): Promise<AttuneError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AttuneError, `a coded error, got ${(err as Error)?.stack}`);
    assert.equal(err.statusCode, status, err.message);
    assert.equal(err.details[0]?.reason, reason, JSON.stringify(err.details));
    return err;
  }
  assert.fail(`expected ${status} ${reason}, got no error`);
}

const originalEnvelope = envelope(original.samples);

for (const f of FORMATS) {
  test(`${f.file}: decoded as ${f.format} to the original's length and loudness over time`, async () => {
    const bytes = clip(f.file);
    const out = await decodeAll(bytes, 4096);
    assert.equal(out.format, f.format);
    assert.deepEqual([out.info.sampleRate, out.info.channels, out.info.encoding], [f.rate, f.channels, f.encoding]);
    const originalS = original.samples.length / original.sampleRate;
    assert.ok(Math.abs(out.durationS - originalS) <= f.frameS, `${out.durationS} s vs ${originalS} s`);
    const at16k = resample(out.samples, f.rate, 16000);
    const r = correlation(envelope(at16k), originalEnvelope);
    // The same speech, in place: its loudness contour follows the original's. The control is
    // the same audio 300 ms late, which a decoder that shifted or garbled the audio resembles.
    const shifted = correlation(envelope(at16k).subarray(30), originalEnvelope);
    assert.ok(r >= 0.95, `envelope correlation ${r.toFixed(3)}`);
    assert.ok(shifted < 0.8, `the control (300 ms late) correlates ${shifted.toFixed(3)}`);
  });
}

test("WebM's DiscardPadding is dropped: the WebM clips decode to the Ogg's samples, not one Opus frame's padding more", async () => {
  // The three files hold the same Opus packets (ffmpeg -bitexact, one encoder); the Ogg ends
  // its audio with the last page's granule position, the WebMs with a DiscardPadding of
  // 13.5 ms (648 samples at 48 kHz) on the last BlockGroup.
  const ogg = await decodeAll(clip('jfk.opus.ogg'), 4096);
  assert.equal(ogg.samples.length, 528_000, 'the Ogg is the original 11 s at 48 kHz');
  for (const file of ['jfk.webm', 'jfk.live.webm']) {
    const webm = await decodeAll(clip(file), 4096);
    assert.equal(webm.samples.length, ogg.samples.length, `${file}: ${webm.samples.length} samples`);
    assert.ok(Buffer.from(webm.samples.buffer).equals(Buffer.from(ogg.samples.buffer)), `${file}: the Ogg's samples`);
  }
});

test('the output does not depend on how the bytes are cut (13-byte, 4 KB and whole-file chunks)', async () => {
  for (const f of FORMATS) {
    const bytes = clip(f.file);
    const whole = await decodeAll(bytes, bytes.length);
    for (const chunk of [13, 4096]) {
      const cut = await decodeAll(bytes, chunk);
      assert.equal(cut.samples.length, whole.samples.length, `${f.file} in ${chunk}-byte chunks`);
      assert.ok(Buffer.from(cut.samples.buffer).equals(Buffer.from(whole.samples.buffer)), `${f.file} in ${chunk}-byte chunks: same samples`);
    }
  }
});

test('formats are told by their first bytes; MP4/AAC, FLAC, ADTS and unknown files are 415 naming the accepted formats', async () => {
  assert.deepEqual(sniffAudioFormat(clip('jfk.mp3')), { container: 'mp3' });
  assert.deepEqual(sniffAudioFormat(clip('jfk.opus.ogg')), { container: 'ogg' });
  assert.deepEqual(sniffAudioFormat(clip('jfk.webm')), { container: 'webm' });
  assert.deepEqual(sniffAudioFormat(readFileSync(new URL('../../../../shared/data/speech/jfk_1961_inaugural_M.wav', import.meta.url))), { container: 'wav' });
  // An MP3 without an ID3 tag starts with a frame: found by the frame sync.
  const mp3 = clip('jfk.mp3');
  const firstFrame = mp3.indexOf(Buffer.from([0xff, 0xfb]));
  assert.deepEqual(sniffAudioFormat(mp3.subarray(firstFrame)), { container: 'mp3' });
  const cases: Array<[string, Buffer]> = [
    ['MP4/M4A (AAC)', clip('jfk.m4a')],
    ['FLAC', Buffer.concat([Buffer.from('fLaC'), Buffer.alloc(64)])],
    ['AAC (ADTS)', Buffer.concat([Buffer.from([0xff, 0xf1, 0x50, 0x80]), Buffer.alloc(64)])],
    ['Unrecognised', Buffer.from('hello, this is a text file and not audio at all')],
  ];
  for (const [format, bytes] of cases) {
    const err = await rejects(decodeAll(bytes, 4096), 415, 'unsupported_format');
    assert.equal(err.details[0].format, format);
    assert.deepEqual(err.details[0].accepted, [...ACCEPTED_AUDIO_FORMATS]);
    assert.match(err.message, /WAV .*MP3.*Ogg Opus.*WebM Opus/);
  }
});

test('an Ogg or WebM file whose codec is not Opus is 415 unsupported_codec', async () => {
  // The WebM clip with its track's CodecID (6 bytes) made AAC's.
  const webm = Buffer.from(clip('jfk.webm'));
  const at = webm.indexOf('A_OPUS');
  assert.ok(at > 0);
  webm.write('A_AAC\0', at, 'latin1');
  const e1 = await rejects(decodeAll(webm, 4096), 415, 'unsupported_codec');
  assert.equal(e1.details[0].codec, 'A_AAC');
  // An Ogg stream whose first packet is a Vorbis identification header.
  const ogg = Buffer.from(clip('jfk.opus.ogg'));
  ogg.write('\x01vorbis\0', ogg.indexOf('OpusHead'), 'latin1');
  const e2 = await rejects(decodeAll(ogg, 4096), 415, 'unsupported_codec');
  assert.equal(e2.details[0].codec, 'Vorbis');
});

test('a cut-off file is 400 truncated_audio, in every format', async () => {
  for (const f of FORMATS) {
    const bytes = clip(f.file);
    const err = await rejects(decodeAll(bytes.subarray(0, Math.floor(bytes.length * 0.6)), 4096), 400, 'truncated_audio');
    assert.equal(err.details[0].field, 'file');
  }
});

test('damaged files are coded 400s, not crashes', async () => {
  const junk = Buffer.alloc(20_000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919) % 251;
  const cases: Array<[string, Buffer]> = [
    ['ID3 tag then noise', Buffer.concat([Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x10', 'latin1'), junk])],
    ['Ogg magic then noise', Buffer.concat([Buffer.from('OggS'), junk])],
    ['EBML magic then noise', Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), junk])],
    ['a WebM whose Opus header is gone', (() => {
      const w = Buffer.from(clip('jfk.webm'));
      w.write('XXXXXXXX', w.indexOf('OpusHead'), 'latin1');
      return w;
    })()],
  ];
  for (const [what, bytes] of cases) {
    try {
      await decodeAll(bytes, 4096);
      assert.fail(`${what}: accepted`);
    } catch (err) {
      assert.ok(err instanceof AttuneError, `${what}: ${(err as Error).stack}`);
      assert.equal(err.statusCode, 400, `${what}: ${err.message}`);
      assert.ok(['undecodable_audio', 'truncated_audio'].includes(String(err.details[0].reason)), `${what}: ${JSON.stringify(err.details)}`);
    }
  }
  await rejects(decodeAll(Buffer.alloc(0), 4096), 400, 'undecodable_audio');
});

test('too long: refused from the MP3 Xing header before any audio is decoded, and as soon as decoded audio passes the limit', async () => {
  const mp3 = clip('jfk.mp3');
  const header = readMp3FrameHeader(mp3.subarray(mp3.indexOf(Buffer.from([0xff, 0xfb]))));
  assert.ok(header && header.declaredFrames !== null, 'LAME writes an Info tag');
  const d = new AudioFileDecoder({ maxBytes: LIMITS.maxBytes, maxDurationS: 5 });
  // The first 4 KB hold the tag and a few frames (well under 5 s of audio).
  const err = await rejects(d.push(mp3.subarray(0, 4096)), 413, 'too_long');
  assert.ok(Math.abs((err.details[0].declared_duration_s as number) - 11) < 0.1, JSON.stringify(err.details));
  d.free();
  for (const file of ['jfk.opus.ogg', 'jfk.live.webm']) {
    const e = await rejects(decodeAll(clip(file), 4096, { maxBytes: LIMITS.maxBytes, maxDurationS: 5 }), 413, 'too_long');
    assert.equal(e.details[0].max_duration_s, 5);
  }
  await rejects(decodeAll(clip('jfk.webm'), 4096, { maxBytes: 10_000, maxDurationS: 3600 }), 413, 'too_large');
});

test('damaged copies of every clip (bytes flipped, spans zeroed or dropped, seeded): decoded or refused with a coded 4xx, never a crash', async (tc) => {
  const rng = new Mulberry32(1303);
  const outcomes: Record<string, number> = {};
  for (const f of [...FORMATS.map((x) => x.file), 'wav']) {
    const good = f === 'wav' ? readFileSync(new URL('../../../../shared/data/speech/jfk_1961_inaugural_M.wav', import.meta.url)) : clip(f);
    for (let n = 0; n < 40; n++) {
      const bad = Buffer.from(good);
      const kind = n % 4;
      const at = Math.floor(rng.next() * bad.length);
      if (kind === 0) for (let k = 0; k < 8; k++) bad[Math.floor(rng.next() * bad.length)] ^= 1 << Math.floor(rng.next() * 8);
      else if (kind === 1) bad.fill(0, at, Math.min(bad.length, at + 1 + Math.floor(rng.next() * 512)));
      else if (kind === 2) bad.fill(0xff, at, Math.min(bad.length, at + 1 + Math.floor(rng.next() * 64)));
      const bytes = kind === 3 ? Buffer.concat([bad.subarray(0, at), bad.subarray(Math.min(bad.length, at + 1 + Math.floor(rng.next() * 4096)))]) : bad;
      let outcome: string;
      try {
        await decodeAll(bytes, 4096);
        outcome = 'decoded';
      } catch (err) {
        assert.ok(err instanceof AttuneError, `${f} damage ${n} (kind ${kind} at ${at}): ${(err as Error)?.stack}`);
        assert.ok(err.statusCode >= 400 && err.statusCode < 500, `${f} damage ${n}: ${err.statusCode} ${err.message}`);
        outcome = String(err.details[0]?.reason);
      }
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
  }
  tc.diagnostic(`200 damaged files: ${JSON.stringify(outcomes)}`);
  assert.ok(Object.keys(outcomes).length >= 2, `outcomes ${JSON.stringify(outcomes)}`);
});
