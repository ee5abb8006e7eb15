// The real RR recordings the HRV tests read: ../shared/data/rr beside the repository (see its
// MANIFEST). One loader, so every test fails the same clear way when the data is not there.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const rrDataDir = fileURLToPath(new URL('../../../shared/data/rr/', import.meta.url));
if (!existsSync(rrDataDir)) {
  throw new Error(`HRV reference data not found at ${rrDataDir}: the shared test recordings must sit beside the repository (../shared/data/rr)`);
}

/** RR intervals (ms) of one recording, one per line. */
export function loadRrRecording(name: string): Float64Array {
  const rr = Float64Array.from(readFileSync(rrDataDir + name, 'utf8').trim().split(/\s+/).map(Number));
  assert.ok(rr.length > 100 && rr.every(Number.isFinite), `${name} did not parse`);
  return rr;
}
