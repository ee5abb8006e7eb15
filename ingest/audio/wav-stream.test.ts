import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createRandom } from '../../lib/prng.js';
import { AttuneError } from '../../lib/errors.js';
import { WavStreamParser, parseWavStream, type WavStreamOptions } from './wav-stream.js';

const dataDir = new URL('../../../shared/data/', import.meta.url).pathname;

// A small WAV writer for the tests: interleaves channels and encodes them as asked.
interface EncodeOptions {
  sampleRate: number;
  channels: Float32Array[];
  encoding?: 'pcm16' | 'float32' | 'pcm24';
  extensible?: boolean;
  /** Chunks to put between fmt and data, e.g. LIST; odd sizes get their pad byte. */
  extraChunks?: { id: string; body: Buffer }[];
  /** Overrides the data chunk's size field (0 or 0xFFFFFFFF for a streamed WAV). */
  dataSizeField?: number;
  formatTag?: number;
  magic?: string;
}

function chunk(id: string, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function encodeWav(o: EncodeOptions): Buffer {
  const enc = o.encoding ?? 'pcm16';
  const bits = enc === 'pcm16' ? 16 : enc === 'pcm24' ? 24 : 32;
  const tag = o.formatTag ?? (enc === 'float32' ? 3 : 1);
  const nch = o.channels.length;
  const frames = o.channels[0].length;
  const bytes = bits / 8;
  const data = Buffer.alloc(frames * nch * bytes);
  let p = 0;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < nch; c++, p += bytes) {
      const v = o.channels[c][i];
      if (enc === 'float32') data.writeFloatLE(v, p);
      else if (enc === 'pcm16') data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v * 32768))), p);
      else data.writeIntLE(Math.max(-8388608, Math.min(8388607, Math.round(v * 8388608))), p, 3);
    }
  }
  const fmt = Buffer.alloc(o.extensible ? 40 : 16);
  fmt.writeUInt16LE(o.extensible ? 0xfffe : tag, 0);
  fmt.writeUInt16LE(nch, 2);
  fmt.writeUInt32LE(o.sampleRate, 4);
  fmt.writeUInt32LE(o.sampleRate * nch * bytes, 8);
  fmt.writeUInt16LE(nch * bytes, 12);
  fmt.writeUInt16LE(bits, 14);
  if (o.extensible) {
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(bits, 18);
    fmt.writeUInt32LE(nch === 2 ? 3 : 4, 20);
    fmt.writeUInt16LE(tag, 24); // subformat GUID: tag + 00000000-0010-8000-00AA00389B71
    Buffer.from('000000001000800000aa00389b71', 'hex').copy(fmt, 26);
  }
  const dataChunk = chunk('data', data);
  if (o.dataSizeField !== undefined) dataChunk.writeUInt32LE(o.dataSizeField, 4);
  const body = Buffer.concat([
    Buffer.from('WAVE'),
    chunk('fmt ', fmt),
    ...(o.extraChunks ?? []).map((c) => chunk(c.id, c.body)),
    dataChunk,
  ]);
  const head = Buffer.alloc(8);
  head.write(o.magic ?? 'RIFF', 0, 'latin1');
  head.writeUInt32LE(o.dataSizeField === 0xffffffff ? 0xffffffff : body.length, 4);
  return Buffer.concat([head, body]);
}

function tone(n: number, hz: number, rate: number, amp = 0.5, phase = 0): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * hz * i) / rate + phase);
  return x;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function parseAll(bytes: Buffer, opts: WavStreamOptions = {}): { samples: Float32Array; parser: WavStreamParser } {
  const parser = new WavStreamParser(opts);
  const parts = parser.push(bytes);
  parser.end();
  return { samples: concat(parts), parser };
}

/** Feeds `bytes` in seeded random pieces of 1…maxPiece bytes (1-byte pieces hit every split point). */
function parseInPieces(bytes: Buffer, seed: number, maxPiece: number, opts: WavStreamOptions = {}): Float32Array {
  const rnd = createRandom(seed);
  const parser = new WavStreamParser(opts);
  const parts: Float32Array[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const n = 1 + Math.floor(rnd() * maxPiece);
    // Copy, so the parser cannot rely on the caller keeping its buffer.
    parts.push(...parser.push(Buffer.from(bytes.subarray(pos, pos + n))));
    pos += n;
  }
  parser.end();
  return concat(parts);
}

