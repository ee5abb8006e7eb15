// Words per minute.
//
// - Speaking rate: words over the total time from the first word's start to the last word's end,
//   pauses included (or over `totalMs` when the caller knows the clip's duration).
// - Articulation rate: words over speaking time. Speaking time is the union of the speech
//   segments when given (voice activity), else the word spans joined across gaps shorter than
//   `shortGapMs` (250 ms, the pause threshold): gaps that short are part of fluent speech.
// - Fillers: the headline rates count every word, fillers included, because fillers take speaking
//   time and the ground truth (transcript word count over time) counts what was said. The
//   `lexical*` fields count words without fillers (from detectFillers) for a content rate.
// - Rolling rate (live): words in the last `windowMs` (30 s) over the window, each word counted by
//   the fraction of its duration inside the window so the rate moves smoothly. Before a full
//   window has elapsed since `originMs` the denominator is the elapsed time.
import { detectFillers } from './fillers.js';
import { isWordText } from './tokens.js';
import type { TimeSpan, TimedWord } from './types.js';

export const DEFAULT_SHORT_GAP_MS = 250;
export const DEFAULT_ROLLING_WINDOW_MS = 30_000;
const MS_PER_MINUTE = 60_000;

export interface SpeechRates {
  /** Words said (punctuation-only entries are not words), fillers included. */
  wordCount: number;
  /** Words that belong to fillers ("you know" counts 2). */
  fillerWordCount: number;
  /** wordCount − fillerWordCount. */
  lexicalWordCount: number;
  /** Time the speaking rate divides by. */
  totalMs: number;
  /** Time the articulation rate divides by. */
  speakingMs: number;
  speakingRateWpm: number;
  articulationRateWpm: number;
  lexicalSpeakingRateWpm: number;
  lexicalArticulationRateWpm: number;
}

export interface RateOptions {
  /** Speech segments (voice activity). When absent, speaking time comes from word times. */
  segments?: readonly TimeSpan[];
  /** Gaps between words shorter than this count as speaking time (default 250 ms). */
  shortGapMs?: number;
  /** Total time for the speaking rate; default first word start → last word end. */
  totalMs?: number;
}

function wpm(count: number, ms: number): number {
  return ms > 0 ? (count * MS_PER_MINUTE) / ms : 0;
}

/** Total length of the union of spans, after joining neighbours closer than `joinGapMs`. */
export function unionMs(spans: readonly TimeSpan[], joinGapMs = 0): number {
  const sorted = spans.filter((s) => s.endMs > s.startMs).sort((a, b) => a.startMs - b.startMs);
  let total = 0;
  let runStart = Number.NaN;
  let runEnd = Number.NEGATIVE_INFINITY;
  for (const s of sorted) {
    if (s.startMs - runEnd < joinGapMs || s.startMs <= runEnd) {
      runEnd = Math.max(runEnd, s.endMs);
    } else {
      if (runEnd > runStart) total += runEnd - runStart;
      runStart = s.startMs;
      runEnd = s.endMs;
    }
  }
  if (runEnd > runStart) total += runEnd - runStart;
  return total;
}

/** Number of entries that are words (at least one letter or digit). */
export function countWords(words: readonly TimedWord[]): number {
  let n = 0;
  for (const w of words) if (isWordText(w.text)) n++;
  return n;
}

export function speechRates(words: readonly TimedWord[], options: RateOptions = {}): SpeechRates {
  const spoken = words.filter((w) => isWordText(w.text));
  const wordCount = spoken.length;
  const fillerWordCount = detectFillers(words).reduce((n, h) => n + countWords(words.slice(h.wordIndex, h.wordIndex + h.wordCount)), 0);
  const lexicalWordCount = wordCount - fillerWordCount;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const w of spoken) {
    first = Math.min(first, w.startMs);
    last = Math.max(last, w.endMs);
  }
  const totalMs = options.totalMs ?? (wordCount > 0 ? last - first : 0);
  const speakingMs = options.segments
    ? unionMs(options.segments)
    : unionMs(spoken, options.shortGapMs ?? DEFAULT_SHORT_GAP_MS);
  return {
    wordCount,
    fillerWordCount,
    lexicalWordCount,
    totalMs,
    speakingMs,
    speakingRateWpm: wpm(wordCount, totalMs),
    articulationRateWpm: wpm(wordCount, speakingMs),
    lexicalSpeakingRateWpm: wpm(lexicalWordCount, totalMs),
    lexicalArticulationRateWpm: wpm(lexicalWordCount, speakingMs),
  };
}

export interface RollingOptions {
  windowMs?: number;
  /** Session start; until a full window has passed since it, the rate divides by elapsed time. */
  originMs?: number;
}

/** Share of a word inside (fromMs, toMs]; a zero-length word counts fully if its instant is inside. */
function wordShare(w: TimeSpan, fromMs: number, toMs: number): number {
  const len = w.endMs - w.startMs;
  if (len <= 0) return w.startMs > fromMs && w.startMs <= toMs ? 1 : 0;
  const overlap = Math.min(w.endMs, toMs) - Math.max(w.startMs, fromMs);
  return overlap > 0 ? overlap / len : 0;
}

function windowDenominator(atMs: number, windowMs: number, originMs: number): number {
  return Math.min(windowMs, atMs - originMs);
}

/** Words per minute over the `windowMs` before `atMs`. */
export function rollingWpm(words: readonly TimedWord[], atMs: number, windowMs = DEFAULT_ROLLING_WINDOW_MS, originMs = 0): number {
  const fromMs = atMs - windowMs;
  let count = 0;
  for (const w of words) if (isWordText(w.text)) count += wordShare(w, fromMs, atMs);
  return wpm(count, windowDenominator(atMs, windowMs, originMs));
}

/**
 * Live rolling rate: push words as they are finalised (in time order), read the rate at any
 * time. Words that ended before the window are dropped, so memory stays bounded by the window.
 */
export class RollingWpm {
  readonly windowMs: number;
  readonly originMs: number;
  private words: TimeSpan[] = [];

  constructor(options: RollingOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_ROLLING_WINDOW_MS;
    this.originMs = options.originMs ?? 0;
  }

  push(word: TimedWord): void {
    if (isWordText(word.text)) this.words.push({ startMs: word.startMs, endMs: word.endMs });
  }

  /** Rate at `atMs`; also forgets words wholly before the window (reads must not go back in time). */
  at(atMs: number): number {
    const fromMs = atMs - this.windowMs;
    let keep = 0;
    while (keep < this.words.length && Math.max(this.words[keep].endMs, this.words[keep].startMs) <= fromMs) keep++;
    if (keep > 0) this.words.splice(0, keep);
    let count = 0;
    for (const w of this.words) count += wordShare(w, fromMs, atMs);
    return wpm(count, windowDenominator(atMs, this.windowMs, this.originMs));
  }

  /** Words currently held (for tests and diagnostics). */
  get size(): number {
    return this.words.length;
  }
}
