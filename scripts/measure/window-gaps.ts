// How much a gap in the data moves a window's coherence ratio and peak: the measurement behind
// the validity limits in pipelines/hrv/window-metrics.ts (coverage >= 90 %, no uncovered
// stretch over 5 s, edges included). Dev-only; writes pipelines/hrv/fixtures/window-gaps.json.
// Run: npx tsx scripts/measure/window-gaps.ts   (about 15 s on one core)
//
// A gap is a sensor dropout: every beat whose time lies in [g, g + L) is lost; the beats after
// it keep their true times and RR (devices time-stamp each interval). Each gapped window is
// compared with the same window without the gap, computed by the same code, so the error is
// the gap's alone, whatever the coherence method. Tolerance (the accuracy bar for
// valid windows): CR within 10 % and peak within 0.01 Hz. A limit is acceptable when at least
// 95 % of the windows it lets through meet the tolerance.
//
// Development set (the limits are chosen on it): synthetic RSA with known answers.
// Held-out set (only scored, never used to choose): every record of ../shared/data/rr/ with
// gaps cut out of it. Both use a permissive plan (no coverage or gap rule) so that every
// gapped window is computed, then bin by the coverage and longest gap the product measures.
import { execSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { computeWindowMetrics, createWindowPlan, windowCoverage, type WindowMetrics } from '../../pipelines/hrv/window-metrics.js';
import { beatTimesFromRr, createRandom, synthesizeRr } from '../../pipelines/hrv/synthetic-rr.js';

const W = 64_000;
const CR_TOL = 0.1;
const PEAK_TOL_HZ = 0.01;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const rrDir = join(repoRoot, '../shared/data/rr');

const permissive = createWindowPlan({ minCoverage: 0, maxGapMs: Infinity, maxEdgeGapMs: Infinity, maxGapBreaths: Infinity, maxIrregularShare: Infinity, maxIrregularRun: Infinity, minBeats: 10 });
const strict = createWindowPlan();

interface Series {
  t: Float64Array;
  rr: Float64Array;
}

function metrics(s: Series, end: number, plan = permissive): WindowMetrics {
  return computeWindowMetrics(s.t, s.rr, s.rr.length, end - W, end, plan);
}

/** The series without the beats whose time lies in any of the [from, to) spans. */
function cut(s: Series, spans: Array<[number, number]>): Series {
  const keep = (_: number, i: number) => spans.every(([a, b]) => s.t[i] < a || s.t[i] >= b);
  return { t: s.t.filter(keep), rr: s.rr.filter(keep) };
}

interface Sample {
  longestGapMs: number;
  /** Longest gap between covered stretches (not at an edge), ms. */
  interiorGapMs: number;
  /** That gap in breaths at the gapped window's own peak frequency. */
  cycles: number;
  scoreErr: number;
  /** The product's verdict on the gapped window (default plan): null when valid. */
  verdict: string | null;
  coverage: number;
  crErr: number;
  peakErr: number;
  refCr: number;
}

function compare(ref: WindowMetrics, m: WindowMetrics, s: Series, end: number): Sample | null {
  if (!ref.valid || !m.valid || ref.coherenceRatio === null || m.coherenceRatio === null) return null;
  const verdict = metrics(s, end, strict).invalidReason;
  const interiorGapMs = windowCoverage(s.t, s.rr, s.rr.length, end - W, end).longestInteriorGapMs;
  return {
    longestGapMs: m.longestGapMs,
    interiorGapMs,
    cycles: (interiorGapMs / 1000) * m.peakFrequencyHz!,
    scoreErr: Math.abs(m.coherence! - ref.coherence!),
    verdict,
    coverage: m.coverage,
    crErr: Math.abs(m.coherenceRatio - ref.coherenceRatio) / ref.coherenceRatio,
    peakErr: Math.abs(m.peakFrequencyHz! - ref.peakFrequencyHz!),
    refCr: ref.coherenceRatio,
  };
}

/** The window ending at `end` of `s` with the beats in `spans` lost, compared with `ref`. */
function gapped(ref: WindowMetrics, s: Series, spans: Array<[number, number]>, end: number): Sample | null {
  const g = cut(s, spans);
  return compare(ref, metrics(g, end), g, end);
}

const ok = (x: Sample) => x.crErr <= CR_TOL && x.peakErr <= PEAK_TOL_HZ;
const pct = (xs: Sample[], f: (x: Sample) => boolean) => (xs.length === 0 ? null : Number(((100 * xs.filter(f).length) / xs.length).toFixed(1)));
function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Per bin of the measured longest gap (whole seconds): n, share within tolerance, CR error p50/p95. */
function byGap(samples: Sample[]) {
  const bins = new Map<number, Sample[]>();
  for (const x of samples) {
    const b = Math.floor(x.longestGapMs / 1000);
    (bins.get(b) ?? bins.set(b, []).get(b)!).push(x);
  }
  return [...bins.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([s, xs]) => ({
      gap_s: `${s}-${s + 1}`,
      n: xs.length,
      within_tolerance_pct: pct(xs, ok),
      cr_err_p50_pct: Number((100 * quantile(xs.map((x) => x.crErr), 0.5)!).toFixed(1)),
      cr_err_p95_pct: Number((100 * quantile(xs.map((x) => x.crErr), 0.95)!).toFixed(1)),
      peak_err_p95_hz: Number(quantile(xs.map((x) => x.peakErr), 0.95)!.toFixed(4)),
    }));
}

/** Per bin of the interior gap in breaths at the window's peak (0.05 wide). */
function byCycles(samples: Sample[]) {
  const bins = new Map<number, Sample[]>();
  for (const x of samples) {
    const b = Math.min(20, Math.floor(x.cycles / 0.05));
    (bins.get(b) ?? bins.set(b, []).get(b)!).push(x);
  }
  return [...bins.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([b, xs]) => ({
      breaths: b === 20 ? '>=1.00' : `${(b * 0.05).toFixed(2)}-${((b + 1) * 0.05).toFixed(2)}`,
      n: xs.length,
      within_tolerance_pct: pct(xs, ok),
      cr_err_p95_pct: Number((100 * quantile(xs.map((x) => x.crErr), 0.95)!).toFixed(1)),
      score_err_p95: Number(quantile(xs.map((x) => x.scoreErr), 0.95)!.toFixed(3)),
    }));
}

/** Share within tolerance of the windows an interior-gap rule in breaths lets through (edges ≤ edgeMs). */
function cycleRule(samples: Sample[], maxCycles: number, maxGapMs: number, minCoverage = 0) {
  const through = samples.filter((x) => x.cycles <= maxCycles && x.interiorGapMs <= maxGapMs && x.coverage >= minCoverage);
  return { n: through.length, within_tolerance_pct: pct(through, ok) };
}

/** The product's default rules on a set of gapped windows: what they let through, what they reject. */
function verdicts(samples: Sample[]) {
  const summary = (xs: Sample[]) => ({
    n: xs.length,
    within_tolerance_pct: pct(xs, ok),
    cr_err_p50_pct: xs.length ? Number((100 * quantile(xs.map((x) => x.crErr), 0.5)!).toFixed(1)) : null,
    cr_err_p95_pct: xs.length ? Number((100 * quantile(xs.map((x) => x.crErr), 0.95)!).toFixed(1)) : null,
    score_err_p95: xs.length ? Number(quantile(xs.map((x) => x.scoreErr), 0.95)!.toFixed(3)) : null,
  });
  const reasons: Record<string, number> = {};
  for (const x of samples) if (x.verdict) reasons[x.verdict] = (reasons[x.verdict] ?? 0) + 1;
  const clear = samples.filter((x) => x.refCr >= 1);
  return {
    valid: summary(samples.filter((x) => x.verdict === null)),
    invalid: summary(samples.filter((x) => x.verdict !== null)),
    invalid_reasons: reasons,
    // Windows with a clear peak (CR >= 1 without the gap): a flat spectrum's highest peak can
    // jump to another of nearly the same height when a beat or two is lost.
    clear_peak_valid: summary(clear.filter((x) => x.verdict === null)),
    clear_peak_invalid: summary(clear.filter((x) => x.verdict !== null)),
  };
}

/** Share within tolerance of the windows a rule lets through (gap ≤ limit, and coverage ≥ min). */
function passShare(samples: Sample[], maxGapMs: number, minCoverage = 0) {
  const through = samples.filter((x) => x.longestGapMs <= maxGapMs && x.coverage >= minCoverage);
  return { n: through.length, within_tolerance_pct: pct(through, ok) };
}

// ---------------------------------------------------------------- development: synthetic
const random = createRandom(2026);
const synthetic: { interior: Sample[]; edge: Sample[]; scattered: Array<Sample & { missing: number }> } = { interior: [], edge: [], scattered: [] };
const frequencies = [0.05, 0.075, 0.1, 0.15, 0.2, 0.25];
const gapLengthsS = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20];
let seed = 1;
for (const hz of frequencies) {
  for (const [meanMs, noiseMs] of [[1000, 8], [800, 20]] as const) {
    const syn = synthesizeRr({ durationMs: 600_000, meanMs, rsaAmplitudeMs: 50, rsaFrequencyHz: hz, noiseMs, seed: seed++ });
    const s: Series = { t: syn.beatTimesMs, rr: syn.rrMs };
    for (let end = 100_000; end <= 560_000; end += 20_000) {
      const ref = metrics(s, end);
      const start = end - W;
      for (const L of gapLengthsS.map((x) => x * 1000)) {
        // Interior: the gap lies wholly inside, at least 2 s from either edge.
        const g = start + 2000 + random() * (W - 4000 - L);
        const a = gapped(ref, s, [[g, g + L]], end);
        if (a) synthetic.interior.push(a);
        // Edge: the data starts L after the window's start (a session starting), or stops L before its end.
        const spans: Array<[number, number]> = random() < 0.5 ? [[start - 30_000, start + L]] : [[end - L, end + 30_000]];
        const b = gapped(ref, s, spans, end);
        if (b) synthetic.edge.push(b);
      }
      // Scattered short gaps (1–5 s each) removing 2–30 % of the window.
      for (const missing of [0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3]) {
        const spans: Array<[number, number]> = [];
        let left = missing * W;
        let tries = 0;
        while (left > 300 && tries++ < 200) {
          const L = Math.min(left, 1000 + random() * 4000);
          const g = start + 1500 + random() * (W - 3000 - L);
          if (spans.some(([a, b]) => g < b + 1500 && g + L > a - 1500)) continue;
          spans.push([g, g + L]);
          left -= L;
        }
        const c = gapped(ref, s, spans, end);
        if (c) synthetic.scattered.push({ ...c, missing });
      }
    }
  }
}

