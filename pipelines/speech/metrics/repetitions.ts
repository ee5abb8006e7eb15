// Immediate repetitions: a word or a 2–3-word phrase said again right away ("I I think", "the the",
// "we should we should"). These are disfluencies; a few doubles are grammatical and excluded:
//
// - "had had" and "that that" ("she had had enough", "he said that that was fine") are always
//   treated as grammatical: the disfluent readings exist but are rarer in transcripts.
// - "is is" is grammatical after a pseudo-cleft ("what it is is", "the thing is is"), so it is
//   excluded when what/thing/problem/point/question occurs in the four words before; else disfluent.
// - Emphatic reduplication ("very very", "no no", "bye bye", "so so") is a choice, not a stumble.
// - Fillers are reported by detectFillers, not repetitions here: a filled pause said twice
//   ("um um"), and any run of copies made only of fillers ("uh um, uh um", "you know, you know"),
//   whose every word detectFillers counts already (before 12-06 such a run was counted twice:
//   as its fillers and as a repetition).
// - A sentence end between the copies ("...said no. No one...") breaks a repetition; a comma
//   ("I, I think") does not.
//
// Comparison is on the normalised form (case and punctuation ignored). The longest phrase wins, and
// a run of copies ("I I I") is one repetition with `occurrences` = 3.
import { detectFillers, filledPauseName } from './fillers.js';
import { type Token, tokenize } from './tokens.js';
import type { TimedWord } from './types.js';

export interface Repetition {
  /** The repeated word or phrase, normalised (lower case, no punctuation). */
  text: string;
  /** Input index of the first word of the first copy. */
  wordIndex: number;
  /** Words per copy (1–3). */
  phraseLength: number;
  /** Copies said in a row, at least 2. */
  occurrences: number;
  /** Input words spanned by all copies. */
  wordCount: number;
  startMs: number;
  endMs: number;
  /** Start of each copy after the first, in ms: where the speaker restarted. */
  restartsMs: number[];
}

const GRAMMATICAL_DOUBLES = new Set(['had', 'that']);
const EMPHATIC_DOUBLES = new Set(['very', 'really', 'no', 'yes', 'bye', 'so', 'ha', 'far', 'many', 'more', 'much', 'okay', 'ok', 'now', 'well']);
const PSEUDO_CLEFT_CUES = new Set(['what', 'thing', 'problem', 'point', 'question', 'issue', 'truth', 'reason']);
const MAX_PHRASE = 3;

function sameCopy(tokens: Token[], a: number, b: number, n: number): boolean {
  if (b + n > tokens.length) return false;
  for (let k = 0; k < n; k++) {
    if (tokens[a + k].norm !== tokens[b + k].norm) return false;
    // No sentence end inside or between the copies.
    if (a + k < b + n - 1 && tokens[a + k].after === 'sentence') return false;
  }
  for (let k = a; k < b + n - 1; k++) if (tokens[k].after === 'sentence') return false;
  return true;
}

function excluded(tokens: Token[], i: number, n: number): boolean {
  // "I I I I" is a run of one word, not two copies of "I I".
  if (n !== 1) return tokens[i].norm === tokens[i + 1].norm;
  const w = tokens[i].norm;
  if (filledPauseName(w)) return true;
  if (GRAMMATICAL_DOUBLES.has(w) || EMPHATIC_DOUBLES.has(w)) return true;
  if (w === 'is') {
    for (let k = Math.max(0, i - 4); k < i; k++) if (PSEUDO_CLEFT_CUES.has(tokens[k].norm)) return true;
  }
  return false;
}

export function detectRepetitions(words: readonly TimedWord[]): Repetition[] {
  const tokens = tokenize(words);
  const fillerWords = new Set<number>();
  for (const h of detectFillers(words)) for (let k = 0; k < h.wordCount; k++) fillerWords.add(h.wordIndex + k);
  const allFillers = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (!fillerWords.has(tokens[k].wordIndex)) return false;
    return true;
  };
  const found: Repetition[] = [];
  let i = 0;
  while (i < tokens.length) {
    let matched = false;
    for (let n = MAX_PHRASE; n >= 1 && !matched; n--) {
      if (!sameCopy(tokens, i, i + n, n) || excluded(tokens, i, n)) continue;
      let copies = 2;
      while (sameCopy(tokens, i + (copies - 1) * n, i + copies * n, n)) copies++;
      if (allFillers(i, i + copies * n)) continue;
      const last = tokens[i + copies * n - 1];
      const restartsMs: number[] = [];
      for (let c = 1; c < copies; c++) restartsMs.push(tokens[i + c * n].startMs);
      found.push({
        text: tokens.slice(i, i + n).map((t) => t.norm).join(' '),
        wordIndex: tokens[i].wordIndex,
        phraseLength: n,
        occurrences: copies,
        wordCount: last.wordIndex - tokens[i].wordIndex + 1,
        startMs: tokens[i].startMs,
        endMs: last.endMs,
        restartsMs,
      });
      i += copies * n;
      matched = true;
    }
    if (!matched) i++;
  }
  return found;
}
