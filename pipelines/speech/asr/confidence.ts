// Word confidences from the recogniser's token probabilities. Moonshine emits SentencePiece
// pieces; a piece starting with ▁ begins a word, the others continue it (punctuation included).
// A word's confidence is the geometric mean of its tokens' probabilities, exp(mean log p): a
// word is as sure as its tokens on average, and one unsure token of three pulls it down by a
// third of its log. Pure: ids and log-probabilities in, numbers out.
import { decodeTokens, isTextToken, llamaTokenizer } from './tokenizer.js';

export interface TokenWord {
  /** The word's text as decoded (with its punctuation). */
  text: string;
  /** exp(mean of its tokens' log-probabilities), 0..1. */
  confidence: number;
}

const WORD_START = '\u2581';

/** The tokens grouped into whitespace-separated words, each with its confidence; special tokens are left out. */
export function tokenWords(tokens: readonly number[], logProbs: readonly number[]): TokenWord[] {
  const out: TokenWord[] = [];
  let ids: number[] = [];
  let lps: number[] = [];
  const flush = () => {
    if (ids.length === 0) return;
    const text = decodeTokens(ids);
    if (text.length > 0) out.push({ text, confidence: Math.exp(lps.reduce((a, b) => a + b, 0) / lps.length) });
    ids = [];
    lps = [];
  };
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (!isTextToken(id) || !Number.isFinite(logProbs[i])) continue;
    const piece: string = llamaTokenizer().vocabById[id] ?? '';
    if (piece.startsWith(WORD_START)) flush();
    ids.push(id);
    lps.push(logProbs[i]);
  }
  flush();
  return out;
}

/** exp(mean log p) over every text token: the confidence of a whole utterance; null without tokens. */
export function utteranceConfidence(tokens: readonly number[], logProbs: readonly number[]): number | null {
  const lps = logProbs.filter((lp, i) => isTextToken(tokens[i]) && Number.isFinite(lp));
  return lps.length === 0 ? null : Math.exp(lps.reduce((a, b) => a + b, 0) / lps.length);
}
