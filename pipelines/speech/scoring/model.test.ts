// Builds the rubric model into a temporary models folder (models/rubric/build.mjs), so this
// needs nothing fetched.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAttuneError } from '../../../lib/errors.js';
import { buildRubricModel, readRubric, type Rubric, type RubricFeature } from '../../../models/rubric/build.mjs';
import { encodeModel, type OnnxModelSpec } from '../../../models/rubric/onnx-writer.mjs';
import { FEATURE_NAMES, type ScoreFeatures } from './features.js';
import { RUBRIC_BUILD_COMMAND, SCORE_NAMES, ScoreModel, rubricModelPath, type ScoreName } from './model.js';
import { seededRandom } from '../../../test/seeded-random.js';

const COMPONENTS = ['clarity', 'pace', 'engagement', 'confidence'] as const;
const rubric: Rubric = readRubric();
let dir: string;
let model: ScoreModel;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-scoring-'));
  const { path } = buildRubricModel({ modelsDir: dir });
  model = await ScoreModel.load({ path });
});

after(async () => {
  await model?.release();
  rmSync(dir, { recursive: true, force: true });
});

// The rubric evaluated directly from its definition, in double precision: 1 inside the ideal
// band, a straight line down to 0 at the zero point on each closed side.
function bandScore(x: number, f: RubricFeature): number {
  const [lo, hi] = f.ideal;
  const [zeroLo, zeroHi] = f.zero;
  if (lo !== null && zeroLo !== null && x < lo) return x <= zeroLo ? 0 : (x - zeroLo) / (lo - zeroLo);
  if (hi !== null && zeroHi !== null && x > hi) return x >= zeroHi ? 0 : (zeroHi - x) / (zeroHi - hi);
  return 1;
}

function referenceScores(features: ScoreFeatures): { scores: Record<ScoreName, number>; subscores: Record<string, number> } {
  const subscores: Record<string, number> = {};
  for (const f of rubric.features) subscores[f.name] = bandScore(Math.fround(features[f.name as keyof ScoreFeatures]), f);
  const scores = { overall: 0 } as Record<ScoreName, number>;
  for (const s of COMPONENTS) {
    scores[s] = 100 * Object.entries(rubric.scores[s]).reduce((sum, [name, w]) => sum + w * subscores[name], 0);
    scores.overall += rubric.overall[s] * scores[s];
  }
  return { scores, subscores };
}

const random = seededRandom;

/** Values over each feature's whole scale: below its zero point, on the slopes, in the band, above. */
function randomFeatures(next: () => number): ScoreFeatures {
  const out = {} as Record<string, number>;
  for (const f of rubric.features) {
    const lo = f.zero[0] ?? (f.ideal[1] as number) - 2 * ((f.zero[1] as number) - (f.ideal[1] as number));
    const hi = f.zero[1] ?? (f.ideal[0] as number) + 2 * ((f.ideal[0] as number) - (f.zero[0] as number));
    const span = hi - lo;
    out[f.name] = lo - 0.2 * span + next() * 1.4 * span;
  }
  return out as unknown as ScoreFeatures;
}

const ideal: ScoreFeatures = {
  speaking_rate_wpm: 150,
  articulation_rate_wpm: 180,
  pause_ratio: 0.2,
  long_pauses_per_min: 1,
  mean_pause_s: 0.6,
  filler_rate_per_min: 1,
  repetition_rate_per_min: 0,
  pitch_variability_st: 4,
  pitch_range_st: 12,
  volume_variability_db: 4,
  mean_volume_dbfs: -20,
  speech_ratio: 0.8,
};

test('the rubric feature order is FEATURE_NAMES, and the model reads it from its metadata', () => {
  assert.deepEqual(rubric.features.map((f) => f.name), [...FEATURE_NAMES]);
  assert.deepEqual(model.featureNames, [...FEATURE_NAMES]);
  assert.equal(model.name, rubric.name);
});

