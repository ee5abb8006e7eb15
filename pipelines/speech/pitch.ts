// Fundamental frequency by YIN (de Cheveigné & Kawahara, JASA 2002) on one frame at a time.
//
// A frame of N samples is split into an integration window of W = N − τmax samples and the lags
// τ ≤ τmax = ceil(fs / minHz). The difference function
//   d(τ) = Σ_{j<W} (x_j − x_{j+τ})² = E(0) + E(τ) − 2 r(τ),
// with E(τ) = Σ_{j<W} x_{j+τ}² (a running sum) and r(τ) = Σ_{j<W} x_j x_{j+τ}, gets r from one
// FFT cross-correlation: r = IFFT(conj(FFT(x[0..W))) · FFT(x[0..N))). The FFT length L is the
// next power of two ≥ N; no circular wrap reaches lags ≤ τmax because j + τ < N ≤ L.
//
// Then the cumulative mean normalised difference d'(τ) = d(τ) · τ / Σ_{k=1..τ} d(k), the first
// lag in [fs/maxHz, τmax] where d' dips under `threshold` (followed down to its local minimum, so
// the period and not a subharmonic is taken), a parabola through the dip and its neighbours for
// sub-sample precision, and f0 = fs / τ.
//
// Timing: the analysed samples are x[0 .. W + τ), so the measurement is centred
// (τmax − τ) / 2 samples before the frame centre (≈ 5 ms early for a 200 Hz voice with a 30 ms
// frame at 16 kHz). Frame times elsewhere use the frame centre; the PTDB-TUG comparison in
// pitch-reference.test.ts shows the size of that choice.
//
// Voiced when the dip's d' (the aperiodicity: ≈ the share of non-periodic power) is under the
// threshold and the frame's RMS level is at least `minDbfs`; the energy gate keeps faint
// periodic hum and reverberation tails between words from counting as voice. Unvoiced frames
// report f0 = 0, as the PTDB-TUG reference tracks do.
//
// The plan holds the FFT and every scratch buffer; the caller makes one per frame shape and
// reuses it (one plan per thread: analysing a frame overwrites its scratch).
import FFT from 'fft.js';
import { AttuneError } from '../../lib/errors.js';
import { dbfsFromMeanSquare } from './volume.js';

export interface PitchPlanOptions {
  sampleRate: number;
  /** Samples per analysis frame: integration window plus the longest lag. */
  frameSize: number;
  /** Lowest f0 searched, Hz (default 60). */
  minHz?: number;
  /** Highest f0 searched, Hz (default 500). */
  maxHz?: number;
  /** YIN aperiodicity threshold for the dip and for voicing (default 0.2). */
  threshold?: number;
  /** Energy gate: frames quieter than this (RMS dBFS over the whole frame) are unvoiced (default −50). */
  minDbfs?: number;
}

export interface PitchPlan {
  readonly sampleRate: number;
  readonly frameSize: number;
  readonly minHz: number;
  readonly maxHz: number;
  readonly threshold: number;
  readonly minDbfs: number;
  /** Shortest lag searched, samples. */
  readonly minLag: number;
  /** Longest lag searched, samples. */
  readonly maxLag: number;
  /** Integration window W, samples. */
  readonly window: number;
  readonly fftSize: number;
  readonly fft: FFT;
  readonly fftInput: Float64Array;
  readonly spectrumWindow: Float64Array;
  readonly spectrumFrame: Float64Array;
  readonly crossSpectrum: Float64Array;
  readonly correlation: Float64Array;
  /** d'(τ) for τ = 0 .. maxLag of the last frame analysed. */
  readonly normalisedDifference: Float64Array;
}

/** Per-frame results of `trackPitch`, index i for the frame starting at i · hop. */
export interface PitchTrack {
  /** f0 in Hz, 0 when unvoiced. */
  f0Hz: Float32Array;
  /** d' at the chosen dip (0 = perfectly periodic, about 1 = noise). */
  aperiodicity: Float32Array;
  /** 1 voiced, 0 unvoiced. */
  voiced: Uint8Array;
  /** RMS level of the analysis frame, dBFS. */
  dbfs: Float32Array;
}

export interface PitchEstimate {
  f0Hz: number;
  aperiodicity: number;
  voiced: boolean;
  dbfs: number;
}

