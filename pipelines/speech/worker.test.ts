// The speech worker over the embedded bus and chDB, with the real models: redelivered frames,
// a worker replaced in the middle of a stream, an aborted stream and a broken record. The
// results of every run must equal those of one clean pass (at-least-once, idempotent). The
// worker publishes its results; the speech results sink beside it (as in the sink role) stores
// them and completes the session.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '../../bus/embedded.js';
import { type Bus, type OutgoingRecord } from '../../bus/types.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import { createCodec, decodeRecord } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import { createStoreClient, queryRows, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from '../../store/postgres/speech-sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import type { Codec } from '../../schemas/registry/codec.js';
import { frameAudio, STREAM_LOST_SEQUENCE } from '../../schemas/audio-frames.js';
import { silentLogger } from '../../lib/log.js';
import { waitFor } from '../../test/attune.js';
import { readTopicUntil } from '../../test/read-topic.js';
import type { SpeechAudioFrame, SpeechEvent, SpeechResult } from '../../schemas/registry/schemas.js';
import { readWavFile } from './wav.test-util.js';
import { SpeechWorker } from './worker.js';
import { SpeechResultsSink } from '../sinks/speech-results-sink.js';
import { DEFAULT_UPLOAD_MODEL } from './default-models.js';

const JFK = join(import.meta.dirname, '../../../shared/data/speech/jfk_1961_inaugural_M.wav');

let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
let entities: TestDatabase;
let sessions: SpeechSessionsRepository;
let uploads: SpeechUploadsRepository;
let sink: SpeechResultsSink;
const audio = readWavFile(JFK).samples; // 16 kHz mono

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attune-speech-worker-'));
  store = await createStoreClient({ dataDir: dir, database: 'speech_worker_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  await bus.ensureTopics(Object.values(Topics).map((topic) => ({ topic, partitions: 2 })));
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  entities = await entityTestDatabase();
  sessions = new SpeechSessionsRepository(entities.client);
  uploads = new SpeechUploadsRepository(entities.client);
  sink = new SpeechResultsSink({ bus, codec, store, sessions, uploads, log: silentLogger, groupId: 'speech-results-test', writer: { maxDelayMs: 50 } });
  await sink.start();
});

after(async () => {
  await sink.stop();
  await bus.close();
  await store.close();
  await entities.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function worker(groupId = 'speech-test', topics: TopicNames = Topics): SpeechWorker {
  return new SpeechWorker({ bus, codec, sessions, uploads, log: silentLogger, groupId, topics });
}

async function newUpload(): Promise<{ sessionId: string; uploadId: string }> {
  const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'speech', title: 'worker test' });
  const u = await uploads.create({ sessionId: s.id, orgId: 'o1', userId: 'u1', fileName: 'jfk.wav' });
  await sessions.claimForAudio(s.id, { source: 'upload', startedAt: Date.UTC(2026, 10, 1, 9), sampleRateHz: 16000 });
  return { sessionId: s.id, uploadId: u.id };
}

