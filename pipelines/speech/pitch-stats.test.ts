import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MONOTONE_SEMITONES, pitchStats } from './pitch-stats.js';
import { createPitchPlan, trackPitch } from './pitch.js';
import { SR, harmonicSignal } from './synthetic-audio.test-util.js';

test('no voiced frames: count 0 and no statistics', () => {
  const s = pitchStats(new Float32Array([0, 0, 120]), new Uint8Array([0, 0, 0]));
  assert.equal(s.voicedFrames, 0);
  assert.equal(s.meanHz, null);
  assert.equal(s.monotone, null);
});

test('two pitches an octave apart: exact mean, SD, range and 6-semitone variability; unvoiced frames ignored', () => {
  const f0 = new Float32Array([100, 200, 0, 100, 200, 999]);
  const voiced = new Uint8Array([1, 1, 0, 1, 1, 0]);
  const s = pitchStats(f0, voiced);
  assert.equal(s.voicedFrames, 4);
  assert.equal(s.meanHz, 150);
  assert.equal(s.sdHz, 50);
  assert.equal(s.minHz, 100);
  assert.equal(s.maxHz, 200);
  assert.equal(s.medianHz, 150);
  // ±log2 offsets from 150 Hz: −7.02 and +4.98 semitones, 12 apart, so the SD is 6.
  assert.ok(Math.abs((s.variabilitySemitones ?? NaN) - 6) < 1e-9);
  assert.equal(s.monotone, false);
});

test('5th and 95th percentiles interpolate between order statistics and ignore a few stray frames', () => {
  // 0..100 Hz + 100 in steps of 1 (101 voiced frames), plus two stray frames at 1000 Hz.
  const values = Array.from({ length: 101 }, (_, i) => 100 + i);
  const s = pitchStats(new Float32Array(values), new Uint8Array(101).fill(1));
  assert.equal(s.p5Hz, 105);
  assert.equal(s.p95Hz, 195);
  // 21 frames: (n − 1) · 0.05 = 1, (n − 1) · 0.95 = 19 exactly; 11 frames: 0.5 and 9.5, halfway.
  const eleven = pitchStats(new Float32Array([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]), new Uint8Array(11).fill(1));
  assert.equal(eleven.p5Hz, 15);
  assert.equal(eleven.p95Hz, 105);
  const stray = pitchStats(new Float32Array([...values, 1000, 1000]), new Uint8Array(103).fill(1));
  assert.equal(stray.maxHz, 1000);
  assert.ok(stray.p95Hz! < 200, `p95 ${stray.p95Hz}`);
  assert.equal(pitchStats(new Float32Array([150]), new Uint8Array([1])).p5Hz, 150);
  assert.equal(pitchStats(new Float32Array([150]), new Uint8Array([0])).p95Hz, null);
});

test('a steady pitch is monotone; the threshold is configurable', () => {
  // ±1 semitone around 200 Hz: SD 1 semitone.
  const lo = 200 * 2 ** (-1 / 12);
  const hi = 200 * 2 ** (1 / 12);
  const f0 = new Float32Array([lo, hi, lo, hi, 200]);
  const voiced = new Uint8Array([1, 1, 1, 1, 1]);
  const s = pitchStats(f0, voiced);
  assert.ok(s.variabilitySemitones! < MONOTONE_SEMITONES);
  assert.equal(s.monotone, true);
  assert.equal(pitchStats(f0, voiced, { monotoneSemitones: 0.5 }).monotone, false);
  assert.equal(pitchStats(f0, voiced, { from: 4 }).voicedFrames, 1);
});

test('statistics of a tracked glide match those of its true f0', () => {
  const seconds = 2;
  const f0At = (t: number) => 100 * 3 ** (t / seconds); // 100 → 300 Hz, even in semitones
  const signal = harmonicSignal(seconds, f0At, [1, 0.5, 0.3]);
  const track = trackPitch(signal, 160, createPitchPlan({ sampleRate: SR, frameSize: 480 }));
  const n = Math.floor((signal.length - 480) / 160) + 1;
  const truth = Float32Array.from({ length: n }, (_, i) => f0At((i * 160 + 240) / SR));
  const measured = pitchStats(track.f0Hz, track.voiced, { to: n });
  const expected = pitchStats(truth, new Uint8Array(n).fill(1));
  assert.equal(measured.voicedFrames, n);
  assert.ok(Math.abs(measured.meanHz! / expected.meanHz! - 1) < 0.02, `${measured.meanHz} vs ${expected.meanHz}`);
  assert.ok(Math.abs(measured.variabilitySemitones! - expected.variabilitySemitones!) < 0.2);
  // log3(…) of a uniform span of 19 semitones: SD = 19.02 / √12 ≈ 5.5.
  assert.ok(Math.abs(expected.variabilitySemitones! - (12 * Math.log2(3)) / Math.sqrt(12)) < 0.1);
});
