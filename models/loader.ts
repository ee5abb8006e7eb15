// Finds model files fetched by models/fetch.mjs and opens them with onnxruntime-node,
// checking that a model has the input and output names its caller is written against.
// Checking names up front turns "a different model was configured" into one clear error
// at start-up instead of a failed run() deep inside a pipeline.
//
// onnxruntime-node (a native addon and its 20-odd MB shared library) is imported dynamically,
// on the first loadOnnxModel()/loadOrt() call, so that importing this module, or a module
// that builds on it (VAD, recognition, scoring, the speech worker), costs nothing: only a
// process that opens a model (the speech worker role) loads the runtime. Callers take their
// Tensor constructor from `await loadOrt()` when they open their model.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InferenceSession } from 'onnxruntime-node';
import { AttuneError } from '../lib/errors.js';

export type { InferenceSession };

/** The onnxruntime-node module (`Tensor`, `InferenceSession`, `env`). */
export type Ort = typeof import('onnxruntime-node');

let ortModule: Promise<Ort> | null = null;

/** Imports onnxruntime-node once, on first use; every later call returns the same module. */
export function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').then((m) => (m.default ?? m) as Ort);
  return ortModule;
}

/** Fetch command for a model id, as printed in errors. */
export const fetchCommand = (id: string): string => `node models/fetch.mjs --only ${id}`;

// The project root is the nearest folder with a package.json above this file, so the
// default stays models/files whether this runs from source (tsx) or from dist/.
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new AttuneError('internal_error', 'cannot find the project root (no package.json above models/loader)');
    dir = parent;
  }
}

/** Where fetched models live: $ATTUNE_MODELS_DIR, else <project>/models/files. */
export function modelsDir(): string {
  return resolve(process.env.ATTUNE_MODELS_DIR ?? join(projectRoot(), 'models', 'files'));
}

/**
 * Absolute path of `file` of model `id` (e.g. `modelPath('silero', 'silero_vad.onnx')`).
 * Throws AttuneError('unavailable') naming the fetch command when the file is not there.
 */
export function modelPath(id: string, file: string, opts: { dir?: string } = {}): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(id) || file.split(/[\\/]/).some((part) => part === '..' || part === '')) {
    throw new AttuneError('validation_error', `bad model id or file name: ${id}/${file}`, [{ reason: 'invalid_argument', message: 'model ids and file names may not leave the models folder' }]);
  }
  const path = join(resolve(opts.dir ?? modelsDir()), id, file);
  if (!existsSync(path)) {
    throw new AttuneError('unavailable', `model file ${id}/${file} is missing at ${path}; fetch it with \`${fetchCommand(id)}\``, [
      { field: 'model', reason: 'model_missing', message: 'not fetched', model: id, file, path, command: fetchCommand(id) },
    ]);
  }
  return path;
}

export interface ModelSignature {
  /** Input names the caller feeds; the model must have exactly these. */
  expectInputs?: readonly string[];
  /** Output names the caller reads; the model must have exactly these. */
  expectOutputs?: readonly string[];
}

function differences(kind: 'input' | 'output', actual: readonly string[], expected: readonly string[]): string[] {
  const have = new Set(actual);
  const want = new Set(expected);
  const missing = expected.filter((n) => !have.has(n));
  const extra = actual.filter((n) => !want.has(n));
  const out: string[] = [];
  if (missing.length) out.push(`missing ${kind}s ${missing.join(', ')}`);
  if (extra.length) out.push(`unexpected ${kind}s ${extra.join(', ')}`);
  return out;
}

/**
 * Opens an ONNX model on the CPU with one intra-op thread (the pipeline scales by running
 * streams side by side, not by threading one model) and checks its input/output names.
 */
export async function loadOnnxModel(path: string, signature: ModelSignature = {}): Promise<InferenceSession> {
  if (!existsSync(path)) {
    throw new AttuneError('unavailable', `model file ${path} does not exist`, [{ field: 'path', reason: 'model_missing', path }]);
  }
  const ort = await loadOrt();
  let session: InferenceSession;
  try {
    // From a buffer rather than a path so that a corrupt file is reported as ours, below.
    session = await ort.InferenceSession.create(readFileSync(path), {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new AttuneError('unavailable', `cannot load ONNX model ${path}: ${(err as Error).message}`, [{ field: 'path', reason: 'model_unusable', message: 'not a loadable ONNX model', path }]);
  }
  const problems = [
    ...(signature.expectInputs ? differences('input', session.inputNames, signature.expectInputs) : []),
    ...(signature.expectOutputs ? differences('output', session.outputNames, signature.expectOutputs) : []),
  ];
  if (problems.length) {
    const inputs = [...session.inputNames];
    const outputs = [...session.outputNames];
    await session.release();
    // 'unavailable': a configured model that does not fit is the server's problem, not the caller's.
    throw new AttuneError('unavailable', `model ${path} does not have the expected signature: ${problems.join('; ')}`, [
      { field: 'signature', reason: 'model_unusable', message: problems.join('; '), path, inputs, outputs },
    ]);
  }
  return session;
}
