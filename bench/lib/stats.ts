// Summaries of a benchmark's individual runs. Pure: numbers in, numbers out.

/** Fewer runs than this and a "median" is just one run or the mean of two: not a figure to quote. */
export const MIN_RUNS_FOR_MEDIAN = 3;

/**
 * The true median: the middle value of the sorted runs, or the mean of the two middle values
 * when the count is even (with two runs that is their mean, never the larger one).
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('the median of no values is undefined');
  if (values.some((v) => Number.isNaN(v))) throw new RangeError('a run measured NaN: fix the benchmark, do not summarise it');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface Summary {
  /** Every run's value, in the order the runs were made. */
  runs: number[];
  n: number;
  median: number;
  min: number;
  max: number;
  /** False with fewer than MIN_RUNS_FOR_MEDIAN runs: the README may not quote this median. */
  quotable: boolean;
}

export function summarise(values: readonly number[]): Summary {
  return {
    runs: [...values],
    n: values.length,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    quotable: values.length >= MIN_RUNS_FOR_MEDIAN,
  };
}

/**
 * The order in which to measure `variants` in each of `runs` rounds so that a comparison is made
 * in the same run, interleaved: every round measures every variant, and the order rotates by one
 * each round, so no variant always goes first (warm caches, a neighbour's burst of load) or last.
 */
export function interleavedOrder<V>(variants: readonly V[], runs: number): V[][] {
  return Array.from({ length: runs }, (_, r) => variants.map((_, i) => variants[(i + r) % variants.length]));
}

/** Rounds a value for display and for result files (the raw runs keep what was measured). */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
