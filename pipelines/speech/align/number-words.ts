// Digits as the words people say, for counting syllables and for deriving a pronunciation the
// aligner can use. Recognisers write "2020", "15" or "3rd"; the audio holds "twenty twenty",
// "fifteen", "third". Four-digit numbers that look like years (1100–1999, 2010–2099) are read in
// pairs, the way years are spoken; every other integer is read in full ("two thousand five").
const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
  'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const SCALES = ['', 'thousand', 'million', 'billion', 'trillion'];

const IRREGULAR_ORDINALS: Record<string, string> = {
  one: 'first', two: 'second', three: 'third', five: 'fifth', eight: 'eighth', nine: 'ninth', twelve: 'twelfth',
};

function belowThousand(n: number): string[] {
  const words: string[] = [];
  if (n >= 100) {
    words.push(ONES[Math.floor(n / 100)], 'hundred');
    n %= 100;
  }
  if (n >= 20) {
    words.push(TENS[Math.floor(n / 10)]);
    if (n % 10) words.push(ONES[n % 10]);
  } else if (n > 0) {
    words.push(ONES[n]);
  }
  return words;
}

function cardinal(digits: string): string[] {
  // Beyond the scales named above nobody reads the number out; digit by digit is what remains.
  if (digits.length > 15) return [...digits].map((d) => ONES[Number(d)]);
  const n = Number(digits);
  if (n === 0) return ['zero'];
  if (digits.length === 4 && ((n >= 1100 && n <= 1999) || (n >= 2010 && n <= 2099))) {
    const hi = Math.floor(n / 100);
    const lo = n % 100;
    if (lo === 0) return [...belowThousand(hi), 'hundred'];
    return [...belowThousand(hi), ...(lo < 10 ? ['oh', ONES[lo]] : belowThousand(lo))];
  }
  const words: string[] = [];
  let rest = n;
  for (let scale = 0; rest > 0; scale++) {
    const group = rest % 1000;
    if (group) words.unshift(...belowThousand(group), ...(SCALES[scale] ? [SCALES[scale]] : []));
    rest = Math.floor(rest / 1000);
  }
  return words;
}

function ordinalOf(word: string): string {
  if (IRREGULAR_ORDINALS[word]) return IRREGULAR_ORDINALS[word];
  if (word.endsWith('y')) return `${word.slice(0, -1)}ieth`;
  return `${word}th`;
}

/**
 * The spoken words of a token made of digits, optionally with an ordinal suffix ("3rd", "21st")
 * or a plural "s" ("90s", "1960s"). Null when the token is not such a number.
 */
export function numberWords(token: string): string[] | null {
  const m = /^(\d+)(st|nd|rd|th|s|'s)?$/.exec(token.toLowerCase());
  if (!m) return null;
  const words = cardinal(m[1]);
  const suffix = m[2];
  const last = words.length - 1;
  if (suffix === 'st' || suffix === 'nd' || suffix === 'rd' || suffix === 'th') words[last] = ordinalOf(words[last]);
  else if (suffix === 's' || suffix === "'s") words[last] = words[last].endsWith('y') ? `${words[last].slice(0, -1)}ies` : words[last].endsWith('x') ? `${words[last]}es` : `${words[last]}s`;
  return words;
}