test('ONNX scores and subscores equal a direct evaluation of the rubric on 250 random vectors (1e-4)', async () => {
  const next = random(20261122);
  const vectors = Array.from({ length: 250 }, () => randomFeatures(next));
  const results = await model.scoreBatch(vectors);
  assert.equal(results.length, vectors.length);
  let worst = 0;
  const regions = { zero: 0, slope: 0, one: 0 };
  vectors.forEach((v, i) => {
    const want = referenceScores(v);
    for (const s of SCORE_NAMES) {
      worst = Math.max(worst, Math.abs(results[i].scores[s] - want.scores[s]));
      assert.ok(Math.abs(results[i].scores[s] - want.scores[s]) <= 1e-4, `vector ${i} ${s}: ${results[i].scores[s]} vs ${want.scores[s]}`);
    }
    for (const name of FEATURE_NAMES) {
      const got = results[i].subscores[name]!;
      assert.ok(Math.abs(got - want.subscores[name]) <= 1e-6, `vector ${i} ${name}: ${got} vs ${want.subscores[name]}`);
      regions[want.subscores[name] === 0 ? 'zero' : want.subscores[name] === 1 ? 'one' : 'slope']++;
    }
  });
  // The random vectors exercise every part of the band shapes.
  assert.ok(regions.zero > 100 && regions.slope > 100 && regions.one > 100, JSON.stringify(regions));
  // One at a time gives the same as the batch.
  const single = await model.score(vectors[17]);
  assert.deepEqual(single.scores, results[17].scores);
  assert.ok(worst <= 1e-4);
});

test('ideal delivery scores 100 on every score', async () => {
  const r = await model.score(ideal);
  for (const s of SCORE_NAMES) assert.ok(r.scores[s] > 99.99, `${s} ${r.scores[s]}`);
  assert.deepEqual(r.features, ideal);
});

test('250 words per minute with 20 fillers per minute: low pace and clarity', async () => {
  const rushed = { ...ideal, speaking_rate_wpm: 250, articulation_rate_wpm: 280, filler_rate_per_min: 20 };
  const r = await model.score(rushed);
  assert.ok(r.scores.pace < 50, `pace ${r.scores.pace}`);
  assert.ok(r.scores.clarity < 50, `clarity ${r.scores.clarity}`);
  assert.ok(r.scores.overall < 75, `overall ${r.scores.overall}`);
  assert.equal(r.subscores.speaking_rate_wpm, 0);
  assert.equal(r.subscores.filler_rate_per_min, 0);
  // The reasons show in the factors: no points from rate or fillers.
  assert.equal(r.factors!.pace.speaking_rate_wpm, 0);
  assert.equal(r.factors!.clarity.filler_rate_per_min, 0);
});

test('flat pitch and volume: low engagement, other scores unaffected', async () => {
  const r = await model.score({ ...ideal, pitch_variability_st: 0.8, pitch_range_st: 2.5, volume_variability_db: 0.4 });
  assert.ok(r.scores.engagement < 20, `engagement ${r.scores.engagement}`);
  assert.ok(r.scores.pace > 99.99 && r.scores.clarity > 99.99);
});

test('weights are the rubric\'s, sum to 1 per score, and the factors sum to each score', async () => {
  const weights = model.weights!;
  for (const s of COMPONENTS) assert.deepEqual(weights[s], rubric.scores[s]);
  for (const s of SCORE_NAMES) {
    const sum = Object.values(weights[s]).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `${s} weights sum ${sum}`);
  }
  for (const name of FEATURE_NAMES) {
    const expected = COMPONENTS.reduce((sum, s) => sum + rubric.overall[s] * (rubric.scores[s][name] ?? 0), 0);
    assert.ok(Math.abs((weights.overall[name] ?? 0) - expected) < 1e-12, `overall weight of ${name}`);
  }
  const next = random(7);
  for (const v of [ideal, ...Array.from({ length: 20 }, () => randomFeatures(next))]) {
    const r = await model.score(v);
    for (const s of SCORE_NAMES) {
      const points = Object.values(r.factors![s]).reduce((a, b) => a + b!, 0);
      assert.ok(Math.abs(points - r.scores[s]) < 1e-3, `${s}: factors ${points} vs score ${r.scores[s]}`);
    }
  }
});

test('a non-finite feature or a missing one is a validation error', async () => {
  for (const v of [{ ...ideal, pause_ratio: Number.NaN }, { ...ideal, speech_ratio: undefined }]) {
    await assert.rejects(model.score(v as unknown as ScoreFeatures), (err: unknown) => isAttuneError(err) && err.code === 'validation_error');
  }
});

