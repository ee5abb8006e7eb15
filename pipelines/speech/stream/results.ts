// From a stream's recognised segments and per-second features to the session's results:
// words with filler and repetition marks, fillers from the transcript and the audio merged,
// pauses, per-second frames with word counts and the rolling rate, and the summary the scores
// are computed from. Pure: plain data in, plain data out. Transcript rules (fillers,
// repetitions) run over the whole transcript, not per segment, because their context ("and
// so", "I mean it") can cross a segment boundary.
import { pitchStats } from '../pitch-stats.js';
import { findPauses, silentPauses, type Pause, type PauseOptions, type SpeechSegment } from '../vad/segments.js';
import { detectFillers, detectRepetitions, RollingWpm, speechRates, type SpeechRates } from '../metrics/index.js';
import { mergeFillerEvidence, type FillerEvent } from '../fillers/index.js';
import type { WordTimingMethod } from '../align/index.js';
import type { SecondFeatures } from './seconds.js';
import { phonationSpans } from './phonation.js';
import type { ScoreFeatureInput } from '../scoring/features.js';
import type { SegmentTranscript } from './recognition.js';

export interface ResultWord {
  segmentIndex: number;
  wordIndex: number;
  /** Lower case, no punctuation. */
  text: string;
  startMs: number;
  endMs: number;
  isFiller: boolean;
  /** Canonical filler name, '' when not a filler. */
  filler: string;
  isRepetition: boolean;
  timingMethod: WordTimingMethod;
  /** The recogniser's confidence, 0..1; null when unknown. */
  confidence: number | null;
}

export interface ResultFrame extends SecondFeatures {
  wordCount: number;
  fillerCount: number;
  rollingWpm: number;
}

export interface SessionSummary {
  durationMs: number;
  speechMs: number;
  wordCount: number;
  speakingRateWpm: number;
  articulationRateWpm: number;
  pauseCount: number;
  longPauseCount: number;
  pauseRatio: number;
  meanPauseMs: number | null;
  fillerCount: number;
  /** Fillers per minute from the first to the last speech (the speaking rate's span). */
  fillerRatePerMin: number;
  repetitionCount: number;
  pitchMeanHz: number | null;
  pitchSdHz: number | null;
  /** 5th and 95th percentiles of voiced f0: robust to the odd octave error. */
  pitchMinHz: number | null;
  pitchMaxHz: number | null;
  pitchVariabilitySt: number | null;
  monotone: boolean | null;
  volumeMeanDbfs: number | null;
  volumeSdDb: number | null;
}

export interface SessionResults {
  text: string;
  words: ResultWord[];
  fillers: FillerEvent[];
  pauses: Pause[];
  frames: ResultFrame[];
  rates: SpeechRates;
  summary: SessionSummary;
}

export interface SessionResultsInput {
  /** Length of the audio, ms. */
  durationMs: number;
  /** Final transcripts of every segment (any order). */
  transcripts: readonly SegmentTranscript[];
  /** Voice-activity segments in time order (unpadded bounds give speech time and pauses). */
  speechSegments: readonly SpeechSegment[];
  seconds: readonly SecondFeatures[];
  voicedF0: Float32Array;
  /** Level of every 10 ms frame, dBFS: phonation time, the articulation rate's denominator (voice activity time when absent). */
  frameDbfs?: Float32Array;
  pauses?: PauseOptions;
  rollingWindowMs?: number;
  /** Filler and repetition detection (default on); off: none are looked for, and none are counted. */
  fluency?: boolean;
}

/**
 * The session's words (as recognised, with punctuation, for the filler rules), the transcript's
 * filler hits and every filler merged with the audio's filled pauses. The final results and the
 * live filler count (fillers/live-count.ts) both come from here, so a filler counted live is
 * counted the same way at the end.
 */
export function sessionFillers(input: readonly SegmentTranscript[]) {
  const transcripts = [...input].sort((a, b) => a.index - b.index);
  const flat = transcripts.flatMap((t) => t.words.map((w, wordIndex) => ({ ...w, segmentIndex: t.index, wordIndex })));
  const timed = flat.map((w) => ({ text: w.text, startMs: w.startMs, endMs: w.endMs }));
  const hits = detectFillers(timed);
  const fillers = mergeFillerEvidence(
    flat.map((w) => ({ text: w.norm, startMs: w.startMs, endMs: w.endMs, timingMethod: w.method })),
    hits,
    transcripts.flatMap((t) => t.filledPauses),
  ).sort((a, b) => a.startMs - b.startMs);
  return { transcripts, flat, timed, hits, fillers };
}

