// The speech worker as a compute worker (issue 10: Kafka in, Kafka out): `attune worker` in its
// own process, with no ClickHouse it could reach, analyses an upload; this process holds ingest,
// the API and the sinks (no speech worker of its own), stores the results the worker publishes
// and completes the session. The answers are those of the one-process deployment: the same
// transcript, words and fluency as `attune all` gives for the same audio, also when the worker
// process is killed (-9) mid-upload and replaced; and a 4-hour upload's results pass the broker.
// An `attune ingest` process killed (-9) with a live socket open: this process, an ingest too,
// ends the stream once its lease has passed, and the audio that arrived is analysed as a clean
// stop would have it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getTestServices } from './services.js';
import { prefixedTopics, Topics } from '../schemas/topics.js';
import { startTestAttune, waitFor, type TestAttune } from './attune.js';
import { createSpeechSession, streamLiveAudio, uploadWav, wavBytes } from './speech-client.js';
import { readTopicUntil } from './read-topic.js';
import type { SpeechAudioFrame } from '../schemas/registry/schemas.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from '../store/postgres/test-databases.test-util.js';
import { startAttuneProcess, stopAttuneProcesses } from './attune-process.js';
import { finalResultRecords } from '../pipelines/speech/result-records.js';
import { syntheticResults } from '../pipelines/speech/result-records.test-util.js';
import { publishSpeechResults } from '../pipelines/speech/publish-results.js';
import { queryRows } from '../store/clickhouse.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const REAL_SPEECH = join(root, '../shared/data/speech');
const CLIP = join(REAL_SPEECH, 'jfk_1961_inaugural_M.wav');
/** Nothing listens here: a worker that tried to write ClickHouse would fail. */
const NO_CLICKHOUSE = 'http://127.0.0.1:9';

const services = await getTestServices({ needKafka: true }).catch((err: Error) => {
  if (process.env.CI === 'true') throw err;
  return null;
});
const databaseUrl = await serverDatabaseUrl();
if ((!services?.kafkaBrokers || !databaseUrl) && process.env.CI === 'true') throw new Error('CI needs Kafka and PostgreSQL for the speech scale-out test');
const skip = services?.kafkaBrokers && databaseUrl ? undefined : 'needs Kafka and a PostgreSQL server (infra/kafka/kafka.sh, infra/postgres/postgres.sh)';

const children: ChildProcess[] = [];
let entities: TestDatabase | null = null;
let split: TestAttune | null = null;
let whole: TestAttune | null = null;
// One data dir for both in-process Attunes (chDB opens one per process), a database each.
const dataDir = mkdtempSync(join(tmpdir(), 'attune-speech-scale-'));

let workerEnv: Record<string, string> = {};
let topicPrefix = '';
/** Shared by this process and the ingest child, so either takes the tokens minted here. */
const JWT_SECRET = randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '');
/** Short leases, so a dead ingest process's stream is ended in seconds (ATTUNE_AUDIO_LEASE_S). */
const LEASE_S = '3';

/** `attune worker` in a child; resolves with its /metrics URL once its roles have started. */
function startWorkerProcess(env: Record<string, string>): Promise<string> {
  return startAttuneProcess(['worker'], { LOG_LEVEL: 'info', ATTUNE_METRICS_PORT: '0', ATTUNE_METRICS_HOST: '127.0.0.1', ...env }, children, 'metrics listening');
}

