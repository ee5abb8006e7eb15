// The speech-coaching document's shapes (../shared/seeds/004, "Session Management" and
// "Analysis Results") built from what Attune stores: names in camelCase, times in seconds from
// the first sample of the session's audio, scores 0..100. The rules behind the derived figures
// (trends, overall fluency, factors, improvements) are in the README's speech section.
import { iso } from '../lib/time.js';
import { writtenForms } from '../lib/words.js';
import { pitchTrend, volumeTrend, overallFluency, type Trend } from './speech-coaching-metrics.js';
import { BENCHMARKS, coachingCategories, coachingImprovements, type Category } from './speech-coaching-scores.js';
import type { ListedSpeechSession, SpeechSession } from '../store/postgres/speech-sessions-repo.js';

const s3 = (ms: number) => Math.round(ms) / 1000;
const r = (v: number, digits: number) => Number(v.toFixed(digits));

/** The document's analysis settings, each true unless the session's settings say false. */
export const DOC_SETTINGS = ['enableRealTimeProcessing', 'enableProsodyAnalysis', 'enableFluencyAnalysis', 'enableScoring'] as const;
export type DocSetting = (typeof DOC_SETTINGS)[number];

export function docSettingOn(settings: Record<string, unknown> | undefined, name: DocSetting): boolean {
  return settings?.[name] !== false;
}

/** Where the session's audio goes, and its live events, as absolute URLs of this request's host. */
export function sessionUrls(req: { protocol: string; host: string }, id: string) {
  const base = `${req.protocol}://${req.host}/v1/speech-sessions/${encodeURIComponent(id)}`;
  return { uploadUrl: `${base}/upload`, websocketUrl: `${req.protocol === 'https' ? 'wss' : 'ws'}://${req.host}/v1/speech-sessions/${encodeURIComponent(id)}/stream` };
}

/**
 * The document's session. duration: seconds of audio once there is some, else the expected
 * duration given at creation (null with neither); completedAt: when the analysis was stored
 * (the session's last update once completed); score: the overall score once scored.
 */
export function docSession(s: SpeechSession | ListedSpeechSession, urls: { uploadUrl: string; websocketUrl: string }, score: number | null) {
  return {
    id: s.id,
    title: s.title,
    description: s.description,
    type: s.type,
    status: s.status,
    duration: s.audioDurationS !== null ? r(s.audioDurationS, 3) : s.expectedDurationS,
    expectedDuration: s.expectedDurationS,
    createdAt: iso(s.createdAt),
    completedAt: s.status === 'completed' ? iso(s.updatedAt) : null,
    score,
    ...(s.settings ? { settings: Object.fromEntries(DOC_SETTINGS.map((k) => [k, docSettingOn(s.settings, k)])) } : {}),
    ...urls,
  };
}

// ---------------------------------------------------------------- transcript

interface TranscriptIn {
  text: string;
  words: Array<{ text: string; start_ms: number; end_ms: number; confidence: number | null; segment_index: number }>;
  segments: Array<{ index: number; start_ms: number; end_ms: number; text: string; is_final: boolean }>;
}

