// Files built to exhaust memory, one per structure whose count or size the file controls: each
// is refused with a coded 4xx (or, for Opus's expansion, decoded in bounded pieces) while the
// process grows by a few MB. The figures in the comments are the same inputs on the code
// before the bounds (process.memoryUsage(), heapUsed and arrayBuffers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttuneError } from '../../../lib/errors.js';
import { AudioFileDecoder } from './index.js';
import { MAX_WEBM_TRACKS } from './webm.js';
import { MAX_OGG_PACKET_BYTES, MAX_OGG_STREAMS } from './ogg.js';
import { OpusPacketDecoder } from './opus.js';

const LIMITS = { maxBytes: 200 * 1024 * 1024, maxDurationS: 4 * 3600 };
const MB = 1024 * 1024;

const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Feeds the chunks (a sink when given); the coded error and the most the process grew by. */
async function feed(chunks: Iterable<Buffer>, opts: { limits?: typeof LIMITS; sink?: (p: Float32Array[]) => void } = {}) {
  const base = used();
  let peak = 0;
  const sample = () => (peak = Math.max(peak, used() - base));
  const d = new AudioFileDecoder(opts.limits ?? LIMITS);
  const sink = opts.sink
    ? (p: Float32Array[]) => {
        opts.sink!(p);
        sample();
      }
    : undefined;
  let error: AttuneError | null = null;
  let returned = 0;
  try {
    for (const c of chunks) {
      for (const p of await d.push(c, sink)) returned += p.length;
      sample();
    }
    for (const p of await d.end()) returned += p.length;
  } catch (err) {
    sample();
    assert.ok(err instanceof AttuneError, `a coded error, got ${(err as Error)?.stack}`);
    error = err;
  } finally {
    d.free();
  }
  return { error, peakMB: peak / MB, returned };
}

function* repeat(head: Buffer, unit: Buffer, totalBytes: number, chunk = 64 * 1024): Generator<Buffer> {
  yield head;
  const c = Buffer.concat(new Array(Math.floor(chunk / unit.length)).fill(unit));
  for (let n = 0; n < totalBytes; n += c.length) yield c;
}

// --- WebM -------------------------------------------------------------------------------------

const UNKNOWN = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
function ebml(id: number[], body: Buffer): Buffer {
  const size = Buffer.alloc(8);
  size[0] = 0x01;
  size.writeUInt32BE(body.length, 4);
  return Buffer.concat([Buffer.from(id), size, body]);
}
const uint = (id: number[], v: number) => ebml(id, Buffer.from([v]));
const webmHeader = () => Buffer.concat([ebml([0x1a, 0x45, 0xdf, 0xa3], ebml([0x42, 0x82], Buffer.from('webm'))), Buffer.from([0x18, 0x53, 0x80, 0x67]), UNKNOWN]);

function opusHead(channels = 1, family = 0): Buffer {
  const b = Buffer.alloc(family === 0 ? 19 : 21 + channels);
  b.write('OpusHead', 0, 'latin1');
  b[8] = 1;
  b[9] = channels;
  b.writeUInt16LE(312, 10);
  b.writeUInt32LE(48000, 12);
  b[18] = family;
  if (family !== 0) {
    b[19] = channels;
    b[20] = 0;
    for (let i = 0; i < channels; i++) b[21 + i] = i;
  }
  return b;
}

/** A 2-byte Opus packet of 120 ms: CELT 20 ms frames (config 31), code 3, six empty frames. */
const PACKET_120MS = Buffer.from([(31 << 3) | 3, 6]);

test(`WebM: more than ${MAX_WEBM_TRACKS} TrackEntry elements is 400 undecodable_audio; 4 MB of empty ones no longer grow the heap`, async () => {
  // 2 million 2-byte TrackEntries (AE 80) in an unknown-size Tracks. Before: the heap grew by
  // 167 MB (300 MB in the review's measure), and 200 MB of them ran out of heap.
  const tracks = Buffer.concat([webmHeader(), Buffer.from([0x16, 0x54, 0xae, 0x6b]), UNKNOWN]);
  const r = await feed(repeat(tracks, Buffer.from([0xae, 0x80]), 4 * MB));
  assert.equal(r.error?.statusCode, 400);
  assert.equal(r.error?.details[0].reason, 'undecodable_audio');
  assert.equal(r.error?.details[0].max_tracks, MAX_WEBM_TRACKS);
  assert.match(r.error!.message, /more than 16 tracks/);
  assert.ok(r.peakMB < 50, `grew by ${r.peakMB.toFixed(1)} MB`);

  // TrackEntries with a 60 KB CodecPrivate each. Before: every one copied, 172 MB for 3000.
  const fat = ebml([0xae], ebml([0x63, 0xa2], Buffer.alloc(60_000, 1)));
  const r2 = await feed(repeat(tracks, fat, 3000 * fat.length, fat.length));
  assert.equal(r2.error?.details[0].max_tracks, MAX_WEBM_TRACKS);
  assert.ok(r2.peakMB < 50, `grew by ${r2.peakMB.toFixed(1)} MB`);
});