/** The session's words as sessionFillers has them, without looking for fillers (fluency analysis off). */
function sessionWordsOnly(input: readonly SegmentTranscript[]): ReturnType<typeof sessionFillers> {
  const transcripts = [...input].sort((a, b) => a.index - b.index);
  const flat = transcripts.flatMap((t) => t.words.map((w, wordIndex) => ({ ...w, segmentIndex: t.index, wordIndex })));
  const timed = flat.map((w) => ({ text: w.text, startMs: w.startMs, endMs: w.endMs }));
  return { transcripts, flat, timed, hits: [], fillers: [] };
}

/**
 * Whether a second counts for the session's volume (mean, SD, the scores' volume features): at
 * least half a second of it speech. Every second but the last is whole, so this is its speech
 * ratio ≥ 0.5; the last holds only what is left of the audio, and its ratio is of those few
 * samples: 14 ms of silence after the JFK clip (voice activity's hangover scores it 0.57 speech)
 * counted as a whole second at −120 dBFS and took the volume SD from 3.2 to 30.9 dB and
 * engagement from 99.7 to 74.7; a WebM of the clip (its Opus frames end 14 ms after the audio)
 * read 11.0 dB where the Ogg of the same audio read 3.25.
 */
export function isSpeechSecond(s: Pick<SecondFeatures, 'index' | 'speechRatio'>, durationMs: number): boolean {
  const lengthMs = Math.max(0, Math.min(1000, durationMs - s.index * 1000));
  return s.speechRatio * lengthMs >= 500;
}

