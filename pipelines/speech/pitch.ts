// Fundamental frequency: YIN's difference function per frame (de Cheveigné & Kawahara, JASA 2002),
// several period candidates per frame, and the path through them chosen by dynamic programming
// across frames, as in Praat's pitch analysis (Boersma, Proc. IFA 17, 1993) and pYIN (Mauch &
// Dixon, ICASSP 2014). The period choice and the voicing decision are separate steps: a frame
// does not become unvoiced because its best dip misses one threshold, and a dip does not become
// the period because it is the first under that threshold (which doubled male voices whose
// second harmonic is strong: the half-period dip falls under the threshold first).
//
// 1. Difference function. A frame of N samples is split into an integration window of
//    W = N − τmax samples and the lags τ ≤ τmax = ceil(fs / minHz). The difference function
//      d(τ) = Σ_{j<W} (x_j − x_{j+τ})² = E(0) + E(τ) − 2 r(τ),
//    with E(τ) = Σ_{j<W} x_{j+τ}² (a running sum) and r(τ) = Σ_{j<W} x_j x_{j+τ}, gets r from one
//    FFT cross-correlation: r = IFFT(conj(FFT(x[0..W))) · FFT(x[0..N))). The FFT length L is the
//    next power of two ≥ N; no circular wrap reaches lags ≤ τmax because j + τ < N ≤ L. Then the
//    cumulative mean normalised difference d'(τ) = d(τ) · τ / Σ_{k=1..τ} d(k) (≈ the share of the
//    frame's power that does not repeat after τ samples: 0 for a periodic signal, about 1 for noise).
//
// 2. Candidates. Every local minimum of d' in [fs/maxHz, τmax] is a period candidate (up to
//    MAX_CANDIDATES, the strongest), refined to sub-sample precision by a parabola through the dip
//    and its neighbours. Its strength is its periodicity 1 − d' minus a small octave cost per
//    octave below maxHz (Praat's "octave cost"): a subharmonic 2τ dips about as low as τ, so among
//    nearly equal dips the shorter period wins. (YIN's first dip under a threshold, or pYIN's
//    prior over thresholds, favours the shorter period more strongly; against Praat, the tests'
//    reference, that scored worse on the development clips: period-doubled voice, as in creak or
//    espeak-ng's female voices, repeats exactly only every two cycles, and Praat, like this
//    tracker, then reports the doubled period.)
//
//    Voicing. Besides the candidates every frame has an unvoiced state, whose strength is Praat's
//    (Boersma 1993): the voicing threshold 1 − `threshold`, plus a silence term
//    max(0, 2 − (a / A) · (2 − threshold) / silenceThreshold) that grows as the frame's RMS
//    amplitude a falls under about `silenceThreshold` (3 %) of A, the level of the loudest clearly
//    periodic frame lately (d' < PERIODIC_FOR_PEAK, forgotten at peakDecayDbPerSecond; Praat uses
//    the loudest sample of the whole recording, which a stream does not have and which a knock or
//    a cough would set), or an absolute term that grows from `softDbfs` to 1 at the hard gate
//    `minDbfs` (under which no period is a candidate), whichever is larger. So mains hum and
//    reverberation tails between words, periodic but far below the voice, do not count as voice,
//    while a quiet but periodic voice does.
//
// 3. Path. Viterbi over the frames maximises the summed strengths minus transition costs:
//    `octaveJumpCost` per octave between consecutive voiced f0s (so a one-frame jump to the double
//    must be worth more than that cost) and `voicedUnvoicedCost` per voicing change (so isolated
//    voiced or unvoiced frames need strong evidence), both per 10 ms of hop as in Praat. The path
//    is decided with a fixed look-ahead of `lookaheadFrames`: frame t is final when frame
//    t + lookahead has been analysed (traced back from the best state there), or at the end of the
//    input. A frame's result therefore depends only on the audio up to a fixed distance after it,
//    never on how a stream was cut into chunks, and a whole-array call gives the same result as
//    the same audio streamed (PitchTracker).
//
// Timing: the analysed samples are x[0 .. W + τ), so the measurement is centred (τmax − τ) / 2
// samples before the frame centre (≈ 5 ms early for a 200 Hz voice with a 30 ms frame at 16 kHz).
// Frame times elsewhere use the frame centre.
//
// Unvoiced frames report f0 = 0, as Praat and the PTDB-TUG reference tracks do.
//
// The plan holds the FFT and every scratch buffer; the caller makes one per frame shape and
// reuses it (one plan per thread: analysing a frame overwrites its scratch). A PitchTracker holds
// the path state of one signal.
import FFT from 'fft.js';
import { AttuneError } from '../../lib/errors.js';
import { dbfsFromMeanSquare } from './volume.js';