/** A WebM Opus file whose blocks each lace 256 packets of 120 ms (30.7 s of audio in 772 bytes). */
function webmExpanding(blocks: number, head = opusHead()): Buffer {
  const entry = ebml([0xae], Buffer.concat([uint([0xd7], 1), uint([0x83], 2), ebml([0x86], Buffer.from('A_OPUS')), ebml([0x63, 0xa2], head)]));
  const lace = Buffer.concat([Buffer.from([0x81, 0, 0, 0x80 | 0x02, 255]), Buffer.alloc(255, 2), ...new Array(256).fill(PACKET_120MS)]);
  const block = Buffer.concat([Buffer.from([0xa3, 0x40 | (lace.length >> 8), lace.length & 0xff]), lace]);
  return Buffer.concat([webmHeader(), ebml([0x16, 0x54, 0xae, 0x6b], entry), Buffer.from([0x1f, 0x43, 0xb6, 0x75]), UNKNOWN, ...new Array(blocks).fill(block)]);
}

// --- Ogg --------------------------------------------------------------------------------------

function oggPage(serial: number, seq: number, segments: number[], body: Buffer, flags = 0, granule = 0n): Buffer {
  const h = Buffer.alloc(27 + segments.length);
  h.write('OggS', 0, 'latin1');
  h[5] = flags;
  h.writeBigInt64LE(granule, 6);
  h.writeUInt32LE(serial, 14);
  h.writeUInt32LE(seq, 18);
  h[26] = segments.length;
  segments.forEach((s, i) => (h[27 + i] = s));
  return Buffer.concat([h, body]);
}
const tags = Buffer.concat([Buffer.from('OpusTags', 'latin1'), Buffer.alloc(8)]);
const oggHeader = (head = opusHead()) => Buffer.concat([oggPage(1, 0, [head.length], head, 2), oggPage(1, 1, [tags.length], tags)]);

/** An Ogg Opus file whose pages each hold 255 packets of 120 ms (30.6 s in 792 bytes). */
function oggExpanding(pages: number, head = opusHead()): Buffer {
  const body = Buffer.concat(new Array(255).fill(PACKET_120MS));
  const out: Buffer[] = [oggHeader(head)];
  for (let i = 0; i < pages; i++) out.push(oggPage(1, 2 + i, new Array(255).fill(2), body, 0, BigInt((i + 1) * 255 * 5760)));
  return Buffer.concat(out);
}

test(`Ogg: more than ${MAX_OGG_STREAMS} logical streams open at once is 400 undecodable_audio, with the heap bounded`, async () => {
  // 27-byte pages each of a new stream: codec-parser kept an object per stream. Before: 77 MB
  // grew the heap by 990 MB (in 58 s); these 8 MB by about 100 MB.
  const pages = Buffer.concat(Array.from({ length: 2427 }, (_, i) => oggPage(1000 + i, 0, [], Buffer.alloc(0), 2)));
  const chunks = (function* () {
    yield oggHeader();
    for (let n = 0; n < 120; n++) {
      for (let i = 0; i < 2427; i++) pages.writeUInt32LE(1000 + n * 2427 + i, 27 * i + 14);
      yield Buffer.from(pages);
    }
  })();
  const r = await feed(chunks);
  assert.equal(r.error?.statusCode, 400);
  assert.equal(r.error?.details[0].reason, 'undecodable_audio');
  assert.equal(r.error?.details[0].max_streams, MAX_OGG_STREAMS);
  assert.ok(r.peakMB < 50, `grew by ${r.peakMB.toFixed(1)} MB`);
});

