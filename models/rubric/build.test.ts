import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readOnnxMetadata } from '../../pipelines/speech/scoring/onnx-metadata.js';
import { FEATURE_NAMES } from '../../pipelines/speech/scoring/features.js';
import { METADATA_KEYS, SCORE_NAMES, buildRubricModel, compileRubric, effectiveWeights, readRubric, validateRubric, type Rubric } from './build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const rubric = readRubric();
const clone = (): Rubric => JSON.parse(JSON.stringify(rubric)) as Rubric;

function withTempDir<T>(run: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'attune-rubric-'));
  try {
    return run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the build is deterministic: two folders, the CLI and a rebuild give the same bytes', () => {
  withTempDir((a) =>
    withTempDir((b) => {
      const first = buildRubricModel({ modelsDir: a });
      const second = buildRubricModel({ modelsDir: b });
      assert.equal(first.path, join(a, 'rubric', 'speech_rubric_v1.onnx'));
      assert.equal(first.written, true);
      const bytesA = readFileSync(first.path);
      assert.ok(bytesA.equals(readFileSync(second.path)));
      assert.ok(bytesA.equals(Buffer.from(compileRubric(readRubric()))));
      // The CLI into a third folder, and a rebuild over an identical file that leaves it alone.
      withTempDir((c) => {
        const out = execFileSync(process.execPath, [join(here, 'build.mjs'), '--out', c], { encoding: 'utf8' });
        assert.match(out, /rubric: \d+ bytes written to /);
        assert.ok(bytesA.equals(readFileSync(join(c, 'rubric', 'speech_rubric_v1.onnx'))));
      });
      const mtime = statSync(first.path).mtimeMs;
      const again = buildRubricModel({ modelsDir: a });
      assert.equal(again.written, false);
      assert.equal(statSync(first.path).mtimeMs, mtime);
    }),
  );
});

test('a changed band changes the model', () => {
  const changed = clone();
  changed.features[0].ideal = [125, 170];
  assert.ok(!Buffer.from(compileRubric(changed)).equals(Buffer.from(compileRubric(rubric))));
});

test('the model carries its feature names, score names, weights and rubric as metadata', () => {
  const metadata = readOnnxMetadata(compileRubric(rubric));
  assert.equal(metadata[METADATA_KEYS.model], 'rubric-v1');
  assert.deepEqual(JSON.parse(metadata[METADATA_KEYS.features]), [...FEATURE_NAMES]);
  assert.deepEqual(JSON.parse(metadata[METADATA_KEYS.scores]), [...SCORE_NAMES]);
  assert.deepEqual(JSON.parse(metadata[METADATA_KEYS.rubric]), rubric);
  const weights = JSON.parse(metadata[METADATA_KEYS.weights]) as Record<string, Record<string, number>>;
  assert.deepEqual(weights, effectiveWeights(rubric));
  assert.deepEqual(Object.keys(weights), [...SCORE_NAMES]);
  for (const s of SCORE_NAMES) {
    const sum = Object.values(weights[s]).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `${s}: ${sum}`);
  }
  // Every feature counts somewhere.
  assert.deepEqual(Object.keys(weights.overall).sort(), [...FEATURE_NAMES].sort());
});

test('rubrics the graph cannot express faithfully are refused', () => {
  const cases: [string, (r: Rubric) => void, RegExp][] = [
    ['weights not summing to 1', (r) => (r.scores.pace.speaking_rate_wpm = 0.5), /pace: weights sum to 1\.1/],
    ['unknown feature weighed', (r) => (r.scores.clarity = { ...r.scores.clarity, volume_dbfs: 0.1 }), /clarity weighs unknown volume_dbfs/],
    ['zero point inside the band', (r) => (r.features[0].zero = [140, 240]), /speaking_rate_wpm: zero_lo 140 must be below ideal_lo 130/],
    ['open on one side only in part', (r) => (r.features[0].zero = [null, 240]), /both be open/],
    ['overall mix not summing to 1', (r) => (r.overall.clarity = 0.2), /overall: weights sum to/],
    ['duplicate feature', (r) => r.features.push({ ...r.features[0] }), /feature speaking_rate_wpm twice/],
    ['component scores renamed', (r) => ((r.scores as Record<string, unknown>).fluency = r.scores.pace), /scores must be clarity, pace, engagement, confidence/],
  ];
  for (const [what, change, message] of cases) {
    const r = clone();
    change(r);
    assert.throws(() => validateRubric(r), message, what);
  }
  assert.doesNotThrow(() => validateRubric(rubric));
});

test('RUBRIC.md documents every feature with its band and every weight', () => {
  const doc = readFileSync(join(here, 'RUBRIC.md'), 'utf8');
  const cell = (v: number | null) => (v === null ? '—' : String(v));
  for (const f of rubric.features) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${f.name}\``));
    assert.ok(row, `no table row for ${f.name}`);
    const cells = row.split('|').map((c) => c.trim());
    // | name | unit | zero_lo | ideal_lo | ideal_hi | zero_hi | ...
    assert.deepEqual(cells.slice(3, 7), [cell(f.zero[0]), cell(f.ideal[0]), cell(f.ideal[1]), cell(f.zero[1])], f.name);
  }
  const weightRows = doc.split('\n').filter((line) => /^\| (clarity|pace|engagement|confidence|overall) \|/.test(line));
  for (const s of ['clarity', 'pace', 'engagement', 'confidence'] as const) {
    const row = weightRows.find((line) => line.startsWith(`| ${s} |`));
    assert.ok(row, `no weight row for ${s}`);
    for (const [feature, w] of Object.entries(rubric.scores[s])) assert.ok(row.includes(`\`${feature}\` ${w}`), `${s}: ${feature} ${w}`);
  }
  const overall = weightRows.find((line) => line.startsWith('| overall |'));
  assert.ok(overall);
  for (const [s, w] of Object.entries(rubric.overall)) assert.ok(overall.includes(`${s} ${w}`), `overall: ${s} ${w}`);
  // The per-feature overall table: | `feature` | weight (...) |
  for (const [feature, w] of Object.entries(effectiveWeights(rubric).overall)) {
    const pattern = new RegExp(`^\\| \`${feature}\` \\| (0\\.\\d+)( \\(.*\\))? \\|$`);
    const match = doc.split('\n').map((line) => pattern.exec(line)).find((m) => m !== null);
    assert.ok(match, `no overall weight row for ${feature}`);
    const documented = Number(match[1]);
    assert.ok(Math.abs(documented - w) < 1e-12, `overall weight of ${feature}: documented ${documented}, computed ${w}`);
  }
});