/** Period candidates kept per frame (the strongest dips of d'). */
export const MAX_CANDIDATES = 5;

export interface PitchPlanOptions {
  sampleRate: number;
  /** Samples per analysis frame: integration window plus the longest lag. */
  frameSize: number;
  /** Lowest f0 searched, Hz (default 60). */
  minHz?: number;
  /** Highest f0 searched, Hz (default 500). */
  maxHz?: number;
  /**
   * Voicing threshold on the aperiodicity d': the unvoiced state's strength is 1 − threshold, so a
   * frame on its own (no level term, no neighbours) is voiced when its best dip is below it.
   */
  threshold?: number;
  /** Hard energy gate: frames quieter than this (RMS dBFS over the whole frame) are unvoiced. */
  minDbfs?: number;
  /** Frames quieter than this get a growing push towards unvoiced (reaching 1 at minDbfs). */
  softDbfs?: number;
  /**
   * Praat's silence threshold: frames whose RMS amplitude is under about this share of the voice's
   * recent loudest periodic frame are pushed towards unvoiced (Praat measures against the loudest
   * sound of the recording; here against voice, so a cough or a knock does not mute speech).
   */
  silenceThreshold?: number;
  /** How fast that recent loudest level forgets a loud frame, dB per second. */
  peakDecayDbPerSecond?: number;
  /** Strength subtracted per octave of a candidate below maxHz (favours the shorter of equal dips). */
  octaveCost?: number;
  /** Path cost per octave of f0 change between consecutive voiced frames (per 10 ms of hop). */
  octaveJumpCost?: number;
  /** Path cost of a change between voiced and unvoiced (per 10 ms of hop). */
  voicedUnvoicedCost?: number;
  /** Frames after frame t analysed before frame t is decided. */
  lookaheadFrames?: number;
}

