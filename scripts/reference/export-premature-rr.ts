// Dev-only: synthetic RR with premature beats without a compensatory pause (atrial premature
// beats: interval k shortened, k + 1 as it was), 5 min of 60 ms RSA at 0.1 Hz, 60 bpm (the
// series of pipelines/hrv/window-metrics.test.ts's density test, seed 41), 15, 20, 30 and 40 %
// early, one in 20 and one in 7; and the same rhythm with beats detected late (interval k long by
// 15, 20 or 25 % of it, k + 1 short by as much), one in 41. Writes them as JSON and prints Attune's whole-series cleaning of each
// (beats dropped, RMSSD) beside the sinus rhythm's RMSSD; scripts/reference/kubios_premature.py
// prints NeuroKit2's Kubios correction of the same series. Usage:
//   npx tsx scripts/reference/export-premature-rr.ts /tmp/premature-rr.json
//   /tmp/ref-venv/bin/python scripts/reference/kubios_premature.py /tmp/premature-rr.json
// Not run by the tests; figures quoted in pipelines/hrv/fixtures/ARTIFACT-SPLIT.md (third, tenth
// and eleventh rounds).
import { writeFileSync } from 'node:fs';
import { cleanRr } from '../../pipelines/hrv/artifacts.js';
import { beatTimesFromRr, synthesizeRr } from '../../pipelines/hrv/synthetic-rr.js';
import { computeTimeDomain } from '../../pipelines/hrv/time-domain.js';

const s = synthesizeRr({ durationMs: 300_000, meanMs: 1000, rsaAmplitudeMs: 60, rsaFrequencyHz: 0.1, noiseMs: 8, seed: 41 });
const rmssd = (rr: Float64Array, t: Float64Array, n = rr.length) => computeTimeDomain(rr, n, t).rmssdMs;
console.log(`sinus rhythm: RMSSD ${rmssd(s.rrMs, s.beatTimesMs).toFixed(1)} ms`);
const out: { label: string; rrMs: number[]; positions: number[] }[] = [];
for (const prematurity of [0.15, 0.2, 0.3, 0.4]) {
  for (const every of [20, 7]) {
    const positions: number[] = [];
    for (let k = 10; k + 2 < s.rrMs.length; k += every) positions.push(k);
    const rr = Float64Array.from(s.rrMs, (v, i) => (positions.includes(i) ? v * (1 - prematurity) : v));
    const t = beatTimesFromRr(rr);
    const c = cleanRr(t, rr);
    const label = `${100 * prematurity} % early, one in ${every}`;
    console.log(`${label}: raw RMSSD ${rmssd(rr, t).toFixed(1)} ms; Attune dropped ${c.premature} of ${positions.length}, RMSSD ${rmssd(c.rrMs, c.beatTimesMs, c.count).toFixed(1)} ms`);
    out.push({ label, rrMs: Array.from(rr), positions });
  }
}
for (const shift of [0.15, 0.2, 0.25]) {
  const positions: number[] = [];
  for (let k = 10; k + 2 < s.rrMs.length; k += 41) positions.push(k);
  const rr = Float64Array.from(s.rrMs);
  for (const k of positions) {
    rr[k] += shift * s.rrMs[k];
    rr[k + 1] -= shift * s.rrMs[k];
  }
  const t = beatTimesFromRr(rr);
  const c = cleanRr(t, rr);
  const label = `${100 * shift} % late, one in 41`;
  console.log(`${label}: raw RMSSD ${rmssd(rr, t).toFixed(1)} ms; Attune re-timed ${c.longShort + c.ectopic}, dropped ${c.premature} of ${positions.length}, RMSSD ${rmssd(c.rrMs, c.beatTimesMs, c.count).toFixed(1)} ms`);
  out.push({ label, rrMs: Array.from(rr), positions });
}
const path = process.argv[2] ?? '/tmp/premature-rr.json';
writeFileSync(path, JSON.stringify(out));
console.log(`${out.length} series written to ${path}`);
