// Session results' pauses: silent pauses, with the fillers the audio placed cut out of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FilledPause } from '../fillers/filled-pauses.js';
import type { SpeechSegment } from '../vad/segments.js';
import type { SegmentTranscript, TranscriptWord } from './recognition.js';
import { assembleSessionResults, scoreInput } from './results.js';

const SR = 16_000;
const speech = (startMs: number, endMs: number): SpeechSegment => ({
  startSample: (startMs * SR) / 1000,
  endSample: (endMs * SR) / 1000,
  startMs,
  endMs,
  speechStartSample: (startMs * SR) / 1000,
  speechEndSample: (endMs * SR) / 1000,
});
const word = (text: string, startMs: number, endMs: number, method: TranscriptWord['method'] = 'forced_alignment'): TranscriptWord => ({ text, norm: text.toLowerCase().replace(/[^a-z']/g, ''), startMs, endMs, method });
const filledPause = (startMs: number, endMs: number): FilledPause => ({ startMs, endMs, durationMs: endMs - startMs, meanF0Hz: 110, f0SpreadSemitones: 0.5, spectralFlux: 0.3, score: 0.8, foundBy: 'acoustic' });
const transcript = (words: TranscriptWord[], filledPauses: FilledPause[] = []): SegmentTranscript => ({
  index: 0,
  startMs: 0,
  endMs: 6000,
  speechStartMs: 0,
  speechEndMs: 6000,
  text: words.map((w) => w.text).join(' '),
  words,
  model: 'moonshine-base',
  timingMethod: words.every((w) => w.method === 'forced_alignment') ? 'forced_alignment' : 'syllable_estimate',
  filledPauses,
  computeMs: 0,
});
// Voice activity heard speech at 0–2000 and 4000–6000 ms: a 2 s gap, a long pause on its own.
const segments = [speech(0, 2000), speech(4000, 6000)];
const results = (t: SegmentTranscript) => assembleSessionResults({ durationMs: 6000, transcripts: [t], speechSegments: segments, seconds: [], voicedF0: new Float32Array(0) });
const spans = (r: ReturnType<typeof results>) => r.pauses.map((p) => [p.startMs, p.endMs, p.kind]);
const words = [word('we', 500, 900), word('left', 900, 1900), word('then', 4100, 4600), word('home', 4600, 5500)];

test('a gap without fillers is one pause', () => {
  const r = results(transcript(words));
  assert.deepEqual(spans(r), [[2000, 4000, 'long']]);
  assert.deepEqual([r.summary.pauseCount, r.summary.longPauseCount, r.summary.meanPauseMs], [1, 1, 2000]);
});

test('a filled pause the audio heard in the gap is cut out of it: two natural silent pauses, and the filler', () => {
  const r = results(transcript(words, [filledPause(2600, 3200)]));
  assert.equal(r.fillers.length, 1);
  assert.deepEqual(spans(r), [[2000, 2600, 'natural'], [3200, 4000, 'natural']]);
  assert.deepEqual([r.summary.pauseCount, r.summary.longPauseCount, r.summary.meanPauseMs], [2, 0, 700]);
});

test('a transcript "um" cuts the gap when the alignment placed it, not when its time is the syllable spread', () => {
  const aligned = [...words.slice(0, 2), word('um', 2600, 3300), ...words.slice(2)];
  const r = results(transcript(aligned));
  assert.deepEqual(r.fillers.map((f) => f.filler), ['um']);
  assert.deepEqual(spans(r), [[2000, 2600, 'natural'], [3300, 4000, 'natural']]);
  const spread = aligned.map((w) => ({ ...w, method: 'syllable_estimate' as const }));
  const s = results(transcript(spread));
  assert.deepEqual(s.fillers.map((f) => f.filler), ['um']);
  assert.deepEqual(spans(s), [[2000, 4000, 'long']], 'a filler placed by counting syllables says nothing about where the silence is');
});

test('an "um" the audio also heard (source both) cuts the whole event where the alignment placed the word, and only the heard span where the syllable spread timed it', () => {
  const um = (method: TranscriptWord['method']) => [...words.slice(0, 2), word('um', 2400, 3500, method), ...words.slice(2)].map((w) => ({ ...w, method }));
  const aligned = results(transcript(um('forced_alignment'), [filledPause(2500, 3200)]));
  assert.deepEqual(aligned.fillers.map((f) => f.source), ['both']);
  assert.equal(aligned.pauses.length, 2);
  assert.ok(aligned.pauses.every((p) => p.endMs <= 2500 || p.startMs >= 3200), JSON.stringify(aligned.pauses));
  const spread = results(transcript(um('syllable_estimate'), [filledPause(2500, 3200)]));
  assert.deepEqual(spread.fillers.map((f) => f.source), ['both']);
  assert.deepEqual(spread.fillers.map((f) => [f.startMs, f.endMs]), [[2400, 3500]], 'the event spans the spread word');
  assert.deepEqual(spans(spread), [[2000, 2500, 'natural'], [3200, 4000, 'natural']], 'the audio heard the filler at 2500–3200 ms: that is not silence');
});

test('the filler rate is per minute of speech, first to last, as the speaking rate: silence after the speaker dilutes neither', () => {
  const aligned = [...words.slice(0, 2), word('um', 2600, 3300), ...words.slice(2)];
  const t = transcript(aligned);
  const tight = assembleSessionResults({ durationMs: 6000, transcripts: [t], speechSegments: segments, seconds: [], voicedF0: new Float32Array(0) });
  // The same speech with the recorder left running 54 s after it.
  const padded = assembleSessionResults({ durationMs: 60_000, transcripts: [t], speechSegments: segments, seconds: [], voicedF0: new Float32Array(0) });
  assert.equal(tight.summary.fillerCount, 1);
  assert.equal(tight.summary.fillerRatePerMin, 10, 'one filler in the 6 s from the first to the last speech');
  assert.equal(padded.summary.fillerRatePerMin, tight.summary.fillerRatePerMin);
  assert.equal(padded.summary.speakingRateWpm, tight.summary.speakingRateWpm);
});

test("volume counts the seconds with at least half a second of speech: a few ms of audio past the last whole second is not one of them", () => {
  const second = (index: number, volumeDbfs: number, speechRatio: number) => ({ index, pitchMeanHz: null, pitchSdHz: null, volumeDbfs, voicedRatio: 0, speechRatio });
  const whole = [second(0, -20, 1), second(1, -22, 0.9), second(2, -21, 0.6)];
  const input = (durationMs: number, tail: ReturnType<typeof second>[]) => ({
    durationMs,
    transcripts: [transcript(words)],
    speechSegments: segments,
    seconds: [...whole, ...tail],
    voicedF0: new Float32Array(0),
  });
  // 14 ms of silence after the speech (a WebM's last Opus frame, a recorder's tail): voice
  // activity's hangover scores it mostly speech, but it is 8 ms of speech, not half a second.
  const tail = assembleSessionResults(input(3014, [second(3, -120, 0.57)]));
  assert.equal(tail.summary.volumeMeanDbfs, -21);
  assert.ok(Math.abs(tail.summary.volumeSdDb! - Math.sqrt(2 / 3)) < 1e-9, `SD ${tail.summary.volumeSdDb}`);
  assert.deepEqual(scoreInput(tail, new Float32Array(0))?.secondVolumesDbfs, [-20, -22, -21]);
  // A last second of 700 ms, 90 % of it speech (630 ms), counts.
  const long = assembleSessionResults(input(3700, [second(3, -23, 0.9)]));
  assert.equal(long.summary.volumeMeanDbfs, -21.5);
  assert.deepEqual(scoreInput(long, new Float32Array(0))?.secondVolumesDbfs, [-20, -22, -21, -23]);
});
