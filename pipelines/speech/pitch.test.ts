import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttuneError } from '../../lib/errors.js';
import { Mulberry32, gaussian } from '../../lib/prng.js';
import { type PitchTrack, PitchTracker, createPitchPlan, estimatePitch, trackPitch } from './pitch.js';
import { SR, addNoise, harmonicSignal, tone } from './synthetic-audio.test-util.js';

const FRAME = 480;
const HOP = 160;
const plan = createPitchPlan({ sampleRate: SR, frameSize: FRAME, minHz: 60, maxHz: 500 });

/** f0 truth at the centre of frame i, or 0 when the frame is not entirely inside the sound. */
type Truth = (i: number) => number;

/**
 * Share of truly voiced frames that are gross errors: called unvoiced, or more than 20 % off.
 * Stricter than the usual GPE, which only counts frames both sides call voiced.
 */
function grossErrorRate(track: PitchTrack, frames: number, truth: Truth): { rate: number; voiced: number } {
  let voiced = 0;
  let gross = 0;
  for (let i = 0; i < frames; i++) {
    const f = truth(i);
    if (f <= 0) continue;
    voiced++;
    if (track.voiced[i] !== 1 || Math.abs(track.f0Hz[i] / f - 1) > 0.2) gross++;
  }
  return { rate: gross / voiced, voiced };
}

function frames(signal: Float32Array): number {
  return Math.floor((signal.length - FRAME) / HOP) + 1;
}

const centre = (i: number) => (i * HOP + FRAME / 2) / SR;

test('pure tones at 80, 120, 220 and 440 Hz: every frame voiced, within 0.5 % of f0', () => {
  for (const hz of [80, 120, 220, 440]) {
    const signal = tone(1, hz);
    const track = trackPitch(signal, HOP, plan);
    const n = frames(signal);
    assert.equal(grossErrorRate(track, n, () => hz).rate, 0, `${hz} Hz`);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(track.f0Hz[i] / hz - 1));
    assert.ok(worst < 0.005, `${hz} Hz: worst relative error ${worst}`);
    for (let i = 0; i < n; i++) assert.ok(track.aperiodicity[i] < 0.05, `${hz} Hz frame ${i} aperiodicity ${track.aperiodicity[i]}`);
  }
});

test('parabolic interpolation resolves periods between whole samples', () => {
  // 16000 / 173.3 = 92.33 samples: a whole-sample lag would be 0.36 % off at best.
  const hz = 173.3;
  const est = estimatePitch(tone(0.1, hz), 0, plan);
  assert.ok(est.voiced);
  assert.ok(Math.abs(est.f0Hz - hz) < 0.1, `got ${est.f0Hz}`);
});

test('harmonic-rich tones with a weak fundamental: the fundamental, not a harmonic', () => {
  // Sawtooth-like 1/k harmonics up to 12, with the fundamental cut to a tenth of its share.
  const amplitudes = Array.from({ length: 12 }, (_, k) => 1 / (k + 1));
  amplitudes[0] = 0.1;
  for (const hz of [90, 150, 230]) {
    const signal = harmonicSignal(1, () => hz, amplitudes);
    const track = trackPitch(signal, HOP, plan);
    const { rate } = grossErrorRate(track, frames(signal), () => hz);
    assert.ok(rate <= 0.02, `${hz} Hz: gross error rate ${rate}`);
  }
});

test('a dominant second harmonic (first formant near 2·f0, as in a low voice\'s open vowel): the fundamental, not the octave above', () => {
  // A first-dip rule doubles these: the half-period dip is deep and comes first. The fundamental
  // carries a sixth of the second harmonic's amplitude, intonation moves ±3 % at 4 Hz, 25 dB SNR.
  let seed = 11;
  for (const amplitudes of [
    [0.15, 1, 0.2],
    [0.1, 1, 0.3, 0.1],
  ]) {
    for (const hz of [80, 100, 120, 150]) {
      const f0At = (t: number) => hz * (1 + 0.03 * Math.sin(2 * Math.PI * 4 * t));
      const signal = addNoise(harmonicSignal(1, f0At, amplitudes), 25, seed++);
      const track = trackPitch(signal, HOP, plan);
      const { rate } = grossErrorRate(track, frames(signal), (i) => f0At(centre(i)));
      assert.ok(rate <= 0.02, `${hz} Hz ${JSON.stringify(amplitudes)}: gross error rate ${rate}`);
    }
  }
});

