import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttuneError } from '../../lib/errors.js';
import { frameCentreSeconds, frameCount } from './frames.js';
import { SILENCE_DBFS, frameVolumes, rmsDbfs } from './volume.js';
import { SR, tone } from './synthetic-audio.test-util.js';

test('frame layout: whole frames only, centres every 10 ms', () => {
  const layout = { frameSize: 400, hop: 160 };
  assert.equal(frameCount(399, layout), 0);
  assert.equal(frameCount(400, layout), 1);
  assert.equal(frameCount(559, layout), 1);
  assert.equal(frameCount(560, layout), 2);
  assert.equal(frameCount(SR, layout), 98);
  assert.equal(frameCentreSeconds(0, layout, SR), 0.0125);
  assert.equal(frameCentreSeconds(3, layout, SR), 0.0425);
  assert.throws(() => frameCount(100, { frameSize: 400, hop: 0 }), AttuneError);
});

test('dBFS: full-scale square 0, full-scale sine −3.01, half-scale sine −9.03, silence clamped', () => {
  const square = Float32Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 1 : -1));
  assert.ok(Math.abs(rmsDbfs(square, 0, 400)) < 1e-9);
  const sine = tone(0.1, 200, 1); // 20 whole periods in 0.1 s
  assert.ok(Math.abs(rmsDbfs(sine, 0, 1600) + 3.0103) < 0.01);
  const half = tone(0.1, 200, 0.5);
  assert.ok(Math.abs(rmsDbfs(half, 0, 1600) + 9.0309) < 0.01);
  assert.equal(rmsDbfs(new Float32Array(400), 0, 400), SILENCE_DBFS);
});

test('frameVolumes follows a step in level', () => {
  const signal = new Float32Array(SR);
  for (let i = 8_000; i < SR; i++) signal[i] = 0.1 * Math.sin((2 * Math.PI * 250 * i) / SR);
  const layout = { frameSize: 400, hop: 160 };
  const db = frameVolumes(signal, layout);
  assert.equal(db.length, frameCount(SR, layout));
  assert.equal(db[0], SILENCE_DBFS);
  const expected = 20 * Math.log10(0.1 / Math.SQRT2);
  assert.ok(Math.abs(db[db.length - 1] - expected) < 0.05, `${db[db.length - 1]} vs ${expected}`);
  // The frame straddling the step sits between the two levels.
  const straddle = Math.floor((8_000 - 200) / 160);
  assert.ok(db[straddle] > SILENCE_DBFS && db[straddle] < expected);
  // Reusing an output buffer gives the same values.
  const out = new Float32Array(db.length + 5);
  assert.deepEqual(frameVolumes(signal, layout, out), db);
});
