// Synthetic groups with known answers (issue 11, "Done when"): realistic participants (RR with
// respiratory sinus arrhythmia plus beat noise, each with their own mean RR and amplitude,
// through the coherence worker's 4 Hz spline: synthetic-group.ts), 100 surrogates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeSynchrony, createSynchronyPlan } from './synchrony.js';
import { syntheticGroup } from './synthetic-group.js';

const plan = createSynchronyPlan();
/** E[R] for N independent uniform phases, large N: E|Σ u_j| / N = √(πN)/2 / N. */
const expectedNullR = (n: number) => Math.sqrt(Math.PI) / (2 * Math.sqrt(n));
const sync = (n: number, lockedShare: number, seed: number) =>
  computeSynchrony(plan, syntheticGroup({ n, lockedShare, seed, lockedPhaseSdRad: 0.2 }).series, { seed, crossCorrelation: false });

test('all participants in phase: R > 0.9 and p < 0.01 (groups of 10, 50 and 200, 20 seeds each)', () => {
  for (const n of [10, 50, 200]) {
    for (let seed = 1; seed <= 20; seed++) {
      const s = sync(n, 1, seed);
      assert.equal(s.participantCount, n);
      assert.ok(s.r! > 0.9, `N=${n} seed ${seed}: R ${s.r}`);
      assert.ok(s.p! < 0.01, `N=${n} seed ${seed}: p ${s.p}`);
      assert.ok(s.z! > 3, `N=${n} seed ${seed}: z ${s.z}`);
    }
  }
});

test('independent random phases: R within 3/√N of √π/(2√N) in every seed, and p > 0.05 at the 5 % rate of a valid test', () => {
  let runs = 0;
  let significant = 0;
  const perN: string[] = [];
  for (const n of [3, 10, 50, 200]) {
    let sigN = 0;
    let rSum = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const s = sync(n, 0, seed);
      assert.ok(Math.abs(s.r! - expectedNullR(n)) <= 3 / Math.sqrt(n), `N=${n} seed ${seed}: R ${s.r} vs ${expectedNullR(n)}`);
      assert.ok(s.p! > 0 && s.p! <= 1);
      rSum += s.r!;
      runs++;
      if (!(s.p! > 0.05)) {
        significant++;
        sigN++;
      }
    }
    perN.push(`N=${n}: mean R ${(rSum / 200).toFixed(3)} (√π/(2√N) ${expectedNullR(n).toFixed(3)}), p ≤ 0.05 in ${sigN}/200`);
  }
  console.log(perN.join('\n'));
  // The issue asks p > 0.05 in at least 95 % of seeds. A test of exact size 5 % meets that only on
  // average (p ≤ 0.05 has probability 5/101 with 100 surrogates), so a finite set of seeds
  // lands below 95 % about half the time. The check here is the one that mark stands for: the
  // rate of p ≤ 0.05 is not above 5 %, i.e. the count stays within the binomial(runs, 0.05)
  // upper 1 % tail (one-sided); a test that rejects too often (a 7 % rate: 56 of 800) fails it.
  const limit = binomialUpperQuantile(runs, 5 / 101, 0.99);
  console.log(`p > 0.05 in ${runs - significant}/${runs} = ${((100 * (runs - significant)) / runs).toFixed(2)} % of seeds; p ≤ 0.05 allowed up to ${limit}`);
  assert.ok(significant <= limit, `${significant} of ${runs} seeds had p ≤ 0.05 (limit ${limit})`);
  // And the mark as written, on these 800 seeds (fixed: the seeds are not chosen by it).
  assert.ok(runs - significant >= 0.95 * runs, `p > 0.05 in ${runs - significant} of ${runs} seeds`);
});

test('a pair in perfect lockstep (one series twice) is as significant as 100 surrogates can say: no surrogate keeps their alignment', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const [x] = syntheticGroup({ n: 1, lockedShare: 0, seed, lockedPhaseSdRad: 0.2 }).series;
    const s = computeSynchrony(plan, [x, Float64Array.from(x)], { seed, crossCorrelation: false });
    assert.ok(Math.abs(s.r! - 1) < 1e-12, `seed ${seed}: R ${s.r}`);
    // Before 12-06 each participant's shift was drawn on its own, so in about 1 surrogate of 25
    // the two kept their relative alignment, scored R = 1 too, and p rose to 0.03-0.1.
    assert.equal(s.p, 1 / 101, `seed ${seed}: p ${s.p}`);
  }
});

test('half the group locked: R between the independent and the all-in-phase group of the same seed', () => {
  for (const n of [10, 50, 200]) {
    for (let seed = 1; seed <= 20; seed++) {
      const none = sync(n, 0, seed).r!;
      const half = sync(n, 0.5, seed);
      const all = sync(n, 1, seed).r!;
      assert.ok(none < half.r! && half.r! < all, `N=${n} seed ${seed}: ${none} < ${half.r} < ${all}`);
      if (n >= 50) assert.ok(half.p! < 0.01, `N=${n} seed ${seed}: half locked p ${half.p}`);
    }
  }
});

