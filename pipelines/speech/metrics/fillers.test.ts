import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { detectFillers, filledPauseName } from './fillers.js';
import { timedWords } from './timed-words.test-util.js';

const names = (sentence: string) => detectFillers(timedWords(sentence)).map((h) => h.filler);

// [sentence, fillers expected in order]
const CASES: [string, string[]][] = [
  // filled pauses and spellings
  ['um', ['um']],
  ['Umm, I think so.', ['um']],
  ['uh what was it', ['uh']],
  ['it was uhm fine', ['um']],
  ['er, erm, err', ['er', 'er', 'er']],
  ['ah ahh that one', ['ah', 'ah']],
  ['hmm hm mm mmm', ['hmm', 'hmm', 'hmm', 'hmm']],
  ['I said uh no', ['uh']],
  // like: verb
  ['I like tea', []],
  ['they like it', []],
  ['I would like a coffee', []],
  ['she likes it and he liked it', []],
  ['we really like this place', []],
  ['do you want to like him', []],
  // like: comparison
  ['it looks like rain', []],
  ['that sounds like a plan', []],
  ['I feel like dancing', []],
  ['something like that', []],
  ["it's like a dream", []],
  ['just like that', []],
  ['more like ten', []],
  // like: filler
  ['it was, like, huge', ['like']],
  ['it was like, huge', ['like']],
  ['Like, why would you', ['like']],
  ['Like I said it was fine', ['like']],
  ['it was like so big', ['like']],
  ['we waited like five minutes', ['like']],
  ['he was like no way', ['like']],
  ['the room was like 20 degrees', ['like']],
  // you know
  ['you know the answer', []],
  ['you know that he left', []],
  ['do you know what time it is', []],
  ['as you know we start at nine', []],
  ["you know, it's fine", ['you know']],
  ['it was fine, you know.', ['you know']],
  ['you know um we should go', ['you know', 'um']],
  ['it was late you know and we left', ['you know']],
  ["y'know it's fine", ['you know']],
  ['I know you know', ['you know']],
  // I mean
  ['I mean it', []],
  ['I mean to go home', []],
  ['what I mean is simple', []],
  ['I mean what I say', []],
  ["I mean, it's fine", ['I mean']],
  ['it was I mean really big', ['I mean']],
  ['I mean we could try', ['I mean']],
  // so
  ['so that we can', []],
  ['So, what now', ['so']],
  ['So we went home', ['so']],
  ['it is so big', []],
  ['so much to do', []],
  ['and so on', []],
  ['I think so', []],
  ['I left early so I could rest', []],
  ['it was, so, fine', ['so']],
  ['And so, my friends, we begin', []],
  ['So that is that', []],
  ['Um, so we went home', ['um', 'so']],
  ['um so I think', ['um', 'so']],
  // basically / actually / literally
  ['Basically, it works', ['basically']],
  ['it works, basically', ['basically']],
  ['it actually works', []],
  ['Actually I disagree', ['actually']],
  ['it is literally true', []],
  ['it was, literally, everywhere', ['literally']],
  ['that is fine actually.', ['actually']],
  // mixed and punctuation as separate tokens
  ['So , like , um , you know , I mean , it was basically fine', ['so', 'like', 'um', 'you know', 'I mean']],
  ['I like it, you know, but um I mean it', ['you know', 'um']],
];

for (const [sentence, expected] of CASES) {
  test(`fillers: "${sentence}" → [${expected.join(', ')}]`, () => {
    assert.deepEqual(names(sentence), expected);
  });
}

test('fillers: hits carry input word index, span and times of the filler words', () => {
  const words = timedWords('well , you know , it was um huge', 200, 100);
  const hits = detectFillers(words);
  assert.deepEqual(hits, [
    { filler: 'you know', wordIndex: 2, wordCount: 2, startMs: 600, endMs: 1100 },
    { filler: 'um', wordIndex: 7, wordCount: 1, startMs: 2100, endMs: 2300 },
  ]);
});

test('fillers: case, curly apostrophes and quotes do not matter', () => {
  assert.deepEqual(names('"UM" Y’KNOW I MEAN, FINE'), ['um', 'you know', 'I mean']);
  assert.deepEqual(names('I LIKE TEA'), []);
});

test('fillers: filled-pause spellings map to canonical names and other words do not', () => {
  for (const [w, name] of [['ummm', 'um'], ['uhm', 'um'], ['uhh', 'uh'], ['erm', 'er'], ['aah', 'ah'], ['hmmm', 'hmm'], ['mm', 'hmm']] as const) {
    assert.equal(filledPauseName(w), name, w);
  }
  for (const w of ['m', 'me', 'umbrella', 'her', 'oh', 'a', 'ha', 'hum']) assert.equal(filledPauseName(w), undefined, w);
});

test('fillers: empty input and punctuation-only input give no hits', () => {
  assert.deepEqual(detectFillers([]), []);
  assert.deepEqual(detectFillers(timedWords(', . —')), []);
});

test('fillers: none in the real clip transcripts (they contain no fillers)', () => {
  const dir = join(import.meta.dirname, '../../../../shared/data/speech');
  const transcripts = readdirSync(dir).filter((f) => f.endsWith('.txt'));
  assert.ok(transcripts.length >= 6, `found ${transcripts.length} transcripts`);
  for (const f of transcripts) {
    const text = readFileSync(join(dir, f), 'utf8');
    assert.deepEqual(detectFillers(timedWords(text)), [], f);
  }
});

// What Moonshine writes when it hears a filler (seen on ../shared/data/fillers: "Um, for a
// stalliner.", "Montreal forced, uh, um, uh, uh, Um," with the base model) goes through the worker's
// word split (stream/recognition.ts splitWords) and these rules: each comes out as its filler,
// whatever punctuation it carries; a backchannel ("Mm-hmm", "Uh-huh") is not a filler.
test('fillers: the forms Moonshine writes survive the word split and are found', async () => {
  const { splitWords } = await import('../stream/recognition.js');
  const text = 'Montreal forced, uh, um, Uh... Um, Hmm. for a, Er, ah, aligner. Mm-hmm. Uh-huh.';
  const words = splitWords(text).map((w, i) => ({ text: w.text, startMs: i * 300, endMs: i * 300 + 250 }));
  assert.deepEqual(detectFillers(words).map((h) => [h.filler, words[h.wordIndex].text]), [
    ['uh', 'uh,'],
    ['um', 'um,'],
    ['uh', 'Uh...'],
    ['um', 'Um,'],
    ['hmm', 'Hmm.'],
    ['er', 'Er,'],
    ['ah', 'ah,'],
  ]);
});
