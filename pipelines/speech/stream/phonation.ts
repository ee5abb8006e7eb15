// Phonation time: how long the speaker was actually sounding, the denominator of the
// articulation rate. Voice activity detection answers "is this speech?" per 32 ms chunk and
// holds on through the quiet tails of words and the short gaps between them; for isolated
// words it can count twice the time the voice sounded. The articulation-rate literature (de
// Jong & Wempe 2009, the Praat script most studies use) counts phonation time instead: the
// time whose intensity is within 25 dB of the recording's "almost maximum", the 0.99 quantile
// of its frame levels (the script's 2010 revision: the maximum itself let one loud non-speech
// burst, a click or a knock, raise the threshold over most of the speech), with silences of at
// least 250 ms removed and sounding stretches under 50 ms ignored. We do the same on our 30 ms
// frame levels, and only inside voice activity (± 100 ms), so loud non-speech noise does not
// count. Pure: numbers in, spans out. Checked against Praat itself (test/fixtures/speech/,
// made the script's way).
//
// What the quantile does not fix: a loud non-speech sound lasting more than 1 % of the
// recording (a loud sound of 1.5 s in the 25.7 s shared cold clip) is the "almost maximum" too,
// and the speech under it is counted silent (that clip: 3.1 s of its 13.4 s of voice activity).
// Praat's reference is no help there either: it finds that clip sounding almost throughout,
// its noise floor being within 25 dB.
import type { SpeechSegment } from '../vad/segments.js';
import type { TimeSpan } from '../metrics/types.js';

export interface PhonationOptions {
  /** Frames below (the reference level − this) are silent (Praat's silence threshold; default 25 dB). */
  silenceDb?: number;
  /** The reference level is this quantile of the frame levels (de Jong & Wempe's 0.99: the "almost maximum"). */
  referenceQuantile?: number;
  /** Silences shorter than this inside sounding stretches are bridged (default 250 ms). */
  minSilentMs?: number;
  /** Sounding stretches shorter than this are ignored (default 50 ms). */
  minSoundingMs?: number;
  /** How far outside a voice activity segment a frame may still count (default 100 ms). */
  vadMarginMs?: number;
  /** Frame hop and length, ms (the feature plan's: 10 and 30). */
  hopMs?: number;
  frameMs?: number;
  sampleRate?: number;
}

/** Sounding spans (ms) of a stream from its per-frame levels and its voice activity segments. */
export function phonationSpans(frameDbfs: Float32Array, segments: readonly SpeechSegment[], opts: PhonationOptions = {}): TimeSpan[] {
  const silenceDb = opts.silenceDb ?? 25;
  const minSilent = opts.minSilentMs ?? 250;
  const minSounding = opts.minSoundingMs ?? 50;
  const margin = opts.vadMarginMs ?? 100;
  const hop = opts.hopMs ?? 10;
  const half = (opts.frameMs ?? 30) / 2;
  const rate = opts.sampleRate ?? 16_000;
  if (frameDbfs.length === 0 || segments.length === 0) return [];
  const threshold = quantile(frameDbfs, opts.referenceQuantile ?? 0.99) - silenceDb;
  const vad = segments.map((s) => [(s.speechStartSample * 1000) / rate - margin, (s.speechEndSample * 1000) / rate + margin]);

  // Each frame stands for the hop-long slice around its centre.
  const runs: TimeSpan[] = [];
  let v = 0;
  for (let i = 0; i < frameDbfs.length; i++) {
    const centre = i * hop + half;
    while (v < vad.length && vad[v][1] < centre) v++;
    const inVad = v < vad.length && vad[v][0] <= centre;
    if (!inVad || !(frameDbfs[i] >= threshold)) continue;
    const from = centre - hop / 2;
    const last = runs[runs.length - 1];
    if (last && from - last.endMs < 1e-9) last.endMs = from + hop;
    else runs.push({ startMs: from, endMs: from + hop });
  }
  // Drop short sounds, then bridge short silences: Praat's order (Intensity_to_TextGrid_detectSilences
  // removes the short sounding intervals first). The other order lets a breath bump of a frame or
  // two just after a word join the word across the silence between them (the AMI headset clip:
  // word tails ~160 ms longer than Praat's).
  const bridged: TimeSpan[] = [];
  for (const r of runs) {
    if (r.endMs - r.startMs < minSounding) continue;
    const last = bridged[bridged.length - 1];
    if (last && r.startMs - last.endMs < minSilent) last.endMs = r.endMs;
    else bridged.push({ ...r });
  }
  return bridged;
}

/**
 * The q-quantile of the finite values, as Praat's "Get quantile" computes it (NUMquantile:
 * place q·n + 0.5 in the sorted values, 1-based, linear between neighbours); -Infinity when
 * there is none (digital silence throughout).
 */
export function quantile(values: Float32Array, q: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort();
  const n = sorted.length;
  if (n === 0) return -Infinity;
  if (n === 1) return sorted[0];
  const place = q * n + 0.5;
  const left = Math.min(n - 1, Math.max(1, Math.floor(place)));
  const a = sorted[left - 1];
  const b = sorted[left];
  return a === b ? a : a + (place - left) * (b - a);
}
