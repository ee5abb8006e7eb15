import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeFillerEvidence } from './merge.js';
import type { FilledPause } from './filled-pauses.js';
import { detectFillers } from '../metrics/fillers.js';
import { timedWords } from '../metrics/timed-words.test-util.js';

function pause(startMs: number, endMs: number): FilledPause {
  return { startMs, endMs, durationMs: endMs - startMs, meanF0Hz: 110, f0SpreadSemitones: 0.3, spectralFlux: 0.2, score: 0.8 };
}

// Words of 300 ms, back to back: "so" 0–300, "we" 300–600, "um" 600–900, "went" 900–1200,
// "home" 1200–1500.
const words = timedWords('So we um went home', 300);
const hits = detectFillers(words);

test('the transcript rules find "So" and "um" in the example', () => {
  assert.deepEqual(hits.map((h) => h.filler), ['so', 'um']);
});

test('an acoustic hit on a transcript filled pause makes one "both" event spanning both', () => {
  const events = mergeFillerEvidence(words, hits, [pause(650, 980)]);
  const um = events.filter((e) => e.filler === 'um');
  assert.equal(um.length, 1);
  assert.deepEqual(um[0], { startMs: 600, endMs: 980, filler: 'um', source: 'both', wordIndex: 2, heard: { startMs: 650, endMs: 980 } });
  assert.equal(events.length, 2);
});

test('transcript fillers without acoustic evidence stay "transcript"', () => {
  const events = mergeFillerEvidence(words, hits, []);
  assert.deepEqual(events.map((e) => [e.filler, e.source, e.wordIndex]), [['so', 'transcript', 0], ['um', 'transcript', 2]]);
});

test('an acoustic hit mostly on a non-filler word is a drawn-out word and is dropped', () => {
  // 1000–1400 lies on "went" (to 1200) and "home": all 400 ms on non-filler words.
  const events = mergeFillerEvidence(words, hits, [pause(1000, 1400)]);
  assert.equal(events.filter((e) => e.source === 'acoustic').length, 0);
});

test('an acoustic hit that only grazes a word (< 30% of it) stands as "filled_pause"', () => {
  // 1400–1900: 100 ms on "home" (20% of 500 ms), the rest after the last word.
  const events = mergeFillerEvidence(words, hits, [pause(1400, 1900)]);
  const acoustic = events.filter((e) => e.source === 'acoustic');
  assert.deepEqual(acoustic, [{ startMs: 1400, endMs: 1900, filler: 'filled_pause', source: 'acoustic', heard: { startMs: 1400, endMs: 1900 } }]);
  // 35% on the word: dropped.
  assert.equal(mergeFillerEvidence(words, hits, [pause(1325, 1825)]).filter((e) => e.source === 'acoustic').length, 0);
});

test('acoustic hits in silence or with no transcript at all are "acoustic" events, in time order', () => {
  const events = mergeFillerEvidence([], [], [pause(2000, 2300), pause(500, 800)]);
  assert.deepEqual(events.map((e) => [e.startMs, e.filler, e.source]), [[500, 'filled_pause', 'acoustic'], [2000, 'filled_pause', 'acoustic']]);
});

test('an acoustic hit on a lexical filler ("So") is explained by the word and dropped', () => {
  const events = mergeFillerEvidence(words, hits, [pause(0, 280)]);
  assert.deepEqual(events.map((e) => [e.filler, e.source]), [['so', 'transcript'], ['um', 'transcript']]);
});

test('word times derived from the transcript (alignment, syllable spread) do not explain a hit away: a dropped filler lands in them', () => {
  const hit = pause(3340, 4100);
  // "I" force-aligned over the "uh" before it, a syllable estimate, a normal-length word shifted onto it.
  for (const w of [
    { text: 'i', startMs: 3332, endMs: 4082, timingMethod: 'forced_alignment' as const },
    { text: 'worked', startMs: 3300, endMs: 4200, timingMethod: 'syllable_estimate' as const },
    { text: 'friday', startMs: 3500, endMs: 3990, timingMethod: 'forced_alignment' as const },
  ]) {
    assert.deepEqual(mergeFillerEvidence([w], [], [hit]).map((e) => e.source), ['acoustic'], w.text);
  }
  // A lexical filler still explains the sound, however it was timed.
  const so = [{ text: 'So', startMs: 3300, endMs: 4200, timingMethod: 'forced_alignment' as const }];
  assert.deepEqual(mergeFillerEvidence(so, detectFillers(so), [hit]).map((e) => e.source), ['transcript']);
});

test('a filled pause the alignment named is reported under its name, not "filled_pause"', () => {
  const named: FilledPause = { ...pause(2000, 2400), name: 'uh', foundBy: 'alignment' };
  assert.deepEqual(mergeFillerEvidence(words, hits, [named]).filter((e) => e.source === 'acoustic'), [{ startMs: 2000, endMs: 2400, filler: 'uh', source: 'acoustic', heard: { startMs: 2000, endMs: 2400 } }]);
});

