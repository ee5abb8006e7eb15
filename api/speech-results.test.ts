// Results routes over HTTP against chDB, with rows inserted directly into the speech tables:
// transcript (final text, partial segments, latest version), metrics per granularity with
// exact aggregates, fluency and scores (404 until computed), tenant checks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SpeechFillerRow, SpeechFrameRow, SpeechPauseRow, SpeechScoreRow, SpeechSegmentRow, SpeechSummaryRow, SpeechWordRow } from '../store/rows.js';
import { SPEECH_READ, startSpeechTestServer, type SpeechTestServer } from './speech-api.test-util.js';
import type { SpeechSession } from '../store/postgres/speech-sessions-repo.js';

let srv: SpeechTestServer;
const ORG = 'o-res';
const USER = 'u-res';
const AUDIO_AT = Date.UTC(2025, 5, 1, 9, 0, 0);
const T0 = Date.UTC(2025, 5, 1, 9, 5, 0);
let token: string;

before(async () => {
  srv = await startSpeechTestServer();
  token = srv.token(USER, ORG, SPEECH_READ);
});
after(async () => {
  await srv?.close();
});

async function newSession(status: SpeechSession['status'] = 'processing'): Promise<SpeechSession> {
  const s = await srv.speechSessions.create({ orgId: ORG, userId: USER, type: 'speech' });
  if (status === 'created') return s;
  await srv.speechSessions.claimForAudio(s.id, { source: 'upload', startedAt: AUDIO_AT, sampleRateHz: 16_000 });
  return status === 'processing' ? (await srv.speechSessions.get(s.id))! : srv.speechSessions.update(s.id, { status });
}

const common = (s: SpeechSession) => ({ session_id: s.id, stream_id: 'upload-1', org_id: ORG, user_id: USER, audio_started_at: AUDIO_AT });

function segment(s: SpeechSession, i: number, text: string, over: Partial<SpeechSegmentRow> = {}): SpeechSegmentRow {
  return { ...common(s), segment_index: i, start_ms: i * 4000, end_ms: i * 4000 + 3000, text, word_count: text.split(' ').length, is_final: true, model: 'moonshine-tiny', computed_at: T0, ...over };
}

function word(s: SpeechSession, seg: number, i: number, text: string, over: Partial<SpeechWordRow> = {}): SpeechWordRow {
  const start = seg * 4000 + i * 500;
  return {
    ...common(s), segment_index: seg, word_index: i, text, start_ms: start, end_ms: start + 400, confidence: 0.9, is_filler: false, filler: '',
    is_repetition: false, timing_method: 'forced_alignment', model: 'moonshine-tiny', computed_at: T0, ...over,
  };
}

