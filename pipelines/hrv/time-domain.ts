// Time-domain HRV of an RR (NN) series, with the definitions NeuroKit2 0.2 (hrv_time) and
// Kubios use:
//   mean RR; mean HR = 60000 / mean RR (bpm);
//   SDNN  = sample standard deviation of RR (n − 1 in the denominator, numpy ddof=1);
//   RMSSD = sqrt(mean of squared successive differences);
//   pNN50 = 100 · (successive differences with |d| > 50 ms) / (number of successive differences).
//     NeuroKit2 divides by the number of intervals instead (len(diff) + 1); the difference is
//     one part in n.
// Successive differences are taken only between intervals that follow each other: when beat
// times are given, RR[i] and RR[i−1] are successive if |(t[i] − t[i−1]) − RR[i]| ≤ 10 ms (the
// tolerance NeuroKit2's intervals_successive uses), so an interval removed as an artifact does
// not produce a spurious difference across the gap.

/** Largest mismatch (ms) between a beat-time step and its RR for the two to count as successive. */
export const SUCCESSIVE_TOLERANCE_MS = 10;

export interface TimeDomainMetrics {
  meanRrMs: number;
  meanHrBpm: number;
  rmssdMs: number;
  sdnnMs: number;
  pnn50Pct: number;
  /** Number of RR intervals used. */
  rrCount: number;
  /** Number of successive differences used for RMSSD and pNN50. */
  differenceCount: number;
}

export function createTimeDomainMetrics(): TimeDomainMetrics {
  return { meanRrMs: NaN, meanHrBpm: NaN, rmssdMs: NaN, sdnnMs: NaN, pnn50Pct: NaN, rrCount: 0, differenceCount: 0 };
}

/**
 * Time-domain metrics of `rrMs[0 .. count)`. With `beatTimesMs` (same indexing; time of the beat
 * closing each interval) differences across gaps are left out; without, all neighbours are
 * successive. Metrics that need more data than given are NaN (SDNN needs 2 intervals, RMSSD and
 * pNN50 one difference). Writes into and returns `out` when given.
 */
export function computeTimeDomain(
  rrMs: Float64Array,
  count: number,
  beatTimesMs: Float64Array | null = null,
  out: TimeDomainMetrics = createTimeDomainMetrics(),
): TimeDomainMetrics {
  out.rrCount = count;
  if (count < 1) {
    out.meanRrMs = out.meanHrBpm = out.rmssdMs = out.sdnnMs = out.pnn50Pct = NaN;
    out.differenceCount = 0;
    return out;
  }
  let sum = 0;
  for (let i = 0; i < count; i++) sum += rrMs[i];
  const mean = sum / count;
  // Two-pass variance: RR values are ~1000 with spread ~50, where the one-pass formula loses
  // digits.
  let squares = 0;
  let diffSquares = 0;
  let diffs = 0;
  let over50 = 0;
  for (let i = 0; i < count; i++) {
    const r = rrMs[i];
    const dev = r - mean;
    squares += dev * dev;
    if (i === 0) continue;
    if (beatTimesMs !== null && Math.abs(beatTimesMs[i] - beatTimesMs[i - 1] - r) > SUCCESSIVE_TOLERANCE_MS) continue;
    const d = r - rrMs[i - 1];
    diffSquares += d * d;
    diffs++;
    if (d > 50 || d < -50) over50++;
  }
  out.meanRrMs = mean;
  out.meanHrBpm = 60000 / mean;
  out.sdnnMs = count > 1 ? Math.sqrt(squares / (count - 1)) : NaN;
  out.differenceCount = diffs;
  out.rmssdMs = diffs > 0 ? Math.sqrt(diffSquares / diffs) : NaN;
  out.pnn50Pct = diffs > 0 ? (100 * over50) / diffs : NaN;
  return out;
}
