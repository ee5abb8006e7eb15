// A baseline to compare against in the same run: the product code of an earlier commit, unpacked
// with `git archive` into a temporary directory (the repository and its working tree are not
// touched), with the current bench/ copied over its own so that both are measured by the same
// harness, and node_modules, the model files and ../shared linked in. A child started there with
// baselineEnv() writes its result file to this repository's bench/results/, naming the commit.
import { execFileSync, execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT, RESULTS_DIR } from './results.js';

export interface Baseline {
  commit: string;
  dir: string;
}

export function prepareBaseline(rev: string): Baseline {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  // <tmp>/attune-baseline-<commit>/main beside <tmp>/attune-baseline-<commit>/shared, as the
  // repository sits beside ../shared.
  const root = join(tmpdir(), `attune-baseline-${commit.slice(0, 12)}`);
  const dir = join(root, 'main');
  if (!existsSync(join(dir, 'package.json'))) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execSync(`git archive ${commit} | tar -x -C '${dir}'`, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
    symlinkSync(join(dirname(REPO_ROOT.replace(/\/$/, '')), 'shared'), join(root, 'shared'));
    if (!existsSync(join(dir, 'models', 'files'))) symlinkSync(join(REPO_ROOT, 'models', 'files'), join(dir, 'models', 'files'));
  }
  rmSync(join(dir, 'bench'), { recursive: true, force: true });
  cpSync(join(REPO_ROOT, 'bench'), join(dir, 'bench'), { recursive: true, filter: (src) => !src.includes(`${join('bench', 'results')}`) });
  return { commit, dir };
}

/** Environment for a child run in the baseline: results recorded here, under the baseline's commit. */
export function baselineEnv(b: Baseline): Record<string, string> {
  return { BENCH_RESULTS_DIR: RESULTS_DIR, BENCH_CODE_COMMIT: b.commit };
}
