// Token ids → text for Moonshine. Moonshine's English models were trained on the LLaMA
// SentencePiece vocabulary (32,000 pieces), which llama-tokenizer-js carries; the decoder's
// logits are 32,768 wide, so ids from 32,000 up are padding/special slots with no text.
import { createRequire } from 'node:module';
import type LlamaTokenizerModule from 'llama-tokenizer-js';

// Loaded at the first use, not with the speech pipeline: the vocabulary costs ~150 ms of CPU to
// load, which every process start would pay before listening (an ingest process, or `attune
// all` restarted after a crash, has no speech to decode yet). require() of this ES module is
// synchronous on Node >= 20.19 (the engines field), so the functions below stay synchronous.
let loaded: typeof LlamaTokenizerModule | undefined;
export function llamaTokenizer(): typeof LlamaTokenizerModule {
  return (loaded ??= (createRequire(import.meta.url)('llama-tokenizer-js') as { default: typeof LlamaTokenizerModule }).default);
}

export const BOS_TOKEN = 1;
export const EOS_TOKEN = 2;
const UNK_TOKEN = 0;

/** Number of pieces with text; ids at or above this are special and never printed. */
export const vocabularySize = (): number => llamaTokenizer().vocabById.length;

/** True for ids that carry text (not <unk>, <s>, </s> or the padded slots above the vocabulary). */
export function isTextToken(id: number): boolean {
  return Number.isInteger(id) && id > EOS_TOKEN && id < vocabularySize() && id !== UNK_TOKEN;
}

/**
 * Decodes ids to text: drops special ids, joins SentencePiece pieces (▁ is a word start,
 * <0xNN> pieces are raw UTF-8 bytes) and trims the leading space of the first word.
 */
export function decodeTokens(ids: readonly number[]): string {
  const text = ids.filter(isTextToken);
  if (text.length === 0) return '';
  // add_bos_token=false: we already removed <s>; add_preceding_space=false keeps the raw
  // string so that the trim below is the only place leading space is handled.
  return llamaTokenizer().decode(text, false, false).trim();
}

/**
 * Like decodeTokens, for partial results: a byte-fallback character split over several
 * tokens decodes to U+FFFD until its last byte arrives, so a trailing U+FFFD is held back.
 */
export function decodePartial(ids: readonly number[]): string {
  return decodeTokens(ids).replace(/\uFFFD+$/, '').trimEnd();
}

/** Text → ids (no BOS), for tests that check the vocabulary Moonshine emits. */
export function encodeText(text: string): number[] {
  return llamaTokenizer().encode(text, false, true);
}
