// Two deployments with different ATTUNE_TOPIC_PREFIX values on one Kafka broker, run at once
// (issue 10, "Done when"): each must process all of its own records. Before consumer group ids
// carried the prefix (pipelines/group-id.ts), the two joined the same groups, the assignor
// spread both deployments' topics over all members, and 359 of 478 records were never
// consumed. Both get the same deterministic input, so besides "every beat stored, every
// session's windows complete" their final ClickHouse states and API answers must be equal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { apiAnswers, childDeployment, createSessions, differences, makeInput, normalise, settle, upload } from './faults-poison-harness.js';
import { faultSuite } from './faults-suite.js';

const DEVICES = 4;
const DURATION_S = 240;
const secret = randomBytes(32).toString('hex');
const input = makeInput({ devices: DEVICES, durationS: DURATION_S, batchS: 60, secret });

const suite = faultSuite();

test('two deployments with different topic prefixes on one broker, at once: each processes all of its own records', async (t) => {
  const opts = suite.options(t, secret);
  if (!opts) return;
  const run = async (name: string) => {
    const d = await childDeployment(opts(name));
    suite.deployments.push(d);
    const ids = await createSessions(d, input);
    await upload(d, input, ids);
    await settle(d, input, ids);
    const api = await apiAnswers(d, input, ids);
    return { d, state: normalise(await d.state(), api, ids, input) };
  };
  const [a, b] = await Promise.all([run('prefix-a'), run('prefix-b')]);
  assert.notEqual(a.d.prefix, b.d.prefix);
  for (const { d, state } of [a, b]) {
    assert.equal(state.readings.length, input.beats, `${d.name}: every beat stored once`);
    assert.equal(Number(state.readingRowsInserted[0].n), input.beats, `${d.name}: no reading inserted twice`);
    // Every session's windows: one every 5 s from the first full 64 s window on.
    for (const dev of input.devices) {
      const n = state.windows.filter((w: any) => w.device_id === dev.id).length;
      assert.ok(n >= Math.floor((DURATION_S - 64) / 5), `${d.name} ${dev.id}: ${n} windows`);
    }
    assert.equal(Number(state.windowRowsInserted[0].n), state.windows.length, `${d.name}: no window inserted twice`);
    assert.deepEqual(d.unexpectedExits, []);
  }
  assert.deepEqual(differences(a.state, b.state), [], 'the same input gives the same answers in both deployments');
  console.log(`prefixes: ${a.state.windows.length} windows, ${a.state.events.length} events, ${a.state.readings.length} reading rows in each`);
});