test('glide 100 → 300 Hz: gross errors on at most 2 % of frames', () => {
  const seconds = 2;
  const f0At = (t: number) => 100 + (200 * t) / seconds;
  const signal = harmonicSignal(seconds, f0At, [1, 0.6, 0.4, 0.3]);
  const track = trackPitch(signal, HOP, plan);
  const n = frames(signal);
  const { rate, voiced } = grossErrorRate(track, n, (i) => f0At(centre(i)));
  assert.equal(voiced, n);
  assert.ok(rate <= 0.02, `gross error rate ${rate}`);
  // The track rises: its last tenth lies well above its first.
  assert.ok(track.f0Hz[n - 5] > 2.5 * track.f0Hz[5], `${track.f0Hz[5]} → ${track.f0Hz[n - 5]}`);
});

test('tones in white noise at 20 and 10 dB SNR', () => {
  const amplitudes = [1, 0.5, 0.3, 0.2];
  let seed = 1;
  for (const snr of [20, 10]) {
    for (const hz of [110, 200, 320]) {
      const signal = addNoise(harmonicSignal(1, () => hz, amplitudes), snr, seed++);
      const track = trackPitch(signal, HOP, plan);
      const { rate } = grossErrorRate(track, frames(signal), () => hz);
      assert.ok(rate <= 0.02, `${hz} Hz at ${snr} dB: gross error rate ${rate}`);
    }
  }
});

test('silence and noise are unvoiced', () => {
  const silence = new Float32Array(SR);
  const quiet = trackPitch(silence, HOP, plan);
  assert.ok(quiet.voiced.every((v) => v === 0));
  assert.ok(quiet.f0Hz.every((f) => f === 0));

  // Loud white noise: energy passes the gate, periodicity does not.
  const rng = new Mulberry32(7);
  const noise = Float32Array.from({ length: SR }, () => 0.1 * gaussian(rng));
  const noisy = trackPitch(noise, HOP, plan);
  const voicedShare = noisy.voiced.reduce((a, v) => a + v, 0) / noisy.voiced.length;
  assert.ok(voicedShare <= 0.01, `voiced share of noise ${voicedShare}`);
  assert.ok(Math.min(...noisy.dbfs) > -25);
});

test('the energy gate: a periodic tone below minDbfs is unvoiced', () => {
  const faint = tone(0.5, 200, 10 ** (-60 / 20)); // −63 dBFS RMS
  const gated = trackPitch(faint, HOP, plan);
  assert.ok(gated.voiced.every((v) => v === 0));
  // Periodic all the same: only the gate said no.
  assert.ok(gated.aperiodicity.every((a) => a < 0.05));
  const open = trackPitch(faint, HOP, createPitchPlan({ sampleRate: SR, frameSize: FRAME, minDbfs: -80 }));
  assert.ok(open.voiced.every((v) => v === 1));
});

test('a tone with silent gaps: voicing changes within one frame of each boundary', () => {
  // On/off boundaries at sample positions that are not multiples of the hop.
  const segments: Array<[number, number]> = [
    [1_234, 9_321],
    [14_050, 22_777],
    [27_500, 36_111],
  ];
  const signal = new Float32Array(40_000);
  const hz = 160;
  for (const [from, to] of segments) {
    for (let i = from; i < to; i++) signal[i] = 0.5 * Math.sin((2 * Math.PI * hz * (i - from)) / SR);
  }
  const track = trackPitch(signal, HOP, plan);
  const n = frames(signal);
  const inside = (i: number) => segments.some(([a, b]) => i * HOP >= a && i * HOP + FRAME <= b);
  const outside = (i: number) => segments.every(([a, b]) => i * HOP + FRAME <= a || i * HOP >= b);
  let straddling = 0;
  for (let i = 0; i < n; i++) {
    if (inside(i)) {
      assert.equal(track.voiced[i], 1, `frame ${i} inside the tone`);
      assert.ok(Math.abs(track.f0Hz[i] / hz - 1) < 0.01, `frame ${i}: ${track.f0Hz[i]}`);
    } else if (outside(i)) {
      assert.equal(track.voiced[i], 0, `frame ${i} in silence`);
    } else {
      straddling++;
    }
  }
  // Each boundary is straddled by at most ⌈FRAME / HOP⌉ = 3 frames.
  assert.ok(straddling <= 6 * Math.ceil(FRAME / HOP));
  // The onset decision lands within one frame (30 ms) of the true onset.
  for (const [from] of segments) {
    const first = Array.from(track.voiced).findIndex((v, i) => v === 1 && i * HOP + FRAME > from);
    assert.ok(Math.abs(centre(first) - from / SR) <= FRAME / SR, `onset ${from}: first voiced frame ${first}`);
  }
});