test('pairwise locking: phase consistency and PLV are high in phase and low when independent; exact and sampled PLV agree', () => {
  const inPhase = sync(20, 1, 5);
  const indep = sync(20, 0, 5);
  assert.ok(inPhase.phaseConsistency! > 0.8 && inPhase.plv! > 0.8, `${inPhase.phaseConsistency} ${inPhase.plv}`);
  assert.ok(Math.abs(indep.phaseConsistency!) < 0.1, `${indep.phaseConsistency}`);
  assert.ok(indep.plv! < 0.5 && indep.plv! < inPhase.plv!, `${indep.plv}`);
  for (const l of inPhase.locking) assert.ok(l > 0.7, `locking ${l}`);
  // 300 participants: the exact mean over 44,850 pairs against the seeded sample of 4,950.
  const g = syntheticGroup({ n: 300, lockedShare: 0.5, seed: 9 }).series;
  const exact = computeSynchrony(createSynchronyPlan({ plvExactMaxN: 1000 }), g, { seed: 1, crossCorrelation: false });
  const sampled = computeSynchrony(plan, g, { seed: 1, crossCorrelation: false });
  assert.equal(exact.plvExact, true);
  assert.equal(sampled.plvExact, false);
  assert.equal(sampled.plvPairCount, 4950);
  assert.ok(Math.abs(exact.plv! - sampled.plv!) < 0.01, `exact ${exact.plv} sampled ${sampled.plv}`);
  assert.equal(exact.r, sampled.r);
});

test('same seed, same answers; another seed, other surrogates but the same R', () => {
  const g = syntheticGroup({ n: 30, lockedShare: 0.3, seed: 4 }).series;
  const a = computeSynchrony(plan, g, { seed: 11 });
  const b = computeSynchrony(createSynchronyPlan(), g, { seed: 11 });
  assert.deepEqual(a, b);
  const c = computeSynchrony(plan, g, { seed: 12 });
  assert.equal(c.r, a.r);
  assert.notEqual(c.surrogateMean, a.surrogateMean);
});

test('cross-correlation finds a known lag and sign between two participants', () => {
  const g = syntheticGroup({ n: 2, lockedShare: 0, seed: 2 }).series;
  const x = g[0];
  const lagSamples = 12; // 3 s
  const y = new Float64Array(x.length);
  for (let t = 0; t < x.length; t++) y[t] = 2000 - x[Math.max(0, t - lagSamples)]; // inverted, delayed copy
  const s = computeSynchrony(plan, [x, y], { seed: 1 });
  const pair = s.crossCorrelation!.pairs[0];
  assert.equal(pair.lagS, 3);
  assert.ok(pair.r < -0.99, `r ${pair.r}`);
  assert.ok(s.crossCorrelation!.meanAbsR > 0.99);
  // Every pair of a small group against a direct Pearson r at every lag.
  const five = syntheticGroup({ n: 5, lockedShare: 0.4, seed: 6 }).series;
  const got = computeSynchrony(plan, five, { seed: 1 }).crossCorrelation!.pairs;
  assert.equal(got.length, 10);
  for (const p of got) {
    const d = directBestLag(five[p.j], five[p.k], 40);
    assert.ok(Math.abs(p.r - d.r) < 1e-9 && p.lagS === d.lag / 4, `pair ${p.j}-${p.k}: ${p.r}@${p.lagS} vs ${d.r}@${d.lag / 4}`);
  }
  // Groups above 50 skip it unless asked.
  const big = syntheticGroup({ n: 51, lockedShare: 0, seed: 3 }).series;
  assert.equal(computeSynchrony(plan, big, { seed: 1 }).crossCorrelation, null);
  assert.equal(computeSynchrony(plan, big, { seed: 1, crossCorrelation: true }).crossCorrelation!.pairs.length, (51 * 50) / 2);
});

test('participants without a phase are excluded and listed; fewer than 100 surrogates are refused', () => {
  const g = syntheticGroup({ n: 4, lockedShare: 1, seed: 1 }).series;
  const flat = new Float64Array(256).fill(800);
  const s = computeSynchrony(plan, [g[0], flat, g[1], g[2]], { seed: 1 });
  assert.equal(s.participantCount, 3);
  assert.deepEqual(s.excluded, [1]);
  assert.ok(Number.isNaN(s.locking[1]) && s.locking[0] > 0);
  assert.equal(computeSynchrony(plan, [g[0]], { seed: 1 }).r, null);
  assert.throws(() => computeSynchrony(plan, g, { seed: 1, surrogates: 99 }), /surrogates/);
});

/** Pearson r of x[t], y[t + lag] over the overlap, the largest |r| for |lag| ≤ maxLag (smaller |lag|, then positive, first). */
function directBestLag(x: Float64Array, y: Float64Array, maxLag: number): { r: number; lag: number } {
  let best = { r: 0, lag: 0 };
  for (const lag of [0, ...Array.from({ length: maxLag }, (_, i) => [i + 1, -(i + 1)]).flat()]) {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let t = 0; t < x.length; t++) if (t + lag >= 0 && t + lag < y.length) (xs.push(x[t]), ys.push(y[t + lag]));
    const mx = xs.reduce((a, b) => a + b) / xs.length;
    const my = ys.reduce((a, b) => a + b) / ys.length;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < xs.length; i++) {
      sxy += (xs[i] - mx) * (ys[i] - my);
      sxx += (xs[i] - mx) ** 2;
      syy += (ys[i] - my) ** 2;
    }
    const r = sxy / Math.sqrt(sxx * syy);
    if (Math.abs(r) > Math.abs(best.r)) best = { r, lag };
  }
  return best;
}

/** Smallest k with P(X ≤ k) ≥ q for X ~ binomial(n, p). */
function binomialUpperQuantile(n: number, p: number, q: number): number {
  let pmf = (1 - p) ** n;
  let cdf = pmf;
  let k = 0;
  while (cdf < q) {
    pmf *= ((n - k) / (k + 1)) * (p / (1 - p));
    k++;
    cdf += pmf;
  }
  return k;
}
