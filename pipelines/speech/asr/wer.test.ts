import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseWords, wordErrors } from './wer.js';

test('normalisation drops case and punctuation but keeps apostrophes inside words', () => {
  assert.deepEqual(normaliseWords("This isn't part of your testing routine, is it?"), ['this', "isn't", 'part', 'of', 'your', 'testing', 'routine', 'is', 'it']);
  assert.deepEqual(normaliseWords('  Well-known — “quotes” ’tis  '), ['well', 'known', 'quotes', 'tis']);
  assert.deepEqual(normaliseWords(''), []);
});

test('identical texts up to case and punctuation have no errors', () => {
  const r = wordErrors('And so, my fellow Americans', 'and so my fellow americans.');
  assert.deepEqual(r, { substitutions: 0, deletions: 0, insertions: 0, referenceWords: 5, wer: 0 });
});

test('substitutions, deletions and insertions are counted separately', () => {
  // b→x (S), d dropped (D), g added (I); any other alignment costs more than 3.
  const r = wordErrors('a b c d e f', 'a x c e f g');
  assert.equal(r.substitutions, 1);
  assert.equal(r.deletions, 1);
  assert.equal(r.insertions, 1);
  assert.equal(r.referenceWords, 6);
  assert.equal(r.wer, 3 / 6);
  // Equal-cost alignments may split errors differently, but the total is the edit distance.
  assert.equal(wordErrors('the cat sat on the mat', 'the cat sit on mat now').wer, 3 / 6);
});

test('edge cases: empty hypothesis, empty reference, reordered words', () => {
  assert.equal(wordErrors('yes no go stop', '').wer, 1);
  assert.equal(wordErrors('yes no go stop', '').deletions, 4);
  assert.equal(wordErrors('', 'hello there').wer, 2);
  assert.equal(wordErrors('', '').wer, 0);
  // A swap of two words is two edits at best (Levenshtein has no transposition).
  assert.equal(wordErrors('a b c d', 'a c b d').wer, 2 / 4);
});
