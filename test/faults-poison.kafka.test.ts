// Poison records (issue 10, "Done when"): 1,000 undecodable records, 10 of the wrong schema and
// 10 implausible ones mixed into the readings topic mid-stream, keyed by the devices so they
// share the valid records' partitions. Every one must be dead-lettered, by every consumer group
// that reads the topic, with its reason and the source topic, partition, offset and time in the
// headers (pipelines/dead-letter.ts); the counts must show in /metrics
// (attune_dead_letters_total{reason,group}); and every valid record must be processed: the final
// ClickHouse state and API answers equal a clean run's of the same input (run at the same time
// on the same broker, with its own topic prefix), with zero differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Topics } from '../schemas/topics.js';
import { decodeRecord } from '../schemas/registry/codec.js';
import type { DeadLetter, HeartReading } from '../schemas/registry/schemas.js';
import { waitFor } from './attune.js';
import {
  apiAnswers,
  childDeployment,
  cleanRun,
  createSessions,
  deploymentBus,
  differences,
  makeInput,
  metricValue,
  normalise,
  settle,
  upload,
  type Deployment,
} from './faults-poison-harness.js';
import { faultSuite } from './faults-suite.js';

const secret = randomBytes(32).toString('hex');
const input = makeInput({ devices: 4, durationS: 300, batchS: 60, secret });
const UNDECODABLE = 1000;

const suite = faultSuite();

type Kind = 'undecodable' | 'wrong-schema' | 'implausible';
interface Poison {
  key: string;
  value: Buffer;
  kind: Kind;
  /** The catalogued reason it must be dead-lettered with. */
  reason: string;
}

/** The poison for a deployment whose sessions are `ids`: built with its codec, so the wrong-schema records decode. */
async function poisonFor(d: Deployment, ids: string[]): Promise<Poison[]> {
  const { codec, bus } = await deploymentBus(d, secret);
  await bus.close();
  const out: Poison[] = [];
  const devs = input.devices;
  for (let i = 0; i < UNDECODABLE; i++) {
    const dev = devs[i % devs.length];
    // Three shapes: no Confluent magic byte; the magic byte with a schema id no registry has;
    // the magic byte, a known id (1) and a body that is not Avro of any schema. Each unique.
    const tag = Buffer.alloc(4);
    tag.writeUInt32BE(i);
    const value =
      i % 3 === 0
        ? Buffer.concat([Buffer.from([0x7b]), tag, randomBytes(i % 40)])
        : i % 3 === 1
          ? Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), tag, randomBytes(8)])
          : Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), tag]);
    out.push({ key: dev.id, value, kind: 'undecodable', reason: 'undecodable' });
  }
  for (let i = 0; i < 10; i++) {
    const dev = devs[i % devs.length];
    const s = ids[i % devs.length];
    // Records of other schemas on the readings topic: they decode, as what they are.
    const value =
      i < 5
        ? await codec.encode(Topics.sessionEvents, { event_id: randomUUID(), session_id: s, user_id: dev.user, org_id: input.org, type: 'coherence_threshold_reached', occurred_at: input.t0 + 100_000, payload_json: '{}' })
        : await codec.encode(Topics.deadLetter, { source_topic: 'x', source_partition: 0, source_offset: String(i), key: dev.id, value: Buffer.from('x'), reason_code: 'undecodable', reason: 'test', failed_at: input.t0, consumer_group: 'g' });
    out.push({ key: dev.id, value: Buffer.from(value), kind: 'wrong-schema', reason: 'invalid_record' });
  }
  const base = (i: number) => {
    const dev = devs[i % devs.length];
    const at = input.t0 + 150_000 + i * 1000 + 17;
    return { reading_id: randomBytes(16).toString('hex'), device_id: dev.id, user_id: dev.user, org_id: input.org, session_id: ids[i % devs.length], recorded_at: at, received_at: at + 500, hr_bpm: 66, rr_intervals_ms: [900, 910], device_hrv_ms: null, device_coherence: null, battery_level_pct: null, source: 'sync' };
  };
  const implausible: Array<[Record<string, unknown>, string]> = [
    [{ rr_intervals_ms: [-5] }, 'implausible_rr'],
    [{ rr_intervals_ms: [900, -5, 900] }, 'implausible_rr'],
    [{ rr_intervals_ms: [99_999] }, 'implausible_rr'],
    [{ rr_intervals_ms: [900, 99_999] }, 'implausible_rr'],
    [{ hr_bpm: 400 }, 'implausible_hr'],
    [{ hr_bpm: 3 }, 'implausible_hr'],
    // A beat dated a year ahead of when the gateway took it (it would move the session's clock).
    [{ recorded_at: input.t0 + 365 * 86_400_000, received_at: input.t0 + 1000 }, 'implausible_timestamp'],
    [{ recorded_at: input.t0 + 3_600_000, received_at: input.t0 + 1000 }, 'implausible_timestamp'],
    [{ recorded_at: Date.UTC(1990, 0, 1), received_at: Date.UTC(1990, 0, 1) }, 'implausible_timestamp'],
    [{ recorded_at: 0, received_at: input.t0 }, 'implausible_timestamp'],
  ];
  for (const [i, [change, reason]] of implausible.entries()) {
    const r = { ...base(i), ...change } as unknown as HeartReading;
    out.push({ key: r.device_id as string, value: Buffer.from(await codec.encode(Topics.heartReadings, r)), kind: 'implausible', reason });
  }
  return out;
}

