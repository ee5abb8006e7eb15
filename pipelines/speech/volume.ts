// Volume as RMS level in dBFS per frame: 20·log10(rms) with full scale = 1.0, so a full-scale
// square wave is 0 dBFS and a full-scale sine −3.01 dBFS (the plain RMS convention, not the
// AES17 one that adds 3.01 dB to sines). Digital silence would be −∞; it is clamped to
// SILENCE_DBFS so the values stay finite for storage and statistics.
import { type FrameLayout, frameCount, validateLayout } from './frames.js';

/** Floor for digital silence: below the quantisation noise of 24-bit audio (−144 dBFS is 24-bit LSB). */
export const SILENCE_DBFS = -120;

/** RMS level of samples[start .. start + length) in dBFS, at least SILENCE_DBFS. */
export function rmsDbfs(samples: Float32Array, start: number, length: number): number {
  let sumSquares = 0;
  const end = start + length;
  for (let i = start; i < end; i++) {
    const x = samples[i];
    sumSquares += x * x;
  }
  return dbfsFromMeanSquare(sumSquares / length);
}

export function dbfsFromMeanSquare(meanSquare: number): number {
  if (!(meanSquare > 0)) return SILENCE_DBFS;
  // 10·log10(ms) = 20·log10(rms), without the square root.
  return Math.max(SILENCE_DBFS, 10 * Math.log10(meanSquare));
}

/**
 * dBFS of every whole frame. Running sums would drift in float over long signals, so each frame
 * is summed afresh: frameSize multiply-adds per frame, cheap next to the pitch FFTs.
 * Writes into `out` when given (its length must be at least the frame count).
 */
export function frameVolumes(samples: Float32Array, layout: FrameLayout, out?: Float32Array): Float32Array {
  validateLayout(layout);
  const n = frameCount(samples.length, layout);
  const result = out ?? new Float32Array(n);
  for (let i = 0; i < n; i++) result[i] = rmsDbfs(samples, i * layout.hop, layout.frameSize);
  return n === result.length ? result : result.subarray(0, n);
}