test('transcript: final segments joined in order, every word with its times, partial segments listed; latest versions win', async () => {
  const s = await newSession();
  await srv.insertRows('speech_segments', [
    segment(s, 1, 'i lie', { is_final: false, computed_at: T0 - 5000 }), // replaced by the final below
    segment(s, 0, 'hello um world'),
    segment(s, 1, 'i like tea'),
    segment(s, 2, 'so the the', { is_final: false }),
  ]);
  await srv.insertRows('speech_words', [
    word(s, 0, 0, 'hello'),
    word(s, 0, 1, 'um', { is_filler: true, filler: 'um', confidence: null, timing_method: 'syllable_estimate' }),
    word(s, 0, 2, 'world'),
    word(s, 1, 0, 'i'),
    word(s, 1, 1, 'like'),
    word(s, 1, 2, 'tea', { is_repetition: true }),
  ]);
  const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/transcript`, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.session_id, s.id);
  assert.equal(res.body.status, 'processing');
  assert.equal(res.body.text, 'hello um world i like tea');
  assert.equal(res.body.model, 'moonshine-tiny');
  assert.deepEqual(res.body.segments, [
    { index: 0, start_ms: 0, end_ms: 3000, text: 'hello um world', is_final: true },
    { index: 1, start_ms: 4000, end_ms: 7000, text: 'i like tea', is_final: true },
    { index: 2, start_ms: 8000, end_ms: 11000, text: 'so the the', is_final: false },
  ]);
  assert.deepEqual(res.body.words.map((w: { text: string }) => w.text), ['hello', 'um', 'world', 'i', 'like', 'tea']);
  assert.deepEqual(res.body.words[1], {
    text: 'um', start_ms: 500, end_ms: 900, confidence: null, is_filler: true, filler: 'um', is_repetition: false, timing_method: 'syllable_estimate', segment_index: 0,
  });
  assert.deepEqual(res.body.words[4], {
    text: 'like', start_ms: 4500, end_ms: 4900, confidence: 0.9, is_filler: false, filler: null, is_repetition: false, timing_method: 'forced_alignment', segment_index: 1,
  });
  assert.equal(res.body.words[5].is_repetition, true);

  // The speech-coaching document's transcript: seconds, confidences (the mean of the words' that have one).
  assert.equal(res.body.success, true);
  const t = res.body.data.transcript;
  assert.deepEqual([t.text, t.confidence, t.language], ['hello um world i like tea', 0.9, 'en']);
  assert.deepEqual(t.wordTimings[1], { word: 'um', start: 0.5, end: 0.9, confidence: null });
  assert.deepEqual(t.wordTimings[4], { word: 'like', start: 4.5, end: 4.9, confidence: 0.9 });
  assert.deepEqual(t.segments, [
    { start: 0, end: 3, text: 'hello um world', confidence: 0.9 },
    { start: 4, end: 7, text: 'i like tea', confidence: 0.9 },
  ], 'final segments only');
});

test("the document's wordTimings give each word as its segment's text writes it (\"Good\", \"Americans\"); a word the text does not hold (an acoustic filler) as stored", async () => {
  const s = await newSession();
  await srv.insertRows('speech_segments', [segment(s, 0, 'Good morning, fellow Americans!'), segment(s, 1, "I'm here — well-known.")]);
  await srv.insertRows('speech_words', [
    word(s, 0, 0, 'good'),
    word(s, 0, 1, 'um', { is_filler: true, filler: 'um', confidence: null, timing_method: 'syllable_estimate' }),
    word(s, 0, 2, 'morning'),
    word(s, 0, 3, 'fellow'),
    word(s, 0, 4, 'americans'),
    word(s, 1, 0, "i'm"),
    word(s, 1, 1, 'here'),
    word(s, 1, 2, 'well-known'),
  ]);
  const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/transcript`, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.data.transcript.wordTimings.map((w: { word: string }) => w.word), ['Good', 'um', 'morning', 'fellow', 'Americans', "I'm", 'here', 'well-known']);
  // Attune's own words stay the stored, normalised forms.
  assert.deepEqual(res.body.words.map((w: { text: string }) => w.text), ['good', 'um', 'morning', 'fellow', 'americans', "i'm", 'here', 'well-known']);
});

