// Filler words found in a transcript by context rules. The rules are lexical: they look at the
// word forms around a candidate and at the punctuation, never at audio. They resolve the common
// readings and are honest about the rest: when a reading stays ambiguous the rule says "not a
// filler", because a false filler costs the speaker more than a missed one (the issue allows at
// most 1 false filler per minute).
//
// Rules (a "set off" word has a comma-like mark or a sentence edge on both sides, or a comma on
// one side and a sentence edge on the other; "sentence-initial" means first word or after . ! ? ;):
//
// - Filled pauses um/uh/er/ah/hmm and spellings (umm, uhm, uhh, erm, err, ahh, aah, hm, hmmm, mm,
//   mmm) are always fillers. They are reported under a canonical name: um, uh, er, ah, hmm.
// - "like" (only the exact form; likes/liked/liking/likely are never fillers):
//   * verb, not a filler: after a subject pronoun (I, you, we, they), a modal or auxiliary (would,
//     'd, will, can, do, don't, did, …) or "to", optionally through one adverb (really, also, …),
//     with no comma in between: "I like tea", "they really like it", "would like".
//   * comparison, not a filler: after a verb of seeming or sensing (look, sound, feel, seem, smell,
//     taste, in any form) or a comparison word (something, anything, nothing, more, just,
//     exactly, much, a lot, …): "looks like rain", "something like that", "feel like it".
//   * filler: set off by commas or a sentence edge on either side ("it was, like, huge", "Like, why"),
//     sentence-initial, before a number ("like five minutes") or a degree word ("like so big",
//     "like really"), or after a copula (is, was, 's, were, …) when the next word does not start a
//     noun phrase ("was like huge", quotative "he was like no way").
//   * otherwise not a filler ("it's like a dream", "people like him"): the comparison and the
//     preposition readings win when nothing marks the word as a hedge.
// - "you know": not a filler after do/did/don't/if/as/what/how/than/modals ("do you know", "as you
//   know" is a parenthetical with meaning); a filler when followed by a comma or sentence edge, by
//   nothing, by a filled pause, or by a clause conjunction (and, but, so, because); otherwise it has
//   a complement and is not a filler ("you know the answer", "you know that/what/it/him…").
//   "y'know"/"ya know" are always fillers.
// - "I mean": not a filler after what/that/which ("what I mean is") or when followed, without a
//   comma, by a complement of meaning: it, that, this, to, what, which, well, exactly, business,
//   him, her, them, you ("I mean it", "I mean to go", "I mean what I say"). Otherwise it is the
//   reformulation marker and a filler ("I mean, it's fine", "it was, I mean really big").
// - "so": a filler when sentence-initial ("So, what now", "So we went", also after an opening
//   filled pause: "Um, so we went") or set off by commas
//   mid-sentence, except: before a degree or result word (so that, so much, so many, so far,
//   so long, so big, so-called …), after and/but/or ("and so on", "And so, my fellow Americans":
//   a connective meaning "therefore"), and after verbs taking "so" as a pro-form (think, hope,
//   guess, say, said, believe, suppose, expect, seem, do, if, not). Mid-sentence "so" without
//   commas ("it's so big", "I left so I could rest") is never a filler.
// - "basically", "actually", "literally": fillers when set off, sentence-initial or
//   sentence-final; not when inside a clause without commas, where they modify the verb or
//   adjective ("it actually works", "literally true"). "it actually works" can be a hedge in
//   speech; we choose "not a filler" because the word carries meaning there as often as not.
//
// Limits: unpunctuated transcripts (many recognisers) only have the first word as a sentence
// start, so set-off readings must come from the other rules; a transcript's punctuation is taken
// at face value; "like" after nouns ("people like him") and quotative "like" after non-copulas
// ("and I'm like") follow the rules above, not meaning.
import { type Token, tokenize } from './tokens.js';
import type { TimedWord } from './types.js';

