// Needs the fetched model: `node models/fetch.mjs --only silero`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRandom } from '../../../lib/prng.js';
import { frameVolumes } from '../volume.js';
import { readWavFile } from '../wav.test-util.js';
import { type Pause, findPauses, speechSegments } from './segments.js';
import { SILERO_CHUNK, SileroVad } from './silero.js';
import { REAL_SPEECH } from '../fillers/filler-clips.test-util.js';

const SR = 16_000;
const speechDir = REAL_SPEECH;
const load16k = (name: string) => {
  const wav = readWavFile(`${speechDir}/${name}`);
  assert.equal(wav.sampleRate, SR);
  return wav.samples;
};
const jfk = load16k('jfk_1961_inaugural_M.wav');
const commands = load16k('speechcommands_yes_no_go_stop_4spk.wav');

let vad: SileroVad;
before(async () => {
  vad = await SileroVad.load();
});
after(async () => {
  await vad.release();
});

async function probabilitiesOf(samples: Float32Array): Promise<Float32Array> {
  vad.reset();
  return vad.process(samples);
}

const fmt = (p: Pause) => `${p.startMs.toFixed(0)}–${p.endMs.toFixed(0)} ms (${p.durationMs.toFixed(0)} ms, ${p.kind})`;

test('feeding audio in arbitrary pieces gives exactly the probabilities of feeding it whole', async () => {
  const whole = await probabilitiesOf(jfk);
  assert.equal(whole.length, Math.floor(jfk.length / SILERO_CHUNK));
  vad.reset();
  const rand = createRandom(3);
  const pieces: number[] = [];
  for (let i = 0; i < jfk.length; ) {
    // Sizes around and across the chunk size, including empty and one-sample pieces.
    const n = Math.min(jfk.length - i, [0, 1, 63, 511, 512, 513, 1700, 4000][Math.floor(rand() * 8)]);
    const probs = await vad.process(jfk.subarray(i, i + n));
    pieces.push(...probs);
    i += n;
    assert.equal(vad.nextChunkStartSample, pieces.length * SILERO_CHUNK);
  }
  assert.deepEqual(Float32Array.from(pieces), whole);
  // reset() really forgets: the same clip again gives the same numbers.
  assert.deepEqual(await probabilitiesOf(jfk), whole);
});

test('digital silence gives no speech segments', async () => {
  const silence = new Float32Array(3 * SR);
  const probs = await probabilitiesOf(silence);
  assert.ok(Math.max(...probs) < 0.1, `max p over silence ${Math.max(...probs)}`);
  assert.deepEqual(speechSegments(probs, {}, silence.length), []);
});

// Word cores from the audio itself, independent of the VAD: in each 1 s clip, the frames
// (25 ms every 10 ms) within 20 dB of that clip's loudest frame are surely the word.
function wordCoresMs(samples: Float32Array): { startMs: number; endMs: number }[] {
  const layout = { frameSize: 400, hop: 160 };
  const db = frameVolumes(samples, layout);
  const perClip = 100; // frames per 1 s clip
  const cores = [];
  for (let c = 0; c * perClip < db.length; c++) {
    const frames = db.subarray(c * perClip, Math.min(db.length, (c + 1) * perClip));
    const peak = Math.max(...frames);
    const loud = [...frames.keys()].filter((i) => frames[i] >= peak - 20);
    cores.push({ startMs: (c * perClip + loud[0]) * 10, endMs: (c * perClip + loud[loud.length - 1]) * 10 + 25 });
  }
  return cores;
}

