// The live filler count (metrics:update while a stream plays) must count what the final results
// will store: one filler heard by the audio and written by the recogniser is one filler, and a
// lexical filler ("you know") counts live as it does at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SegmentTranscript, TranscriptWord } from '../stream/recognition.js';
import { assembleSessionResults } from '../stream/results.js';
import type { FilledPause } from './filled-pauses.js';
import { liveFillerCount } from './live-count.js';

function word(text: string, startMs: number, endMs: number): TranscriptWord {
  return { text, norm: text.toLowerCase().replace(/[^a-z']/g, ''), startMs, endMs, method: 'forced_alignment' };
}

function pause(startMs: number, endMs: number, foundBy: FilledPause['foundBy'] = 'acoustic'): FilledPause {
  return { startMs, endMs, durationMs: endMs - startMs, meanF0Hz: 110, f0SpreadSemitones: 0.5, spectralFlux: 0.3, score: 0.8, foundBy };
}

function segment(index: number, words: TranscriptWord[], filledPauses: FilledPause[]): SegmentTranscript {
  const startMs = words[0].startMs - 200;
  const endMs = words[words.length - 1].endMs + 200;
  return {
    index,
    startMs,
    endMs,
    speechStartMs: startMs + 200,
    speechEndMs: endMs - 200,
    text: words.map((w) => w.text).join(' '),
    words,
    model: 'moonshine-tiny',
    timingMethod: 'forced_alignment',
    filledPauses,
    computeMs: 0,
  };
}

/** What the session's stored results count for these transcripts. */
function finalCount(finals: SegmentTranscript[]): number {
  return assembleSessionResults({ durationMs: 60_000, transcripts: finals, speechSegments: [], seconds: [], voicedF0: new Float32Array(0) }).fillers.length;
}

// Segment 0: the recogniser wrote "Um," and the audio heard the same held vowel (one filler, 'both').
// Segment 1: "it was, you know." (a lexical filler, no audio evidence) and a filled pause in a gap.
// Segment 2: "So, we left": sentence-initial "So," is a filler; the audio's hit over it is the word
//            said slowly, not a second filler.
const stream: SegmentTranscript[] = [
  segment(0, [word('Um,', 1000, 1300), word('I', 1350, 1450), word('think', 1450, 1800)], [pause(980, 1360)]),
  segment(1, [word('it', 3000, 3100), word('was,', 3100, 3400), word('you', 3450, 3550), word('know.', 3550, 3800)], [pause(3850, 4300, 'alignment')]),
  segment(2, [word('So,', 5000, 5500), word('we', 5600, 5700), word('left', 5700, 6000)], [pause(5050, 5450)]),
];

test('the live filler count after each final segment equals the count the final results store', () => {
  const expected = [1, 3, 4];
  for (let n = 1; n <= stream.length; n++) {
    const finals = stream.slice(0, n);
    assert.equal(finalCount(finals), expected[n - 1], `final results after ${n} segment(s)`);
    assert.equal(liveFillerCount(finals), finalCount(finals), `live count after ${n} segment(s)`);
  }
});

test('a transcript "um" the audio also heard counts once while the stream is live', () => {
  assert.equal(liveFillerCount(stream.slice(0, 1)), 1);
});