export interface PitchPlan {
  readonly sampleRate: number;
  readonly frameSize: number;
  readonly minHz: number;
  readonly maxHz: number;
  readonly threshold: number;
  readonly minDbfs: number;
  readonly softDbfs: number;
  readonly silenceThreshold: number;
  readonly peakDecayDbPerSecond: number;
  readonly octaveCost: number;
  readonly octaveJumpCost: number;
  readonly voicedUnvoicedCost: number;
  readonly lookaheadFrames: number;
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
  /** d' at the chosen period, or the lowest d' of the frame when unvoiced (0 = periodic, about 1 = noise). */
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

/**
 * Defaults. threshold, minDbfs, softDbfs, octaveCost and lookaheadFrames were chosen against Praat
 * on development clips only (the four MFA recordings in ../shared/data/fillers and the espeak-ng
 * clips in test/fixtures/fillers, fixtures/praat-pitch.json) and on the synthetic signals of
 * pitch.test.ts, never on the clips the pitch tests score (the shared speech clips and PTDB-TUG).
 * octaveJumpCost, voicedUnvoicedCost and silenceThreshold are Praat's defaults, which the
 * development clips did not argue against; 1 − threshold = 0.45 is Praat's voicing threshold too.
 * A look-ahead of 30 frames (300 ms) gave the same development scores as deciding on the whole
 * signal (10 frames did not, on the espeak-ng female voices).
 */
const DEFAULTS = {
  minHz: 60,
  maxHz: 500,
  threshold: 0.55,
  minDbfs: -60,
  softDbfs: -45,
  silenceThreshold: 0.03,
  peakDecayDbPerSecond: 1,
  octaveCost: 0.02,
  octaveJumpCost: 0.35,
  voicedUnvoicedCost: 0.14,
  lookaheadFrames: 30,
};

function invalid(field: string, message: string, got: unknown): AttuneError {
  return new AttuneError('validation_error', message, [{ field, reason: 'invalid_argument', message: `got ${String(got)}` }]);
}

export function createPitchPlan(opts: PitchPlanOptions): PitchPlan {
  const minHz = opts.minHz ?? DEFAULTS.minHz;
  const maxHz = opts.maxHz ?? DEFAULTS.maxHz;
  const threshold = opts.threshold ?? DEFAULTS.threshold;
  const minDbfs = opts.minDbfs ?? DEFAULTS.minDbfs;
  const softDbfs = Math.max(minDbfs, opts.softDbfs ?? DEFAULTS.softDbfs);
  const silenceThreshold = opts.silenceThreshold ?? DEFAULTS.silenceThreshold;
  const peakDecayDbPerSecond = opts.peakDecayDbPerSecond ?? DEFAULTS.peakDecayDbPerSecond;
  const octaveCost = opts.octaveCost ?? DEFAULTS.octaveCost;
  const octaveJumpCost = opts.octaveJumpCost ?? DEFAULTS.octaveJumpCost;
  const voicedUnvoicedCost = opts.voicedUnvoicedCost ?? DEFAULTS.voicedUnvoicedCost;
  const lookaheadFrames = opts.lookaheadFrames ?? DEFAULTS.lookaheadFrames;
  const { sampleRate, frameSize } = opts;
  if (!(sampleRate > 0)) throw invalid('sampleRate', 'sampleRate must be positive', sampleRate);
  if (!(minHz > 0 && maxHz > minHz && maxHz < sampleRate / 4)) {
    throw invalid('minHz', 'need 0 < minHz < maxHz < sampleRate / 4', `${minHz}..${maxHz}`);
  }
  if (!(threshold > 0 && threshold < 1)) throw invalid('threshold', 'threshold must be in (0, 1)', threshold);
  for (const [field, v] of [
    ['octaveCost', octaveCost],
    ['octaveJumpCost', octaveJumpCost],
    ['voicedUnvoicedCost', voicedUnvoicedCost],
    ['silenceThreshold', silenceThreshold],
    ['peakDecayDbPerSecond', peakDecayDbPerSecond],
  ] as const) {
    if (!(v >= 0 && Number.isFinite(v))) throw invalid(field, `${field} must be a finite number ≥ 0`, v);
  }
  if (!(Number.isInteger(lookaheadFrames) && lookaheadFrames >= 0)) {
    throw invalid('lookaheadFrames', 'lookaheadFrames must be an integer ≥ 0', lookaheadFrames);
  }
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
    softDbfs,
    silenceThreshold,
    peakDecayDbPerSecond,
    octaveCost,
    octaveJumpCost,
    voicedUnvoicedCost,
    lookaheadFrames,
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

/** One analysed frame: its level, and its period candidates (f0, d', strength), strongest first. */
interface FrameCandidates {
  dbfs: number;
  /** dB below the recent loudest periodic frame (≥ 0), set by the tracker. */
  belowPeakDb: number;
  /** Lowest d' over the searched lags (the frame's aperiodicity when no period is chosen). */
  minDprime: number;
  count: number;
  f0Hz: Float64Array;
  dprime: Float64Array;
  /** 1 − d' − octave cost. */
  strength: Float64Array;
  /** log2 of f0Hz, for the octave-jump cost. */
  log2F0: Float64Array;
}

function createFrameCandidates(): FrameCandidates {
  return { dbfs: 0, belowPeakDb: 0, minDprime: 1, count: 0, f0Hz: new Float64Array(MAX_CANDIDATES),
    dprime: new Float64Array(MAX_CANDIDATES),
    strength: new Float64Array(MAX_CANDIDATES),
    log2F0: new Float64Array(MAX_CANDIDATES),
  };
}

/**
 * Level, d' and the period candidates of the frame samples[start .. start + frameSize) into `out`.
 * The caller guarantees the frame lies inside `samples`.
 */
function analyseFrame(samples: Float32Array, start: number, plan: PitchPlan, out: FrameCandidates): void {
  const { window, maxLag, minLag, frameSize, correlation, sampleRate } = plan;
  const cmnd = plan.normalisedDifference;

  let frameEnergy = 0;
  for (let j = 0; j < frameSize; j++) {
    const x = samples[start + j];
    frameEnergy += x * x;
  }
  out.dbfs = dbfsFromMeanSquare(frameEnergy / frameSize);
  out.count = 0;
  out.minDprime = 1;

  let energy0 = 0;
  for (let j = 0; j < window; j++) {
    const x = samples[start + j];
    energy0 += x * x;
  }
  if (!(energy0 > 0)) {
    cmnd.fill(1);
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

  let minDprime = 1;
  for (let tau = minLag; tau <= maxLag; tau++) if (cmnd[tau] < minDprime) minDprime = cmnd[tau];
  out.minDprime = minDprime;
  // Below the hard gate no period is a candidate: the frame is unvoiced whatever its neighbours.
  if (out.dbfs < plan.minDbfs) return;

  // Local minima strictly inside the searched lags, the strongest kept (insertion into ≤ 5 slots,
  // strongest first). Ranking by strength rather than d' keeps the period itself when a steady
  // tone's subharmonic dips are all about as deep as the period's.
  const { f0Hz, dprime, strength } = out;
  for (let tau = minLag + 1; tau < maxLag; tau++) {
    const b = cmnd[tau];
    if (!(b < cmnd[tau - 1] && b <= cmnd[tau + 1]) || b >= 1) continue;
    const a = cmnd[tau - 1];
    const c = cmnd[tau + 1];
    const curvature = a - 2 * b + c;
    let period = tau;
    let value = b;
    if (curvature > 0) {
      const shift = (0.5 * (a - c)) / curvature;
      period = tau + shift;
      value = Math.max(0, b - 0.25 * (a - c) * shift);
    }
    const f0 = sampleRate / period;
    const own = 1 - value - plan.octaveCost * Math.log2(plan.maxHz / f0);
    let slot = out.count < MAX_CANDIDATES ? out.count : MAX_CANDIDATES - 1;
    if (out.count === MAX_CANDIDATES && own <= strength[slot]) continue;
    while (slot > 0 && strength[slot - 1] < own) {
      dprime[slot] = dprime[slot - 1];
      f0Hz[slot] = f0Hz[slot - 1];
      strength[slot] = strength[slot - 1];
      slot--;
    }
    dprime[slot] = value;
    f0Hz[slot] = f0;
    strength[slot] = own;
    if (out.count < MAX_CANDIDATES) out.count++;
  }
  for (let k = 0; k < out.count; k++) out.log2F0[k] = Math.log2(f0Hz[k]);
}

/** A decided frame, delivered in frame order. */
export type PitchFrameSink = (index: number, f0Hz: number, voiced: boolean, aperiodicity: number, dbfs: number) => void;

/** A frame counts towards the voice's loudest level when its best dip is at least this periodic. */
const PERIODIC_FOR_PEAK = 0.25;

const STATES = MAX_CANDIDATES + 1; // state 0 = unvoiced, 1.. = candidates

/**
 * The path state of one signal: frames are analysed one by one (`pushFrame`) and delivered to the
 * sink once decided, `lookaheadFrames` later, or all at `finish`. Holds only the last
 * lookahead + 1 frames, so memory does not grow with the signal.
 */
export class PitchTracker {
  private readonly plan: PitchPlan;
  private readonly sink: PitchFrameSink;
  private readonly ring: number;
  private readonly frames: FrameCandidates[];
  /** Per ring slot and state: accumulated path score, back-pointer to the previous frame's state, strength. */
  private readonly score: Float64Array;
  private readonly back: Int8Array;
  /** States along a traced path, scratch for deliverThrough. */
  private readonly pathStates: Int8Array;
  private readonly hopCostScale: number;
  private readonly peakDecayPerFrame: number;
  /**
   * Level of the recent loudest periodic frame (best d' under PERIODIC_FOR_PEAK), dBFS: the
   * loudest so far, decaying by peakDecayPerFrame each frame.
   */
  private peakDbfs = -Infinity;
  /** Frames analysed and frames delivered. */
  private analysed = 0;
  private decided = 0;

  constructor(plan: PitchPlan, hop: number, sink: PitchFrameSink) {
    if (!Number.isInteger(hop) || hop < 1) throw invalid('hop', 'hop must be a positive integer', hop);
    this.plan = plan;
    this.sink = sink;
    this.ring = plan.lookaheadFrames + 2;
    this.frames = Array.from({ length: this.ring }, createFrameCandidates);
    this.score = new Float64Array(this.ring * STATES);
    this.back = new Int8Array(this.ring * STATES);
    this.pathStates = new Int8Array(this.ring);
    // Praat scales its transition costs by 0.01 s / time step, so that they mean the same per
    // second of signal whatever the hop.
    this.hopCostScale = (0.01 * plan.sampleRate) / hop;
    this.peakDecayPerFrame = (plan.peakDecayDbPerSecond * hop) / plan.sampleRate;
  }

  /** Frames analysed so far. */
  get frameCount(): number {
    return this.analysed;
  }

  /** Analyses samples[start .. start + frameSize) as the next frame. */
  pushFrame(samples: Float32Array, start: number): void {
    const t = this.analysed;
    const slot = t % this.ring;
    const frame = this.frames[slot];
    analyseFrame(samples, start, this.plan, frame);
    this.peakDbfs -= this.peakDecayPerFrame;
    if (frame.count > 0 && frame.minDprime < PERIODIC_FOR_PEAK && frame.dbfs > this.peakDbfs) this.peakDbfs = frame.dbfs;
    frame.belowPeakDb = this.peakDbfs > frame.dbfs ? this.peakDbfs - frame.dbfs : 0;
    this.forward(t, slot, frame);
    this.analysed++;
    const lookahead = this.plan.lookaheadFrames;
    if (t >= lookahead) this.deliverThrough(t, t - lookahead);
  }

  /** Decides and delivers every frame not yet delivered (the end of the signal). */
  finish(): void {
    if (this.analysed > this.decided) this.deliverThrough(this.analysed - 1, this.analysed - 1);
  }

  /** Strength of state s of a frame (−∞ for an empty candidate slot). */
  private strength(frame: FrameCandidates, s: number): number {
    const p = this.plan;
    if (s === 0) {
      const quiet = Math.max(0, Math.min(1, (p.softDbfs - frame.dbfs) / Math.max(1e-9, p.softDbfs - p.minDbfs)));
      // Praat (Boersma 1993): unvoiced strength = voicing threshold + max(0, 2 − (local / global
      // level) / (silence threshold / (1 + voicing threshold))), with 1 − threshold as Praat's
      // voicing threshold (periodicity) and amplitude ratios from the frame's RMS.
      const voicing = 1 - p.threshold;
      const ratio = 10 ** (-frame.belowPeakDb / 20);
      const silent = Math.max(0, 2 - (ratio * (1 + voicing)) / p.silenceThreshold);
      return voicing + (frame.count === 0 ? 2 : Math.max(quiet, silent));
    }
    if (s > frame.count) return -Infinity;
    return frame.strength[s - 1];
  }

  private forward(t: number, slot: number, frame: FrameCandidates): void {
    const base = slot * STATES;
    if (t === 0) {
      for (let s = 0; s < STATES; s++) {
        this.score[base + s] = this.strength(frame, s);
        this.back[base + s] = 0;
      }
      return;
    }
    const prevSlot = (t - 1) % this.ring;
    const prev = this.frames[prevSlot];
    const prevBase = prevSlot * STATES;
    const jump = this.plan.octaveJumpCost * this.hopCostScale;
    const vu = this.plan.voicedUnvoicedCost * this.hopCostScale;
    let best = -Infinity;
    for (let s = 0; s < STATES; s++) {
      const own = this.strength(frame, s);
      if (own === -Infinity) {
        this.score[base + s] = -Infinity;
        this.back[base + s] = 0;
        continue;
      }
      let bestPrev = 0;
      let bestScore = -Infinity;
      for (let q = 0; q <= prev.count; q++) {
        const before = this.score[prevBase + q];
        if (before === -Infinity) continue;
        let cost = 0;
        if (s === 0 && q === 0) cost = 0;
        else if (s === 0 || q === 0) cost = vu;
        else cost = jump * Math.abs(frame.log2F0[s - 1] - prev.log2F0[q - 1]);
        const total = before - cost;
        if (total > bestScore) {
          bestScore = total;
          bestPrev = q;
        }
      }
      this.score[base + s] = bestScore + own;
      this.back[base + s] = bestPrev;
      if (this.score[base + s] > best) best = this.score[base + s];
    }
    // Scores only matter relative to each other: keep them near 0 so long signals lose no precision.
    for (let s = 0; s < STATES; s++) this.score[base + s] -= best;
  }

  /** Traces back from the best state of frame `from` and delivers frames decided .. through. */
  private deliverThrough(from: number, through: number): void {
    let slot = from % this.ring;
    let state = 0;
    let best = -Infinity;
    for (let s = 0; s < STATES; s++) {
      if (this.score[slot * STATES + s] > best) {
        best = this.score[slot * STATES + s];
        state = s;
      }
    }
    // States of frames decided .. from along the path, last first.
    const states = this.pathStates;
    for (let t = from; t >= this.decided; t--) {
      states[from - t] = state;
      state = this.back[slot * STATES + state];
      slot = (slot + this.ring - 1) % this.ring;
    }
    for (let t = this.decided; t <= through; t++) {
      const s = states[from - t];
      const frame = this.frames[t % this.ring];
      if (s === 0) this.sink(t, 0, false, frame.minDprime, frame.dbfs);
      else this.sink(t, frame.f0Hz[s - 1], true, frame.dprime[s - 1], frame.dbfs);
    }
    this.decided = through + 1;
  }
}

export function createPitchTrack(frames: number): PitchTrack {
  return {
    f0Hz: new Float32Array(frames),
    aperiodicity: new Float32Array(frames),
    voiced: new Uint8Array(frames),
    dbfs: new Float32Array(frames),
  };
}

/** Pitch of one frame on its own (no neighbours to follow), samples[start .. start + plan.frameSize). */
export function estimatePitch(samples: Float32Array, start: number, plan: PitchPlan): PitchEstimate {
  if (!Number.isInteger(start) || start < 0 || start + plan.frameSize > samples.length) {
    throw invalid('start', 'the frame must lie inside the samples', start);
  }
  let result: PitchEstimate = { f0Hz: 0, aperiodicity: 1, voiced: false, dbfs: -Infinity };
  const tracker = new PitchTracker(plan, 1, (_i, f0Hz, voiced, aperiodicity, dbfs) => {
    result = { f0Hz, aperiodicity, voiced, dbfs };
  });
  tracker.pushFrame(samples, start);
  tracker.finish();
  return result;
}

/**
 * Pitch of every whole frame of plan.frameSize samples, one every `hop` samples
 * (frame i starts at i · hop). Writes into `out` when given (it must have room for every frame).
 * The same as pushing the frames through a PitchTracker and finishing it.
 */
export function trackPitch(samples: Float32Array, hop: number, plan: PitchPlan, out?: PitchTrack): PitchTrack {
  if (!Number.isInteger(hop) || hop < 1) throw invalid('hop', 'hop must be a positive integer', hop);
  const frames = samples.length < plan.frameSize ? 0 : Math.floor((samples.length - plan.frameSize) / hop) + 1;
  const track = out ?? createPitchTrack(frames);
  if (track.f0Hz.length < frames) throw invalid('out', `the track must hold ${frames} frames`, track.f0Hz.length);
  const tracker = new PitchTracker(plan, hop, (i, f0Hz, voiced, aperiodicity, dbfs) => {
    track.f0Hz[i] = f0Hz;
    track.voiced[i] = voiced ? 1 : 0;
    track.aperiodicity[i] = aperiodicity;
    track.dbfs[i] = dbfs;
  });
  for (let i = 0; i < frames; i++) tracker.pushFrame(samples, i * hop);
  tracker.finish();
  return track;
}