/** The stream's records: 2 s frames, then an empty last frame (or one with aborted_reason). */
async function streamRecords(
  sessionId: string,
  streamId: string,
  opts: { abort?: string; frames?: number; samples?: Float32Array; settings?: Record<string, unknown>; source?: 'upload' | 'live'; withoutLast?: boolean; endMarker?: { reason: string | null } } = {},
): Promise<OutgoingRecord[]> {
  const samples = opts.samples ?? audio;
  const frames = frameAudio(samples).slice(0, opts.frames);
  const base: Omit<SpeechAudioFrame, 'sequence' | 'sample_offset' | 'pcm16' | 'is_last'> = {
    session_id: sessionId,
    org_id: 'o1',
    user_id: 'u1',
    stream_id: streamId,
    source: opts.source ?? 'upload',
    aborted_reason: null,
    audio_started_at: Date.UTC(2026, 10, 1, 9),
    source_sample_rate_hz: 16000,
    expected_samples: samples.length,
    sent_at: Date.UTC(2026, 10, 1, 9),
    settings_json: JSON.stringify(opts.settings ?? {}),
  };
  const values = frames.map((f) => ({ ...base, sequence: f.sequence, sample_offset: f.sampleOffset, pcm16: f.payload, is_last: false }));
  const end = frames.length > 0 ? frames[frames.length - 1].sampleOffset + frames[frames.length - 1].sampleCount : 0;
  if (!opts.withoutLast) values.push({ ...base, sequence: frames.length, sample_offset: end, pcm16: Buffer.alloc(0), is_last: true, aborted_reason: opts.abort ?? null });
  // The marker another ingest process publishes when this stream's process died (ingest/audio/stream-leases.ts).
  if (opts.endMarker) values.push({ ...base, sequence: STREAM_LOST_SEQUENCE, sample_offset: 0, pcm16: Buffer.alloc(0), is_last: true, aborted_reason: opts.endMarker.reason });
  return Promise.all(values.map(async (v) => ({ key: sessionId, value: await codec.encode(Topics.speechAudio, v) })));
}

/** What the session's results look like in ClickHouse, without the version columns. */
async function results(sessionId: string) {
  const q = (sql: string) => queryRows<Record<string, unknown>>(store.client, sql, { s: sessionId });
  const db = store.database;
  return {
    words: await q(`SELECT segment_index, word_index, text, start_ms, end_ms, is_filler, timing_method FROM ${db}.speech_words FINAL WHERE session_id = {s:String} ORDER BY segment_index, word_index`),
    segments: await q(`SELECT segment_index, start_ms, end_ms, text, word_count FROM ${db}.speech_segments FINAL WHERE session_id = {s:String} ORDER BY segment_index`),
    pauses: await q(`SELECT start_ms, end_ms, kind FROM ${db}.speech_pauses FINAL WHERE session_id = {s:String} ORDER BY start_ms`),
    frames: await q(`SELECT second_index, round(volume_dbfs, 3) AS v, word_count, round(rolling_wpm, 3) AS r FROM ${db}.speech_frames FINAL WHERE session_id = {s:String} ORDER BY second_index`),
    summary: await q(`SELECT word_count, round(articulation_rate_wpm, 3) AS a, pause_count FROM ${db}.speech_summaries FINAL WHERE session_id = {s:String}`),
    scores: await q(`SELECT model, round(overall, 3) AS o FROM ${db}.speech_scores FINAL WHERE session_id = {s:String}`),
  };
}

async function completed(sessionId: string) {
  return waitFor(`session ${sessionId} completed`, async () => {
    const s = await sessions.get(sessionId);
    return s && (s.status === 'completed' || s.status === 'failed') ? s : null;
  }, 120_000, 50);
}

let reference: Awaited<ReturnType<typeof results>>;

test('one clean pass: the upload is analysed, stored, the session and upload completed, the offset committed past the stream', async () => {
  const w = worker('speech-clean');
  await w.start();
  try {
    const { sessionId, uploadId } = await newUpload();
    await bus.publish(Topics.speechAudio, await streamRecords(sessionId, uploadId));
    const s = await completed(sessionId);
    assert.equal(s.status, 'completed');
    assert.ok(Math.abs((s.audioDurationS ?? 0) - audio.length / 16000) < 0.01);
    const u = await uploads.get(uploadId);
    assert.equal(u?.status, 'completed');
    assert.equal(u?.progress, 1);
    reference = await results(sessionId);
    assert.equal(reference.summary.length, 1);
    assert.ok(reference.words.length >= 20, `${reference.words.length} words`);
    assert.equal(reference.frames.length, 11);
    assert.equal(reference.scores.length, 1);
    // Its settings name no model: an upload is recognised with the upload default, not the live one.
    const models = await queryRows<{ model: string }>(store.client, `SELECT DISTINCT model FROM ${store.database}.speech_segments FINAL WHERE session_id = {s:String}`, { s: sessionId });
    assert.deepEqual(models.map((r) => r.model), [DEFAULT_UPLOAD_MODEL]);
    // Nothing of the stream is left open: the committed offsets cover every record.
    await waitFor('offsets committed', async () => {
      const committed = await bus.committed('speech-clean', Topics.speechAudio);
      return [...committed.values()].reduce((n, o) => n + Number(o), 0) === (await streamRecords(sessionId, uploadId)).length;
    }, 10_000, 50);
  } finally {
    await w.stop();
  }
});

