// Syllable counts of English words, and the fallback word timing built on them.
//
// The count is the number of vowel groups (runs of a, e, i, o, u and a y that is not followed by
// a vowel: the y of "yes" and "beyond" is a consonant), corrected for the spellings where that
// is known to be wrong:
// - silent endings: a final e after a consonant ("make", "fire"), except consonant + "le"
//   ("table", "people"); "-es" except after a sibilant (s, x, z, ch, sh, ce, ge: "boxes",
//   "changes") or consonant + l ("tables"); "-ed" except after t or d ("walked" vs "created")
//   or consonant + r ("hundred"); an e before -ly/-ment/-ful/-less/-ness ("lately", "movement");
// - vowel pairs spoken as two syllables (hiatus): "ia" (not "cia"/"tia": "social"), "io" (not
//   "tio"/"sio"/"cio"/"gio": "nation", "region"), "eo" (not "peo": "people"), "iu", "ua" and "uo"
//   after anything but q/g, "ue" before n/l/t after anything but q/g ("fluent", "cruel"),
//   "iet"/"ien" ("quiet", "client"), a final "ea"/"ia" ("idea", "area"), "crea" ("create"),
//   "-ier" after a consonant ("easier"), "-ism" ("tourism"), "-ing" after a vowel ("going",
//   "being", "seeing");
// - a short table of frequent words that no spelling rule gets right ("every", "business").
// Every word has at least one syllable ("hmm", "shh"). Digits count as the words people say
// ("2020" = "twenty twenty" = 4); hyphenated and apostrophe forms count their parts ("don't" = 1,
// "well-known" = 2). Measured against the CMU dictionary shipped with soundswallower, see
// syllables.test.ts.
import type { AlignedWord } from './types.js';
import { numberWords } from './number-words.js';

const VOWELS = new Set(['a', 'e', 'i', 'o', 'u']);

/** Words whose spelling misleads every rule above; counts as in Merriam-Webster's first pronunciation. */
const IRREGULAR: Record<string, number> = {
  every: 2,
  everyone: 3,
  everything: 3,
  everybody: 4,
  everywhere: 3,
  business: 2,
  businesses: 3,
  maybe: 2,
  recipe: 3,
  science: 2,
  sometimes: 2,
  somewhere: 2,
  someone: 2,
  something: 2,
  anyone: 3,
  whereas: 2,
  poem: 2,
  poet: 2,
  naive: 2,
  cooperate: 4,
  coordinate: 4,
  reality: 4,
  theater: 3,
  theatre: 3,
  hour: 1,
  our: 1,
  choir: 1,
  vehicle: 3,
  wednesday: 2,
  chocolate: 2,
  interesting: 3,
  family: 3,
  evening: 2,
  camera: 3,
  favorite: 3,
  favourite: 3,
  nineteen: 2,
  ninety: 2,
  nineties: 2,
  ninetieth: 3,
};

function isVowelAt(w: string, i: number): boolean {
  const c = w[i];
  if (VOWELS.has(c)) return true;
  // y is a vowel unless it starts a syllable, i.e. unless a vowel follows it.
  if (c === 'y') return i + 1 >= w.length || !VOWELS.has(w[i + 1]);
  return false;
}

function lettersSyllables(w: string): number {
  if (w.length === 0) return 0;
  if (IRREGULAR[w] !== undefined) return IRREGULAR[w];
  let count = 0;
  for (let i = 0; i < w.length; i++) if (isVowelAt(w, i) && (i === 0 || !isVowelAt(w, i - 1))) count++;
  if (count === 0) return 1;

  const isConsonant = (i: number) => i >= 0 && i < w.length && !isVowelAt(w, i);
  const n = w.length;
  // Silent endings.
  if (count > 1) {
    if (w.endsWith('e') && isConsonant(n - 2) && !(w.endsWith('le') && isConsonant(n - 3))) count--;
    else if (w.endsWith('es') && isConsonant(n - 3) && !/(s|x|z|ch|sh|c|g)es$/.test(w) && !(w[n - 3] === 'l' && isConsonant(n - 4))) count--;
    else if (w.endsWith('ed') && isConsonant(n - 3) && !/[td]ed$/.test(w) && !/[^aeiouy]red$/.test(w)) count--;
    // A silent e before a suffix: "lately", "immediately", "movement", "careful", "homeless".
    if (/[^aeiouy]e(ly|ment|ments|ful|less|ness)$/.test(w) && !/[^aeiouy]le(ly|ment|ments|ful|less|ness)$/.test(w)) count--;
  }
  // Vowel pairs spoken as two syllables.
  const hiatus: RegExp[] = [
    /(?<![ct])ia(?!l)/g, // "media", "giant"; not "social", "special" (and not "trial"/"dial" either: an accepted miss)
    /(?<![tscgx])io/g, // "radio", "violin"; not "nation", "vision", "region"
    /(?<!p)eo(?!u)/g, // "video", "theory"; not "people", "gorgeous"
    /iu/g, // "stadium"
    /(?<![qg])u[ao]/g, // "actual", "duo"; not "equal", "guard", "quote"
    /(?<![qg])ue(?=[nlt])/g, // "fluent", "cruel", "duet"; not "question", "guess"
    /ie(?=t)/g, // "quiet", "diet"
    /(?<![ct])ien/g, // "client"; not "patient", "ancient"
    /crea(?!tu)/g, // "create"; not "creature"
    /ism$/g, // "tourism"
  ];
  for (const re of hiatus) count += w.match(re)?.length ?? 0;
  if (/[^aeiou]ier$/.test(w)) count++; // "easier", "earlier"
  if (count > 1 && /[^aeiou]ea$/.test(w)) count++; // "idea", "korea"; not "sea"
  if (/[aeiouy]ing$/.test(w) && !/[qg]uing$/.test(w) && !/ying$/.test(w)) count++; // "going", "seeing"
  return Math.max(1, count);
}

/** Syllables of an English word (vowel-group heuristic with the usual corrections; at least 1; digits/numbers sensible). */
export function syllableCount(word: string): number {
  const lower = word.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[\u2018\u2019\u02bc]/g, "'");
  let total = 0;
  for (const part of lower.split(/[^a-z0-9']+/)) {
    if (!part) continue;
    const spoken = numberWords(part.replace(/'/g, ''));
    if (spoken) {
      for (const w of spoken) total += lettersSyllables(w);
      continue;
    }
    // Letters and digits mixed ("mp3", "b2b"): count each run on its own.
    for (const run of part.replace(/'/g, '').match(/[a-z]+|\d+/g) ?? []) {
      const digits = numberWords(run);
      if (digits) for (const w of digits) total += lettersSyllables(w);
      else total += lettersSyllables(run);
    }
  }
  return Math.max(1, total);
}

/** Fallback: spreads words over [startMs, endMs) in proportion to syllable count (pure). */
export function spreadBySyllables(words: readonly string[], startMs: number, endMs: number): AlignedWord[] {
  const span = Math.max(0, endMs - startMs);
  const counts = words.map(syllableCount);
  const total = counts.reduce((a, b) => a + b, 0);
  const out: AlignedWord[] = [];
  let before = 0;
  let at = startMs;
  for (let i = 0; i < words.length; i++) {
    before += counts[i];
    // The last boundary is endMs itself, so rounding in the division can never leave a gap or overshoot.
    const end = i === words.length - 1 ? startMs + span : startMs + (span * before) / total;
    out.push({ text: words[i], startMs: at, endMs: end, method: 'syllable_estimate' });
    at = end;
  }
  return out;
}