export type FillerName =
  | 'um' | 'uh' | 'er' | 'ah' | 'hmm'
  | 'like' | 'you know' | 'I mean' | 'so' | 'basically' | 'actually' | 'literally';

export const FILLER_NAMES: readonly FillerName[] = [
  'um', 'uh', 'er', 'ah', 'hmm', 'like', 'you know', 'I mean', 'so', 'basically', 'actually', 'literally',
];

export interface FillerHit {
  filler: FillerName;
  /** Index of the first word of the filler in the input array. */
  wordIndex: number;
  /** Number of input words the filler spans (2 for "you know" and "I mean"). */
  wordCount: number;
  startMs: number;
  endMs: number;
}

/** Canonical name of a filled-pause spelling, or undefined. */
export function filledPauseName(norm: string): FillerName | undefined {
  if (/^u+m+$/.test(norm) || /^u+h+m+$/.test(norm)) return 'um';
  if (/^u+h+$/.test(norm)) return 'uh';
  if (/^e+r+m*$/.test(norm)) return 'er';
  if (/^a+h+$/.test(norm)) return 'ah';
  if (/^h+m+$/.test(norm) || /^m{2,}$/.test(norm)) return 'hmm';
  return undefined;
}

const set = (words: string) => new Set(words.split(' '));

const SUBJECTS = set("i you we they i'd you'd we'd they'd he'd she'd i'll you'll we'll they'll");
const MODALS = set(
  "would will can could should might may must shall do does did don't doesn't didn't won't wouldn't can't cannot couldn't shouldn't to 'd",
);
const VERB_ADVERBS = set('really also still all both genuinely totally truly kinda just always never actually definitely');
const SEEM_VERBS = set(
  'look looks looked looking sound sounds sounded sounding feel feels felt feeling seem seems seemed seeming smell smells smelled smelling taste tastes tasted tasting act acts acted acting',
);
const COMPARISON_WORDS = set('something anything nothing everything more less much just exactly quite lot not somewhat');
const COPULAS = set("is was were are am be been being 's 're 'm it's that's he's she's there's i'm you're we're they're");
const NOUN_PHRASE_START = set(
  'a an the this that these those it him her them me us you my your his their our its some any one someone something',
);
const DEGREE_WORDS = set('so very really totally super pretty too quite literally all way much');
const NUMBER_WORDS = set(
  'one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred thousand million half couple few',
);
const CLAUSE_CONJUNCTIONS = set('and but so because or then');
const YOU_KNOW_QUESTION = set("do did don't didn't does doesn't if as what how than would will could should might may can to");
const MEAN_COMPLEMENTS = set('it that this to what which well exactly business him her them you');
const MEAN_RELATIVE = set('what that which');
const SO_FOLLOWERS = set(
  'that much many far long few little big good bad great nice small large hard easy fast slow bad sure happy sorry glad important called',
);
const SO_PRECEDERS = set("and but or think thought hope guess say said believe suppose expect seems seemed do did if not i'd");

function isNumber(norm: string): boolean {
  return /^\d/.test(norm) || NUMBER_WORDS.has(norm);
}

/** Set off: punctuation or a sentence edge on both sides. */
function setOff(t: Token): boolean {
  return t.before !== 'none' && t.after !== 'none';
}

function likeIsFiller(tokens: Token[], i: number): boolean {
  const t = tokens[i];
  const prev = t.before === 'none' ? tokens[i - 1] : undefined;
  const next = t.after === 'none' ? tokens[i + 1] : undefined;
  if (prev) {
    // Verb: subject/modal directly before, or through one adverb.
    if (SUBJECTS.has(prev.norm) || MODALS.has(prev.norm)) return false;
    const prev2 = prev.before === 'none' ? tokens[i - 2] : undefined;
    if (VERB_ADVERBS.has(prev.norm) && prev2 && (SUBJECTS.has(prev2.norm) || MODALS.has(prev2.norm))) return false;
    // Comparison preposition.
    if (SEEM_VERBS.has(prev.norm) || COMPARISON_WORDS.has(prev.norm)) return false;
  }
  if (t.before !== 'none' || t.after !== 'none') return true;
  if (next && (isNumber(next.norm) || DEGREE_WORDS.has(next.norm))) return true;
  if (prev && COPULAS.has(prev.norm) && next && !NOUN_PHRASE_START.has(next.norm)) return true;
  return false;
}

