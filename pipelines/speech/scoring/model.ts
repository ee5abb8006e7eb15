// Delivery scores from the feature vector through an ONNX model: by default the documented
// rubric compiled by models/rubric/build.mjs, or any model with the same signature
// (features float32 [N, F] → scores float32 [N, 5], subscores float32 [N, F]).
//
// What the model says about itself comes from its metadata_props (read from the file, since
// onnxruntime-node does not expose them):
//   attune.model    name stored with the scores (default: the file name without .onnx)
//   attune.features JSON array: the input columns (default: FEATURE_NAMES)
//   attune.scores   JSON array: the score columns (must be SCORE_NAMES when present)
//   attune.weights  JSON { score: { feature: weight } }: the linear weights behind each score
// A model without attune.weights (e.g. a trained one that is not a weighted sum) reports
// weights and factors as null: there is no honest per-feature split of its scores.
import { readFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AttuneError } from '../../../lib/errors.js';
import { loadOnnxModel, loadOrt, modelsDir, type InferenceSession, type Ort } from '../../../models/loader.js';
import { FEATURE_NAMES, type FeatureName, type ScoreFeatures } from './features.js';
import { readOnnxMetadata } from './onnx-metadata.js';

export const SCORE_NAMES = ['overall', 'clarity', 'pace', 'engagement', 'confidence'] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];

/** Where `node models/rubric/build.mjs` writes the rubric, under the models folder. */
export const RUBRIC_MODEL_ID = 'rubric';
export const RUBRIC_MODEL_FILE = 'speech_rubric_v1.onnx';
export const RUBRIC_BUILD_COMMAND = 'node models/rubric/build.mjs';

export const SCORE_MODEL_SIGNATURE = { expectInputs: ['features'], expectOutputs: ['scores', 'subscores'] } as const;

const METADATA = { model: 'attune.model', features: 'attune.features', scores: 'attune.scores', weights: 'attune.weights' } as const;

export type ScoreWeights = Record<ScoreName, Partial<Record<FeatureName, number>>>;

export interface SpeechScores {
  /** Model name (attune.model metadata, else the file name). */
  model: string;
  /** 0..100 for the rubric; whatever a replacement model outputs otherwise. */
  scores: Record<ScoreName, number>;
  features: ScoreFeatures;
  /** Each feature's sub-score (0..1 for the rubric), for the features the model reads. */
  subscores: Partial<Record<FeatureName, number>>;
  /** Weight of each feature in each score (each score's weights sum to 1); null when the model has none. */
  weights: ScoreWeights | null;
  /** weight × subscore × 100: each score's points from each feature (they sum to the score); null with weights. */
  factors: ScoreWeights | null;
}

/** Default path of the rubric model; throws AttuneError('unavailable') naming the build command when missing. */
export function rubricModelPath(dir = modelsDir()): string {
  const path = join(dir, RUBRIC_MODEL_ID, RUBRIC_MODEL_FILE);
  if (!existsSync(path)) {
    throw new AttuneError('unavailable', `scoring model ${RUBRIC_MODEL_ID}/${RUBRIC_MODEL_FILE} is missing at ${path}; build it with \`${RUBRIC_BUILD_COMMAND}\``, [
      { field: 'model', reason: 'model_missing', message: 'not built', model: RUBRIC_MODEL_ID, file: RUBRIC_MODEL_FILE, path, command: RUBRIC_BUILD_COMMAND },
    ]);
  }
  return path;
}

function refuse(path: string, why: string): AttuneError {
  // 'unavailable', like the loader: a configured model that does not fit is the server's problem.
  return new AttuneError('unavailable', `scoring model ${path} cannot be used: ${why}`, [{ field: 'model', reason: 'model_unusable', message: why, path }]);
}

function parseJson(path: string, key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw refuse(path, `metadata ${key} is not JSON`);
  }
}

function featureOrder(path: string, metadata: Record<string, string>): FeatureName[] {
  const text = metadata[METADATA.features];
  if (text === undefined) return [...FEATURE_NAMES];
  const names = parseJson(path, METADATA.features, text);
  const known = new Set<string>(FEATURE_NAMES);
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && known.has(n)) || new Set(names).size !== names.length) {
    throw refuse(path, `metadata ${METADATA.features} must list distinct known features (${FEATURE_NAMES.join(', ')}), got ${text}`);
  }
  return names as FeatureName[];
}

function checkScoreNames(path: string, metadata: Record<string, string>): void {
  const text = metadata[METADATA.scores];
  if (text === undefined) return;
  const names = parseJson(path, METADATA.scores, text);
  if (!Array.isArray(names) || names.join() !== SCORE_NAMES.join()) {
    throw refuse(path, `metadata ${METADATA.scores} must be ${JSON.stringify(SCORE_NAMES)}, got ${text}`);
  }
}

function readWeights(path: string, metadata: Record<string, string>, order: readonly FeatureName[]): ScoreWeights | null {
  const text = metadata[METADATA.weights];
  if (text === undefined) return null;
  const raw = parseJson(path, METADATA.weights, text) as Record<string, Record<string, unknown>> | null;
  const inputs = new Set<string>(order);
  const out = {} as ScoreWeights;
  for (const score of SCORE_NAMES) {
    const byFeature = raw?.[score];
    if (typeof byFeature !== 'object' || byFeature === null) throw refuse(path, `metadata ${METADATA.weights} has no weights for ${score}`);
    out[score] = {};
    for (const [feature, weight] of Object.entries(byFeature)) {
      if (!inputs.has(feature) || typeof weight !== 'number' || !Number.isFinite(weight)) {
        throw refuse(path, `metadata ${METADATA.weights}: ${score}.${feature} must be a number for an input feature`);
      }
      out[score][feature as FeatureName] = weight;
    }
    Object.freeze(out[score]);
  }
  // Shared by every result of this model, so nobody may change them.
  return Object.freeze(out);
}

