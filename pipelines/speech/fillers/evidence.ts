// Filled pauses from two kinds of evidence in the audio, combined per utterance:
//
// - the acoustic rules (filled-pauses.ts): a held, level vowel, found without the transcript;
// - the forced alignment with optional fillers (align/aligner.ts, optionalFillers): the decoder
//   aligns the recognised words with "um", "uh" or "hmm" allowed in every gap, and puts one
//   wherever the CMU acoustic model hears a filled pause the recogniser left out. Moonshine drops
//   most real fillers (on the development recordings it wrote 1 of 10), so this is the evidence
//   that names them.
//
// The alignment also puts fillers where the transcript is short of words (a recognition error
// leaves audio no word explains, and a filler model is the cheapest way to cover it), and it
// slices a long hesitation into pieces ("uh" + "um" for one "uhm"). So an aligned filler counts
// only when the audio agrees, measured over its span (spanEvidence):
// 1. touching pieces (< TOUCH_MS apart) are one hesitation while together they last at most
//    MAX_JOINED_MS; it is named by its last piece when that closes on a nasal (um, hmm), else uh;
// 2. it lasts at least MIN_ALIGNED_MS (shorter is a word's vowel or a recognition gap: on the
//    development data no aligned filler under 200 ms was a real one that the other evidence did
//    not find as well);
// 3. it is mostly voiced and loud enough (voicedShare ≥ MIN_VOICED_SHARE), its pitch is not
//    raised above the speaker's median (≤ maxSemitonesAboveMedian, as for the acoustic rules:
//    filled pauses sit low in the speaker's range, and a missed word is often stressed), and its
//    spectrum is steady (median change ≤ MAX_ALIGNED_FLUX_DB, at least MIN_STEADY_SHARE of its
//    voiced frames steady) — the same measures as the acoustic rules, with the looser limits that
//    the decoder's independent evidence allows (the acoustic rules alone ask for a median of 0.45);
// 4. or, when the checks on its voiced frames fail (creaky, breathy or fried hesitations are
//    aperiodic to the pitch tracker: the fried "uh" of the development set is 8 % voiced to it), the same
//    steadiness measured over all its loud frames, voiced or not: it lasts at least MIN_UNVOICED_MS, at least
//    MIN_LOUD_SHARE of its frames are above the speaker's level floor, their median spectral change
//    is at most MAX_UNVOICED_FLUX_DB (the acoustic rules' limit for one steady frame: the typical
//    frame is steady) and at least MIN_UNVOICED_STEADY_SHARE of them are steady; the pitch check of
//    step 3 holds for the voiced frames there are. Set on the development data only
//    (test/fixtures/fillers/spliced-dev: the development fillers made creaky, fried, whispered and
//    lower; SPLIT.md): there every true filler rejected for its voicing had a loud-frame median
//    change of 0.38–0.79 dB with 50–93 % of frames steady, every rejected candidate of 250 ms or
//    more that was no filler 0.90–1.94 dB with at most 46 % steady; no candidate under 350 ms
//    was a true one this step would add, hence the longer minimum for the weaker evidence.
// An acoustic hit overlapping an accepted aligned filler is the same filler (found by both, named
// by the alignment); an acoustic hit overlapping a rejected one keeps the alignment's name.
import type { AlignedFiller } from '../align/index.js';
import { detectFilledPausesAndEvidence, spanEvidence, type FilledPause, type FilledPauseOptions, type SpanEvidence } from './filled-pauses.js';

export const TOUCH_MS = 30;
export const MAX_JOINED_MS = 700;
export const MIN_ALIGNED_MS = 200;
export const MIN_VOICED_SHARE = 0.5;
export const MAX_ALIGNED_FLUX_DB = 0.75;
export const MIN_STEADY_SHARE = 0.55;
const MAX_SEMITONES_ABOVE_MEDIAN = 2;
export const MIN_UNVOICED_MS = 300;
export const MIN_LOUD_SHARE = 0.8;
export const MAX_UNVOICED_FLUX_DB = 0.8;
export const MIN_UNVOICED_STEADY_SHARE = 0.5;

export interface AlignedCandidate {
  name: 'um' | 'uh' | 'hmm';
  startMs: number;
  endMs: number;
  evidence: SpanEvidence;
  accepted: boolean;
}

/** Touching aligned pieces joined into hesitations (step 1 above). */
export function joinAlignedPieces(fillers: readonly AlignedFiller[]): Array<{ name: 'um' | 'uh' | 'hmm'; startMs: number; endMs: number }> {
  const sorted = [...fillers].sort((a, b) => a.startMs - b.startMs);
  const out: Array<{ name: 'um' | 'uh' | 'hmm'; startMs: number; endMs: number }> = [];
  for (const f of sorted) {
    const prev = out[out.length - 1];
    if (prev && f.startMs - prev.endMs < TOUCH_MS && f.endMs - prev.startMs <= MAX_JOINED_MS) {
      prev.endMs = f.endMs;
      prev.name = f.filler === 'uh' ? (prev.name === 'uh' ? 'uh' : prev.name) : f.filler;
      continue;
    }
    out.push({ name: f.filler, startMs: f.startMs, endMs: f.endMs });
  }
  return out;
}

