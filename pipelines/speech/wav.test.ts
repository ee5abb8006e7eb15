import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeWavPcm16, parseWav } from './wav.test-util.js';

test('PCM16 WAV round trip, stereo averaged to mono; other encodings refused', () => {
  const stereo = new Float32Array([0.5, -0.5, 0.25, 0.25, -1, -1]);
  const wav = parseWav(encodeWavPcm16(stereo, 44_100, 2));
  assert.equal(wav.sampleRate, 44_100);
  assert.equal(wav.channels, 2);
  assert.deepEqual(Array.from(wav.samples), [0, 0.25, -1]);
  const broken = encodeWavPcm16(new Float32Array(4), 16_000, 1);
  broken.writeUInt16LE(3, 20); // IEEE float tag with 16 bits
  assert.throws(() => parseWav(broken), (e: unknown) => (e as { code?: string }).code === 'unsupported_media_type');
  assert.throws(() => parseWav(Buffer.from('not a wav at all')), (e: unknown) => (e as { code?: string }).code === 'validation_error');
});
