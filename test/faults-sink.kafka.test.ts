// ClickHouse inserts failing for 40 s (issue 10, "Done when"): Attune runs in this process, so
// the store client it was given is wrapped here (every insert throws, as a ClickHouse that
// refuses connections would) without a test-only path in the product. The rest of the input
// arrives during the outage. Then:
//   - no tight retry loop: each table's insert attempts during the outage average at least
//     1 s apart (the batch writers back off from 100 ms to 10 s; a loop would make thousands);
//   - nothing is committed on the bus that is not stored: the readings sink's committed offsets
//     do not move during the outage;
//   - memory stays under a stated bound: the process's RSS during the outage stays within
//     RSS_BUDGET_MB of its RSS before it (budget below);
//   - nothing lost, nothing duplicated: the final ClickHouse state (FINAL and rows as inserted)
//     and API answers equal a clean run's (a child process, at the same time), zero differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { groupIdFor } from '../pipelines/group-id.js';
import { READINGS_SINK_GROUP } from '../pipelines/readings-sink.js';
import { prefixedTopics } from '../schemas/topics.js';
import { waitFor } from './attune.js';
import { apiAnswers, cleanRun, createSessions, differences, groupsCaughtUp, inProcessDeployment, makeInput, normalise, settle, upload } from './faults-poison-harness.js';
import { faultSuite } from './faults-suite.js';

const OUTAGE_MS = 40_000;
/**
 * The memory budget of the outage, from what it can hold, not from a measurement: the whole
 * input is ~1,300 readings (~6,000 beats, well under 1 MB of rows, even as JS objects ~5 MB);
 * the writers hold at most maxBufferedRows (100,000) rows per table before add() waits, i.e.
 * the consumers pause; each Kafka consumer fetches at most ~10 MB at a time (kafkajs maxBytes),
 * five consumer groups; plus V8 heap growth headroom. 128 MiB over the RSS before the outage.
 */
const RSS_BUDGET_MB = 128;
/** A tight loop retries as fast as an insert fails (microseconds); a paused consumer backs off. */
const MIN_MEAN_RETRY_INTERVAL_MS = 1000;

const secret = randomBytes(32).toString('hex');
const input = makeInput({ devices: 4, durationS: 300, batchS: 60, secret });

const suite = faultSuite();

test('ClickHouse inserts failing for 40 s: no tight retry loop, nothing committed unstored, RSS within budget, zero differences from a clean run', async (t) => {
  const opts = suite.options(t, secret);
  if (!opts) return;
  const cleanP = cleanRun(opts('sink-clean'), input);
  cleanP.catch(() => undefined);
  try {
    const d = await inProcessDeployment(opts('sink'));
    suite.deployments.push(d);
    const running = d.running!;
    const topics = prefixedTopics(d.prefix);
    const sinkGroup = groupIdFor(READINGS_SINK_GROUP, topics);

    // The fault: the store client's inserts throw while `failing`.
    const client = running.store!.client as any;
    const realInsert = Object.getPrototypeOf(client).insert as (...a: unknown[]) => Promise<unknown>;
    let failing = false;
    const attempts = new Map<string, number>();
    client.insert = function (this: unknown, params: { table: string }) {
      if (!failing) return realInsert.call(this, params);
      attempts.set(params.table, (attempts.get(params.table) ?? 0) + 1);
      return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123 (injected)'), { code: 'ECONNREFUSED' }));
    };

    let outage: Promise<void> | null = null;
    const rss: number[] = [];
    let rssBefore = 0;
    let committedBefore = new Map<number, string>();
    const committedDuring: Map<number, string>[] = [];
    const ids = await createSessions(d, input);
    await upload(d, input, ids, async (round) => {
      if (round !== 1) return;
      // Round 0 stored first, so the outage starts with work in flight, not from nothing.
      await waitFor('round 0 in ClickHouse', async () => {
        const r = await running.store!.client.query({ query: `SELECT count() AS n FROM ${running.store!.table('heart_readings')}`, format: 'JSONEachRow' });
        const [{ n }] = await r.json<{ n: string }>();
        return Number(n) >= input.devices.reduce((s, dev) => s + dev.batches[0].reduce((m, x) => m + x.rr_intervals_ms.length, 0), 0);
      }, 60_000, 200);
      // Rows become visible before the sink commits their offsets (it commits after the insert
      // returns): the baseline is read once the commit of everything on the topic has landed,
      // or a commit of rows stored before the outage would look like one made during it.
      await groupsCaughtUp(d, secret, [[sinkGroup, topics.heartReadings]], 60_000);
      committedBefore = await running.bus.committed(sinkGroup, topics.heartReadings);
      global.gc?.();
      rssBefore = process.memoryUsage().rss;
      failing = true;
      const startedAt = Date.now();
      outage = (async () => {
        // Sampled every 250 ms through the outage (the sampling is the measurement, not a wait on another party).
        while (Date.now() - startedAt < OUTAGE_MS) {
          rss.push(process.memoryUsage().rss);
          if (rss.length % 20 === 0) committedDuring.push(await running.bus.committed(sinkGroup, topics.heartReadings));
          await new Promise((r) => setTimeout(r, 250));
        }
        committedDuring.push(await running.bus.committed(sinkGroup, topics.heartReadings));
        failing = false;
      })();
    });
    await outage;
    const maxRssMb = Math.max(...rss) / 2 ** 20;
    t.diagnostic(`RSS before the outage ${(rssBefore / 2 ** 20).toFixed(0)} MiB, at most ${maxRssMb.toFixed(0)} MiB during it (budget +${RSS_BUDGET_MB} MiB)`);
    t.diagnostic(`insert attempts during the 40 s outage, by table: ${JSON.stringify(Object.fromEntries(attempts))}`);

    await settle(d, input, ids);
    const api = await apiAnswers(d, input, ids);
    const got = normalise(await d.state(), api, ids, input);
    const clean = await cleanP;

    assert.ok(attempts.size > 0, 'inserts were attempted (and failed) during the outage');
    for (const [table, n] of attempts) assert.ok(n <= OUTAGE_MS / MIN_MEAN_RETRY_INTERVAL_MS, `${table}: ${n} insert attempts in 40 s`);
    assert.ok(maxRssMb <= rssBefore / 2 ** 20 + RSS_BUDGET_MB, `RSS ${maxRssMb.toFixed(0)} MiB during the outage`);
    for (const c of committedDuring) {
      for (const [p, off] of c) assert.equal(off, committedBefore.get(p) ?? off, `readings sink committed partition ${p} past what was stored`);
    }
    assert.equal(clean.readings.length, input.beats, 'clean run: every beat stored');
    assert.deepEqual(differences(clean, got), []);
    console.log(`sink outage: ${got.windows.length} windows, ${got.events.length} events, ${got.readings.length} reading rows, as the clean run; attempts ${JSON.stringify(Object.fromEntries(attempts))}; RSS ${(rssBefore / 2 ** 20).toFixed(0)} → max ${maxRssMb.toFixed(0)} MiB`);
  } finally {
    await cleanP.catch(() => undefined);
  }
});