function expectCode(fn: () => unknown, code: string, status: number, reason: string, extra: Record<string, unknown> = {}): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttuneError, `expected AttuneError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.statusCode, status);
    assert.equal(e.details[0]?.field, 'file');
    assert.equal(e.details[0]?.reason, reason);
    for (const [k, v] of Object.entries(extra)) assert.equal(e.details[0]?.[k], v, k);
    return true;
  });
}

const rate = 22050;
const left = tone(2000, 440, rate, 0.6);
const right = tone(2000, 1000, rate, 0.3, 1);
const list = { id: 'LIST', body: Buffer.from('INFOISFT\x0e\x00\x00\x00Lavf59.27.100\x00', 'latin1') };
const odd = { id: 'junk', body: Buffer.from('abc') }; // 3 bytes + 1 pad byte

const variants: { name: string; wav: Buffer; channels: number; encoding: string; bits: number; tol: number }[] = [
  { name: 'pcm16 mono', wav: encodeWav({ sampleRate: rate, channels: [left] }), channels: 1, encoding: 'pcm', bits: 16, tol: 1 / 32768 },
  { name: 'pcm16 stereo', wav: encodeWav({ sampleRate: rate, channels: [left, right] }), channels: 2, encoding: 'pcm', bits: 16, tol: 1 / 32768 },
  { name: 'float32 stereo', wav: encodeWav({ sampleRate: rate, channels: [left, right], encoding: 'float32' }), channels: 2, encoding: 'float', bits: 32, tol: 1e-7 },
  { name: 'pcm24 mono', wav: encodeWav({ sampleRate: rate, channels: [left], encoding: 'pcm24' }), channels: 1, encoding: 'pcm', bits: 24, tol: 1e-6 },
  { name: 'extensible pcm16 stereo', wav: encodeWav({ sampleRate: rate, channels: [left, right], extensible: true }), channels: 2, encoding: 'pcm', bits: 16, tol: 1 / 32768 },
  { name: 'extensible float32 mono', wav: encodeWav({ sampleRate: rate, channels: [left], encoding: 'float32', extensible: true }), channels: 1, encoding: 'float', bits: 32, tol: 1e-7 },
  { name: 'LIST and odd-sized chunk before data', wav: encodeWav({ sampleRate: rate, channels: [left, right], extraChunks: [odd, list] }), channels: 2, encoding: 'pcm', bits: 16, tol: 1 / 32768 },
  { name: 'streamed data size 0xFFFFFFFF', wav: encodeWav({ sampleRate: rate, channels: [left, right], dataSizeField: 0xffffffff, extraChunks: [list] }), channels: 2, encoding: 'pcm', bits: 16, tol: 1 / 32768 },
  { name: 'streamed data size 0', wav: encodeWav({ sampleRate: rate, channels: [left], dataSizeField: 0 }), channels: 1, encoding: 'pcm', bits: 16, tol: 1 / 32768 },
];

for (const v of variants) {
  test(`parses ${v.name}: format, averaged mono samples, and identical results for random chunking`, () => {
    const { samples, parser } = parseAll(v.wav);
    assert.deepEqual(
      { sampleRate: parser.format!.sampleRate, channels: parser.format!.channels, encoding: parser.format!.encoding, bits: parser.format!.bitsPerSample },
      { sampleRate: rate, channels: v.channels, encoding: v.encoding, bits: v.bits },
    );
    assert.equal(samples.length, left.length);
    let maxErr = 0;
    for (let i = 0; i < samples.length; i++) {
      const expected = v.channels === 2 ? (left[i] + right[i]) / 2 : left[i];
      maxErr = Math.max(maxErr, Math.abs(samples[i] - expected));
    }
    assert.ok(maxErr <= v.tol, `max error ${maxErr} > ${v.tol}`);
    // Byte-at-a-time, small, and large pieces: every split point inside headers and samples.
    for (const [seed, maxPiece] of [[1, 1], [2, 7], [3, 64], [4, 5000]] as const) {
      assert.deepEqual(parseInPieces(v.wav, seed, maxPiece), samples, `seed ${seed}, pieces ≤ ${maxPiece}`);
    }
  });
}

test('chunks after the data chunk are ignored', () => {
  const wav = encodeWav({ sampleRate: rate, channels: [left] });
  const withTrailer = Buffer.concat([wav, chunk('LIST', list.body), chunk('id3 ', Buffer.from('xyz'))]);
  assert.deepEqual(parseAll(withTrailer).samples, parseAll(wav).samples);
});

test('refusals carry their code, status, field and reason', () => {
  const good = encodeWav({ sampleRate: rate, channels: [left, right] });
  // Not RIFF at all, or RIFF but not WAVE.
  expectCode(() => parseAll(Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00 mp3 data here', 'latin1')), 'validation_error', 400, 'not_riff');
  const avi = Buffer.from(good);
  avi.write('AVI ', 8, 'latin1');
  expectCode(() => parseAll(avi), 'validation_error', 400, 'not_wave');
  // Big-endian and 64-bit containers.
  expectCode(() => parseAll(encodeWav({ sampleRate: rate, channels: [left], magic: 'RIFX' })), 'unsupported_media_type', 415, 'unsupported_container', { container: 'RIFX' });
  expectCode(() => parseAll(encodeWav({ sampleRate: rate, channels: [left], magic: 'RF64' })), 'unsupported_media_type', 415, 'unsupported_container', { container: 'RF64' });
  // Compressed encodings: IMA ADPCM (0x11), μ-law (7), MS ADPCM (2), and inside EXTENSIBLE.
  for (const tag of [0x11, 7, 2]) {
    expectCode(() => parseAll(encodeWav({ sampleRate: rate, channels: [left], formatTag: tag })), 'unsupported_media_type', 415, 'unsupported_encoding', { format_tag: tag });
  }
  expectCode(() => parseAll(encodeWav({ sampleRate: rate, channels: [left], formatTag: 7, extensible: true })), 'unsupported_media_type', 415, 'unsupported_encoding', { format_tag: 7 });
  // Sample rates outside 8–192 kHz.
  for (const sr of [4000, 7999, 384000]) {
    expectCode(() => parseAll(encodeWav({ sampleRate: sr, channels: [left] })), 'unsupported_media_type', 415, 'unsupported_sample_rate', { sample_rate: sr });
  }
  // Truncated: inside the RIFF header, inside fmt, before data, inside the audio.
  expectCode(() => parseAll(good.subarray(0, 10)), 'validation_error', 400, 'truncated_header');
  expectCode(() => parseAll(good.subarray(0, 30)), 'validation_error', 400, 'missing_fmt_chunk');
  expectCode(() => parseAll(good.subarray(0, 40)), 'validation_error', 400, 'missing_data_chunk');
  expectCode(() => parseAll(good.subarray(0, good.length - 1001)), 'validation_error', 400, 'truncated_data', { missing_bytes: 1001 });
  // A streamed WAV cut inside a sample frame.
  const streamed = encodeWav({ sampleRate: rate, channels: [left, right], dataSizeField: 0xffffffff });
  expectCode(() => parseAll(streamed.subarray(0, streamed.length - 3)), 'validation_error', 400, 'partial_sample_frame', { trailing_bytes: 1 });
  // data before fmt; an inconsistent block align.
  const noFmt = Buffer.concat([Buffer.from('RIFF\x00\x00\x00\x00WAVE', 'latin1'), chunk('data', Buffer.alloc(8))]);
  expectCode(() => parseAll(noFmt), 'validation_error', 400, 'missing_fmt_chunk');
  const badAlign = Buffer.from(good);
  badAlign.writeUInt16LE(3, 32);
  expectCode(() => parseAll(badAlign), 'validation_error', 400, 'bad_block_align', { block_align: 3 });
});

test('too many bytes or too long a duration is refused with 413, as early as the header tells', () => {
  const wav = encodeWav({ sampleRate: 8000, channels: [tone(16000, 200, 8000)] }); // 2 s, 32 044 bytes
  expectCode(() => parseAll(wav, { maxBytes: 10000 }), 'payload_too_large', 413, 'too_large', { max_bytes: 10000 });
  expectCode(() => parseAll(wav, { maxDurationS: 1.5 }), 'payload_too_large', 413, 'too_long', { max_duration_s: 1.5, declared_duration_s: 2 });
  // Declared size: refused at the data chunk header, before any audio arrives.
  const header = wav.subarray(0, 44);
  expectCode(() => new WavStreamParser({ maxDurationS: 1.5 }).push(header), 'payload_too_large', 413, 'too_long');
  expectCode(() => new WavStreamParser({ maxBytes: 10000 }).push(header), 'payload_too_large', 413, 'too_large', { declared_bytes: 32000 });
  // Streamed WAV (no size): refused when the counted bytes or samples pass the limit.
  const streamed = encodeWav({ sampleRate: 8000, channels: [tone(16000, 200, 8000)], dataSizeField: 0xffffffff });
  expectCode(() => parseInPieces(streamed, 9, 512, { maxDurationS: 1.5 }), 'payload_too_large', 413, 'too_long');
  expectCode(() => parseInPieces(streamed, 9, 512, { maxBytes: 20000 }), 'payload_too_large', 413, 'too_large');
  // At the limits exactly, it passes.
  assert.equal(parseAll(wav, { maxBytes: wav.length, maxDurationS: 2 }).samples.length, 16000);
});

test('the real speech clips and the 48 kHz PTDB clip parse with the rates their metadata gives', async () => {
  const meta = JSON.parse(readFileSync(`${dataDir}speech/metadata.json`, 'utf8')) as { file: string; sample_rate: number; channels: number; duration_s: number }[];
  const pitchMeta = JSON.parse(readFileSync(`${dataDir}pitch/metadata.json`, 'utf8')) as { wav: string; wav_16k: string; sr: number; duration_s: number }[];
  const clips = [
    ...meta.map((m) => ({ path: `${dataDir}speech/${m.file}`, rate: m.sample_rate, duration: m.duration_s })),
    ...pitchMeta.flatMap((m) => [
      { path: `${dataDir}pitch/${m.wav}`, rate: m.sr, duration: m.duration_s },
      { path: `${dataDir}pitch/${m.wav_16k}`, rate: 16000, duration: m.duration_s },
    ]),
  ];
  assert.ok(clips.some((c) => c.rate === 48000));
  for (const clip of clips) {
    let count = 0;
    let rms = 0;
    let last = null;
    // Through the stream adapter, with a small highWaterMark so the file arrives in many pieces.
    for await (const piece of parseWavStream(createReadStream(clip.path, { highWaterMark: 4093 }))) {
      count += piece.samples.length;
      for (const s of piece.samples) rms += s * s;
      last = piece.format;
    }
    assert.equal(last?.sampleRate, clip.rate, clip.path);
    assert.equal(last?.channels, 1);
    assert.ok(Math.abs(count / clip.rate - clip.duration) < 0.02, `${clip.path}: ${count / clip.rate} s vs ${clip.duration} s`);
    assert.ok(Math.sqrt(rms / count) > 0.005, `${clip.path} is not silent`);
  }
});

test('parseWavStream rejects a broken stream and stops reading it', async () => {
  let pulled = 0;
  const source = Readable.from(
    (function* () {
      yield Buffer.from('RIFF\x00\x00\x00\x00WAVE', 'latin1');
      pulled++;
      yield Buffer.concat([chunk('fmt ', Buffer.alloc(16))]); // format tag 0: unknown
      pulled++;
      yield Buffer.alloc(1000);
      pulled++;
    })(),
  );
  await assert.rejects(async () => {
    for await (const _ of parseWavStream(source)) assert.fail('no samples expected');
  }, (e: unknown) => e instanceof AttuneError && e.code === 'unsupported_media_type');
  assert.ok(pulled < 3, 'reading stopped at the error');
  assert.ok(source.destroyed);
});

test('a float WAV with a NaN or infinite sample is refused (400) naming the first bad sample and its time, however it is split', () => {
  const sr = 16000;
  const cases: Array<{ bad: number; at: number; ch: number; value: string }> = [
    { bad: Number.NaN, at: 12_345, ch: 0, value: 'NaN' },
    { bad: Number.POSITIVE_INFINITY, at: 3, ch: 1, value: 'Infinity' },
    { bad: Number.NEGATIVE_INFINITY, at: 15_999, ch: 1, value: '-Infinity' },
  ];
  for (const c of cases) {
    const l = tone(16_000, 440, sr, 0.5);
    const r = tone(16_000, 220, sr, 0.5);
    (c.ch === 0 ? l : r)[c.at] = c.bad;
    // A second bad sample later: the first one is named.
    if (c.at + 1 < 16_000) l[c.at + 1] = Number.NaN;
    const wav = encodeWav({ sampleRate: sr, channels: [l, r], encoding: 'float32' });
    const extra = { sample: c.at, at_s: Math.round((c.at / sr) * 1000) / 1000, value: c.value };
    expectCode(() => parseAll(wav), 'validation_error', 400, 'non_finite_sample', extra);
    expectCode(() => parseInPieces(wav, c.at, 997), 'validation_error', 400, 'non_finite_sample', extra);
  }
  // The message names the time too, for a person reading it.
  const l = tone(8000, 440, sr, 0.5);
  l[8000 - 1] = Number.NaN;
  assert.throws(() => parseAll(encodeWav({ sampleRate: sr, channels: [l], encoding: 'float32' })), /sample 7999 \(at 0\.5 s\) is NaN/);
  // PCM cannot hold NaN, and a clean float file still parses.
  const clean = tone(8000, 440, sr, 0.5);
  assert.equal(parseAll(encodeWav({ sampleRate: sr, channels: [clean], encoding: 'float32' })).samples.length, 8000);
});