before(async () => {
  if (skip) return;
  entities = await serverDatabase(databaseUrl!);
  topicPrefix = `speech-scale-${randomUUID().slice(0, 8)}.`;
  // Ingest, the API and every sink, and no compute: entities on the shared PostgreSQL database
  // (given as DATABASE_URL, so `entities: 'pglite'` only stops the helper from making its own).
  split = await startTestAttune({
    kafkaBrokers: services!.kafkaBrokers,
    clickhouseUrl: services!.clickhouseUrl,
    roles: { ingest: true, api: true, sink: true, worker: false },
    topicPrefix,
    dataDir,
    entities: 'pglite',
    env: { DATABASE_URL: entities.url!, JWT_SECRET, ATTUNE_AUDIO_LEASE_S: LEASE_S },
  });
  assert.equal(split.speechWorker, null, 'no speech worker in the sink process');
  assert.ok(split.speechResultsSink, 'the speech results sink runs with the sinks');
  workerEnv = {
    KAFKA_BROKERS: services!.kafkaBrokers!.join(','),
    DATABASE_URL: entities.url!,
    CLICKHOUSE_URL: NO_CLICKHOUSE,
    ATTUNE_TOPIC_PREFIX: topicPrefix,
    ATTUNE_TOPIC_PARTITIONS: '3',
    JWT_SECRET: 'not-used-by-the-worker-role-0123456789abcdef',
    ...(process.env.ATTUNE_KAFKA_CLIENT ? { ATTUNE_KAFKA_CLIENT: process.env.ATTUNE_KAFKA_CLIENT } : {}),
  };
  await startWorkerProcess(workerEnv);
  // The one-process reference: everything in one Attune, on topics of its own.
  whole = await startTestAttune({ kafkaBrokers: services!.kafkaBrokers, clickhouseUrl: services!.clickhouseUrl, dataDir });
});

after(async () => {
  await stopAttuneProcesses(children);
  await split?.cleanup();
  await whole?.cleanup();
  await entities?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

async function analyse(app: TestAttune, wav: Buffer = readFileSync(CLIP), whileAnalysed?: (sessionId: string) => Promise<void>): Promise<Record<string, unknown>> {
  const token = app.token('scale-user', 'scale-org');
  const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'scale-out' });
  const up = await uploadWav(app.baseUrl, token, session.id, wav, { fileName: 'speech.wav' });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  await whileAnalysed?.(session.id);
  const status = await waitFor(
    'the upload to be analysed',
    async () => {
      const r = await app.request('GET', `/v1/speech-sessions/${session.id}/upload/${up.body.upload_id}/status`, { token });
      return r.body.status === 'completed' || r.body.status === 'failed' ? r.body : null;
    },
    240_000,
    200,
  );
  assert.equal(status.status, 'completed', JSON.stringify(status));
  // The sink marks the upload completed, then the session (speech-results-sink.ts): wait for
  // both, or a loaded machine reads the session between the two (ci86 read 'processing').
  await waitFor('the session completed', async () => (await app.request('GET', `/v1/speech-sessions/${session.id}`, { token })).body.status === 'completed', 60_000, 100);
  const get = async (path: string) => {
    const r = await app.request('GET', `/v1/speech-sessions/${session.id}${path}`, { token });
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const s = await get('');
  const transcript = await get('/transcript');
  const fluency = await get('/fluency');
  return {
    status: s.status,
    text: transcript.text,
    words: transcript.words.map((w: any) => [w.word ?? w.text, w.start_ms, w.end_ms, w.timing_method]),
    fluency: comparable(fluency),
  };
}

/** What differs between two runs of the same clip by design: ids, times of computation and the response's meta. */
const VOLATILE = new Set(['session_id', 'sessionId', 'id', 'upload_id', 'uploadId', 'computed_at', 'computedAt', 'timestamp', 'meta', 'request_id', 'requestId']);
function comparable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(comparable);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !VOLATILE.has(k)).map(([k, x]) => [k, comparable(x)]));
  return v;
}

test('an upload analysed by `attune worker` in another process (no ClickHouse) is stored and completed by the sinks, with the answers of one process', { skip }, async () => {
  const apart = await analyse(split!);
  const together = await analyse(whole!);
  assert.equal(apart.status, 'completed');
  assert.ok((apart.words as unknown[]).length >= 20, `${(apart.words as unknown[]).length} words`);
  assert.deepEqual(apart, together);
  assert.ok(split!.speechResultsSink!.stats.completed >= 1);
});

