// The repository contract on a PostgreSQL server, and what only a server can show: several
// connections (as several processes would hold) racing for the same audio stream, the same
// session version, and the same migrations. The server comes from DATABASE_URL (CI exports
// the one infra/postgres/postgres.sh started); outside CI the local script is started when
// there is none; in CI a missing server fails the run instead of skipping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAttuneError } from '../../lib/errors.js';
import type { SqlClient } from './client.js';
import { defaultPgMigrationsDir, migratePostgres, readPgMigrations } from './migrate.js';
import { repositoryContract } from './repositories.contract.test-util.js';
import { SessionsRepository } from './sessions-repo.js';
import { SpeechSessionsRepository } from './speech-sessions-repo.js';
import { isVersionConflict } from './sql.js';
import { serverDatabase, serverDatabaseUrl, type TestDatabase } from './test-databases.test-util.js';

const url = await serverDatabaseUrl();

if (url === null) {
  // Outside CI only: in CI serverDatabaseUrl() throws without DATABASE_URL, so this file fails.
  test('postgres repositories (server)', (t) => t.skip('no PostgreSQL server: set DATABASE_URL or install PostgreSQL (infra/postgres/postgres.sh)'));
} else {
  repositoryContract('server', () => serverDatabase(url));

  describe('postgres repositories across connections (server)', () => {
    const ROUNDS = 20;
    let db: TestDatabase;
    let a: SqlClient;
    let b: SqlClient;

    before(async () => {
      db = await serverDatabase(url);
      await migratePostgres(db.client);
      a = await db.connect();
      b = await db.connect();
    });
    after(async () => {
      await db?.dispose();
    });

    test(`two connections claim the same session's audio at once: exactly one wins (${ROUNDS} sessions)`, async () => {
      const ra = new SpeechSessionsRepository(a);
      const rb = new SpeechSessionsRepository(b);
      for (let i = 0; i < ROUNDS; i++) {
        const s = await ra.create({ orgId: 'org-race', userId: 'u1', type: 'speech' });
        // Started together on two connections; the row lock decides.
        const results = await Promise.allSettled([
          ra.claimAudioStream(s.id, { source: 'live', startedAt: Date.now(), sampleRateHz: 16_000, streamId: `a-${i}`, holder: 'process-a' }),
          rb.claimAudioStream(s.id, { source: 'live', startedAt: Date.now(), sampleRateHz: 48_000, streamId: `b-${i}`, holder: 'process-b' }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, `round ${i}: ${results.map((r) => r.status)}`);
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isAttuneError(lost.reason) && lost.reason.code === 'conflict', String(lost.reason));
        const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<SpeechSessionsRepository['claimAudioStream']>>>).value;
        const streams = await db.client.query<{ stream_id: string; holder: string }>('SELECT stream_id, holder FROM speech_audio_streams WHERE session_id = $1', [s.id]);
        assert.deepEqual(streams.rows, [{ stream_id: winner.stream.streamId, holder: winner.stream.holder }]);
        const stored = await ra.get(s.id);
        assert.equal(stored?.sampleRateHz, winner.session.sampleRateHz, "the stored session is the winner's");
        assert.equal(stored?.version, 2);
      }
    });

    test('the unique index alone: a second open stream inserted while the first is uncommitted fails once the first commits', async () => {
      const s = await new SpeechSessionsRepository(a).create({ orgId: 'org-race', userId: 'u1', type: 'speech' });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let firstInserted!: () => void;
      const inserted = new Promise<void>((resolve) => (firstInserted = resolve));
      const first = a.transaction(async (tx) => {
        await tx.query(`INSERT INTO speech_audio_streams (stream_id, session_id, source, claimed_at) VALUES ('one', $1, 'live', now())`, [s.id]);
        firstInserted();
        await gate;
      });
      await inserted;
      // Blocks on the first transaction's uncommitted index entry, then fails when it commits.
      const second = b.query(`INSERT INTO speech_audio_streams (stream_id, session_id, source, claimed_at) VALUES ('two', $1, 'live', now())`, [s.id]);
      const secondSettled = second.then(() => 'inserted', (e) => (e as { code?: string }).code ?? String(e));
      release();
      await first;
      assert.equal(await secondSettled, '23505');
    });

    test(`two connections update one session with the same version: one conflict, no lost update (${ROUNDS} rounds)`, async () => {
      const ra = new SessionsRepository(a, { cacheTtlMs: 0 });
      const rb = new SessionsRepository(b, { cacheTtlMs: 0 });
      for (let i = 0; i < ROUNDS; i++) {
        const s = await ra.create({ orgId: 'org-race', userId: `u${i}`, metadata: { round: i } });
        const results = await Promise.allSettled([
          ra.update(s.id, { title: 'from a' }, { expectedVersion: s.version }),
          rb.update(s.id, { coherenceThreshold: 0.9 }, { expectedVersion: s.version }),
        ]);
        assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'], `round ${i}`);
        const lost = results.findIndex((r) => r.status === 'rejected');
        const reason = (results[lost] as PromiseRejectedResult).reason;
        assert.ok(isVersionConflict(reason) && reason.statusCode === 409 && reason.currentVersion === s.version + 1, String(reason));
        // The loser re-reads and applies its change on the new version: both changes are kept.
        const loser = lost === 0 ? ra : rb;
        const current = (await loser.get(s.id, { fresh: true }))!;
        await loser.update(s.id, lost === 0 ? { title: 'from a' } : { coherenceThreshold: 0.9 }, { expectedVersion: current.version });
        const final = (await ra.get(s.id, { fresh: true }))!;
        assert.deepEqual([final.title, final.coherenceThreshold, final.metadata, final.version], ['from a', 0.9, { round: i }, s.version + 2]);
      }
    });

    test('two connections update one speech session with the same version: one conflict', async () => {
      const ra = new SpeechSessionsRepository(a);
      const rb = new SpeechSessionsRepository(b);
      const s = await ra.create({ orgId: 'org-race', userId: 'u1', type: 'speech' });
      const results = await Promise.allSettled([
        ra.update(s.id, { title: 'a' }, { expectedVersion: 1 }),
        rb.update(s.id, { description: 'b' }, { expectedVersion: 1 }),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      assert.ok(isVersionConflict((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason));
      assert.equal((await ra.get(s.id))?.version, 2);
    });
  });

  describe('postgres migrations across connections (server)', () => {
    let db: TestDatabase;
    before(async () => {
      db = await serverDatabase(url);
    });
    after(async () => {
      await db?.dispose();
    });

    test('two migrators at once on an empty database: both succeed, each migration is applied once', async () => {
      const others = await Promise.all([db.connect(), db.connect(), db.connect()]);
      const runs = await Promise.all([db.client, ...others].map((c) => migratePostgres(c)));
      const applied = runs.map((r) => r.applied);
      assert.equal(applied.filter((x) => x.length > 0).length, 1, `one migrator applied, the others found nothing: ${JSON.stringify(applied)}`);
      // Every migration file, not a list written here: a list went stale when 0005-0007 came.
      const files = readPgMigrations(defaultPgMigrationsDir());
      assert.ok(files.length >= 4);
      assert.deepEqual(applied.flat().sort(), files.map((f) => f.name).sort(), 'the one migrator applied every file');
      const { rows } = await db.client.query<{ version: string; n: string }>('SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version');
      assert.deepEqual(rows.map((r) => [r.version, Number(r.n)]), files.map((f) => [f.version, 1]));
    });
  });
}
