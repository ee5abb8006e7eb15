import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTimeDomain, createTimeDomainMetrics } from './time-domain.js';
import { beatTimesFromRr } from './synthetic-rr.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('hand-computed series: mean, HR, SDNN (n−1), RMSSD, pNN50 over differences', () => {
  const rr = Float64Array.from([800, 900, 820, 880, 810]);
  const m = computeTimeDomain(rr, rr.length);
  close(m.meanRrMs, 842);
  close(m.meanHrBpm, 60000 / 842);
  // deviations −42, 58, −22, 38, −32 → Σd² = 1764 + 3364 + 484 + 1444 + 1024 = 8080; /4
  close(m.sdnnMs, Math.sqrt(8080 / 4));
  // differences 100, −80, 60, −70 → Σ = 10000 + 6400 + 3600 + 4900 = 24900; /4
  close(m.rmssdMs, Math.sqrt(24900 / 4));
  close(m.pnn50Pct, 100); // all four differences exceed 50 ms
  assert.equal(m.differenceCount, 4);
});

test('pNN50 counts strictly greater than 50 ms, over the number of differences', () => {
  const rr = Float64Array.from([1000, 1050, 1100, 1049, 1000]); // |d| = 50, 50, 51, 49
  const m = computeTimeDomain(rr, rr.length);
  close(m.pnn50Pct, 25);
});

test('with beat times, differences across a gap are left out', () => {
  const rr = Float64Array.from([800, 900, 820, 880, 810]);
  const t = beatTimesFromRr(rr);
  const contiguous = computeTimeDomain(rr, rr.length, t);
  close(contiguous.rmssdMs, Math.sqrt(24900 / 4));
  // Drop the third interval (820): 880 no longer follows 900.
  const rr2 = Float64Array.from([800, 900, 880, 810]);
  const t2 = Float64Array.from([t[0], t[1], t[3], t[4]]);
  const gapped = computeTimeDomain(rr2, rr2.length, t2);
  assert.equal(gapped.differenceCount, 2); // 800→900 and 880→810
  close(gapped.rmssdMs, Math.sqrt((100 ** 2 + 70 ** 2) / 2));
  close(gapped.sdnnMs, computeTimeDomain(rr2, rr2.length).sdnnMs); // SDNN ignores gaps
});

test('too little data gives NaN, and `out` is filled in place', () => {
  const out = createTimeDomainMetrics();
  const res = computeTimeDomain(Float64Array.of(1000), 1, null, out);
  assert.equal(res, out);
  close(out.meanHrBpm, 60);
  assert.ok(Number.isNaN(out.sdnnMs) && Number.isNaN(out.rmssdMs) && Number.isNaN(out.pnn50Pct));
  computeTimeDomain(new Float64Array(0), 0, null, out);
  assert.ok(Number.isNaN(out.meanRrMs));
  assert.equal(out.rrCount, 0);
});
