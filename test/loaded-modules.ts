// Reads the log of test/load-recorder.mjs: which npm packages a process loaded.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The preload to pass as `--import` (a file URL, so it works from any working directory). */
export const LOAD_RECORDER = new URL('./load-recorder.mjs', import.meta.url).href;

export interface LoadedModules {
  /** Every module file (ESM and CommonJS) and shared object the process loaded, as paths. */
  files: string[];
  /** Names of the npm packages those files belong to (`fastify`, `@electric-sql/pglite`). */
  packages: Set<string>;
  /** Shared objects mapped into the process (`.so`, `.node`). */
  natives: string[];
}

/** The package a path under node_modules belongs to (the innermost), or null. */
export function packageOf(path: string): string | null {
  const at = path.lastIndexOf('/node_modules/');
  if (at < 0) return null;
  const parts = path.slice(at + '/node_modules/'.length).split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

export function readLoadLog(file: string): LoadedModules {
  const files: string[] = [];
  const natives: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const kind = line.slice(0, space);
    let path = line.slice(space + 1);
    if (kind === 'esm') {
      if (!path.startsWith('file:')) continue; // node: builtins, data: URLs
      path = fileURLToPath(path);
    } else if (kind === 'native') {
      natives.push(path);
    } else if (kind !== 'cjs') continue;
    files.push(path);
  }
  const packages = new Set(files.map(packageOf).filter((p): p is string => p !== null));
  return { files: [...new Set(files)], packages, natives: [...new Set(natives)] };
}
