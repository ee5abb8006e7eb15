// The speech results sink over the embedded bus, chDB and PostgreSQL (PGlite): it stores a
// stream's rows, completes the upload and the session only once they are stored (even while
// inserts fail), sends the `done` event, dead-letters what is not a result, passes a session
// deleted meanwhile, and a replay of the topic gives the same stored rows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createEmbeddedBus } from '../../bus/embedded.js';
import type { Bus, OutgoingRecord } from '../../bus/types.js';
import { prefixedTopics, Topics } from '../../schemas/topics.js';
import { createCodec, decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { DeadLetter, SpeechEvent, SpeechResult } from '../../schemas/registry/schemas.js';
import { createStoreClient, queryRows, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from '../../store/postgres/speech-sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { silentLogger } from '../../lib/log.js';
import { AttuneError } from '../../lib/errors.js';
import { waitFor } from '../../test/attune.js';
import { readTopicUntil } from '../../test/read-topic.js';
import { finalResultRecords, segmentResultRecord, speechResultRows, type SpeechResultHead } from '../speech/result-records.js';
import type { SessionResults } from '../speech/stream/results.js';
import type { SegmentTranscript } from '../speech/stream/recognition.js';
import { SpeechResultsSink } from './speech-results-sink.js';

let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
let entities: TestDatabase;
let sessions: SpeechSessionsRepository;
let uploads: SpeechUploadsRepository;
const STARTED = Date.UTC(2026, 11, 3, 9);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-speech-results-sink-'));
  store = await createStoreClient({ dataDir: dir, database: 'speech_results_sink_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  entities = await entityTestDatabase();
  sessions = new SpeechSessionsRepository(entities.client);
  uploads = new SpeechUploadsRepository(entities.client);
});

after(async () => {
  await bus.close();
  await store.close();
  await entities.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function newUpload(): Promise<SpeechResultHead> {
  const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'speech', title: 'sink test' });
  const u = await uploads.create({ sessionId: s.id, orgId: 'o1', userId: 'u1', fileName: 'a.wav' });
  await sessions.claimForAudio(s.id, { source: 'upload', startedAt: STARTED, sampleRateHz: 16000 });
  return { session_id: s.id, org_id: 'o1', user_id: 'u1', stream_id: u.id, source: 'upload', audio_started_at: STARTED, model: 'moonshine-base' };
}

/** 40 s of results: 4 segments of 10 words (or `segments`), one pause each (`pauseAtMs` into its 10 s), a frame a second. */
function streamResults(head: SpeechResultHead, budgetBytes: number, segments = 4, pauseAtMs = 4000): SpeechResult[] {
  const transcripts: SegmentTranscript[] = [];
  const words: SessionResults['words'] = [];
  const pauses: SessionResults['pauses'] = [];
  for (let seg = 0; seg < segments; seg++) {
    const texts: string[] = [];
    for (let i = 0; i < 10; i++) {
      texts.push(`w${seg}${i}`);
      words.push({ segmentIndex: seg, wordIndex: i, text: `w${seg}${i}`, startMs: seg * 10_000 + i * 400, endMs: seg * 10_000 + i * 400 + 350, isFiller: false, filler: '', isRepetition: false, timingMethod: 'forced_alignment', confidence: 0.8 });
    }
    transcripts.push({ index: seg, startMs: seg * 10_000, endMs: seg * 10_000 + 4000, speechStartMs: seg * 10_000, speechEndMs: seg * 10_000 + 4000, text: texts.join(' '), words: [], model: head.model, timingMethod: 'forced_alignment', filledPauses: [], computeMs: 0 });
    pauses.push({ startMs: seg * 10_000 + pauseAtMs, endMs: seg * 10_000 + 10_000, durationMs: 10_000 - pauseAtMs, kind: 'long' });
  }
  const frames = Array.from({ length: 40 }, (_, i) => ({ index: i, pitchMeanHz: 110, pitchSdHz: 9, volumeDbfs: -20, voicedRatio: 0.5, speechRatio: 0.4, wordCount: 1, fillerCount: 0, rollingWpm: 60 })) as unknown as SessionResults['frames'];
  const summary: SessionResults['summary'] = {
    durationMs: 40_000, speechMs: 16_000, wordCount: 40, speakingRateWpm: 60, articulationRateWpm: 150, pauseCount: 4, longPauseCount: 4, pauseRatio: 0.6, meanPauseMs: 6000,
    fillerCount: 0, fillerRatePerMin: 0, repetitionCount: 0, pitchMeanHz: 110, pitchSdHz: 9, pitchMinHz: 100, pitchMaxHz: 120, pitchVariabilitySt: 1.4, monotone: true, volumeMeanDbfs: -20, volumeSdDb: 2,
  };
  const results: SessionResults = { text: '', words, fillers: [], pauses, frames, rates: {} as SessionResults['rates'], summary };
  const scores = { model: 'rubric', scores: { overall: 64.44, clarity: 60, pace: 50, engagement: 70, confidence: 65 }, features: {}, subscores: {}, weights: null, factors: null } as never;
  return [
    // A segment published while the stream ran, older than the final rows.
    segmentResultRecord(head, { ...transcripts[0], words: [{} as never] }, STARTED + 60_000),
    ...finalResultRecords(head, { transcripts, results, scores, prosody: true, computedAt: STARTED + 120_000, budgetBytes }),
  ];
}

/** A run that failed after writing every row: streamResults without the completion. */
function failedRun(head: SpeechResultHead): SpeechResult[] {
  return streamResults(head, 1500).map((r) => ({ ...r, completion: null }));
}

/** `target` with one method replaced by `wrap(original)`; every other property is the target's. */
function replacing<T extends object, K extends keyof T>(target: T, name: K, wrap: (original: T[K]) => T[K]): T {
  const original = (target[name] as (...a: unknown[]) => unknown).bind(target) as T[K];
  const replaced = wrap(original);
  return new Proxy(target, {
    get(t, prop) {
      if (prop === name) return replaced;
      const value = Reflect.get(t, prop, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

async function encode(records: SpeechResult[]): Promise<OutgoingRecord[]> {
  return Promise.all(records.map(async (r) => ({ key: r.session_id, value: await codec.encode(Topics.speechResults, r) })));
}

async function stored(sessionId: string) {
  const q = (sql: string) => queryRows<Record<string, unknown>>(store.client, sql.replaceAll('DB', store.database), { s: sessionId });
  return {
    words: await q('SELECT segment_index, word_index, text, start_ms, end_ms, model FROM DB.speech_words FINAL WHERE session_id = {s:String} ORDER BY segment_index, word_index'),
    segments: await q('SELECT segment_index, text, word_count FROM DB.speech_segments FINAL WHERE session_id = {s:String} ORDER BY segment_index'),
    pauses: await q('SELECT start_ms, duration_ms, kind FROM DB.speech_pauses FINAL WHERE session_id = {s:String} ORDER BY start_ms'),
    frames: await q('SELECT count() AS n FROM DB.speech_frames FINAL WHERE session_id = {s:String}'),
    terms: await q('SELECT count() AS n FROM DB.speech_terms FINAL WHERE session_id = {s:String}'),
    summary: await q('SELECT word_count, pause_count, mean_pause_ms, model FROM DB.speech_summaries FINAL WHERE session_id = {s:String}'),
    scores: await q('SELECT model, overall FROM DB.speech_scores FINAL WHERE session_id = {s:String}'),
  };
}

/** Every `done` status event on the speech events topic, by event id. */
async function doneEvents(groupId: string, until: (events: Map<string, SpeechEvent>) => boolean): Promise<Map<string, SpeechEvent>> {
  const events = new Map<string, SpeechEvent>();
  await readTopicUntil<SpeechEvent>(bus, codec, {
    groupId,
    topic: Topics.speechEvents,
    what: 'done events',
    onValue: (e) => {
      if (e.event_id.endsWith(':done:100')) events.set(e.event_id, e);
    },
    until: () => until(events),
  });
  return events;
}

test('a stream split over several records: rows stored, then upload and session completed, then `done`; what is not a result is dead-lettered; a replay stores the same rows', async () => {
  const sink = new SpeechResultsSink({ bus, codec, store, sessions, uploads, log: silentLogger, groupId: 'speech-results-a', writer: { maxDelayMs: 20 } });
  await sink.start();
  const head = await newUpload();
  const records = streamResults(head, 1500);
  assert.ok(records.length >= 4, `${records.length} records`);
  const event: SpeechEvent = { event_id: 'x', session_id: head.session_id, org_id: 'o1', user_id: 'u1', type: 'processing:status', occurred_at: 1, payload_json: '{}' };
  const encoded = await encode(records);
  // A live event and a broken value where results belong, between the stream's records.
  await bus.publish(Topics.speechResults, [
    ...encoded.slice(0, 2),
    { key: head.session_id, value: await codec.encode(Topics.speechEvents, event) },
    { key: head.session_id, value: Buffer.from('not avro') },
    ...encoded.slice(2),
  ]);
  try {
    const s = await waitFor('session completed', async () => ((await sessions.get(head.session_id))?.status === 'completed' ? sessions.get(head.session_id) : null), 20_000, 20);
    assert.equal(s?.audioDurationS, 40);
    assert.equal(s?.endedAt, STARTED + 40_000);
    const u = await uploads.get(head.stream_id);
    assert.deepEqual([u?.status, u?.progress], ['completed', 1]);
    const first = await stored(head.session_id);
    assert.equal(first.words.length, 40);
    assert.deepEqual(first.segments.map((r) => Number(r.word_count)), [10, 10, 10, 10], 'the final segment rows win over the earlier one');
    assert.equal(first.pauses.length, 4);
    assert.equal(Number(first.frames[0].n), 40);
    assert.deepEqual(first.summary.map((r) => [Number(r.word_count), Number(r.pause_count), Number(r.mean_pause_ms), r.model]), [[40, 4, 6000, 'moonshine-base']]);
    assert.equal(first.scores.length, 1);
    // Counted once the update has returned to the sink (a moment after PostgreSQL shows it).
    await waitFor('counted as completed', () => sink.stats.completed === 1, 10_000, 10);
    assert.equal(sink.stats.otherStreamDeletes, 0, 'a first run has no other stream\'s rows to delete');
    assert.equal(Number(first.terms[0].n), 4 * 11, 'transcript search: a row per segment and per word');
    await waitFor('dead-lettered', () => sink.stats.deadLettered === 2, 10_000, 20);

    const id = `${head.session_id}:status:${head.stream_id}:done:100`;
    const events = await doneEvents('speech-results-a-events', (m) => m.has(id));
    const payload = JSON.parse(events.get(id)!.payload_json!);
    assert.deepEqual(
      { status: payload.status, stage: payload.stage, progress: payload.progress, uploadId: payload.uploadId, wordCount: payload.wordCount, durationS: payload.durationS, score: payload.score },
      { status: 'completed', stage: 'done', progress: 1, uploadId: head.stream_id, wordCount: 40, durationS: 40, score: 64.4 },
    );

    // The dead letters name why.
    const reasons: string[] = [];
    await readTopicUntil<DeadLetter>(bus, codec, {
      groupId: 'speech-results-a-dl',
      topic: Topics.deadLetter,
      what: 'dead letters read',
      onValue: (d) => {
        if (d.source_topic === Topics.speechResults) reasons.push(`${d.reason_code}: ${d.reason}`);
      },
      until: () => reasons.length === 2,
    });
    assert.deepEqual(reasons.map((r) => r.split(':')[0]).sort(), ['invalid_record', 'undecodable']);
    assert.ok(reasons.some((r) => /no session_id \/ stream_id|stream_id/.test(r)), reasons.join(' | '));

    // Another sink group reads the whole topic again: the same rows, the session still completed.
    const replay = new SpeechResultsSink({ bus, codec, store, sessions, uploads, log: silentLogger, groupId: 'speech-results-a-replay', writer: { maxDelayMs: 20 } });
    await replay.start();
    try {
      await waitFor('replayed', () => replay.stats.completed === 1, 20_000, 20);
      await replay.flush();
      // Every row written again (under FINAL the same rows, so also count what it wrote).
      const rowsOfStream = records.reduce((n, r) => n + Object.values(speechResultRows(r)).reduce((m, rows) => m + rows.length, 0), 0);
      assert.deepEqual([replay.stats.rows, sink.stats.rows], [rowsOfStream, rowsOfStream]);
      assert.deepEqual(await stored(head.session_id), first);
      assert.equal((await sessions.get(head.session_id))?.status, 'completed');
    } finally {
      await replay.stop();
    }
  } finally {
    await sink.stop();
  }
});

test('a retry after a failed run: once it completes, only its rows are stored (not the failed run\'s other pauses, segments, words and terms); a replay gives the same', async () => {
  const sink = new SpeechResultsSink({ bus, codec, store, sessions, uploads, log: silentLogger, groupId: 'speech-results-retry', writer: { maxDelayMs: 20 } });
  await sink.start();
  try {
    // The failed run: its rows are published (4 segments, pauses 4 s into each 10 s), never its completion.
    const failed = await newUpload();
    const failedRecords = failedRun(failed);
    await bus.publish(Topics.speechResults, await encode(failedRecords));
    await waitFor('the failed run\'s rows stored', async () => {
      await sink.flush();
      const rows = await stored(failed.session_id);
      return rows.words.length === 40 && rows.segments.length === 4 && Number(rows.terms[0].n) === 44;
    }, 20_000, 20);
    await uploads.update(failed.stream_id, { status: 'failed', errorCode: 'unavailable', errorMessage: 'ingest lost', completedAt: STARTED + 50_000 });
    await sessions.update(failed.session_id, { status: 'failed' });

    // The retry, new audio: 2 segments, pauses 5 s into each 10 s.
    const u = await uploads.create({ sessionId: failed.session_id, orgId: 'o1', userId: 'u1', fileName: 'b.wav' });
    await sessions.claimForAudio(failed.session_id, { source: 'upload', startedAt: STARTED, sampleRateHz: 16000 });
    const retry: SpeechResultHead = { ...failed, stream_id: u.id };
    await bus.publish(Topics.speechResults, await encode(streamResults(retry, 1500, 2, 5000)));
    await waitFor('the retry completed', async () => (await sessions.get(failed.session_id))?.status === 'completed', 20_000, 20);

    const after = await stored(failed.session_id);
    assert.deepEqual(after.segments.map((r) => Number(r.segment_index)), [0, 1]);
    assert.equal(after.words.length, 20);
    assert.deepEqual(after.pauses.map((r) => Number(r.start_ms)), [5000, 15_000], 'the failed run\'s pauses (4,000, 14,000, 24,000, 34,000 ms) are gone');
    assert.equal(Number(after.terms[0].n), 2 * 11, 'transcript search finds only the retry\'s words');
    assert.equal(Number(after.frames[0].n), 40);
    const streams = await queryRows<{ stream_id: string }>(store.client, `SELECT DISTINCT stream_id FROM ${store.database}.speech_words FINAL WHERE session_id = {s:String}`, { s: failed.session_id });
    assert.deepEqual(streams.map((r) => r.stream_id), [u.id], 'every row names the stream that wrote it');
    // segments, words, pauses and terms have rows of the failed run under keys the retry does
    // not write; its frames (same keys) too, unless a merge has collapsed them already.
    assert.ok(sink.stats.otherStreamDeletes >= 4, `${sink.stats.otherStreamDeletes} tables cleaned`);

    // The whole topic again, in another group: the failed run's rows are written again, then
    // the retry's completion deletes them again.
    const replay = new SpeechResultsSink({ bus, codec, store, sessions, uploads, log: silentLogger, groupId: 'speech-results-retry-replay', writer: { maxDelayMs: 20 } });
    await replay.start();
    try {
      // Caught up with the first sink (which read the whole topic too, earlier tests' records
      // included) once it has read as many records and completed as many streams.
      await waitFor('replayed', () => replay.stats.records >= sink.stats.records && replay.stats.completed >= sink.stats.completed, 30_000, 20);
      await replay.flush();
      assert.deepEqual(await stored(failed.session_id), after);
    } finally {
      await replay.stop();
    }
  } finally {
    await sink.stop();
  }
});

test('a DELETE ClickHouse keeps refusing costs the retry its cleanup, not the partition: the session completes after the give-up time', async () => {
  const failed = await newUpload();
  let skew = 0;
  let refused = 0;
  // Refuses every DELETE, as a server would a user without the grant; each refusal moves the
  // sink's clock past the give-up time (DELETE_OTHER_STREAMS_GIVE_UP_MS), so the test does not wait it.
  const client = replacing(store.client, 'command', (original) => (async (params: Parameters<typeof store.client.command>[0]) => {
    // This session's only: the group reads the whole topic, earlier tests' streams included.
    if (/^DELETE/.test(params.query) && (params.query_params as { sid?: string } | undefined)?.sid === failed.session_id) {
      refused++;
      skew += 61_000;
      throw new Error('Code: 497. DB::Exception: Not enough privileges (ACCESS_DENIED)');
    }
    return original(params);
  }) as typeof store.client.command);
  const refusing = { ...store, client } as StoreClient;
  const sink = new SpeechResultsSink({ bus, codec, store: refusing, sessions, uploads, log: silentLogger, groupId: 'speech-results-refused-delete', writer: { maxDelayMs: 20 }, clock: () => Date.now() + skew });
  await bus.publish(Topics.speechResults, await encode(failedRun(failed)));
  await sessions.update(failed.session_id, { status: 'failed' });
  const u = await uploads.create({ sessionId: failed.session_id, orgId: 'o1', userId: 'u1', fileName: 'b.wav' });
  await sessions.claimForAudio(failed.session_id, { source: 'upload', startedAt: STARTED, sampleRateHz: 16000 });
  await bus.publish(Topics.speechResults, await encode(streamResults({ ...failed, stream_id: u.id }, 1500, 2, 5000)));
  await sink.start();
  try {
    await waitFor('the retry completed', async () => (await sessions.get(failed.session_id))?.status === 'completed', 30_000, 20);
    assert.equal(refused, 1, 'refused once, then given up');
    assert.equal(sink.stats.otherStreamDeleteFailures, 1);
    const rows = await stored(failed.session_id);
    assert.deepEqual([rows.segments.length, rows.words.length, rows.pauses.length], [4, 40, 6], 'the failed run\'s rows stay beside the retry\'s: the cleanup did not happen');
  } finally {
    await sink.stop();
  }
});

test('while inserts fail the session is not completed; it is once the rows are stored. A session deleted meanwhile does not stall the partition', async () => {
  // speech_summaries refuses its first 6 inserts (longer than the writer's 5 tries before flush() gives up).
  let refusals = 6;
  const client = replacing(store.client, 'insert', (insert) => async (params) => {
    if (String(params.table).endsWith('speech_summaries') && refusals > 0) {
      refusals--;
      throw new Error('insert refused (test)');
    }
    return insert(params);
  });
  // What the summaries table held when the sink completed each session, and which it completed.
  const summariesAtCompletion = new Map<string, number>();
  const completedIds = new Set<string>();
  const watched = replacing(sessions, 'update', (update) => async (id, patch, opts) => {
    if (patch.status === 'completed') {
      const [row] = await queryRows<{ n: string }>(store.client, `SELECT count() AS n FROM ${store.database}.speech_summaries WHERE session_id = {s:String}`, { s: id });
      summariesAtCompletion.set(id, Number(row.n));
    }
    const updated = await update(id, patch, opts);
    if (patch.status === 'completed') completedIds.add(id);
    return updated;
  });
  // Topics of this test's own, so the refusals fall on its records.
  const topics = prefixedTopics('sink-b.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  const sink = new SpeechResultsSink({ bus, topics, codec, store: { ...store, client } as StoreClient, sessions: watched, uploads, log: silentLogger, groupId: 'speech-results-b', writer: { maxDelayMs: 20 } });
  const gone: SpeechResultHead = { session_id: randomUUID(), org_id: 'o1', user_id: 'u1', stream_id: randomUUID(), source: 'upload', audio_started_at: STARTED, model: 'm' };
  const head = await newUpload();
  await sink.start();
  try {
    // One key, so one partition: the deleted session's records come first.
    const records = await encode([...streamResults(gone, 1e9), ...streamResults(head, 1e9)]);
    await bus.publish(topics.speechResults, records.map((r) => ({ ...r, key: head.session_id })));
    const s = await waitFor('session completed', async () => ((await sessions.get(head.session_id))?.status === 'completed' ? sessions.get(head.session_id) : null), 60_000, 50);
    assert.equal(s?.status, 'completed');
    assert.equal(refusals, 0, 'the refused inserts happened');
    assert.equal(summariesAtCompletion.get(head.session_id), 1, 'the summary row was stored before the session was completed');
    await waitFor('counted as completed', () => sink.stats.completed === 1 && completedIds.size === 1, 10_000, 10);
    assert.deepEqual([...completedIds], [head.session_id], 'the deleted session is passed, not completed');
    assert.equal((await stored(gone.session_id)).words.length, 40, "the deleted session's rows are stored all the same");
  } finally {
    await sink.stop();
  }
});

test('a completion PostgreSQL refuses for good (a coded error) is dead-lettered with the reason and passed; a failure to reach PostgreSQL is retried', async () => {
  const refused = await newUpload();
  const later = await newUpload();
  let unreachable = 2;
  const flaky = replacing(sessions, 'update', (update) => async (id, patch, opts) => {
    if (id === refused.session_id) throw new AttuneError('conflict', 'session in a state that refuses it (test)', [{ field: 'status', reason: 'version_conflict' }]);
    if (id === later.session_id && unreachable > 0) {
      unreachable--;
      throw new Error('connect ECONNREFUSED (test)');
    }
    return update(id, patch, opts);
  });
  const topics = prefixedTopics('sink-c.');
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
  const sink = new SpeechResultsSink({ bus, topics, codec, store, sessions: flaky, uploads, log: silentLogger, groupId: 'speech-results-c', writer: { maxDelayMs: 20 } });
  await sink.start();
  try {
    await bus.publish(topics.speechResults, await encode([...streamResults(refused, 1e9), ...streamResults(later, 1e9)]));
    assert.equal((await waitFor('the later session completed', async () => ((await sessions.get(later.session_id))?.status === 'completed' ? sessions.get(later.session_id) : null), 60_000, 50))?.status, 'completed');
    assert.equal(unreachable, 0, 'the unreachable tries happened and were retried');
    await waitFor('counted', () => sink.stats.completed === 1 && sink.stats.deadLettered === 1, 10_000, 10);
    assert.equal((await sessions.get(refused.session_id))?.status, 'processing');
    const reasons: string[] = [];
    await readTopicUntil<DeadLetter>(bus, codec, {
      groupId: 'speech-results-c-dl',
      topic: topics.deadLetter,
      what: 'the dead letter read',
      onValue: (d) => void reasons.push(`${d.reason_code}: ${d.reason}`),
      until: () => reasons.length === 1,
    });
    assert.match(reasons[0], /^version_conflict: completion refused: conflict: session in a state that refuses it/);
  } finally {
    await sink.stop();
  }
});