test('transcript of a session with nothing stored yet: empty, with its status', async () => {
  const s = await newSession('created');
  const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/transcript`, { token });
  assert.equal(res.status, 200);
  const { success, data, meta, ...attune } = res.body;
  assert.deepEqual(attune, { session_id: s.id, status: 'created', text: '', model: null, words: [], segments: [] });
  assert.equal(success, true);
  assert.equal(typeof meta.requestId, 'string');
  assert.deepEqual(data, { transcript: { text: '', confidence: null, language: 'en', wordTimings: [], segments: [] } });
});

function frame(s: SpeechSession, i: number, over: Partial<SpeechFrameRow> = {}): SpeechFrameRow {
  const voiced = i < 10;
  return {
    ...common(s), second_index: i, pitch_mean_hz: voiced ? 100 + 10 * i : null, pitch_sd_hz: voiced && i % 2 === 0 ? 5 : null,
    volume_dbfs: voiced ? -20 : -120, voiced_ratio: voiced ? 0.5 : 0, speech_ratio: voiced ? 1 : 0, word_count: voiced ? 2 : 0,
    filler_count: i === 3 ? 1 : 0, rolling_wpm: 10 * i, computed_at: T0, ...over,
  };
}

test('metrics: per-second rows aggregated by granularity with exact weighted pitch, pooled sd, energy-mean volume and rates', async () => {
  const s = await newSession();
  const other = await newSession();
  await srv.insertRows('speech_frames', [
    frame(s, 0, { pitch_mean_hz: 400, volume_dbfs: -3, computed_at: T0 - 1000 }), // an older version of second 0
    ...Array.from({ length: 12 }, (_, i) => frame(s, i)),
    frame(other, 0, { pitch_mean_hz: 300, word_count: 50 }),
  ]);
  const get = async (q: string) => {
    const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/metrics${q}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  const perSecond = await get('');
  assert.equal(perSecond.granularity, 'second');
  assert.equal(perSecond.bucket_s, 1);
  assert.equal(perSecond.status, 'processing');
  assert.equal(perSecond.buckets.length, 12);
  assert.deepEqual(perSecond.buckets[0], {
    start_ms: 0, end_ms: 1000, pitch_mean_hz: 100, pitch_sd_hz: 5, volume_dbfs: -20, voiced_ratio: 0.5, speech_ratio: 1, word_count: 2, filler_count: 0, wpm: 120, rolling_wpm: 0,
  });
  assert.equal(perSecond.buckets[1].pitch_sd_hz, null, 'one voiced second without sd has none');
  assert.deepEqual(perSecond.buckets[11], {
    start_ms: 11_000, end_ms: 12_000, pitch_mean_hz: null, pitch_sd_hz: null, volume_dbfs: -120, voiced_ratio: 0, speech_ratio: 0, word_count: 0, filler_count: 0, wpm: 0, rolling_wpm: 110,
  });

  const five = await get('?granularity=5second');
  assert.deepEqual(five.buckets.map((b: { start_ms: number; end_ms: number }) => [b.start_ms, b.end_ms]), [[0, 5000], [5000, 10_000], [10_000, 12_000]]);
  const b0 = five.buckets[0];
  assert.equal(b0.pitch_mean_hz, 120);
  // Pooled: sqrt((3·25 + Σm²)/5 − 120²) over m = 100..140 = sqrt(215).
  assert.equal(b0.pitch_sd_hz, Number(Math.sqrt(215).toFixed(2)));
  assert.equal(b0.word_count, 10);
  assert.equal(b0.filler_count, 1);
  assert.equal(b0.wpm, 120);
  assert.equal(b0.rolling_wpm, 40);
  assert.equal(five.buckets[2].pitch_mean_hz, null);
  assert.equal(five.buckets[2].wpm, 0);

  const ten = await get('?granularity=10second');
  assert.equal(ten.buckets[0].pitch_mean_hz, 145);
  assert.equal(ten.buckets[0].wpm, 120);

  const minute = await get('?granularity=minute');
  assert.equal(minute.buckets.length, 1);
  const m = minute.buckets[0];
  assert.equal(m.volume_dbfs, Number((10 * Math.log10((10 * 10 ** -2 + 2 * 10 ** -12) / 12)).toFixed(2)), 'energy mean, not the mean of dB');
  assert.equal(m.voiced_ratio, Number((5 / 12).toFixed(4)));
  assert.equal(m.word_count, 20);
  assert.equal(m.wpm, 100, '20 words over the 12 s stored');
  assert.equal(m.rolling_wpm, 110);

  // The document's metrics, before the summary exists: timeline and pauses, no pitch or volume statistics.
  const docFive = five.data.metrics;
  assert.deepEqual(docFive.timeline.map((p: { timestamp: number; wpm: number; pitch: number | null }) => [p.timestamp, p.wpm, p.pitch]), [[0, 120, 120], [5, 120, 170], [10, 0, null]]);
  assert.deepEqual(docFive.summary, { duration: 12, wpm: 0, totalPauses: 0, pauseTime: 0, fillerWords: 0 });
  assert.ok(!('pitch' in docFive) && !('volume' in docFive));

  // With the summary and pauses: pitch rising 100 -> 190 Hz (11 semitones) is increasing, the flat -20 dBFS stable.
  await srv.insertRows('speech_summaries', [summary(s, { duration_ms: 12_000 })]);
  await srv.insertRows('speech_pauses', [
    { ...common(s), start_ms: 10_000, end_ms: 12_000, duration_ms: 2000, kind: 'long', computed_at: T0 },
    { ...common(s), start_ms: 2200, end_ms: 2600, duration_ms: 400, kind: 'natural', computed_at: T0 },
  ]);
  const doc = (await get('?granularity=5second')).data.metrics;
  assert.deepEqual(doc.summary, { duration: 12, wpm: 150, totalPauses: 3, pauseTime: 2.4, fillerWords: 4 });
  assert.deepEqual(doc.pitch, { mean: 150, std: 20, min: 110, max: 200, trend: 'increasing' });
  assert.deepEqual(doc.volume, { mean: -22, std: 3, min: -20, max: -20, trend: 'stable' });
  assert.deepEqual(doc.pauses, [{ start: 2.2, end: 2.6, duration: 0.4, type: 'natural' }, { start: 10, end: 12, duration: 2, type: 'long' }]);
  assert.deepEqual(doc.timeline.map((p: { pauses: unknown[] }) => p.pauses.length), [1, 0, 1], 'each pause in the bucket it starts in');
  assert.equal(doc.timeline[0].volume, b0.volume_dbfs);

  const bad = await srv.request('GET', `/v1/speech-sessions/${s.id}/metrics?granularity=hour`, { token });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'validation_error');
});

function summary(s: SpeechSession, over: Partial<SpeechSummaryRow> = {}): SpeechSummaryRow {
  return {
    ...common(s), duration_ms: 60_000, speech_ms: 45_000, word_count: 150, speaking_rate_wpm: 150, articulation_rate_wpm: 200, pause_count: 3,
    long_pause_count: 1, pause_ratio: 0.25, mean_pause_ms: 900, filler_count: 4, filler_rate_per_min: 4, repetition_count: 1, pitch_mean_hz: 150,
    pitch_sd_hz: 20, pitch_min_hz: 110, pitch_max_hz: 200, pitch_variability_st: 2.2, monotone: false, volume_mean_dbfs: -22, volume_sd_db: 3,
    model: 'moonshine-tiny', computed_at: T0, ...over,
  };
}

test('fluency: 404 until the summary exists, then rates, pauses, fillers by filler, repetitions, pitch and volume', async () => {
  const s = await newSession();
  const before = await srv.request('GET', `/v1/speech-sessions/${s.id}/fluency`, { token });
  assert.equal(before.status, 404);
  assert.equal(before.body.error.code, 'not_found');
  assert.equal(before.body.error.message, 'no fluency yet: session is processing');

  const pause = (start: number, end: number, kind: 'natural' | 'long'): SpeechPauseRow => ({ ...common(s), start_ms: start, end_ms: end, duration_ms: end - start, kind, computed_at: T0 });
  const filler = (start: number, name: string, source: SpeechFillerRow['source']): SpeechFillerRow => ({
    ...common(s), start_ms: start, end_ms: start + 300, filler: name, source, segment_index: source === 'acoustic' ? null : 0, word_index: source === 'acoustic' ? null : 1, computed_at: T0,
  });
  await srv.insertRows('speech_pauses', [pause(3000, 3400, 'natural'), pause(9000, 10_500, 'long'), pause(20_000, 20_800, 'natural')]);
  await srv.insertRows('speech_fillers', [filler(5000, 'um', 'both'), filler(1000, 'um', 'transcript'), filler(3000, 'like', 'transcript'), filler(7000, 'filled_pause', 'acoustic')]);
  await srv.insertRows('speech_words', [word(s, 0, 0, 'the'), word(s, 0, 1, 'the', { is_repetition: true })]);
  await srv.speechSessions.update(s.id, { status: 'completed' });
  await srv.insertRows('speech_summaries', [summary(s)]);

  const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/fluency`, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const f = res.body;
  assert.equal(f.status, 'completed');
  assert.deepEqual([f.speaking_rate_wpm, f.articulation_rate_wpm, f.word_count, f.duration_s, f.speech_s], [150, 200, 150, 60, 45]);
  assert.deepEqual(f.pauses, {
    count: 3, long_count: 1, ratio: 0.25, mean_ms: 900,
    items: [
      { start_ms: 3000, end_ms: 3400, duration_ms: 400, kind: 'natural' },
      { start_ms: 9000, end_ms: 10_500, duration_ms: 1500, kind: 'long' },
      { start_ms: 20_000, end_ms: 20_800, duration_ms: 800, kind: 'natural' },
    ],
  });
  assert.equal(f.fillers.count, 4);
  assert.equal(f.fillers.rate_per_min, 4);
  assert.deepEqual(f.fillers.by_filler, [
    { filler: 'um', count: 2, rate_per_min: 2, timestamps_ms: [1000, 5000] },
    { filler: 'filled_pause', count: 1, rate_per_min: 1, timestamps_ms: [7000] },
    { filler: 'like', count: 1, rate_per_min: 1, timestamps_ms: [3000] },
  ]);
  assert.deepEqual(f.fillers.items.map((x: { start_ms: number; source: string }) => [x.start_ms, x.source]), [[1000, 'transcript'], [3000, 'transcript'], [5000, 'both'], [7000, 'acoustic']]);
  assert.deepEqual(f.repetitions, { count: 1, items: [{ text: 'the', start_ms: 500 }] });
  assert.deepEqual(f.pitch, { mean_hz: 150, sd_hz: 20, min_hz: 110, max_hz: 200, variability_st: 2.2, monotone: false });
  assert.deepEqual(f.volume, { mean_dbfs: -22, sd_db: 3 });

  // The document's fluency: frequency is the share of all fillers; seconds; overallFluency =
  // 100 x mean(fillers 4/min -> 0.8, repetitions 1/min -> 1, long pauses 1/min -> 1) = 93.3.
  assert.deepEqual(f.data.fluency, {
    fillerWords: [
      { word: 'um', count: 2, timestamps: [1, 5], frequency: 0.5 },
      { word: 'filled_pause', count: 1, timestamps: [7], frequency: 0.25 },
      { word: 'like', count: 1, timestamps: [3], frequency: 0.25 },
    ],
    repetitions: [{ phrase: 'the', count: 1, timestamps: [0.5] }],
    overallFluency: 93.3,
  });
  assert.ok(!('grammarErrors' in f.data.fluency), 'no grammar model: no grammarErrors, not an empty list');
});