/** The second dimension of a value's shape when the model fixes it, else null. */
function width(meta: InferenceSession.ValueMetadata | undefined): number | null {
  if (!meta || !meta.isTensor) return null;
  const d = meta.shape[1];
  return typeof d === 'number' && d >= 0 ? d : null;
}

function checkShapes(path: string, session: InferenceSession, featureCount: number): void {
  const byName = (list: readonly InferenceSession.ValueMetadata[], name: string) => list.find((m) => m.name === name);
  const expect: [string, InferenceSession.ValueMetadata | undefined, number][] = [
    ['input features', byName(session.inputMetadata, 'features'), featureCount],
    ['output scores', byName(session.outputMetadata, 'scores'), SCORE_NAMES.length],
    ['output subscores', byName(session.outputMetadata, 'subscores'), featureCount],
  ];
  for (const [what, meta, want] of expect) {
    if (meta?.isTensor && meta.type !== 'float32') throw refuse(path, `${what} is ${meta.type}, not float32`);
    if (meta?.isTensor && meta.shape.length !== 2) throw refuse(path, `${what} has rank ${meta.shape.length}, not 2`);
    const got = width(meta);
    if (got !== null && got !== want) throw refuse(path, `${what} has width ${got}, expected ${want}`);
  }
}

function validateFeatures(features: ScoreFeatures, order: readonly FeatureName[], index: number): void {
  for (const name of order) {
    const v = (features as unknown as Record<string, unknown>)[name];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new AttuneError('validation_error', `feature ${name} must be a finite number, got ${String(v)}`, [{ field: name, index, reason: 'invalid_argument', message: 'not a finite number' }]);
    }
  }
}

export class ScoreModel {
  /** Stored with the scores (speech_scores.model). */
  readonly name: string;
  readonly path: string;
  /** The model's input columns, in order. */
  readonly featureNames: readonly FeatureName[];
  readonly weights: ScoreWeights | null;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly session: InferenceSession;
  /** onnxruntime-node, imported when the first model is opened (models/loader.ts). */
  private readonly ort: Ort;

  private constructor(path: string, session: InferenceSession, ort: Ort, metadata: Record<string, string>, featureNames: FeatureName[], weights: ScoreWeights | null) {
    this.path = path;
    this.session = session;
    this.ort = ort;
    this.metadata = metadata;
    this.featureNames = featureNames;
    this.weights = weights;
    this.name = metadata[METADATA.model] || basename(path).replace(/\.onnx$/i, '');
  }

  /** Opens the rubric (default) or the model at `path`; refuses a model of another signature with AttuneError('unavailable'). */
  static async load(opts: { path?: string } = {}): Promise<ScoreModel> {
    const path = opts.path ?? rubricModelPath();
    const session = await loadOnnxModel(path, SCORE_MODEL_SIGNATURE);
    try {
      let metadata: Record<string, string>;
      try {
        metadata = readOnnxMetadata(readFileSync(path));
      } catch (err) {
        throw refuse(path, `cannot read its metadata: ${(err as Error).message}`);
      }
      const order = featureOrder(path, metadata);
      checkScoreNames(path, metadata);
      const weights = readWeights(path, metadata, order);
      checkShapes(path, session, order.length);
      return new ScoreModel(path, session, await loadOrt(), metadata, order, weights);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  async score(features: ScoreFeatures): Promise<SpeechScores> {
    return (await this.scoreBatch([features]))[0];
  }

  /** Scores several feature vectors in one run. */
  async scoreBatch(list: readonly ScoreFeatures[]): Promise<SpeechScores[]> {
    if (list.length === 0) return [];
    const F = this.featureNames.length;
    const input = new Float32Array(list.length * F);
    list.forEach((features, i) => {
      validateFeatures(features, this.featureNames, i);
      this.featureNames.forEach((name, j) => (input[i * F + j] = features[name]));
    });
    const out = await this.session.run({ features: new this.ort.Tensor('float32', input, [list.length, F]) });
    const scores = out.scores.data as Float32Array;
    const subscores = out.subscores.data as Float32Array;
    if (scores.length !== list.length * SCORE_NAMES.length || subscores.length !== list.length * F) {
      throw new AttuneError('internal_error', `scoring model ${this.name} returned ${scores.length} scores and ${subscores.length} subscores for ${list.length} vectors of ${F}`);
    }
    return list.map((features, i) => {
      const sub: Partial<Record<FeatureName, number>> = {};
      this.featureNames.forEach((name, j) => (sub[name] = subscores[i * F + j]));
      const byScore = {} as Record<ScoreName, number>;
      SCORE_NAMES.forEach((s, k) => (byScore[s] = scores[i * SCORE_NAMES.length + k]));
      return {
        model: this.name,
        scores: byScore,
        features: { ...features },
        subscores: sub,
        weights: this.weights,
        factors: this.weights ? factorsOf(this.weights, sub) : null,
      };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function factorsOf(weights: ScoreWeights, subscores: Partial<Record<FeatureName, number>>): ScoreWeights {
  const out = {} as ScoreWeights;
  for (const score of SCORE_NAMES) {
    out[score] = {};
    for (const [feature, weight] of Object.entries(weights[score]) as [FeatureName, number][]) {
      out[score][feature] = weight * (subscores[feature] ?? 0) * 100;
    }
  }
  return out;
}
