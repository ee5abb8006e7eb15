// Framing of 16 kHz speech: frame i covers samples [i·hop, i·hop + frameSize). Only whole frames
// are produced, so the last (length − frameSize) mod hop samples are not analysed; a caller that
// streams audio keeps them for the next chunk.
//
// The defaults follow the speech issue: 25 ms frames (400 samples at 16 kHz) every 10 ms (160).
// The pitch analysis uses a 30 ms frame (480 samples) with the same hop, because YIN needs the
// window plus the longest lag (16000 / 60 Hz ≈ 267 samples) inside one frame.
import { AttuneError } from '../../lib/errors.js';

export const SPEECH_SAMPLE_RATE = 16_000;
/** 25 ms at 16 kHz. */
export const DEFAULT_FRAME_SIZE = 400;
/** 30 ms at 16 kHz: the pitch frame. */
export const DEFAULT_PITCH_FRAME_SIZE = 480;
/** 10 ms at 16 kHz. */
export const DEFAULT_HOP = 160;

export interface FrameLayout {
  frameSize: number;
  hop: number;
}

export function validateLayout(layout: FrameLayout): void {
  const { frameSize, hop } = layout;
  if (!Number.isInteger(frameSize) || frameSize < 2) {
    throw new AttuneError('validation_error', 'frameSize must be an integer of at least 2', [
      { field: 'frameSize', reason: 'invalid_argument', message: `got ${frameSize}` },
    ]);
  }
  if (!Number.isInteger(hop) || hop < 1) {
    throw new AttuneError('validation_error', 'hop must be a positive integer', [{ field: 'hop', reason: 'invalid_argument', message: `got ${hop}` }]);
  }
}

/** Number of whole frames in `sampleCount` samples. */
export function frameCount(sampleCount: number, layout: FrameLayout): number {
  validateLayout(layout);
  if (sampleCount < layout.frameSize) return 0;
  return Math.floor((sampleCount - layout.frameSize) / layout.hop) + 1;
}

/** Index of the first sample of frame `index`. */
export function frameStart(index: number, layout: FrameLayout): number {
  return index * layout.hop;
}

/** Time of the centre of frame `index`, in seconds. */
export function frameCentreSeconds(index: number, layout: FrameLayout, sampleRate: number): number {
  return (index * layout.hop + layout.frameSize / 2) / sampleRate;
}
