// Word timings for the speech worker: forced alignment with soundswallower, and the syllable
// spread it falls back to.
export type { AlignedWord, WordTimingMethod } from './types.js';
export { syllableCount, spreadBySyllables } from './syllables.js';
export { numberWords } from './number-words.js';
export { letterToPhones } from './letter-to-phone.js';
export {
  type AlignOutcome,
  type AlignedFiller,
  type AlignCallOptions,
  type OptionalFillerName,
  type WordAlignerOptions,
  WordAligner,
  OPTIONAL_FILLERS,
  derivePronunciation,
  dictionaryForm,
  fillerGrammar,
  ALIGNER_SAMPLE_RATE,
} from './aligner.js';
