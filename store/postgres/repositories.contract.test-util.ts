// The repository contract: what the Postgres repositories promise, whatever runs the SQL.
// repositories.pglite.test.ts runs it on PGlite, repositories.server.test.ts on a PostgreSQL
// server (the one CI starts). Each suite gets a fresh, migrated database; tests use their own
// organisation ids so they do not see each other's rows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAttuneError } from '../../lib/errors.js';
import type { Principal } from '../../lib/principal.js';
import type { SqlClient } from './client.js';
import { migratePostgres, readPgMigrations, defaultPgMigrationsDir } from './migrate.js';
import { DevicesRepository, SessionsRepository } from './sessions-repo.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from './speech-sessions-repo.js';
import { MeshRepository, type MeshViewer } from './mesh-repo.js';
import { SinkProgressRepository } from './sink-progress-repo.js';
import { isVersionConflict } from './sql.js';
import type { TestDatabase } from './test-databases.test-util.js';

const isCode = (code: string, reason?: string) => (e: unknown) =>
  isAttuneError(e) && e.code === code && (reason === undefined || e.details.some((d) => d.reason === reason));

export function repositoryContract(label: string, open: () => Promise<TestDatabase>): void {
  describe(`postgres repositories (${label})`, () => {
    let db: TestDatabase;
    let sql: SqlClient;
    let now = Date.UTC(2026, 0, 10, 12, 0, 0);
    const clock = () => now;
    const ttl = 2_000;
    let sessions: SessionsRepository;
    let devices: DevicesRepository;
    let speech: SpeechSessionsRepository;
    let uploads: SpeechUploadsRepository;

    before(async () => {
      db = await open();
      sql = db.client;
      const first = await migratePostgres(sql);
      assert.deepEqual(first.applied, readPgMigrations(defaultPgMigrationsDir()).map((f) => f.name));
      sessions = new SessionsRepository(sql, { clock, cacheTtlMs: ttl });
      devices = new DevicesRepository(sql, { clock, cacheTtlMs: ttl });
      speech = new SpeechSessionsRepository(sql, { clock });
      uploads = new SpeechUploadsRepository(sql, { clock });
    });
    after(async () => {
      await db?.dispose();
    });

    test('migrations: a second run applies nothing; every table and the stream constraint exist', async () => {
      assert.deepEqual((await migratePostgres(sql)).applied, []);
      const { rows } = await sql.query<{ name: string }>(
        `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
      );
      assert.deepEqual(
        rows.map((r) => r.name),
        ['api_keys', 'devices', 'mesh_invitations', 'mesh_participants', 'mesh_sessions', 'org_daily_sessions', 'org_daily_sessions_counted', 'readings_sink_progress', 'schema_migrations', 'session_changes', 'session_practice', 'sessions', 'speech_audio_streams', 'speech_sessions', 'speech_uploads', 'users', 'webhook_deliveries', 'webhook_device_battery', 'webhook_events', 'webhooks'],
      );
      const idx = await sql.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE indexname = 'speech_audio_streams_one_open_per_session'`);
      assert.match(idx.rows[0]?.indexdef ?? '', /UNIQUE INDEX .* \(session_id\) WHERE \(released_at IS NULL\)/);
    });

    test('devices: ids are scoped to the organisation; the owner re-registers, another user of the org is refused', async () => {
      const a = await devices.register({ id: 'H10-1', orgId: 'org-dev-a', userId: 'u1', name: 'chest strap', model: 'Polar H10' });
      assert.equal(a.created, true);
      assert.deepEqual([a.device.name, a.device.model, a.device.firmware, a.device.version], ['chest strap', 'Polar H10', '', 1]);
      assert.equal(a.device.registeredAt, now);

      now += 1000;
      const again = await devices.register({ id: 'H10-1', orgId: 'org-dev-a', userId: 'u1', firmware: '3.1' });
      assert.equal(again.created, false);
      assert.deepEqual([again.device.name, again.device.model, again.device.firmware, again.device.version], ['chest strap', 'Polar H10', '3.1', 2]);
      assert.equal(again.device.registeredAt, a.device.registeredAt, 'registered_at kept');
      assert.equal(again.device.updatedAt, now);

      await assert.rejects(devices.register({ id: 'H10-1', orgId: 'org-dev-a', userId: 'u2' }), isCode('conflict', 'already_registered'));

      // Another organisation registers the same id: its own device, and nothing of org A shows.
      const b = await devices.register({ id: 'H10-1', orgId: 'org-dev-b', userId: 'u9', name: 'other' });
      assert.equal(b.created, true);
      assert.deepEqual([b.device.orgId, b.device.userId, b.device.name, b.device.model, b.device.version], ['org-dev-b', 'u9', 'other', '', 1]);
      const fresh = new DevicesRepository(sql, { clock });
      assert.equal((await fresh.get('org-dev-a', 'H10-1'))?.userId, 'u1');
      assert.equal((await fresh.get('org-dev-b', 'H10-1'))?.userId, 'u9');
      assert.equal(await fresh.get('org-dev-c', 'H10-1'), null);
    });

    test('sessions: create and get round-trip every field; the device must be registered in the same organisation', async () => {
      await devices.register({ id: 'dev-s1', orgId: 'org-s', userId: 'u1' });
      await devices.register({ id: 'dev-x', orgId: 'org-other', userId: 'u1' });
      const s = await sessions.create({
        orgId: 'org-s', userId: 'u1', deviceId: 'dev-s1', type: 'breathing', title: 'Morning', startedAt: now - 60_000,
        coherenceThreshold: 0.7, thresholdDurationS: 45, metadata: { mood: 'calm', tags: ['a', 'b'], n: 1.5 },
      });
      assert.deepEqual(
        [s.status, s.endedAt, s.startedAt, s.createdAt, s.updatedAt, s.version, s.coherenceThreshold, s.thresholdDurationS],
        ['active', null, now - 60_000, now, now, 1, 0.7, 45],
      );
      const fresh = new SessionsRepository(sql, { clock });
      assert.deepEqual(await fresh.get(s.id), s);
      const plain = await sessions.create({ orgId: 'org-s', userId: 'u1' });
      assert.deepEqual([plain.deviceId, plain.type, plain.coherenceThreshold, plain.thresholdDurationS, plain.metadata], ['', 'coherence', 0.5, 30, {}]);
      assert.deepEqual(await fresh.get(plain.id), plain);

      await assert.rejects(sessions.create({ orgId: 'org-s', userId: 'u1', deviceId: 'never-registered' }), isCode('validation_error', 'not_registered'));
      await assert.rejects(sessions.create({ orgId: 'org-s', userId: 'u1', deviceId: 'dev-x' }), isCode('validation_error', 'not_registered'), "another organisation's device");
      assert.equal(await fresh.get('not-a-uuid'), null);
      assert.equal(await fresh.get('00000000-0000-4000-8000-000000000000'), null);
    });

    test('sessions: end is idempotent and never before the start; activeAt and list', async () => {
      const org = 'org-end';
      const t0 = now;
      const older = await sessions.create({ orgId: org, userId: 'u1', startedAt: t0 - 100_000 });
      const s = await sessions.create({ orgId: org, userId: 'u1', startedAt: t0 - 10_000 });
      await sessions.create({ orgId: org, userId: 'u2', startedAt: t0 - 5_000 });
      assert.equal((await sessions.activeAt(org, 'u1', t0 - 1))?.id, s.id, 'the latest started of two active sessions');
      assert.equal((await sessions.activeAt(org, 'u1', t0 - 50_000))?.id, older.id);

      now += 1000;
      const ended = await sessions.end(s, t0 - 20_000);
      assert.deepEqual([ended.status, ended.endedAt, ended.version], ['ended', s.startedAt, 2], 'clamped to the start');
      const again = await sessions.end(s);
      assert.deepEqual(again, ended, 'ending an ended session changes nothing');
      assert.equal((await sessions.activeAt(org, 'u1', t0 - 1))?.id, older.id, 'a local write updates the per-user cache at once');

      assert.deepEqual((await sessions.list({ orgId: org, userId: null, limit: 10 })).map((x) => x.startedAt), [t0 - 5_000, t0 - 10_000, t0 - 100_000]);
      assert.deepEqual((await sessions.list({ orgId: org, userId: 'u1', status: 'active', limit: 10 })).map((x) => x.id), [older.id]);
      const page1 = await sessions.list({ orgId: org, userId: null, limit: 2 });
      const last = page1[page1.length - 1];
      const page2 = await sessions.list({ orgId: org, userId: null, limit: 2, before: { startedAt: last.startedAt, id: last.id } });
      assert.deepEqual(page2.map((x) => x.id), [older.id]);
      await assert.rejects(sessions.list({ orgId: org, userId: null, limit: 2, before: { startedAt: 1, id: 'garbage' } }), isCode('validation_error'));
      await assert.rejects(sessions.end({ ...s, id: '00000000-0000-4000-8000-000000000001' }), isCode('not_found'));
    });

    test("sessions: another process's changes are seen after the cache TTL, or at once with fresh", async () => {
      const org = 'org-cache';
      const ours = new SessionsRepository(sql, { clock, cacheTtlMs: ttl });
      const theirs = new SessionsRepository(sql, { clock, cacheTtlMs: ttl });
      assert.equal(await ours.activeAt(org, 'u1', now), null);
      const s = await theirs.create({ orgId: org, userId: 'u1', startedAt: now - 1000 });
      assert.equal(await ours.activeAt(org, 'u1', now), null, 'a cached miss answers within the TTL');
      now += ttl + 1;
      assert.equal((await ours.activeAt(org, 'u1', now))?.id, s.id, 'read again after the TTL');
      assert.equal((await ours.get(s.id))?.title, '');
      await theirs.update(s.id, { title: 'renamed' });
      assert.equal((await ours.get(s.id))?.title, '', 'cached');
      assert.equal((await ours.get(s.id, { fresh: true }))?.title, 'renamed');
    });

    test('sessions: update changes only the patched fields; a stale version is a conflict and changes nothing', async () => {
      const s = await sessions.create({ orgId: 'org-upd', userId: 'u1', metadata: { a: 1 } });
      const a = await sessions.update(s.id, { title: 'T' }, { expectedVersion: 1 });
      assert.deepEqual([a.title, a.metadata, a.version, a.updatedAt], ['T', { a: 1 }, 2, now + 1], 'updated_at strictly later even when the clock stands still');
      await assert.rejects(sessions.update(s.id, { title: 'stale' }, { expectedVersion: 1 }), (e) => isVersionConflict(e) && e.code === 'conflict' && e.currentVersion === 2);
      const b = await sessions.update(s.id, { coherenceThreshold: 0.8, metadata: { b: 2 } });
      assert.deepEqual([b.title, b.coherenceThreshold, b.metadata, b.version], ['T', 0.8, { b: 2 }, 3]);
      await assert.rejects(sessions.end(b, now, { expectedVersion: 2 }), (e) => isVersionConflict(e));
      assert.equal((await sessions.get(s.id, { fresh: true }))?.status, 'active');
      assert.equal((await sessions.end(b, now, { expectedVersion: 3 })).version, 4);
      await assert.rejects(sessions.update('00000000-0000-4000-8000-000000000002', { title: 'x' }), isCode('not_found'));
      await assert.rejects(sessions.update(s.id, { coherenceThreshold: 2 }), (e) => (e as { code?: string }).code === '23514', 'CHECK refuses an out-of-range threshold');
    });

    test('speech sessions: create then get round-trips every field', async () => {
      const s = await speech.create({
        orgId: 'org-sp', userId: 'u1', title: 'Pitch', description: 'Q1 review', type: 'presentation', expectedDurationS: 300,
        settings: { min_pause_ms: 300, custom: { a: [1, 2] } },
      });
      assert.deepEqual([s.status, s.source, s.createdAt, s.version, s.startedAt], ['created', '', now, 1, null]);
      assert.deepEqual(await speech.get(s.id), s);
      assert.equal(await speech.get('no-such-session'), null);
      const owner: Principal = { orgId: 'org-sp', userId: 'u1', scopes: new Set() };
      const stranger: Principal = { orgId: 'org-sp', userId: 'u2', scopes: new Set() };
      assert.deepEqual(await speech.getVisible(owner, s.id), s);
      await assert.rejects(speech.getVisible(stranger, s.id), isCode('not_found'));
    });

    test('speech sessions: updates keep other fields, updated_at strictly increases even when the clock goes back, concurrent updates all land', async () => {
      const s = await speech.create({ orgId: 'org-sp', userId: 'u1', type: 'speech' });
      const a = await speech.update(s.id, { title: 'first' });
      assert.equal(a.updatedAt, s.updatedAt + 1);
      now -= 10_000;
      const b = await speech.update(s.id, { status: 'processing', audioDurationS: 12.5 });
      now += 10_000;
      assert.equal(b.updatedAt, a.updatedAt + 1);
      assert.deepEqual([b.title, b.status, b.audioDurationS, b.version], ['first', 'processing', 12.5, 3]);
      await Promise.all([speech.update(s.id, { title: 'T' }), speech.update(s.id, { description: 'D' }), speech.update(s.id, { settings: { x: 1 } })]);
      const read = await speech.get(s.id);
      assert.deepEqual([read?.title, read?.description, read?.settings, read?.version], ['T', 'D', { x: 1 }, 6]);
      await assert.rejects(speech.update(s.id, { title: 'stale' }, { expectedVersion: 3 }), (e) => isVersionConflict(e) && e.currentVersion === 6);
      assert.equal((await speech.get(s.id))?.title, 'T');
      await assert.rejects(speech.update('missing', { title: 'x' }), isCode('not_found'));
      await assert.rejects(speech.update('00000000-0000-4000-8000-000000000003', { title: 'x' }), isCode('not_found'));
    });

    test('speech audio: of two claims at once exactly one wins; later claims are refused until the session failed; release', async () => {
      const s = await speech.create({ orgId: 'org-sp', userId: 'u1', type: 'interview' });
      const at = now - 5_000;
      const results = await Promise.allSettled([
        speech.claimForAudio(s.id, { source: 'live', startedAt: at, sampleRateHz: 48_000, streamId: 'live-1' }),
        speech.claimForAudio(s.id, { source: 'live', startedAt: at, sampleRateHz: 16_000, streamId: 'live-2' }),
      ]);
      const won = results.findIndex((r) => r.status === 'fulfilled');
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'], 'exactly one claim wins');
      const err = (results[1 - won] as PromiseRejectedResult).reason;
      assert.ok(isAttuneError(err) && err.code === 'conflict' && err.message === 'session already has audio', String(err));
      const claimed = await speech.get(s.id);
      assert.deepEqual([claimed?.status, claimed?.source, claimed?.startedAt, claimed?.sampleRateHz, claimed?.version], ['recording', 'live', at, [48_000, 16_000][won], 2]);
      assert.deepEqual((await speech.openAudioStream(s.id))?.streamId, `live-${won + 1}`);
      assert.equal((await sql.query('SELECT 1 FROM speech_audio_streams WHERE session_id = $1', [s.id])).rows.length, 1, 'the loser left no claim');

      await assert.rejects(speech.claimForAudio(s.id, { source: 'upload', startedAt: at, sampleRateHz: 16_000 }), isCode('conflict', 'audio_exists'));
      // The live stream fails: the session's failure releases its stream, and a retry may claim.
      await speech.update(s.id, { status: 'failed', endedAt: at + 1000 });
      assert.equal(await speech.openAudioStream(s.id), null);
      now += 1000;
      const { session: retry, stream } = await speech.claimAudioStream(s.id, { source: 'upload', startedAt: at + 2000, sampleRateHz: 44_100 });
      assert.deepEqual([retry.status, retry.source, retry.endedAt, stream.source, stream.releasedAt], ['processing', 'upload', null, 'upload', null]);
      assert.deepEqual(await speech.get(s.id), retry);
      assert.equal(await speech.releaseAudio(s.id, { outcome: 'ended', streamId: 'some-other-stream' }), false, 'only the named stream');
      assert.equal(await speech.releaseAudio(s.id, { outcome: 'ended' }), true);
      assert.equal(await speech.releaseAudio(s.id, { outcome: 'ended' }), false, 'idempotent');
      const history = await sql.query<{ stream_id: string; outcome: string }>(
        'SELECT stream_id, outcome FROM speech_audio_streams WHERE session_id = $1 ORDER BY claimed_at, stream_id', [s.id],
      );
      assert.deepEqual(history.rows.map((r) => r.outcome), ['failed', 'ended']);
      await assert.rejects(speech.claimForAudio('00000000-0000-4000-8000-000000000004', { source: 'live', startedAt: at, sampleRateHz: 16_000 }), isCode('not_found'));
    });

    test('speech audio: the database itself refuses a second open stream of a session', async () => {
      const s = await speech.create({ orgId: 'org-sp', userId: 'u1', type: 'speech' });
      await speech.claimForAudio(s.id, { source: 'live', startedAt: now, sampleRateHz: 16_000 });
      // Bypassing the repository (as a buggy or foreign writer would): the unique index holds.
      await assert.rejects(
        sql.query(`INSERT INTO speech_audio_streams (stream_id, session_id, source, claimed_at) VALUES ('rogue', $1, 'live', now())`, [s.id]),
        (e) => (e as { code?: string }).code === '23505',
      );
      await speech.releaseAudio(s.id, { outcome: 'aborted' });
      await sql.query(`INSERT INTO speech_audio_streams (stream_id, session_id, source, claimed_at) VALUES ('next', $1, 'live', now())`, [s.id]);
    });

    test('speech audio: a claim is a lease; renewing extends it; a passed lease is swept once (by one of two sweepers at once), released as lost, with what its end marker needs', async () => {
      const t0 = now;
      const claim = async (source: 'live' | 'upload', leaseMs: number, streamId: string) => {
        const s = await speech.create({ orgId: 'org-lease', userId: 'u1', type: 'speech', settings: { min_pause_ms: 300 } });
        await speech.claimAudioStream(s.id, { source, startedAt: t0 - 1000, sampleRateHz: 44_100, streamId, leaseMs });
        return s.id;
      };
      // An upload's stream id is its upload id.
      const uploadSession = await speech.create({ orgId: 'org-lease', userId: 'u1', type: 'speech' });
      const lostUpload = await uploads.create({ sessionId: uploadSession.id, orgId: 'org-lease', userId: 'u1', fileName: 'cut.wav' });
      await speech.claimAudioStream(uploadSession.id, { source: 'upload', startedAt: t0 - 1000, sampleRateHz: 16_000, streamId: lostUpload.id, leaseMs: 1000 });
      const LOST_UPLOAD = { code: 'unavailable', message: 'ingest_lost: test' };
      const live = await claim('live', 1000, 'lease-live');
      const upload = await claim('upload', 1000, 'lease-upload');
      const healthy = await claim('live', 60_000, 'lease-healthy');
      assert.equal((await speech.openAudioStream(live))?.leaseUntil, t0 + 1000);
      now = t0 + 500;
      assert.deepEqual(await speech.renewAudioLeases(['lease-live', 'lease-missing'], 1000), new Set(['lease-live']));
      assert.equal((await speech.openAudioStream(live))?.leaseUntil, t0 + 1500);

      now = t0 + 1200; // the upload's lease has passed, the renewed live one has not
      const seen: string[][] = [];
      const first = await speech.sweepLostAudioStreams(async (lost) => void seen.push(lost.map((l) => l.streamId)), LOST_UPLOAD);
      assert.deepEqual(first.map((l) => l.streamId).filter((id) => id.startsWith('lease-') || id === lostUpload.id).sort(), [lostUpload.id, 'lease-upload'].sort());
      // The upload stream's upload and session failed with the claim's release; a live one's session is left to the worker.
      const failedUpload = await uploads.get(lostUpload.id);
      assert.deepEqual([failedUpload?.status, failedUpload?.errorCode, failedUpload?.errorMessage, failedUpload?.completedAt], ['failed', 'unavailable', 'ingest_lost: test', now]);
      assert.deepEqual([(await speech.get(uploadSession.id))?.status, (await speech.get(uploadSession.id))?.endedAt], ['failed', now]);
      assert.equal((await speech.get(upload))?.status, 'failed', 'an upload stream without an upload row: its session fails all the same');
      assert.deepEqual(first.find((l) => l.streamId === 'lease-upload'), {
        streamId: 'lease-upload', sessionId: upload, orgId: 'org-lease', userId: 'u1', source: 'upload', holder: first[0].holder, startedAt: t0 - 1000, sampleRateHz: 44_100, settings: { min_pause_ms: 300 },
      });
      assert.deepEqual(seen, [first.map((l) => l.streamId)], 'the callback got them');
      const released = await sql.query<{ outcome: string; lease_until: Date | null }>('SELECT outcome, lease_until FROM speech_audio_streams WHERE stream_id = $1', ['lease-upload']);
      assert.deepEqual(released.rows.map((r) => [r.outcome, r.lease_until]), [['lost', null]]);
      assert.equal(await speech.openAudioStream(upload), null);

      // A failed marker publish releases nothing: the next sweep takes it again.
      now = t0 + 1600;
      await assert.rejects(speech.sweepLostAudioStreams(async () => Promise.reject(new Error('bus down')), LOST_UPLOAD), /bus down/);
      assert.equal((await speech.openAudioStream(live))?.streamId, 'lease-live');
      // Two sweepers at once: each lost stream goes to exactly one of them.
      const [a, b] = await Promise.all([speech.sweepLostAudioStreams(async () => undefined, LOST_UPLOAD), speech.sweepLostAudioStreams(async () => undefined, LOST_UPLOAD)]);
      const ours = [...a, ...b].map((l) => l.streamId).filter((id) => id.startsWith('lease-'));
      assert.deepEqual(ours, ['lease-live']);
      assert.equal(await speech.openAudioStream(live), null);
      assert.equal((await speech.openAudioStream(healthy))?.streamId, 'lease-healthy', 'a lease not passed is kept');
      assert.deepEqual(await speech.renewAudioLeases(['lease-live', 'lease-healthy'], 1000), new Set(['lease-healthy']), 'the holder learns its stream was ended');
      await speech.releaseAudio(healthy, { outcome: 'ended' });
      now = t0;
    });

    test('speech sessions: list filters by user, status, type and created_at, newest first, page by page', async () => {
      const org = 'org-list';
      const made = [];
      for (let i = 0; i < 7; i++) {
        now += 1000;
        made.push(await speech.create({ orgId: org, userId: i % 2 === 0 ? 'ua' : 'ub', type: i < 4 ? 'speech' : 'interview', title: `s${i}` }));
      }
      await speech.update(made[2].id, { status: 'completed' });
      await speech.create({ orgId: 'org-list-other', userId: 'ua', type: 'speech' });
      const titles = (r: { items: Array<{ title: string }> }) => r.items.map((s) => s.title);
      const all = await speech.list({ orgId: org, limit: 100 });
      assert.deepEqual(titles(all), ['s6', 's5', 's4', 's3', 's2', 's1', 's0']);
      assert.equal(all.nextCursor, null);
      assert.deepEqual(titles(await speech.list({ orgId: org, userId: 'ua', limit: 100 })), ['s6', 's4', 's2', 's0']);
      assert.deepEqual(titles(await speech.list({ orgId: org, status: 'completed', limit: 10 })), ['s2']);
      assert.deepEqual(titles(await speech.list({ orgId: org, type: 'interview', limit: 10 })), ['s6', 's5', 's4']);
      assert.deepEqual(titles(await speech.list({ orgId: org, from: made[1].createdAt, to: made[4].createdAt, limit: 10 })), ['s3', 's2', 's1']);
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await speech.list({ orgId: org, limit: 3, cursor });
        pages.push(titles(page));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(pages, [['s6', 's5', 's4'], ['s3', 's2', 's1'], ['s0']]);
      await assert.rejects(speech.list({ orgId: org, limit: 3, cursor: 'garbage' }), isCode('validation_error'));
    });

    test("uploads: create queued, update progress and failure, read back; an upload needs its session's org and user", async () => {
      const s = await speech.create({ orgId: 'org-up', userId: 'u1', type: 'speech' });
      const u = await uploads.create({ sessionId: s.id, orgId: 'org-up', userId: 'u1', fileName: 'talk.wav', metadata: { mic: 'usb' } });
      assert.deepEqual([u.status, u.stage, u.progress, u.completedAt, u.encoding, u.errorCode, u.version], ['queued', 'receiving', 0, null, '', '', 1]);
      assert.deepEqual(await uploads.get(u.id), u);
      const p = await uploads.update(u.id, {
        status: 'processing', stage: 'transcription', progress: 0.3, etaS: 4.2, sizeBytes: 5_000_000_123, encoding: 'pcm16', channelCount: 2, sampleRateHz: 44_100, audioDurationS: 56.7,
      });
      assert.equal(p.updatedAt, u.updatedAt + 1);
      assert.deepEqual(await uploads.get(u.id), p, 'progress, eta and a size past 2^32 read back as written');
      assert.deepEqual([p.progress, p.etaS, p.sizeBytes], [0.3, 4.2, 5_000_000_123]);
      const failed = await uploads.update(u.id, { status: 'failed', errorCode: 'validation_error', errorMessage: 'bad header', completedAt: now, etaS: null }, { expectedVersion: 2 });
      assert.deepEqual(await uploads.get(u.id), failed);
      assert.deepEqual([failed.stage, failed.etaS, failed.version], ['transcription', null, 3], 'fields not in the patch are kept');
      await assert.rejects(uploads.update(u.id, { progress: 1 }, { expectedVersion: 2 }), (e) => isVersionConflict(e));
      await assert.rejects(uploads.update('missing', { progress: 1 }), isCode('not_found'));
      await assert.rejects(uploads.create({ sessionId: '00000000-0000-4000-8000-000000000005', orgId: 'org-up', userId: 'u1', fileName: '' }), isCode('not_found'));
      await assert.rejects(uploads.create({ sessionId: s.id, orgId: 'org-up', userId: 'u2', fileName: '' }), isCode('not_found'), "another user's session");
      await assert.rejects(uploads.create({ sessionId: 's1', orgId: 'org-up', userId: 'u1', fileName: '' }), isCode('not_found'));
    });

    test('uploads and speech sessions: a write with unlessStatus leaves a record in one of those statuses as stored and says so; otherwise it writes', async () => {
      const s = await speech.create({ orgId: 'org-up', userId: 'u1', type: 'speech' });
      const u = await uploads.create({ sessionId: s.id, orgId: 'org-up', userId: 'u1', fileName: 'talk.wav' });
      const guard = { unlessStatus: ['completed'] };
      const progress = await uploads.update(u.id, { status: 'processing', stage: 'analysis', progress: 0.2 }, guard);
      assert.deepEqual([progress.status, progress.progress, progress.version], ['processing', 0.2, 2], 'not completed: written');
      const done = await uploads.update(u.id, { status: 'completed', stage: 'done', progress: 1, completedAt: now });
      const late = await uploads.update(u.id, { status: 'processing', stage: 'analysis', progress: 0 }, guard);
      assert.deepEqual(late, done, 'completed: returned as stored');
      assert.deepEqual(await uploads.get(u.id), done, 'and nothing written');
      await assert.rejects(uploads.update('00000000-0000-4000-8000-000000000006', { progress: 0 }, guard), isCode('not_found'));

      const processing = await speech.update(s.id, { status: 'processing' }, guard);
      assert.equal(processing.status, 'processing');
      const completed = await speech.update(s.id, { status: 'completed', audioDurationS: 12 });
      assert.deepEqual(await speech.update(s.id, { status: 'failed' }, guard), completed, 'a late failure does not undo a completed session');
      assert.deepEqual(await speech.get(s.id), completed);
      await assert.rejects(speech.update('00000000-0000-4000-8000-000000000007', { status: 'failed' }, guard), isCode('not_found'));
    });

    // Mesh (group) sessions: store/postgres/mesh-repo.ts, schemas/postgres/0003_mesh.sql.
    const viewer = (org: string, userId: string, admin = false): MeshViewer => ({ orgId: org, userId, admin });

    test('mesh: create and get round-trip every field; status follows the clock (scheduled, active at the start, ended after the duration)', async () => {
      const mesh = new MeshRepository(sql, { clock });
      const org = 'org-mesh-a';
      const s = await mesh.create({
        orgId: org, hostUserId: 'host', hostDisplayName: 'Sarah', name: 'Morning circle', visibility: 'public', maxParticipants: 8,
        scheduledStart: now + 60_000, durationS: 1200, protocol: 'gratitude_focus', breathingRateBpm: 5.5, coherenceThreshold: 0.8,
        thresholdDurationS: 40, minTier: 'pro', minCoherenceHistory: 0.6,
      });
      assert.deepEqual(
        [s.type, s.status, s.startedAt, s.endedAt, s.scheduledStart, s.scheduledEnd, s.version, s.participantCount, s.createdAt],
        ['scheduled', 'scheduled', null, null, now + 60_000, now + 60_000 + 1_200_000, 1, 0, now],
      );
      assert.deepEqual(
        [s.hostDisplayName, s.protocol, s.breathingRateBpm, s.coherenceThreshold, s.thresholdDurationS, s.minTier, s.minCoherenceHistory, s.maxParticipants],
        ['Sarah', 'gratitude_focus', 5.5, 0.8, 40, 'pro', 0.6, 8],
      );
      assert.deepEqual(await mesh.get(s.id), s);
      const t0 = now;
      now = t0 + 60_000;
      assert.deepEqual([(await mesh.get(s.id))?.status, (await mesh.get(s.id))?.startedAt], ['active', t0 + 60_000], 'active from the scheduled start, stored or not');
      now = t0 + 60_000 + 1_200_000;
      const ended = await mesh.get(s.id);
      assert.deepEqual([ended?.status, ended?.endedAt], ['ended', t0 + 60_000 + 1_200_000]);
      now = t0;
      const instant = await mesh.create({ orgId: org, hostUserId: 'host', name: 'Now', visibility: 'private', maxParticipants: 3 });
      assert.deepEqual(
        [instant.type, instant.status, instant.startedAt, instant.scheduledEnd, instant.protocol, instant.breathingRateBpm, instant.coherenceThreshold, instant.thresholdDurationS, instant.minTier],
        ['instant', 'active', now, null, 'heart_breath_sync', 6, 0.7, 30, null],
      );
      await assert.rejects(mesh.create({ orgId: org, hostUserId: 'host', name: 'x', visibility: 'public', maxParticipants: 0 }), isCode('validation_error', 'constraint_violation'));
      assert.equal(await mesh.get('not-a-uuid'), null);
      assert.equal(await mesh.get('00000000-0000-4000-8000-000000000009'), null);
    });

    test('mesh: join admits up to max_participants (mesh_full beyond), joining twice is the same participant, leaving frees a seat and rejoining brings the same participant back', async () => {
      const mesh = new MeshRepository(sql, { clock });
      const org = 'org-mesh-join';
      const s = await mesh.create({ orgId: org, hostUserId: 'host', name: 'Three seats', visibility: 'public', maxParticipants: 3 });
      const a = await mesh.join(s.id, viewer(org, 'ua'), { intention: 'calm', displayName: 'A' });
      assert.deepEqual([a.joined, a.participant.position, a.participant.intention, a.participant.displayName, a.participant.anonymous, a.session.participantCount], [true, 1, 'calm', 'A', false, 1]);
      const again = await mesh.join(s.id, viewer(org, 'ua'), { intention: 'other' });
      assert.deepEqual([again.joined, again.participant, again.session.participantCount], [false, a.participant, 1], 'the same participant, unchanged');
      const b = await mesh.join(s.id, viewer(org, 'ub'), { anonymous: true });
      const c = await mesh.join(s.id, viewer(org, 'uc'));
      assert.deepEqual([b.participant.position, b.participant.anonymous, c.participant.position, c.session.participantCount], [2, true, 3, 3]);
      await assert.rejects(mesh.join(s.id, viewer(org, 'ud')), isCode('mesh_full', 'mesh_full'));
      assert.equal((await mesh.get(s.id))?.participantCount, 3, 'the refused join left nothing');
      assert.deepEqual((await mesh.join(s.id, viewer(org, 'ub'))).participant.id, b.participant.id, 'a present participant at capacity is answered, not refused');

      now += 1000;
      const left = await mesh.leave(s.id, viewer(org, 'ub'));
      assert.deepEqual([left.left, left.participant.leftAt], [true, now]);
      assert.deepEqual([(await mesh.leave(s.id, viewer(org, 'ub'))).left], [false], 'leaving again changes nothing');
      await assert.rejects(mesh.leave(s.id, viewer(org, 'never')), isCode('not_found'));
      const d = await mesh.join(s.id, viewer(org, 'ud'));
      assert.deepEqual([d.participant.position, d.session.participantCount], [4, 3], 'positions are never reused');
      await assert.rejects(mesh.join(s.id, viewer(org, 'ub')), isCode('mesh_full', 'mesh_full'), 'the seat b left was taken');
      await mesh.leave(s.id, viewer(org, 'ua'));
      const back = await mesh.join(s.id, viewer(org, 'ub'));
      assert.deepEqual([back.joined, back.participant.id, back.participant.position, back.participant.leftAt, back.participant.anonymous], [true, b.participant.id, 2, null, true]);
      assert.deepEqual((await mesh.present(s.id)).map((p) => p.userId), ['ub', 'uc', 'ud']);

      await assert.rejects(mesh.join(s.id, viewer('org-mesh-other', 'ua')), isCode('not_found'), 'another organisation');
      await assert.rejects(mesh.join('00000000-0000-4000-8000-00000000000a', viewer(org, 'ua')), isCode('not_found'));
      await assert.rejects(mesh.join(s.id, viewer(org, 'ue'), { deviceId: 'unregistered' }), isCode('mesh_full', 'mesh_full'), 'capacity is checked first');
      const open = await mesh.create({ orgId: org, hostUserId: 'host', name: 'Open', visibility: 'public', maxParticipants: 10 });
      await assert.rejects(mesh.join(open.id, viewer(org, 'ue'), { deviceId: 'unregistered' }), isCode('validation_error', 'not_registered'));
      await devices.register({ id: 'mesh-dev', orgId: org, userId: 'ue' });
      assert.equal((await mesh.join(open.id, viewer(org, 'ue'), { deviceId: 'mesh-dev' })).participant.deviceId, 'mesh-dev');
    });

    test('mesh: a private session admits its host and invitees only; an ended session (by the host or by its planned end) admits nobody; ending is idempotent', async () => {
      const mesh = new MeshRepository(sql, { clock });
      const org = 'org-mesh-private';
      const s = await mesh.create({
        orgId: org, hostUserId: 'host', name: 'Family', visibility: 'private', maxParticipants: 8,
        invitedUserIds: ['u1', 'u2', 'u2', 'host'], invitationEmails: ['Fam1@example.com', 'fam1@example.com'],
      });
      const inv = await sql.query<{ user_id: string | null; email: string | null }>('SELECT user_id, email FROM mesh_invitations WHERE mesh_id = $1 ORDER BY user_id, email', [s.id]);
      assert.deepEqual(inv.rows, [{ user_id: 'u1', email: null }, { user_id: 'u2', email: null }, { user_id: null, email: 'Fam1@example.com' }]);
      await assert.rejects(mesh.join(s.id, viewer(org, 'stranger')), isCode('forbidden', 'not_invited'));
      await assert.rejects(mesh.access(s.id, viewer(org, 'stranger')), isCode('forbidden', 'not_invited'));
      await assert.rejects(mesh.access(s.id, viewer('org-x', 'u1')), isCode('not_found'));
      assert.equal((await mesh.access(s.id, viewer(org, 'admin', true))).invited, false, 'an admin sees it');
      await assert.rejects(mesh.join(s.id, viewer(org, 'admin', true)), isCode('forbidden', 'not_invited'), 'but is not invited to join');
      assert.equal((await mesh.join(s.id, viewer(org, 'host'))).participant.position, 1);
      const u1 = await mesh.join(s.id, viewer(org, 'u1'));
      const access = await mesh.access(s.id, viewer(org, 'u1'));
      assert.deepEqual([access.invited, access.participant], [true, u1.participant]);

      now += 5000;
      const ended = await mesh.end(s.id);
      assert.deepEqual([ended.status, ended.endedAt, ended.version, ended.participantCount], ['ended', now, 2, 2]);
      now += 5000;
      assert.deepEqual(await mesh.end(s.id), ended, 'ending again changes nothing');
      await assert.rejects(mesh.join(s.id, viewer(org, 'u2')), isCode('conflict', 'mesh_ended'));
      // A scheduled session ended before its start: a zero-length session.
      const later = await mesh.create({ orgId: org, hostUserId: 'host', name: 'Later', visibility: 'public', maxParticipants: 2, scheduledStart: now + 3_600_000 });
      const cancelled = await mesh.end(later.id);
      assert.deepEqual([cancelled.status, cancelled.startedAt, cancelled.endedAt], ['ended', now, now]);
      // A session whose planned end passed is stored as ended by the next join.
      const short = await mesh.create({ orgId: org, hostUserId: 'host', name: 'Short', visibility: 'public', maxParticipants: 2, durationS: 60 });
      now += 61_000;
      await assert.rejects(mesh.join(short.id, viewer(org, 'u1')), isCode('conflict', 'mesh_ended'));
      const stored = await sql.query<{ status: string }>('SELECT status FROM mesh_sessions WHERE mesh_id = $1', [short.id]);
      assert.equal(stored.rows[0].status, 'active', 'the refused join rolled back, status change included');
      assert.equal((await mesh.end(short.id)).endedAt, short.scheduledStart + 60_000, 'ended at its planned end, not now');
    });

    test('mesh: list shows what the viewer may see, filtered by status, visibility and type, page by page with the total', async () => {
      const mesh = new MeshRepository(sql, { clock });
      const org = 'org-mesh-list';
      const t0 = now;
      const made = [];
      for (let i = 0; i < 5; i++) {
        made.push(await mesh.create({ orgId: org, hostUserId: 'host', name: `pub${i}`, visibility: 'public', maxParticipants: 5, scheduledStart: t0 - 10_000 * (5 - i) }));
      }
      const priv = await mesh.create({ orgId: org, hostUserId: 'host', name: 'priv', visibility: 'private', maxParticipants: 5, invitedUserIds: ['friend'], scheduledStart: t0 - 1 });
      const future = await mesh.create({ orgId: org, hostUserId: 'host', name: 'future', visibility: 'public', maxParticipants: 5, scheduledStart: t0 + 3_600_000 });
      await mesh.create({ orgId: 'org-mesh-list-other', hostUserId: 'host', name: 'elsewhere', visibility: 'public', maxParticipants: 5 });
      await mesh.end(made[0].id);
      await mesh.join(made[4].id, viewer(org, 'stranger'));
      const names = (r: { sessions: Array<{ name: string }> }) => r.sessions.map((x) => x.name);
      const all = await mesh.list({ viewer: viewer(org, 'stranger'), page: 1, perPage: 10 });
      assert.deepEqual([names(all), all.total], [['future', 'pub4', 'pub3', 'pub2', 'pub1', 'pub0'], 6]);
      assert.equal(all.sessions[1].participantCount, 1);
      assert.deepEqual(names(await mesh.list({ viewer: viewer(org, 'friend'), status: 'active', page: 1, perPage: 10 })), ['priv', 'pub4', 'pub3', 'pub2', 'pub1']);
      assert.deepEqual(names(await mesh.list({ viewer: viewer(org, 'stranger'), status: 'ended', page: 1, perPage: 10 })), ['pub0']);
      assert.deepEqual(names(await mesh.list({ viewer: viewer(org, 'stranger'), status: 'scheduled', page: 1, perPage: 10 })), ['future']);
      assert.deepEqual(names(await mesh.list({ viewer: viewer(org, 'admin', true), visibility: 'private', page: 1, perPage: 10 })), ['priv']);
      assert.deepEqual(names(await mesh.list({ viewer: viewer(org, 'stranger'), type: 'scheduled', page: 1, perPage: 10 })), ['future']);
      const p2 = await mesh.list({ viewer: viewer(org, 'stranger'), status: 'active', page: 2, perPage: 3 });
      assert.deepEqual([names(p2), p2.total], [['pub1'], 4]);
      const beyond = await mesh.list({ viewer: viewer(org, 'stranger'), page: 9, perPage: 3 });
      assert.deepEqual([names(beyond), beyond.total], [[], 6]);
      // The clock moves the future session into the active list without any write.
      now = t0 + 3_600_000;
      assert.ok(names(await mesh.list({ viewer: viewer(org, 'stranger'), status: 'active', page: 1, perPage: 10 })).includes('future'));
      now = t0;
      void priv;
      void future;
    });

    test("mesh: participationsOf answers the user's current session after 100 that ended by their duration (the stored ended_at is empty for those)", async () => {
      const mesh = new MeshRepository(sql, { clock });
      const org = 'org-mesh-daily';
      const t0 = now;
      // A daily 10-minute circle the user sits to the end of, 101 days running: nobody ends it by
      // hand, so its row keeps ended_at empty; its status follows the clock.
      for (let day = 0; day < 101; day++) {
        now = t0 + day * 86_400_000;
        const s = await mesh.create({ orgId: org, hostUserId: 'host', name: `Daily ${day}`, visibility: 'public', maxParticipants: 10, durationS: 600 });
        await mesh.join(s.id, viewer(org, 'regular'));
      }
      now = t0 + 101 * 86_400_000;
      const today = await mesh.create({ orgId: org, hostUserId: 'host', name: 'Today', visibility: 'public', maxParticipants: 10, durationS: 600 });
      const joined = await mesh.join(today.id, viewer(org, 'regular'));
      now += 120_000;
      // What the coherence fan-out asks for a window ending now (its look-back: an hour).
      const list = await mesh.participationsOf(org, 'regular', now - 3_600_000);
      assert.deepEqual(list.map((p) => [p.meshId, p.participantId, p.endedAt]), [[today.id, joined.participant.id, today.scheduledEnd]]);
      now = t0;
    });

    test('readings sink progress: the newest row at or before an offset, per group and partition; a row written again takes the new value; a prune drops the rows below an offset and no other', async () => {
      const progress = new SinkProgressRepository(sql);
      const key = { groupId: 'g-progress', topic: 'attune.heart.readings.v1', partition: 3 };
      assert.equal(await progress.at(key, 100n), undefined);
      await progress.record(key, 10n, null);
      await progress.record(key, 20n, 1_764_000_000_123.5);
      await progress.record({ ...key, partition: 4 }, 15n, 99);
      await progress.record({ ...key, groupId: 'g-other' }, 15n, 98);
      assert.equal(await progress.at(key, 9n), undefined);
      assert.deepEqual(await progress.at(key, 10n), { commitOffset: 10n, partitionTimeMs: null });
      assert.deepEqual(await progress.at(key, 19n), { commitOffset: 10n, partitionTimeMs: null });
      assert.deepEqual(await progress.at(key, 20n), { commitOffset: 20n, partitionTimeMs: 1_764_000_000_123.5 });
      assert.deepEqual(await progress.at(key, 2n ** 62n), { commitOffset: 20n, partitionTimeMs: 1_764_000_000_123.5 });
      await progress.record(key, 20n, 5);
      assert.deepEqual(await progress.at(key, 20n), { commitOffset: 20n, partitionTimeMs: 5 });
      for (let o = 100; o < 400; o++) await progress.record(key, BigInt(o), o);
      await progress.prune(key, 250n);
      const { rows } = await sql.query<{ n: string | number; lo: string | number }>(`SELECT count(*) AS n, min(commit_offset) AS lo FROM readings_sink_progress WHERE group_id = $1 AND topic = $2 AND partition = $3`, [key.groupId, key.topic, key.partition]);
      assert.deepEqual([Number(rows[0].n), Number(rows[0].lo)], [150, 250]);
      assert.equal(await progress.at(key, 249n), undefined);
      assert.deepEqual(await progress.at(key, 250n), { commitOffset: 250n, partitionTimeMs: 250 });
      // Other partitions and groups keep theirs.
      assert.deepEqual(await progress.at({ ...key, partition: 4 }, 15n), { commitOffset: 15n, partitionTimeMs: 99 });
      assert.deepEqual(await progress.at({ ...key, groupId: 'g-other' }, 15n), { commitOffset: 15n, partitionTimeMs: 98 });
    });
  });
}
