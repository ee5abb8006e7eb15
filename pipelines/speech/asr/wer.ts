// Word error rate for checking transcripts: Levenshtein distance over words after a
// normalisation that removes differences a listener would not count as errors (case,
// punctuation, hyphens), so that only recognition mistakes are measured.

/** Lowercase words with punctuation removed; apostrophes inside words are kept ("isn't"). */
export function normaliseWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[’‘]/g, "'")
    .replace(/[-‐–—]/g, ' ')
    .replace(/[^\p{L}\p{N}'\s]/gu, ' ')
    .split(/\s+/)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter((w) => w.length > 0);
}

export interface WordErrors {
  substitutions: number;
  deletions: number;
  insertions: number;
  /** Words in the reference. */
  referenceWords: number;
  /** (S + D + I) / N; 0 for two empty texts, 1 per inserted word over an empty reference. */
  wer: number;
}

/** Minimum edit alignment of hypothesis words to reference words. */
export function wordErrors(reference: string, hypothesis: string): WordErrors {
  const ref = normaliseWords(reference);
  const hyp = normaliseWords(hypothesis);
  const cols = hyp.length + 1;
  // cost[i][j]: edits turning ref[0..i) into hyp[0..j); ops[] remembers the last edit for counting.
  const cost = new Uint32Array((ref.length + 1) * cols);
  const op = new Uint8Array((ref.length + 1) * cols); // 0 match, 1 sub, 2 del, 3 ins
  for (let i = 1; i <= ref.length; i++) {
    cost[i * cols] = i;
    op[i * cols] = 2;
  }
  for (let j = 1; j <= hyp.length; j++) {
    cost[j] = j;
    op[j] = 3;
  }
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= hyp.length; j++) {
      const same = ref[i - 1] === hyp[j - 1];
      let best = cost[(i - 1) * cols + j - 1] + (same ? 0 : 1);
      let bestOp = same ? 0 : 1;
      const del = cost[(i - 1) * cols + j] + 1;
      if (del < best) [best, bestOp] = [del, 2];
      const ins = cost[i * cols + j - 1] + 1;
      if (ins < best) [best, bestOp] = [ins, 3];
      cost[i * cols + j] = best;
      op[i * cols + j] = bestOp;
    }
  }
  const counts = { substitutions: 0, deletions: 0, insertions: 0 };
  for (let i = ref.length, j = hyp.length; i > 0 || j > 0; ) {
    const o = op[i * cols + j];
    if (o === 0 || o === 1) {
      if (o === 1) counts.substitutions++;
      i--;
      j--;
    } else if (o === 2) {
      counts.deletions++;
      i--;
    } else {
      counts.insertions++;
      j--;
    }
  }
  const errors = counts.substitutions + counts.deletions + counts.insertions;
  return { ...counts, referenceWords: ref.length, wer: ref.length === 0 ? errors : errors / ref.length };
}
