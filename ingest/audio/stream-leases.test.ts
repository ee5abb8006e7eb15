// Audio stream leases (ingest/audio/stream-leases.ts) over the embedded bus and the entity
// database: a held stream's claim is renewed; the streams of a process that died are ended
// (end marker on the audio topic, claim released as lost, an upload and its session failed, a
// live session left to the speech worker); a bus refusing the markers releases nothing; a
// holder whose stream another process ended is told. The clock is the test's: rounds are
// run with tick(), not waited for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedBus } from '../../bus/embedded.js';
import type { Bus } from '../../bus/types.js';
import { Topics } from '../../schemas/topics.js';
import { createCodec, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SpeechAudioFrame } from '../../schemas/registry/schemas.js';
import { STREAM_LOST_SEQUENCE } from '../../schemas/audio-frames.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from '../../store/postgres/speech-sessions-repo.js';
import { entityTestDatabase, type TestDatabase } from '../../store/postgres/test-databases.test-util.js';
import { silentLogger } from '../../lib/log.js';
import { readTopicUntil } from '../../test/read-topic.js';
import { AudioStreamLeases } from './stream-leases.js';

const LEASE_MS = 10_000;
let now = Date.UTC(2026, 11, 3, 12);
let bus: Bus;
let codec: Codec;
let db: TestDatabase;
let sessions: SpeechSessionsRepository;
let uploads: SpeechUploadsRepository;

before(async () => {
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  await bus.ensureTopics([{ topic: Topics.speechAudio, partitions: 2 }]);
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
  db = await entityTestDatabase();
  sessions = new SpeechSessionsRepository(db.client, { clock: () => now });
  uploads = new SpeechUploadsRepository(db.client, { clock: () => now });
});

after(async () => {
  await bus.close();
  await db.dispose();
});

function leases(over: Partial<ConstructorParameters<typeof AudioStreamLeases>[0]> = {}): AudioStreamLeases {
  return new AudioStreamLeases({ sessions, bus, topics: Topics, codec, log: silentLogger, leaseMs: LEASE_MS, clock: () => now, ...over });
}

async function claimed(source: 'live' | 'upload', holder: string): Promise<{ sessionId: string; streamId: string }> {
  const s = await sessions.create({ orgId: 'o-lease', userId: 'u1', type: 'speech', settings: { model: 'moonshine-tiny' } });
  let streamId = `live-${s.id}`;
  if (source === 'upload') streamId = (await uploads.create({ sessionId: s.id, orgId: 'o-lease', userId: 'u1', fileName: 'talk.wav' })).id;
  await sessions.claimAudioStream(s.id, { source, startedAt: now - 5000, sampleRateHz: 48_000, streamId, holder, leaseMs: LEASE_MS });
  if (source === 'upload') await uploads.update(streamId, { status: 'processing', stage: 'receiving' });
  return { sessionId: s.id, streamId };
}

/** The end markers on the audio topic, by stream id. */
async function markers(groupId: string, expected: number): Promise<Map<string, SpeechAudioFrame>> {
  const found = new Map<string, SpeechAudioFrame>();
  await readTopicUntil<SpeechAudioFrame>(bus, codec, {
    groupId,
    topic: Topics.speechAudio,
    what: `${expected} end markers`,
    onValue: (f) => {
      if (f.sequence === STREAM_LOST_SEQUENCE) found.set(f.stream_id, f);
    },
    until: () => found.size >= expected,
  });
  return found;
}

