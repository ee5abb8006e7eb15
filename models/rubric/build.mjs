#!/usr/bin/env node
// Compiles the speech delivery rubric (speech_rubric_v1.json, documented in RUBRIC.md) into an
// ONNX graph, so that scoring runs through the same loader and session code as the other
// models and a trained model with the same signature can replace it by path.
//
//   node models/rubric/build.mjs [--out <models dir>]
//
// writes <models dir>/rubric/speech_rubric_v1.onnx (default models dir: $ATTUNE_MODELS_DIR,
// else models/files). Same rubric → same bytes.
//
// Graph (opset 13), for features x: float32 [N, F] in the rubric's feature order:
//   below     = Relu(ideal_lo − x) · slope_lo        slope_lo = 1 / (ideal_lo − zero_lo), 0 if open
//   above     = Relu(x − ideal_hi) · slope_hi        slope_hi = 1 / (zero_hi − ideal_hi), 0 if open
//   subscores = Clip(1 − below − above, 0, 1)                               [N, F]
//   parts     = 100 · subscores · W        W [F, 4]: weights of clarity, pace, engagement, confidence
//   overall   = parts · mix                mix [4, 1]
//   scores    = Concat(overall, parts)                                      [N, 5]
// The feature names, weights and rubric go into metadata_props as JSON (onnxruntime-node
// does not expose metadata_props, so pipelines/speech/scoring reads them from the file).
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeModel } from './onnx-writer.mjs';

const here = dirname(fileURLToPath(import.meta.url));

export const RUBRIC_PATH = join(here, 'speech_rubric_v1.json');
export const MODEL_ID = 'rubric';
export const MODEL_FILE = 'speech_rubric_v1.onnx';
/** Component scores in the graph's column order after `overall`. */
export const COMPONENT_SCORES = ['clarity', 'pace', 'engagement', 'confidence'];
export const SCORE_NAMES = ['overall', ...COMPONENT_SCORES];
/** metadata_props keys. */
export const METADATA_KEYS = { model: 'attune.model', features: 'attune.features', scores: 'attune.scores', weights: 'attune.weights', rubric: 'attune.rubric' };

const IR_VERSION = 8;
const OPSET = 13;
const WEIGHT_SUM_TOLERANCE = 1e-9;

export function readRubric(path = RUBRIC_PATH) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function fail(message) {
  throw new Error(`rubric: ${message}`);
}

function checkWeights(label, weights, allowed) {
  let sum = 0;
  for (const [name, w] of Object.entries(weights)) {
    if (!allowed.has(name)) fail(`${label} weighs unknown ${name}`);
    if (!(typeof w === 'number' && w > 0 && w <= 1)) fail(`${label}: weight of ${name} must be in (0, 1], got ${w}`);
    sum += w;
  }
  if (Math.abs(sum - 1) > WEIGHT_SUM_TOLERANCE) fail(`${label}: weights sum to ${sum}, not 1`);
}

/** Throws on anything the graph could not express faithfully. */
export function validateRubric(rubric) {
  if (typeof rubric.name !== 'string' || !rubric.name) fail('name missing');
  const names = new Set();
  for (const f of rubric.features ?? []) {
    if (!/^[a-z][a-z0-9_]*$/.test(f.name ?? '')) fail(`bad feature name ${f.name}`);
    if (names.has(f.name)) fail(`feature ${f.name} twice`);
    names.add(f.name);
    const [lo, hi] = f.ideal;
    const [zeroLo, zeroHi] = f.zero;
    if ((lo === null) !== (zeroLo === null)) fail(`${f.name}: ideal and zero must both be open (null) or both set below`);
    if ((hi === null) !== (zeroHi === null)) fail(`${f.name}: ideal and zero must both be open (null) or both set above`);
    if (lo !== null && !(zeroLo < lo)) fail(`${f.name}: zero_lo ${zeroLo} must be below ideal_lo ${lo}`);
    if (hi !== null && !(zeroHi > hi)) fail(`${f.name}: zero_hi ${zeroHi} must be above ideal_hi ${hi}`);
    if (lo !== null && hi !== null && !(lo <= hi)) fail(`${f.name}: ideal_lo ${lo} above ideal_hi ${hi}`);
  }
  if (names.size === 0) fail('no features');
  const scoreNames = Object.keys(rubric.scores ?? {});
  if (scoreNames.join() !== COMPONENT_SCORES.join()) fail(`scores must be ${COMPONENT_SCORES.join(', ')} in that order, got ${scoreNames.join(', ')}`);
  for (const s of COMPONENT_SCORES) checkWeights(s, rubric.scores[s], names);
  checkWeights('overall', rubric.overall ?? {}, new Set(COMPONENT_SCORES));
}

/** Per-score weights by feature, overall included (its weights are the mix applied to the components'). */
export function effectiveWeights(rubric) {
  const weights = { overall: {} };
  for (const s of COMPONENT_SCORES) weights[s] = { ...rubric.scores[s] };
  for (const f of rubric.features) {
    let w = 0;
    for (const s of COMPONENT_SCORES) w += rubric.overall[s] * (rubric.scores[s][f.name] ?? 0);
    if (w > 0) weights.overall[f.name] = w;
  }
  return Object.fromEntries(SCORE_NAMES.map((s) => [s, weights[s]]));
}