/** Steps 2–4: does the audio agree with an aligned filler? */
export function alignedFillerHolds(e: SpanEvidence, durationMs: number): boolean {
  if (durationMs < MIN_ALIGNED_MS || e.semitonesAboveMedian > MAX_SEMITONES_ABOVE_MEDIAN) return false;
  const voiced = e.voicedShare >= MIN_VOICED_SHARE && e.medianFluxDb <= MAX_ALIGNED_FLUX_DB && e.steadyShare >= MIN_STEADY_SHARE;
  return voiced || unvoicedFillerHolds(e, durationMs);
}

/** Step 4: a steady, loud span whatever its voicing (creaky, breathy or fried hesitations). */
export function unvoicedFillerHolds(e: SpanEvidence, durationMs: number): boolean {
  return (
    durationMs >= MIN_UNVOICED_MS &&
    e.loudShare >= MIN_LOUD_SHARE &&
    e.loudMedianFluxDb <= MAX_UNVOICED_FLUX_DB &&
    e.loudSteadyShare >= MIN_UNVOICED_STEADY_SHARE
  );
}

/** The aligned fillers of one utterance with the audio's evidence and verdict. */
export function judgeAlignedFillers(
  samples: Float32Array,
  fillers: readonly AlignedFiller[],
  opts: FilledPauseOptions & { offsetMs?: number } = {},
): AlignedCandidate[] {
  const joined = joinAlignedPieces(fillers);
  return verdicts(joined, spanEvidence(samples, joined, opts));
}

function verdicts(joined: ReturnType<typeof joinAlignedPieces>, evidence: readonly SpanEvidence[]): AlignedCandidate[] {
  return joined.map((j, i) => ({ ...j, evidence: evidence[i], accepted: alignedFillerHolds(evidence[i], j.endMs - j.startMs) }));
}

/**
 * One utterance's filled pauses (what the speech worker calls): the acoustic rules' hits and
 * the aligned fillers the audio bears out, combined; one analysis of the audio serves both.
 */
export function findFilledPauses(
  samples: Float32Array,
  alignedFillers: readonly AlignedFiller[],
  opts: FilledPauseOptions & { offsetMs?: number } = {},
): FilledPause[] {
  const joined = joinAlignedPieces(alignedFillers);
  const { pauses, evidence } = detectFilledPausesAndEvidence(samples, joined, opts);
  return combineFilledPauses(pauses, verdicts(joined, evidence));
}

const overlaps = (a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }) => a.startMs < b.endMs && b.startMs < a.endMs;

/**
 * One utterance's filled pauses: the acoustic hits and the accepted aligned fillers, an overlap
 * of the two being one pause found by both. Time order.
 */
export function combineFilledPauses(acoustic: readonly FilledPause[], candidates: readonly AlignedCandidate[]): FilledPause[] {
  const out: FilledPause[] = acoustic.map((p) => {
    const named = candidates.find((c) => overlaps(c, p));
    return { ...p, foundBy: 'acoustic' as const, ...(named ? { name: named.name } : {}) };
  });
  for (const c of candidates) {
    if (!c.accepted) continue;
    const same = out.filter((p) => overlaps(p, c));
    if (same.length > 0) {
      for (const p of same) {
        p.startMs = Math.min(p.startMs, c.startMs);
        p.endMs = Math.max(p.endMs, c.endMs);
        p.durationMs = p.endMs - p.startMs;
        p.name = c.name;
        p.foundBy = 'both';
      }
      continue;
    }
    const e = c.evidence;
    // The spectral change of the frames that bore it out: its voiced frames, or (step 4) all loud ones.
    const flux = e.voicedShare >= MIN_VOICED_SHARE && Number.isFinite(e.medianFluxDb) ? e.medianFluxDb : e.loudMedianFluxDb;
    out.push({
      startMs: c.startMs,
      endMs: c.endMs,
      durationMs: c.endMs - c.startMs,
      meanF0Hz: e.meanF0Hz,
      f0SpreadSemitones: e.f0SpreadSemitones,
      spectralFlux: flux,
      score: Math.min(1, Math.max(0, 1 - flux / MAX_ALIGNED_FLUX_DB)),
      name: c.name,
      foundBy: 'alignment',
    });
  }
  return out.sort((a, b) => a.startMs - b.startMs);
}
