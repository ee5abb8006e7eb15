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

/** Recognised text to words (whitespace-separated), dropping tokens with no letters or digits. */
export function splitWords(text: string): Array<{ text: string; norm: string }> {
  return text
    .split(/\s+/)
    .filter((t) => t.length > 0)
    .map((t) => ({ text: t, norm: normaliseWord(t) }))
    .filter((w) => /[a-z0-9]/.test(w.norm));
}
