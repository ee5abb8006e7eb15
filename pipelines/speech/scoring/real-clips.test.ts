// Scores of real recordings, end to end from audio: Silero voice activity (needs
// `node models/fetch.mjs --only silero`), pauses, pitch and volume from pipelines/speech, word
// counts from the clips' exact transcripts, and the rubric built into a temporary folder.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRubricModel } from '../../../models/rubric/build.mjs';
import { computeSpeechFeatures, createSpeechFeaturePlan, rmsDbfs, SPEECH_SAMPLE_RATE } from '../index.js';
import { unionMs } from '../metrics/rates.js';
import { findPauses, speechSegments } from '../vad/segments.js';
import { SileroVad } from '../vad/silero.js';
import { readWavFile } from '../wav.test-util.js';
import { scoreFeatures, type ScoreFeatures } from './features.js';
import { ScoreModel, type SpeechScores } from './model.js';
import { REAL_SPEECH } from '../fillers/filler-clips.test-util.js';

const speechDir = REAL_SPEECH;
let dir: string;
let model: ScoreModel;
const results = new Map<string, { features: ScoreFeatures; scores: SpeechScores }>();

async function scoreClip(name: string): Promise<{ features: ScoreFeatures; scores: SpeechScores }> {
  const { samples, sampleRate } = readWavFile(join(speechDir, `${name}.wav`));
  assert.equal(sampleRate, SPEECH_SAMPLE_RATE);
  const wordCount = readFileSync(join(speechDir, `${name}.txt`), 'utf8').trim().split(/\s+/).length;
  const vad = await SileroVad.load();
  const segments = speechSegments(await vad.process(samples), {}, samples.length);
  const track = computeSpeechFeatures(samples, createSpeechFeaturePlan());
  // Seconds at least half covered by voice activity count as seconds with speech.
  const secondVolumesDbfs: number[] = [];
  for (let s = 0; (s + 1) * sampleRate <= samples.length; s++) {
    const covered = unionMs(segments.map((g) => ({ startMs: Math.max(g.startMs, s * 1000), endMs: Math.min(g.endMs, (s + 1) * 1000) })));
    if (covered >= 500) secondVolumesDbfs.push(rmsDbfs(samples, s * sampleRate, sampleRate));
  }
  const features = scoreFeatures({
    durationMs: (samples.length / sampleRate) * 1000,
    speechMs: unionMs(segments),
    wordCount,
    pauses: findPauses(segments),
    fillerCount: 0,
    repetitionCount: 0,
    pitchHz: track.f0Hz.filter((_, i) => track.voiced[i] === 1),
    secondVolumesDbfs,
  });
  return { features, scores: await model.score(features) };
}

const clips = ['jfk_1961_inaugural_M', 'librispeech_3536-23268-0010_F', 'speechcommands_yes_no_go_stop_4spk'];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-scoring-real-'));
  model = await ScoreModel.load({ path: buildRubricModel({ modelsDir: dir }).path });
  for (const name of clips) results.set(name, await scoreClip(name));
});

after(async () => {
  await model?.release();
  rmSync(dir, { recursive: true, force: true });
});

test('JFK (22 words in 11 s, oratory with clear pauses): 120 wpm, pauses, varied pitch, high clarity', () => {
  const { features, scores } = results.get('jfk_1961_inaugural_M')!;
  assert.ok(Math.abs(features.speaking_rate_wpm - 120) < 0.5, `speaking rate ${features.speaking_rate_wpm}`);
  assert.ok(features.articulation_rate_wpm > 140 && features.articulation_rate_wpm < 200, `articulation ${features.articulation_rate_wpm}`);
  assert.ok(features.pause_ratio > 0.1 && features.pause_ratio < 0.4, `pause ratio ${features.pause_ratio}`);
  assert.ok(features.pitch_variability_st > 3, `pitch variability ${features.pitch_variability_st}`);
  assert.ok(scores.scores.clarity > 90, `clarity ${scores.scores.clarity}`);
  assert.ok(scores.scores.overall > 75, `overall ${scores.scores.overall}`);
});

test('four isolated command words in 4 s score lower on pace and overall than connected speech', () => {
  const commands = results.get('speechcommands_yes_no_go_stop_4spk')!;
  assert.ok(Math.abs(commands.features.speaking_rate_wpm - 60) < 0.5);
  for (const name of ['jfk_1961_inaugural_M', 'librispeech_3536-23268-0010_F']) {
    const other = results.get(name)!;
    assert.ok(commands.scores.scores.pace < other.scores.scores.pace - 20, `pace ${commands.scores.scores.pace} vs ${name} ${other.scores.scores.pace}`);
    assert.ok(commands.scores.scores.overall < other.scores.scores.overall - 10, `overall ${commands.scores.scores.overall} vs ${name} ${other.scores.scores.overall}`);
  }
});

test('every real clip has scores in 0..100 whose factors add up', () => {
  for (const [name, { scores }] of results) {
    for (const [score, value] of Object.entries(scores.scores)) {
      assert.ok(value >= 0 && value <= 100, `${name} ${score} ${value}`);
      const points = Object.values(scores.factors![score as keyof typeof scores.scores]).reduce((a, b) => a + b!, 0);
      assert.ok(Math.abs(points - value) < 1e-3, `${name} ${score}`);
    }
  }
});
