// Test helper: a sentence split on whitespace into words of `wordMs` each, `gapMs` apart.
import type { TimedWord } from './types.js';

export function timedWords(sentence: string, wordMs = 300, gapMs = 0, startMs = 0): TimedWord[] {
  return sentence
    .split(/\s+/)
    .filter((t) => t.length > 0)
    .map((text, i) => ({ text, startMs: startMs + i * (wordMs + gapMs), endMs: startMs + i * (wordMs + gapMs) + wordMs }));
}
