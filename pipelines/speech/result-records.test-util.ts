// Test helper: the results of a stream of a given length, shaped like the speech pipeline's
// (result-records.test.ts; the Kafka test of a long upload's results, test/speech-scale.kafka.test.ts).
import type { SegmentTranscript } from './stream/recognition.js';
import type { SessionResults } from './stream/results.js';

/** Results of `seconds` of speech: ~2.8 words a second in 6 s segments, a pause per segment, a filler every 20 words. */
export function syntheticResults(seconds: number, model: string): { transcripts: SegmentTranscript[]; results: SessionResults } {
  const transcripts: SegmentTranscript[] = [];
  const words: SessionResults['words'] = [];
  const fillers: SessionResults['fillers'] = [];
  const pauses: SessionResults['pauses'] = [];
  for (let seg = 0; seg * 6000 < seconds * 1000; seg++) {
    const startMs = seg * 6000;
    const texts: string[] = [];
    for (let i = 0; i < 16; i++) {
      const filler = (seg * 16 + i) % 20 === 0;
      const text = filler ? 'um' : `word${(seg * 16 + i) % 997}`;
      texts.push(text);
      // Fractions, as syllable estimates give: the records carry whole milliseconds.
      const wStart = startMs + i * 330.4;
      words.push({ segmentIndex: seg, wordIndex: i, text, startMs: wStart, endMs: wStart + 290.7, isFiller: filler, filler: filler ? 'um' : '', isRepetition: false, timingMethod: 'forced_alignment', confidence: i === 3 ? null : 0.9 });
      if (filler) fillers.push({ startMs: wStart, endMs: wStart + 290.7, filler: 'um', source: 'both', wordIndex: words.length - 1 });
    }
    fillers.push({ startMs: startMs + 5400.2, endMs: startMs + 5700.9, filler: 'filled_pause', source: 'acoustic' });
    pauses.push({ startMs: startMs + 5300, endMs: startMs + 6000, durationMs: 700, kind: seg % 5 === 0 ? 'long' : 'natural' });
    transcripts.push({ index: seg, startMs, endMs: startMs + 5300, speechStartMs: startMs, speechEndMs: startMs + 5300, text: texts.join(' '), words: [], confidence: 0.9, model, timingMethod: 'forced_alignment', filledPauses: [], computeMs: 0 });
  }
  const frames: SessionResults['frames'] = [];
  for (let i = 0; i < seconds; i++) {
    frames.push({ index: i, pitchMeanHz: i % 7 === 0 ? null : 120 + (i % 13), pitchSdHz: i % 7 === 0 ? null : 12.5, volumeDbfs: -23.25, voicedRatio: 0.61, speechRatio: 0.8, wordCount: 3, fillerCount: 0, rollingWpm: 150.5 } as SessionResults['frames'][number]);
  }
  const summary: SessionResults['summary'] = {
    durationMs: seconds * 1000,
    speechMs: seconds * 800.4,
    wordCount: words.length,
    speakingRateWpm: 160,
    articulationRateWpm: 190,
    pauseCount: pauses.length,
    longPauseCount: pauses.filter((p) => p.kind === 'long').length,
    pauseRatio: 0.11,
    meanPauseMs: 700.4,
    fillerCount: fillers.length,
    fillerRatePerMin: 2.5,
    repetitionCount: 0,
    pitchMeanHz: 126,
    pitchSdHz: 18,
    pitchMinHz: 95,
    pitchMaxHz: 170,
    pitchVariabilitySt: 2.4,
    monotone: false,
    volumeMeanDbfs: -23,
    volumeSdDb: 4,
  };
  return { transcripts, results: { text: '', words, fillers, pauses, frames, rates: {} as SessionResults['rates'], summary } };
}