// A model with the rubric's signature but learned instead of written: a linear layer with no
// metadata (scores = x · W, subscores = x), as a trained replacement might be exported.
function trainedLikeModel(featureCount: number, outputs = ['scores', 'subscores'], metadata: Record<string, string> = {}): Uint8Array {
  const weights = Array.from({ length: featureCount * 5 }, (_, i) => ((i % 7) - 3) / 10);
  const spec: OnnxModelSpec = {
    irVersion: 8,
    opset: 13,
    graph: {
      name: 'trained',
      nodes: [
        { op: 'MatMul', inputs: ['features', 'w'], outputs: [outputs[0]] },
        { op: 'Identity', inputs: ['features'], outputs: [outputs[1]] },
      ],
      initializers: [{ name: 'w', dims: [featureCount, 5], values: weights }],
      inputs: [{ name: 'features', shape: ['N', featureCount] }],
      outputs: [
        { name: outputs[0], shape: ['N', 5] },
        { name: outputs[1], shape: ['N', featureCount] },
      ],
    },
    metadata,
  };
  return encodeModel(spec);
}

test('a model with the same signature replaces the rubric by path; without weights metadata, weights and factors are null', async () => {
  const path = join(dir, 'trained_scores_v2.onnx');
  writeFileSync(path, trainedLikeModel(FEATURE_NAMES.length));
  const trained = await ScoreModel.load({ path });
  try {
    assert.equal(trained.name, 'trained_scores_v2');
    assert.deepEqual(trained.featureNames, [...FEATURE_NAMES]);
    const r = await trained.score(ideal);
    assert.equal(r.weights, null);
    assert.equal(r.factors, null);
    // scores = x · W: check the overall column by hand.
    const expected = FEATURE_NAMES.reduce((sum, name, j) => sum + Math.fround(ideal[name]) * Math.fround((((j * 5) % 7) - 3) / 10), 0);
    assert.ok(Math.abs(r.scores.overall - expected) < 1e-3, `${r.scores.overall} vs ${expected}`);
    assert.equal(r.subscores.speaking_rate_wpm, 150);
  } finally {
    await trained.release();
  }
});

test('models of another signature are refused with a coded error', async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['renamed-output.onnx', trainedLikeModel(FEATURE_NAMES.length, ['score', 'subscores']), /missing outputs scores; unexpected outputs score/],
    ['narrow.onnx', trainedLikeModel(FEATURE_NAMES.length - 1), /input features has width 11, expected 12/],
    ['unknown-feature.onnx', trainedLikeModel(2, undefined, { 'attune.features': '["speaking_rate_wpm","shouting_rate"]' }), /attune\.features must list distinct known features/],
    ['weights-of-absent-feature.onnx', trainedLikeModel(2, undefined, {
      'attune.features': '["speaking_rate_wpm","pause_ratio"]',
      'attune.weights': JSON.stringify(Object.fromEntries(SCORE_NAMES.map((s) => [s, { speaking_rate_wpm: 0.5, speech_ratio: 0.5 }]))),
    }), /attune\.weights: overall\.speech_ratio must be a number for an input feature/],
    ['other-scores.onnx', trainedLikeModel(FEATURE_NAMES.length, undefined, { 'attune.scores': '["overall","fluency","pace","engagement","confidence"]' }), /attune\.scores must be/],
    ['not-onnx.onnx', new TextEncoder().encode('features,scores\n1,2\n'), /cannot load ONNX model/],
  ];
  for (const [file, bytes, message] of cases) {
    const path = join(dir, file);
    writeFileSync(path, bytes);
    await assert.rejects(ScoreModel.load({ path }), (err: unknown) => {
      assert.ok(isAttuneError(err), String(err));
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, message);
      return true;
    }, file);
  }
});

test('without a built rubric, the default load names the build command', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'attune-scoring-empty-'));
  const saved = process.env.ATTUNE_MODELS_DIR;
  process.env.ATTUNE_MODELS_DIR = empty;
  try {
    assert.throws(() => rubricModelPath(), (err: unknown) => isAttuneError(err) && err.code === 'unavailable' && err.message.includes(RUBRIC_BUILD_COMMAND));
    await assert.rejects(ScoreModel.load(), (err: unknown) => isAttuneError(err) && err.code === 'unavailable');
    buildRubricModel({ modelsDir: empty });
    const rubricModel = await ScoreModel.load();
    assert.equal(rubricModel.path, join(empty, 'rubric', 'speech_rubric_v1.onnx'));
    await rubricModel.release();
  } finally {
    if (saved === undefined) delete process.env.ATTUNE_MODELS_DIR;
    else process.env.ATTUNE_MODELS_DIR = saved;
    rmSync(empty, { recursive: true, force: true });
  }
});