test(`Ogg: a packet continued over pages beyond ${MAX_OGG_PACKET_BYTES / MB} MB is 400 undecodable_audio, the packet not held`, async () => {
  // Full pages (255 segments of 255) that never end their packet. Before: codec-parser held it
  // whole and copied it at every page; 300 pages (19 MB) peaked at 93 MB, 1000 at 248 MB (54 s).
  const body = Buffer.alloc(255 * 255, 7);
  const chunks = (function* () {
    yield oggHeader();
    for (let i = 0; i < 400; i++) yield oggPage(1, 2 + i, new Array(255).fill(255), body, i ? 1 : 0);
  })();
  const r = await feed(chunks);
  assert.equal(r.error?.statusCode, 400);
  assert.equal(r.error?.details[0].reason, 'undecodable_audio');
  assert.equal(r.error?.details[0].max_packet_bytes, MAX_OGG_PACKET_BYTES);
  assert.ok(r.peakMB < 50, `grew by ${r.peakMB.toFixed(1)} MB`);
  // Where codec-parser would skip ahead to the next "OggS", the gate refuses.
  const junk = await feed([Buffer.concat([oggHeader(), Buffer.from('not a page at all, but long enough to be read as one')])]);
  assert.equal(junk.error?.details[0].reason, 'undecodable_audio');
  assert.match(junk.error!.message, /no Ogg page at byte 91/);
});

// --- Opus, in both containers -----------------------------------------------------------------

for (const [format, file] of [['Ogg Opus', oggExpanding(80)], ['WebM Opus', webmExpanding(80)]] as const) {
  test(`${format}: 3 bytes of Opus per 120 ms go to the sink page by page, and the duration limit holds at each page or block`, async () => {
    // 64 KB of such pages or blocks are 40 minutes of audio. Before, one push held all of it
    // (470 MB of samples for one 64 KB push; 400 KB of pages peaked at 950 MB) and counted it
    // only then; the sink was not used.
    const chunk = file.subarray(0, 64 * 1024);
    let calls = 0;
    let most = 0;
    const r = await feed([chunk], {
      sink: (pieces) => {
        calls += 1;
        most = Math.max(most, pieces.reduce((n, p) => n + p.length, 0));
      },
    });
    // The 64 KB cut the file (inside a page; for WebM, perhaps between blocks of its unknown-size Cluster).
    assert.ok(r.error === null || r.error.details[0].reason === 'truncated_audio', r.error?.message);
    assert.equal(r.returned, 0, 'every sample went to the sink');
    assert.ok(calls >= 70, `${calls} sink calls`);
    assert.ok(most <= 256 * 5760, `one call held ${most} samples`);
    assert.ok(r.peakMB < 150, `grew by ${r.peakMB.toFixed(1)} MB`);
    // A 60 s limit (speech to text), no sink: refused within a page or block past the limit.
    const t = await feed([chunk], { limits: { maxBytes: LIMITS.maxBytes, maxDurationS: 60 } });
    assert.equal(t.error?.statusCode, 413);
    assert.equal(t.error?.details[0].reason, 'too_long');
    assert.ok(t.peakMB < 50, `grew by ${t.peakMB.toFixed(1)} MB`);
  });
}

test('Opus: more than two channels is refused when the stream opens, before a packet is decoded (in Ogg and WebM)', async () => {
  // A 6-channel stream (mapping family 1; up to 255 channels): every channel was decoded (one
  // page of 255 packets of 120 ms at 255 channels is 1.5 GB) and refused only afterwards.
  const opus = new OpusPacketDecoder('file', 'Ogg Opus');
  try {
    await assert.rejects(opus.open({ channels: 6, preSkip: 0, streamCount: 4, coupledStreamCount: 2, channelMappingTable: [0, 1, 2, 3, 4, 5] }), (err: unknown) => {
      assert.ok(err instanceof AttuneError);
      assert.equal(err.statusCode, 415);
      assert.equal(err.details[0].reason, 'unsupported_channel_count');
      return true;
    });
    assert.equal(opus.opened, false);
  } finally {
    opus.free();
  }
  for (const file of [oggExpanding(4, opusHead(6, 1)), webmExpanding(4, opusHead(6, 1))]) {
    let calls = 0;
    const r = await feed([file], { sink: () => void (calls += 1) });
    assert.equal(r.error?.statusCode, 415);
    assert.equal(r.error?.details[0].reason, 'unsupported_channel_count');
    assert.equal(calls, 0);
  }
});