/** Longest run of 10 ms frames below -50 dBFS within [fromMs, toMs). */
function longestSilenceMs(samples: Float32Array, fromMs: number, toMs: number): number {
  const db = frameVolumes(samples, { frameSize: 400, hop: 160 });
  let best = 0;
  let run = 0;
  for (let i = Math.ceil(fromMs / 10); i < Math.min(db.length, toMs / 10); i++) {
    run = db[i] < -50 ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best * 10;
}

// The VAD's edges are quantised to its 32 ms chunk and a core frame is 25 ms long, so a pause may
// reach into a core by up to one of each; most of it must lie in the gap.
const edgeSlackMs = 32 + 25;
function assertInGap(pause: Pause, before: { endMs: number }, after: { startMs: number }): void {
  const where = `pause ${fmt(pause)} in the gap ${before.endMs}–${after.startMs} ms`;
  assert.ok(pause.startMs >= before.endMs - edgeSlackMs && pause.endMs <= after.startMs + edgeSlackMs, where);
  const inside = Math.min(pause.endMs, after.startMs) - Math.max(pause.startMs, before.endMs);
  assert.ok(inside >= 0.75 * pause.durationMs, where);
}

test('speech commands: one segment per word, and pauses only in the silences between the words', async () => {
  const probs = await probabilitiesOf(commands);
  const cores = wordCoresMs(commands);
  assert.equal(cores.length, 4);
  // Gaps between the word cores, and the longest digital-quiet run (< −50 dBFS) in each. The first
  // speaker's clip has background noise around −40 dBFS, so only the core gap says much there.
  const gapsMs = cores.slice(1).map((c, i) => c.startMs - cores[i].endMs);
  const quietMs = cores.slice(1).map((c, i) => longestSilenceMs(commands, cores[i].endMs, c.startMs));
  console.log(`word cores (ms): ${cores.map((c) => `${c.startMs}–${c.endMs}`).join(', ')}; gaps ${gapsMs.join(', ')} ms; longest run < −50 dBFS in them ${quietMs.join(', ')} ms`);

  // "go" ends at the very end of its clip and "stop" starts soon after the next begins: the audio's
  // own gap between them is shorter than a pause, and too short for the default 100 ms split.
  assert.ok(gapsMs[0] >= 250 && gapsMs[1] >= 250, `the first two gaps are pause-sized: ${gapsMs}`);
  assert.ok(gapsMs[2] < 250 && quietMs[2] < 250, `go→stop gap ${gapsMs[2]} ms (quiet ${quietMs[2]} ms) is below the 250 ms pause threshold`);

  // Default options: 2 pauses, each between two word cores.
  const byDefault = speechSegments(probs, {}, commands.length);
  const defaultPauses = findPauses(byDefault);
  console.log(`defaults: segments ${byDefault.map((s) => `${s.startMs.toFixed(0)}–${s.endMs.toFixed(0)}`).join(', ')}; pauses ${defaultPauses.map(fmt).join(', ')}`);
  assert.equal(defaultPauses.length, 2);
  for (const [i, pause] of defaultPauses.entries()) {
    assertInGap(pause, cores[i], cores[i + 1]);
  }

  // A finer configuration finds each word alone: split at 64 ms of silence (two chunks), and an
  // offset of 0.15 so that the noisy, weakly scored "yes" (p 0.2–0.7) does not fall apart at
  // that finer split. With an 80 ms pause threshold there are then 3 pauses, one in each gap.
  const segments = speechSegments(probs, { minSilenceMs: 64, offsetThreshold: 0.15 }, commands.length);
  assert.equal(segments.length, 4, `segments ${segments.map((s) => `${s.startMs}–${s.endMs}`)}`);
  for (const [i, seg] of segments.entries()) {
    assert.ok(seg.startMs <= cores[i].startMs + 32 && seg.endMs >= cores[i].endMs - 32, `segment ${i} covers word ${i}`);
    assert.ok(seg.startMs >= i * 1000 - 100 && seg.endMs <= (i + 1) * 1000 + 100, `segment ${i} stays in clip ${i}`);
  }
  const pauses = findPauses(segments, { minPauseMs: 80 });
  console.log(`split at 64 ms, pauses ≥ 80 ms: ${pauses.map(fmt).join(', ')}`);
  assert.equal(pauses.length, 3);
  for (const [i, pause] of pauses.entries()) {
    assertInGap(pause, cores[i], cores[i + 1]);
    assert.equal(pause.kind, 'natural');
  }
});

test('real speech spliced with known silences: pauses there, durations within ±60 ms, natural/natural/long', async () => {
  // Cut the JFK clip inside words (at 1.2, 6.5 and 9.2 s, where the model is sure of speech on
  // both sides) and put 0.3, 0.8 and 1.5 s of zeros in the cuts.
  const cutsS = [1.2, 6.5, 9.2];
  const silencesS = [0.3, 0.8, 1.5];
  const bounds = [0, ...cutsS.map((s) => Math.round(s * SR)), jfk.length];
  const total = jfk.length + silencesS.reduce((a, s) => a + Math.round(s * SR), 0);
  const audio = new Float32Array(total);
  const inserted: { startMs: number; endMs: number; kind: string }[] = [];
  let at = 0;
  for (let i = 0; i < bounds.length - 1; i++) {
    audio.set(jfk.subarray(bounds[i], bounds[i + 1]), at);
    at += bounds[i + 1] - bounds[i];
    if (i < silencesS.length) {
      const n = Math.round(silencesS[i] * SR);
      inserted.push({ startMs: (at * 1000) / SR, endMs: ((at + n) * 1000) / SR, kind: silencesS[i] >= 1 ? 'long' : 'natural' });
      at += n; // already zeros
    }
  }
  const probs = await probabilitiesOf(audio);
  const pauses = findPauses(speechSegments(probs, {}, audio.length));
  console.log(`spliced JFK pauses: ${pauses.map(fmt).join(', ')}`);
  for (const silence of inserted) {
    const hits = pauses.filter((p) => p.startMs < silence.endMs && p.endMs > silence.startMs);
    assert.equal(hits.length, 1, `one pause at the silence ${silence.startMs}–${silence.endMs} ms`);
    const [pause] = hits;
    const expected = silence.endMs - silence.startMs;
    assert.ok(Math.abs(pause.durationMs - expected) <= 60, `pause ${fmt(pause)} vs ${expected} ms inserted`);
    assert.ok(Math.abs(pause.startMs - silence.startMs) <= 60 && Math.abs(pause.endMs - silence.endMs) <= 60, `pause ${fmt(pause)} at ${silence.startMs}–${silence.endMs}`);
    assert.equal(pause.kind, silence.kind);
  }
});

test('JFK clip: its pauses between phrases are found', async () => {
  const probs = await probabilitiesOf(jfk);
  const segments = speechSegments(probs, {}, jfk.length);
  const pauses = findPauses(segments);
  console.log(`JFK segments: ${segments.map((s) => `${s.startMs.toFixed(0)}–${s.endMs.toFixed(0)}`).join(', ')}`);
  console.log(`JFK pauses: ${pauses.map(fmt).join(', ')}`);
  // "And so, my fellow Americans, | ask not | what your country can do for you, | ask what you can
  // do for your country": an orator's pauses between the phrases, each 250 ms to ~1 s.
  assert.ok(pauses.length >= 3 && pauses.length <= 5, `${pauses.length} pauses`);
  for (const p of pauses) {
    // Each pause holds audio that is quiet compared with the speech around it.
    const from = Math.round((p.startMs * SR) / 1000);
    const to = Math.round((p.endMs * SR) / 1000);
    const pauseDb = Math.max(...frameVolumes(jfk.subarray(from, to), { frameSize: 400, hop: 160 }).subarray(3, -3));
    assert.ok(pauseDb < -25, `pause ${fmt(p)} peaks at ${pauseDb.toFixed(1)} dBFS`);
  }
});
