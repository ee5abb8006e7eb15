// Synthetic 16 kHz test signals with exactly known f0, for the pitch tests and the benchmark.
import { Mulberry32, gaussian } from '../../lib/prng.js';

export const SR = 16_000;

/**
 * Sum of harmonics k = 1 .. amplitudes.length of an f0 that may vary: f0At(t) in Hz at time t s.
 * Phase is integrated sample by sample, so glides are continuous.
 */
export function harmonicSignal(seconds: number, f0At: (t: number) => number, amplitudes: number[], gain = 0.5): Float32Array {
  const n = Math.round(seconds * SR);
  const out = new Float32Array(n);
  let norm = 0;
  for (const a of amplitudes) norm += Math.abs(a);
  let phase = 0;
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let k = 0; k < amplitudes.length; k++) v += amplitudes[k] * Math.sin((k + 1) * phase);
    out[i] = (gain * v) / norm;
    phase += (2 * Math.PI * f0At(i / SR)) / SR;
    if (phase > 2 * Math.PI) phase -= 2 * Math.PI;
  }
  return out;
}

export function tone(seconds: number, hz: number, gain = 0.5): Float32Array {
  return harmonicSignal(seconds, () => hz, [1], gain);
}

/** Adds white Gaussian noise at `snrDb` below the signal's mean power, in place. */
export function addNoise(signal: Float32Array, snrDb: number, seed: number): Float32Array {
  let power = 0;
  for (let i = 0; i < signal.length; i++) power += signal[i] * signal[i];
  power /= signal.length;
  const sd = Math.sqrt(power / 10 ** (snrDb / 10));
  const rng = new Mulberry32(seed);
  for (let i = 0; i < signal.length; i++) signal[i] += sd * gaussian(rng);
  return signal;
}
