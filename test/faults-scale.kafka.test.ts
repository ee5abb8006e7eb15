// Scale-out (issue 10, "Done when"): two `attune worker` processes (compute only) in one
// consumer group plus one process holding the ClickHouse sinks and the API; `kill -9` of one
// worker mid-stream; the final ClickHouse state and API answers must equal a clean
// single-process run's (`attune all`, a child process at the same time), with zero differences.
//
// The layout of the issue: the workers are Kafka in, Kafka out (pipelines/coherence/worker.ts:
// readings in; windows, events and their restart checkpoints out) and open no ClickHouse at all:
// they get an unreachable CLICKHOUSE_URL, and none of their metrics is a ClickHouse insert. This
// test process is the other process: ingest, the API and every sink (readings, windows, events,
// the sessions dimension) on chDB. The kill takes a coherence worker away mid-stream; the
// survivor takes over its partitions through the group, replays them from the committed
// offsets, and continues each session from its checkpoint (the last window published, the
// threshold streak there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { apiAnswers, childDeployment, cleanRun, createSessions, differences, inProcessDeployment, makeInput, metricValue, normalise, settle, upload, type Deployment } from './faults-poison-harness.js';
import { waitFor } from './attune.js';
import { faultSuite } from './faults-suite.js';
import { partitionForKey } from '../bus/partitioner.js';

const secret = randomBytes(32).toString('hex');
// Five devices, keyed by device id: on 3 partitions dev-00 and dev-02 hash to 0, dev-04 to 1,
// dev-01 and dev-03 to 2 (bus/partitioner.ts, checked below), so however the group splits the 3
// partitions between the two workers, each has sessions to compute. (With four devices
// partition 1 had none, and one worker could sit idle: not scale-out.)
const input = makeInput({ devices: 5, durationS: 300, batchS: 60, secret });
const PARTITIONS = 3;
const KILL_AT_ROUND = 2; // of 5: 40 % of the input acknowledged

const suite = faultSuite(async (deployments) => {
  // Workers first, then the process they publish for.
  for (const d of deployments.slice(1)) await d.dispose();
  await deployments[0]?.dispose();
});
/** Where no ClickHouse listens (the discard port): a worker that opened one would fail. */
const NO_CLICKHOUSE = 'http://127.0.0.1:9';

test('two attune worker processes in one group, kill -9 of one mid-stream: zero differences from the clean single-process run', async (t) => {
  const opts = suite.options(t, secret);
  if (!opts) return;
  assert.deepEqual(new Set(input.devices.map((d) => partitionForKey(d.id, PARTITIONS))), new Set([0, 1, 2]), 'every partition holds a device');
  const cleanP = cleanRun(opts('scale-clean'), input);
  cleanP.catch(() => undefined);
  try {
    const api = await inProcessDeployment({ ...opts('scale-api'), roles: { ingest: true, api: true, worker: false, sink: true } });
    suite.deployments.push(api);
    assert.equal(api.running!.worker, null, 'no coherence worker beside the sinks');
    const join = { pgUrl: api.pgUrl, database: api.database, prefix: api.prefix };
    const workerOpts = (name: string) => ({ ...opts(name), command: 'worker' as const, join, env: { CLICKHOUSE_URL: NO_CLICKHOUSE } });
    const [w1, w2] = await Promise.all([childDeployment(workerOpts('scale-w1')), childDeployment(workerOpts('scale-w2'))]);
    suite.deployments.push(w1, w2);

    const ids = await createSessions(api, input);
    let killedAt = 0;
    let survivorW = w1;
    await upload(api, input, ids, async (round) => {
      if (round !== KILL_AT_ROUND) return;
      // Both workers hold work (every partition has a device): each has consumed readings of
      // its partitions before one of them is killed.
      const consumed = async (w: Deployment) => metricValue(await (await fetch(w.metricsUrl!)).text(), 'attune_bus_records_consumed_total', { topic: `${api.prefix}attune.heart.readings.v1`, group: `${api.prefix}attune-coherence` });
      await waitFor('both workers consuming readings', async () => (await consumed(w1)) > 0 && (await consumed(w2)) > 0, 60_000, 250);
      const victim = w2;
      survivorW = w1;
      await victim.kill9();
      killedAt = Date.now();
    });
    await settle(api, input, ids);
    t.diagnostic(`settled ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    // The surviving worker wrote nothing to ClickHouse, and it took the killed one's sessions
    // over from their checkpoints.
    const survivor = await (await fetch(survivorW.metricsUrl!)).text();
    assert.ok(!/^attune_sink_rows_total\{/m.test(survivor), 'the worker inserted nothing into ClickHouse');
    assert.ok(metricValue(survivor, 'attune_coherence_windows_total', { valid: 'true' }) > 0, 'the worker computed windows');
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
