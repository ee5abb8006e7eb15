import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRandom } from '../lib/prng.js';
import { createAudioFramer, frameAudio, fromPcm16, toPcm16, MAX_FRAME_BYTES, DEFAULT_FRAME_SAMPLES, type AudioFrame } from './audio-frames.js';

test('toPcm16 writes little-endian int16, rounds, clips, and round-trips through fromPcm16', () => {
  const x = Float32Array.from([0, 0.5, -0.5, 1, -1, 1.7, -3, 1 / 32768, NaN]);
  const b = toPcm16(x);
  assert.equal(b.length, 18);
  assert.deepEqual([...Array(9).keys()].map((i) => b.readInt16LE(i * 2)), [0, 16384, -16384, 32767, -32768, 32767, -32768, 1, 0]);
  assert.deepEqual([b[2], b[3]], [0x00, 0x40]); // 16384 little-endian
  const rnd = createRandom(5);
  const exact = Float32Array.from({ length: 1000 }, () => Math.round((rnd() * 2 - 1) * 32767) / 32768);
  assert.deepEqual(fromPcm16(toPcm16(exact)), exact);
  assert.throws(() => fromPcm16(Buffer.alloc(3)), RangeError);
});

function checkContiguous(frames: AudioFrame[], total: number, frameSamples: number): void {
  let offset = 0;
  frames.forEach((f, i) => {
    assert.equal(f.sequence, i);
    assert.equal(f.sampleOffset, offset);
    assert.equal(f.payload.length, f.sampleCount * 2);
    assert.ok(f.payload.length <= MAX_FRAME_BYTES);
    if (i < frames.length - 1) assert.equal(f.sampleCount, frameSamples);
    offset += f.sampleCount;
  });
  assert.equal(offset, total);
}

test('frameAudio cuts 16 kHz audio into ≤ 64 KB PCM16 frames with sequence numbers and offsets', () => {
  const rnd = createRandom(11);
  const x = Float32Array.from({ length: 16000 * 5 + 123 }, () => rnd() - 0.5); // 5 s + a bit
  const frames = frameAudio(x);
  assert.equal(frames.length, 3); // 2 s + 2 s + 1.0077 s
  assert.equal(DEFAULT_FRAME_SAMPLES * 2, 64000);
  checkContiguous(frames, x.length, DEFAULT_FRAME_SAMPLES);
  assert.deepEqual(Buffer.concat(frames.map((f) => f.payload)), toPcm16(x));
  assert.ok(frames.every((f) => f.sampleRate === 16000));
  // Smaller frames for live latency (100 ms), numbered on from an earlier stream.
  const live = frameAudio(x, { frameSamples: 1600, startSequence: 7, startSample: 480000 });
  assert.equal(live.length, Math.ceil(x.length / 1600));
  assert.equal(live[0].sequence, 7);
  assert.equal(live[0].sampleOffset, 480000);
  assert.equal(live.at(-1)!.sampleOffset, 480000 + 1600 * (live.length - 1));
  assert.throws(() => frameAudio(x, { frameSamples: MAX_FRAME_BYTES / 2 + 1 }), RangeError);
  assert.deepEqual(frameAudio(new Float32Array(0)), []);
});

test('a framer fed in random pieces gives the same frames as frameAudio', () => {
  const rnd = createRandom(3);
  const x = Float32Array.from({ length: 50000 }, () => rnd() - 0.5);
  const framer = createAudioFramer({ frameSamples: 4000 });
  const frames: AudioFrame[] = [];
  for (let pos = 0; pos < x.length; ) {
    const n = Math.floor(rnd() * 9000);
    frames.push(...framer.push(x.subarray(pos, pos + n)));
    pos += n;
  }
  frames.push(...framer.flush());
  assert.deepEqual(frames, frameAudio(x, { frameSamples: 4000 }));
  checkContiguous(frames, x.length, 4000);
  assert.deepEqual(framer.flush(), []);
});
