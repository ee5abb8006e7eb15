// The speech-coaching document's view of the delivery scores: each category (clarity, pace,
// engagement, confidence) with its weight in the overall score and named factors rated 0..100,
// and improvements from the weakest factors. Pure: the stored scores, weights and factors in
// (pipelines/speech/scoring/model.ts: factors[score][feature] = weight × sub-score × 100),
// plain data out, computed when the API answers.

/** The rubric's features (pipelines/speech/scoring/features.ts FEATURE_NAMES; the test checks they agree). */
export type FeatureName =
  | 'speaking_rate_wpm'
  | 'articulation_rate_wpm'
  | 'pause_ratio'
  | 'long_pauses_per_min'
  | 'mean_pause_s'
  | 'filler_rate_per_min'
  | 'repetition_rate_per_min'
  | 'pitch_variability_st'
  | 'pitch_range_st'
  | 'volume_variability_db'
  | 'mean_volume_dbfs'
  | 'speech_ratio';

export const CATEGORIES = ['clarity', 'pace', 'engagement', 'confidence'] as const;
export type Category = (typeof CATEGORIES)[number];

/**
 * The rubric's mix of the categories into the overall score (models/rubric/speech_rubric_v1.json
 * "overall"; coaching.test.ts checks they agree). Only claimed for the rubric's own model.
 */
export const RUBRIC_CATEGORY_WEIGHTS: Record<Category, number> = { clarity: 0.3, pace: 0.25, engagement: 0.2, confidence: 0.25 };
export const RUBRIC_MODEL = 'rubric-v1';

/**
 * The rubric's ideal band of each feature ([low, high], null = open), to tell which way a weak
 * feature is off (coaching.test.ts checks them against the rubric file).
 */
export const RUBRIC_IDEAL: Record<FeatureName, [number | null, number | null]> = {
  speaking_rate_wpm: [130, 170],
  articulation_rate_wpm: [150, 210],
  pause_ratio: [0.1, 0.3],
  long_pauses_per_min: [null, 2],
  mean_pause_s: [0.4, 1.2],
  filler_rate_per_min: [null, 2],
  repetition_rate_per_min: [null, 1],
  pitch_variability_st: [3, 6],
  pitch_range_st: [8, 18],
  volume_variability_db: [2, 6],
  mean_volume_dbfs: [-30, -12],
  speech_ratio: [0.65, null],
};

/**
 * The factors of each category: the document's names where an audio feature measures the same
 * thing, Attune's where it has none. A factor's rating is the weighted mean of its features'
 * sub-scores (0..100) with the category's rubric weights. The document's confidence factors
 * (posture, eyeContact, gestures) and engagement's connection need video or an audience:
 * confidence is rated from the audio the rubric uses for it instead.
 */
export const CATEGORY_FACTORS: Record<Category, Record<string, FeatureName[]>> = {
  clarity: { articulation: ['articulation_rate_wpm'], volume: ['mean_volume_dbfs'], fillers: ['filler_rate_per_min'], repetitions: ['repetition_rate_per_min'] },
  pace: { speed: ['speaking_rate_wpm'], rhythm: ['articulation_rate_wpm'], pauses: ['pause_ratio', 'mean_pause_s', 'long_pauses_per_min'] },
  engagement: { variety: ['pitch_variability_st', 'pitch_range_st'], enthusiasm: ['volume_variability_db'], tempo: ['speaking_rate_wpm'] },
  confidence: {
    fillers: ['filler_rate_per_min'],
    longPauses: ['long_pauses_per_min'],
    volume: ['mean_volume_dbfs'],
    speechRatio: ['speech_ratio'],
    repetitions: ['repetition_rate_per_min'],
    pitchVariety: ['pitch_variability_st'],
  },
};

/** What to say about a weak feature, by the side of its ideal band it is on. */
const SUGGESTIONS: Record<FeatureName, { high: string; low: string }> = {
  speaking_rate_wpm: { high: 'Slow down: aim for 130-170 words per minute', low: 'Pick up the pace: aim for 130-170 words per minute' },
  articulation_rate_wpm: { high: 'Speak each phrase more slowly and distinctly', low: 'Keep phrases flowing: fewer drawn-out words' },
  pause_ratio: { high: 'Pause less often: keep pauses for the ends of ideas', low: 'Pause between ideas to let key points land' },
  long_pauses_per_min: { high: 'Cut long silences: prepare the next point before you pause', low: 'Cut long silences: prepare the next point before you pause' },
  mean_pause_s: { high: 'Keep pauses shorter, under about a second', low: 'Let pauses last a little longer, about half a second' },
  filler_rate_per_min: { high: 'Replace filler words (um, uh, like) with a silent pause', low: 'Replace filler words (um, uh, like) with a silent pause' },
  repetition_rate_per_min: { high: 'Avoid restarting phrases: finish the sentence you began', low: 'Avoid restarting phrases: finish the sentence you began' },
  pitch_variability_st: { high: 'Steady your pitch: big swings can sound anxious', low: 'Vary your pitch to stress key words' },
  pitch_range_st: { high: 'Use a narrower pitch range', low: 'Use more of your pitch range' },
  volume_variability_db: { high: 'Keep your loudness more even', low: 'Vary your loudness for emphasis' },
  mean_volume_dbfs: { high: 'Speak a little softer or move away from the microphone', low: 'Speak up or move closer to the microphone' },
  speech_ratio: { high: 'Leave some room for pauses', low: 'Speak more of the time: less silence between ideas' },
};

