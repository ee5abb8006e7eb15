// Coherence ratio after McCraty et al. (HeartMath; McCraty, Atkinson, Tomasino & Bradley 2009,
// "The coherent heart", Integral Review 5(2)), from a one-sided PSD of the tachogram:
//
//   1. Peak: the largest local maximum of the PSD among bins centred in [0.04, 0.26] Hz (a bin
//      counts as a local maximum when it is ≥ both neighbours). If the band holds none (the
//      spectrum rises or falls through it) the largest bin in the band is taken.
//   2. Peak frequency: refined by fitting a parabola through the log-power of the peak bin and
//      its two neighbours (for a Hann-tapered sinusoid the log main lobe is close to a parabola,
//      which the linear one is not); the offset is clamped to ±0.5 bin.
//   3. Peak power: Σ psd · binHz over bins whose centre lies within ±0.015 Hz of the refined peak
//      frequency (3 or 4 bins at 0.0078 Hz spacing).
//   4. Total power: Σ psd · binHz over bins centred in [0.0033, 0.4] Hz.
//   5. Coherence ratio CR = peak / (total − peak).
//   6. Score = CR / (1 + CR), which equals peak / total: the share of the 0.0033–0.4 Hz power
//      that sits in the peak, in [0, 1].
//   7. Breathing rate (breaths/min) = peak frequency × 60: with slow, regular breathing the
//      dominant HRV oscillation is respiratory sinus arrhythmia at the breathing frequency.
//
// A spectrum with no power in the total band gives CR = score = 0 and NaN frequencies.

import type { SpectrumPlan } from './spectrum.js';

export const PEAK_SEARCH_LOW_HZ = 0.04;
export const PEAK_SEARCH_HIGH_HZ = 0.26;
export const PEAK_HALF_WIDTH_HZ = 0.015;
export const TOTAL_LOW_HZ = 0.0033;
export const TOTAL_HIGH_HZ = 0.4;

export interface CoherenceResult {
  coherenceRatio: number;
  /** CR / (1 + CR) = peak power / total power, 0..1. */
  score: number;
  peakFrequencyHz: number;
  breathingRateBpm: number;
  /** Power in the peak band (PSD units × Hz, ms² for a PSD in ms²/Hz). */
  peakPower: number;
  /** Power in 0.0033–0.4 Hz. */
  totalPower: number;
}

export function createCoherenceResult(): CoherenceResult {
  return { coherenceRatio: 0, score: 0, peakFrequencyHz: NaN, breathingRateBpm: NaN, peakPower: 0, totalPower: 0 };
}

/** Smallest bin index whose centre is ≥ hz. */
function firstBinAtOrAbove(hz: number, binHz: number): number {
  return Math.ceil(hz / binHz - 1e-9);
}

/** Largest bin index whose centre is ≤ hz. */
function lastBinAtOrBelow(hz: number, binHz: number): number {
  return Math.floor(hz / binHz + 1e-9);
}

/**
 * Coherence of `psd` (bins 0 .. psd.length − 1, bin i centred on i · binHz). Writes into and
 * returns `out` when given. Allocates nothing otherwise.
 */
export function computeCoherence(
  spectrum: Pick<SpectrumPlan, 'psd' | 'binHz'>,
  out: CoherenceResult = createCoherenceResult(),
): CoherenceResult {
  const { psd, binHz } = spectrum;
  const lastBin = psd.length - 1;
  const totalLo = Math.max(0, firstBinAtOrAbove(TOTAL_LOW_HZ, binHz));
  const totalHi = Math.min(lastBin, lastBinAtOrBelow(TOTAL_HIGH_HZ, binHz));
  let total = 0;
  for (let i = totalLo; i <= totalHi; i++) total += psd[i];
  total *= binHz;
  out.totalPower = total;
  if (!(total > 0)) {
    out.coherenceRatio = 0;
    out.score = 0;
    out.peakFrequencyHz = NaN;
    out.breathingRateBpm = NaN;
    out.peakPower = 0;
    return out;
  }

  const searchLo = Math.max(1, firstBinAtOrAbove(PEAK_SEARCH_LOW_HZ, binHz));
  const searchHi = Math.min(lastBin - 1, lastBinAtOrBelow(PEAK_SEARCH_HIGH_HZ, binHz));
  let peakBin = -1;
  let largestBin = searchLo;
  for (let i = searchLo; i <= searchHi; i++) {
    const p = psd[i];
    if (p > psd[largestBin]) largestBin = i;
    if (p >= psd[i - 1] && p >= psd[i + 1] && (peakBin < 0 || p > psd[peakBin])) peakBin = i;
  }
  if (peakBin < 0) peakBin = largestBin;

  // Log-parabolic refinement; a zero neighbour (log −∞) would pull the vertex onto the peak bin
  // anyway, so the tiny floor only keeps the arithmetic finite.
  const floor = psd[peakBin] * 1e-12 + Number.MIN_VALUE;
  const a = Math.log(psd[peakBin - 1] + floor);
  const b = Math.log(psd[peakBin] + floor);
  const c = Math.log(psd[peakBin + 1] + floor);
  const curvature = a - 2 * b + c;
  let offset = curvature < 0 ? (0.5 * (a - c)) / curvature : 0;
  if (offset > 0.5) offset = 0.5;
  else if (offset < -0.5) offset = -0.5;
  const peakHz = (peakBin + offset) * binHz;

  const bandLo = Math.max(0, firstBinAtOrAbove(peakHz - PEAK_HALF_WIDTH_HZ, binHz));
  const bandHi = Math.min(lastBin, lastBinAtOrBelow(peakHz + PEAK_HALF_WIDTH_HZ, binHz));
  let peak = 0;
  for (let i = bandLo; i <= bandHi; i++) peak += psd[i];
  peak *= binHz;
  // Guards a spectrum whose every bit of power sits in the peak band (CR would be infinite);
  // real tachograms always leak some power outside ±0.015 Hz.
  const rest = Math.max(total - peak, total * 1e-12);

  out.peakPower = peak;
  out.coherenceRatio = peak / rest;
  out.score = out.coherenceRatio / (1 + out.coherenceRatio);
  out.peakFrequencyHz = peakHz;
  out.breathingRateBpm = peakHz * 60;
  return out;
}
