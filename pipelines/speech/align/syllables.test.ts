import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { spreadBySyllables, syllableCount } from './syllables.js';
import { numberWords } from './number-words.js';
import { letterToPhones } from './letter-to-phone.js';

// Counts as in Merriam-Webster's first pronunciation (fire, hour: one syllable; every: ev·ry).
const KNOWN: Array<[string, number]> = [
  ['the', 1], ['a', 1], ['I', 1], ['you', 1], ['yes', 1], ['queue', 1], ['fire', 1], ['make', 1],
  ['walked', 1], ['loved', 1], ['played', 1], ['makes', 1], ['comes', 1], ['goes', 1], ['types', 1],
  ['um', 1], ['uh', 1], ['hmm', 1], ['shh', 1], ["don't", 1], ["i'm", 1], ['three', 1],
  ['every', 2], ['people', 2], ['table', 2], ['little', 2], ['needed', 2], ['boxes', 2], ['changes', 2],
  ['places', 2], ['tables', 2], ['going', 2], ['being', 2], ['seeing', 2], ['quiet', 2], ['beyond', 2],
  ['player', 2], ['nation', 2], ['region', 2], ['social', 2], ['value', 2], ['fluent', 2], ['twenty', 2],
  ['business', 2], ['well-known', 2],
  ['created', 3], ['idea', 3], ['area', 3], ['radio', 3], ['video', 3], ['stadium', 3], ['easier', 3],
  ['actual', 3], ['different', 3], ['eleven', 3], ['americans', 4], ['immediately', 5],
  ['2020', 4], ['15', 2], ['3rd', 1], ['100', 3], ['1984', 5],
];

test(`syllableCount matches known counts (${KNOWN.length} words)`, () => {
  const wrong = KNOWN.filter(([w, n]) => syllableCount(w) !== n).map(([w, n]) => `${w}: ${syllableCount(w)} (expected ${n})`);
  assert.deepEqual(wrong, []);
});

test('syllableCount is at least 1 for anything, and ignores case, accents and edge punctuation', () => {
  for (const w of ['', '—', 'x', 'tsk', '...', "'"]) assert.ok(syllableCount(w) >= 1, w);
  assert.equal(syllableCount('People,'), 2);
  assert.equal(syllableCount('café'), syllableCount('cafe'));
  assert.equal(syllableCount('Don\u2019t'), 1);
});

// An independent reference: the vowel phones of each word in the CMU dictionary that soundswallower
// ships (one vowel per syllable). The dictionary is mostly names, which no spelling rule reads well.
const V = new Set(['AA', 'AE', 'AH', 'AO', 'AW', 'AY', 'EH', 'ER', 'EY', 'IH', 'IY', 'OW', 'OY', 'UH', 'UW']);
const dictPath = join(dirname(fileURLToPath(import.meta.resolve('soundswallower'))), 'model', 'en-us', 'dict.txt');
const cmu = new Map<string, number>();
for (const line of readFileSync(dictPath, 'utf8').split('\n')) {
  const [w, ...phones] = line.trim().split(/\s+/);
  if (w && /^[a-z]+$/.test(w) && !cmu.has(w)) cmu.set(w, phones.filter((p) => V.has(p)).length);
}

test('syllableCount agrees with the CMU dictionary on ≥ 90 % of its 117k plain words and on all of the 100 most common', () => {
  assert.ok(cmu.size > 100_000, `dictionary read: ${cmu.size} words`);
  let agree = 0;
  for (const [w, n] of cmu) if (syllableCount(w) === n) agree++;
  const share = agree / cmu.size;
  // Measured: 0.917.
  assert.ok(share >= 0.9, `agreement ${share.toFixed(3)}`);
  const common = ('the of and to a in is you that it he was for on are as with his they i at be this have from or one had ' +
    'by word but not what all were we when your can said there use an each which she do how their if will up other about ' +
    'out many then them these so some her would make like him into time has look two more write go see number no way could ' +
    'people my than first water been call who oil its now find long down day did get come made may part').split(' ');
  assert.equal(common.length, 100);
  assert.deepEqual(common.filter((w) => syllableCount(w) !== cmu.get(w)), []);
});

