// Scoring filler detections against hand-marked or constructed truth, the one scorer for the
// filler tests and the evaluation script (scripts/fixtures/eval-fillers.ts).
//
// Matching: a detection and a truth filler match when the gap between their intervals is at most
// `toleranceMs` (default 300 ms; 0 when they overlap). The hand marks in ../shared/data/fillers
// are good to ±0.1–0.3 s (its MANIFEST), so a detection beside a marked filler is that filler,
// not a false one. Each truth filler takes at most one detection, except where its `altCount`
// says a span may be counted as one or more fillers ("the uh uh acoustic", one long creaky
// vowel): there it takes up to altCount's maximum, and is found with one. Detections are
// matched in order of their gap to the truth (smallest first), so a detection that lies on a
// filler is never taken by a neighbour it only comes near. Every detection left unmatched is a
// false filler.

export interface TruthSpan {
  startMs: number;
  endMs: number;
  /** 'um', 'uh', 'hmm', 'you know', … */
  filler: string;
  /** When either count is acceptable here: [least, most] detections. */
  altCount?: readonly [number, number];
}

export interface DetectionSpan {
  startMs: number;
  endMs: number;
}

export interface FillerScore {
  /** Truth fillers found. */
  found: number;
  /** Truth fillers. */
  total: number;
  /** Detections matching no truth filler. */
  falseHits: number;
  /** Per truth filler: the index of the detections matched to it (empty when missed). */
  matches: number[][];
  /** Indexes of the false detections. */
  falseIndexes: number[];
}

export const MATCH_TOLERANCE_MS = 300;

/** Milliseconds between two intervals; 0 when they overlap. */
export function gapMs(a: DetectionSpan, b: DetectionSpan): number {
  return Math.max(0, Math.max(a.startMs, b.startMs) - Math.min(a.endMs, b.endMs));
}

export function scoreFillers(truth: readonly TruthSpan[], detections: readonly DetectionSpan[], toleranceMs = MATCH_TOLERANCE_MS): FillerScore {
  const pairs: Array<{ t: number; d: number; gap: number }> = [];
  truth.forEach((t, ti) =>
    detections.forEach((d, di) => {
      const gap = gapMs(t, d);
      if (gap <= toleranceMs) pairs.push({ t: ti, d: di, gap });
    }),
  );
  // Smallest gap first; among equal gaps the earlier truth, then the earlier detection.
  pairs.sort((a, b) => a.gap - b.gap || a.t - b.t || a.d - b.d);
  const matches: number[][] = truth.map(() => []);
  const used = new Set<number>();
  for (const p of pairs) {
    if (used.has(p.d)) continue;
    const capacity = truth[p.t].altCount?.[1] ?? 1;
    if (matches[p.t].length >= capacity) continue;
    matches[p.t].push(p.d);
    used.add(p.d);
  }
  const found = matches.filter((m, i) => m.length >= Math.max(1, truth[i].altCount?.[0] ?? 1)).length;
  const falseIndexes = detections.map((_, i) => i).filter((i) => !used.has(i));
  return { found, total: truth.length, falseHits: falseIndexes.length, matches, falseIndexes };
}