test('settings enableFluencyAnalysis / enableScoring false: /fluency and /scores are 404 saying so, and nothing inline', async () => {
  const s = await srv.speechSessions.create({ orgId: ORG, userId: USER, type: 'speech', settings: { enableFluencyAnalysis: false, enableScoring: false } });
  await srv.speechSessions.claimForAudio(s.id, { source: 'upload', startedAt: AUDIO_AT, sampleRateHz: 16_000 });
  await srv.speechSessions.update(s.id, { status: 'completed' });
  await srv.insertRows('speech_summaries', [summary(s)]);
  for (const [route, setting] of [['fluency', 'enableFluencyAnalysis'], ['scores', 'enableScoring']]) {
    const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/${route}`, { token });
    assert.equal(res.status, 404, route);
    assert.equal(res.body.error.message, `no ${route}: the session's settings.${setting} is false`);
  }
  const detail = await srv.request('GET', `/v1/speech-sessions/${s.id}`, { token });
  assert.equal(detail.status, 200);
  const doc = detail.body.data.session;
  assert.ok(!('fluency' in doc) && !('scores' in doc), JSON.stringify(doc));
  assert.ok('transcript' in doc && 'metrics' in doc);
  assert.equal(doc.metrics.wpm, 150);
  assert.deepEqual(doc.metrics.pitch.range, [110, 200]);
  // Fillers and repetitions were not looked for: null, not the stored zeros (a count of none).
  assert.deepEqual([detail.body.summary.filler_count, detail.body.summary.filler_rate_per_min, detail.body.summary.repetition_count], [null, null, null]);
  assert.equal(doc.metrics.summary.fillerWords, null);
  await srv.insertRows('speech_frames', [frame(s, 0, { filler_count: 0 })]);
  const metrics = await srv.request('GET', `/v1/speech-sessions/${s.id}/metrics`, { token });
  assert.equal(metrics.body.data.metrics.summary.fillerWords, null);
  assert.deepEqual(metrics.body.buckets.map((b: { filler_count: number | null }) => b.filler_count), [null], 'per bucket too');
});

