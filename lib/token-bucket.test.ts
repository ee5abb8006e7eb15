import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './token-bucket.js';

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