test("a 4-hour upload's results (~3 MB, more than the broker takes in one record batch) pass the broker as the worker publishes them and are all stored", { skip }, async () => {
  const app = split!;
  const token = app.token('scale-user', 'scale-org');
  const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'four hours' });
  const { transcripts, results } = syntheticResults(4 * 3600, 'moonshine-base');
  const head = { session_id: session.id, org_id: 'scale-org', user_id: 'scale-user', stream_id: randomUUID(), source: 'live' as const, audio_started_at: Date.UTC(2026, 11, 3, 8), model: 'moonshine-base' };
  const records = finalResultRecords(head, { transcripts, results, scores: null, prosody: true, computedAt: Date.UTC(2026, 11, 3, 12) });
  const bytes = (await Promise.all(records.map((r) => app.codec.encode(Topics.speechResults, r)))).reduce((n, b) => n + b.length, 0);
  assert.ok(bytes > 2 * 1024 * 1024, `${bytes} bytes in ${records.length} records`);
  await publishSpeechResults(records, { bus: app.bus, topics: prefixedTopics(app.topicPrefix), codec: app.codec, retry: (err) => Promise.reject(err) });
  const s = await waitFor('the session completed', async () => {
    const r = await app.request('GET', `/v1/speech-sessions/${session.id}`, { token });
    return r.body.status === 'completed' ? r.body : null;
  }, 60_000, 100);
  assert.equal(s.status, 'completed');
  const count = async (table: string) => Number((await queryRows<{ n: string }>(app.store.client, `SELECT count() AS n FROM ${app.database}.${table} FINAL WHERE session_id = {s:String}`, { s: session.id }))[0].n);
  assert.deepEqual(
    [await count('speech_words'), await count('speech_frames'), await count('speech_pauses'), await count('speech_segments'), await count('speech_summaries')],
    [results.words.length, 4 * 3600, results.pauses.length, transcripts.length, 1],
  );
});

test('kill -9 of the speech worker process mid-upload: a new one reads the stream again from its first frame, and the answers equal one process\'s', { skip }, async () => {
  // Every shared clip three times over, 0.4 s apart (~3 min of speech): long enough to be killed in.
  const parts: Float32Array[] = [];
  for (let round = 0; round < 3; round++) {
    for (const f of readdirSync(REAL_SPEECH).filter((n) => n.endsWith('.wav')).sort()) {
      const wav = readWavFile(join(REAL_SPEECH, f));
      assert.equal(wav.sampleRate, 16_000, f);
      parts.push(wav.samples, new Float32Array(6400));
    }
  }
  const samples = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (samples.set(p, at), at + p.length), 0);
  const wav = wavBytes(samples, 16_000);

  const sink = split!.speechResultsSink!;
  const before = { records: sink.stats.records };
  let replacement = '';
  const apart = await analyse(split!, wav, async () => {
    // Killed once its first segments are stored and before the stream is complete.
    await waitFor('a segment of the upload stored', () => sink.stats.records > before.records, 120_000, 10);
    const victim = children.find((c) => c.exitCode === null && c.signalCode === null)!;
    const exited = new Promise((r) => victim.once('exit', r));
    victim.kill('SIGKILL');
    await exited;
    children.splice(children.indexOf(victim), 1);
    replacement = await startWorkerProcess(workerEnv);
  });
  // The replacement analysed the stream again (its first frame was not committed): the kill fell mid-stream.
  const metrics = await (await fetch(replacement)).text();
  assert.match(metrics, /^attune_speech_streams_total\{outcome="finalized"\} 1$/m);
  const together = await analyse(whole!, wav);
  // The clips' reference transcripts (their MANIFEST) hold this many words, three times over.
  const spoken = 3 * readdirSync(REAL_SPEECH).filter((n) => n.endsWith('.txt')).reduce((n, f) => n + readFileSync(join(REAL_SPEECH, f), 'utf8').split(/\s+/).filter(Boolean).length, 0);
  assert.ok((apart.words as unknown[]).length >= 0.9 * spoken, `${(apart.words as unknown[]).length} words of ${spoken} spoken`);
  assert.deepEqual(apart, together);
});