const DEFAULTS = { minHz: 60, maxHz: 500, threshold: 0.2, minDbfs: -50 };

function invalid(field: string, message: string, got: unknown): AttuneError {
  return new AttuneError('validation_error', message, [{ field, reason: `got ${String(got)}` }]);
}

export function createPitchPlan(opts: PitchPlanOptions): PitchPlan {
  const minHz = opts.minHz ?? DEFAULTS.minHz;
  const maxHz = opts.maxHz ?? DEFAULTS.maxHz;
  const threshold = opts.threshold ?? DEFAULTS.threshold;
  const minDbfs = opts.minDbfs ?? DEFAULTS.minDbfs;
  const { sampleRate, frameSize } = opts;
  if (!(sampleRate > 0)) throw invalid('sampleRate', 'sampleRate must be positive', sampleRate);
  if (!(minHz > 0 && maxHz > minHz && maxHz < sampleRate / 4)) {
    throw invalid('minHz', 'need 0 < minHz < maxHz < sampleRate / 4', `${minHz}..${maxHz}`);
  }
  if (!(threshold > 0 && threshold < 1)) throw invalid('threshold', 'threshold must be in (0, 1)', threshold);
  const minLag = Math.max(2, Math.floor(sampleRate / maxHz));
  const maxLag = Math.ceil(sampleRate / minHz);
  const window = frameSize - maxLag;
  // A window shorter than the shortest period cannot tell one period from the next.
  if (!Number.isInteger(frameSize) || window < minLag) {
    throw invalid('frameSize', `frameSize must be an integer of at least ${maxLag + minLag} for ${minHz}–${maxHz} Hz`, frameSize);
  }
  let fftSize = 4;
  while (fftSize < frameSize) fftSize *= 2;
  return {
    sampleRate,
    frameSize,
    minHz,
    maxHz,
    threshold,
    minDbfs,
    minLag,
    maxLag,
    window,
    fftSize,
    fft: new FFT(fftSize),
    fftInput: new Float64Array(fftSize),
    spectrumWindow: new Float64Array(2 * fftSize),
    spectrumFrame: new Float64Array(2 * fftSize),
    crossSpectrum: new Float64Array(2 * fftSize),
    correlation: new Float64Array(2 * fftSize),
    normalisedDifference: new Float64Array(maxLag + 1),
  };
}

/** r(τ) for τ = 0 .. maxLag into plan.correlation[2τ] (real parts of the inverse FFT). */
function crossCorrelate(samples: Float32Array, start: number, plan: PitchPlan): void {
  const { fft, fftInput, spectrumWindow, spectrumFrame, crossSpectrum, correlation, fftSize, frameSize, window } = plan;
  for (let j = 0; j < window; j++) fftInput[j] = samples[start + j];
  fftInput.fill(0, window);
  fft.realTransform(spectrumWindow, fftInput);
  for (let j = window; j < frameSize; j++) fftInput[j] = samples[start + j];
  fft.realTransform(spectrumFrame, fftInput);
  // realTransform fills bins 0 .. L/2; the product of two real signals' spectra is Hermitian,
  // so the upper half is the conjugate mirror of the lower.
  const half = fftSize >> 1;
  for (let k = 0; k <= half; k++) {
    const ar = spectrumWindow[2 * k];
    const ai = spectrumWindow[2 * k + 1];
    const br = spectrumFrame[2 * k];
    const bi = spectrumFrame[2 * k + 1];
    const re = ar * br + ai * bi;
    const im = ar * bi - ai * br;
    crossSpectrum[2 * k] = re;
    crossSpectrum[2 * k + 1] = im;
    if (k > 0 && k < half) {
      crossSpectrum[2 * (fftSize - k)] = re;
      crossSpectrum[2 * (fftSize - k) + 1] = -im;
    }
  }
  fft.inverseTransform(correlation, crossSpectrum);
}

/**
 * Analyse the frame samples[start .. start + frameSize) into `track` at `index`. The caller
 * guarantees the frame lies inside `samples`.
 */
