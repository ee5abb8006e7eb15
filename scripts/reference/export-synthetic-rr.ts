// Dev-only: writes the artifact-free synthetic RR series of pipelines/hrv/artifacts.test.ts
// ("artifact-free RSA at 0.04–0.25 Hz, 50–150 ms amplitude, 60 and 75 bpm", 516 series of 10 min)
// as JSON, so that scripts/reference/kubios_synthetic.py can run NeuroKit2's Kubios correction on
// exactly the same series. Usage:
//   npx tsx scripts/reference/export-synthetic-rr.ts /tmp/synthetic-rr.json
//   /opt/attune-ref/bin/python scripts/reference/kubios_synthetic.py /tmp/synthetic-rr.json
// Not run by the tests; the figures it gives are quoted in pipelines/hrv/fixtures/README.md.
import { writeFileSync } from 'node:fs';
import { sinusoidalRsaSeries } from '../../pipelines/hrv/artifact-free-series.test-util.js';

// The same series as the test (pipelines/hrv/artifact-free-series.test-util.ts).
const out = sinusoidalRsaSeries().map(({ label, s }) => ({ label, rrMs: Array.from(s.rrMs) }));
const path = process.argv[2] ?? '/tmp/synthetic-rr.json';
writeFileSync(path, JSON.stringify(out));
console.log(`${out.length} series written to ${path}`);
