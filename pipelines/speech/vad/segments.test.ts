import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAttuneError } from '../../../lib/errors.js';
import { createRandom } from '../../../lib/prng.js';
import { type Pause, type SegmentOptions, SegmentTracker, findPauses, pauseBetween, silentPauses, speechSegments } from './segments.js';

// 10 ms chunks at 16 kHz make chunk i span [i·10, i·10 + 10) ms: easy to read by hand.
const tenMs: SegmentOptions = { sampleRate: 16_000, chunkSamples: 160, speechPadMs: 0 };
const seq = (...runs: [number, number][]) => runs.flatMap(([p, n]) => Array<number>(n).fill(p));
const spans = (opts: SegmentOptions, probs: number[]) =>
  speechSegments(probs, { ...tenMs, ...opts }).map((s) => [s.startMs, s.endMs]);

test('speech starts at the onset threshold and a value between the thresholds neither starts nor ends it', () => {
  // 0.4 is between offset 0.35 and onset 0.5: before speech it does not start it, inside it does not end it.
  const probs = seq([0, 5], [0.4, 10], [0.6, 10], [0.4, 20], [0.6, 5], [0.1, 20]);
  assert.deepEqual(spans({}, probs), [[150, 500]]);
});

test('a dip shorter than minSilenceMs stays inside the segment; a longer one splits it', () => {
  const dip = (n: number) => seq([0, 5], [0.9, 20], [0.1, n], [0.9, 20], [0, 20]);
  assert.deepEqual(spans({ minSilenceMs: 100 }, dip(9)), [[50, 540]]);
  assert.deepEqual(spans({ minSilenceMs: 100 }, dip(10)), [[50, 250], [350, 550]]);
  // A chunk back at the onset cancels the pending end: two 60 ms dips do not add up to 100 ms.
  const twoDips = seq([0.9, 10], [0.1, 6], [0.9, 1], [0.1, 6], [0.9, 10], [0, 20]);
  assert.deepEqual(spans({ minSilenceMs: 100 }, twoDips), [[0, 330]]);
  // A value between the thresholds does not cancel it: the silence runs on through it.
  const softDip = seq([0.9, 10], [0.1, 6], [0.4, 1], [0.1, 6], [0.9, 10], [0, 20]);
  assert.deepEqual(spans({ minSilenceMs: 100 }, softDip), [[0, 100], [230, 330]]);
});

test('speech shorter than minSpeechMs is dropped', () => {
  const probs = seq([0, 10], [0.9, 9], [0, 20], [0.9, 10], [0, 20]);
  assert.deepEqual(spans({ minSpeechMs: 100 }, probs), [[390, 490]]);
  assert.deepEqual(spans({ minSpeechMs: 90 }, probs), [[100, 190], [390, 490]]);
});

test('padding widens segments, stops at 0 and the stream end, and never overlaps the neighbour', () => {
  const probs = seq([0.9, 10], [0, 12], [0.9, 10], [0, 3]);
  const segs = speechSegments(probs, { ...tenMs, speechPadMs: 30, minSilenceMs: 100 }, 35 * 160);
  // First: starts at 0 (no room before), ends 30 ms late. Second: 30 ms early, end clamped by the stream end.
  assert.deepEqual(segs.map((s) => [s.startMs, s.endMs]), [[0, 130], [190, 350]]);
  assert.deepEqual(segs.map((s) => [s.speechStartSample / 16, s.speechEndSample / 16]), [[0, 100], [220, 320]]);
  // Padding larger than half the minimum silence: a closed segment's end takes half of minSilenceMs
  // (all a streaming tracker has seen when it closes), and the next start cannot overlap it.
  const wide = speechSegments(seq([0.9, 10], [0, 10], [0.9, 10], [0, 30]), { ...tenMs, speechPadMs: 80, minSilenceMs: 100 });
  assert.deepEqual(wide.map((s) => [s.startMs, s.endMs]), [[0, 150], [150, 350]]);
});

test('flush closes a segment still open at the end of the stream', () => {
  const tracker = new SegmentTracker(tenMs);
  assert.deepEqual(tracker.push(seq([0, 5], [0.9, 20]), 0), []);
  const [seg] = tracker.flush();
  assert.equal(seg.startMs, 50);
  assert.equal(seg.endMs, 250);
  assert.deepEqual(tracker.flush(), [], 'nothing left after a flush');
});

test('streaming in random pieces gives the same segments as one batch', () => {
  const rand = createRandom(7);
  // Runs of random length and level so that every rule gets exercised.
  const probs: number[] = [];
  while (probs.length < 5000) probs.push(...Array<number>(1 + Math.floor(rand() * 15)).fill(rand()));
  for (const opts of [{}, { chunkSamples: 160, speechPadMs: 50 }, { minSilenceMs: 40, minSpeechMs: 250 }] as SegmentOptions[]) {
    const batch = speechSegments(probs, opts);
    assert.ok(batch.length > 20, `enough segments to compare (${batch.length})`);
    const tracker = new SegmentTracker(opts);
    const chunk = opts.chunkSamples ?? 512;
    const streamed = [];
    for (let i = 0; i < probs.length; ) {
      const n = Math.min(probs.length - i, Math.floor(rand() * 40));
      streamed.push(...tracker.push(probs.slice(i, i + n), i * chunk));
      i += n;
    }
    streamed.push(...tracker.flush());
    assert.deepEqual(streamed, batch);
  }
});

test('pushing probabilities that go back in time is an error', () => {
  const tracker = new SegmentTracker();
  tracker.push([0.1, 0.2], 0);
  assert.throws(() => tracker.push([0.1], 512), (e: unknown) => isAttuneError(e) && e.code === 'validation_error');
});

