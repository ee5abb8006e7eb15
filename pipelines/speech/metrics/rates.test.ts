import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RollingWpm, countWords, rollingWpm, speechRates, unionMs } from './rates.js';
import { timedWords } from './timed-words.test-util.js';
import type { TimedWord } from './types.js';

/** `count` words evenly over [startMs, endMs), back to back. */
function evenWords(count: number, startMs: number, endMs: number, text = 'word'): TimedWord[] {
  const len = (endMs - startMs) / count;
  return Array.from({ length: count }, (_, i) => ({ text, startMs: startMs + i * len, endMs: startMs + (i + 1) * len }));
}

const close = (actual: number, expected: number, tol = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} ≠ ${expected}`);

test('rates: 150 words in 60 s with 10 s of pauses → speaking 150 wpm, articulation 180 wpm', () => {
  // Five 10 s runs of 30 words, separated by four 2.5 s pauses: 50 s of speech, 60 s in total.
  const words: TimedWord[] = [];
  const segments = [];
  for (let k = 0; k < 5; k++) {
    const start = k * 12_500;
    words.push(...evenWords(30, start, start + 10_000));
    segments.push({ startMs: start, endMs: start + 10_000 });
  }
  for (const opts of [{}, { segments }]) {
    const r = speechRates(words, opts);
    assert.equal(r.wordCount, 150);
    close(r.totalMs, 60_000);
    close(r.speakingMs, 50_000);
    close(r.speakingRateWpm, 150);
    close(r.articulationRateWpm, 180);
  }
});

test('rates: gaps under 250 ms are speaking time, longer ones are pauses', () => {
  // 4 words of 200 ms: gaps 100 ms (joined), 400 ms (pause), 249 ms (joined).
  const words = [
    { text: 'a', startMs: 0, endMs: 200 },
    { text: 'b', startMs: 300, endMs: 500 },
    { text: 'c', startMs: 900, endMs: 1100 },
    { text: 'd', startMs: 1349, endMs: 1549 },
  ];
  const r = speechRates(words);
  close(r.speakingMs, 500 + 649);
  close(r.totalMs, 1549);
  close(r.articulationRateWpm, (4 * 60_000) / 1149);
  close(speechRates(words, { shortGapMs: 500 }).speakingMs, 1549);
  close(speechRates(words, { shortGapMs: 0 }).speakingMs, 800);
});

test('rates: segments override word times and overlapping segments are merged', () => {
  const words = evenWords(10, 0, 5000);
  const r = speechRates(words, { segments: [{ startMs: 0, endMs: 2000 }, { startMs: 1500, endMs: 3000 }, { startMs: 4000, endMs: 4000 }] });
  close(r.speakingMs, 3000);
  close(r.articulationRateWpm, 200);
  close(unionMs([]), 0);
});

test('rates: fillers are counted in the headline rates and excluded from the lexical ones', () => {
  const words = timedWords('um so I think , you know , it works', 500);
  const r = speechRates(words);
  // 10 entries, two of them commas → 8 words; fillers: um, so, you know → 4 words.
  assert.equal(r.wordCount, 8);
  assert.equal(r.fillerWordCount, 4);
  assert.equal(r.lexicalWordCount, 4);
  close(r.totalMs, 5000);
  close(r.speakingRateWpm, 8 * 12);
  close(r.lexicalSpeakingRateWpm, 4 * 12);
  close(r.lexicalArticulationRateWpm * r.speakingMs, 4 * 60_000, 1e-6);
});

test('rates: empty input gives zero rates, not NaN', () => {
  const r = speechRates([]);
  assert.deepEqual([r.wordCount, r.speakingRateWpm, r.articulationRateWpm, r.totalMs], [0, 0, 0, 0]);
  assert.equal(rollingWpm([], 10_000), 0);
});

test('rates: the real clips: word counts match the manifest and rates over clip duration match its wpm', () => {
  const dir = join(import.meta.dirname, '../../../../shared/data/speech');
  const meta = JSON.parse(readFileSync(join(dir, 'metadata.json'), 'utf8')) as {
    file: string; word_count: number; duration_s: number; wpm_over_total_duration: number;
  }[];
  assert.ok(meta.length >= 6);
  for (const m of meta) {
    const text = readFileSync(join(dir, m.file.replace(/\.wav$/, '.txt')), 'utf8');
    const durationMs = m.duration_s * 1000;
    const words = timedWords(text, durationMs / text.trim().split(/\s+/).length);
    assert.equal(countWords(words), m.word_count, m.file);
    const r = speechRates(words, { totalMs: durationMs });
    assert.equal(r.fillerWordCount, 0, m.file);
    assert.ok(Math.abs(r.speakingRateWpm - m.wpm_over_total_duration) < 0.1, `${m.file}: ${r.speakingRateWpm} vs ${m.wpm_over_total_duration}`);
  }
});

test('rollingWpm: steady 120 wpm speech reads 120 once a window has passed, and counts partial words', () => {
  const words = evenWords(240, 0, 120_000); // 2 words/s, each 500 ms
  close(rollingWpm(words, 60_000), 120, 1e-6);
  close(rollingWpm(words, 45_250), 120, 1e-6); // window edge cuts words in half
  close(rollingWpm(words, 10_000), 120, 1e-6); // before 30 s: divides by elapsed time
  // A session starting at 5 s: 10 s after its start the rate divides by those 10 s.
  close(rollingWpm(evenWords(20, 5_000, 15_000), 15_000, 30_000, 5_000), 120, 1e-6);
  // Silence after speech: at 135 s only 120–105 = 15 s of the 30 s window hold speech.
  close(rollingWpm(words, 135_000), 60, 1e-6);
  close(rollingWpm(words, 200_000), 0);
  close(rollingWpm(words, 60_000, 10_000), 120, 1e-6);
});

test('rollingWpm: changes in rate show up within the window', () => {
  // 60 s at 1 word/s then 60 s at 3 words/s.
  const words = [...evenWords(60, 0, 60_000), ...evenWords(180, 60_000, 120_000)];
  close(rollingWpm(words, 60_000), 60, 1e-6);
  close(rollingWpm(words, 75_000), (15 + 45) * 2, 1e-6);
  close(rollingWpm(words, 90_000), 180, 1e-6);
});

test('RollingWpm: live reads equal the batch function and memory stays bounded', () => {
  // Irregular words: lengths 150–650 ms, gaps 0–1.5 s, deterministic pseudo-random sequence.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const words: TimedWord[] = [];
  let t = 0;
  while (t < 300_000) {
    const len = 150 + rand() * 500;
    words.push({ text: 'w', startMs: t, endMs: t + len });
    t += len + (rand() < 0.8 ? rand() * 200 : rand() * 1500);
  }
  const live = new RollingWpm();
  let next = 0;
  let maxSize = 0;
  for (let at = 1000; at <= 310_000; at += 1000) {
    // Words become known when they end (as a recogniser finalises them).
    while (next < words.length && words[next].endMs <= at) live.push(words[next++]);
    const expected = rollingWpm(words.slice(0, next), at);
    close(live.at(at), expected, 1e-9);
    maxSize = Math.max(maxSize, live.size);
  }
  assert.ok(words.length > 400, `${words.length} words`);
  assert.ok(maxSize < 150, `held ${maxSize} words`);
  assert.equal(live.at(400_000), 0);
  assert.equal(live.size, 0);
});
