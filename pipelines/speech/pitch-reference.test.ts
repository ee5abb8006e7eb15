// The pitch tracker against independent references on real recordings (issue 7, item 5):
//  - Praat's autocorrelation pitch (To Pitch (ac), 60–500 Hz, 10 ms; fixtures/praat-pitch.json,
//    made by scripts/reference/praat_pitch.py) on every shared speech clip and the PTDB-TUG clip;
//  - the PTDB-TUG laryngograph track (RAPT on the laryngograph signal, 10 ms frames, 0 = unvoiced)
//    of speaker F01's "She had your dark suit in greasy wash water all year." (16 kHz copy).
// Pass marks are the "Done when": GPE ≤ 2 % on the frames both call voiced and voicing
// recall ≥ 90 % of Praat's voiced frames; on PTDB-TUG, GPE ≤ 2 % and voicing agreement ≥ 94 %.
// The tracker's parameters were chosen on other clips (the "development" clips of the fixture and
// synthetic signals), never on these.
//
// Alignment of the laryngograph track: reference frame k is taken at k · 10 ms + 25 ms. That
// offset was chosen without our tracker, from Praat against the laryngograph on the same clip: the
// mean relative f0 difference on frames both voice (gross errors aside) is smallest there (1.2 %,
// against 3.4 % at 0 ms and 2.2 % at 10 ms) and Praat's voicing agreement peaks at 15–25 ms (94.6–94.8 %). Our
// frame i is centred at i · 10 ms + 15 ms, so reference frame k pairs with our frame k + 1.
// The PTDB-TUG documentation itself could not be consulted from this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeSpeechFeatures, createSpeechFeaturePlan, pitchStats } from './index.js';
import { SHARED_DATA_DIR, praatClips, ptdbReference, referenceStats, scoreAgainst } from './pitch-eval.test-util.js';
import { readWavFile } from './wav.test-util.js';

const PTDB_FIRST_FRAME_S = 0.025;
const plan = createSpeechFeaturePlan();
const evaluation = praatClips().filter((c) => c.role === 'evaluation');

