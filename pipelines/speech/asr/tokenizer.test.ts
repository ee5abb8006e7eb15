import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOS_TOKEN, EOS_TOKEN, decodePartial, decodeTokens, encodeText, isTextToken, vocabularySize } from './tokenizer.js';

test('the vocabulary is LLaMA SentencePiece with 32,000 pieces', () => {
  assert.equal(vocabularySize(), 32000);
  assert.equal(isTextToken(BOS_TOKEN), false);
  assert.equal(isTextToken(EOS_TOKEN), false);
  assert.equal(isTextToken(0), false);
  assert.equal(isTextToken(31999), true);
  assert.equal(isTextToken(32000), false); // the decoder's logits are 32,768 wide
});

test('decoding strips BOS, EOS and ids above the vocabulary and joins ▁ word pieces', () => {
  const text = 'And so, my fellow Americans: ask not';
  const ids = encodeText(text);
  assert.ok(ids.length > 5);
  assert.equal(decodeTokens([BOS_TOKEN, ...ids, EOS_TOKEN]), text);
  assert.equal(decodeTokens([...ids.slice(0, 2), 32500, 0, ...ids.slice(2)]), text);
  assert.equal(decodeTokens([]), '');
  assert.equal(decodeTokens([BOS_TOKEN, EOS_TOKEN]), '');
});

test('byte-fallback pieces decode to UTF-8, and partial decoding holds back an unfinished character', () => {
  const ids = encodeText('calm 💓');
  assert.equal(decodeTokens(ids), 'calm 💓');
  // The heart is four byte pieces; with the last one missing the partial text stops before it.
  assert.equal(decodePartial(ids.slice(0, -1)), 'calm');
  assert.match(decodeTokens(ids.slice(0, -1)), /\uFFFD$/);
});