test('frames delivered twice and a worker replaced mid-stream give exactly the results of one pass', async () => {
  // An input topic of its own: a new group reading the shared one would start with the earlier
  // tests' streams (completed, so skipped and committed past).
  const topics = { ...Topics, speechAudio: `${Topics.speechAudio}.replay-test` };
  await bus.ensureTopics([{ topic: topics.speechAudio, partitions: 1 }]);
  const { sessionId, uploadId } = await newUpload();
  const records = await streamRecords(sessionId, uploadId);
  // First worker sees the first half (and the first frames twice), then stops before the end.
  const half = Math.floor(records.length / 2);
  const first = worker('speech-replay', topics);
  await first.start();
  await bus.publish(topics.speechAudio, [...records.slice(0, half), ...records.slice(0, 2)]);
  await waitFor('first half read', () => first.stats.frames >= half + 2, 30_000, 20);
  await first.stop();
  const committed = await bus.committed('speech-replay', topics.speechAudio);
  const partitionOffset = [...committed.values()].reduce((n, o) => Math.max(n, Number(o)), 0);
  assert.equal(partitionOffset, 0, 'nothing committed past the first frame of an unfinished stream');
  assert.equal((await sessions.get(sessionId))?.status, 'processing');

  // The replacement re-reads the stream from its first frame and finishes it.
  const second = worker('speech-replay', topics);
  await second.start();
  try {
    await bus.publish(topics.speechAudio, records.slice(half));
    assert.equal((await completed(sessionId)).status, 'completed');
    const replayed = await results(sessionId);
    assert.deepEqual(replayed, reference);
  } finally {
    await second.stop();
  }
});

