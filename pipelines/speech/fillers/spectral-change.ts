// Spectral change per 10 ms frame: how fast the smoothed spectral envelope (formants) moves.
//
// Running speech moves its formants every 60–100 ms (each consonant–vowel transition); a filled
// pause ("uh", "um") holds one vowel or nasal, so its envelope barely moves. Measured here as:
//   1. a 25 ms Hann frame centred on the pitch frame's centre (frame i of the speech feature plan
//      is centred on sample i·hop + 240), zero-padded to 512 points, power spectrum via fft.js;
//   2. 24 triangular mel bands from 100 to 5000 Hz (F1–F4 of any adult voice), in dB;
//   3. the orthonormal DCT of the band levels, keeping c1..c12: dropping c0 removes overall
//      loudness (a steady vowel that fades is still steady), dropping c13.. removes the harmonic
//      fine structure, which moves with pitch rather than with articulation;
//   4. the delta of that cepstrum by regression over ±2 frames (the usual MFCC delta: a slope
//      fitted over 50 ms, so one noisy frame does not look like a transition);
//   5. its Euclidean norm divided by √24.
// Because the DCT is orthonormal, step 5 is the RMS over bands of how fast the smoothed,
// mean-removed log-mel envelope changes, in dB per 10 ms frame: an interpretable unit for the
// detector's thresholds. Frames where the envelope is undefined (silence) get the floor level, so
// they are steady too; the detector gates them by voicing and loudness, not here.
import FFT from 'fft.js';
import { DEFAULT_HOP, DEFAULT_PITCH_FRAME_SIZE, SPEECH_SAMPLE_RATE } from '../frames.js';

const WINDOW = 400;
const FFT_SIZE = 512;
const BANDS = 24;
const CEPSTRA = 12;
const LOW_HZ = 100;
const HIGH_HZ = 5000;
/** Band levels are floored here, about the level of 16-bit quantisation noise in one band. */
const FLOOR_DB = -100;
/** Delta regression half-width, frames. */
const DELTA_SPAN = 2;

export interface SpectralChangePlan {
  readonly hop: number;
  /** Offset from a frame's first sample (pitch frame layout) to the spectral window's first sample. */
  readonly windowOffset: number;
  readonly fft: FFT;
  readonly hann: Float64Array;
  readonly input: Float64Array;
  readonly spectrum: Float64Array;
  /** bands × (FFT_SIZE/2 + 1) triangular weights, row-major. */
  readonly melWeights: Float64Array;
  /** CEPSTRA × BANDS orthonormal DCT-II rows 1..CEPSTRA. */
  readonly dct: Float64Array;
}

const hzToMel = (hz: number) => 2595 * Math.log10(1 + hz / 700);
const melToHz = (mel: number) => 700 * (10 ** (mel / 2595) - 1);

/** Plan for frames laid out like the speech feature plan: 480-sample pitch frames every 160 samples. */
export function createSpectralChangePlan(opts: { hop?: number; pitchFrameSize?: number } = {}): SpectralChangePlan {
  const hop = opts.hop ?? DEFAULT_HOP;
  const pitchFrameSize = opts.pitchFrameSize ?? DEFAULT_PITCH_FRAME_SIZE;
  const hann = new Float64Array(WINDOW);
  for (let i = 0; i < WINDOW; i++) hann[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / WINDOW);
  const bins = FFT_SIZE / 2 + 1;
  const melWeights = new Float64Array(BANDS * bins);
  const lo = hzToMel(LOW_HZ);
  const hi = hzToMel(HIGH_HZ);
  const edges: number[] = [];
  for (let b = 0; b < BANDS + 2; b++) edges.push(melToHz(lo + ((hi - lo) * b) / (BANDS + 1)));
  for (let b = 0; b < BANDS; b++) {
    const [left, centre, right] = [edges[b], edges[b + 1], edges[b + 2]];
    for (let k = 0; k < bins; k++) {
      const hz = (k * SPEECH_SAMPLE_RATE) / FFT_SIZE;
      let w = 0;
      if (hz > left && hz <= centre) w = (hz - left) / (centre - left);
      else if (hz > centre && hz < right) w = (right - hz) / (right - centre);
      melWeights[b * bins + k] = w;
    }
  }
  const dct = new Float64Array(CEPSTRA * BANDS);
  for (let c = 1; c <= CEPSTRA; c++) {
    for (let b = 0; b < BANDS; b++) dct[(c - 1) * BANDS + b] = Math.sqrt(2 / BANDS) * Math.cos((Math.PI * c * (b + 0.5)) / BANDS);
  }
  return {
    hop,
    windowOffset: Math.round((pitchFrameSize - WINDOW) / 2),
    fft: new FFT(FFT_SIZE),
    hann,
    input: new Float64Array(FFT_SIZE),
    spectrum: new Float64Array(2 * FFT_SIZE),
    melWeights,
    dct,
  };
}

/** c1..c12 of the frame whose spectral window starts at `start` (samples outside are zeros). */
function cepstrum(samples: Float32Array, start: number, plan: SpectralChangePlan, out: Float64Array, offset: number, bandDb: Float64Array): void {
  const { input, hann, fft, spectrum, melWeights, dct } = plan;
  for (let j = 0; j < WINDOW; j++) {
    const k = start + j;
    input[j] = k >= 0 && k < samples.length ? samples[k] * hann[j] : 0;
  }
  fft.realTransform(spectrum, input);
  const bins = FFT_SIZE / 2 + 1;
  for (let b = 0; b < BANDS; b++) {
    let e = 0;
    const row = b * bins;
    for (let k = 0; k < bins; k++) {
      const w = melWeights[row + k];
      if (w === 0) continue;
      const re = spectrum[2 * k];
      const im = spectrum[2 * k + 1];
      e += w * (re * re + im * im);
    }
    bandDb[b] = e > 0 ? Math.max(FLOOR_DB, 10 * Math.log10(e)) : FLOOR_DB;
  }
  for (let c = 0; c < CEPSTRA; c++) {
    let v = 0;
    for (let b = 0; b < BANDS; b++) v += dct[c * BANDS + b] * bandDb[b];
    out[offset + c] = v;
  }
}

/**
 * Spectral change of `frames` frames (frame i centred where pitch frame i is), in dB per frame,
 * RMS over mel bands. Writes into `out` when given.
 */
export function spectralChange(samples: Float32Array, frames: number, plan: SpectralChangePlan, out?: Float32Array): Float32Array {
  const result = out ?? new Float32Array(frames);
  if (frames === 0) return result;
  const ceps = new Float64Array(frames * CEPSTRA);
  const bandDb = new Float64Array(BANDS);
  for (let i = 0; i < frames; i++) cepstrum(samples, i * plan.hop + plan.windowOffset, plan, ceps, i * CEPSTRA, bandDb);
  let denominator = 0;
  for (let n = 1; n <= DELTA_SPAN; n++) denominator += 2 * n * n;
  const norm = Math.sqrt(BANDS);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < CEPSTRA; c++) {
      let d = 0;
      for (let n = 1; n <= DELTA_SPAN; n++) {
        // Edges repeat the first/last frame, as the usual delta does.
        const ahead = Math.min(frames - 1, i + n);
        const behind = Math.max(0, i - n);
        d += n * (ceps[ahead * CEPSTRA + c] - ceps[behind * CEPSTRA + c]);
      }
      d /= denominator;
      sum += d * d;
    }
    result[i] = Math.sqrt(sum) / norm;
  }
  return result;
}
