// The group facts of issue 11 (schemas/clickhouse/0007_group_windows.sql) as a product: a
// window written again (a replayed input, a restarted worker) changes no answer under FINAL,
// and the daily rollup view counts each window once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { queryRows, toNumber, type StoreClient } from '../store/clickhouse.js';
import { migrate } from '../store/migrate.js';
import { Tables, type GroupParticipantWindowRow, type GroupWindowRow } from '../store/rows.js';
import { storeImplementations } from '../store/test-stores.test-util.js';

const t0 = Date.UTC(2026, 11, 2, 23, 59, 50);

function groupWindow(groupId: string, windowEnd: number, coherence: number | null, computedAt = windowEnd + 50): GroupWindowRow {
  return {
    org_id: 'org-g', group_id: groupId, window_start: windowEnd - 64_000, window_end: windowEnd, participant_count: coherence === null ? 0 : 3,
    present_count: 4, coherence, sync_r: coherence === null ? null : 0.8, plv: coherence === null ? null : 0.7, sync_z: coherence === null ? null : 4.2,
    sync_p: coherence === null ? null : 0.0099, surrogate_count: 100, breathing_sync: null, xcorr_max: null, xcorr_lag_s: null, computed_at: computedAt,
  };
}

function participantWindow(participantId: string, windowEnd: number, weight: number): GroupParticipantWindowRow {
  return {
    org_id: 'org-g', group_id: 'g1', participant_id: participantId, user_id: `u-${participantId}`, window_end: windowEnd, counted: weight > 0,
    coherence: weight > 0 ? 0.6 : null, contribution_weight: weight, phase_locking: weight > 0 ? 0.9 : null, breathing_rate_bpm: 6, breathing_sync: 0.95,
    artifact_ratio: 0.01, coverage: 0.98, computed_at: windowEnd + 50,
  };
}

for (const impl of await storeImplementations()) {
  describe(`group windows schema (${impl.kind})`, () => {
    let store: StoreClient;
    before(async () => {
      store = await impl.open();
      await migrate(store);
    });
    after(() => impl.dispose());

    const insert = (table: string, values: object[]) => store.client.insert({ table: store.table(table), values, format: 'JSONEachRow' });

    test('a replayed window (same or later computed_at) leaves the FINAL answers and the daily rollup unchanged', async () => {
      // Windows of g1 either side of midnight UTC: 3 on 2 December, 2 on 3 December, one without a group value.
      const windows = [0, 5_000, 10_000, 15_000, 20_000].map((d, i) => groupWindow('g1', t0 + d, i === 1 ? null : 0.4 + 0.1 * i));
      windows.push(groupWindow('g2', t0, 0.9));
      await insert(Tables.groupWindows, windows);
      await insert(Tables.groupParticipantWindows, [participantWindow('p1', t0, 0.5), participantWindow('p2', t0, 0.5), participantWindow('p3', t0, 0)]);
      const read = () => queryRows(store.client, `SELECT * FROM ${store.table(Tables.groupWindows)} FINAL ORDER BY group_id, window_end`);
      const daily = () =>
        queryRows<{ group_id: string; day: string; window_count: number | string; avg_coherence: number; high_coherence_s: number | string; max_participant_count: number | string }>(
          store.client,
          `SELECT group_id, toString(day) AS day, window_count, avg_coherence, high_coherence_s, max_participant_count
           FROM ${store.table(Tables.groupDailyCoherence)} WHERE org_id = 'org-g' ORDER BY group_id, day`,
        );
      const once = await read();
      const dailyOnce = await daily();
      assert.equal(once.length, 6);
      assert.deepEqual(
        dailyOnce.map((r) => [r.group_id, r.day, toNumber(r.window_count), Number(r.avg_coherence.toFixed(6)), toNumber(r.high_coherence_s), toNumber(r.max_participant_count)]),
        [
          ['g1', '2026-12-02', 1, 0.4, 0, 3],
          ['g1', '2026-12-03', 3, 0.7, 15, 3],
          ['g2', '2026-12-02', 1, 0.9, 5, 3],
        ],
      );
      // The same windows again, and again recomputed later with the same values.
      await insert(Tables.groupWindows, windows);
      await insert(Tables.groupWindows, windows.map((w) => ({ ...w, computed_at: w.computed_at + 60_000 })));
      const again = (await read()) as Array<Record<string, unknown>>;
      assert.deepEqual(again.map(({ computed_at: _c, ...rest }) => rest), (once as Array<Record<string, unknown>>).map(({ computed_at: _c, ...rest }) => rest));
      assert.deepEqual(await daily(), dailyOnce);
      await insert(Tables.groupParticipantWindows, [participantWindow('p1', t0, 0.5), participantWindow('p2', t0, 0.5), participantWindow('p3', t0, 0)]);
      const weights = await queryRows<{ participant_id: string; contribution_weight: number; counted: boolean | number }>(
        store.client,
        `SELECT participant_id, contribution_weight, counted FROM ${store.table(Tables.groupParticipantWindows)} FINAL WHERE group_id = 'g1' ORDER BY participant_id`,
      );
      assert.deepEqual(weights.map((w) => [w.participant_id, w.contribution_weight, Boolean(w.counted)]), [['p1', 0.5, true], ['p2', 0.5, true], ['p3', 0, false]]);
    });
  });
}