test('a plan is reused without carrying state from one signal to the next', () => {
  const a = harmonicSignal(0.5, (t) => 120 + 80 * t, [1, 0.5, 0.25]);
  const b = addNoise(tone(0.5, 300), 15, 3);
  const first = trackPitch(a, HOP, plan);
  trackPitch(b, HOP, plan);
  const again = trackPitch(a, HOP, plan);
  assert.deepEqual(again.f0Hz, first.f0Hz);
  assert.deepEqual(again.voiced, first.voiced);
});

test('a tracker fed frame by frame gives trackPitch, and a frame depends on no audio beyond the look-ahead', () => {
  const a = addNoise(harmonicSignal(2, (t) => 110 + 60 * Math.sin(2 * Math.PI * t), [0.3, 1, 0.5, 0.2]), 20, 21);
  a.fill(0, 9_000, 14_000); // a pause, so voicing changes are decided too
  const whole = trackPitch(a, HOP, plan);
  const n = frames(a);
  const f0 = new Float32Array(n);
  const voiced = new Uint8Array(n);
  let next = 0;
  const tracker = new PitchTracker(plan, HOP, (i, hz, isVoiced) => {
    assert.equal(i, next++, 'frames arrive in order, once each');
    f0[i] = hz;
    voiced[i] = isVoiced ? 1 : 0;
  });
  for (let i = 0; i < n; i++) {
    tracker.pushFrame(a, i * HOP);
    // Frame i − lookahead is decided as soon as frame i is in.
    assert.equal(next, Math.max(0, i + 1 - plan.lookaheadFrames));
  }
  tracker.finish();
  assert.equal(next, n);
  assert.deepEqual(f0, whole.f0Hz);
  assert.deepEqual(voiced, whole.voiced);

  // Replace everything after frame k + lookahead with other sound: frames up to k are unchanged.
  const k = 60;
  const b = Float32Array.from(a);
  const cut = (k + plan.lookaheadFrames) * HOP + FRAME;
  b.set(addNoise(harmonicSignal((b.length - cut) / SR, () => 300, [1, 0.5]), 5, 22), cut);
  const other = trackPitch(b, HOP, plan);
  assert.deepEqual(other.f0Hz.subarray(0, k + 1), whole.f0Hz.subarray(0, k + 1));
  assert.deepEqual(other.voiced.subarray(0, k + 1), whole.voiced.subarray(0, k + 1));
  assert.notDeepEqual(other.f0Hz.subarray(k + plan.lookaheadFrames + 3), whole.f0Hz.subarray(k + plan.lookaheadFrames + 3));
});

test('invalid plans and frames are coded errors', () => {
  const expectValidation = (fn: () => unknown) =>
    assert.throws(fn, (e: unknown) => e instanceof AttuneError && e.code === 'validation_error');
  // 267 lags at 60 Hz leave a 23-sample window, shorter than the 32-sample shortest period.
  expectValidation(() => createPitchPlan({ sampleRate: SR, frameSize: 290, minHz: 60 }));
  expectValidation(() => createPitchPlan({ sampleRate: SR, frameSize: FRAME, minHz: 300, maxHz: 200 }));
  expectValidation(() => createPitchPlan({ sampleRate: SR, frameSize: FRAME, threshold: 1.5 }));
  expectValidation(() => estimatePitch(new Float32Array(100), 0, plan));
  expectValidation(() => trackPitch(new Float32Array(1000), 0, plan));
  expectValidation(() => createPitchPlan({ sampleRate: SR, frameSize: FRAME, lookaheadFrames: -1 }));
  expectValidation(() => createPitchPlan({ sampleRate: SR, frameSize: FRAME, octaveJumpCost: Number.NaN }));
});
