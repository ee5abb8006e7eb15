import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadingBudget, TokenBucket } from './token-bucket.js';

test('a bucket spends its burst, then refills at its rate', () => {
  const b = new TokenBucket(100, 1000, 0);
  assert.equal(b.take(1000, 0), 0);
  assert.equal(b.take(50, 0), 0.5, 'empty: 50 tokens take half a second');
  assert.equal(b.take(50, 500), 0, 'after half a second they are there');
  assert.equal(b.take(10, 500), 0.1);
  assert.equal(b.take(1000, 60_000), 0, 'refills to the burst, not beyond');
  assert.equal(b.take(1, 60_000), 0.01);
});

test('more than the burst can never pass', () => {
  assert.equal(new TokenBucket(100, 1000, 0).take(1001, 0), Infinity);
});

test('a refund gives tokens back, never above the burst', () => {
  const b = new TokenBucket(100, 1000, 0);
  assert.equal(b.take(800, 0), 0);
  b.refund(500, 0);
  assert.equal(b.take(700, 0), 0, '200 left + 500 back');
  assert.equal(b.take(1, 0), 0.01);
  b.refund(5000, 0);
  assert.equal(b.take(1000, 0), 0);
  assert.equal(b.take(1, 0), 0.01, 'the refund stopped at the burst');
});

test('a reading budget charges the device and its user together, or neither', () => {
  const budget = new ReadingBudget({ ratePerS: 100, burst: 1000 }, { ratePerS: 100, burst: 1500 });
  assert.equal(budget.take('u', 'd1', 1000, 0), null);
  // d2 has its own 1000, the user only 500 left: refused by the user's bucket, d2 not charged.
  const refused = budget.take('u', 'd2', 800, 0);
  assert.equal(refused?.scope, 'user');
  assert.equal(refused?.waitS, 3);
  assert.equal(budget.take('u', 'd2', 500, 0), null, "d2's budget was not touched by the refusal");
  // d1 is empty: refused by the device even though ... the user is empty too; the longer wait wins.
  assert.equal(budget.take('u', 'd1', 100, 0)?.waitS, 1);
  // A refund restores both.
  budget.refund('u', 'd2', 500, 0);
  assert.equal(budget.take('u', 'd2', 500, 0), null);
  // Another user is untouched.
  assert.equal(budget.take('v', 'd3', 1000, 0), null);
});
