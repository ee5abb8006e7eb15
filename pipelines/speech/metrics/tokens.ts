// Normalised view of a transcript for the context rules: lower-case word forms plus the
// punctuation around them. Punctuation decides most filler readings ("like," vs "like"), so it is
// kept as a boundary strength instead of being thrown away.
import type { TimedWord } from './types.js';

/** What separates a word from the next one: nothing, a comma-like pause mark, or a sentence end. */
export type Boundary = 'none' | 'comma' | 'sentence';

export interface Token {
  /** Lower-case form without surrounding punctuation; curly apostrophes become "'". */
  norm: string;
  /** Index of the word in the caller's array (punctuation-only entries are not tokens). */
  wordIndex: number;
  startMs: number;
  endMs: number;
  /** Boundary between the previous token and this one ('sentence' for the first token). */
  before: Boundary;
  /** Boundary between this token and the next ('sentence' after the last token). */
  after: Boundary;
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

function boundaryOf(punctuation: string): Boundary {
  // "..." and dashes mark a hesitation inside a sentence, not its end.
  const withoutEllipsis = punctuation.replace(/\.{2,}|…/g, ',');
  if (/[.!?;]/.test(withoutEllipsis)) return 'sentence';
  if (/[,:\u2013\u2014-]/.test(withoutEllipsis)) return 'comma';
  return 'none';
}

function stronger(a: Boundary, b: Boundary): Boundary {
  const rank = { none: 0, comma: 1, sentence: 2 } as const;
  return rank[a] >= rank[b] ? a : b;
}

/** True when the text holds at least one letter or digit, i.e. it counts as a word. */
export function isWordText(text: string): boolean {
  return WORD_CHAR.test(text);
}

/**
 * Tokens in input order. Entries that are only punctuation ("," or "—" as separate items, as some
 * recognisers emit) are folded into the boundary of the neighbouring words.
 */
export function tokenize(words: readonly TimedWord[]): Token[] {
  const tokens: Token[] = [];
  let pending: Boundary = 'sentence';
  for (let i = 0; i < words.length; i++) {
    const raw = words[i].text.replace(/[\u2018\u2019\u02bc]/g, "'").trim();
    if (!isWordText(raw)) {
      const b = boundaryOf(raw);
      pending = stronger(pending, b);
      if (tokens.length > 0) tokens[tokens.length - 1].after = stronger(tokens[tokens.length - 1].after, b);
      continue;
    }
    const lead = raw.match(/^[^\p{L}\p{N}]*/u)![0];
    const trail = raw.match(/[^\p{L}\p{N}]*$/u)![0];
    const core = raw.slice(lead.length, raw.length - trail.length).toLowerCase();
    const leadBoundary = boundaryOf(lead.replace(/'/g, ''));
    const before = stronger(pending, leadBoundary);
    if (tokens.length > 0) tokens[tokens.length - 1].after = stronger(tokens[tokens.length - 1].after, before);
    // A trailing apostrophe can belong to the word ("goin'"); quotes and brackets never do.
    const trailMarks = trail.replace(/^'/, '');
    tokens.push({ norm: core, wordIndex: i, startMs: words[i].startMs, endMs: words[i].endMs, before, after: 'none' });
    pending = boundaryOf(trailMarks);
    tokens[tokens.length - 1].after = pending;
  }
  if (tokens.length > 0) tokens[tokens.length - 1].after = 'sentence';
  return tokens;
}
