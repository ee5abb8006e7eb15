import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRandom } from '../../lib/prng.js';
import { createResampler, resample } from './resample.js';
import { WavStreamParser } from './wav-stream.js';

const dataDir = new URL('../../../shared/data/', import.meta.url).pathname;

function tone(n: number, hz: number, rate: number, amp: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * hz * i) / rate);
  return x;
}

/** Amplitude of the component at `hz` (single-bin DFT over `x`, which should span whole periods). */
function amplitudeAt(x: Float32Array, hz: number, rate: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < x.length; i++) {
    const w = (2 * Math.PI * hz * i) / rate;
    re += x[i] * Math.cos(w);
    im += x[i] * Math.sin(w);
  }
  return (2 * Math.hypot(re, im)) / x.length;
}

/** Frequency of the largest Hann-windowed DFT bin, scanned in `step` Hz. */
function peakHz(x: Float32Array, rate: number, step: number): number {
  const w = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) w[i] = x[i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (x.length - 1)));
  let best = 0;
  let bestHz = 0;
  for (let hz = step; hz < rate / 2; hz += step) {
    const a = amplitudeAt(w, hz, rate);
    if (a > best) [best, bestHz] = [a, hz];
  }
  return bestHz;
}

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

function streamInPieces(x: Float32Array, from: number, to: number, seed: number, maxPiece: number): Float32Array {
  const r = createResampler(from, to);
  const rnd = createRandom(seed);
  const parts: Float32Array[] = [];
  for (let pos = 0; pos < x.length; ) {
    const n = Math.floor(rnd() * maxPiece); // 0-length pushes included
    parts.push(r.push(x.subarray(pos, pos + n)));
    pos += n;
  }
  parts.push(r.flush());
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

for (const from of [48000, 44100]) {
  test(`a 1 kHz tone at ${from} Hz comes out at 1 kHz, 16 kHz, within 0.5 dB`, () => {
    const amp = 0.5;
    const y = resample(tone(from, 1000, from, amp), from); // 1 s
    assert.equal(y.length, 16000);
    // Away from the zero-padded edges; 1000 samples = 62.5 periods → use 14 000 (875 periods).
    const mid = y.subarray(1000, 15000);
    assert.equal(peakHz(mid, 16000, 10), 1000);
    const db = 20 * Math.log10(amplitudeAt(mid, 1000, 16000) / amp);
    assert.ok(Math.abs(db) < 0.5, `gain ${db.toFixed(4)} dB`);
    // The output is the tone at 16 kHz, sample for sample (no delay, no distortion).
    const expected = tone(16000, 1000, 16000, amp);
    let maxErr = 0;
    for (let i = 1000; i < 15000; i++) maxErr = Math.max(maxErr, Math.abs(y[i] - expected[i]));
    assert.ok(maxErr < 0.01 * amp, `max deviation ${maxErr}`);
  });
}

test('tones above 8 kHz at 48 kHz are suppressed ≥ 40 dB instead of aliasing into the band', () => {
  for (const hz of [8500, 10000, 14000, 20000]) {
    const x = tone(48000, hz, 48000, 0.5);
    const y = resample(x, 48000).subarray(500, 15500);
    const db = 20 * Math.log10(rms(y) / rms(x));
    assert.ok(db < -40, `${hz} Hz: ${db.toFixed(1)} dB`);
    if (hz === 10000) console.log(`# 10 kHz tone at 48 kHz → 16 kHz: ${db.toFixed(1)} dB`);
  }
  // The passband edge (7 kHz, top of wideband speech) passes within 0.5 dB.
  const x = tone(48000, 7000, 48000, 0.5);
  const db7 = 20 * Math.log10(amplitudeAt(resample(x, 48000).subarray(1000, 15000), 7000, 16000) / 0.5);
  assert.ok(Math.abs(db7) < 0.5, `7 kHz: ${db7.toFixed(3)} dB`);
});

test('streaming output equals one-shot output, whatever the chunking', () => {
  const rnd = createRandom(42);
  for (const [from, to] of [[48000, 16000], [44100, 16000], [22050, 16000], [8000, 16000], [16000, 16000], [11025, 16000], [47999, 16000]]) {
    const x = new Float32Array(Math.round(from * 0.7));
    for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
    const once = resample(x, from, to);
    assert.equal(once.length, Math.ceil((x.length * to) / from), `${from} → ${to} length`);
    for (const [seed, maxPiece] of [[1, 3], [2, 300], [3, 20000]]) {
      assert.deepEqual(streamInPieces(x, from, to, seed, maxPiece), once, `${from} → ${to}, pieces < ${maxPiece}`);
    }
  }
});

test('16 kHz in is 16 kHz out unchanged; DC passes at unity gain', () => {
  const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i / 7));
  assert.deepEqual(resample(x, 16000), x);
  const dc = resample(new Float32Array(44100).fill(0.25), 44100).subarray(500, 15500);
  for (const v of dc) assert.ok(Math.abs(v - 0.25) < 1e-6);
  assert.throws(() => createResampler(0), RangeError);
});

function readWav(path: string): { rate: number; samples: Float32Array } {
  const p = new WavStreamParser();
  const parts = p.push(readFileSync(path));
  p.end();
  const samples = new Float32Array(parts.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of parts) {
    samples.set(x, o);
    o += x.length;
  }
  return { rate: p.format!.sampleRate, samples };
}

test('the 48 kHz PTDB clip resampled to 16 kHz matches the shipped 16 kHz version', () => {
  const hi = readWav(`${dataDir}pitch/mic_F01_sa1.wav`);
  const ref = readWav(`${dataDir}pitch/mic_F01_sa1_16k.wav`);
  assert.equal(hi.rate, 48000);
  assert.equal(ref.rate, 16000);
  const ours = resample(hi.samples, 48000);
  assert.ok(Math.abs(ours.length - ref.samples.length) <= 1, `${ours.length} vs ${ref.samples.length}`);
  // Normalised correlation at each lag within ±20 ms; the best lag is the other tool's delay.
  const n = Math.min(ours.length, ref.samples.length);
  let best = { lag: 0, r: -1 };
  for (let lag = -320; lag <= 320; lag++) {
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = Math.max(0, -lag); i < n && i + lag < n; i++) {
      const a = ours[i];
      const b = ref.samples[i + lag];
      sxy += a * b;
      sxx += a * a;
      syy += b * b;
    }
    const r = sxy / Math.sqrt(sxx * syy);
    if (r > best.r) best = { lag, r };
  }
  // Gain difference too, in dB (a tool that normalised would show here).
  const gainDb = 20 * Math.log10(rms(ref.samples) / rms(ours));
  console.log(`# PTDB F01 sa1: correlation ${best.r.toFixed(5)} at lag ${best.lag} samples; level difference ${gainDb.toFixed(2)} dB`);
  assert.ok(best.r > 0.99, `correlation ${best.r}`);
  assert.ok(Math.abs(best.lag) <= 2, `lag ${best.lag}`);
});