test('a stream read again after its results were published never moves a completed upload or session back, and one of a completed session is skipped', async () => {
  // An input topic of its own, so the worker's counters are this stream's alone.
  const topics = { ...Topics, speechAudio: `${Topics.speechAudio}.reread-test` };
  await bus.ensureTopics([{ topic: topics.speechAudio, partitions: 1 }]);
  const { sessionId, uploadId } = await newUpload();
  const records = await streamRecords(sessionId, uploadId);
  // What the worker's upload writes return, once the sink has completed the upload.
  const afterCompletion: string[] = [];
  let holdNextWrite: (() => Promise<void>) | null = null;
  const watchedUploads = new Proxy(uploads, {
    get(target, prop, receiver) {
      if (prop !== 'update') return Reflect.get(target, prop, receiver);
      return async (...args: Parameters<SpeechUploadsRepository['update']>) => {
        const hold = args[0] === uploadId ? holdNextWrite : null;
        holdNextWrite = null;
        if (hold) await hold();
        const u = await target.update(...args);
        if (hold || afterCompletion.length > 0) afterCompletion.push(u.status);
        return u;
      };
    },
  });
  const w = new SpeechWorker({ bus, codec, sessions, uploads: watchedUploads, log: silentLogger, groupId: 'speech-reread', topics });
  const committedOffset = async () => [...(await bus.committed('speech-reread', topics.speechAudio)).values()].reduce((n, o) => n + Number(o), 0);
  // The sink is behind: the worker publishes the stream's results and commits past it.
  await sink.stop();
  await w.start();
  try {
    await bus.publish(topics.speechAudio, records);
    await waitFor('results published and the stream committed', async () => w.stats.finalized === 1 && (await committedOffset()) === records.length, 120_000, 50);
    assert.equal((await sessions.get(sessionId))?.status, 'processing');

    // The stream is read again (as after a crash before the commit). Its first upload write is
    // held until the sink, back, has completed the upload from the first pass's results.
    holdNextWrite = async () => {
      sink = new SpeechResultsSink({ bus, codec, store, sessions, uploads, log: silentLogger, groupId: 'speech-results-test', writer: { maxDelayMs: 50 } });
      await sink.start();
      await waitFor('upload completed by the sink', async () => (await uploads.get(uploadId))?.status === 'completed', 30_000, 20);
    };
    await bus.publish(topics.speechAudio, records);
    await waitFor('read again and completed again', async () => w.stats.finalized === 2 && sink.stats.completed === 2 && (await committedOffset()) === 2 * records.length, 120_000, 50);
    assert.ok(afterCompletion.length >= 2, `${afterCompletion.length} upload writes after the completion`);
    assert.deepEqual(new Set(afterCompletion), new Set(['completed']), 'no write moved the upload back from completed');
    const u = await uploads.get(uploadId);
    assert.deepEqual([u?.status, u?.progress, u?.stage], ['completed', 1, 'done']);
    assert.equal((await sessions.get(sessionId))?.status, 'completed');
    assert.deepEqual(await results(sessionId), reference, 'the results of one pass');

    // The session's events, in order: after the first `done`, nothing says processing.
    const events: Array<{ id: string; status: string }> = [];
    await readTopicUntil<SpeechEvent>(bus, codec, {
      groupId: 'speech-reread-events',
      topic: Topics.speechEvents,
      what: 'both done events',
      onValue: (e) => {
        if (e.session_id === sessionId && e.type === 'processing:status') events.push({ id: e.event_id, status: (JSON.parse(e.payload_json ?? '{}') as { status: string }).status });
      },
      until: () => events.filter((e) => e.id.endsWith(':done:100')).length === 2,
    });
    const firstDone = events.findIndex((e) => e.id.endsWith(':done:100'));
    assert.ok(events.slice(0, firstDone).some((e) => e.status === 'processing'), 'the first pass sent progress');
    assert.deepEqual(events.slice(firstDone + 1).filter((e) => e.status !== 'completed'), [], 'nothing after the completion but the sink sending done again');

    // Read a third time, now that the session is completed: skipped whole, nothing written.
    const before = await uploads.get(uploadId);
    const skipped = w.stats.skipped;
    await bus.publish(topics.speechAudio, records);
    await waitFor('third read committed', async () => (await committedOffset()) === 3 * records.length, 30_000, 20);
    assert.equal(w.stats.skipped - skipped, records.length, 'every frame of the stream skipped');
    assert.deepEqual([w.stats.streams, w.stats.finalized], [2, 2], 'no stream opened, nothing recognised');
    assert.deepEqual(await uploads.get(uploadId), before);
  } finally {
    await w.stop();
  }
});