export type Impact = 'high' | 'medium' | 'low';
/** Points of the overall score a factor loses at or above which its improvement's impact is high / medium. */
export const IMPACT_POINTS = { high: 5, medium: 2 } as const;
/** Factors rated below this get an improvement. */
export const IMPROVE_BELOW = 80;
/** At most this many improvements, the costliest first. */
export const MAX_IMPROVEMENTS = 3;

export interface CategoryView {
  score: number;
  weight: number | null;
  factors: Record<string, number>;
}

export interface Improvement {
  category: Category;
  factor: string;
  suggestion: string;
  impact: Impact;
  /** Points of the overall score the factor loses. */
  pointsLost: number;
}

type ByScore = Record<string, Record<string, number>>;

const round1 = (v: number) => Math.round(v * 10) / 10;

/** A feature's sub-score 0..100 in a category: factor points over weight; null when the category does not use it. */
function subscore(weights: ByScore, factors: ByScore, category: Category, f: FeatureName): number | null {
  const w = weights[category]?.[f];
  const pts = factors[category]?.[f];
  if (typeof w !== 'number' || w <= 0 || typeof pts !== 'number') return null;
  return Math.max(0, Math.min(100, pts / w));
}

/**
 * The categories as the document shows them. `scores` are the stored 0..100 scores; weights
 * and factors as stored (null for a model without them: then each category has no factors).
 */
export function coachingCategories(model: string, scores: Record<Category, number> & { overall?: number }, weights: ByScore | null, factors: ByScore | null): Record<Category, CategoryView> {
  const out = {} as Record<Category, CategoryView>;
  for (const c of CATEGORIES) {
    const named: Record<string, number> = {};
    if (weights && factors) {
      for (const [name, features] of Object.entries(CATEGORY_FACTORS[c])) {
        let w = 0;
        let sum = 0;
        for (const f of features) {
          const s = subscore(weights, factors, c, f);
          if (s === null) continue;
          const fw = weights[c][f];
          w += fw;
          sum += fw * s;
        }
        if (w > 0) named[name] = round1(sum / w);
      }
    }
    out[c] = { score: round1(scores[c]), weight: model === RUBRIC_MODEL ? RUBRIC_CATEGORY_WEIGHTS[c] : null, factors: named };
  }
  return out;
}

/**
 * Improvements from the weakest factors: every factor rated below IMPROVE_BELOW, costed by the
 * points of the overall score it loses (category weight × Σ feature weight × (100 − sub-score));
 * impact high from IMPACT_POINTS.high points, medium from .medium, else low; the costliest
 * MAX_IMPROVEMENTS, one per suggestion. The suggestion is that of the factor's worst feature,
 * on the side of its ideal band the feature's value lies (`features`: the stored feature vector).
 */
export function coachingImprovements(model: string, weights: ByScore | null, factors: ByScore | null, features: Record<string, unknown>): Improvement[] {
  if (!weights || !factors) return [];
  const list: Improvement[] = [];
  for (const c of CATEGORIES) {
    const cw = model === RUBRIC_MODEL ? RUBRIC_CATEGORY_WEIGHTS[c] : 1 / CATEGORIES.length;
    for (const [name, fs] of Object.entries(CATEGORY_FACTORS[c])) {
      let w = 0;
      let sum = 0;
      let lost = 0;
      let worst: { f: FeatureName; s: number } | null = null;
      for (const f of fs) {
        const s = subscore(weights, factors, c, f);
        if (s === null) continue;
        const fw = weights[c][f];
        w += fw;
        sum += fw * s;
        lost += cw * fw * (100 - s);
        if (!worst || s < worst.s) worst = { f, s };
      }
      if (w === 0 || !worst || sum / w >= IMPROVE_BELOW) continue;
      const value = features[worst.f];
      const [lo, hi] = RUBRIC_IDEAL[worst.f];
      const side = typeof value === 'number' && hi !== null && value > hi ? 'high' : typeof value === 'number' && lo !== null && value < lo ? 'low' : hi === null ? 'low' : 'high';
      const impact: Impact = lost >= IMPACT_POINTS.high ? 'high' : lost >= IMPACT_POINTS.medium ? 'medium' : 'low';
      list.push({ category: c, factor: name, suggestion: SUGGESTIONS[worst.f][side], impact, pointsLost: round1(lost) });
    }
  }
  list.sort((a, b) => b.pointsLost - a.pointsLost);
  const seen = new Set<string>();
  return list.filter((i) => !seen.has(i.suggestion) && (seen.add(i.suggestion), true)).slice(0, MAX_IMPROVEMENTS);
}

/** The document's benchmarks: overall scores of the levels, fixed (no population data yet). */
export const BENCHMARKS = { beginner: 60, intermediate: 75, advanced: 90, expert: 95 } as const;
