// Artifact-free synthetic RR series: the sets the artifact cleaning must leave untouched
// (artifacts.test.ts) and whose windows must never be called an irregular rhythm
// (window-metrics.test.ts). Generated, deterministic (seeded).
import { joinAfterRemovingLong, synthesizeRr, type SyntheticRr } from './synthetic-rr.js';

export interface LabelledSeries {
  label: string;
  s: SyntheticRr;
}

/** Steady sinusoidal RSA at 0.04–0.25 Hz (every 5 mHz), 50–150 ms, 60 and 75 bpm, with and without noise: 516 series of 10 min. */
export function sinusoidalRsaSeries(): LabelledSeries[] {
  const out: LabelledSeries[] = [];
  for (const meanMs of [1000, 800]) {
    for (let milliHz = 40; milliHz <= 250; milliHz += 5) {
      for (const amplitude of [50, 100, 150]) {
        for (const noiseMs of [0, 3]) {
          const s = synthesizeRr({ durationMs: 600000, meanMs, rsaAmplitudeMs: amplitude, rsaFrequencyHz: milliHz / 1000, noiseMs, seed: milliHz });
          out.push({ label: `${meanMs} ms ${milliHz / 1000} Hz ${amplitude} ms noise ${noiseMs}`, s });
        }
      }
    }
  }
  return out;
}

/**
 * Artifact-free series closer to real records than a steady sinusoid: RSA on a wandering rate,
 * on steep climbs and falls of RR, joined after long intervals were cut out (as the NSRDB
 * segments were prepared), and a steady low-variability rhythm (as NSRDB 16272).
 */
export function realisticSeries(): LabelledSeries[] {
  const out: LabelledSeries[] = [];
  for (const meanMs of [700, 900, 1100]) {
    for (const amplitude of [50, 100, 150]) {
      for (const frequency of [0.06, 0.1, 0.15, 0.25]) {
        for (const noiseMs of [3, 10]) {
          const base = { durationMs: 600000, meanMs, rsaAmplitudeMs: amplitude, rsaFrequencyHz: frequency, noiseMs, seed: meanMs + amplitude + noiseMs };
          const label = `${meanMs} ms ${amplitude} ms ${frequency} Hz noise ${noiseMs}`;
          // The rate wanders by ±12 % over two minutes.
          out.push({ label: `drift ${label}`, s: synthesizeRr({ ...base, driftAmplitudeMs: 0.12 * meanMs, driftFrequencyHz: 0.008 }) });
          // RR climbs or falls by a quarter within 8 s, every minute.
          const steps = Array.from({ length: 9 }, (_, i) => ({ atMs: 30000 + 60000 * i, deltaMs: (i % 2 ? -1 : 1) * 0.25 * meanMs, durationMs: 8000 }));
          out.push({ label: `climbs ${label}`, s: synthesizeRr({ ...base, steps }) });
          // Intervals over 1.2 s cut out and the rest joined.
          const slow = synthesizeRr({ ...base, meanMs: Math.max(meanMs, 1000) });
          out.push({ label: `joins ${label}`, s: joinAfterRemovingLong(slow.rrMs, 1200) });
        }
      }
    }
    for (const noiseMs of [5, 10, 20]) {
      for (const amplitude of [10, 20, 30]) {
        for (const seed of [1, 2, 3]) {
          const s = synthesizeRr({ durationMs: 600000, meanMs, rsaAmplitudeMs: amplitude, rsaFrequencyHz: 0.25, noiseMs, seed: 100 * seed + noiseMs, driftAmplitudeMs: 30, driftFrequencyHz: 0.01 });
          out.push({ label: `steady ${meanMs} ms ${amplitude} ms noise ${noiseMs} seed ${seed}`, s });
        }
      }
    }
  }
  return out;
}
