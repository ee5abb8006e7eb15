import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordsBeforeJoin } from './records-before-join.js';

const read = (r: RecordsBeforeJoin, keys: string[]) => keys.map((k) => r.stale(k));

test('records held at a join are dropped only for the partitions it assigned anew, and only those records', () => {
  const r = new RecordsBeforeJoin();
  r.joined(4, ['t:1']);
  assert.deepEqual(read(r, ['t:0', 't:1', 't:1', 't:0']), [false, true, true, false]);
  // Fetched after the join: the partition's own records from its commit.
  assert.deepEqual(read(r, ['t:1', 't:1']), [false, false]);
});

test('a join that assigns nothing anew, or with nothing held, marks nothing', () => {
  const r = new RecordsBeforeJoin();
  r.joined(5, []);
  r.joined(0, ['t:1']);
  assert.deepEqual(read(r, ['t:1', 't:1']), [false, false]);
});

test('a second join: records of a partition assigned anew at the first, fetched after it, are kept; older ones of a partition assigned anew at the second are dropped', () => {
  const r = new RecordsBeforeJoin();
  // Join 1 assigns t:1 anew with 3 records held: [t:1 (old), t:0, t:2 (old, t:2 is someone else's now)].
  r.joined(3, ['t:1']);
  assert.equal(r.stale('t:1'), true);
  // Two held records left from join 1; 2 more fetched since (t:1 from its commit, t:0).
  // Join 2 assigns t:2 anew, with 4 records held.
  r.joined(4, ['t:2']);
  assert.deepEqual(read(r, ['t:0', 't:2']), [false, true], 'join 1\'s segment: t:2 older than join 2 too');
  assert.deepEqual(read(r, ['t:1', 't:0']), [false, false], 'fetched between the joins: t:1 is this ownership\'s');
  assert.deepEqual(read(r, ['t:1', 't:2']), [false, false], 'after join 2');
});

test('a partition taken away at one join and given back at the next: its records from before both are dropped', () => {
  const r = new RecordsBeforeJoin();
  // Join 1 takes t:3 away and assigns t:1 anew; held: [t:3, t:1], both from before it.
  r.joined(2, ['t:1']);
  // Join 2 gives t:3 back; held: those two, and [t:0, t:1] fetched between the joins.
  r.joined(4, ['t:3']);
  assert.deepEqual(read(r, ['t:3', 't:1', 't:0', 't:1']), [true, true, false, false]);
  assert.equal(r.stale('t:3'), false, 'fetched after join 2, from its commit');
});

test('clear: a new stream holds nothing from before', () => {
  const r = new RecordsBeforeJoin();
  r.joined(3, ['t:1']);
  r.clear();
  assert.deepEqual(read(r, ['t:1', 't:1', 't:1']), [false, false, false]);
});