// ---------------------------------------------------------------- held out: real records
const records = readdirSync(rrDir).filter((f) => f.endsWith('.rr_ms.txt')).sort();
const real: { interior: Sample[]; edge: Sample[]; scattered: Sample[] } = { interior: [], edge: [], scattered: [] };
const perRecord: Record<string, { windows: number; interior_le5s: ReturnType<typeof passShare>; interior_gt5s: { n: number; within_tolerance_pct: number | null } }> = {};
const heldOutRandom = createRandom(7);
for (const file of records) {
  const rr = Float64Array.from(
    readFileSync(join(rrDir, file), 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
  const s: Series = { t: beatTimesFromRr(rr), rr };
  const total = s.t[s.t.length - 1];
  const mine: Sample[] = [];
  let windows = 0;
  // Windows 20 s apart (about 5 % of the record's 5 s windows in the longest records, all in the 5-min ones).
  const stride = total > 1_200_000 ? 60_000 : 20_000;
  for (let end = W + 10_000; end <= total - 5_000; end += stride) {
    const ref = metrics(s, end, strict);
    if (!ref.valid) continue;
    windows++;
    const start = end - W;
    for (const L of [2, 3, 4, 5, 6, 8, 10, 15, 20].map((x) => x * 1000)) {
      const g = start + 2000 + heldOutRandom() * (W - 4000 - L);
      const a = gapped(ref, s, [[g, g + L]], end);
      if (a) {
        real.interior.push(a);
        mine.push(a);
      }
      const spans: Array<[number, number]> = heldOutRandom() < 0.5 ? [[start - 30_000, start + L]] : [[end - L, end + 30_000]];
      const b = gapped(ref, s, spans, end);
      if (b) real.edge.push(b);
    }
    for (const missing of [0.05, 0.1, 0.15, 0.2]) {
      const spans: Array<[number, number]> = [];
      let left = missing * W;
      let tries = 0;
      while (left > 300 && tries++ < 200) {
        const L = Math.min(left, 1000 + heldOutRandom() * 4000);
        const g = start + 1500 + heldOutRandom() * (W - 3000 - L);
        if (spans.some(([a, b]) => g < b + 1500 && g + L > a - 1500)) continue;
        spans.push([g, g + L]);
        left -= L;
      }
      const c = gapped(ref, s, spans, end);
      if (c) real.scattered.push(c);
    }
  }
  const over = mine.filter((x) => x.longestGapMs > 5000);
  perRecord[file] = { windows, interior_le5s: passShare(mine, 5000), interior_gt5s: { n: over.length, within_tolerance_pct: pct(over, ok) } };
}

function scatteredByMissing(xs: Array<Sample & { missing: number }>) {
  const out: Record<string, unknown> = {};
  for (const m of [...new Set(xs.map((x) => x.missing))].sort((a, b) => a - b)) {
    const ys = xs.filter((x) => x.missing === m);
    out[`${Math.round(m * 100)}%`] = {
      n: ys.length,
      coverage_p50: Number(quantile(ys.map((y) => y.coverage), 0.5)!.toFixed(3)),
      within_tolerance_pct: pct(ys, ok),
      cr_err_p95_pct: Number((100 * quantile(ys.map((y) => y.crErr), 0.95)!).toFixed(1)),
    };
  }
  return out;
}

/**
 * The code the figures come from: the commit, and whether pipelines/hrv (tests and fixtures aside) differed from it (the
 * numbers move with the coherence and artifact code, so rerun this after changing either).
 * Outside a git checkout (an exported tree), MEASURED_COMMIT names it.
 */
function codeVersion(): { commit: string; hrv_uncommitted_changes: boolean | null } {
  try {
    const commit = execSync('git rev-parse --short HEAD', { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync("git status --porcelain -- pipelines/hrv ':!*.test.ts' ':!pipelines/hrv/fixtures'", { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return { commit, hrv_uncommitted_changes: dirty.length > 0 };
  } catch {
    return { commit: process.env.MEASURED_COMMIT ?? 'unknown', hrv_uncommitted_changes: process.env.MEASURED_COMMIT ? false : null };
  }
}

const limits = [2000, 3000, 4000, 5000, 6000, 8000, 10000];
const result = {
  note:
    'Made by scripts/measure/window-gaps.ts (npx tsx). CR error = |CR(gapped) - CR(same window, no gap)| / CR(no gap); peak error likewise in Hz; ' +
    `tolerance CR <= ${CR_TOL * 100} % and peak <= ${PEAK_TOL_HZ} Hz. Gaps binned by the longest uncovered stretch the product measures (windowCoverage). ` +
    'Development set: synthetic RSA (0.05-0.25 Hz, 50 ms, mean RR 1000 ms / noise 8 ms and 800 ms / 20 ms), 24 windows per condition. ' +
    'Held out: every record of ../shared/data/rr/, windows 20 s apart (60 s in records over 20 min) whose ungapped window is valid, one gap per length at a random place.',
  made: new Date().toISOString().slice(0, 10),
  code: codeVersion(),
  default_rules_on_gapped_windows: {
    development_synthetic: {
      interior: verdicts(synthetic.interior),
      edge: verdicts(synthetic.edge),
      scattered: verdicts(synthetic.scattered),
    },
    held_out_real: { interior: verdicts(real.interior), edge: verdicts(real.edge), scattered: verdicts(real.scattered) },
  },
  development_synthetic: {
    interior_by_gap: byGap(synthetic.interior),
    interior_by_breaths: byCycles(synthetic.interior),
    interior_cycle_rule_pass_share: Object.fromEntries(
      [0.1, 0.15, 0.2, 0.25, 0.3].map((c) => [`gap<=${c} breath`, cycleRule(synthetic.interior, c, Infinity)]),
    ),
    edge_by_gap: byGap(synthetic.edge),
    rule_pass_share: Object.fromEntries(limits.map((l) => [`gap<=${l / 1000}s`, { interior: passShare(synthetic.interior, l), edge: passShare(synthetic.edge, l) }])),
    scattered_gaps_of_1_to_5s: scatteredByMissing(synthetic.scattered),
    scattered_rule_pass_share: Object.fromEntries(
      [0.8, 0.85, 0.9, 0.95].map((c) => [`coverage>=${c}`, passShare(synthetic.scattered, 5000, c)]),
    ),
    scattered_cycle_rule_pass_share: Object.fromEntries(
      [0, 0.8, 0.85, 0.9, 0.95].map((c) => [`gap<=0.2 breath, coverage>=${c}`, cycleRule(synthetic.scattered, 0.2, Infinity, c)]),
    ),
  },
  held_out_real: {
    records: perRecord,
    interior_by_gap: byGap(real.interior),
    interior_by_breaths: byCycles(real.interior),
    interior_cycle_rule_pass_share: Object.fromEntries(
      [0.1, 0.15, 0.2, 0.25, 0.3].map((c) => [`gap<=${c} breath`, cycleRule(real.interior, c, Infinity)]),
    ),
    edge_by_gap: byGap(real.edge),
    chosen_rule_gap_le_5s: { interior: passShare(real.interior, 5000), edge: passShare(real.edge, 5000) },
    rejected_gap_gt_5s: {
      interior: { n: real.interior.filter((x) => x.longestGapMs > 5000).length, within_tolerance_pct: pct(real.interior.filter((x) => x.longestGapMs > 5000), ok) },
      edge: { n: real.edge.filter((x) => x.longestGapMs > 5000).length, within_tolerance_pct: pct(real.edge.filter((x) => x.longestGapMs > 5000), ok) },
    },
    scattered_chosen_rule: passShare(real.scattered, 5000, 0.9),
    scattered_rejected_by_coverage: (() => {
      const xs = real.scattered.filter((x) => x.longestGapMs <= 5000 && x.coverage < 0.9);
      return { n: xs.length, within_tolerance_pct: pct(xs, ok) };
    })(),
    clear_peak_only_cr_ge_1: {
      interior_gap_le_5s: passShare(real.interior.filter((x) => x.refCr >= 1), 5000),
      interior_gap_gt_5s: (() => {
        const xs = real.interior.filter((x) => x.refCr >= 1 && x.longestGapMs > 5000);
        return { n: xs.length, within_tolerance_pct: pct(xs, ok) };
      })(),
    },
  },
};
const out = join(repoRoot, 'pipelines/hrv/fixtures/window-gaps.json');
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