function youKnowIsFiller(tokens: Token[], i: number): boolean {
  const you = tokens[i];
  const prev = you.before === 'none' ? tokens[i - 1] : undefined;
  if (prev && YOU_KNOW_QUESTION.has(prev.norm)) return false;
  const know = tokens[i + 1];
  if (know.after !== 'none') return true;
  const next = tokens[i + 2];
  return filledPauseName(next.norm) !== undefined || CLAUSE_CONJUNCTIONS.has(next.norm);
}

function iMeanIsFiller(tokens: Token[], i: number): boolean {
  const prev = tokens[i].before === 'none' ? tokens[i - 1] : undefined;
  if (prev && MEAN_RELATIVE.has(prev.norm)) return false;
  const mean = tokens[i + 1];
  if (mean.after !== 'none') return true;
  return !MEAN_COMPLEMENTS.has(tokens[i + 2].norm);
}

function soIsFiller(tokens: Token[], i: number): boolean {
  const t = tokens[i];
  const prev = t.before === 'none' ? tokens[i - 1] : undefined;
  if (prev && SO_PRECEDERS.has(prev.norm)) return false;
  const next = t.after === 'none' ? tokens[i + 1] : undefined;
  if (next && SO_FOLLOWERS.has(next.norm)) return false;
  if (t.before === 'sentence') return true;
  // "Um, so we went": a filled pause before it does not stop "so" from opening the sentence.
  const p = tokens[i - 1];
  if (p && filledPauseName(p.norm) && p.before === 'sentence') return true;
  return setOff(t);
}

function hedgeAdverbIsFiller(t: Token): boolean {
  // Any mark or edge on either side: "Actually, no", "it's fine, basically", "it was, literally".
  return t.before !== 'none' || t.after !== 'none';
}

/** Filler words in transcript order. Multi-word fillers never overlap other hits. */
export function detectFillers(words: readonly TimedWord[]): FillerHit[] {
  const tokens = tokenize(words);
  const hits: FillerHit[] = [];
  const hit = (filler: FillerName, first: number, count: number) => {
    const a = tokens[first];
    const b = tokens[first + count - 1];
    hits.push({ filler, wordIndex: a.wordIndex, wordCount: b.wordIndex - a.wordIndex + 1, startMs: a.startMs, endMs: b.endMs });
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const n = t.norm;
    const pause = filledPauseName(n);
    if (pause) {
      hit(pause, i, 1);
      continue;
    }
    if (n === "y'know" || n === 'yknow') {
      hit('you know', i, 1);
      continue;
    }
    const two = t.after === 'none' && i + 1 < tokens.length;
    if (two && (n === 'you' || n === 'ya') && tokens[i + 1].norm === 'know') {
      if (n === 'ya' || youKnowIsFiller(tokens, i)) {
        hit('you know', i, 2);
        i++;
      }
      continue;
    }
    if (two && n === 'i' && tokens[i + 1].norm === 'mean') {
      if (iMeanIsFiller(tokens, i)) {
        hit('I mean', i, 2);
        i++;
      }
      continue;
    }
    if (n === 'like' && likeIsFiller(tokens, i)) hit('like', i, 1);
    else if (n === 'so' && soIsFiller(tokens, i)) hit('so', i, 1);
    else if ((n === 'basically' || n === 'actually' || n === 'literally') && hedgeAdverbIsFiller(t)) hit(n, i, 1);
  }
  return hits;
}
