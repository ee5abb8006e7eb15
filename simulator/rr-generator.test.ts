import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RrGenerator, type Beat, type RrProfile } from './rr-generator.js';
import { Mulberry32 } from '../lib/prng.js';
import { AttuneError } from '../lib/errors.js';

const minutes = (n: number) => n * 60_000;

function generate(profile: RrProfile, seed: number, durationMs: number, startTimeMs = 0): Beat[] {
  return new RrGenerator(profile, new Mulberry32(seed), startTimeMs).beatsUntil(startTimeMs + durationMs);
}

const meanHr = (beats: Beat[]) => 60000 / (beats.reduce((s, b) => s + b.rrMs, 0) / beats.length);

/**
 * The 0.04–0.26 Hz power spectrum of one window of the tachogram: RR resampled at 4 Hz
 * by linear interpolation, mean and linear trend removed, Hann window, DFT evaluated
 * every 1/256 Hz. Deliberately independent of pipelines/hrv.
 */
function bandSpectrum(beats: Beat[], startMs: number, lengthS = 64): { freqHz: number[]; power: number[] } {
  const fs = 4;
  const n = lengthS * fs;
  const samples: number[] = [];
  let j = 0;
  for (let i = 0; i < n; i++) {
    const t = startMs + (i * 1000) / fs;
    while (j + 1 < beats.length && beats[j + 1].timeMs <= t) j++;
    const a = beats[j];
    const b = beats[Math.min(j + 1, beats.length - 1)];
    const w = b.timeMs === a.timeMs ? 0 : (t - a.timeMs) / (b.timeMs - a.timeMs);
    samples.push(a.rrMs + (b.rrMs - a.rrMs) * Math.min(1, Math.max(0, w)));
  }
  // least-squares line
  const xm = (n - 1) / 2;
  const ym = samples.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  samples.forEach((v, i) => {
    sxy += (i - xm) * (v - ym);
    sxx += (i - xm) ** 2;
  });
  const slope = sxy / sxx;
  const x = samples.map((v, i) => (v - ym - slope * (i - xm)) * 0.5 * (1 - Math.cos((2 * Math.PI * i) / (n - 1))));
  const freqHz: number[] = [];
  const power: number[] = [];
  for (let f = 0.04; f <= 0.26 + 1e-9; f += 1 / 256) {
    let re = 0;
    let im = 0;
    for (let i = 0; i < n; i++) {
      re += x[i] * Math.cos((2 * Math.PI * f * i) / fs);
      im -= x[i] * Math.sin((2 * Math.PI * f * i) / fs);
    }
    freqHz.push(f);
    power.push(re * re + im * im);
  }
  return { freqHz, power };
}

/** Frequency of the largest band peak, and the share of band power within ±0.015 Hz of it. */
function dominantPeak(beats: Beat[], startMs: number): { freqHz: number; share: number } {
  const { freqHz, power } = bandSpectrum(beats, startMs);
  let k = 0;
  for (let i = 1; i < power.length; i++) if (power[i] > power[k]) k = i;
  const total = power.reduce((s, p) => s + p, 0);
  const near = power.filter((_, i) => Math.abs(freqHz[i] - freqHz[k]) <= 0.015).reduce((s, p) => s + p, 0);
  return { freqHz: freqHz[k], share: near / total };
}

/** Windows of 64 s every 32 s over the first `durationMs` of the stream. */
function windowStarts(startMs: number, durationMs: number): number[] {
  const out: number[] = [];
  for (let s = startMs; s + 64_000 <= startMs + durationMs; s += 32_000) out.push(s);
  return out;
}

test('mean heart rate over 5 minutes is the configured one', () => {
  for (const [seed, baseHrBpm] of [[1, 55], [2, 62], [3, 70], [4, 78], [5, 85]] as const) {
    const beats = generate({ baseHrBpm, breathingRatePerMin: 10, coherence: 0.5 }, seed, minutes(5));
    const hr = meanHr(beats);
    assert.ok(Math.abs(hr - baseHrBpm) < 5, `seed ${seed}: mean HR ${hr.toFixed(1)} vs configured ${baseHrBpm}`);
  }
});

