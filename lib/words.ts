// How a recognised transcript is cut into words, shared by the speech pipeline (which aligns,
// stores and counts these words: speech_words.text is a word's `norm`) and the API (which finds
// a stored word again in its segment's text, to show it as written).

/** Lower case, letters/digits/apostrophes/inner hyphens only: "Americans," → "americans". */
export function normaliseWord(text: string): string {
  return text
    .toLowerCase()
    .replace(/[’‘]/g, "'")
    .replace(/[^a-z0-9'\- ]/g, '')
    .replace(/^[-']+|[-']+$/g, '');
}

/** A recognised token without the punctuation before and after it (case and inner apostrophes and hyphens kept); itself when that leaves nothing. */
export function bareWord(token: string): string {
  const bare = token.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
  return bare === '' ? token : bare;
}

/**
 * The words of a segment as its text writes them ("Americans," → "Americans"), for its stored
 * words (`norms`: each the normalised form of one of the text's words, in order, or a word the
 * text does not hold, as an acoustic filler): each matched in order with the next of the
 * text's words of that form (a few words ahead at most), else left as stored.
 */
export function writtenForms(text: string, norms: string[]): string[] {
  const written = splitWords(text);
  let j = 0;
  return norms.map((norm) => {
    for (let k = j; k < written.length && k <= j + 3; k++) {
      if (written[k].norm !== norm) continue;
      j = k + 1;
      return bareWord(written[k].text);
    }
    return norm;
  });
}

/** Recognised text to words (whitespace-separated), dropping tokens with no letters or digits. */
export function splitWords(text: string): Array<{ text: string; norm: string }> {
  return text
    .split(/\s+/)
    .filter((t) => t.length > 0)
    .map((t) => ({ text: t, norm: normaliseWord(t) }))
    .filter((w) => /[a-z0-9]/.test(w.norm));
}