test('an audio filler right beside a transcript "um" (under 50 ms apart) is the same filler', () => {
  // "um" is 600–900; the alignment's filler continues it from 920.
  const events = mergeFillerEvidence(words, hits, [{ ...pause(920, 1150), name: 'um', foundBy: 'alignment' }]);
  assert.deepEqual(events.map((e) => [e.filler, e.source, e.startMs, e.endMs]), [['so', 'transcript', 0, 300], ['um', 'both', 600, 1150]]);
  // 100 ms after it: another filler (with aligned word times, which do not explain a hit away).
  const aligned = words.map((w) => ({ ...w, timingMethod: 'forced_alignment' as const }));
  assert.equal(mergeFillerEvidence(aligned, hits, [pause(1000, 1150)]).filter((e) => e.source === 'acoustic').length, 1);
});

test('a transcript "uh" the alignment squeezed under 150 ms beside the hesitation it names is one filler with it; apart or full-length, two', () => {
  // "I uh went": the decoder gave "uh" 60 ms (1000–1060) and the hesitation's audio (1150–1900)
  // to an optional filler beside it.
  const said = [
    { text: 'I', startMs: 600, endMs: 800, timingMethod: 'forced_alignment' as const },
    { text: 'uh', startMs: 1000, endMs: 1060, timingMethod: 'forced_alignment' as const },
    { text: 'went', startMs: 2000, endMs: 2300, timingMethod: 'forced_alignment' as const },
  ];
  const audio = { ...pause(1150, 1900), name: 'uh' as const, foundBy: 'alignment' as const };
  const one = mergeFillerEvidence(said, detectFillers(said), [audio]);
  assert.deepEqual(one.map((e) => [e.filler, e.source, e.startMs, e.endMs, e.wordIndex, e.heard]), [['uh', 'both', 1000, 1900, 1, { startMs: 1150, endMs: 1900 }]]);
  // 300 ms apart: two fillers.
  assert.equal(mergeFillerEvidence(said, detectFillers(said), [{ ...audio, startMs: 1360, endMs: 1900 }]).length, 2);
  // A transcript "uh" of normal length beside an audio filler 80 ms on: two ("uh ... um" said).
  const full = said.map((w) => (w.text === 'uh' ? { ...w, startMs: 700, endMs: 1070 } : w));
  assert.equal(mergeFillerEvidence(full, detectFillers(full), [audio]).length, 2);
  // Two squeezed transcript fillers and the hesitation 80 ms after them ("um uh" written for one): one event.
  const two = [said[0], { ...said[1], text: 'um', startMs: 1000, endMs: 1080 }, { text: 'uh', startMs: 1080, endMs: 1110, timingMethod: 'forced_alignment' as const }, said[2]];
  assert.deepEqual(mergeFillerEvidence(two, detectFillers(two), [{ ...audio, startMs: 1190 }]).map((e) => [e.filler, e.source, e.startMs, e.endMs]), [['uh', 'both', 1000, 1900]]);
});

test('one audio hit over two transcript filled pauses is cut between them: two events, not overlapping, each from its own word', () => {
  // "uh" 0–300, "um" 900–1200, words of "and" and "then" around them; one hum 300–900 between.
  const ws = [
    { text: 'uh,', startMs: 0, endMs: 300 },
    { text: 'um,', startMs: 900, endMs: 1200 },
    { text: 'then', startMs: 1500, endMs: 1800 },
  ];
  const events = mergeFillerEvidence(ws, detectFillers(ws), [pause(300, 900)]);
  assert.deepEqual(
    events.map((e) => [e.filler, e.startMs, e.endMs, e.source, e.heard?.startMs, e.heard?.endMs]),
    [
      ['uh', 0, 600, 'both', 300, 600],
      ['um', 600, 1200, 'both', 600, 900],
    ],
  );
});

test('a transcript filler left no part of a hit is not marked heard: a squeezed "uh" beside an "um" the hit covers still joins it', () => {
  const ws = [
    { text: 'well', startMs: 0, endMs: 900 },
    { text: 'um', startMs: 1000, endMs: 1700 },
    { text: 'uh', startMs: 1700, endMs: 1760 },
    { text: 'then', startMs: 2000, endMs: 2400 },
  ];
  const events = mergeFillerEvidence(ws, detectFillers(ws), [pause(1050, 1690)]);
  assert.deepEqual(
    events.map((e) => [e.filler, e.startMs, e.endMs, e.source, e.heard?.startMs, e.heard?.endMs]),
    [['um', 1000, 1760, 'both', 1050, 1690]],
  );
});
