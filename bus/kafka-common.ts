// What the two Kafka adapters (bus/kafka.ts on kafkajs, bus/kafka-platformatic.ts on
// @platformatic/kafka) must do alike, whatever their client: the same wait for topic leaders
// with the same error, the same check of a committed offset, the same interruptible back-off.
// Written once so that the adapters cannot drift apart on what a caller sees.
import { AttuneError } from '../lib/errors.js';
import type { TopicPartition, TopicSpec } from './types.js';
import type { Logger } from '../lib/log.js';

/**
 * Polls `leadersReady` (every partition of `names` has a leader) with a back-off of 50 ms
 * doubling to 1 s until it answers true. Past `deadline` (epoch ms) a failing poll's error is
 * thrown as is, and a broker that answers but has no leaders yet gives `unavailable`
 * (reason no_leader).
 */
export async function waitForLeaders(names: string[], deadline: number, leadersReady: () => Promise<boolean>): Promise<void> {
  let backoff = 50;
  for (;;) {
    let ready = false;
    try {
      ready = await leadersReady();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (ready) return;
    if (Date.now() > deadline) {
      throw new AttuneError('unavailable', `Kafka topics ${names.join(', ')} have no leaders yet`, [{ reason: 'no_leader' }]);
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 1000);
  }
}

/** Throws validation_error (reason invalid_offset) unless `offset` is a non-negative integer string. */
export function checkCommitOffset(offset: string): void {
  if (!/^\d+$/.test(offset)) {
    throw new AttuneError('validation_error', `offset must be a non-negative integer string, got ${JSON.stringify(offset)}`, [{ field: 'offset', reason: 'invalid_offset' }]);
  }
}

/**
 * The retry back-off of a subscription's handler: `pause(ms)` resolves after `ms`, or at once
 * when the subscription stops and calls `wakeAll()`, so a stop never waits out a back-off.
 */
export function interruptiblePauses(): { pause(ms: number): Promise<void>; wakeAll(): void } {
  const waiters = new Set<() => void>();
  return {
    pause: (ms) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        waiters.add(done);
      }),
    wakeAll: () => {
      for (const wake of [...waiters]) wake();
    },
  };
}

/** An error as the Kafka clients nest them: kafkajs' `cause`, @platformatic/kafka's MultipleErrors (an AggregateError) `errors`. */
export type NestedError = { code?: unknown; message?: unknown; canRetry?: unknown; cause?: unknown; errors?: unknown[] };

/**
 * Whether `err`, or an error it aggregates (`errors`, at any depth) or, with `causes`, one it
 * was caused by, satisfies `test`. Breadth-first, at most `maxDepth` levels, each error once
 * (a cycle of causes ends). Shared so that "is this the broker being unreachable" (cli/roles.ts)
 * and "may a later try succeed" (bus/kafka-platformatic.ts) read a client's error trees alike.
 */
export function someNestedError(err: unknown, test: (e: NestedError) => boolean, opts: { causes?: boolean; maxDepth?: number } = {}): boolean {
  const maxDepth = opts.maxDepth ?? 10;
  const seen = new Set<object>();
  let level: unknown[] = [err];
  for (let depth = 0; depth <= maxDepth && level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const e of level) {
      if (!e || typeof e !== 'object' || seen.has(e)) continue;
      seen.add(e);
      const n = e as NestedError;
      if (test(n)) return true;
      if (opts.causes && n.cause) next.push(n.cause);
      if (Array.isArray(n.errors)) next.push(...n.errors);
    }
    level = next;
  }
  return false;
}

// kafkajs's errors, read by name only (no import of kafkajs: cli/roles.ts uses this whichever client runs).
/** kafkajs's error names for "the broker (or its group coordinator) cannot be reached now". */
const KAFKAJS_UNREACHABLE = new Set([
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSGroupCoordinatorNotFound',
]);

/**
 * Whether a kafkajs error says the broker is out of reach (connection refused or closed, a
 * timeout, no coordinator, kafkajs's retries used up on any of these), anywhere in its cause
 * chain, or is marked retriable: waiting helps. Anything else (authorization, an invalid
 * topic) does not go away by waiting.
 */
export function isUnreachable(err: unknown): boolean {
  return someNestedError(
    err,
    (e) => {
      const { name, retriable, message } = e as { name?: string; retriable?: boolean; message?: string };
      if (retriable === true || (name !== undefined && KAFKAJS_UNREACHABLE.has(name))) return true;
      return name === 'KafkaJSNonRetriableError' && /group coordinator|No broker available/i.test(message ?? '');
    },
    { causes: true, maxDepth: 9 },
  );
}

/** A topic spec's Kafka topic configs (cleanup.policy, retention.ms), as name/value pairs. */
export function topicConfigs(s: TopicSpec): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  if (s.compacted) out.push({ name: 'cleanup.policy', value: 'compact' });
  if (s.retentionMs !== undefined) out.push({ name: 'retention.ms', value: String(s.retentionMs) });
  return out;
}

/** A member's place in its group as a join reported it: kafkajs's join event carries no generation (null). */
export interface GroupMembership {
  memberId: string;
  generationId: number | null;
}

/**
 * Whether a join continues the membership of the join before it, so that a partition assigned
 * in both was this member's in between and what its handlers hold for it is still true: the same
 * member id, and the next generation (or the same one, reported again). A member expelled by its
 * session timeout rejoins under a new id; a replaced consumer joins under a new id (or, with
 * static membership, the old one in a later generation); a member whose SyncGroup was cut short by
 * another rebalance skips a generation in which its partitions may have gone to another member,
 * who may have committed on them. Without generations (kafkajs) only the member id is compared.
 */
export function membershipContinues(prev: GroupMembership, next: GroupMembership): boolean {
  if (prev.memberId !== next.memberId) return false;
  if (prev.generationId === null || next.generationId === null) return true;
  return next.generationId === prev.generationId || next.generationId === prev.generationId + 1;
}

/**
 * Logs a consumer's new assignment, `{partitions: {topic: [0, 2]}}` beside the group its logger
 * binds: at info for the groups that commit (an operator reading a worker's or a sink's log sees
 * which partitions each process holds after every rebalance), at debug for live fan-out and
 * other readers of every partition. Until 12-06 every assignment was at debug only.
 */
export function logAssignment(log: Logger, assigned: TopicPartition[], ephemeral: boolean): void {
  const partitions: Record<string, number[]> = {};
  for (const a of assigned) (partitions[a.topic] ??= []).push(a.partition);
  for (const list of Object.values(partitions)) list.sort((x, y) => x - y);
  if (ephemeral) log.debug({ partitions }, 'bus partitions assigned');
  else log.info({ partitions }, 'bus partitions assigned');
}
