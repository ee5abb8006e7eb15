// someNestedError: the one walk over a Kafka client's error tree (causes, aggregated errors);
// membershipContinues: when an adapter must tell its handlers that their partitions were taken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { membershipContinues, someNestedError, type NestedError } from './kafka-common.js';

const refused = (e: NestedError) => e.code === 'ECONNREFUSED';

test('finds an error aggregated at any depth, and a cause only when asked', () => {
  const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  // @platformatic/kafka's shape: MultipleErrors holding MultipleErrors holding the socket's error.
  const aggregated = new AggregateError([new Error('other'), new AggregateError([socket], 'Cannot connect to any broker')], 'metadata failed 4 times');
  assert.equal(someNestedError(aggregated, refused), true);
  // kafkajs' shape: a chain of causes.
  const caused = new Error('connection failed', { cause: new Error('retry', { cause: socket }) });
  assert.equal(someNestedError(caused, refused), false, 'causes are not followed unless asked');
  assert.equal(someNestedError(caused, refused, { causes: true }), true);
  // Both, mixed.
  assert.equal(someNestedError(new AggregateError([caused], 'x'), refused, { causes: true }), true);
  assert.equal(someNestedError(new Error('plain'), refused, { causes: true }), false);
  for (const nothing of [undefined, null, 'text', 42]) assert.equal(someNestedError(nothing, () => true), false);
});

test('is bounded: a cycle of causes ends, and nothing deeper than maxDepth is looked at', () => {
  const a: NestedError = { message: 'a' };
  const b: NestedError = { message: 'b', cause: a };
  a.cause = b;
  assert.equal(someNestedError(a, refused, { causes: true }), false);
  let deep: NestedError = { code: 'ECONNREFUSED' };
  for (let i = 0; i < 5; i++) deep = { errors: [deep] };
  assert.equal(someNestedError(deep, refused, { maxDepth: 5 }), true);
  assert.equal(someNestedError(deep, refused, { maxDepth: 4 }), false);
});

test('a join continues a membership only as the same member, in the same or the next generation', () => {
  const at = (memberId: string, generationId: number | null) => ({ memberId, generationId });
  assert.equal(membershipContinues(at('m1', 4), at('m1', 5)), true, 'the next rebalance');
  assert.equal(membershipContinues(at('m1', 4), at('m1', 4)), true, 'the same join reported again');
  assert.equal(membershipContinues(at('m1', 4), at('m1', 6)), false, 'a generation missed: the partitions may have had another owner in it');
  assert.equal(membershipContinues(at('m1', 4), at('m1', 3)), false);
  assert.equal(membershipContinues(at('m1', 4), at('m2', 5)), false, 'expelled and rejoined, or a new consumer');
  assert.equal(membershipContinues(at('m1', 4), at('m2', 4)), false, 'a static member replaced without a rebalance');
  // kafkajs: no generations, the member id alone.
  assert.equal(membershipContinues(at('m1', null), at('m1', null)), true);
  assert.equal(membershipContinues(at('m1', null), at('m2', null)), false);
});