test('beats are ordered, intervals are whole plausible milliseconds and match the time line', () => {
  const start = Date.UTC(2025, 0, 1);
  const beats = generate({ baseHrBpm: 70, breathingRatePerMin: 6, coherence: 0.8, gapsPerMinute: 1, ectopicRate: 0.02 }, 9, minutes(10), start);
  assert.ok(beats[0].timeMs > start);
  for (let i = 1; i < beats.length; i++) {
    const b = beats[i];
    assert.ok(Number.isInteger(b.timeMs) && Number.isInteger(b.rrMs));
    assert.ok(b.rrMs >= 300 && b.rrMs <= 3000, `rr ${b.rrMs}`);
    assert.ok(b.timeMs > beats[i - 1].timeMs);
    if (!b.afterGap) assert.equal(b.timeMs - beats[i - 1].timeMs, b.rrMs, `beat ${i}`);
  }
});

test('a high-coherence stream is dominated by the breathing frequency', () => {
  for (const [seed, breathingRatePerMin] of [[11, 5.5], [12, 6], [13, 9], [14, 12], [15, 15]] as const) {
    // Without ectopic beats and gaps: removing those is the HRV pipeline's job, and one
    // ectopic pair is a broadband impulse that would swamp any 64 s spectrum.
    const profile: RrProfile = { baseHrBpm: 68, breathingRatePerMin, coherence: 0.9, ectopicRate: 0, gapsPerMinute: 0 };
    const beats = generate(profile, seed, minutes(5));
    const breathingHz = breathingRatePerMin / 60;
    for (const start of windowStarts(0, minutes(5))) {
      const peak = dominantPeak(beats, start);
      assert.ok(Math.abs(peak.freqHz - breathingHz) <= 1 / 64, `${breathingRatePerMin}/min window@${start}: peak ${peak.freqHz.toFixed(3)} Hz`);
      assert.ok(peak.share > 0.6, `${breathingRatePerMin}/min window@${start}: peak share ${peak.share.toFixed(2)}`);
    }
  }
});

test('the coherence level maps monotonically onto the breathing peak share of the spectrum', () => {
  const levels = [0, 0.25, 0.5, 0.75, 1];
  const shares = levels.map((coherence) => {
    const values: number[] = [];
    for (const seed of [21, 22, 23]) {
      const beats = generate({ baseHrBpm: 65, breathingRatePerMin: 6, coherence, ectopicRate: 0, gapsPerMinute: 0 }, seed, minutes(5));
      for (const start of windowStarts(0, minutes(5))) values.push(dominantPeak(beats, start).share);
    }
    return values.reduce((s, v) => s + v, 0) / values.length;
  });
  if (process.env.SIM_REPORT) console.log('coherence → mean peak share', levels.map((c, i) => `${c}:${shares[i].toFixed(3)}`).join(' '));
  for (let i = 1; i < shares.length; i++) {
    assert.ok(shares[i] > shares[i - 1], `shares ${shares.map((s) => s.toFixed(2)).join(' ')}`);
  }
  assert.ok(shares[0] < 0.5, `coherence 0 peak share ${shares[0].toFixed(2)}`);
  assert.ok(shares[4] > 0.8, `coherence 1 peak share ${shares[4].toFixed(2)}`);
});

