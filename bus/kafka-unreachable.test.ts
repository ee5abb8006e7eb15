// isUnreachable (bus/kafka-common.ts): which kafkajs errors make a subscription wait for the broker
// (and a crashed consumer be replaced) rather than fail. The errors are built as kafkajs builds
// them for what a broker outage looks like, and for errors waiting cannot fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { mustRejoin } from './kafka.js';
import { isUnreachable } from './kafka-common.js';

// kafkajs is CommonJS and its error classes are not detected as named exports (nor all typed).
type ErrorClass = new (e: unknown, opts?: Record<string, unknown>) => Error & { retriable?: boolean };
const {
  KafkaJSConnectionError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNoBrokerAvailableError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSRequestTimeoutError,
} = kafkajs as unknown as Record<string, ErrorClass>;

test('isUnreachable: the errors of a broker outage are, wherever they sit in the cause chain', () => {
  const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
  // What subscribe() rejected with during an outage: retries used up on a refused connection.
  assert.equal(isUnreachable(new KafkaJSNumberOfRetriesExceeded(refused, { retryCount: 5, retryTime: 8920 })), true);
  // What kafkajs's retrier rejects with when it bails out on one.
  assert.equal(isUnreachable(new KafkaJSNonRetriableError(refused, { cause: refused })), true);
  assert.equal(isUnreachable(new KafkaJSRequestTimeoutError('Request Produce(key: 0, version: 7) timed out')), true);
  assert.equal(isUnreachable(new KafkaJSNoBrokerAvailableError(undefined)), true);
  assert.equal(isUnreachable(new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator')), true);
  // The crash kafkajs does not restart, seen when the broker went away during a rebalance.
  assert.equal(isUnreachable(new KafkaJSNonRetriableError('Failed to find group coordinator')), true);
});

test('isUnreachable: errors waiting cannot fix are not', () => {
  const denied = new KafkaJSProtocolError(Object.assign(new Error('Topic authorization failed'), { type: 'TOPIC_AUTHORIZATION_FAILED', code: 29, retriable: false }));
  assert.equal(denied.retriable, false);
  assert.equal(isUnreachable(denied), false);
  assert.equal(isUnreachable(new KafkaJSNonRetriableError(denied, { cause: denied })), false);
  assert.equal(isUnreachable(new TypeError('eachBatch is not a function')), false);
  assert.equal(isUnreachable(undefined), false);
});

test('mustRejoin: a commit or heartbeat refused because the group moved on ends the batch retry loop; other errors do not', () => {
  const protocol = (type: string, code: number, retriable: boolean) => new KafkaJSProtocolError(Object.assign(new Error(type), { type, code, retriable }));
  // What a commit or heartbeat of a member from before a broker restart gets.
  assert.equal(mustRejoin(protocol('ILLEGAL_GENERATION', 22, false)), true);
  assert.equal(mustRejoin(protocol('UNKNOWN_MEMBER_ID', 25, false)), true);
  assert.equal(mustRejoin(protocol('REBALANCE_IN_PROGRESS', 27, false)), true);
  assert.equal(mustRejoin(protocol('NOT_COORDINATOR_FOR_GROUP', 16, true)), true);
  // Wrapped by kafkajs's retrier.
  assert.equal(mustRejoin(new KafkaJSNonRetriableError(protocol('ILLEGAL_GENERATION', 22, false), { cause: protocol('ILLEGAL_GENERATION', 22, false) })), true);
  // A sink's own failure, a refused connection, an authorization error: retry the batch (or fail), no rejoin.
  assert.equal(mustRejoin(new Error('connect ECONNREFUSED 127.0.0.1:8123')), false);
  assert.equal(mustRejoin(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092')), false);
  assert.equal(mustRejoin(protocol('TOPIC_AUTHORIZATION_FAILED', 29, false)), false);
  assert.equal(mustRejoin(undefined), false);
});