test('numberWords reads digits the way they are spoken', () => {
  assert.deepEqual(numberWords('2020'), ['twenty', 'twenty']);
  assert.deepEqual(numberWords('1905'), ['nineteen', 'oh', 'five']);
  assert.deepEqual(numberWords('2005'), ['two', 'thousand', 'five']);
  assert.deepEqual(numberWords('1900'), ['nineteen', 'hundred']);
  assert.deepEqual(numberWords('0'), ['zero']);
  assert.deepEqual(numberWords('115'), ['one', 'hundred', 'fifteen']);
  assert.deepEqual(numberWords('1000000'), ['one', 'million']);
  assert.deepEqual(numberWords('21st'), ['twenty', 'first']);
  assert.deepEqual(numberWords('40th'), ['fortieth']);
  assert.deepEqual(numberWords('90s'), ['nineties']);
  assert.deepEqual(numberWords('6s'), ['sixes']);
  assert.equal(numberWords('abc'), null);
  assert.equal(numberWords('12a'), null);
});

test('letterToPhones gives a speakable ARPAbet guess with the dictionary phone set', () => {
  const phoneset = new Set(Object.keys(JSON.parse(readFileSync(join(dirname(dictPath), 'phoneset.json'), 'utf8'))));
  for (const w of ['claflin', 'zzqx', 'kubernetes', 'tsk', 'x', 'moonshine', 'wright']) {
    const phones = letterToPhones(w);
    assert.ok(phones.length > 0, w);
    for (const p of phones) assert.ok(phoneset.has(p), `${w}: ${p} not in the phone set`);
    assert.ok(phones.some((p) => V.has(p)), `${w} has a vowel`);
  }
  // Where the rules are meant to be right, they are: these are the dictionary's own pronunciations.
  assert.deepEqual(letterToPhones('claflin'), ['K', 'L', 'AE', 'F', 'L', 'IH', 'N']);
  assert.deepEqual(letterToPhones('moonshine'), ['M', 'UW', 'N', 'SH', 'AY', 'N']);
  assert.deepEqual(letterToPhones('knox'), ['N', 'AA', 'K', 'S']);
  assert.deepEqual(letterToPhones('little'), ['L', 'IH', 'T', 'AH', 'L']);
});

test('spreadBySyllables gives each word its exact share of the span, contiguously, inside the bounds', () => {
  const words = ['the', 'people', 'created', 'um'];
  // 1 + 2 + 3 + 1 = 7 syllables over 700 ms: 100 ms each.
  const out = spreadBySyllables(words, 1000, 1700);
  assert.deepEqual(
    out.map((w) => [w.text, w.startMs, w.endMs, w.method]),
    [
      ['the', 1000, 1100, 'syllable_estimate'],
      ['people', 1100, 1300, 'syllable_estimate'],
      ['created', 1300, 1600, 'syllable_estimate'],
      ['um', 1600, 1700, 'syllable_estimate'],
    ],
  );
  // Awkward numbers: shares stay proportional, words stay contiguous, the last ends exactly at endMs.
  const odd = spreadBySyllables(['every', 'fire', 'queue', '2020', 'immediately'], 333.3, 1234.7);
  const total = 2 + 1 + 1 + 4 + 5;
  assert.equal(odd[0].startMs, 333.3);
  assert.equal(odd.at(-1)!.endMs, 1234.7);
  for (let i = 0; i < odd.length; i++) {
    if (i > 0) assert.equal(odd[i].startMs, odd[i - 1].endMs);
    const expected = ((1234.7 - 333.3) * syllableCount(odd[i].text)) / total;
    assert.ok(Math.abs(odd[i].endMs - odd[i].startMs - expected) < 1e-9, `${odd[i].text}`);
  }
});

test('spreadBySyllables: no words, one word, an empty or reversed span', () => {
  assert.deepEqual(spreadBySyllables([], 0, 1000), []);
  assert.deepEqual(spreadBySyllables(['hello'], 50, 450), [{ text: 'hello', startMs: 50, endMs: 450, method: 'syllable_estimate' }]);
  for (const w of spreadBySyllables(['a', 'b'], 500, 500)) assert.deepEqual([w.startMs, w.endMs], [500, 500]);
  for (const w of spreadBySyllables(['a', 'b'], 500, 400)) assert.deepEqual([w.startMs, w.endMs], [500, 500]);
});