test('a failed stream read again after a retry of its session was claimed is skipped whole', async () => {
  const topics = { ...Topics, speechAudio: `${Topics.speechAudio}.superseded-test` };
  await bus.ensureTopics([{ topic: topics.speechAudio, partitions: 1 }]);
  const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'speech', title: 'retried' });
  const first = await uploads.create({ sessionId: s.id, orgId: 'o1', userId: 'u1', fileName: 'a.wav' });
  await sessions.claimForAudio(s.id, { source: 'upload', startedAt: Date.UTC(2026, 10, 1, 9), sampleRateHz: 16000, streamId: first.id });
  assert.equal(await sessions.streamSuperseded(s.id, first.id), false, 'open: not superseded');
  await sessions.update(s.id, { status: 'failed' }); // releases its stream (outcome failed)
  assert.equal(await sessions.streamSuperseded(s.id, first.id), false, 'released, no retry yet');
  const retry = await uploads.create({ sessionId: s.id, orgId: 'o1', userId: 'u1', fileName: 'b.wav' });
  await sessions.claimForAudio(s.id, { source: 'upload', startedAt: Date.UTC(2026, 10, 1, 9), sampleRateHz: 16000, streamId: retry.id });
  assert.equal(await sessions.streamSuperseded(s.id, first.id), true);
  assert.equal(await sessions.streamSuperseded(s.id, retry.id), false);

  // The failed run's frames, read again (a rebalance while the retry runs).
  const records = await streamRecords(s.id, first.id, { frames: 2 });
  const w = worker('speech-superseded', topics);
  await w.start();
  try {
    await bus.publish(topics.speechAudio, records);
    const committed = async () => [...(await bus.committed('speech-superseded', topics.speechAudio)).values()].reduce((n, o) => n + Number(o), 0);
    await waitFor('the stream committed', async () => (await committed()) === records.length, 30_000, 20);
    assert.deepEqual([w.stats.skipped, w.stats.streams, w.stats.finalized], [records.length, 0, 0], 'every frame skipped, no stream opened');
    assert.equal((await sessions.get(s.id))?.status, 'processing', 'the retry\'s session untouched');
  } finally {
    await w.stop();
  }
});

test('a bus refusing the final results for a while delays the stream, never fails it: the same results once it takes them', async () => {
  // The stream's last record (with `completion`) is refused twice, as in a broker outage (only
  // this test's stream's: the new group also reads the earlier tests' records).
  let refused = 0;
  let target = '';
  const flaky: Bus = {
    get kind() {
      return bus.kind;
    },
    ensureTopics: (specs) => bus.ensureTopics(specs),
    publish: async (topic, records) => {
      if (topic === Topics.speechResults && refused < 2) {
        for (const r of records) {
          let d = decodeRecord<SpeechResult>(codec, r.value as Buffer);
          if (d instanceof Promise) d = await d;
          if (d.completion && d.session_id === target) {
            refused++;
            throw new Error('broker unavailable (test)');
          }
        }
      }
      await bus.publish(topic, records);
    },
    subscribe: (o) => bus.subscribe(o),
    committed: (g, t) => bus.committed(g, t),
    partitionCount: (t) => bus.partitionCount(t),
    close: () => bus.close(),
  };
  const w = new SpeechWorker({ bus: flaky, codec, sessions, uploads, log: silentLogger, groupId: 'speech-flaky', maxPublishBackoffMs: 100 });
  await w.start();
  try {
    const { sessionId, uploadId } = await newUpload();
    target = sessionId;
    await bus.publish(Topics.speechAudio, await streamRecords(sessionId, uploadId));
    assert.equal((await completed(sessionId)).status, 'completed');
    assert.equal(refused, 2);
    // (A new group reads the topic from its start: the earlier tests' streams are skipped, their sessions completed.)
    assert.equal(w.stats.failed, 0);
    assert.deepEqual(await results(sessionId), reference);
  } finally {
    await w.stop();
  }
});

test('an aborted stream is dropped with no results, a stream with a missing frame fails its session, a broken record is dead-lettered', async () => {
  const w = worker('speech-abort');
  await w.start();
  try {
    // Aborted by the ingest (which records the precise error itself): nothing is stored.
    const aborted = await newUpload();
    await bus.publish(Topics.speechAudio, await streamRecords(aborted.sessionId, aborted.uploadId, { frames: 2, abort: 'upload truncated at byte 123' }));
    await waitFor('abort seen', () => w.stats.failed === 1, 30_000, 20);
    // A frame missing from the stream: the worker fails the session and the upload.
    const gap = await newUpload();
    const records = await streamRecords(gap.sessionId, gap.uploadId);
    await bus.publish(Topics.speechAudio, [records[0], ...records.slice(2)]);
    assert.equal((await completed(gap.sessionId)).status, 'failed');
    const u = await waitFor('upload failed', async () => ((await uploads.get(gap.uploadId))?.status === 'failed' ? uploads.get(gap.uploadId) : null), 10_000, 50);
    assert.equal(u?.errorCode, 'internal_error');
    assert.match(u?.errorMessage ?? '', /frames missing: expected frame 1, got 2/);
    await w.drain();
    for (const id of [aborted.sessionId, gap.sessionId]) {
      const stored = await results(id);
      assert.deepEqual([stored.words.length, stored.summary.length, stored.scores.length], [0, 0, 0]);
    }

    await bus.publish(Topics.speechAudio, [{ key: 'x', value: Buffer.from('not avro') }]);
    await waitFor('dead-lettered', () => w.stats.deadLettered === 1, 10_000, 20);
  } finally {
    await w.stop();
  }
});