test('kill -9 of an ingest process with a live socket open: another ingest process ends the stream once its lease has passed, and the audio that arrived is analysed as a clean stop would have it', { skip }, async () => {
  const ingestUrl = await startAttuneProcess(['ingest'], { ...workerEnv, JWT_SECRET, ATTUNE_AUDIO_LEASE_S: LEASE_S }, children);
  const victim = children[children.length - 1];
  const app = split!;
  const token = app.token('scale-user', 'scale-org');
  const clip = readWavFile(CLIP);
  assert.equal(clip.sampleRate, 16_000);
  const lost = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'ingest killed mid-stream' });
  let socket: { terminate(): void } | null = null;
  const sent = await streamLiveAudio(ingestUrl, token, lost.id, clip.samples, 16_000, { realtime: false, withoutStop: true, onOpenSocket: (ws) => (socket = ws) });
  // Every sample is on the bus (16 kHz in, so no resampler holds any back): then the process dies.
  let onBus = 0;
  await readTopicUntil<SpeechAudioFrame>(app.bus, app.codec, {
    groupId: `lost-stream-${randomUUID().slice(0, 8)}`,
    topic: prefixedTopics(topicPrefix).speechAudio,
    what: 'the live audio on the bus',
    onValue: (f) => {
      if (f.stream_id === sent.streamId) onBus += f.pcm16.length / 2;
    },
    until: () => onBus >= clip.samples.length,
    timeoutMs: 60_000,
  });
  const exited = new Promise((r) => victim.once('exit', r));
  victim.kill('SIGKILL');
  await exited;
  children.splice(children.indexOf(victim), 1);
  (socket as { terminate(): void } | null)?.terminate();

  const get = async (a: TestAttune, t: string, path: string) => (await a.request('GET', path, { token: t })).body;
  const status = await waitFor('the lost stream analysed', async () => {
    const s = await get(app, token, `/v1/speech-sessions/${lost.id}`);
    return s.status === 'completed' || s.status === 'failed' ? s.status : null;
  }, 120_000, 200);
  assert.equal(status, 'completed');
  const { rows } = await entities!.client.query<{ outcome: string }>('SELECT outcome FROM speech_audio_streams WHERE stream_id = $1', [sent.streamId]);
  assert.deepEqual(rows, [{ outcome: 'lost' }], 'ended by the lease sweep, not by its own process');

  // The same audio sent to one Attune and stopped cleanly.
  const wholeToken = whole!.token('scale-user', 'scale-org');
  const clean = await createSpeechSession(whole!.baseUrl, wholeToken, { type: 'speech', title: 'clean stop' });
  await streamLiveAudio(whole!.baseUrl, wholeToken, clean.id, clip.samples, 16_000, { realtime: false });
  await waitFor('the clean stream analysed', async () => ((await get(whole!, wholeToken, `/v1/speech-sessions/${clean.id}`)).status === 'completed' ? true : null), 120_000, 200);
  const answer = async (a: TestAttune, t: string, id: string) => {
    const transcript = await get(a, t, `/v1/speech-sessions/${id}/transcript`);
    return { text: transcript.text, words: transcript.words.map((w: any) => [w.word ?? w.text, w.start_ms, w.end_ms]), fluency: comparable(await get(a, t, `/v1/speech-sessions/${id}/fluency`)) };
  };
  const afterLoss = await answer(app, token, lost.id);
  assert.ok(afterLoss.words.length >= 20, `${afterLoss.words.length} words`);
  assert.deepEqual(afterLoss, await answer(whole!, wholeToken, clean.id));
});
