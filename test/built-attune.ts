// The built product, for the tests that time how fast a started process serves (faults.kafka's
// "after a crash, 202s resume within 10 s of the restart"): `attune` as installed runs dist/
// (bin/attune.js), not the TypeScript sources through tsx. Under tsx a start first transpiles
// every module it loads: measured on this machine, 1.5–2.7 s more than dist/ before `main` at
// load ≤ 1, and ~7 s at load 8 of a CI run (faults.kafka's restart took 14 s there, 9 of them
// loading modules). Timing that would time the test harness, not what a supervisor restarts.
//
// dist/ is rebuilt first (`npm run build`, ~15 s) when any source it is built from is newer
// than it, so these tests never run stale code; `npm ci` builds it (the `prepare` script).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** tsconfig.build.json's include list, and the files it leaves out. */
const SOURCE_DIRS = ['lib', 'bus', 'store', 'ingest', 'pipelines', 'http', 'api', 'cli', 'simulator', 'models', 'schemas'];
const NOT_BUILT = /\.(test|test-util|contract|bench)\.ts$/;
/** What the build compiles, and the assets it copies (scripts/copy-assets.mjs: only under schemas/). */
const COMPILED = /\.ts$/;
const ASSETS = /\.(avsc|sql|json)$/;

/** Newest mtime of what the build reads under `dir` (not models/files, fetched after the build). */
function newestSource(dir: string, assets: boolean): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'files' || name.startsWith('.')) continue;
    const full = join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) newest = Math.max(newest, newestSource(full, assets));
    else if ((COMPILED.test(name) && !NOT_BUILT.test(name)) || (assets && ASSETS.test(name))) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

let checked = false;

/**
 * The arguments after `node` that run `attune` from dist/ (bin/attune.js), rebuilding dist/
 * first if a source is newer. Throws with the build's output if the build fails.
 */
export function builtAttuneArgs(): string[] {
  const entry = join(root, 'dist', 'cli', 'main.js');
  if (!checked) {
    const builtAt = existsSync(entry) ? statSync(entry).mtimeMs : 0;
    const newest = Math.max(...SOURCE_DIRS.map((d) => newestSource(join(root, d), d === 'schemas')));
    if (newest > builtAt) {
      const res = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`npm run build failed (dist/ was older than the sources):\n${res.stdout}\n${res.stderr}`);
    }
    checked = true;
  }
  return [join(root, 'bin', 'attune.js')];
}