/** The rubric as an ONNX ModelProto (bytes). */
export function compileRubric(rubric) {
  validateRubric(rubric);
  const F = rubric.features.length;
  const featureNames = rubric.features.map((f) => f.name);
  const idealLo = rubric.features.map((f) => f.ideal[0] ?? 0);
  const idealHi = rubric.features.map((f) => f.ideal[1] ?? 0);
  // An open side gets slope 0: its Relu term is multiplied away whatever the ideal value.
  const slopeLo = rubric.features.map((f) => (f.ideal[0] === null ? 0 : 1 / (f.ideal[0] - f.zero[0])));
  const slopeHi = rubric.features.map((f) => (f.ideal[1] === null ? 0 : 1 / (f.zero[1] - f.ideal[1])));
  const weightMatrix = [];
  for (const name of featureNames) for (const s of COMPONENT_SCORES) weightMatrix.push(rubric.scores[s][name] ?? 0);
  const mix = COMPONENT_SCORES.map((s) => rubric.overall[s]);

  const nodes = [
    { op: 'Sub', inputs: ['ideal_lo', 'features'], outputs: ['below_distance'] },
    { op: 'Relu', inputs: ['below_distance'], outputs: ['below_excess'] },
    { op: 'Mul', inputs: ['below_excess', 'slope_lo'], outputs: ['below_penalty'] },
    { op: 'Sub', inputs: ['features', 'ideal_hi'], outputs: ['above_distance'] },
    { op: 'Relu', inputs: ['above_distance'], outputs: ['above_excess'] },
    { op: 'Mul', inputs: ['above_excess', 'slope_hi'], outputs: ['above_penalty'] },
    { op: 'Add', inputs: ['below_penalty', 'above_penalty'], outputs: ['penalty'] },
    { op: 'Sub', inputs: ['one', 'penalty'], outputs: ['unclipped'] },
    { op: 'Clip', inputs: ['unclipped', 'zero', 'one'], outputs: ['subscores'] },
    { op: 'MatMul', inputs: ['subscores', 'component_weights'], outputs: ['component_fraction'] },
    { op: 'Mul', inputs: ['component_fraction', 'hundred'], outputs: ['component_scores'] },
    { op: 'MatMul', inputs: ['component_scores', 'overall_mix'], outputs: ['overall_score'] },
    { op: 'Concat', inputs: ['overall_score', 'component_scores'], outputs: ['scores'], attributes: { axis: 1 } },
  ];
  const initializers = [
    { name: 'ideal_lo', dims: [F], values: idealLo },
    { name: 'ideal_hi', dims: [F], values: idealHi },
    { name: 'slope_lo', dims: [F], values: slopeLo },
    { name: 'slope_hi', dims: [F], values: slopeHi },
    { name: 'zero', dims: [], values: [0] },
    { name: 'one', dims: [], values: [1] },
    { name: 'hundred', dims: [], values: [100] },
    { name: 'component_weights', dims: [F, COMPONENT_SCORES.length], values: weightMatrix },
    { name: 'overall_mix', dims: [COMPONENT_SCORES.length, 1], values: mix },
  ];
  const metadata = {
    [METADATA_KEYS.model]: rubric.name,
    [METADATA_KEYS.features]: JSON.stringify(featureNames),
    [METADATA_KEYS.scores]: JSON.stringify(SCORE_NAMES),
    [METADATA_KEYS.weights]: JSON.stringify(effectiveWeights(rubric)),
    [METADATA_KEYS.rubric]: JSON.stringify(rubric),
  };
  return encodeModel({
    irVersion: IR_VERSION,
    opset: OPSET,
    producerName: 'attune models/rubric/build.mjs',
    modelVersion: rubric.version ?? 1,
    doc: rubric.description,
    graph: {
      name: rubric.name,
      nodes,
      initializers,
      inputs: [{ name: 'features', shape: ['N', F], doc: `Feature vectors in this order: ${featureNames.join(', ')}` }],
      outputs: [
        { name: 'scores', shape: ['N', SCORE_NAMES.length], doc: `Scores 0..100: ${SCORE_NAMES.join(', ')}` },
        { name: 'subscores', shape: ['N', F], doc: 'Per-feature sub-scores 0..1, same order as features' },
      ],
    },
    metadata,
  });
}

/** Default models folder, as models/loader.ts resolves it. */
export function defaultModelsDir() {
  return resolve(process.env.ATTUNE_MODELS_DIR ?? join(here, '..', 'files'));
}

/**
 * Writes <modelsDir>/rubric/speech_rubric_v1.onnx. Leaves an identical file untouched;
 * otherwise writes a temporary file and renames it, so a reader never sees half a model.
 */
export function buildRubricModel({ modelsDir = defaultModelsDir(), rubricPath = RUBRIC_PATH } = {}) {
  const bytes = compileRubric(readRubric(rubricPath));
  const path = join(modelsDir, MODEL_ID, MODEL_FILE);
  if (existsSync(path) && Buffer.from(bytes).equals(readFileSync(path))) return { path, bytes, written: false };
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, path);
  return { path, bytes, written: true };
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out') opts.modelsDir = resolve(argv[++i] ?? fail('--out needs a folder'));
    else if (arg.startsWith('--out=')) opts.modelsDir = resolve(arg.slice('--out='.length));
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: node models/rubric/build.mjs [--out <models dir>]');
      process.exit(0);
    } else fail(`unknown argument ${arg}`);
  }
  return opts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { path, bytes, written } = buildRubricModel(parseArgs(process.argv.slice(2)));
    console.log(`${MODEL_ID}: ${bytes.length} bytes ${written ? 'written to' : 'already up to date at'} ${path}`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