test('scores: 404 saying why until computed, then the latest model with features, weights and factors', async () => {
  const fresh = await newSession('created');
  const none = await srv.request('GET', `/v1/speech-sessions/${fresh.id}/scores`, { token });
  assert.equal(none.status, 404);
  assert.equal(none.body.error.message, 'no scores yet: session has no audio yet');

  const s = await newSession();
  const processing = await srv.request('GET', `/v1/speech-sessions/${s.id}/scores`, { token });
  assert.equal(processing.status, 404);
  assert.equal(processing.body.error.message, 'no scores yet: session is processing');

  const row = (model: string, overall: number, computedAt: number): SpeechScoreRow => ({
    session_id: s.id, stream_id: 'upload-1', org_id: ORG, user_id: USER, model, overall, clarity: 71.3, pace: 88.8, engagement: 54.2, confidence: 66.6,
    features_json: JSON.stringify({ speaking_rate_wpm: 150, filler_rate_per_min: 4 }),
    weights_json: JSON.stringify({ pace: { speaking_rate_wpm: 0.7 } }),
    factors_json: JSON.stringify({ pace: { speaking_rate_wpm: 12.5 } }),
    computed_at: computedAt,
  });
  await srv.insertRows('speech_scores', [row('rubric-v1', 70.1, T0), row('trained-v2', 81.7, T0 + 1000), row('rubric-v1', 60, T0 - 1000)]);
  const res = await srv.request('GET', `/v1/speech-sessions/${s.id}/scores`, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const { success, data, meta, ...attune } = res.body;
  assert.equal(success, true);
  assert.ok(meta.requestId);
  // A model other than the rubric: no category weights claimed; pace's speed factor is the feature's sub-score (12.5 / 0.7).
  assert.equal(data.scores.overall, 81.7);
  assert.deepEqual(data.scores.categories.pace, { score: 88.8, weight: null, factors: { speed: 17.9 } });
  assert.deepEqual(data.scores.categories.clarity, { score: 71.3, weight: null, factors: {} });
  assert.deepEqual(data.scores.benchmarks, { beginner: 60, intermediate: 75, advanced: 90, expert: 95 });
  assert.deepEqual(data.scores.improvements.map((i: { category: string; impact: string }) => [i.category, i.impact]), [['pace', 'high']]);
  assert.deepEqual(attune, {
    session_id: s.id,
    status: 'processing',
    model: 'trained-v2',
    scores: { overall: 81.7, clarity: 71.3, pace: 88.8, engagement: 54.2, confidence: 66.6 },
    features: { speaking_rate_wpm: 150, filler_rate_per_min: 4 },
    weights: { pace: { speaking_rate_wpm: 0.7 } },
    factors: { pace: { speaking_rate_wpm: 12.5 } },
    computed_at: new Date(T0 + 1000).toISOString(),
  });
});

test("results of another user's or org's session are 404; a missing scope is 403", async () => {
  const s = await newSession('completed');
  await srv.insertRows('speech_summaries', [summary(s)]);
  for (const route of ['transcript', 'metrics', 'fluency', 'scores']) {
    const path = `/v1/speech-sessions/${s.id}/${route}`;
    const stranger = await srv.request('GET', path, { token: srv.token('stranger', ORG, SPEECH_READ) });
    assert.equal(stranger.status, 404, route);
    assert.equal(stranger.body.error.code, 'not_found');
    assert.match(stranger.body.error.message, /speech session .* not found/);
    assert.equal((await srv.request('GET', path, { token: srv.token(USER, 'other-org', SPEECH_READ) })).status, 404, route);
    assert.equal((await srv.request('GET', path, { token: srv.token(USER, ORG, ['read:sessions']) })).status, 403, route);
  }
  const admin = await srv.request('GET', `/v1/speech-sessions/${s.id}/fluency`, { token: srv.token('boss', ORG, [...SPEECH_READ, 'admin:org']) });
  assert.equal(admin.status, 200);
});

test('DELETE removes the session and every row of it in each speech table; others stay', async () => {
  // speech_terms: transcript search's index (0011), written from speech_segments by a view:
  // the segment's own row and one per word.
  const tables = ['speech_segments', 'speech_words', 'speech_frames', 'speech_pauses', 'speech_fillers', 'speech_summaries', 'speech_scores', 'speech_terms'];
  const seed = async (s: SpeechSession) => {
    await srv.insertRows('speech_segments', [segment(s, 0, 'hello world')]);
    await srv.insertRows('speech_words', [word(s, 0, 0, 'hello'), word(s, 0, 1, 'world')]);
    await srv.insertRows('speech_frames', [frame(s, 0), frame(s, 1)]);
    await srv.insertRows('speech_pauses', [{ ...common(s), start_ms: 100, end_ms: 500, duration_ms: 400, kind: 'natural', computed_at: T0 }]);
    await srv.insertRows('speech_fillers', [{ ...common(s), start_ms: 100, end_ms: 300, filler: 'um', source: 'acoustic', segment_index: null, word_index: null, computed_at: T0 }]);
    await srv.insertRows('speech_summaries', [summary(s)]);
    await srv.insertRows('speech_scores', [{ session_id: s.id, org_id: ORG, user_id: USER, model: 'rubric-v1', overall: 70, clarity: 70, pace: 70, engagement: 70, confidence: 70, features_json: '{}', weights_json: '{}', factors_json: '{}', computed_at: T0 }]);
  };
  const counts = async (s: SpeechSession) => {
    const out: Record<string, number> = {};
    for (const t of tables) {
      const rs = await srv.store.client.query({ query: `SELECT count() AS n FROM ${srv.store.table(t)} WHERE session_id = {sid:String}`, query_params: { sid: s.id }, format: 'JSONEachRow' });
      out[t] = Number(((await rs.json()) as Array<{ n: string }>)[0].n);
    }
    return out;
  };
  const doomed = await newSession('completed');
  const kept = await newSession('completed');
  await seed(doomed);
  await seed(kept);
  const upload = await srv.entities.client.query(
    `INSERT INTO speech_uploads (upload_id, session_id, org_id, user_id, file_name, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, 'a.wav', now(), now()) RETURNING upload_id::text AS id`,
    [doomed.id, ORG, USER],
  );
  const expected = { speech_segments: 1, speech_words: 2, speech_frames: 2, speech_pauses: 1, speech_fillers: 1, speech_summaries: 1, speech_scores: 1, speech_terms: 3 };
  assert.deepEqual(await counts(doomed), expected);
  const writer = srv.token(USER, ORG, ['read:speech', 'write:speech']);

  assert.equal((await srv.request('DELETE', `/v1/speech-sessions/${doomed.id}`, { token })).status, 403, 'needs write:speech');
  assert.equal((await srv.request('DELETE', `/v1/speech-sessions/${doomed.id}`, { token: srv.token('stranger', ORG, ['write:speech']) })).status, 404);
  const busy = await newSession('processing');
  const refused = await srv.request('DELETE', `/v1/speech-sessions/${busy.id}`, { token: writer });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.details[0].reason, 'session_busy');

  const res = await srv.request('DELETE', `/v1/speech-sessions/${doomed.id}`, { token: writer });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.success, true);
  assert.deepEqual(res.body.data, { message: 'Session deleted successfully' });
  assert.deepEqual([res.body.id, res.body.deleted], [doomed.id, true]);
  assert.deepEqual(await counts(doomed), Object.fromEntries(tables.map((t) => [t, 0])), 'no row of the session in any speech table');
  assert.deepEqual(await counts(kept), expected, "another session's rows stay");
  const left = await srv.entities.client.query(`SELECT count(*)::int AS n FROM speech_uploads WHERE upload_id = $1`, [(upload.rows[0] as { id: string }).id]);
  assert.equal((left.rows[0] as { n: number }).n, 0, 'its uploads are gone');
  assert.equal((await srv.request('GET', `/v1/speech-sessions/${doomed.id}`, { token })).status, 404);
  assert.equal((await srv.request('DELETE', `/v1/speech-sessions/${doomed.id}`, { token: writer })).status, 404);
});