const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * The document's transcript. Confidence of a word: the recogniser's (geometric mean of its
 * tokens' probabilities); of a segment and of the whole text: the mean of their words'. Null
 * where no word has one (audio recognised before confidences were stored).
 */
export function docTranscript(t: TranscriptIn) {
  const bySegment = new Map<number, number[]>();
  const all: number[] = [];
  for (const w of t.words) {
    if (w.confidence === null) continue;
    all.push(w.confidence);
    let list = bySegment.get(w.segment_index);
    if (!list) bySegment.set(w.segment_index, (list = []));
    list.push(w.confidence);
  }
  const conf = (xs: number[] | undefined) => {
    const m = mean(xs ?? []);
    return m === null ? null : r(m, 4);
  };
  const written = writtenWords(t);
  return {
    text: t.text,
    confidence: conf(all),
    language: 'en',
    // As the segment's text writes them ("Americans" of "Americans,", the document's "Good"):
    // speech_words holds each word's normalised form.
    wordTimings: t.words.map((w, i) => ({ word: written[i], start: s3(w.start_ms), end: s3(w.end_ms), confidence: w.confidence })),
    segments: t.segments.filter((g) => g.is_final).map((g) => ({ start: s3(g.start_ms), end: s3(g.end_ms), text: g.text, confidence: conf(bySegment.get(g.index)) })),
  };
}

/** Each word of the transcript as its segment's text writes it (lib/words.ts writtenForms), in the order of t.words. */
function writtenWords(t: TranscriptIn): string[] {
  const textOf = new Map(t.segments.map((g) => [g.index, g.text]));
  const bySegment = new Map<number, number[]>();
  t.words.forEach((w, i) => {
    let list = bySegment.get(w.segment_index);
    if (!list) bySegment.set(w.segment_index, (list = []));
    list.push(i);
  });
  const out = t.words.map((w) => w.text);
  for (const [index, at] of bySegment) {
    const forms = writtenForms(textOf.get(index) ?? '', at.map((i) => t.words[i].text));
    at.forEach((i, k) => (out[i] = forms[k]));
  }
  return out;
}

// ---------------------------------------------------------------- metrics

export interface MetricsIn {
  summary: {
    duration_s: number;
    speaking_rate_wpm: number;
    pause_count: number;
    /** Null: fluency analysis was off. */
    filler_count: number | null;
    pitch: { mean_hz: number | null; sd_hz: number | null; min_hz: number | null; max_hz: number | null };
    volume: { mean_dbfs: number | null; sd_db: number | null };
  } | null;
  buckets: Array<{ start_ms: number; end_ms: number; pitch_mean_hz: number | null; volume_dbfs: number; wpm: number }>;
  /** Every second: f0 mean (null unvoiced), dBFS, share of speech. */
  seconds: Array<{ second: number; pitch_mean_hz: number | null; volume_dbfs: number; speech_ratio: number }>;
  pauses: Array<{ start_ms: number; end_ms: number; duration_ms: number; kind: string }>;
  prosody: boolean;
  /** Fluency analysis was on (fillers looked for); off: the filler figures are null, not 0. */
  fluency: boolean;
}

/**
 * Seconds with at least half a second of speech count for loudness, as for the summary's volume
 * (pipelines/speech/stream/results.ts, isSpeechSecond): every second but the last is whole, and
 * the last, shorter one counts by its speech time, not its ratio of a few samples (a 14 ms tail
 * of silence put −120 dBFS into min and the trend).
 */
function isSpeechSecond(x: { second: number; speech_ratio: number }, durationS: number | null): boolean {
  const length = durationS === null ? 1 : Math.max(0, Math.min(1, durationS - x.second));
  return x.speech_ratio * length >= 0.5;
}

export function docPauses(pauses: MetricsIn['pauses']) {
  return pauses.map((p) => ({ start: s3(p.start_ms), end: s3(p.end_ms), duration: s3(p.duration_ms), type: p.kind }));
}

function pitchStats(m: MetricsIn): { mean: number; std: number; min: number; max: number; trend: Trend } | null {
  const p = m.summary?.pitch;
  if (!p || p.mean_hz === null) return null;
  return {
    mean: p.mean_hz,
    std: p.sd_hz ?? 0,
    min: p.min_hz ?? p.mean_hz,
    max: p.max_hz ?? p.mean_hz,
    trend: pitchTrend(m.seconds.map((x) => ({ t: x.second, hz: x.pitch_mean_hz }))),
  };
}

function volumeStats(m: MetricsIn): { mean: number; std: number; min: number; max: number; trend: Trend } | null {
  const v = m.summary?.volume;
  const speech = m.seconds.filter((x) => isSpeechSecond(x, m.summary ? m.summary.duration_s : null));
  if (!v || v.mean_dbfs === null || speech.length === 0) return null;
  const db = speech.map((x) => x.volume_dbfs);
  return {
    mean: v.mean_dbfs,
    std: v.sd_db ?? 0,
    min: r(Math.min(...db), 2),
    max: r(Math.max(...db), 2),
    trend: volumeTrend(speech.map((x) => ({ t: x.second, dbfs: x.volume_dbfs }))),
  };
}

/**
 * The document's metrics. summary.pauseTime: seconds of pauses; timeline: one point per bucket
 * of the granularity, timestamp its start in seconds, pauses those starting in it; pitch and
 * volume (absent with enableProsodyAnalysis false): pitch over voiced frames in Hz (min and max
 * the 5th and 95th percentiles), volume over the seconds with speech in dBFS, trend by
 * linearTrend (speech-coaching-metrics.ts).
 */
export function docMetrics(m: MetricsIn) {
  const pauses = docPauses(m.pauses);
  const pitch = m.prosody ? pitchStats(m) : null;
  const volume = m.prosody ? volumeStats(m) : null;
  return {
    summary: {
      duration: m.summary ? m.summary.duration_s : m.seconds.length,
      wpm: m.summary ? m.summary.speaking_rate_wpm : 0,
      totalPauses: m.summary ? m.summary.pause_count : pauses.length,
      pauseTime: r(pauses.reduce((a, p) => a + p.duration, 0), 3),
      fillerWords: !m.fluency ? null : m.summary ? m.summary.filler_count : 0,
    },
    timeline: m.buckets.map((b) => ({
      timestamp: s3(b.start_ms),
      wpm: b.wpm,
      ...(m.prosody ? { pitch: b.pitch_mean_hz, volume: b.volume_dbfs } : {}),
      pauses: pauses.filter((p) => p.start * 1000 >= b.start_ms && p.start * 1000 < b.end_ms),
    })),
    ...(pitch ? { pitch } : {}),
    ...(volume ? { volume } : {}),
    pauses,
  };
}

/** The session detail's metrics (the document's shorter form: range = [min, max]), plus the summary. */
export function docInlineMetrics(m: MetricsIn) {
  const full = docMetrics(m);
  const withRange = <T extends { min: number; max: number }>(x: T | undefined) => (x ? { ...x, range: [x.min, x.max] } : undefined);
  return {
    wpm: full.summary.wpm,
    ...(full.pitch ? { pitch: withRange(full.pitch) } : {}),
    ...(full.volume ? { volume: withRange(full.volume) } : {}),
    pauses: full.pauses,
    summary: full.summary,
  };
}

// ---------------------------------------------------------------- scores

export interface ScoresIn {
  model: string;
  scores: Record<'overall' | Category, number>;
  features: Record<string, unknown>;
  weights: Record<string, unknown>;
  factors: Record<string, unknown>;
}

const asByScore = (o: Record<string, unknown>) => (Object.keys(o).length === 0 ? null : (o as Record<string, Record<string, number>>));

export function docScores(s: ScoresIn) {
  const weights = asByScore(s.weights);
  const factors = asByScore(s.factors);
  return {
    overall: s.scores.overall,
    categories: coachingCategories(s.model, s.scores, weights, factors),
    benchmarks: BENCHMARKS,
    improvements: coachingImprovements(s.model, weights, factors, s.features).map((i) => ({ category: i.category, suggestion: i.suggestion, impact: i.impact, factor: i.factor, pointsLost: i.pointsLost })),
    model: s.model,
  };
}

/** The session detail's scores: the document's flat numbers, and the categories as on /scores. */
export function docInlineScores(s: ScoresIn) {
  return { ...s.scores, ...docScores(s) };
}

// ---------------------------------------------------------------- fluency

export interface FluencyIn {
  duration_s: number;
  /** First to last speech, s (null without words): what the rates per minute divide by. */
  span_s?: number | null;
  /** Words recognised; 0: nothing was said, so there is no fluency to rate. */
  word_count?: number;
  pauses: { long_count: number };
  fillers: { by_filler: Array<{ filler: string; count: number; timestamps_ms: number[] }> };
  repetitions: { count: number };
  /** Repeated words in order (every copy after the first), with their segment, for grouping into phrases. */
  repeatedWords: Array<{ text: string; start_ms: number; segment_index: number; word_index: number }>;
}

/**
 * The document's fluency. fillerWords[].frequency: the filler's share of all fillers (the
 * document's example: um 3 and uh 2 of 5 are 0.6 and 0.4); repetitions: consecutive repeated
 * words of one utterance form one repeated phrase, grouped by text (count, start of each copy);
 * overallFluency by overallFluency() (speech-coaching-metrics.ts). No grammarErrors:
 * Attune has no grammar model (README).
 */
export function docFluency(f: FluencyIn) {
  const total = f.fillers.by_filler.reduce((a, x) => a + x.count, 0);
  const phrases: Array<{ text: string; start: number }> = [];
  let prev: FluencyIn['repeatedWords'][number] | null = null;
  for (const w of f.repeatedWords) {
    if (prev && prev.segment_index === w.segment_index && prev.word_index + 1 === w.word_index) phrases[phrases.length - 1].text += ` ${w.text}`;
    else phrases.push({ text: w.text, start: s3(w.start_ms) });
    prev = w;
  }
  const byPhrase = new Map<string, number[]>();
  for (const p of phrases) {
    let list = byPhrase.get(p.text);
    if (!list) byPhrase.set(p.text, (list = []));
    list.push(p.start);
  }
  return {
    fillerWords: f.fillers.by_filler.map((x) => ({ word: x.filler, count: x.count, timestamps: x.timestamps_ms.map(s3), frequency: total > 0 ? r(x.count / total, 4) : 0 })),
    repetitions: [...byPhrase].map(([phrase, ts]) => ({ phrase, count: ts.length, timestamps: ts })).sort((a, b) => b.count - a.count || a.timestamps[0] - b.timestamps[0]),
    // Silence is not perfect fluency: without a word there is nothing to rate (null, as without audio).
    overallFluency: f.word_count === 0 ? null : overallFluency({ durationS: f.span_s ?? f.duration_s, fillerCount: total, repetitionCount: f.repetitions.count, longPauseCount: f.pauses.long_count }),
  };
}
