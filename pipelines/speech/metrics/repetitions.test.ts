import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectRepetitions } from './repetitions.js';
import { timedWords } from './timed-words.test-util.js';

const found = (sentence: string) => detectRepetitions(timedWords(sentence)).map((r) => [r.text, r.occurrences]);

const CASES: [string, [string, number][]][] = [
  ['I I think so', [['i', 2]]],
  ['the the cat', [['the', 2]]],
  ['we should we should go', [['we should', 2]]],
  ['I want to I want to leave', [['i want to', 2]]],
  ['I I I I mean it', [['i', 4]]],
  ['I, I think', [['i', 2]]],
  ['The The cat', [['the', 2]]],
  ['she had had enough', []],
  ['he said that that was fine', []],
  ['what it is is a problem', []],
  ['it is is broken', [['is', 2]]],
  ['very very good', []],
  ['no no no', []],
  ['um um I think', []],
  ['he said no. No one came', []],
  ['I think we should go', []],
  ['go to the the shop and and back', [['the', 2], ['and', 2]]],
  // Runs made only of fillers are fillers (detectFillers counts each word), not repetitions too.
  ['uh, um, uh, um, for a', []],
  ['you know, you know, it', []],
  // A filler phrase repeated with a word that is not a filler is a stumble.
  ['um I um I think', [['um i', 2]]],
];

for (const [sentence, expected] of CASES) {
  test(`repetitions: "${sentence}"`, () => {
    assert.deepEqual(found(sentence), expected);
  });
}

test('repetitions: positions and times of a phrase repetition', () => {
  const words = timedWords('so we should , we should go', 200, 100);
  const [r] = detectRepetitions(words);
  assert.deepEqual(r, {
    text: 'we should',
    wordIndex: 1,
    phraseLength: 2,
    occurrences: 2,
    wordCount: 5,
    startMs: 300,
    endMs: 1700,
    restartsMs: [1200],
  });
});
