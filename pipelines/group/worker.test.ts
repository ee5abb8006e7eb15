// The group worker over the embedded bus and chDB, with the group windows sink: the same group
// input in two arrival orders, and once with the worker stopped mid-streak and replaced, gives
// identical stored group_windows and group_participant_windows, and one manifestation_event.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createEmbeddedBus } from '../../bus/embedded.js';
import type { Bus } from '../../bus/types.js';
import { Topics, prefixedTopics, type TopicNames } from '../../schemas/topics.js';
import { createCodec, decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import { createStoreClient, type StoreClient } from '../../store/clickhouse.js';
import { migrate } from '../../store/migrate.js';
import type { GroupParticipantWindowRecord, MeshEventRecord } from '../../schemas/records.js';
import { silentLogger } from '../../lib/log.js';
import { waitFor } from '../../test/attune.js';
import { GroupWorker, PROVISIONAL_MAX_AGE_MS } from './worker.js';
import { GroupWindowsSink } from '../sinks/group-windows-sink.js';
import { PARTICIPANT_ENDED_HEADER, PARTICIPANT_FLUSHED_HEADER, PARTICIPATION_END_HEADER } from '../coherence/group-fanout.js';
import { FIXTURE_PARTICIPANTS, FIXTURE_WINDOWS, delayedFrom, fixtureEnd, fixtureWindows, outage, shuffledRounds, windowMajor } from './group-fixture.test-util.js';

const MESH = '6f1d0c2e-8a57-4d0b-9a43-1c1b2f7d0e11';
/**
 * Group windows closed: the last two stay open, since nothing after them moves the group's (or
 * its partition's) event time the 10 s lateness past them.
 */
const CLOSED = FIXTURE_WINDOWS - 2;
let dir: string;
let store: StoreClient;
let bus: Bus;
let codec: Codec;
const stops: Array<() => Promise<void>> = [];

before(async () => {
  dir = mkdtempSync('/tmp/hA1-group-worker-');
  store = await createStoreClient({ dataDir: dir, database: 'group_worker_test', log: silentLogger });
  await migrate(store);
  bus = await createEmbeddedBus({ log: silentLogger, defaultPartitions: 2 });
  codec = (await createCodec(LocalSchemaRegistry.fromManifest())) as unknown as Codec;
});

after(async () => {
  for (const s of stops.reverse()) await s();
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function topicsFor(prefix: string): Promise<TopicNames> {
  const topics = prefixedTopics(prefix);
  await bus.ensureTopics(Object.values(topics).map((topic) => ({ topic, partitions: 2 })));
  return topics;
}

/** `ended`: records sent as their session's last window (the coherence worker's header). */
async function publish(topics: TopicNames, records: GroupParticipantWindowRecord[], ended: (r: GroupParticipantWindowRecord) => boolean = () => false): Promise<void> {
  for (const r of records) {
    const headers = ended(r) ? { [PARTICIPANT_ENDED_HEADER]: 'true' } : undefined;
    await bus.publish(topics.groupParticipantWindows, [{ key: r.mesh_id, value: codec.encode(Topics.groupParticipantWindows, r), timestamp: r.window_end, headers }]);
  }
}

/** A1's runs check the lateness rule (earlyClose false, the default); the early-close test the option. */
function startWorker(topics: TopicNames, earlyClose = false, clock?: () => number): Promise<GroupWorker> {
  const w = new GroupWorker({ bus, topics, codec, log: silentLogger, earlyClose, clock });
  return w.start().then(() => w);
}

async function startSink(topics: TopicNames): Promise<GroupWindowsSink> {
  const s = new GroupWindowsSink({ bus, topics, codec, store, log: silentLogger, writer: { maxDelayMs: 20 } });
  await s.start();
  stops.push(() => s.stop());
  return s;
}

async function meshEvents(topics: TopicNames, n = CLOSED): Promise<MeshEventRecord[]> {
  const out: MeshEventRecord[] = [];
  const sub = await bus.subscribe({
    groupId: `read-${topics.meshEvents}-${Math.random()}`,
    topics: [topics.meshEvents],
    fromBeginning: true,
    eachBatch: async (b) => {
      for (const r of b.records) out.push(decodeRecord<MeshEventRecord>(codec, r.value) as MeshEventRecord);
    },
  });
  await waitFor('mesh events read', () => out.filter((e) => e.type === 'group_coherence').length >= n);
  await sub.stop();
  return out;
}

async function stored(org: string) {
  const q = async (sql: string) => (await (await store.client.query({ query: sql, query_params: { org }, format: 'JSONEachRow' })).json()) as Record<string, unknown>[];
  const windows = await q(`SELECT * EXCEPT computed_at, toUnixTimestamp64Milli(window_end) AS end_ms FROM group_worker_test.group_windows FINAL WHERE org_id = {org:String} ORDER BY window_end`);
  const participants = await q(`SELECT * EXCEPT computed_at FROM group_worker_test.group_participant_windows FINAL WHERE org_id = {org:String} ORDER BY window_end, participant_id`);
  // The org differs per run (the runs share the tables); everything else must be equal.
  const strip = (rows: Record<string, unknown>[]) => rows.map(({ org_id: _o, ...rest }) => rest);
  return { windows: strip(windows), participants: strip(participants) };
}

async function untilStored(sink: GroupWindowsSink, n: number): Promise<void> {
  await waitFor(`${n} group windows taken by the sink`, () => sink.stats.records >= n, 60_000);
  await sink.flush();
}

test('the same group input in another arrival order, and with a restart mid-streak, stores identical group windows', async () => {
  // Run A: window-major order.
  const ta = await topicsFor('ga.');
  const sinkA = await startSink(ta);
  const wa = await startWorker(ta);
  stops.push(() => wa.stop());
  await publish(ta, windowMajor(fixtureWindows(MESH, 'org-a')));
  await untilStored(sinkA, CLOSED);
  const a = await stored('org-a');
  assert.equal(a.windows.length, CLOSED);
  assert.deepEqual(
    a.windows.map((w) => Number(w.end_ms)),
    Array.from({ length: CLOSED }, (_, k) => fixtureEnd(k)),
  );

  // What a phase-locked group must look like.
  for (const w of a.windows) {
    assert.ok((w.sync_r as number) > 0.9, `R ${w.sync_r}`);
    assert.ok((w.surrogate_count as number) >= 100);
    assert.equal(w.breathing_sync, 1);
  }
  assert.deepEqual(
    a.windows.map((w) => Number(w.participant_count)),
    a.windows.map((_, k) => 3 + (k >= 8 ? 1 : 0) + (k >= 15 && k <= 20 ? 0 : 1)),
  );
  const weights = new Map<string, number>();
  for (const p of a.participants) weights.set(String(p.window_end), (weights.get(String(p.window_end)) ?? 0) + (p.contribution_weight as number));
  for (const w of weights.values()) assert.ok(Math.abs(w - 1) < 1e-9, `weights sum ${w}`);
  const eventsA = await meshEvents(ta);
  const manifestA = eventsA.filter((e) => e.type === 'manifestation_event');
  assert.deepEqual(
    manifestA.map((e) => e.event_id),
    [`${MESH}:manifestation_event:${fixtureEnd(13)}`],
    'group coherence >= 0.7 from window 10: the 20 s hold is complete at window 13, once',
  );
  assert.equal(JSON.parse(manifestA[0].payload_json).level, 2);

  // Run B: another arrival order (each participant's windows still in order).
  const tb = await topicsFor('gb.');
  const sinkB = await startSink(tb);
  const wb = await startWorker(tb);
  stops.push(() => wb.stop());
  await publish(tb, shuffledRounds(fixtureWindows(MESH, 'org-b'), 11));
  await untilStored(sinkB, CLOSED);
  assert.deepEqual(await stored('org-b'), a);

  // Run C: window-major, the worker stopped after window 11 (inside the streak) and replaced.
  const tc = await topicsFor('gc.');
  const sinkC = await startSink(tc);
  const all = windowMajor(fixtureWindows(MESH, 'org-c'));
  const cut = all.findIndex((r) => r.window_end === fixtureEnd(12));
  const w1 = await startWorker(tc);
  await publish(tc, all.slice(0, cut));
  await waitFor('the first worker has taken its records', () => w1.stats.records >= cut);
  await w1.stop();
  const firstRun = w1.stats.windows;
  assert.ok(firstRun > 0 && firstRun < CLOSED, `first worker emitted ${firstRun}`);
  const w2 = await startWorker(tc);
  stops.push(() => w2.stop());
  await publish(tc, all.slice(cut));
  await untilStored(sinkC, CLOSED);
  assert.equal(w2.stats.restoredGroups, 1, 'the replacement continued from the checkpoint');
  assert.equal(firstRun + w2.stats.windows, CLOSED, 'no window published twice');
  assert.deepEqual(await stored('org-c'), a);
  const manifestC = (await meshEvents(tc)).filter((e) => e.type === 'manifestation_event');
  assert.deepEqual(
    manifestC.map((e) => e.event_id),
    manifestA.map((e) => e.event_id),
  );
});

test('records that are not participant windows are dead-lettered and the partition moves on', async () => {
  const td = await topicsFor('gd.');
  const sink = await startSink(td);
  const w = await startWorker(td);
  stops.push(() => w.stop());
  const event: MeshEventRecord = { event_id: 'x', mesh_id: MESH, org_id: 'org-d', type: 'group_coherence', occurred_at: fixtureEnd(0), payload_json: '{}' };
  await bus.publish(td.groupParticipantWindows, [
    { key: MESH, value: Buffer.from('not avro at all') },
    // Decodes (another schema on the topic), but is no participant window.
    { key: MESH, value: codec.encode(Topics.meshEvents, event) },
  ]);
  await publish(td, windowMajor(fixtureWindows(MESH, 'org-d')));
  await untilStored(sink, CLOSED);
  assert.equal(w.stats.deadLettered, 2);
  const reasons: string[] = [];
  const sub = await bus.subscribe({
    groupId: 'read-gd-deadletters',
    topics: [td.deadLetter],
    fromBeginning: true,
    eachBatch: async (b) => {
      for (const r of b.records) reasons.push(r.headers['attune-reason'] ?? '');
    },
  });
  await waitFor('2 dead letters', () => reasons.length >= 2);
  await sub.stop();
  assert.deepEqual(reasons.sort(), ['invalid_record', 'undecodable']);
  const { windows } = await stored('org-d');
  assert.equal(windows.length, CLOSED);
});

test("a group whose participants' sessions all ended stores its last windows too, and holds no offset back", async () => {
  const te = await topicsFor('ge.');
  const sink = await startSink(te);
  const w = await startWorker(te);
  stops.push(() => w.stop());
  await publish(te, windowMajor(fixtureWindows(MESH, 'org-e')), (r) => r.window_end === fixtureEnd(FIXTURE_WINDOWS - 1));
  await untilStored(sink, FIXTURE_WINDOWS);
  const { windows } = await stored('org-e');
  assert.equal(windows.length, FIXTURE_WINDOWS);
  // The first 28 are those of the run without ends.
  const a = await stored('org-a');
  assert.deepEqual(windows.slice(0, CLOSED), a.windows);
  // Nothing open: the commit is past the last record.
  const published = windowMajor(fixtureWindows(MESH, 'org-e')).length;
  await waitFor('the commit past every record', async () => {
    const c = await bus.committed(w.groupId, te.groupParticipantWindows);
    return [...c.values()].reduce((s, o) => s + Number(o), 0) === published;
  });
});

test("one participant's windows 30 s behind the others', an outage's backlog participant by participant, and a restart mid-delay: the stored group windows of the in-order input", async () => {
  const last = (r: GroupParticipantWindowRecord) => r.window_end === fixtureEnd(FIXTURE_WINDOWS - 1);
  const runOf = async (prefix: string, org: string, order: (w: (GroupParticipantWindowRecord | null)[][]) => GroupParticipantWindowRecord[], restartAfter?: number) => {
    const t = await topicsFor(prefix);
    const sink = await startSink(t);
    const records = order(fixtureWindows(MESH, org));
    let w = await startWorker(t);
    if (restartAfter !== undefined) {
      await publish(t, records.slice(0, restartAfter), last);
      await waitFor('the first worker has taken its records', () => w.stats.records >= restartAfter);
      await w.stop();
      w = await startWorker(t);
      await publish(t, records.slice(restartAfter), last);
    } else await publish(t, records, last);
    const worker = w;
    stops.push(() => worker.stop());
    await untilStored(sink, FIXTURE_WINDOWS);
    assert.equal(worker.stats.lateWindows, 0, prefix);
    return stored(org);
  };
  const inOrder = await runOf('gl1.', 'org-l1', windowMajor);
  assert.equal(inOrder.windows.length, FIXTURE_WINDOWS);
  // p2 uploading 30 s behind the others from window 2 on.
  assert.deepEqual(await runOf('gl2.', 'org-l2', (w) => delayedFrom(w, 1, 2, 6)), inOrder);
  // A 50 s outage (windows 10..19): p4's backlog whole first, then p1's, p5's, p3's, p2's.
  assert.deepEqual(await runOf('gl3.', 'org-l3', (w) => outage(w, 10, 20, [3, 0, 4, 2, 1])), inOrder);
  // p2 30 s behind, and the worker replaced while the others are ahead of it (after 60 records):
  // the replacement knows to wait for p2 (its newest record was kept uncommitted).
  assert.deepEqual(await runOf('gl4.', 'org-l4', (w) => delayedFrom(w, 1, 2, 6), 60), inOrder);
  // The outage's backlog with the worker replaced once p1's whole backlog is in (50 records
  // before the outage, then p1's 10): the open windows are p1's alone, and the others' newest
  // records, before them, are kept for the replacement, which waits for them as the first did.
  assert.deepEqual(await runOf('gl5.', 'org-l5', (w) => outage(w, 10, 20, [0, 3, 4, 2, 1]), 60), inOrder);
});

test('early close (earlyClose: true): every window out without waiting for the lateness, the same stored windows in another arrival order and across a restart', async () => {
  // Windows 0 and 1 are everyone's warm-up (GroupWindows); the other 28 close as soon as all have sent them, the last ones too.
  const EARLY = FIXTURE_WINDOWS - 2;
  const tf = await topicsFor('gf.');
  const sinkF = await startSink(tf);
  const wf = await startWorker(tf, true);
  stops.push(() => wf.stop());
  await publish(tf, windowMajor(fixtureWindows(MESH, 'org-f')));
  await untilStored(sinkF, EARLY);
  const f = await stored('org-f');
  assert.deepEqual(f.windows.map((w) => w.end_ms), Array.from({ length: EARLY }, (_, k) => fixtureEnd(k + 2)));
  // The lateness rule's run (org-a, same input): identical windows where neither has a warm-up (p4 is back at 21).
  const a = await stored('org-a');
  const strip = (w: Record<string, unknown>) => ({ ...w, present_count: undefined });
  for (const w of f.windows) {
    const k = (Number(w.end_ms) - fixtureEnd(0)) / 5000;
    if (k !== 21 && k !== 22 && k < CLOSED) assert.deepEqual(strip(w), strip(a.windows.find((x) => x.end_ms === w.end_ms)!), `window ${k}`);
  }
  // Another arrival order.
  const tg = await topicsFor('gg.');
  const sinkG = await startSink(tg);
  const wg = await startWorker(tg, true);
  stops.push(() => wg.stop());
  await publish(tg, shuffledRounds(fixtureWindows(MESH, 'org-g'), 12));
  await untilStored(sinkG, EARLY);
  assert.deepEqual(await stored('org-g'), f);
  // Stopped after window 17 (p4 silent: 15..18 were waiting) and replaced.
  const th = await topicsFor('gh.');
  const sinkH = await startSink(th);
  const all = windowMajor(fixtureWindows(MESH, 'org-h'));
  const cut = all.findIndex((r) => r.window_end === fixtureEnd(18));
  const w1 = await startWorker(th, true);
  await publish(th, all.slice(0, cut));
  await waitFor('the first worker has taken its records', () => w1.stats.records >= cut);
  await w1.stop();
  const firstRun = w1.stats.windows;
  assert.ok(firstRun > 0 && firstRun < EARLY, `first worker emitted ${firstRun}`);
  const w2 = await startWorker(th, true);
  stops.push(() => w2.stop());
  await publish(th, all.slice(cut));
  await untilStored(sinkH, EARLY);
  assert.equal(firstRun + w2.stats.windows, EARLY, 'no window published twice');
  assert.deepEqual(await stored('org-h'), f);
});

test("the group session's end reaches the worker as the participants' end markers (the coherence fan-out's header): its last windows stored at once", async () => {
  const ti = await topicsFor('gi.');
  const sink = await startSink(ti);
  const w = await startWorker(ti);
  stops.push(() => w.stop());
  const endAt = fixtureEnd(19) + 1000;
  const records = windowMajor(fixtureWindows(MESH, 'org-i')).filter((r) => r.window_end <= fixtureEnd(19));
  await publish(ti, records);
  for (const id of FIXTURE_PARTICIPANTS) {
    const last = records.filter((r) => r.participant_id === id).at(-1)!;
    const marker = { ...last, window_end: fixtureEnd(20), valid: false, coherence: null, series: [], last_beat_at: null };
    await bus.publish(ti.groupParticipantWindows, [
      { key: MESH, value: codec.encode(Topics.groupParticipantWindows, marker), timestamp: marker.window_end, headers: { [PARTICIPANT_ENDED_HEADER]: 'true', [PARTICIPATION_END_HEADER]: `ended:${endAt}` } },
    ]);
  }
  await untilStored(sink, 20);
  const { windows } = await stored('org-i');
  assert.deepEqual(windows.map((x) => x.end_ms), Array.from({ length: 20 }, (_, k) => fixtureEnd(k)));
  assert.equal(w.stats.inputEnds, FIXTURE_PARTICIPANTS.length);
  // The same windows as the run without an end (org-a) up to window 17, which that run closed too.
  const a = await stored('org-a');
  assert.deepEqual(windows.slice(0, 18), a.windows.slice(0, 18));
});

test("two participants ending their sessions 3 s apart: every group window stored counts both (the first one's flushed windows are not event time)", async () => {
  // As the coherence workers publish them: a window ending at E once its participant's
  // watermark passes E + 20 s, except at the session's end, when the rest go at once with the
  // flushed header (the last one also ended). p1 ends 0.5 s after its last window's end, p2 3 s later.
  const tj = await topicsFor('gj.');
  const sink = await startSink(tj);
  const w = await startWorker(tj);
  stops.push(() => w.stop());
  const two = fixtureWindows(MESH, 'org-j').slice(0, 2) as GroupParticipantWindowRecord[][];
  const endAt = [fixtureEnd(FIXTURE_WINDOWS - 1) + 500, fixtureEnd(FIXTURE_WINDOWS - 1) + 3500];
  const out = two.flatMap((row, j) =>
    row.map((r, k) => {
      const due = r.window_end + 20_000;
      return { r, j, at: Math.min(due, endAt[j]), flushed: due > endAt[j], ended: k === row.length - 1 };
    }),
  );
  out.sort((x, y) => x.at - y.at || x.j - y.j || x.r.window_end - y.r.window_end);
  for (const x of out) {
    const headers = { ...(x.ended ? { [PARTICIPANT_ENDED_HEADER]: 'true' } : {}), ...(x.flushed ? { [PARTICIPANT_FLUSHED_HEADER]: 'true' } : {}) };
    await bus.publish(tj.groupParticipantWindows, [{ key: MESH, value: codec.encode(Topics.groupParticipantWindows, x.r), timestamp: x.r.window_end, headers }]);
  }
  await untilStored(sink, FIXTURE_WINDOWS);
  const { windows } = await stored('org-j');
  assert.deepEqual(windows.map((x) => x.end_ms), Array.from({ length: FIXTURE_WINDOWS }, (_, k) => fixtureEnd(k)));
  assert.deepEqual(windows.map((x) => x.participant_count), Array(FIXTURE_WINDOWS).fill(2));
  assert.equal(w.stats.lateWindows, 0);
});

test('provisional participant windows give a provisional group_coherence per end, before its final one; the stored windows are unchanged', async () => {
  const tp = await topicsFor('gp.');
  const sink = await startSink(tp);
  // The wall clock at the fixture's first end (every window is within 2 min of it or later).
  const now = () => fixtureEnd(0);
  const w = await startWorker(tp, false, now);
  stops.push(() => w.stop());
  // Something on the provisional topic that is no participant window: counted, skipped, no dead letter.
  await bus.publish(tp.groupParticipantWindowsProvisional, [{ key: MESH, value: Buffer.from('not avro at all') }]);
  // A window too old for a live display (2 min and more by the wall clock): not computed.
  const stale = { ...fixtureWindows(MESH, 'org-p')[0][0]!, window_end: now() - PROVISIONAL_MAX_AGE_MS - 5000 };
  await bus.publish(tp.groupParticipantWindowsProvisional, [{ key: MESH, value: codec.encode(Topics.groupParticipantWindowsProvisional, stale) }]);
  // Live, a window is read provisionally as the beats pass its end, and its final one comes
  // ~15 s later. The two topics are read by two consumers whose relative pace this test does
  // not control, so the provisional windows all go first here.
  const records = windowMajor(fixtureWindows(MESH, 'org-p'));
  for (const r of records) {
    await bus.publish(tp.groupParticipantWindowsProvisional, [{ key: MESH, value: codec.encode(Topics.groupParticipantWindowsProvisional, r), timestamp: r.window_end }]);
  }
  await waitFor('the provisional group windows', () => w.stats.provisionalWindows >= FIXTURE_WINDOWS);
  await publish(tp, records);
  await untilStored(sink, CLOSED);
  assert.deepEqual(await stored('org-p'), await stored('org-a'), 'the final path does not see the provisional windows');
  const events = await meshEvents(tp, CLOSED + FIXTURE_WINDOWS);
  const coherence = events.filter((e) => e.type === 'group_coherence');
  const provisional = coherence.filter((e) => JSON.parse(e.payload_json).provisional === true);
  const final = coherence.filter((e) => JSON.parse(e.payload_json).provisional === false);
  assert.equal(final.length, CLOSED);
  assert.equal(provisional.length, FIXTURE_WINDOWS, 'one per end, the last two too (their final ones wait for the lateness)');
  assert.equal(w.stats.provisionalWindows, FIXTURE_WINDOWS);
  assert.equal(w.stats.provisionalFailures, 1);
  assert.equal(w.stats.provisionalSkipped, 1);
  assert.equal(w.stats.deadLettered, 0);
  for (const p of provisional) {
    const end = p.occurred_at;
    assert.equal(p.event_id, `${MESH}:group_coherence:${end}:provisional`);
    const f = coherence.findIndex((e) => e.event_id === `${MESH}:group_coherence:${end}`);
    if (f >= 0) assert.ok(coherence.indexOf(p) < f, `end ${(end - fixtureEnd(0)) / 5000}: the provisional one comes first`);
    const pp = JSON.parse(p.payload_json);
    for (const k of ['coherence', 'participant_count', 'present_count', 'sync_r', 'sync_p', 'plv', 'breathing_sync', 'window_end', 'weights']) assert.ok(k in pp, `${k} in a provisional payload`);
  }
  // Where the final window counts everyone present (no late joiner or drop-out history), the figures agree.
  let same = 0;
  for (const f of final) {
    const fp = JSON.parse(f.payload_json);
    const pp = JSON.parse(provisional.find((p) => p.occurred_at === f.occurred_at)!.payload_json);
    if (fp.participant_count !== pp.participant_count) continue;
    assert.equal(pp.coherence, fp.coherence);
    assert.equal(pp.sync_r, fp.sync_r);
    same++;
  }
  assert.ok(same >= 20, `${same} ends agree`);
});

test('a restarted worker does not work through the provisional windows published while it was down: it starts at the newest', async () => {
  const tr = await topicsFor('gr.');
  const now = () => fixtureEnd(0);
  const records = windowMajor(fixtureWindows(MESH, 'org-r'));
  const send = (rs: GroupParticipantWindowRecord[]) =>
    bus.publish(tr.groupParticipantWindowsProvisional, rs.map((r) => ({ key: MESH, value: codec.encode(Topics.groupParticipantWindowsProvisional, r), timestamp: r.window_end })));
  const half = records.findIndex((r) => r.window_end === fixtureEnd(10));
  const w1 = await startWorker(tr, false, now);
  await send(records.slice(0, half));
  await waitFor('the first worker computed ends 0-9', () => w1.stats.provisionalWindows >= 10);
  await w1.stop();
  await send(records.slice(half));
  const w2 = await startWorker(tr, false, now);
  stops.push(() => w2.stop());
  // A record after the restart: once it is handled, anything before it would have been too.
  await bus.publish(tr.groupParticipantWindowsProvisional, [{ key: MESH, value: Buffer.from('after the restart') }]);
  await waitFor('the record after the restart handled', () => w2.stats.provisionalFailures >= 1);
  assert.equal(w2.stats.provisionalWindows, 0, 'nothing published while it was down was computed');
  assert.equal(w2.stats.provisionalSkipped, 0);
});