test("a stream whose ingest died ends at its end marker: a live one is analysed with the audio that arrived, an upload fails, a live one with no audio fails its session; a marker after the last frame changes nothing", async () => {
  // An input topic of its own, so the worker's counters are this test's streams alone.
  const topics = { ...Topics, speechAudio: `${Topics.speechAudio}.markers-test` };
  await bus.ensureTopics([{ topic: topics.speechAudio, partitions: 2 }]);
  const w = worker('speech-markers', topics);
  await w.start();
  const live = async () => {
    const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'speech', title: 'live, ingest lost' });
    const streamId = `live-${s.id}`;
    await sessions.claimForAudio(s.id, { source: 'live', startedAt: Date.UTC(2026, 10, 1, 9), sampleRateHz: 16000, streamId });
    return { sessionId: s.id, streamId };
  };
  try {
    // Live: 3 frames (6 s) went out, then the marker ended the stream there; what its holder
    // still sent after it (a process that could not renew, not dead) is not part of it.
    const cut = await live();
    const late = (await streamRecords(cut.sessionId, cut.streamId, { source: 'live' })).slice(3);
    await bus.publish(topics.speechAudio, [...(await streamRecords(cut.sessionId, cut.streamId, { source: 'live', frames: 3, withoutLast: true, endMarker: { reason: null } })), ...late]);
    assert.equal((await completed(cut.sessionId)).status, 'completed');
    // Once everything read is handled: one stream finalised, once, with the 6 s before the marker.
    await waitFor('every record read', () => w.stats.frames === 4 + late.length, 30_000, 20);
    await w.drain();
    assert.deepEqual([w.stats.finalized, w.stats.skipped], [1, late.length], 'the frames after the marker are skipped; its late last frame finalises nothing');
    const s = (await sessions.get(cut.sessionId))!;
    assert.ok(Math.abs((s.audioDurationS ?? 0) - 6) < 0.01, `${s.audioDurationS} s analysed`);
    const stored = await results(cut.sessionId);
    assert.ok(stored.words.length >= 5, `${stored.words.length} words of the first 6 s`);
    assert.deepEqual(stored.words.slice(0, 3).map((r) => String(r.text).toLowerCase().replace(/[^a-z]/g, '')), reference.words.slice(0, 3).map((r) => String(r.text).toLowerCase().replace(/[^a-z]/g, '')), 'the same first words as the whole clip');

    // An upload cut short: the stream fails (the ingest that swept it marked the rows).
    const failedBefore = w.stats.failed;
    const upload = await newUpload();
    await bus.publish(topics.speechAudio, await streamRecords(upload.sessionId, upload.uploadId, { frames: 2, withoutLast: true, endMarker: { reason: 'ingest_lost: test' } }));
    await waitFor('the upload stream failed', () => w.stats.failed === failedBefore + 1, 30_000, 20);

    // A live stream lost before any audio: its session, still recording, fails (a new stream may be claimed).
    const silent = await live();
    await bus.publish(topics.speechAudio, await streamRecords(silent.sessionId, silent.streamId, { source: 'live', frames: 0, withoutLast: true, endMarker: { reason: null } }));
    assert.equal((await completed(silent.sessionId)).status, 'failed');
    assert.equal((await sessions.claimAudioStream(silent.sessionId, { source: 'live', startedAt: Date.UTC(2026, 10, 1, 10), sampleRateHz: 16000 })).session.status, 'recording');

    // The process died after the last frame went out: the marker finds the stream ended.
    const whole = await newUpload();
    await bus.publish(topics.speechAudio, await streamRecords(whole.sessionId, whole.uploadId, { endMarker: { reason: 'ingest_lost: test' } }));
    assert.equal((await completed(whole.sessionId)).status, 'completed');
    assert.deepEqual(await results(whole.sessionId), reference);

    // No stream is left open.
    await w.drain();
    await waitFor('no stream open', () => w.queue.openStreams === 0, 10_000, 20);
  } finally {
    await w.stop();
  }
});

