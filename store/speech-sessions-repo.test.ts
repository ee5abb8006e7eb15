// The speech sessions and uploads repositories against chDB (and a ClickHouse server when one
// is configured): versions written by read-modify-write, listing filters and cursors, and the
// audio claim that only one writer may win.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from './migrate.js';
import { storeImplementations, type StoreImplementation } from './test-stores.js';
import type { StoreClient } from './clickhouse.js';
import { isAttuneError } from '../lib/errors.js';
import { SpeechSessionsRepository, SpeechUploadsRepository } from './speech-sessions-repo.js';

const impls: StoreImplementation[] = await storeImplementations();

for (const impl of impls) {
  describe(`speech sessions repository (${impl.kind})`, () => {
    let store: StoreClient;
    let now = Date.UTC(2025, 0, 10, 12, 0, 0);
    const clock = () => now;
    let sessions: SpeechSessionsRepository;
    let uploads: SpeechUploadsRepository;

    before(async () => {
      store = await impl.open();
      await migrate(store);
      sessions = new SpeechSessionsRepository(store.client, store.database, { clock });
      uploads = new SpeechUploadsRepository(store.client, store.database, { clock });
    });
    after(async () => {
      await impl.dispose();
    });

    test('create then get round-trips every field', async () => {
      const s = await sessions.create({
        orgId: 'o1', userId: 'u1', title: 'Pitch', description: 'Q1 review', type: 'presentation', expectedDurationS: 300,
        settings: { min_pause_ms: 300, custom: { a: [1, 2] } },
      });
      assert.equal(s.status, 'created');
      assert.equal(s.source, '');
      assert.equal(s.createdAt, now);
      const read = await sessions.get(s.id);
      assert.deepEqual(read, s);
      assert.equal(await sessions.get('no-such-session'), null);
    });

    test('update writes a strictly newer version even when the clock stands still or goes back', async () => {
      const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'speech' });
      const a = await sessions.update(s.id, { title: 'first' });
      assert.equal(a.updatedAt, s.updatedAt + 1);
      now -= 10_000; // a clock stepped back
      const b = await sessions.update(s.id, { status: 'processing', audioDurationS: 12.5 });
      now += 10_000;
      assert.equal(b.updatedAt, a.updatedAt + 1);
      const read = await sessions.get(s.id);
      assert.equal(read?.title, 'first', 'the earlier change is kept');
      assert.equal(read?.status, 'processing');
      assert.equal(read?.audioDurationS, 12.5);
      assert.equal(read?.updatedAt, b.updatedAt);
    });

    test('concurrent updates in one process all land (none builds on a stale version)', async () => {
      const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'speech' });
      await Promise.all([
        sessions.update(s.id, { title: 'T' }),
        sessions.update(s.id, { description: 'D' }),
        sessions.update(s.id, { status: 'completed' }),
      ]);
      const read = await sessions.get(s.id);
      assert.deepEqual([read?.title, read?.description, read?.status], ['T', 'D', 'completed']);
    });

    test('update of a missing session is not_found', async () => {
      await assert.rejects(sessions.update('missing', { title: 'x' }), (e) => isAttuneError(e) && e.code === 'not_found');
    });

    test('claimForAudio: first claim wins, a concurrent second gets conflict, a failed session may be claimed again', async () => {
      const s = await sessions.create({ orgId: 'o1', userId: 'u1', type: 'interview' });
      const at = now - 5_000;
      const results = await Promise.allSettled([
        sessions.claimForAudio(s.id, { source: 'live', startedAt: at, sampleRateHz: 48_000 }),
        sessions.claimForAudio(s.id, { source: 'upload', startedAt: at, sampleRateHz: 16_000 }),
      ]);
      assert.equal(results[0].status, 'fulfilled');
      assert.equal(results[1].status, 'rejected');
      const err = (results[1] as PromiseRejectedResult).reason;
      assert.ok(isAttuneError(err) && err.code === 'conflict' && err.message === 'session already has audio');
      const claimed = await sessions.get(s.id);
      assert.equal(claimed?.status, 'recording');
      assert.equal(claimed?.source, 'live');
      assert.equal(claimed?.startedAt, at);
      assert.equal(claimed?.sampleRateHz, 48_000);

      // Later (not concurrent) claims are refused by the stored status.
      await assert.rejects(sessions.claimForAudio(s.id, { source: 'upload', startedAt: at, sampleRateHz: 16_000 }), (e) => isAttuneError(e) && e.code === 'conflict');
      await sessions.update(s.id, { status: 'failed', endedAt: at + 1000 });
      const retry = await sessions.claimForAudio(s.id, { source: 'upload', startedAt: at + 2000, sampleRateHz: 44_100 });
      assert.equal(retry.status, 'processing');
      assert.equal(retry.source, 'upload');
      assert.equal(retry.endedAt, null);
      assert.deepEqual(await sessions.get(s.id), retry);
      await assert.rejects(sessions.claimForAudio('missing', { source: 'live', startedAt: at, sampleRateHz: 16_000 }), (e) => isAttuneError(e) && e.code === 'not_found');
    });

    test('list filters by user, status, type and created_at, newest first, page by page', async () => {
      const org = 'o-list';
      const made = [];
      for (let i = 0; i < 7; i++) {
        now += 1000;
        made.push(await sessions.create({ orgId: org, userId: i % 2 === 0 ? 'ua' : 'ub', type: i < 4 ? 'speech' : 'interview', title: `s${i}` }));
      }
      await sessions.update(made[2].id, { status: 'completed' });
      await sessions.create({ orgId: 'o-other', userId: 'ua', type: 'speech' });

      const all = await sessions.list({ orgId: org, limit: 100 });
      assert.deepEqual(all.items.map((s) => s.title), ['s6', 's5', 's4', 's3', 's2', 's1', 's0']);
      assert.equal(all.nextCursor, null);

      const ua = await sessions.list({ orgId: org, userId: 'ua', limit: 100 });
      assert.deepEqual(ua.items.map((s) => s.title), ['s6', 's4', 's2', 's0']);
      assert.deepEqual((await sessions.list({ orgId: org, status: 'completed', limit: 10 })).items.map((s) => s.title), ['s2']);
      assert.deepEqual((await sessions.list({ orgId: org, type: 'interview', limit: 10 })).items.map((s) => s.title), ['s6', 's5', 's4']);
      const between = await sessions.list({ orgId: org, from: made[1].createdAt, to: made[4].createdAt, limit: 10 });
      assert.deepEqual(between.items.map((s) => s.title), ['s3', 's2', 's1']);

      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await sessions.list({ orgId: org, limit: 3, cursor });
        pages.push(page.items.map((s) => s.title));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(pages, [['s6', 's5', 's4'], ['s3', 's2', 's1'], ['s0']]);
      await assert.rejects(sessions.list({ orgId: org, limit: 3, cursor: 'garbage' }), (e) => isAttuneError(e) && e.code === 'validation_error');
    });

    test('uploads: create queued, update progress and failure, read back', async () => {
      const u = await uploads.create({ sessionId: 's1', orgId: 'o1', userId: 'u1', fileName: 'talk.wav', metadata: { mic: 'usb' } });
      assert.deepEqual([u.status, u.stage, u.progress, u.completedAt], ['queued', 'receiving', 0, null]);
      assert.deepEqual(await uploads.get(u.id), u);
      const p = await uploads.update(u.id, { status: 'processing', stage: 'transcription', progress: 0.3, etaS: 4.2, sizeBytes: 5_000_000_123, encoding: 'pcm16', channelCount: 2, sampleRateHz: 44_100, audioDurationS: 56.7 });
      assert.equal(p.updatedAt, u.updatedAt + 1);
      const read = await uploads.get(u.id);
      assert.deepEqual(read, p, 'Float32 progress and eta read back as written');
      const failed = await uploads.update(u.id, { status: 'failed', errorCode: 'validation_error', errorMessage: 'bad header', completedAt: now, etaS: null });
      assert.deepEqual(await uploads.get(u.id), failed);
      assert.equal(failed.stage, 'transcription', 'fields not in the patch are kept');
      await assert.rejects(uploads.update('missing', { progress: 1 }), (e) => isAttuneError(e) && e.code === 'not_found');
    });
  });
}
