#!/usr/bin/env node
// The `attune` command. The TypeScript sources are compiled to dist/ by `npm install`
// (the `prepare` script); run `npm run build` after changing them.
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('attune: dist/ is missing; run `npm run build` (npm install does it for you)');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));