test('bad options are coded errors', () => {
  assert.throws(() => new SegmentTracker({ onsetThreshold: 0.3, offsetThreshold: 0.5 }), (e: unknown) => isAttuneError(e) && e.code === 'validation_error');
  assert.throws(() => new SegmentTracker({ chunkSamples: 0 }), (e: unknown) => isAttuneError(e) && e.code === 'validation_error');
});

test('pauses are gaps of at least minPauseMs between segments, long from longPauseMs; edges are not pauses', () => {
  // Speech 200–500, 700–900 (gap 200), 1200–1400 (gap 300), 2500–2700 (gap 1100); silence before and after.
  const probs = seq([0, 20], [0.9, 30], [0, 20], [0.9, 20], [0, 30], [0.9, 20], [0, 110], [0.9, 20], [0, 200]);
  const segs = speechSegments(probs, { ...tenMs, speechPadMs: 30 });
  assert.equal(segs.length, 4);
  const pauses = findPauses(segs);
  // Measured between the unpadded speech edges, so the 30 ms padding does not shorten them.
  assert.deepEqual(pauses, [
    { startMs: 900, endMs: 1200, durationMs: 300, kind: 'natural' },
    { startMs: 1400, endMs: 2500, durationMs: 1100, kind: 'long' },
  ]);
  // Configurable: a 150 ms threshold also counts the 200 ms gap; a 1200 ms long threshold makes the last natural.
  const loose = findPauses(segs, { minPauseMs: 150, longPauseMs: 1200 });
  assert.deepEqual(loose.map((p) => [p.startMs, p.durationMs, p.kind]), [[500, 200, 'natural'], [900, 300, 'natural'], [1400, 1100, 'natural']]);
  assert.equal(pauseBetween(segs[0], segs[1]), null);
  assert.deepEqual(findPauses(segs.slice(0, 1)), [], 'one segment: the silence around it is not a pause');
});

test('silentPauses cuts the fillers out of pauses: the silent parts of at least minPauseMs stay, each of its own kind', () => {
  const pause = (startMs: number, endMs: number): Pause => ({ startMs, endMs, durationMs: endMs - startMs, kind: endMs - startMs >= 1000 ? 'long' : 'natural' });
  const pauses = [pause(1000, 3100), pause(5000, 5400), pause(8000, 9500)];
  // Nothing inside: the same pauses, the same objects.
  assert.deepEqual(silentPauses(pauses, [{ startMs: 0, endMs: 900 }, { startMs: 3100, endMs: 3500 }, { startMs: 9500, endMs: 9800 }]), pauses);
  // "hmm … hmm … um" inside the long pause: three silences of 400, 300 and 200 ms; the last is under 250 ms.
  const fillers = [{ startMs: 1400, endMs: 2000 }, { startMs: 2300, endMs: 2900 }, { startMs: 800, endMs: 1000 }];
  assert.deepEqual(silentPauses(pauses, fillers), [pause(1000, 1400), pause(2000, 2300), pause(5000, 5400), pause(8000, 9500)]);
  // A filler over a pause's edge trims it; one covering it removes it; overlapping fillers cut once.
  assert.deepEqual(silentPauses(pauses, [{ startMs: 7900, endMs: 8300 }, { startMs: 5000, endMs: 5400 }]), [pause(1000, 3100), pause(8300, 9500)]);
  assert.deepEqual(silentPauses([pause(0, 2000)], [{ startMs: 300, endMs: 900 }, { startMs: 500, endMs: 1100 }]), [pause(0, 300), pause(1100, 2000)]);
  // The long pause split into natural ones; the thresholds are the pause options'.
  assert.deepEqual(silentPauses([pause(0, 2000)], [{ startMs: 1100, endMs: 1200 }]).map((p) => p.kind), ['long', 'natural']);
  assert.deepEqual(silentPauses([pause(0, 2000)], [{ startMs: 1100, endMs: 1200 }], { minPauseMs: 900, longPauseMs: 1500 }), [{ ...pause(0, 1100), kind: 'natural' }]);
  // Empty and reversed intervals cut nothing.
  assert.deepEqual(silentPauses(pauses, [{ startMs: 1500, endMs: 1500 }, { startMs: 2000, endMs: 1500 }]), pauses);
});

test('splitAt cuts the open segment without padding, opens the next at the cut, and leaves no pause between them', () => {
  const tracker = new SegmentTracker({ speechPadMs: 32 });
  assert.equal(tracker.openStartSample, null);
  assert.deepEqual(tracker.splitAt(1024), [], 'nothing open, nothing to split');
  // Silence for 4 chunks, then speech.
  assert.deepEqual(tracker.push([0, 0, 0, 0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], 0), []);
  assert.equal(tracker.openStartSample, 4 * 512 - 512, 'padded start: one 512-sample pad (32 ms) before the onset chunk');
  assert.deepEqual(tracker.splitAt(3 * 512), [], 'a cut before the speech start does nothing');
  assert.deepEqual(tracker.splitAt(11 * 512), [], 'a cut beyond what was seen does nothing');
  const [first] = tracker.splitAt(8 * 512);
  assert.equal(first.startSample, 3 * 512);
  assert.equal(first.endSample, 8 * 512);
  assert.equal(first.speechEndSample, 8 * 512);
  assert.equal(tracker.openStartSample, 8 * 512, 'the next segment starts exactly at the cut');
  const rest = [...tracker.push([0.9, 0, 0, 0, 0, 0], 10 * 512), ...tracker.flush()];
  assert.equal(rest.length, 1);
  assert.equal(rest[0].startSample, 8 * 512);
  assert.equal(rest[0].speechStartSample, 8 * 512);
  assert.deepEqual(findPauses([first, rest[0]]), [], 'a cut is not a pause');
});
