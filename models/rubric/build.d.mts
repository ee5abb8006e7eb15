// Types for build.mjs (plain Node ESM, so it runs before anything is compiled), for tests.
export interface RubricFeature {
  name: string;
  unit: string;
  description: string;
  /** [ideal_lo, ideal_hi]; null = open on that side. */
  ideal: [number | null, number | null];
  /** [zero_lo, zero_hi]; null exactly where ideal is null. */
  zero: [number | null, number | null];
}
export interface Rubric {
  name: string;
  version: number;
  description: string;
  features: RubricFeature[];
  scores: Record<'clarity' | 'pace' | 'engagement' | 'confidence', Record<string, number>>;
  overall: Record<'clarity' | 'pace' | 'engagement' | 'confidence', number>;
}
export declare const RUBRIC_PATH: string;
export declare const MODEL_ID: string;
export declare const MODEL_FILE: string;
export declare const COMPONENT_SCORES: readonly string[];
export declare const SCORE_NAMES: readonly string[];
export declare const METADATA_KEYS: { model: string; features: string; scores: string; weights: string; rubric: string };
export declare function readRubric(path?: string): Rubric;
export declare function validateRubric(rubric: Rubric): void;
export declare function effectiveWeights(rubric: Rubric): Record<string, Record<string, number>>;
export declare function compileRubric(rubric: Rubric): Uint8Array;
export declare function defaultModelsDir(): string;
export declare function buildRubricModel(opts?: { modelsDir?: string; rubricPath?: string }): { path: string; bytes: Uint8Array; written: boolean };