test("the speech-coaching document's switches: with enableScoring, enableFluencyAnalysis and enableProsodyAnalysis false nothing of those stages is stored; on, it is; words carry the recogniser's confidence", async () => {
  const fillerClip = readWavFile(join(import.meta.dirname, '../../test/fixtures/fillers/fillers_us_m_mixed.wav')).samples;
  const w = worker('speech-switches');
  await w.start();
  const q = (sql: string, sessionId: string) => queryRows<Record<string, unknown>>(store.client, sql.replaceAll('DB', store.database), { s: sessionId });
  const run = async (settings: Record<string, unknown>) => {
    const { sessionId, uploadId } = await newUpload();
    await bus.publish(Topics.speechAudio, await streamRecords(sessionId, uploadId, { samples: fillerClip, settings }));
    assert.equal((await completed(sessionId)).status, 'completed');
    return {
      scores: (await q('SELECT count() AS n FROM DB.speech_scores FINAL WHERE session_id = {s:String}', sessionId))[0].n,
      fillers: (await q('SELECT count() AS n FROM DB.speech_fillers FINAL WHERE session_id = {s:String}', sessionId))[0].n,
      fillerWords: (await q('SELECT countIf(is_filler) AS n FROM DB.speech_words FINAL WHERE session_id = {s:String}', sessionId))[0].n,
      summary: (await q('SELECT filler_count, pitch_mean_hz, volume_mean_dbfs FROM DB.speech_summaries FINAL WHERE session_id = {s:String}', sessionId))[0],
      voicedSeconds: (await q('SELECT countIf(pitch_mean_hz IS NOT NULL) AS n FROM DB.speech_frames FINAL WHERE session_id = {s:String}', sessionId))[0].n,
      confidences: (await q('SELECT count() AS words, countIf(confidence IS NOT NULL AND confidence > 0 AND confidence <= 1) AS n FROM DB.speech_words FINAL WHERE session_id = {s:String}', sessionId))[0],
    };
  };
  try {
    const off = await run({ enableScoring: false, enableFluencyAnalysis: false, enableProsodyAnalysis: false });
    const on = await run({});
    console.log(`switches off: ${JSON.stringify(off)}; on: ${JSON.stringify(on)}`);
    assert.deepEqual([Number(off.scores), Number(off.fillers), Number(off.fillerWords), Number(off.summary.filler_count), off.summary.pitch_mean_hz, off.summary.volume_mean_dbfs, Number(off.voicedSeconds)], [0, 0, 0, 0, null, null, 0]);
    assert.equal(Number(on.scores), 1);
    assert.ok(Number(on.fillers) >= 2, `the clip's fillers are found with the switch on (${on.fillers})`);
    assert.ok(on.summary.pitch_mean_hz !== null && on.summary.volume_mean_dbfs !== null && Number(on.voicedSeconds) > 5);
    for (const r of [off, on]) assert.equal(Number(r.confidences.n), Number(r.confidences.words), 'every word has a confidence in (0, 1]');
  } finally {
    await w.stop();
  }
});
