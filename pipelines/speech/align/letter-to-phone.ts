// A rough spelling-to-sound guess (ARPAbet, the CMU phone set of soundswallower's en-us model)
// for words the pronouncing dictionary lacks: mostly names ("Claflin") and new coinages.
//
// Forced alignment needs a pronunciation for every word, but not a perfect one: the aligner only
// has to find where the word is, between neighbours it knows, so a guess with the right number
// of syllables and roughly the right consonants lands the boundaries close to where they are.
// The rules are greedy, longest spelling first, with a little context (c/g before e/i/y, a
// silent final e lengthening the vowel before it, silent k/w/g at the start). They are not a
// grapheme-to-phoneme model and do not try to be one.
const SINGLE_VOWEL: Record<string, string> = { a: 'AE', e: 'EH', i: 'IH', o: 'AA', u: 'AH', y: 'IH' };
const LONG_VOWEL: Record<string, string> = { a: 'EY', e: 'IY', i: 'AY', o: 'OW', u: 'UW', y: 'AY' };

/** Spellings tried longest first; each maps to its phones ('' = silent). */
const CLUSTERS: Array<[string, string]> = [
  ['tch', 'CH'], ['sch', 'S K'], ['igh', 'AY'], ['ough', 'AO'], ['augh', 'AO'], ['eigh', 'EY'],
  ['tion', 'SH AH N'], ['sion', 'ZH AH N'], ['ture', 'CH ER'],
  ['ch', 'CH'], ['sh', 'SH'], ['th', 'TH'], ['ph', 'F'], ['wh', 'W'], ['ck', 'K'], ['ng', 'NG'],
  ['qu', 'K W'], ['gh', ''], ['dg', 'JH'],
  ['ee', 'IY'], ['ea', 'IY'], ['oo', 'UW'], ['ou', 'AW'], ['ow', 'OW'], ['oi', 'OY'], ['oy', 'OY'],
  ['ai', 'EY'], ['ay', 'EY'], ['au', 'AO'], ['aw', 'AO'], ['ie', 'IY'], ['ei', 'EY'], ['ey', 'IY'],
  ['oa', 'OW'], ['ue', 'UW'], ['ew', 'UW'],
  ['er', 'ER'], ['ir', 'ER'], ['ur', 'ER'], ['ar', 'AA R'], ['or', 'AO R'],
];

const CONSONANT: Record<string, string> = {
  b: 'B', d: 'D', f: 'F', h: 'HH', j: 'JH', k: 'K', l: 'L', m: 'M', n: 'N', p: 'P', r: 'R', s: 'S',
  q: 'K', t: 'T', v: 'V', w: 'W', x: 'K S', z: 'Z',
};

const isVowelLetter = (c: string | undefined) => c !== undefined && 'aeiouy'.includes(c);

/**
 * ARPAbet phones for a word of lower-case letters a–z (anything else is skipped). Never empty
 * for a word with at least one letter.
 */
export function letterToPhones(word: string): string[] {
  const w = word.toLowerCase().replace(/[^a-z]/g, '');
  const phones: string[] = [];
  // A final e after consonant(s) is silent and makes the vowel before it long ("jane", "mike").
  const silentFinalE = w.length > 2 && w.endsWith('e') && !isVowelLetter(w[w.length - 2]) && !/[^aeiouy]le$/.test(w);
  // Consonant + "le" at the end is a syllabic l ("gable", "little").
  const syllabicL = /[^aeiouy]le$/.test(w);
  const end = silentFinalE ? w.length - 1 : syllabicL ? w.length - 2 : w.length;
  let i = 0;
  if (/^(kn|gn|wr|ps)/.test(w)) i = 1; // silent first letter: "knox", "wright"
  while (i < end) {
    const rest = w.slice(i, end);
    const cluster = CLUSTERS.find(([spelling]) => rest.startsWith(spelling));
    if (cluster && !(cluster[0] === 'gh' && i === 0)) {
      if (cluster[1]) phones.push(...cluster[1].split(' '));
      i += cluster[0].length;
      continue;
    }
    const c = w[i];
    const next = w[i + 1];
    if (next === c && !isVowelLetter(c)) {
      i++; // doubled consonant: one sound ("ll", "tt")
      continue;
    }
    if (isVowelLetter(c)) {
      if (c === 'y' && i === 0 && isVowelLetter(next)) phones.push('Y');
      else if (c === 'y' && i === end - 1 && i > 0) phones.push('IY'); // "abbey", "kelly"
      else {
        // Long before consonant + silent e ("jane"), or when it ends an open syllable at the end.
        const beforeSilentE = silentFinalE && i === end - 2;
        phones.push(beforeSilentE ? LONG_VOWEL[c] : i === end - 1 && c === 'o' ? 'OW' : i === end - 1 && c === 'a' ? 'AH' : i === end - 1 && c === 'i' ? 'IY' : SINGLE_VOWEL[c]);
      }
    } else if (c === 'c') phones.push(next === 'e' || next === 'i' || next === 'y' ? 'S' : 'K');
    else if (c === 'g') phones.push(next === 'e' || next === 'i' || next === 'y' ? 'JH' : 'G');
    else if (CONSONANT[c]) phones.push(...CONSONANT[c].split(' '));
    i++;
  }
  if (syllabicL) phones.push('AH', 'L');
  if (!phones.some((p) => /^(AA|AE|AH|AO|AW|AY|EH|ER|EY|IH|IY|OW|OY|UH|UW)$/.test(p))) {
    // Consonants only ("tsk", "hmm"-like spellings): a neutral vowel keeps it a speakable word.
    phones.splice(Math.min(1, phones.length), 0, 'AH');
  }
  return phones;
}
