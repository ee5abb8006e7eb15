import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectFilledPauses, spanEvidence } from './filled-pauses.js';
import { SR, addNoise, harmonicSignal } from '../synthetic-audio.test-util.js';
import { Mulberry32, gaussian } from '../../../lib/prng.js';

// A vowel-like source: 12 harmonics falling 6 dB per octave, like a glottal pulse train.
const VOWEL = Array.from({ length: 12 }, (_, k) => 1 / (k + 1));

/** `seconds` of the signal with 300 ms of silence either side. */
function padded(signal: Float32Array): Float32Array {
  const pad = Math.round(0.3 * SR);
  const out = new Float32Array(signal.length + 2 * pad);
  out.set(signal, pad);
  return out;
}

function heldVowel(seconds: number, f0At: (t: number) => number = () => 120): Float32Array {
  const x = harmonicSignal(seconds, f0At, VOWEL, 0.3);
  // 10 ms ramps, as a voice starts and stops.
  const ramp = Math.round(0.01 * SR);
  for (let i = 0; i < ramp; i++) {
    x[i] *= i / ramp;
    x[x.length - 1 - i] *= i / ramp;
  }
  return padded(addNoise(x, 40, 7));
}

test('a held vowel-like tone of 400 ms is one filled pause, at its place', () => {
  const found = detectFilledPauses(heldVowel(0.4));
  assert.equal(found.length, 1);
  const [p] = found;
  assert.ok(Math.abs(p.startMs - 300) <= 30, `start ${p.startMs}`);
  assert.ok(Math.abs(p.endMs - 700) <= 30, `end ${p.endMs}`);
  assert.ok(Math.abs(p.meanF0Hz - 120) < 2, `f0 ${p.meanF0Hz}`);
  assert.ok(p.f0SpreadSemitones < 0.3);
  assert.ok(p.score > 0.5 && p.score <= 1);
  assert.equal(p.durationMs, p.endMs - p.startMs);
});

test('offsetMs shifts the times', () => {
  const [p] = detectFilledPauses(heldVowel(0.4), { offsetMs: 10_000 });
  assert.ok(Math.abs(p.startMs - 10_300) <= 30);
});

test('a 100 ms tone is too short and a 1500 ms tone too long', () => {
  assert.deepEqual(detectFilledPauses(heldVowel(0.1)), []);
  assert.deepEqual(detectFilledPauses(heldVowel(1.5)), []);
  // The bounds are options: the same 1500 ms tone is found when allowed.
  assert.equal(detectFilledPauses(heldVowel(1.5), { maxMs: 2000 }).length, 1);
});

test('a glide of 6 semitones over 400 ms is not level', () => {
  const glide = heldVowel(0.4, (t) => 120 * 2 ** ((6 * t) / 0.4 / 12));
  assert.deepEqual(detectFilledPauses(glide), []);
});

test('white noise is not voiced', () => {
  const rng = new Mulberry32(3);
  const noise = new Float32Array(SR);
  for (let i = 0; i < noise.length; i++) noise[i] = 0.1 * gaussian(rng);
  assert.deepEqual(detectFilledPauses(padded(noise)), []);
});

test('a vowel that changes quality every 80 ms (running speech) is not a filled pause', () => {
  // Alternate the spectral tilt, as formants move between syllables, on a level pitch.
  const parts: Float32Array[] = [];
  for (let k = 0; k < 8; k++) {
    const amps = VOWEL.map((a, h) => (k % 2 === 0 ? a : h < 3 ? a / 6 : a * 2));
    parts.push(harmonicSignal(0.08, () => 120, amps, 0.3));
  }
  const x = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  assert.deepEqual(detectFilledPauses(padded(x)), []);
});

test('empty and too-short input give no pauses', () => {
  assert.deepEqual(detectFilledPauses(new Float32Array(0)), []);
  assert.deepEqual(detectFilledPauses(new Float32Array(100)), []);
});

