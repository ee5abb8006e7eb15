// The group worker end to end (issue 11 items 2-4), run once per bus: three participants join a
// mesh session with their devices, breathe in phase at the pacer's 6 breaths/min (the same RSA
// at 0.1 Hz from the same instant, each with their own mean RR and noise) and send their beats
// through the normal ingest (POST /v1/devices/{id}/sync): two and a half minutes of history at
// once, then live, a reading a second as its time comes. The coherence worker publishes their
// windows on the repartition topic, the group worker computes the group windows, the mesh stream
// delivers group_coherence, group_windows hold R high with all three counted, the session's
// GET answers the stored timeline, and the participants' weights sum to 1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import WebSocket from 'ws';
import { rsaReadings, waitFor, type TestAttune } from './attune.js';

const ORG = 'org-group';
const USERS = ['g-user-1', 'g-user-2', 'g-user-3'];

interface Message {
  type: string;
  id?: string;
  timestamp?: string;
  payload?: Record<string, any>;
}

export function groupEndToEnd(name: string, setup: () => Promise<TestAttune | null>, opts: { skip?: string; /** Removed after the suite. */ dataDir?: string } = {}): void {
  describe(name, { skip: opts.skip }, () => {
    let app: TestAttune;
    before(async () => {
      const started = await setup();
      if (!started) throw new Error('no services for this suite');
      app = started;
    });
    after(async () => {
      await app?.cleanup();
      if (opts.dataDir) rmSync(opts.dataDir, { recursive: true, force: true });
    });

    test('3 phase-locked participants: the mesh stream delivers group_coherence and group_windows hold R high', async (t) => {
      const now = Date.now();
      const t0 = Math.floor((now - 150_000) / 5000) * 5000 + 1250;
      const host = app.token('g-host', ORG);
      const created = await app.request('POST', '/v1/mesh/sessions', {
        token: host,
        body: { name: 'Evening circle', breathing_rate_bpm: 6, max_participants: 10, coherence_threshold: 0.3, threshold_duration_s: 10 },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const meshId = created.body.id as string;

      const messages: Message[] = [];
      const ws = new WebSocket(`${app.baseUrl.replace(/^http/, 'ws')}/v1/mesh/sessions/${meshId}/stream`, { headers: { authorization: `Bearer ${app.token('g-viewer', ORG)}` } });
      ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
      await waitFor('subscribed to the mesh stream', () => messages.some((m) => m.type === 'subscribed'));

      const participants: Array<{ token: string; deviceId: string; sessionId: string; participantId: string; readings: ReturnType<typeof rsaReadings>; sent: number }> = [];
      for (const [i, user] of USERS.entries()) {
        const token = app.token(user, ORG);
        const deviceId = `g-strap-${i + 1}`;
        const dev = await app.request('POST', '/v1/devices', { token, body: { device_id: deviceId, name: 'chest strap', model: 'Polar H10' } });
        assert.ok(dev.status === 201 || dev.status === 200, JSON.stringify(dev.body));
        const s = await app.request('POST', '/v1/sessions', {
          token,
          body: { device_id: deviceId, title: 'group practice', started_at: new Date(t0 - 1000).toISOString(), coherence_threshold: 0.5, threshold_duration_s: 30 },
        });
        assert.equal(s.status, 201, JSON.stringify(s.body));
        const joined = await app.request('POST', `/v1/mesh/sessions/${meshId}/join`, { token, body: { device_id: deviceId, display_name: `P${i + 1}` } });
        assert.equal(joined.status, 200, JSON.stringify(joined.body));
        participants.push({
          token,
          deviceId,
          sessionId: s.body.id,
          participantId: joined.body.participant_id,
          // The same breathing from the same instant: in phase. Own mean RR, noise and seed.
          readings: rsaReadings({ startMs: t0, durationS: 240, breathHz: 0.1, meanRrMs: 850 + 60 * i, amplitudeMs: 70, noiseMs: 10, seed: 31 + i }),
          sent: 0,
        });
      }
      const joinedAt = Date.now();

      /** Sends each participant's readings whose time has come. */
      const sendDue = async () => {
        const until = Date.now();
        for (const p of participants) {
          let n = 0;
          while (p.sent + n < p.readings.length && Date.parse(p.readings[p.sent + n].timestamp) <= until) n++;
          for (let i = 0; i < n; i += 200) {
            const batch = p.readings.slice(p.sent + i, p.sent + Math.min(n, i + 200));
            const res = await app.request('POST', `/v1/devices/${p.deviceId}/sync`, { token: p.token, body: { session_id: p.sessionId, readings: batch } });
            assert.equal(res.status, 202, JSON.stringify(res.body));
          }
          p.sent += n;
        }
      };
      let streaming = true;
      const streamer = (async () => {
        while (streaming) {
          await sendDue();
          await new Promise((r) => setTimeout(r, 500));
        }
      })();

      try {
        // Live: the first group window after the join with all three counted.
        const gc = await waitFor(
          'group_coherence with 3 participants on the mesh stream',
          () => messages.find((m) => m.type === 'group_coherence' && m.payload?.participant_count === 3),
          90_000,
          200,
        );
        t.diagnostic(`first group_coherence with 3 counted: window end ${gc.timestamp} (${Date.parse(gc.timestamp!) - joinedAt} ms after the last join), received ${Date.now() - joinedAt} ms after it; R ${gc.payload!.sync_r}, p ${gc.payload!.sync_p}, coherence ${gc.payload!.coherence}`);
        assert.match(gc.id!, new RegExp(`^${meshId}:group_coherence:\\d+$`));
        assert.ok(Date.parse(gc.timestamp!) >= joinedAt - 5000, 'no group window before the participants joined');
        assert.ok(gc.payload!.sync_r > 0.9, `R ${gc.payload!.sync_r}`);
        assert.ok(gc.payload!.coherence > 0.3, `group coherence ${gc.payload!.coherence}`);
        assert.equal(typeof gc.payload!.sync_z, 'number');
        assert.ok(gc.payload!.sync_p > 0 && gc.payload!.sync_p <= 1);
        assert.deepEqual(Object.keys(gc.payload!.weights).sort(), participants.map((p) => p.participantId).sort());

        // Stored: group_windows with R high, and each window's weights summing to 1.
        const rows = await waitFor(
          'group_windows with 3 counted participants',
          async () => {
            const rs = await app.store.client.query({
              query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, participant_count, coherence, sync_r, sync_p, surrogate_count, breathing_sync
                      FROM ${app.database}.group_windows FINAL WHERE org_id = {org:String} AND group_id = {id:String} AND participant_count = 3 ORDER BY window_end`,
              query_params: { org: ORG, id: meshId },
              format: 'JSONEachRow',
            });
            const r = (await rs.json()) as Array<{ end_ms: string; participant_count: number; coherence: number; sync_r: number; sync_p: number; surrogate_count: number; breathing_sync: number }>;
            return r.length > 0 ? r : null;
          },
          30_000,
          200,
        );
        for (const r of rows) {
          assert.ok(r.sync_r > 0.9, `stored R ${r.sync_r}`);
          assert.ok(Number(r.surrogate_count) >= 100);
          assert.ok(r.breathing_sync > 0.5, `breathing sync ${r.breathing_sync}`);
        }
        const rs = await app.store.client.query({
          query: `SELECT toUnixTimestamp64Milli(window_end) AS end_ms, sum(contribution_weight) AS w, countIf(counted) AS n
                  FROM ${app.database}.group_participant_windows FINAL WHERE org_id = {org:String} AND group_id = {id:String} GROUP BY window_end`,
          query_params: { org: ORG, id: meshId },
          format: 'JSONEachRow',
        });
        for (const r of (await rs.json()) as Array<{ end_ms: string; w: number; n: string | number }>) {
          if (Number(r.n) > 0) assert.ok(Math.abs(r.w - 1) < 1e-9, `weights of ${r.end_ms} sum to ${r.w}`);
        }

        // The joins are in group_events (0022) for a data scientist, one row each under FINAL.
        const joins = await waitFor(
          'the three joins in group_events',
          async () => {
            const rs = await app.store.client.query({
              query: `SELECT JSONExtractString(payload_json, 'participant_id') AS participant_id FROM ${app.database}.group_events FINAL
                      WHERE org_id = {org:String} AND group_id = {id:String} AND type = 'participant_joined' ORDER BY occurred_at`,
              query_params: { org: ORG, id: meshId },
              format: 'JSONEachRow',
            });
            const r = (await rs.json()) as Array<{ participant_id: string }>;
            return r.length >= 3 ? r : null;
          },
          30_000,
          200,
        );
        assert.deepEqual(joins.map((j) => j.participant_id).sort(), participants.map((p) => p.participantId).sort());

        // GET /metrics counts the group path (cli/metrics.ts).
        const text = await app.metrics.text();
        const metric = (series: string) => Number(text.split('\n').find((l) => l.startsWith(series + ' '))?.slice(series.length + 1));
        assert.ok(metric('attune_coherence_group_records_total') >= 3 * rows.length, text.match(/attune_coherence_group.*/g)?.join('; '));
        assert.ok(metric('attune_group_windows_total') >= rows.length);
        assert.ok(metric('attune_group_events_total{type="group_coherence"}') >= rows.length);
        assert.ok(metric('attune_group_windows_sink_rows_total{table="group_windows"}') >= rows.length);

        // The API reads them: the timeline, and a participant's weight.
        const detail = await app.request('GET', `/v1/mesh/sessions/${meshId}`, { token: participants[0].token });
        assert.equal(detail.status, 200, JSON.stringify(detail.body));
        const tl = detail.body.timeline as Array<{ participant_count: number; sync_r: number | null }>;
        assert.ok(tl.some((w) => w.participant_count === 3 && w.sync_r! > 0.9), JSON.stringify(tl));
        const again = await app.request('POST', `/v1/mesh/sessions/${meshId}/join`, { token: participants[0].token, body: { device_id: participants[0].deviceId } });
        assert.equal(again.status, 200);
        assert.ok(again.body.your_contribution_weight > 0.2 && again.body.your_contribution_weight < 0.5, `weight ${again.body.your_contribution_weight}`);

        // The participants end their sessions: their last windows carry the end, and the group's
        // last windows close (without it the last two would wait for event time that never comes).
        streaming = false;
        await streamer;
        const lastBeat = Math.max(...participants.map((p) => Date.parse(p.readings[p.sent - 1].timestamp)));
        for (const p of participants) {
          const end = await app.request('POST', `/v1/sessions/${p.sessionId}/end`, { token: p.token });
          assert.equal(end.status, 200, JSON.stringify(end.body));
        }
        const lastEnd = await waitFor(
          'group windows through the last beat',
          async () => {
            const r = await app.store.client.query({
              query: `SELECT toUnixTimestamp64Milli(max(window_end)) AS end_ms FROM ${app.database}.group_windows FINAL WHERE org_id = {org:String} AND group_id = {id:String}`,
              query_params: { org: ORG, id: meshId },
              format: 'JSONEachRow',
            });
            const end = Number(((await r.json()) as Array<{ end_ms: string }>)[0]?.end_ms ?? 0);
            return end > lastBeat ? end : null;
          },
          60_000,
          200,
        );
        t.diagnostic(`after the end calls: last group window ${new Date(lastEnd).toISOString()}, last beat ${new Date(lastBeat).toISOString()}`);
      } finally {
        streaming = false;
        await streamer;
        ws.close();
      }
    });
  });
}
