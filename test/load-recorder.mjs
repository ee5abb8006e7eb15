// Records which modules a Node process loads, for the checks that heavy and native packages load
// only where used (cli/lazy-load.test.ts) and for bench/cli-start.bench.ts.
//
//   ATTUNE_LOAD_LOG=/tmp/x.log node --import ./test/load-recorder.mjs bin/attune.js token ...
//
// Three sources, because no single one sees everything:
//  - `esm <url>`: every module the ESM loader loads (a load hook, written as each loads, from the
//    hooks thread, so the list is complete up to any moment the process reaches);
//  - `cjs <path>`: at exit, every CommonJS module in require's cache (what CommonJS packages
//    require() from each other never passes through the ESM hooks);
//  - `native <path>`: at exit, every shared object mapped into the process (/proc/self/maps):
//    native addons and the libraries they pull in (libchdb.so, libonnxruntime.so).
// The file is appended to; write one file per process.
import { register } from 'node:module';
import Module from 'node:module';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

const out = process.env.ATTUNE_LOAD_LOG;
if (!out) throw new Error('load-recorder: set ATTUNE_LOAD_LOG to the file to write');

const hooks = `
import { appendFileSync } from 'node:fs';
const out = ${JSON.stringify(out)};
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  appendFileSync(out, 'esm ' + url + '\\n');
  return result;
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

process.on('exit', () => {
  const lines = Object.keys(Module._cache).map((path) => `cjs ${path}`);
  if (existsSync('/proc/self/maps')) {
    const mapped = new Set();
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const path = line.split(/\s+/)[5];
      if (path && /\.(so(\.\d+)*|node)$/.test(path)) mapped.add(path);
    }
    for (const path of mapped) lines.push(`native ${path}`);
  }
  appendFileSync(out, lines.join('\n') + '\n');
});
