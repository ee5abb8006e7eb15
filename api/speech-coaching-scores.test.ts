// The document's view of the scores: categories, factors and improvements, on the rubric's own
// weights, and the constants copied from the rubric checked against the rubric file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CATEGORIES, CATEGORY_FACTORS, RUBRIC_CATEGORY_WEIGHTS, RUBRIC_IDEAL, coachingCategories, coachingImprovements } from './speech-coaching-scores.js';
import { FEATURE_NAMES } from '../pipelines/speech/scoring/features.js';

const rubric = JSON.parse(readFileSync(new URL('../models/rubric/speech_rubric_v1.json', import.meta.url), 'utf8')) as {
  features: Array<{ name: string; ideal: [number | null, number | null] }>;
  scores: Record<string, Record<string, number>>;
  overall: Record<string, number>;
};

test("the category weights and ideal bands are the rubric file's", () => {
  assert.deepEqual(RUBRIC_CATEGORY_WEIGHTS, rubric.overall);
  assert.deepEqual(Object.fromEntries(rubric.features.map((f) => [f.name, f.ideal])), RUBRIC_IDEAL);
  assert.deepEqual(Object.keys(RUBRIC_IDEAL).sort(), [...FEATURE_NAMES].sort());
  // Every feature a category's factors name is one the rubric scores in that category, and every one it scores is named.
  for (const c of CATEGORIES) {
    const named = new Set(Object.values(CATEGORY_FACTORS[c]).flat());
    assert.deepEqual([...named].sort(), Object.keys(rubric.scores[c]).sort(), c);
  }
});

/** Stored weights and factors as scoring/model.ts makes them from sub-scores (0..1). */
function stored(sub: Record<string, number>) {
  const weights: Record<string, Record<string, number>> = {};
  const factors: Record<string, Record<string, number>> = {};
  for (const c of CATEGORIES) {
    weights[c] = rubric.scores[c];
    factors[c] = Object.fromEntries(Object.entries(rubric.scores[c]).map(([f, w]) => [f, w * (sub[f] ?? 1) * 100]));
  }
  return { weights, factors };
}

test('categories: rubric weights, factors = weighted mean of their features\' sub-scores', () => {
  const { weights, factors } = stored({ pause_ratio: 0.5, mean_pause_s: 1, long_pauses_per_min: 0 });
  const cats = coachingCategories('rubric-v1', { overall: 80, clarity: 90, pace: 70, engagement: 60, confidence: 85 }, weights, factors);
  assert.deepEqual(cats.pace, {
    score: 70,
    weight: 0.25,
    // pauses = (0.2·50 + 0.15·100 + 0.1·0) / 0.45 = 55.6
    factors: { speed: 100, rhythm: 100, pauses: 55.6 },
  });
  assert.deepEqual(Object.keys(cats.confidence.factors), ['fillers', 'longPauses', 'volume', 'speechRatio', 'repetitions', 'pitchVariety']);
  assert.equal(cats.confidence.factors.longPauses, 0);
  assert.equal(coachingCategories('trained-v2', { overall: 1, clarity: 1, pace: 1, engagement: 1, confidence: 1 }, weights, factors).pace.weight, null);
  assert.deepEqual(coachingCategories('x', { overall: 1, clarity: 1, pace: 1, engagement: 1, confidence: 1 }, null, null).clarity.factors, {});
});

test('improvements: factors under 80, costliest first, impact by overall points lost, suggestion on the side of the band', () => {
  // Too many fillers (sub-score 0.2) and speaking too fast (0.6); everything else ideal.
  const { weights, factors } = stored({ filler_rate_per_min: 0.2, speaking_rate_wpm: 0.6 });
  const list = coachingImprovements('rubric-v1', weights, factors, { filler_rate_per_min: 10, speaking_rate_wpm: 200 });
  // fillers: clarity 0.3·0.35·80 = 8.4 points (high), confidence 0.25·0.25·80 = 5 (high);
  // speed: pace 0.25·0.4·40 = 4 (medium); tempo: engagement 0.2·0.15·40 = 1.2 — same suggestion as speed, dropped.
  assert.deepEqual(list.map((i) => [i.category, i.factor, i.impact, i.pointsLost]), [
    ['clarity', 'fillers', 'high', 8.4],
    ['pace', 'speed', 'medium', 4],
  ]);
  assert.match(list[1].suggestion, /Slow down/);
  const slow = coachingImprovements('rubric-v1', weights, factors, { filler_rate_per_min: 10, speaking_rate_wpm: 95 });
  assert.match(slow.find((i) => i.factor === 'speed')!.suggestion, /Pick up the pace/);
  const ideal = stored({});
  assert.deepEqual(coachingImprovements('rubric-v1', ideal.weights, ideal.factors, {}), [], 'nothing weak, nothing to improve');
});
