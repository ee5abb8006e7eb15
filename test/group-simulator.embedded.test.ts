// The group simulator (simulator/group.ts, `attune simulate --group N`) against a whole Attune in
// this process on the embedded bus: the group session it creates is listed active with its N
// participants, each joined with their own device, and every beat it sent is stored in
// heart_readings under that participant's device and session; a second run ends the group an
// earlier run left active, and a stopped run ends its own group and sessions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestServices } from './services.js';
import { startTestAttune, waitFor, type TestAttune } from './attune.js';
import { GROUP_SIMULATOR_SCOPES, runGroupSimulator, type GroupSimulatorStats } from '../simulator/group.js';
import { silentLogger } from '../lib/log.js';

const ORG = 'sim-org';
let app: TestAttune;
let dataDir: string;

before(async () => {
  const services = await getTestServices({ needKafka: false });
  dataDir = mkdtempSync(join(tmpdir(), 'attune-group-sim-'));
  app = await startTestAttune({ clickhouseUrl: services.clickhouseUrl, dataDir });
});
after(async () => {
  await app?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const tokenFor = (userId: string, orgId: string) => app.auth.sign({ userId, orgId, scopes: [...GROUP_SIMULATOR_SCOPES], ttlSeconds: 3600, tier: 'enterprise' });
/** Someone else of the organisation looking at the groups. */
const viewer = () => app.token('viewer', ORG, ['mesh:join', 'read:sessions']);
const activeGroups = async () => {
  const res = await app.request('GET', '/v1/mesh/sessions?status=active&per_page=100', { token: viewer() });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.sessions as Array<{ id: string; name: string; participant_count: number; breathing_rate_bpm: number; started_at: string; host: { id: string } }>;
};

describe('group simulator against an embedded Attune', () => {
  let first: GroupSimulatorStats;
  const startTimeMs = Date.now() - 90_000;

  test('a run of 4 participants (2 locked): the group is listed active with 4 participants, each joined with their own device', async () => {
    first = await runGroupSimulator({
      baseUrl: app.baseUrl,
      participants: 4,
      lockedShare: 0.5,
      breathingRateBpm: 6,
      tokenFor,
      durationMs: 90_000,
      startTimeMs,
      seed: 7,
      endSessions: false,
      log: silentLogger,
    });
    assert.ok(first.meshSessionId, JSON.stringify(first.failure));
    assert.deepEqual([first.participants, first.locked, first.joined, first.participantsGaveUp], [4, 2, 4, 0]);
    assert.deepEqual(first.perParticipant.map((p) => p.position), [1, 2, 3, 4]);
    assert.deepEqual(first.perParticipant.map((p) => p.locked), [true, true, false, false]);
    assert.equal(first.pacerStartMs, startTimeMs);
    // 90 s at 55–85 bpm: 80–130 beats each.
    for (const p of first.perParticipant) assert.ok(p.beatsSent >= 70 && p.beatsSent <= 140, `${p.deviceId}: ${p.beatsSent} beats`);

    const groups = await activeGroups();
    const group = groups.find((g) => g.id === first.meshSessionId);
    assert.ok(group, `listed: ${JSON.stringify(groups)}`);
    assert.equal(group.participant_count, 4);
    assert.equal(group.breathing_rate_bpm, 6);
    assert.equal(group.host.id, 'sim-group-user-1');
    assert.equal(Date.parse(group.started_at), startTimeMs);
    // Each participant sees themselves in the group, with the position the simulator was answered.
    for (const p of first.perParticipant) {
      const detail: { status: number; body: any } = await app.request('GET', `/v1/mesh/sessions/${first.meshSessionId}`, { token: tokenFor(p.userId, ORG) });
      assert.equal(detail.status, 200, JSON.stringify(detail.body));
      assert.deepEqual(detail.body.you, { participant_id: p.participantId, position: p.position, present: true, anonymous: false });
    }
    const joined = await app.sql.query<{ user_id: string; device_id: string | null }>(
      'SELECT user_id, device_id FROM mesh_participants WHERE mesh_id = $1 ORDER BY position',
      [first.meshSessionId],
    );
    assert.deepEqual(
      joined.rows.map((r) => [r.user_id, r.device_id]),
      first.perParticipant.map((p) => [p.userId, p.deviceId]),
    );
  });

  test("every beat sent is stored in heart_readings under the participant's device and session", async () => {
    assert.ok(first, 'the first test ran');
    const expected = new Map(first.perParticipant.map((p) => [`${p.userId}|${p.deviceId}|${p.sessionId}`, p.beatsSent]));
    const stored = await waitFor(
      'the participants’ beats in heart_readings',
      async () => {
        const rs = await app.store.client.query({
          query: `SELECT user_id, device_id, session_id, count() AS n FROM ${app.database}.heart_readings FINAL
                  WHERE org_id = {org:String} AND user_id LIKE 'sim-group-user-%' GROUP BY user_id, device_id, session_id`,
          query_params: { org: ORG },
          format: 'JSONEachRow',
        });
        const rows = (await rs.json()) as Array<{ user_id: string; device_id: string; session_id: string; n: string | number }>;
        const got = new Map(rows.map((r) => [`${r.user_id}|${r.device_id}|${r.session_id}`, Number(r.n)]));
        return [...expected].every(([k, n]) => got.get(k) === n) ? got : null;
      },
      60_000,
    );
    assert.deepEqual(stored, expected);
  });

  test('a second run ends the group the first left active; stopped, it ends its own group and its participants’ sessions', async () => {
    assert.ok(first, 'the first test ran');
    const controller = new AbortController();
    const running = runGroupSimulator({
      baseUrl: app.baseUrl,
      participants: 3,
      lockedShare: 1,
      tokenFor,
      realtime: true,
      startTimeMs: Date.now() - 20_000,
      seed: 8,
      signal: controller.signal,
      log: silentLogger,
    });
    // Listed: the new group alone, with its 3 participants.
    const groups = await waitFor('the second group listed with 3 participants', async () => {
      const g = await activeGroups();
      return g.length === 1 && g[0].id !== first.meshSessionId && g[0].participant_count === 3 ? g : null;
    });
    // Stopped once every participant's history is stored (their sessions then end where it stops).
    const firstSessions = first.perParticipant.map((p) => p.sessionId!);
    await waitFor('the second run’s beats stored for its 3 participants', async () => {
      const rs = await app.store.client.query({
        query: `SELECT uniqExact(session_id) AS n FROM ${app.database}.heart_readings
                WHERE org_id = {org:String} AND user_id LIKE 'sim-group-user-%' AND session_id NOT IN {old:Array(String)}`,
        query_params: { org: ORG, old: firstSessions },
        format: 'JSONEachRow',
      });
      const rows = (await rs.json()) as Array<{ n: string | number }>;
      return Number(rows[0].n) === 3;
    });
    controller.abort();
    const second = await running;
    assert.equal(second.meshSessionId, groups[0].id);
    assert.equal(second.staleGroupsEnded, 1);
    assert.ok(second.perParticipant.every((p) => p.outcome === 'stopped' && p.readingsSent > 0), JSON.stringify(second.perParticipant));
    assert.deepEqual(await activeGroups(), []);
    for (const id of [first.meshSessionId, second.meshSessionId]) {
      const detail = await app.request('GET', `/v1/mesh/sessions/${id}`, { token: viewer() });
      assert.equal(detail.body.status, 'ended', `${id}: ${JSON.stringify(detail.body)}`);
    }
    for (const p of second.perParticipant) {
      const s = await app.request('GET', `/v1/sessions/${p.sessionId}`, { token: tokenFor(p.userId, ORG) });
      assert.equal(s.status, 200, JSON.stringify(s.body));
      assert.equal(typeof s.body.ended_at, 'string', `${p.sessionId}: ${JSON.stringify(s.body)}`);
    }
  });
});
