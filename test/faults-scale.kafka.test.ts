// Scale-out (issue 10, "Done when"): two `attune worker` processes in one consumer group plus
// one process holding ClickHouse and the API; `kill -9` of one worker mid-stream; the final
// ClickHouse state and API answers must equal a clean single-process run's (`attune all`, a
// child process at the same time), with zero differences.
//
// What today's roles allow (cli/roles.ts): the worker role is the readings sink, the coherence
// worker and the session-dimension sink together, and the coherence worker reads and writes
// ClickHouse itself (pipelines/coherence/worker.ts: its store, the stored-window lookup on
// first sight of a session and the streak resumption) — compute is not yet split from the
// sink. And chDB opens one data dir per process, with no ClickHouse server to be had here. So
// the process holding ClickHouse is this test process: Attune's ingest and API roles on chDB,
// and that chDB served over ClickHouse's HTTP interface (test/faults-scale-chdb-http.ts) to the
// two workers (CLICKHOUSE_URL), as a ClickHouse server would be. Each worker runs every sink
// and the coherence worker; the kill takes one of each away, and the survivor takes over its
// partitions through the groups and replays them from the committed offsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { apiAnswers, childDeployment, cleanRun, createSessions, differences, inProcessDeployment, makeInput, metricValue, normalise, settle, upload, type Deployment } from './faults-poison-harness.js';
import { waitFor } from './attune.js';
import { serveChdbOverHttp } from './faults-scale-chdb-http.js';
import { faultSuite } from './faults-suite.js';

const secret = randomBytes(32).toString('hex');
const input = makeInput({ devices: 4, durationS: 300, batchS: 60, secret });
const KILL_AT_ROUND = 2; // of 5: 40 % of the input acknowledged

const closers: Array<() => Promise<void>> = [];
const suite = faultSuite(async (deployments) => {
  // Workers first (they write through the API process's ClickHouse endpoint), then the rest.
  for (const d of deployments.slice(1)) await d.dispose();
  for (const c of closers) await c().catch(() => undefined);
  await deployments[0]?.dispose();
});

test('two attune worker processes in one group, kill -9 of one mid-stream: zero differences from the clean single-process run', async (t) => {
  const opts = suite.options(t, secret);
  if (!opts) return;
  const cleanP = cleanRun(opts('scale-clean'), input);
  cleanP.catch(() => undefined);
  try {
    const api = await inProcessDeployment({ ...opts('scale-api'), roles: { ingest: true, api: true, worker: false } });
    suite.deployments.push(api);
    const ch = await serveChdbOverHttp(api.running!.store!.client);
    closers.push(() => ch.close());
    const join = { pgUrl: api.pgUrl, database: api.database, prefix: api.prefix };
    const workerOpts = (name: string) => ({ ...opts(name), command: 'worker' as const, join, env: { CLICKHOUSE_URL: ch.url } });
    const [w1, w2] = await Promise.all([childDeployment(workerOpts('scale-w1')), childDeployment(workerOpts('scale-w2'))]);
    suite.deployments.push(w1, w2);

    const ids = await createSessions(api, input);
    let killedAt = 0;
    await upload(api, input, ids, async (round) => {
      if (round !== KILL_AT_ROUND) return;
      // The worker killed holds work: its coherence worker has taken readings of its partitions.
      const consumed = async (w: Deployment) => metricValue(await (await fetch(w.metricsUrl!)).text(), 'attune_bus_records_consumed_total', { topic: `${api.prefix}attune.heart.readings.v1`, group: `${api.prefix}attune-coherence` });
      await waitFor('both workers consuming readings', async () => (await consumed(w1)) > 0 && (await consumed(w2)) > 0, 60_000, 250);
      await w2.kill9();
      killedAt = Date.now();
    });
    await settle(api, input, ids);
    t.diagnostic(`settled ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill; ${ch.requests} ClickHouse HTTP requests from the workers`);
    const answers = await apiAnswers(api, input, ids);
    const got = normalise(await api.state(), answers, ids, input);
    const clean = await cleanP;
    assert.ok(killedAt > 0, 'a worker was killed mid-stream');
    assert.equal(clean.readings.length, input.beats, 'clean run: every beat stored');
    // Rows as inserted are compared for windows only: after a kill -9 the survivor replays the
    // dead worker's uncommitted records, so readings it had inserted but not committed are
    // inserted again, and a threshold event the resumed streak fires again is written again
    // (same ids: one row each under FINAL, which the other parts compare), as in
    // faults.kafka.test.ts's kill scenarios.
    assert.deepEqual(differences(clean, got, ['windows', 'windowRowsInserted', 'events', 'readings', 'daily', 'api']), []);
    assert.deepEqual([...w1.unexpectedExits, ...w2.unexpectedExits], [], 'no worker died on its own');
    console.log(`scale-out: ${got.windows.length} windows, ${got.events.length} events, ${got.readings.length} reading rows, as the clean run`);
  } finally {
    await cleanP.catch(() => undefined);
  }
});
