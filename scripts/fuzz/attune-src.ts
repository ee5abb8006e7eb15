// Runs the `attune` command from the TypeScript sources (through tsx) instead of dist/:
//   node --import tsx scripts/fuzz/attune-src.ts all ...
// For fuzzing a working tree without rebuilding dist/ (scripts/fuzz/schemathesis.sh
// ATTUNE_FUZZ_SRC=1); CI fuzzes the built command, bin/attune.js.
import { main } from '../../cli/main.js';

await main(process.argv.slice(2));
