import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fenceFetchesAcrossJoins, type FetchAnswerLike, type FetchCall, type FetchRequestLike } from './fetches-across-joins.js';

type Callback = (err: Error | null, answer?: FetchAnswerLike) => void;

/** A consumer's fetch whose answers the test sends when it chooses. */
function fakeFetch() {
  const sent: Array<{ request: FetchRequestLike; answer: (err: Error | null, answer?: FetchAnswerLike) => void }> = [];
  function fetch(request: FetchRequestLike): Promise<FetchAnswerLike>;
  function fetch(request: FetchRequestLike, callback: Callback): void;
  function fetch(request: FetchRequestLike, callback?: Callback): Promise<FetchAnswerLike> | void {
    if (callback) {
      sent.push({ request, answer: callback });
      return;
    }
    return new Promise((resolve, reject) => sent.push({ request, answer: (err, a) => (err ? reject(err) : resolve(a!)) }));
  }
  return { fetch: fetch as FetchCall<FetchRequestLike, FetchAnswerLike>, sent };
}

const request = (...offsets: Array<bigint | undefined>): FetchRequestLike => ({ topics: [{ partitions: offsets.map((fetchOffset) => ({ fetchOffset })) }] });
const answer = (): FetchAnswerLike => ({
  throttleTimeMs: 0,
  errorCode: 0,
  sessionId: 7,
  responses: [
    { partitions: [{ records: ['r0', 'r1'] }, { records: ['r2'] }] },
    { partitions: [{ records: ['r3'] }] },
  ],
});
const recordsOf = (a: FetchAnswerLike | undefined) => a?.responses.map((t) => t.partitions.map((p) => p.records ?? null));

test('an answer to a fetch sent before a join is emptied; one sent after the join is handed over whole', () => {
  const inner = fakeFetch();
  const fence = fenceFetchesAcrossJoins(inner.fetch);
  const got: Array<FetchAnswerLike | undefined> = [];
  fence.fetch(request(5n, 9n), (_err, a) => got.push(a));
  fence.joined();
  fence.fetch(request(5n, 9n), (_err, a) => got.push(a));
  assert.equal(inner.sent.length, 2);
  inner.sent[0].answer(null, answer());
  inner.sent[1].answer(null, answer());
  assert.deepEqual(recordsOf(got[0]), [[null, null], [null]], 'sent before the join: no records, so no position moves');
  assert.equal(got[0]?.sessionId, 7, 'the rest of the answer is kept');
  assert.deepEqual(recordsOf(got[1]), [[['r0', 'r1'], ['r2']], [['r3']]]);
});

test('a fetch in flight across two joins is emptied; one answered before any join is not', () => {
  const inner = fakeFetch();
  const fence = fenceFetchesAcrossJoins(inner.fetch);
  const got: Array<FetchAnswerLike | undefined> = [];
  fence.fetch(request(1n), (_err, a) => got.push(a));
  inner.sent[0].answer(null, answer());
  fence.fetch(request(2n), (_err, a) => got.push(a));
  fence.joined();
  fence.joined();
  inner.sent[1].answer(null, answer());
  assert.deepEqual(recordsOf(got[0]), [[['r0', 'r1'], ['r2']], [['r3']]]);
  assert.deepEqual(recordsOf(got[1]), [[null, null], [null]]);
});

test('an error is passed on as it came', () => {
  const inner = fakeFetch();
  const fence = fenceFetchesAcrossJoins(inner.fetch);
  const errors: Array<Error | null> = [];
  fence.fetch(request(1n), (err) => errors.push(err));
  fence.joined();
  const boom = new Error('broker gone');
  inner.sent[0].answer(boom);
  assert.deepEqual(errors, [boom]);
});

test('a request built before the join\'s refresh filled in a position is not sent, and answered empty later, never within the call', async () => {
  const inner = fakeFetch();
  const fence = fenceFetchesAcrossJoins(inner.fetch);
  let answered: FetchAnswerLike | undefined;
  let within = true;
  const done = new Promise<void>((resolve) =>
    fence.fetch(request(3n, undefined), (err, a) => {
      assert.equal(err, null);
      assert.equal(within, false, 'answered after fetch() returned, as a real answer is');
      answered = a;
      resolve();
    }),
  );
  within = false;
  await done;
  assert.equal(inner.sent.length, 0, 'not sent');
  assert.deepEqual(answered?.responses, []);
});

test('the promise form: emptied across a join, whole otherwise, positionless requests not sent', async () => {
  const inner = fakeFetch();
  const fence = fenceFetchesAcrossJoins(inner.fetch);
  const before = fence.fetch(request(1n));
  fence.joined();
  const after = fence.fetch(request(1n));
  inner.sent[0].answer(null, answer());
  inner.sent[1].answer(null, answer());
  assert.deepEqual(recordsOf(await before), [[null, null], [null]]);
  assert.deepEqual(recordsOf(await after), [[['r0', 'r1'], ['r2']], [['r3']]]);
  assert.deepEqual((await fence.fetch(request(undefined))).responses, []);
  assert.equal(inner.sent.length, 2);
});