function analyseFrame(samples: Float32Array, start: number, plan: PitchPlan, track: PitchTrack, index: number): void {
  const { window, maxLag, minLag, frameSize, threshold, correlation, sampleRate } = plan;
  const cmnd = plan.normalisedDifference;

  let frameEnergy = 0;
  for (let j = 0; j < frameSize; j++) {
    const x = samples[start + j];
    frameEnergy += x * x;
  }
  const dbfs = dbfsFromMeanSquare(frameEnergy / frameSize);
  track.dbfs[index] = dbfs;

  let energy0 = 0;
  for (let j = 0; j < window; j++) {
    const x = samples[start + j];
    energy0 += x * x;
  }
  if (!(energy0 > 0)) {
    cmnd.fill(1);
    track.f0Hz[index] = 0;
    track.aperiodicity[index] = 1;
    track.voiced[index] = 0;
    return;
  }

  crossCorrelate(samples, start, plan);

  // d'(τ) for every lag: the cumulative mean needs d(1 .. τ) even below minLag.
  cmnd[0] = 1;
  let energyLag = energy0;
  let runningSum = 0;
  for (let tau = 1; tau <= maxLag; tau++) {
    const leaving = samples[start + tau - 1];
    const entering = samples[start + tau + window - 1];
    energyLag += entering * entering - leaving * leaving;
    // Rounding can push a near-zero difference slightly negative.
    const d = Math.max(0, energy0 + energyLag - 2 * correlation[2 * tau]);
    runningSum += d;
    cmnd[tau] = runningSum > 0 ? (d * tau) / runningSum : 1;
  }

  let best = -1;
  for (let tau = minLag; tau <= maxLag; tau++) {
    if (cmnd[tau] < threshold) {
      while (tau + 1 <= maxLag && cmnd[tau + 1] < cmnd[tau]) tau++;
      best = tau;
      break;
    }
  }
  if (best < 0) {
    best = minLag;
    for (let tau = minLag + 1; tau <= maxLag; tau++) if (cmnd[tau] < cmnd[best]) best = tau;
  }

  let period = best;
  if (best > 1 && best < maxLag) {
    const a = cmnd[best - 1];
    const b = cmnd[best];
    const c = cmnd[best + 1];
    const curvature = a - 2 * b + c;
    if (curvature > 0) period = best + (0.5 * (a - c)) / curvature;
  }
  const aperiodicity = cmnd[best];
  const voiced = aperiodicity < threshold && dbfs >= plan.minDbfs;
  track.f0Hz[index] = voiced ? sampleRate / period : 0;
  track.aperiodicity[index] = aperiodicity;
  track.voiced[index] = voiced ? 1 : 0;
}

export function createPitchTrack(frames: number): PitchTrack {
  return {
    f0Hz: new Float32Array(frames),
    aperiodicity: new Float32Array(frames),
    voiced: new Uint8Array(frames),
    dbfs: new Float32Array(frames),
  };
}

/** Pitch of one frame, samples[start .. start + plan.frameSize). */
export function estimatePitch(samples: Float32Array, start: number, plan: PitchPlan): PitchEstimate {
  if (!Number.isInteger(start) || start < 0 || start + plan.frameSize > samples.length) {
    throw invalid('start', 'the frame must lie inside the samples', start);
  }
  const track = createPitchTrack(1);
  analyseFrame(samples, start, plan, track, 0);
  return { f0Hz: track.f0Hz[0], aperiodicity: track.aperiodicity[0], voiced: track.voiced[0] === 1, dbfs: track.dbfs[0] };
}

/**
 * Pitch of every whole frame of plan.frameSize samples, one every `hop` samples
 * (frame i starts at i · hop). Writes into `out` when given (it must have room for every frame).
 */
export function trackPitch(samples: Float32Array, hop: number, plan: PitchPlan, out?: PitchTrack): PitchTrack {
  if (!Number.isInteger(hop) || hop < 1) throw invalid('hop', 'hop must be a positive integer', hop);
  const frames = samples.length < plan.frameSize ? 0 : Math.floor((samples.length - plan.frameSize) / hop) + 1;
  const track = out ?? createPitchTrack(frames);
  if (track.f0Hz.length < frames) throw invalid('out', `the track must hold ${frames} frames`, track.f0Hz.length);
  for (let i = 0; i < frames; i++) analyseFrame(samples, i * hop, plan, track, i);
  return track;
}