test('ectopic beats appear at about the configured rate, as premature + compensatory pairs', () => {
  const ectopicRate = 0.01;
  const beats = generate({ baseHrBpm: 72, breathingRatePerMin: 12, coherence: 0.5, ectopicRate, gapsPerMinute: 0 }, 31, minutes(60));
  const premature = beats.filter((b) => b.kind === 'premature').length;
  const expected = ectopicRate * beats.length;
  assert.ok(Math.abs(premature - expected) < 0.3 * expected, `${premature} premature beats, expected ≈${expected.toFixed(0)}`);
  // Recognisable from the intervals alone: short, then a pause that makes up for it.
  let detected = 0;
  for (let i = 1; i + 1 < beats.length; i++) {
    const [before, b, after] = [beats[i - 1], beats[i], beats[i + 1]];
    if (b.rrMs < 0.85 * before.rrMs && after.rrMs > 1.15 * before.rrMs) {
      detected++;
      assert.equal(b.kind, 'premature');
      assert.equal(after.kind, 'compensatory');
    }
  }
  assert.ok(detected >= 0.85 * premature, `detected ${detected} of ${premature}`);
  // The default rate is 0.3 %.
  const defaults = generate({ baseHrBpm: 72, breathingRatePerMin: 12, coherence: 0.5 }, 32, minutes(120));
  const defaultRate = defaults.filter((b) => b.kind === 'premature').length / defaults.length;
  assert.ok(defaultRate > 0.0015 && defaultRate < 0.0045, `default rate ${defaultRate}`);
});

test('gaps: the device loses contact for a few seconds at about the configured rate', () => {
  const beats = generate({ baseHrBpm: 70, breathingRatePerMin: 10, coherence: 0.5, gapsPerMinute: 0.5, gapDurationMs: [3000, 6000] }, 41, minutes(60));
  const gaps: number[] = [];
  for (let i = 1; i < beats.length; i++) {
    const silence = beats[i].timeMs - beats[i - 1].timeMs;
    if (beats[i].afterGap) gaps.push(silence);
    else assert.ok(silence < 2500, `unmarked silence of ${silence} ms`);
  }
  assert.ok(gaps.length > 20 && gaps.length < 40, `${gaps.length} gaps in 60 min, expected ≈30`);
  for (const silence of gaps) assert.ok(silence >= 3000 && silence <= 6000 + 2 * 2000, `gap silence ${silence}`);
  assert.equal(generate({ baseHrBpm: 70, breathingRatePerMin: 10, coherence: 0.5, gapsPerMinute: 0 }, 41, minutes(60)).filter((b) => b.afterGap).length, 0);
});

test('the same seed gives the same stream, another seed another', () => {
  const profile: RrProfile = { baseHrBpm: 66, breathingRatePerMin: 7, coherence: 0.7, ectopicRate: 0.01, gapsPerMinute: 0.5 };
  const a = generate(profile, 123, minutes(10));
  const b = generate(profile, 123, minutes(10));
  const c = generate(profile, 124, minutes(10));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.map((x) => x.rrMs), c.slice(0, a.length).map((x) => x.rrMs));
});

test('beatsUntil and next() give the same stream, and beatsUntil stops at the bound', () => {
  const profile: RrProfile = { baseHrBpm: 75, breathingRatePerMin: 9, coherence: 0.4, ectopicRate: 0.02, gapsPerMinute: 1 };
  const all = generate(profile, 7, minutes(3));
  const chunked = new RrGenerator(profile, new Mulberry32(7));
  const pieces: Beat[] = [];
  for (let t = 1000; t <= minutes(3); t += 1000) {
    const chunk = chunked.beatsUntil(t);
    for (const beat of chunk) assert.ok(beat.timeMs > t - 1000 && beat.timeMs <= t);
    pieces.push(...chunk);
  }
  assert.deepEqual(pieces, all);
  const stepped = new RrGenerator(profile, new Mulberry32(7));
  assert.deepEqual(all.map(() => stepped.next()), all);
});

test('an impossible profile is refused with a coded error naming the fields', () => {
  assert.throws(
    () => new RrGenerator({ baseHrBpm: 500, breathingRatePerMin: 6, coherence: 1.5 }, new Mulberry32(1)),
    (e: unknown) =>
      e instanceof AttuneError &&
      e.code === 'validation_error' &&
      e.details.map((d) => d.field).sort().join() === 'baseHrBpm,coherence',
  );
});