test('1,000 undecodable, 10 wrong-schema and 10 implausible records mid-stream: all dead-lettered with reasons and headers, counted in /metrics, every valid record processed (zero differences from a clean run)', async (t) => {
  const opts = suite.options(t, secret);
  if (!opts) return;
  const cleanP = cleanRun(opts('poison-clean'), input);
  cleanP.catch(() => undefined);

  const d = await childDeployment(opts('poison'));
  suite.deployments.push(d);
  const ids = await createSessions(d, input);
  const poison = await poisonFor(d, ids);
  const { bus, codec, topics } = await deploymentBus(d, secret);
  try {
    // Mixed in at two points mid-stream, between uploads, in slices (as another producer would).
    const parts = [poison.filter((_, i) => i % 2 === 0), poison.filter((_, i) => i % 2 === 1)];
    await upload(d, input, ids, async (round) => {
      const part = round === 1 ? parts[0] : round === 3 ? parts[1] : null;
      if (!part) return;
      for (let i = 0; i < part.length; i += 100) await bus.publish(topics.heartReadings, part.slice(i, i + 100).map((p) => ({ key: p.key, value: p.value })));
    });
    await settle(d, input, ids);

    // The dead-letter topic: every poison record, once per consumer group reading the topic.
    const byValue = new Map(poison.map((p) => [p.value.toString('hex'), p]));
    const seen = new Map<string, Map<string, number>>(); // group → value hex → times
    const problems: string[] = [];
    const other: string[] = [];
    const sub = await bus.subscribe({
      groupId: `${d.prefix}faults2-dlq-probe`,
      topics: [topics.deadLetter],
      fromBeginning: true,
      ephemeral: true,
      eachBatch: async (batch) => {
        for (const rec of batch.records) {
          const dl = (await decodeRecord(codec, rec.value)) as DeadLetter;
          const h = rec.headers;
          const hex = Buffer.from(dl.value).toString('hex');
          const p = byValue.get(hex);
          if (!p) {
            other.push(`${dl.consumer_group} ${dl.reason_code}: ${dl.reason}`);
            continue;
          }
          const g = seen.get(dl.consumer_group) ?? new Map<string, number>();
          seen.set(dl.consumer_group, g);
          g.set(hex, (g.get(hex) ?? 0) + 1);
          const want = { 'attune-reason': p.reason, 'attune-source-topic': topics.heartReadings, 'attune-source-partition': String(dl.source_partition), 'attune-source-offset': dl.source_offset, 'attune-consumer-group': dl.consumer_group };
          for (const [k, v] of Object.entries(want)) if (h[k] !== v) problems.push(`${p.kind} ${k}: ${h[k]} ≠ ${v}`);
          if (dl.reason_code !== p.reason) problems.push(`${p.kind}: reason_code ${dl.reason_code} ≠ ${p.reason} (${dl.reason})`);
          if (dl.source_topic !== topics.heartReadings || dl.key !== p.key) problems.push(`${p.kind}: source ${dl.source_topic} key ${dl.key}`);
          if (!/^\d+$/.test(dl.source_offset) || !(dl.source_partition >= 0 && dl.source_partition < 3)) problems.push(`${p.kind}: partition ${dl.source_partition} offset ${dl.source_offset}`);
          const failedAt = Date.parse(h['attune-failed-at'] ?? '');
          if (!(failedAt === dl.failed_at && failedAt >= input.t0)) problems.push(`${p.kind}: attune-failed-at ${h['attune-failed-at']} (record ${dl.failed_at})`);
        }
      },
    });
    try {
      // Both groups reading the readings topic: the readings sink and the coherence worker.
      await waitFor('every poison record dead-lettered by both consumer groups', () => {
        const groups = [...seen.values()];
        return groups.length >= 2 && groups.every((g) => g.size === poison.length);
      }, 120_000, 250);
    } finally {
      await sub.stop();
    }
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} dead letters with wrong reasons or headers`);
    assert.deepEqual(other, [], 'no valid record dead-lettered');
    const groups = [...seen.keys()].sort();
    assert.deepEqual(groups, [`${d.prefix}attune-coherence`, `${d.prefix}attune-readings-sink`].sort());
    for (const [g, m] of seen) assert.ok([...m.values()].every((n) => n === 1), `${g}: each poison record dead-lettered once`);

    // /metrics: the counts by reason and group.
    const text = await (await fetch(d.metricsUrl!)).text();
    for (const g of groups) {
      const want = new Map<string, number>();
      for (const p of poison) want.set(p.reason, (want.get(p.reason) ?? 0) + 1);
      for (const [reason, n] of want) assert.equal(metricValue(text, 'attune_dead_letters_total', { reason, group: g }), n, `attune_dead_letters_total{reason="${reason}",group="${g}"}`);
    }
    assert.equal(metricValue(text, 'attune_dead_letters_total', {}), 2 * poison.length, 'no other dead letters counted');

    // Every valid record processed: the same final state and answers as the clean run.
    const api = await apiAnswers(d, input, ids);
    const got = normalise(await d.state(), api, ids, input);
    const clean = await cleanP;
    assert.equal(clean.readings.length, input.beats, 'clean run: every beat stored');
    assert.deepEqual(differences(clean, got), []);
    assert.deepEqual(d.unexpectedExits, [], 'Attune survived the poison');
    console.log(`poison: ${poison.length} poison records dead-lettered by ${groups.length} groups; ${got.windows.length} windows, ${got.events.length} events, ${got.readings.length} reading rows, as the clean run`);
  } finally {
    await bus.close();
    await cleanP.catch(() => undefined);
  }
});