test('span evidence: a held vowel is voiced, steady and level; the silence around it is not voiced', () => {
  // 300 ms silence, 500 ms vowel, 300 ms silence.
  const x = heldVowel(0.5);
  const [vowel, silence] = spanEvidence(x, [
    { startMs: 350, endMs: 750 },
    { startMs: 0, endMs: 250 },
  ]);
  assert.ok(vowel.voicedShare > 0.9, `voiced ${vowel.voicedShare}`);
  assert.ok(vowel.f0SpreadSemitones < 0.5, `spread ${vowel.f0SpreadSemitones}`);
  assert.ok(vowel.steadyShare > 0.8, `steady ${vowel.steadyShare}`);
  assert.ok(Math.abs(vowel.meanF0Hz - 120) < 3, `f0 ${vowel.meanF0Hz}`);
  assert.equal(silence.voicedShare, 0);
});

test('span evidence: a glide spreads over the semitones it covers, and an octave jump does not count as one', () => {
  // 120 → 160 Hz over 500 ms: 5 semitones.
  const glide = heldVowel(0.5, (t) => 120 + 80 * t);
  const [g] = spanEvidence(glide, [{ startMs: 350, endMs: 750 }]);
  assert.ok(g.f0SpreadSemitones > 3, `glide spread ${g.f0SpreadSemitones}`);
  // 120 Hz, then 240 Hz: the same pitch class, as an octave error or period doubling reads.
  const jump = heldVowel(0.5, (t) => (t < 0.25 ? 120 : 240));
  const [j] = spanEvidence(jump, [{ startMs: 350, endMs: 750 }]);
  assert.ok(j.f0SpreadSemitones < 1, `octave jump spread ${j.f0SpreadSemitones}`);
});

/** `x` scaled to an RMS level of `dbfs`. */
function atLevel(x: Float32Array, dbfs: number): Float32Array {
  let sq = 0;
  for (const v of x) sq += v * v;
  const gain = 10 ** (dbfs / 20) / Math.sqrt(sq / x.length);
  return x.map((v) => v * gain);
}

test('the loudness floor follows the speaker: a hum 18 dB under the speech at -50 dBFS is heard, one 30 dB under is not', () => {
  // 2 s of syllable-like voice (formants moving every 80 ms, never a filled pause itself) at
  // -32 dBFS, 300 ms of silence, then a 500 ms hum at 100 Hz: the quiet "hmm" voice activity
  // leaves out, which the filler search now sees in the utterance's context.
  const syllables: Float32Array[] = [];
  for (let k = 0; k < 25; k++) syllables.push(harmonicSignal(0.08, () => 130, VOWEL.map((a, h) => (k % 2 === 0 ? a : h < 3 ? a / 6 : a * 2)), 0.3));
  const speech = atLevel(Float32Array.from(syllables.flatMap((p) => Array.from(p))), -32);
  const withHum = (humDbfs: number) => {
    const hum = atLevel(harmonicSignal(0.5, () => 100, VOWEL, 0.3), humDbfs);
    const x = new Float32Array(speech.length + Math.round(0.3 * SR) + hum.length + Math.round(0.3 * SR));
    x.set(speech, 0);
    x.set(hum, speech.length + Math.round(0.3 * SR));
    return { x: addNoise(x, 60, 11), humStartMs: ((speech.length + 0.3 * SR) * 1000) / SR };
  };
  const heard = withHum(-50);
  const found = detectFilledPauses(heard.x);
  assert.equal(found.length, 1, `found ${JSON.stringify(found.map((p) => [p.startMs, p.endMs]))}`);
  assert.ok(Math.abs(found[0].startMs - heard.humStartMs) <= 40, `start ${found[0].startMs} vs ${heard.humStartMs}`);
  // 30 dB under the speech is under the relative floor (maxDbBelowSpeech, 25 dB): background.
  assert.deepEqual(detectFilledPauses(withHum(-62).x), []);
});