test("a held stream's lease is renewed; the streams of a process that died are ended once their lease passes: marker, claim lost, upload and its session failed, live left to the worker", async () => {
  const alive = leases();
  const mine = await claimed('live', 'this/1');
  const lostHere: string[] = [];
  alive.hold(mine.streamId, () => lostHere.push(mine.streamId));
  const deadLive = await claimed('live', 'dead/2');
  const deadUpload = await claimed('upload', 'dead/2');

  // Within the lease nothing is swept; the held claim's lease moves on with each round.
  now += LEASE_MS / 2;
  await alive.tick();
  assert.equal((await sessions.openAudioStream(mine.sessionId))?.leaseUntil, now + LEASE_MS);
  assert.deepEqual([alive.stats.swept, alive.stats.renewals], [0, 1]);
  now += LEASE_MS; // past the dead process's leases, not past the renewed one
  await alive.tick();
  assert.equal(alive.stats.swept, 2);
  assert.deepEqual(lostHere, [], 'the held stream is not lost');
  assert.equal((await sessions.openAudioStream(mine.sessionId))?.streamId, mine.streamId);

  const found = await markers('leases-a', 2);
  const liveMarker = found.get(deadLive.streamId)!;
  const uploadMarker = found.get(deadUpload.streamId)!;
  assert.deepEqual(
    [liveMarker.session_id, liveMarker.source, liveMarker.is_last, liveMarker.aborted_reason, liveMarker.pcm16.length, liveMarker.source_sample_rate_hz, liveMarker.audio_started_at],
    [deadLive.sessionId, 'live', true, null, 0, 48_000, Date.UTC(2026, 11, 3, 12) - 5000],
  );
  assert.match(uploadMarker.aborted_reason ?? '', /^ingest_lost: /);
  assert.deepEqual(JSON.parse(uploadMarker.settings_json ?? ''), { model: 'moonshine-tiny' });

  for (const dead of [deadLive, deadUpload]) {
    const { rows } = await db.client.query<{ outcome: string }>('SELECT outcome FROM speech_audio_streams WHERE stream_id = $1', [dead.streamId]);
    assert.deepEqual(rows, [{ outcome: 'lost' }]);
  }
  const u = await uploads.get(deadUpload.streamId);
  assert.deepEqual([u?.status, u?.errorCode], ['failed', 'unavailable']);
  assert.match(u?.errorMessage ?? '', /^ingest_lost: .*upload the file again/);
  assert.equal((await sessions.get(deadUpload.sessionId))?.status, 'failed', 'the upload session takes a new upload');
  assert.equal((await sessions.get(deadLive.sessionId))?.status, 'recording', "the live session is the speech worker's to end (it analyses the audio before the marker)");

  // A second sweep finds nothing more; the held stream is released by its holder and dropped.
  await alive.tick();
  assert.equal(alive.stats.swept, 2);
  await sessions.releaseAudio(mine.sessionId, { outcome: 'ended', streamId: mine.streamId });
  alive.drop(mine.streamId);
  await alive.tick();
  assert.deepEqual(lostHere, []);
});

test('a bus refusing the markers changes nothing, and no sweep follows for a lease; then the stream is ended; a holder whose stream another process ended is told once', async () => {
  let refuse = true;
  const flakyBus: Bus = new Proxy(bus, {
    get(target, prop, receiver) {
      if (prop === 'publish') return async (...args: Parameters<Bus['publish']>) => (refuse ? Promise.reject(new Error('broker down (test)')) : target.publish(...args));
      return Reflect.get(target, prop, receiver);
    },
  });
  const sweeper = leases({ bus: flakyBus });
  const dead = await claimed('upload', 'dead/3');
  now += LEASE_MS + 1;
  await sweeper.tick();
  assert.deepEqual([sweeper.stats.failures, sweeper.stats.swept], [1, 0]);
  assert.equal((await sessions.openAudioStream(dead.sessionId))?.streamId, dead.streamId, 'still open');
  refuse = false;
  // After a failed round no sweep for a lease (the processes alive renew first).
  await sweeper.tick();
  assert.equal(sweeper.stats.swept, 0);
  assert.equal((await sessions.openAudioStream(dead.sessionId))?.streamId, dead.streamId);
  now += LEASE_MS;
  await sweeper.tick();
  assert.equal(sweeper.stats.swept, 1);
  assert.equal(await sessions.openAudioStream(dead.sessionId), null);

  // This process stalled past its lease: another swept its stream; its next renewal says so.
  const stalled = leases();
  const held = await claimed('live', 'this/4');
  let told = 0;
  stalled.hold(held.streamId, () => told++);
  now += LEASE_MS + 1;
  await sweeper.tick();
  await stalled.tick();
  await stalled.tick();
  assert.equal(told, 1);
  assert.equal(stalled.stats.lostHeld, 1);
});
