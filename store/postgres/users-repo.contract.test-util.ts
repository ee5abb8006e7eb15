// The users repository's contract (users, document-form devices, session practice fields),
// run on PGlite (users-repo.pglite.test.ts) and on a PostgreSQL server (users-repo.server.test.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAttuneError } from '../../lib/errors.js';
import type { SqlClient } from './client.js';
import { migratePostgres } from './migrate.js';
import { DevicesRepository, SessionsRepository } from './sessions-repo.js';
import { UsersRepository } from './users-repo.js';
import type { TestDatabase } from './test-databases.test-util.js';

const isCode = (code: string, reason?: string) => (e: unknown) =>
  isAttuneError(e) && e.code === code && (reason === undefined || e.details.some((d) => d.reason === reason));

export function usersContract(label: string, open: () => Promise<TestDatabase>): void {
  describe(`postgres users repository (${label})`, () => {
    let db: TestDatabase;
    let sql: SqlClient;
    let now = Date.UTC(2026, 0, 10, 12, 0, 0);
    const clock = () => now;
    let users: UsersRepository;
    let devices: DevicesRepository;
    let sessions: SessionsRepository;

    before(async () => {
      db = await open();
      sql = db.client;
      await migratePostgres(sql);
      users = new UsersRepository(sql, { clock });
      devices = new DevicesRepository(sql, { clock });
      sessions = new SessionsRepository(sql, { clock });
    });
    after(async () => {
      await db?.dispose();
    });

    test('users: created once on first sight with the defaults; update changes only the given fields', async () => {
      assert.equal(await users.get('org-u', 'alice'), null);
      await users.ensure('org-u', 'alice');
      await users.ensure('org-u', 'alice');
      const other = new UsersRepository(sql, { clock });
      await other.ensure('org-u', 'alice');
      const { rows } = await sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM users WHERE org_id = 'org-u'`);
      assert.equal(Number(rows[0].n), 1);
      const u = (await users.get('org-u', 'alice'))!;
      assert.deepEqual(
        [u.displayName, u.notificationsEnabled, u.reminderTime, u.timezone, u.createdAt, u.version],
        ['', true, null, 'UTC', now, 1],
      );
      now += 1000;
      const a = await users.update('org-u', 'alice', { displayName: 'Alex Chen', timezone: 'America/Los_Angeles' });
      assert.deepEqual([a.displayName, a.timezone, a.notificationsEnabled, a.version, a.updatedAt], ['Alex Chen', 'America/Los_Angeles', true, 2, now]);
      const b = await users.update('org-u', 'alice', { notificationsEnabled: false, reminderTime: '07:30' });
      assert.deepEqual([b.displayName, b.timezone, b.notificationsEnabled, b.reminderTime, b.version], ['Alex Chen', 'America/Los_Angeles', false, '07:30', 3]);
      assert.ok(b.updatedAt > a.updatedAt, 'updated_at strictly later with the clock standing still');
      // The same subject in another organisation is another user.
      const elsewhere = await users.getOrCreate('org-v', 'alice');
      assert.deepEqual([elsewhere.displayName, elsewhere.version], ['', 1]);
      // The database refuses what the API must have refused.
      await assert.rejects(users.update('org-u', 'alice', { reminderTime: '25:00' }));
      // Updating a subject never seen creates it.
      const fresh = await users.update('org-u', 'bob', { displayName: 'Bob' });
      assert.deepEqual([fresh.displayName, fresh.version], ['Bob', 2]);
    });

    test('devices by serial: server-assigned id, unique per organisation, re-registration by the owner, another user refused', async () => {
      const a = await users.registerDevice({ orgId: 'org-d', userId: 'u1', type: 'solas', serialNumber: 'SOL-1', firmware: '2.1.4' });
      assert.equal(a.created, true);
      assert.match(a.device.id, /^dev_solas_[0-9a-f]{8}$/);
      assert.deepEqual([a.device.type, a.device.serialNumber, a.device.firmware, a.device.lastSync, a.device.batteryLevel], ['solas', 'SOL-1', '2.1.4', null, null]);
      // The gateway's repository sees it (sync and sessions find it by id).
      assert.equal((await devices.get('org-d', a.device.id))?.userId, 'u1');

      now += 1000;
      const again = await users.registerDevice({ orgId: 'org-d', userId: 'u1', type: 'solas', serialNumber: 'SOL-1', firmware: '2.2.0' });
      assert.deepEqual([again.created, again.device.id, again.device.firmware, again.device.version], [false, a.device.id, '2.2.0', 2]);
      await assert.rejects(users.registerDevice({ orgId: 'org-d', userId: 'u2', type: 'solas', serialNumber: 'SOL-1' }), isCode('conflict', 'already_registered'));
      // Another organisation may have the same serial.
      const b = await users.registerDevice({ orgId: 'org-e', userId: 'u2', type: 'solas', serialNumber: 'SOL-1' });
      assert.equal(b.created, true);
      assert.notEqual(b.device.id, a.device.id);

      // Devices registered by id (the Attune form) have no type or serial and are listed too.
      await devices.register({ id: 'H10-7', orgId: 'org-d', userId: 'u1', firmware: '3.1' });
      const listed = await users.devicesOf('org-d', 'u1');
      assert.deepEqual(listed.map((d) => [d.id, d.type, d.serialNumber]), [[a.device.id, 'solas', 'SOL-1'], ['H10-7', '', null]]);
    });

    test('devices by serial: concurrent registrations of one serial by two users: exactly one wins', async () => {
      const results = await Promise.allSettled([
        users.registerDevice({ orgId: 'org-race', userId: 'u1', type: 'solas', serialNumber: 'SOL-R' }),
        new UsersRepository(sql, { clock }).registerDevice({ orgId: 'org-race', userId: 'u2', type: 'solas', serialNumber: 'SOL-R' }),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const { rows } = await sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM devices WHERE org_id = 'org-race'`);
      assert.equal(Number(rows[0].n), 1);
    });

    test('sync bookkeeping: last_sync never moves back; battery and last_worn kept', async () => {
      const { device } = await users.registerDevice({ orgId: 'org-s', userId: 'u1', type: 'solas', serialNumber: 'SOL-S' });
      const t = Date.UTC(2026, 0, 31, 18, 0, 0);
      await users.noteSync('org-s', device.id, { at: t, batteryLevel: 87, lastWorn: t + 1800_000 });
      let d = (await users.device('org-s', device.id))!;
      assert.deepEqual([d.lastSync, d.batteryLevel, d.lastWorn], [t, 87, t + 1800_000]);
      // An older sync finishing late changes neither the time nor the battery.
      await users.noteSync('org-s', device.id, { at: t - 60_000, batteryLevel: 90 });
      d = (await users.device('org-s', device.id))!;
      assert.deepEqual([d.lastSync, d.batteryLevel, d.lastWorn], [t, 87, t + 1800_000]);
      await users.noteSync('org-s', device.id, { at: t + 60_000 });
      d = (await users.device('org-s', device.id))!;
      assert.deepEqual([d.lastSync, d.batteryLevel], [t + 60_000, 87], 'a sync without a battery level keeps the last one');
      await users.noteSync('org-s', device.id, { at: t + 120_000, batteryLevel: 14 });
      assert.equal((await users.device('org-s', device.id))!.batteryLevel, 14);
    });

    test('sync bookkeeping: the syncs of one device within the write interval are merged into one write, made before any read', async () => {
      const held = new UsersRepository(sql, { clock, syncWriteIntervalMs: 600_000 });
      const { device } = await held.registerDevice({ orgId: 'org-s', userId: 'u1', type: 'solas', serialNumber: 'SOL-C' });
      const t = Date.UTC(2026, 1, 1, 8, 0, 0);
      await held.noteSync('org-s', device.id, { at: t, batteryLevel: 80 });
      await held.noteSync('org-s', device.id, { at: t + 2000, lastWorn: t + 1500 });
      await held.noteSync('org-s', device.id, { at: t + 1000, batteryLevel: 79 });
      assert.equal(held.pendingSyncCount, 1);
      const stored = async () => {
        const { rows } = await sql.query<{ last_seen_at: Date; battery_level_pct: number | null }>(
          'SELECT last_seen_at, battery_level_pct FROM devices WHERE org_id = $1 AND device_id = $2',
          ['org-s', device.id],
        );
        return [new Date(rows[0].last_seen_at).getTime(), rows[0].battery_level_pct === null ? null : Number(rows[0].battery_level_pct)];
      };
      assert.deepEqual(await stored(), [t, 80], 'only the first sync written so far');
      const d = (await held.device('org-s', device.id))!;
      assert.deepEqual([d.lastSync, d.batteryLevel, d.lastWorn], [t + 2000, 79, t + 1500], 'the latest time; the battery of the latest sync that had one');
      assert.equal(held.pendingSyncCount, 0);
      assert.deepEqual(await stored(), [t + 2000, 79]);
    });

    test("sync bookkeeping: a sync held back while its device was removed and taken by another user is not written onto theirs", async () => {
      const held = new UsersRepository(sql, { clock, syncWriteIntervalMs: 600_000 });
      const { device } = await held.registerDevice({ orgId: 'org-s', userId: 'u1', type: 'solas', serialNumber: 'SOL-T' });
      const t = Date.UTC(2026, 1, 2, 8, 0, 0);
      await held.noteSync('org-s', device.id, { at: t, batteryLevel: 50, userId: 'u1' });
      await held.noteSync('org-s', device.id, { at: t + 2000, batteryLevel: 40, userId: 'u1' });
      assert.equal(held.pendingSyncCount, 1, 'the second sync is held');
      assert.equal(await devices.remove('org-s', 'u1', device.id), true);
      const taken = await held.registerDevice({ orgId: 'org-s', userId: 'u2', type: 'solas', serialNumber: 'SOL-T' });
      assert.equal(taken.device.id, device.id);
      const d = (await held.device('org-s', device.id))!;
      assert.deepEqual([d.userId, d.lastSync, d.batteryLevel], ['u2', null, null], "none of u1's syncs on u2's device");
    });

    test('sessions: kind solo, practice fields at the start, notes and rating at the end; counts', async () => {
      const s = await sessions.create({ orgId: 'org-p', userId: 'u1', type: 'solo' });
      assert.equal(s.type, 'solo');
      assert.equal(await users.practice(s.id), null);
      const p = await users.setPractice({ sessionId: s.id, protocol: 'heart_breath_sync', targetDurationS: 600, intention: 'Focus' });
      assert.deepEqual(p, { sessionId: s.id, protocol: 'heart_breath_sync', targetDurationS: 600, intention: 'Focus', notes: null, subjectiveRating: null });
      await users.setOutcome(s.id, { notes: 'Felt calm', subjectiveRating: 4 });
      const kept = await users.setOutcome(s.id, {});
      assert.deepEqual([kept.notes, kept.subjectiveRating, kept.protocol], ['Felt calm', 4, 'heart_breath_sync']);
      await assert.rejects(users.setOutcome(s.id, { subjectiveRating: 6 }), 'rating 6 refused by the database');
      await assert.rejects(users.setPractice({ sessionId: s.id, protocol: 'not_a_protocol' }));
      assert.equal(await users.practice('not-a-uuid'), null);
      const plain = await sessions.create({ orgId: 'org-p', userId: 'u1' });
      const page = await users.practices([s.id, plain.id, 'not-a-uuid']);
      assert.deepEqual([...page.keys()], [s.id], 'a list page: only sessions with practice fields');
      assert.equal(page.get(s.id)?.subjectiveRating, 4);
      assert.equal(await users.sessionCount('org-p', 'u1'), 2);
      assert.equal(await users.sessionCount('org-p', 'u2'), 0);
    });

    test('mesh_sessions_joined: 0 without mesh tables or participations; counted from mesh_participants when they exist', async () => {
      const { rows } = await sql.query<{ t: string | null }>(`SELECT to_regclass('mesh_participants')::text AS t`);
      assert.equal(await users.meshSessionsJoined('org-m', 'u1'), 0);
      if (!rows[0]?.t) return;
      // Two sessions joined (one of them left), one other user.
      for (const [mesh, user, pos] of [['00000000-0000-4000-8000-0000000000a1', 'u1', 1], ['00000000-0000-4000-8000-0000000000a2', 'u1', 1], ['00000000-0000-4000-8000-0000000000a2', 'u2', 2]] as const) {
        await sql.query(
          `INSERT INTO mesh_sessions (mesh_id, org_id, host_user_id, name, kind, visibility, max_participants, scheduled_start, protocol, breathing_rate_bpm,
             coherence_threshold, threshold_duration_s, status, started_at, created_at, updated_at)
           VALUES ($1, 'org-m', 'host', 'm', 'instant', 'public', 10, $2, 'heart_breath_sync', 6, 0.6, 30, 'active', $2, $2, $2) ON CONFLICT DO NOTHING`,
          [mesh, new Date(now)],
        );
        await sql.query(
          `INSERT INTO mesh_participants (participant_id, mesh_id, org_id, user_id, position, joined_at) VALUES (gen_random_uuid(), $1, 'org-m', $2, $3, $4)`,
          [mesh, user, pos, new Date(now)],
        );
      }
      assert.equal(await users.meshSessionsJoined('org-m', 'u1'), 2);
      assert.equal(await users.meshSessionsJoined('org-m', 'u2'), 1);
    });
  });
}
