import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSplineScratch, resampleCubic, resampleLinear, sampleCountFor } from './resample.js';
import { AttuneError } from '../../lib/errors.js';

test('a 64 s window at 4 Hz has 256 samples', () => {
  assert.equal(sampleCountFor(1000, 65000, 4), 256);
});

test('natural cubic spline reproduces a straight line exactly between the knots', () => {
  const t = Float64Array.from([0, 900, 1850, 2700, 3800, 4650]);
  const rr = Float64Array.from(t, (x) => 800 + 0.05 * x);
  const out = new Float64Array(16);
  const n = resampleCubic(t, rr, t.length, 500, 4500, 4, out, createSplineScratch(2));
  assert.equal(n, 16);
  for (let k = 0; k < n; k++) {
    const time = 500 + k * 250;
    assert.ok(Math.abs(out[k] - (800 + 0.05 * time)) < 1e-9, `sample ${k}: ${out[k]}`);
  }
});

test('spline follows a sampled sinusoid far better than linear interpolation', () => {
  // Beats every ~0.95 s of a 0.1 Hz sinusoid: the spline error is a small fraction of the linear one.
  const times: number[] = [];
  for (let t = 0; t <= 70000; t += 950 + 50 * Math.sin(t / 3000)) times.push(t);
  const t = Float64Array.from(times);
  const f = (x: number) => 1000 + 80 * Math.sin((2 * Math.PI * 0.1 * x) / 1000);
  const rr = Float64Array.from(t, f);
  const cubic = new Float64Array(256);
  const linear = new Float64Array(256);
  const scratch = createSplineScratch(8); // grows on demand
  resampleCubic(t, rr, t.length, 2000, 66000, 4, cubic, scratch);
  resampleLinear(t, rr, t.length, 2000, 66000, 4, linear, scratch);
  let errCubic = 0;
  let errLinear = 0;
  for (let k = 0; k < 256; k++) {
    const truth = f(2000 + k * 250);
    errCubic = Math.max(errCubic, Math.abs(cubic[k] - truth));
    errLinear = Math.max(errLinear, Math.abs(linear[k] - truth));
  }
  assert.ok(scratch.capacity >= t.length);
  assert.ok(errCubic < 0.5, `cubic max error ${errCubic} ms`);
  assert.ok(errLinear > 3 * errCubic, `linear ${errLinear} vs cubic ${errCubic}`);
});

test('outside the beats the edge values are held; repeated beat times are skipped', () => {
  const t = Float64Array.from([2000, 3000, 3000, 4000]);
  const rr = Float64Array.from([900, 1000, 5000, 1100]);
  const out = new Float64Array(24);
  resampleCubic(t, rr, t.length, 0, 6000, 4, out, createSplineScratch());
  assert.equal(out[0], 900); // t = 0
  assert.equal(out[8], 900); // t = 2000, the first beat
  assert.equal(out[23], 1100); // t = 5750
  assert.ok(Math.abs(out[12] - 1000) < 1e-9, `value at the duplicate beat ${out[12]}`);
  for (let k = 0; k < 24; k++) assert.ok(out[k] < 1200, `the skipped 5000 ms knot leaked in at ${k}`);
});

test('one beat gives a constant series, none gives NaN', () => {
  const out = new Float64Array(4);
  resampleCubic(Float64Array.of(500), Float64Array.of(870), 1, 0, 1000, 4, out, createSplineScratch());
  assert.deepEqual(Array.from(out), [870, 870, 870, 870]);
  resampleCubic(new Float64Array(0), new Float64Array(0), 0, 0, 1000, 4, out, createSplineScratch());
  assert.ok(out.every(Number.isNaN));
});

test('an output buffer too small for the window is refused', () => {
  assert.throws(
    () => resampleCubic(Float64Array.of(1), Float64Array.of(1), 1, 0, 64000, 4, new Float64Array(100), createSplineScratch()),
    (e) => e instanceof AttuneError && e.code === 'validation_error',
  );
});
