// A speech stream's results as bus records (result-records.ts): an hour of results splits into
// records Kafka accepts, the completion is on the last one only, every row survives the
// Avro round trip, and the rows the sink derives are those of one unsplit record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCodec, decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SpeechResult } from '../../schemas/registry/schemas.js';
import { Topics } from '../../schemas/topics.js';
import { finalResultRecords, notASpeechResult, segmentResultRecord, speechResultRows, type SpeechResultHead, type SpeechResultRows } from './result-records.js';
import type { SegmentTranscript } from './stream/recognition.js';
import { syntheticResults } from './result-records.test-util.js';
import type { SpeechScores } from './scoring/index.js';

const head: SpeechResultHead = {
  session_id: '5f0b8a4e-3b7d-4d8e-9a51-0c2f6f1e7a10',
  org_id: 'o1',
  user_id: 'u1',
  stream_id: '0d3c8b8e-1f8a-4a57-b1c5-6b2b1f0c9e22',
  source: 'upload',
  audio_started_at: Date.UTC(2026, 11, 3, 9),
  model: 'moonshine-base',
};

const scores = {
  model: 'rubric-v1',
  scores: { overall: 71.26, clarity: 70, pace: 80, engagement: 60, confidence: 75 },
  features: { wpm: 160 },
  subscores: {},
  weights: null,
  factors: null,
} as unknown as SpeechScores;

async function codec(): Promise<Codec> {
  return (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
}

function allRows(records: SpeechResult[]): SpeechResultRows {
  const out: SpeechResultRows = { segments: [], words: [], fillers: [], pauses: [], frames: [], summaries: [], scores: [] };
  for (const r of records) {
    const rows = speechResultRows(r);
    for (const k of Object.keys(out) as Array<keyof SpeechResultRows>) (out[k] as object[]).push(...rows[k]);
  }
  return out;
}

test("an hour of results: records under Kafka's 1 MB, the completion on the last only, the same rows as one unsplit record after the Avro round trip", async () => {
  const c = await codec();
  const { transcripts, results } = syntheticResults(3600, head.model);
  const computedAt = Date.UTC(2026, 11, 3, 10);
  const records = finalResultRecords(head, { transcripts, results, scores, prosody: true, computedAt });
  assert.ok(records.length > 1, `${records.length} records`);
  const decoded: SpeechResult[] = [];
  for (const [i, r] of records.entries()) {
    const value = await c.encode(Topics.speechResults, r);
    assert.ok(value.length < 1_000_000, `record ${i}: ${value.length} bytes`);
    let d = decodeRecord<SpeechResult>(c, value);
    if (d instanceof Promise) d = await d;
    assert.equal(notASpeechResult(d), null);
    decoded.push(d);
    const last = i === records.length - 1;
    assert.equal(d.completion !== null, last, `completion on record ${i}`);
    assert.equal(d.summary !== null, last);
  }
  const c0 = decoded[decoded.length - 1].completion!;
  assert.deepEqual({ ...c0 }, { duration_ms: 3_600_000, word_count: results.words.length, score: 71.3, record_count: records.length });

  const whole = finalResultRecords(head, { transcripts, results, scores, prosody: true, computedAt, budgetBytes: Infinity });
  assert.equal(whole.length, 1);
  const split = allRows(decoded);
  const one = allRows(whole);
  assert.deepEqual(split, one);
  assert.deepEqual(
    [split.words.length, split.frames.length, split.pauses.length, split.fillers.length, split.segments.length, split.summaries.length, split.scores.length],
    [results.words.length, 3600, results.pauses.length, results.fillers.length, transcripts.length, 1, 1],
  );
  // Whole milliseconds, the record's columns on every row, the stream's model on words and summary.
  const w = split.words[1];
  assert.deepEqual(
    { start: w.start_ms, end: w.end_ms, session: w.session_id, at: w.audio_started_at, computed: w.computed_at, model: w.model },
    { start: 330, end: 621, session: head.session_id, at: head.audio_started_at, computed: computedAt, model: head.model },
  );
  assert.equal(split.words[3].confidence, null);
  assert.equal(split.summaries[0].model, head.model);
  assert.equal(split.summaries[0].mean_pause_ms, 700);
  // A filler found in the transcript points at its word; one heard only in the audio does not.
  assert.deepEqual([split.fillers[0].segment_index, split.fillers[0].word_index], [0, 0]);
  assert.deepEqual(split.fillers.find((f) => f.source === 'acoustic')!.word_index, null);
  // The final segment rows count the words the results hold for them.
  assert.equal(split.segments[0].word_count, 16);
});

test('prosody off: no pitch or volume figures (the frames keep their level); not scored: no score row, score null', () => {
  const { transcripts, results } = syntheticResults(30, head.model);
  const [r] = finalResultRecords(head, { transcripts, results, scores: null, prosody: false, computedAt: 1 });
  const rows = speechResultRows(r);
  assert.ok(rows.frames.every((f) => f.pitch_mean_hz === null && f.pitch_sd_hz === null && f.volume_dbfs === -23.25));
  const s = rows.summaries[0];
  assert.deepEqual([s.pitch_mean_hz, s.pitch_sd_hz, s.pitch_min_hz, s.pitch_max_hz, s.pitch_variability_st, s.monotone, s.volume_mean_dbfs, s.volume_sd_db], [null, null, null, null, null, null, null, null]);
  assert.equal(rows.scores.length, 0);
  assert.equal(r.completion!.score, null);
});

test('a segment record carries one final segment and nothing else; records of other shapes are named', async () => {
  const t: SegmentTranscript = { index: 4, startMs: 1000.6, endMs: 2500, speechStartMs: 1000, speechEndMs: 2500, text: 'hello there', words: [{} as never, {} as never], model: 'moonshine-tiny', timingMethod: 'syllable_estimate', filledPauses: [], computeMs: 0 };
  const r = segmentResultRecord({ ...head, source: 'live' }, t, 42);
  const rows = speechResultRows(r);
  assert.deepEqual(rows.segments, [{ session_id: head.session_id, stream_id: head.stream_id, org_id: 'o1', user_id: 'u1', audio_started_at: head.audio_started_at, computed_at: 42, segment_index: 4, start_ms: 1001, end_ms: 2500, text: 'hello there', word_count: 2, is_final: true, model: 'moonshine-tiny' }]);
  assert.equal(rows.words.length + rows.frames.length + rows.summaries.length + rows.scores.length, 0);
  assert.equal(r.completion, null);
  assert.equal(notASpeechResult(r), null);
  // A live event where a result belongs, and broken shapes.
  assert.match(notASpeechResult({ event_id: 'e', session_id: 's', type: 'processing:status', occurred_at: 1 }) ?? '', /no session_id \/ stream_id/);
  assert.match(notASpeechResult({ ...r, source: 'sync' }) ?? '', /source "sync"/);
  assert.match(notASpeechResult({ ...r, words: undefined }) ?? '', /no words/);
  assert.match(notASpeechResult({ ...r, completion: { duration_ms: 1, word_count: 0, score: null, record_count: 1 } }) ?? '', /completion without summary/);
  assert.equal(notASpeechResult(null), 'not a record');
});