export function assembleSessionResults(input: SessionResultsInput): SessionResults {
  const fluency = input.fluency !== false;
  const { transcripts, flat, timed, hits, fillers } = fluency ? sessionFillers(input.transcripts) : sessionWordsOnly(input.transcripts);
  const repetitions = fluency ? detectRepetitions(timed) : [];

  const fillerOf = new Map<number, string>();
  for (const h of hits) for (let k = 0; k < h.wordCount; k++) fillerOf.set(h.wordIndex + k, h.filler);
  const repeated = new Set<number>();
  for (const r of repetitions) {
    // Every copy after the first is marked.
    for (let k = r.phraseLength; k < r.wordCount; k++) repeated.add(r.wordIndex + k);
  }
  const words: ResultWord[] = flat.map((w, i) => ({
    segmentIndex: w.segmentIndex,
    wordIndex: w.wordIndex,
    text: w.norm,
    startMs: w.startMs,
    endMs: w.endMs,
    isFiller: fillerOf.has(i),
    filler: fillerOf.get(i) ?? '',
    isRepetition: repeated.has(i),
    timingMethod: w.method,
    confidence: w.confidence ?? null,
  }));

  const segments = input.speechSegments;
  // Silent pauses: a filler voice activity scored as non-speech is cut out of its gap (a
  // hesitation is a filled pause, counted with the fillers, not silence as well). Only where the
  // audio placed a filler: a transcript word's whole event ('transcript', 'both') when the
  // alignment placed the word, otherwise only what the acoustic rules heard (an 'acoustic'
  // event, or the hits a 'both' event joined). A word whose times are the syllable spread
  // (alignment failed) may sit anywhere in its utterance, real silence included, and a 'both'
  // event spans that word's time too.
  const placed = fillers.flatMap((f) => (f.wordIndex !== undefined && flat[f.wordIndex]?.method === 'forced_alignment' ? [f] : f.heard ? [f.heard] : []));
  const pauses = silentPauses(findPauses(segments, input.pauses), placed, input.pauses);
  const firstSpeechMs = segments.length > 0 ? (segments[0].speechStartSample * 1000) / 16_000 : 0;
  const lastSpeechMs = segments.length > 0 ? (segments[segments.length - 1].speechEndSample * 1000) / 16_000 : 0;
  const spanMs = Math.max(0, lastSpeechMs - firstSpeechMs);
  const speechSpans = input.frameDbfs
    ? phonationSpans(input.frameDbfs, segments)
    : segments.map((s) => ({ startMs: (s.speechStartSample * 1000) / 16_000, endMs: (s.speechEndSample * 1000) / 16_000 }));
  const rates = speechRates(timed, { segments: speechSpans, totalMs: spanMs });
  const pauseMs = pauses.reduce((n, p) => n + p.durationMs, 0);

  // Per-second frames.
  const frames: ResultFrame[] = input.seconds.map((s) => ({ ...s, wordCount: 0, fillerCount: 0, rollingWpm: 0 }));
  const secondOf = (ms: number) => Math.min(frames.length - 1, Math.max(0, Math.floor(ms / 1000)));
  if (frames.length > 0) {
    for (const w of words) frames[secondOf(w.startMs)].wordCount++;
    for (const f of fillers) frames[secondOf(f.startMs)].fillerCount++;
    const rolling = new RollingWpm({ windowMs: input.rollingWindowMs });
    let next = 0;
    const byStart = [...timed].sort((a, b) => a.startMs - b.startMs);
    for (const frame of frames) {
      const endMs = (frame.index + 1) * 1000;
      while (next < byStart.length && byStart[next].startMs < endMs) rolling.push(byStart[next++]);
      frame.rollingWpm = rolling.at(endMs);
    }
  }

  const stats = pitchStats(input.voicedF0, new Uint8Array(input.voicedF0.length).fill(1));
  const speechSeconds = input.seconds.filter((s) => isSpeechSecond(s, input.durationMs));
  const volumeMean = speechSeconds.length > 0 ? speechSeconds.reduce((n, s) => n + s.volumeDbfs, 0) / speechSeconds.length : null;
  const volumeSd =
    volumeMean !== null && speechSeconds.length > 1
      ? Math.sqrt(speechSeconds.reduce((n, s) => n + (s.volumeDbfs - volumeMean) ** 2, 0) / speechSeconds.length)
      : null;
  // Per minute of the span from the first to the last speech, as the speaking rate and the
  // scores (scoreInput): a recorder left running before or after the speaker dilutes nothing.
  // (Until 12-06 per minute of audio: the same clip padded with 40 s of silence read 7.5
  // fillers a minute where its scores counted 56.5.)
  const minutes = rates.totalMs / 60_000;
  const summary: SessionSummary = {
    durationMs: input.durationMs,
    speechMs: rates.speakingMs,
    wordCount: rates.wordCount,
    speakingRateWpm: rates.speakingRateWpm,
    articulationRateWpm: rates.articulationRateWpm,
    pauseCount: pauses.length,
    longPauseCount: pauses.filter((p) => p.kind === 'long').length,
    pauseRatio: spanMs > 0 ? Math.min(1, pauseMs / spanMs) : 0,
    meanPauseMs: pauses.length > 0 ? pauseMs / pauses.length : null,
    fillerCount: fillers.length,
    fillerRatePerMin: minutes > 0 ? fillers.length / minutes : 0,
    repetitionCount: repetitions.length,
    pitchMeanHz: stats.meanHz,
    pitchSdHz: stats.sdHz,
    pitchMinHz: stats.p5Hz,
    pitchMaxHz: stats.p95Hz,
    pitchVariabilitySt: stats.variabilitySemitones,
    monotone: stats.monotone,
    volumeMeanDbfs: volumeMean,
    volumeSdDb: volumeSd,
  };
  return { text: transcripts.map((t) => t.text).filter((t) => t.length > 0).join(' '), words, fillers, pauses, frames, rates, summary };
}

/**
 * What the scoring model is given for a session, or null when nothing was said (no scores).
 * Rates per minute count from the first to the last speech, like the summary's speaking rate:
 * silence before and after the speaker is not theirs to be scored on.
 */
export function scoreInput(results: SessionResults, voicedF0: Float32Array): ScoreFeatureInput | null {
  if (results.summary.wordCount === 0 || results.rates.totalMs <= 0) return null;
  return {
    durationMs: results.rates.totalMs,
    speechMs: results.summary.speechMs,
    wordCount: results.summary.wordCount,
    pauses: results.pauses.map((p) => ({ durationMs: p.durationMs, kind: p.kind })),
    fillerCount: results.summary.fillerCount,
    repetitionCount: results.summary.repetitionCount,
    pitchHz: voicedF0,
    secondVolumesDbfs: results.frames.filter((f) => isSpeechSecond(f, results.summary.durationMs)).map((f) => f.volumeDbfs),
  };
}
