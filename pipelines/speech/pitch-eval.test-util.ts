// Scoring a pitch track against a reference track, for the pitch tests and the dev script
// scripts/reference/pitch-eval.ts. Reference tracks are Praat's (fixtures/praat-pitch.json, made by
// scripts/reference/praat_pitch.py) and the PTDB-TUG laryngograph track (../shared/data/pitch/).
//
// Metrics, as in the pitch-tracking literature (e.g. Mauch & Dixon 2014, pYIN):
//   GPE (gross pitch error): share of the frames both tracks call voiced where our f0 differs from
//       the reference by more than 20 %;
//   recall: share of the reference's voiced frames we call voiced;
//   agreement: share of all compared frames where the voicing decisions agree.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HOP, DEFAULT_PITCH_FRAME_SIZE, SPEECH_SAMPLE_RATE } from './frames.js';

export const SHARED_DATA_DIR = fileURLToPath(new URL('../../../shared/data/', import.meta.url));

/** Path of a fixture clip: 'espeak/…' clips live in test/fixtures/fillers, the others in ../shared/data. */
export function clipPath(name: string): string {
  if (name.startsWith('espeak/')) return fileURLToPath(new URL('../../test/fixtures/fillers/' + name.slice('espeak/'.length), import.meta.url));
  return SHARED_DATA_DIR + name;
}

export interface ReferenceTrack {
  /** Time of reference frame 0 (seconds from the first sample) and the frame step. */
  firstFrameS: number;
  stepS: number;
  /** f0 per reference frame, Hz; 0 = unvoiced. */
  f0Hz: number[];
}

export interface PraatClip extends ReferenceTrack {
  name: string;
  role: 'development' | 'evaluation';
}

interface PraatFixture {
  time_step_s: number;
  clips: Record<string, { role: 'development' | 'evaluation'; first_frame_s: number; f0_hz: number[] }>;
}

/** Praat's tracks from the committed fixture, keyed 'speech/<file>.wav', 'pitch/…', 'fillers/…', 'espeak/…'. */
export function praatClips(): PraatClip[] {
  const path = fileURLToPath(new URL('./fixtures/praat-pitch.json', import.meta.url));
  const fixture = JSON.parse(readFileSync(path, 'utf8')) as PraatFixture;
  return Object.entries(fixture.clips).map(([name, c]) => ({
    name,
    role: c.role,
    firstFrameS: c.first_frame_s,
    stepS: fixture.time_step_s,
    f0Hz: c.f0_hz,
  }));
}

/**
 * PTDB-TUG F01 sa1 laryngograph f0 (RAPT, 10 ms frames, 0 = unvoiced). `firstFrameS` is the time
 * of reference frame 0; see pitch-reference.test.ts for how it was chosen.
 */
export function ptdbReference(firstFrameS: number): ReferenceTrack {
  const f0Hz = readFileSync(SHARED_DATA_DIR + 'pitch/ref_F01_sa1.f0', 'utf8')
    .trim()
    .split('\n')
    .map((line) => Number(line.trim().split(/\s+/)[0]));
  return { firstFrameS, stepS: 0.01, f0Hz };
}

export interface TrackLike {
  f0Hz: ArrayLike<number>;
  voiced: ArrayLike<number>;
}

export interface PitchScore {
  /** Reference frames paired with one of ours. */
  compared: number;
  /** Frames both call voiced. */
  bothVoiced: number;
  gpe: number;
  recall: number;
  agreement: number;
  /** Of the gross errors, how many are ours above the reference (octave-up) and below. */
  grossHigh: number;
  grossLow: number;
}

/**
 * Pairs every reference frame with our frame whose centre is nearest (our frame i is centred at
 * (i · hop + frameSize / 2) / rate) and scores the pairs. Reference frames with no frame of ours
 * within half a hop are skipped.
 */
export function scoreAgainst(
  ours: TrackLike,
  ref: ReferenceTrack,
  layout = { hop: DEFAULT_HOP, frameSize: DEFAULT_PITCH_FRAME_SIZE, sampleRate: SPEECH_SAMPLE_RATE },
): PitchScore {
  const hopS = layout.hop / layout.sampleRate;
  const centre0 = layout.frameSize / 2 / layout.sampleRate;
  let compared = 0;
  let agree = 0;
  let both = 0;
  let gross = 0;
  let grossHigh = 0;
  let refVoiced = 0;
  let found = 0;
  for (let k = 0; k < ref.f0Hz.length; k++) {
    const t = ref.firstFrameS + k * ref.stepS;
    const i = Math.round((t - centre0) / hopS);
    if (i < 0 || i >= ours.f0Hz.length || Math.abs(centre0 + i * hopS - t) > hopS / 2 + 1e-9) continue;
    compared++;
    const refIsVoiced = ref.f0Hz[k] > 0;
    const weVoiced = ours.voiced[i] === 1 && ours.f0Hz[i] > 0;
    if (refIsVoiced === weVoiced) agree++;
    if (!refIsVoiced) continue;
    refVoiced++;
    if (!weVoiced) continue;
    found++;
    both++;
    const ratio = ours.f0Hz[i] / ref.f0Hz[k];
    if (Math.abs(ratio - 1) > 0.2) {
      gross++;
      if (ratio > 1) grossHigh++;
    }
  }
  return {
    compared,
    bothVoiced: both,
    gpe: both > 0 ? gross / both : 0,
    recall: refVoiced > 0 ? found / refVoiced : 1,
    agreement: compared > 0 ? agree / compared : 0,
    grossHigh,
    grossLow: gross - grossHigh,
  };
}

/** Mean and population SD of the voiced f0 of a reference track. */
export function referenceStats(ref: ReferenceTrack): { meanHz: number; sdHz: number; maxHz: number; voiced: number } {
  const v = ref.f0Hz.filter((f) => f > 0);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { meanHz: mean, sdHz: sd, maxHz: Math.max(...v), voiced: v.length };
}