function features(name: string) {
  const wav = readWavFile(SHARED_DATA_DIR + name);
  assert.equal(wav.sampleRate, 16_000);
  return computeSpeechFeatures(wav.samples, plan);
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

test('the fixture covers every shared speech clip and the PTDB-TUG clip', () => {
  const names = evaluation.map((c) => c.name);
  for (const wav of ['jfk_1961_inaugural_M.wav', 'librispeech_251-118436-0001_M.wav', 'librispeech_251-137823-0002_M.wav', 'librispeech_3536-23268-0010_F.wav', 'ami_ES2011a_headset0_40-46s_F_spontaneous.wav', 'speechcommands_yes_no_go_stop_4spk.wav']) {
    assert.ok(names.includes(`speech/${wav}`), wav);
  }
  assert.ok(names.includes('pitch/mic_F01_sa1_16k.wav'));
});

for (const clip of evaluation) {
  test(`${clip.name} against Praat: GPE ≤ 2 % on frames both call voiced, recall ≥ 90 % of Praat's voiced frames`, () => {
    const f = features(clip.name);
    const s = scoreAgainst(f, clip);
    console.log(
      `${clip.name}: GPE ${pct(s.gpe)} (${s.grossHigh} above, ${s.grossLow} below) of ${s.bothVoiced} frames both voiced, ` +
        `recall ${pct(s.recall)}, agreement ${pct(s.agreement)}`,
    );
    // Nearly every Praat frame has a frame of ours within 5 ms.
    assert.ok(s.compared >= clip.f0Hz.length - 2, `${s.compared} of ${clip.f0Hz.length} frames paired`);
    assert.ok(s.bothVoiced >= 50, `only ${s.bothVoiced} frames both voiced`);
    assert.ok(s.gpe <= 0.02, `GPE ${pct(s.gpe)}`);
    assert.ok(s.recall >= 0.9, `recall ${pct(s.recall)}`);
  });
}

test('PTDB-TUG F01 sa1 against the laryngograph: GPE ≤ 2 %, voicing agreement ≥ 94 %', () => {
  const f = features('pitch/mic_F01_sa1_16k.wav');
  const ref = ptdbReference(PTDB_FIRST_FRAME_S);
  assert.equal(ref.f0Hz.length, 793);
  const s = scoreAgainst(f, ref);
  console.log(
    `PTDB-TUG F01 sa1: ${s.compared} frames, GPE ${pct(s.gpe)} of ${s.bothVoiced} both voiced, ` +
      `voicing agreement ${pct(s.agreement)}, reference-voiced recall ${pct(s.recall)}`,
  );
  assert.ok(s.compared >= 780);
  assert.ok(s.gpe <= 0.02, `GPE ${pct(s.gpe)}`);
  assert.ok(s.agreement >= 0.94, `voicing agreement ${pct(s.agreement)}`);

  // The reference median is 192.1 Hz (metadata.json); an octave error would be 100 % off.
  const stats = pitchStats(f.f0Hz, f.voiced);
  assert.ok(stats.medianHz !== null && Math.abs(stats.medianHz / 192.1 - 1) < 0.05, `median ${stats.medianHz}`);
  assert.equal(stats.monotone, false);
});

test("JFK session pitch statistics within a semitone of Praat's (mean, median, 5th and 95th percentiles)", () => {
  // The issue found mean 259 Hz, SD 84 Hz, max 485 Hz where Praat gives 236 Hz and 37 Hz: octave-up
  // frames pull the mean and the spread up. A semitone (5.9 %) is the tolerance of a pitch that
  // sounds the same; an octave error moves a statistic by 100 %.
  const clip = evaluation.find((c) => c.name === 'speech/jfk_1961_inaugural_M.wav')!;
  const f = features(clip.name);
  const ours = pitchStats(f.f0Hz, f.voiced);
  const praat = pitchStats(Float32Array.from(clip.f0Hz), Uint8Array.from(clip.f0Hz, (v) => (v > 0 ? 1 : 0)));
  const ref = referenceStats(clip);
  assert.ok(Math.abs(praat.meanHz! - ref.meanHz) < 1e-3);
  console.log(
    `JFK: ours mean ${ours.meanHz!.toFixed(0)} SD ${ours.sdHz!.toFixed(0)} p5 ${ours.p5Hz!.toFixed(0)} median ${ours.medianHz!.toFixed(0)} ` +
      `p95 ${ours.p95Hz!.toFixed(0)} max ${ours.maxHz!.toFixed(0)} Hz, variability ${ours.variabilitySemitones!.toFixed(2)} st; ` +
      `Praat mean ${praat.meanHz!.toFixed(0)} SD ${praat.sdHz!.toFixed(0)} p5 ${praat.p5Hz!.toFixed(0)} median ${praat.medianHz!.toFixed(0)} ` +
      `p95 ${praat.p95Hz!.toFixed(0)} max ${praat.maxHz!.toFixed(0)} Hz, variability ${praat.variabilitySemitones!.toFixed(2)} st`,
  );
  const semitones = (a: number, b: number) => Math.abs(12 * Math.log2(a / b));
  assert.ok(semitones(ours.meanHz!, praat.meanHz!) < 1, `mean ${ours.meanHz} vs ${praat.meanHz}`);
  assert.ok(semitones(ours.medianHz!, praat.medianHz!) < 1, `median ${ours.medianHz} vs ${praat.medianHz}`);
  assert.ok(semitones(ours.p5Hz!, praat.p5Hz!) < 1, `p5 ${ours.p5Hz} vs ${praat.p5Hz}`);
  assert.ok(semitones(ours.p95Hz!, praat.p95Hz!) < 1, `p95 ${ours.p95Hz} vs ${praat.p95Hz}`);
  // The spread on the semitone scale, within one semitone of Praat's.
  assert.ok(Math.abs(ours.variabilitySemitones! - praat.variabilitySemitones!) < 1, `variability ${ours.variabilitySemitones} vs ${praat.variabilitySemitones}`);
});
