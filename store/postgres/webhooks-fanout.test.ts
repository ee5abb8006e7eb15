// WebhooksRepository.fanOut: an event's data is completed (the dispatcher reads ClickHouse for
// session.completed) before the transaction that fans it out, so the entity database is free
// meanwhile. With PGlite, one connection, a transaction held through those queries made every
// other query wait for them (until 12-06). And two fan-outs at once deliver an event once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { migratePostgres } from './migrate.js';
import { pgliteDatabase, type TestDatabase } from './test-databases.test-util.js';
import { WebhooksRepository, type Completed, type ReadyEvent } from './webhooks-repo.js';

let db: TestDatabase;
let repo: WebhooksRepository;
const NOW = Date.parse('2026-12-06T09:00:00Z');

before(async () => {
  db = await pgliteDatabase();
  await migratePostgres(db.client);
  repo = new WebhooksRepository(db.client, { clock: () => NOW });
});
after(async () => {
  await db?.dispose();
});

const completedEvent = (id: string, org: string) => ({
  eventId: id,
  orgId: org,
  type: 'session.completed',
  created: NOW - 60_000,
  subject: { session_id: `s-${id}` },
  data: null,
  readyAt: NOW - 1000,
});

async function deliveries(org: string): Promise<string[]> {
  const { rows } = await db.client.query<{ event_id: string }>('SELECT d.event_id FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE w.org_id = $1 ORDER BY d.event_id', [org]);
  return rows.map((r) => r.event_id);
}

test('while an event is being completed, the entity database answers other queries (PGlite: one connection)', async () => {
  await repo.create({ orgId: 'o-gate', createdBy: 'admin', url: 'https://example.test/hook', events: ['session.completed'], secret: 's', description: '' });
  await repo.addEvents([completedEvent('e-gate', 'o-gate')]);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let entered!: () => void;
  const completing = new Promise<void>((resolve) => (entered = resolve));
  const complete = async (e: ReadyEvent): Promise<Completed> => {
    entered();
    await gate; // the ClickHouse queries, as long as they take
    return { data: { session_id: e.subject.session_id } };
  };
  const fanning = repo.fanOut(NOW, 10, complete, (e) => JSON.stringify(e.data));
  await completing;
  // A query of another request while the event is completed: answered now, not after it. (The
  // timer bounds the failure only: on the old code this query waits for the gate.)
  let bound: NodeJS.Timeout | undefined;
  const answered = await Promise.race([
    db.client.query<{ n: number }>('SELECT 1 AS n').then((r) => r.rows[0].n),
    new Promise<'waited'>((resolve) => (bound = setTimeout(() => resolve('waited'), 5000))),
  ]);
  clearTimeout(bound);
  open();
  assert.equal(answered, 1, 'a query during the completion waited for it');
  assert.equal(await fanning, 1);
  assert.deepEqual(await deliveries('o-gate'), ['e-gate']);
});

test('two fan-outs at once complete an event twice at most but fan it out once; events a completion makes are stored with it', async () => {
  await repo.create({ orgId: 'o-twice', createdBy: 'admin', url: 'https://example.test/hook', events: ['session.completed', 'user.streak_milestone'], secret: 's', description: '' });
  await repo.addEvents([completedEvent('e-twice', 'o-twice')]);
  let completions = 0;
  const complete = async (e: ReadyEvent): Promise<Completed> => {
    completions++;
    const milestone = { eventId: `m-${e.eventId}`, orgId: e.orgId, type: 'user.streak_milestone', created: NOW, subject: {}, data: { streak_days: 7 }, readyAt: NOW };
    return { data: { session_id: e.subject.session_id }, events: [milestone] };
  };
  const render = (e: ReadyEvent & { data: Record<string, unknown> }) => JSON.stringify(e.data);
  const [a, b] = await Promise.all([repo.fanOut(NOW, 10, complete, render), repo.fanOut(NOW, 10, complete, render)]);
  assert.equal(a + b, 1, `fanned out ${a} + ${b}`);
  assert.ok(completions >= 1 && completions <= 2);
  // The milestone, stored once with the fan-out, is fanned out by the next round.
  assert.equal(await repo.fanOut(NOW, 10, complete, render), 1);
  assert.deepEqual(await deliveries('o-twice'), ['e-twice', 'm-e-twice']);
});
