// The Bus over Apache Kafka with @platformatic/kafka (pure JavaScript, maintained; kafkajs
// has had no release since 2023).
//  - publish: acks=-1 with the idempotent producer, one produce request in flight (the calls
//    made meanwhile are coalesced into the next); keys are placed at
//    positive(murmur2(key)) % partitions with bus/partitioner.ts's murmur2 (checked against
//    kafkajs's DefaultPartitioner there): the Java client's placement and the embedded bus's.
//  - subscribe: one Consumer per subscription. Its message stream (all assigned partitions,
//    offsets from the group's commits, autocommit off) is split into one queue per
//    partition; each partition's queue is handed to the handler in offset order, one batch
//    at a time, partitions concurrently. A rejected batch is retried here with a doubling
//    back-off until it succeeds, the subscription stops or the partition is revoked.
//  - Heartbeats run on their own timer, so a handler blocked for minutes (a sink waiting on
//    ClickHouse) keeps the member; past `maxBufferedRecords` queued records nothing more is
//    read from the stream, whose fetching then stops (memory bounded) until the handlers catch up.
//  - groupInstanceId gives static membership (KIP-345): a restarted process with the same id
//    gets its partitions back at once, without waiting for the session timeout.
//  - A broker outage or kill: @platformatic/kafka 1.35's consumer does not come back from one
//    on its own (its stream dies when a fetch fails past the retries, its heartbeats stop after
//    an error, a failed rejoin emits an 'error' nobody hears, which ends the process). The
//    subscription then replaces the consumer, retrying with the back-off until the broker
//    answers, rejoining as the same member; its partitions are delivered again from the
//    committed offsets (handlers are idempotent). Publishes meanwhile fail or time out
//    (bus/publish-timeout.ts: 503 + Retry-After at the gateway). A subscribe made while the
//    broker is unreachable (a worker starting during an outage) waits for it, up to
//    `subscribeTimeoutMs`.
//  - Rebalances: a join that does not continue this member's last one (expelled by its session
//    timeout and rejoined under a new id, or a generation it did not see) replaces the consumer
//    too, so the handlers drop what they hold and rebuild from the commits; batches wait while
//    the group has not answered for half the session timeout (a stalled member must not hand
//    another member's records to its handlers); a partition assigned anew starts at its commit,
//    whatever the stream fetched of it before (bus/records-before-join.ts).
import { Admin, Base, Consumer, Producer, type Message, type MessageToProduce, type MessagesStream } from '@platformatic/kafka';
import type { Logger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import type { Bus, BusRecord, OutgoingRecord, SubscribeOptions, Subscription, TopicPartition, TopicSpec } from './types.js';
import { checkCommitOffset, logAssignment, interruptiblePauses, membershipContinues, someNestedError, topicConfigs, waitForLeaders, type GroupMembership, type NestedError } from './kafka-common.js';
import { busUnavailable } from './publish-timeout.js';
import { RecordsBeforeJoin } from './records-before-join.js';
import { fenceFetchesAcrossJoins, type FetchCall } from './fetches-across-joins.js';
import { murmur2 } from './partitioner.js';

type FetchRequest = Parameters<Consumer<Buffer, Buffer, Buffer, Buffer>['fetch']>[0];
type FetchAnswer = Awaited<ReturnType<Consumer<Buffer, Buffer, Buffer, Buffer>['fetch']>>;
export interface PlatformaticKafkaBusOptions {
  brokers: string[];
  clientId: string;
  log: Logger;
  idempotent?: boolean;
  replicationFactor?: number;
  topicReadyTimeoutMs?: number;
  /** Consumer group session timeout and heartbeat (defaults 10 s / 1 s). */
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Static membership: a stable id of this process (e.g. the host name); none by default. */
  groupInstanceId?: string;
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Records of one subscription queued before reading stops (default 20,000). */
  maxBufferedRecords?: number;
  /** Most records handed to one eachBatch call (default 5,000). */
  maxBatchRecords?: number;
  requestTimeoutMs?: number;
  /**
   * How long a subscribe keeps trying to join while the broker cannot be reached (default
   * 60 s): the workers start after the server listens, and a broker outage then must not end
   * the process.
   */
  subscribeTimeoutMs?: number;
  /**
   * Bytes (keys and values) of publishes waiting for the produce in flight, past which a new
   * publish is refused at once with `unavailable` (default 64 MiB). While the broker is away
   * the idempotent producer retries its produce until it is answered and every later publish
   * waits behind it; without a bound an outage under load would queue records until the
   * process ran out of memory (the gateway answers 503 after ATTUNE_PUBLISH_TIMEOUT_MS, but
   * the records it gave up on stay queued and are written once the broker is back).
   */
  maxPendingBytes?: number;
}

/** Default bound of the publishes queued behind the produce in flight. */
export const DEFAULT_MAX_PENDING_BYTES = 64 * 2 ** 20;

const ALREADY_EXISTS = /TOPIC_ALREADY_EXISTS|already exists/i;

/**
 * Topics Attune has just created (ensureTopics) that a broker's metadata does not list yet:
 * @platformatic/kafka 1.35 turns UNKNOWN_TOPIC_OR_PARTITION into a UserError it marks not
 * retriable. A worker subscribing right after the creation on a loaded broker met it (CI-like
 * load ~10: "Unknown topic <prefix>attune.coherence.checkpoints.v1.", and the process exited).
 */
const UNKNOWN_TOPIC = /^Unknown (topic|partition) /;

const isUnknownTopic = (e: NestedError) => typeof e.message === 'string' && UNKNOWN_TOPIC.test(e.message);

/** Whether a client error (or one it wraps) is the kind a later try may not meet: the network, a coordinator moving, a topic's metadata not there yet. */
function transient(err: unknown): boolean {
  return someNestedError(err, (e) => e.canRetry === true || isUnknownTopic(e));
}

function unknownTopic(err: unknown): boolean {
  return someNestedError(err, isUnknownTopic);
}

function errorText(err: unknown): string {
  const e = err as { message?: string; errors?: unknown[] };
  const inner = Array.isArray(e?.errors) ? e.errors.map(errorText).join('; ') : '';
  return `${e?.message ?? String(err)} ${inner}`;
}

function toBusRecord(m: Message<Buffer, Buffer, Buffer, Buffer>): BusRecord {
  const headers: Record<string, string> = {};
  for (const [k, v] of m.headers) headers[k.toString()] = v.toString();
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset.toString(),
    key: m.key ? m.key.toString() : '',
    value: m.value ?? Buffer.alloc(0),
    headers,
    timestamp: Number(m.timestamp),
  };
}

/** Closes a consumer, leaving its group (the callback form: the promise overload does not type with `force`). */
function closeConsumer(c: Consumer<Buffer, Buffer, Buffer, Buffer>): Promise<void> {
  return new Promise((resolve, reject) => c.close(true, (err?: Error | null) => (err ? reject(err) : resolve())));
}

interface PartitionState {
  topic: string;
  partition: number;
  queue: Message<Buffer, Buffer, Buffer, Buffer>[];
  /** The next offset not yet queued: a refetch after a rebalance is skipped up to it. */
  next: bigint;
  running: Promise<void> | null;
  revoked: boolean;
}

export class PlatformaticKafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  private readonly producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  private readonly admin: Admin;
  private readonly subs = new Set<Subscription>();
  private closing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: PlatformaticKafkaBusOptions) {
    this.producer = new Producer({
      clientId: opts.clientId,
      bootstrapBrokers: opts.brokers,
      idempotent: opts.idempotent ?? true,
      acks: -1,
      // The client's compatibilityPartitioner computes the same murmur2 with BigInts: 1.5-1.8 µs
      // and ~380 B a keyed record against 0.06-0.2 µs here (H6's bench:kafka measurements; main
      // thread 18.2 -> 17.3 µs a reading in 3 interleaved pairs). Same partitions (the bus
      // contract's key-placement check compares with bus/partitioner.ts).
      partitioner: (_message, key) => (Buffer.isBuffer(key) ? murmur2(key) & 0x7fffffff : 0),
      autocreateTopics: false,
      timeout: opts.requestTimeoutMs ?? 30_000,
    });
    this.admin = new Admin({ clientId: `${opts.clientId}-admin`, bootstrapBrokers: opts.brokers, timeout: opts.requestTimeoutMs ?? 30_000 });
  }

  async connect(): Promise<void> {
    await Promise.all([this.producer.metadata({ topics: [] }), this.admin.metadata({ topics: [] })]);
  }

  private checkOpen(): void {
    if (this.closed) throw new AttuneError('unavailable', 'the Kafka bus is closed');
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.checkOpen();
    if (specs.length === 0) return;
    for (const s of specs) {
      try {
        await this.admin.createTopics({
          topics: [s.topic],
          partitions: s.partitions,
          replicas: this.opts.replicationFactor ?? -1,
          configs: topicConfigs(s),
        });
      } catch (err) {
        if (!ALREADY_EXISTS.test(errorText(err))) throw err;
      }
    }
    const names = specs.map((s) => s.topic);
    await waitForLeaders(names, Date.now() + (this.opts.topicReadyTimeoutMs ?? 30_000), async () => {
      const meta = await this.admin.metadata({ topics: names, forceUpdate: true });
      return names.every((n) => {
        const t = meta.topics.get(n);
        return t !== undefined && t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0);
      });
    });
  }

  async publish(topic: string, records: OutgoingRecord[]): Promise<void> {
    this.checkOpen();
    if (records.length === 0) return;
    let bytes = 0;
    for (const r of records) bytes += r.value.length + r.key.length;
    const max = this.opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    if (this.pendingBytes > 0 && this.pendingBytes + bytes > max) {
      throw busUnavailable(`the Kafka producer has ${this.pendingBytes} bytes waiting for the broker (bound ${max}); retry later`, 'producer_queue_full');
    }
    const messages = records.map((r) => ({
      topic,
      key: Buffer.from(r.key),
      value: r.value,
      headers: r.headers ? new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) : undefined,
      timestamp: r.timestamp === undefined ? undefined : BigInt(r.timestamp),
    }));
    this.pendingBytes += bytes;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ messages, bytes, resolve, reject });
      if (!this.sending) void this.sendPending();
    });
  }

  // One produce request in flight at a time: with several, @platformatic/kafka 1.35's
  // idempotent producer gets OUT_OF_ORDER_SEQUENCE_NUMBER from the broker (50 concurrent
  // sends: 10 refused). Publishes made meanwhile are coalesced into the next request, in
  // call order, so concurrency costs no throughput.
  private readonly pending: Array<{ messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[]; bytes: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  /** Bytes of the publishes queued or in flight (see maxPendingBytes). */
  private pendingBytes = 0;
  private sending = false;

  private async sendPending(): Promise<void> {
    this.sending = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        const messages = batch.length === 1 ? batch[0].messages : batch.flatMap((p) => p.messages);
        // A topic created a moment ago may not be in the broker's metadata yet (unknownTopic):
        // sent again with a back-off for as long as ensureTopics would wait for it.
        const deadline = Date.now() + (this.opts.topicReadyTimeoutMs ?? 30_000);
        try {
          for (let backoff = 50; ; backoff = Math.min(backoff * 2, 1000)) {
            try {
              await this.producer.send({ acks: -1, messages });
              break;
            } catch (err) {
              if (!unknownTopic(err) || this.closed || Date.now() + backoff > deadline) throw err;
              await new Promise((r) => setTimeout(r, backoff));
            }
          }
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        } finally {
          for (const p of batch) this.pendingBytes -= p.bytes;
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async subscribe(opts: SubscribeOptions): Promise<Subscription> {
    this.checkOpen();
    const log = this.opts.log.child({ group: opts.groupId });
    const retryBackoffMs = this.opts.retryBackoffMs ?? 200;
    const retryBackoffMaxMs = this.opts.retryBackoffMaxMs ?? 5000;
    const maxBuffered = this.opts.maxBufferedRecords ?? 20_000;
    const maxBatch = this.opts.maxBatchRecords ?? 5_000;
    const consumerOptions = {
      clientId: `${this.opts.clientId}-${opts.groupId}`,
      bootstrapBrokers: this.opts.brokers,
      groupId: opts.groupId,
      sessionTimeout: this.opts.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: this.opts.heartbeatIntervalMs ?? 1_000,
      rebalanceTimeout: Math.max(this.opts.sessionTimeoutMs ?? 10_000, 30_000),
      ...(this.opts.groupInstanceId && !opts.ephemeral ? { groupInstanceId: this.opts.groupInstanceId } : {}),
      autocommit: false,
      timeout: this.opts.requestTimeoutMs ?? 30_000,
    };

    let stopping = false;
    const { pause, wakeAll } = interruptiblePauses();
    const parts = new Map<string, PartitionState>();
    // The pump of a revoked partition may still be in its handler: a new state of the same
    // partition (assigned again) waits for it, so one partition never has two handlers at once.
    const retiring = new Map<string, Promise<void>>();
    let buffered = 0;
    // The live consumer and its stream. Both are replaced when the client loses its group or its
    // fetch loop (see recover); `generation` tells the current ones' events from stale ones'.
    let consumer: Consumer<Buffer, Buffer, Buffer, Buffer>;
    let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | null = null;
    let generation = 0;
    let recovering: Promise<void> | null = null;
    // Set once the first consumer is consuming: a subscribe that fails throws instead.
    let live = false;
    // onAssignment runs before any batch of the new assignment: batches wait on this chain.
    let assignmentDone: Promise<void> = Promise.resolve();
    // The partitions of the latest assignment: the stream may still hand over records of a
    // revoked partition fetched before the rebalance; those are the new owner's.
    let mine = new Set<string>();
    // The membership the latest assignment came with (see the join handler).
    let lastJoin: GroupMembership | null = null;
    // Records the stream held when a join assigned partitions anew: dropped when read, as the
    // stream fetches those partitions again from their commits (bus/records-before-join.ts).
    const beforeJoin = new RecordsBeforeJoin();
    // When the group last told this member it is one: the time a heartbeat that was answered
    // went out, or a join. A member that has not heard so for half its session timeout may have
    // been expelled (a stalled process: the coordinator waits out the session, then gives the
    // partitions away), and records its stream fetched meanwhile may be ones another member has
    // handled and committed since. Handing them to the handlers with their stale state would let
    // a zombie write what the rightful owner would not; so batches wait until the group answers
    // again, which either confirms the membership or ends it (the client rejoins under a new
    // member id: recover). The send time, not the answer's, because an answer that was on its
    // way when the process stalled says nothing about the time since.
    let confirmedAt = performance.now();
    let beatSentAt = 0;
    const confirmWaiters: Array<() => void> = [];
    const confirmed = (at: number) => {
      confirmedAt = Math.max(confirmedAt, at);
      for (const wake of confirmWaiters.splice(0)) wake();
    };
    const unconfirmedAfterMs = consumerOptions.sessionTimeout / 2;
    const unconfirmed = () => !stopping && performance.now() - confirmedAt > unconfirmedAfterMs;
    const membershipConfirmed = async (): Promise<void> => {
      while (unconfirmed()) await new Promise<void>((r) => confirmWaiters.push(r));
    };

    const drop = (st: PartitionState) => {
      const key = `${st.topic}:${st.partition}`;
      st.revoked = true;
      buffered -= st.queue.length;
      st.queue = [];
      parts.delete(key);
      if (st.running) retiring.set(key, st.running);
    };
    // `drainNow` false inside the join handler: a read there would start a fetch (Node calls
    // _read) before the stream has seen the join, with the positions about to be reset.
    const assign = (assigned: TopicPartition[], drainNow = true) => {
      const keep = new Set(assigned.map((tp) => `${tp.topic}:${tp.partition}`));
      mine = keep;
      for (const [key, st] of [...parts]) if (!keep.has(key)) drop(st);
      if (drainNow) drain();
      else process.nextTick(drain);
      logAssignment(log, assigned, opts.ephemeral === true);
      if (opts.onAssignment) {
        const prev = assignmentDone;
        assignmentDone = prev
          .then(() => opts.onAssignment!(assigned))
          .catch((err) => log.error({ err }, 'onAssignment handler failed'));
      }
    };

    const pump = async (st: PartitionState) => {
      await assignmentDone;
      await retiring.get(`${st.topic}:${st.partition}`);
      while (!stopping && !st.revoked && st.queue.length > 0) {
        const take = st.queue.slice(0, maxBatch);
        const records = take.map(toBusRecord);
        let backoff = retryBackoffMs;
        let ok = false;
        while (!stopping && !st.revoked) {
          // Checked before awaiting: one more await per batch on the hot path otherwise.
          if (unconfirmed()) await membershipConfirmed();
          if (stopping || st.revoked) break;
          try {
            await opts.eachBatch({ topic: st.topic, partition: st.partition, records });
            ok = true;
            break;
          } catch (err) {
            log.warn(
              { err, topic: st.topic, partition: st.partition, first_offset: records[0].offset, records: records.length, retry_in_ms: backoff },
              'bus handler rejected a batch; delivering it again',
            );
            await pause(backoff);
            backoff = Math.min(backoff * 2, retryBackoffMaxMs);
          }
        }
        if (!ok) return;
        // Taken away meanwhile: drop() emptied the queue and counted it out of `buffered`.
        if (st.revoked) return;
        st.queue.splice(0, take.length);
        buffered -= take.length;
        if (buffered < maxBuffered) drain();
      }
    };
    const kick = (st: PartitionState) => {
      if (st.running) return;
      const key = `${st.topic}:${st.partition}`;
      const running = pump(st)
        .catch((err) => log.error({ err }, 'bus partition pump failed'))
        .finally(() => {
          st.running = null;
          if (retiring.get(key) === running) retiring.delete(key);
          if (!stopping && !st.revoked && st.queue.length > 0) kick(st);
        });
      st.running = running;
    };

    // Paused mode: records are read only while fewer than maxBuffered are queued. When we stop
    // reading, the stream's buffer fills to its highWaterMark and its fetch loop stops by
    // Node's own backpressure; reading again restarts it (the client's pause()/resume() path
    // stalled a 300,000-reading bench run once, 161,000 rows in).
    const take = (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
      const key = `${m.topic}:${m.partition}`;
      if (beforeJoin.stale(key)) return;
      if (!mine.has(key)) return;
      let st = parts.get(key);
      if (!st) {
        st = { topic: m.topic, partition: m.partition, queue: [], next: -1n, running: null, revoked: false };
        parts.set(key, st);
      }
      if (m.offset < st.next) return; // refetched after a rebalance: already queued or handled
      st.next = m.offset + 1n;
      st.queue.push(m);
      buffered++;
      kick(st);
    };
    function drain(): void {
      const s = stream;
      if (!s) return;
      let m: Message<Buffer, Buffer, Buffer, Buffer> | null;
      while (!stopping && stream === s && buffered < maxBuffered && (m = s.read() as Message<Buffer, Buffer, Buffer, Buffer> | null) !== null) take(m);
    }

    // One consumer and its stream; `memberId` rejoins as the member the previous consumer was,
    // so the coordinator does not wait out that member's session before assigning partitions
    // (one it no longer knows answers UNKNOWN_MEMBER_ID, and the client joins afresh).
    const open = async (memberId: string | null): Promise<void> => {
      const gen = ++generation;
      const c = new Consumer<Buffer, Buffer, Buffer, Buffer>(consumerOptions);
      consumer = c;
      if (memberId) c.memberId = memberId;
      const current = () => gen === generation && !stopping;
      // Fetches sent before a join and answered after it are emptied, and ones built between a
      // join and its refresh of the positions are not sent (bus/fetches-across-joins.ts).
      const fence = fenceFetchesAcrossJoins<FetchRequest, FetchAnswer>(c.fetch.bind(c) as FetchCall<FetchRequest, FetchAnswer>);
      c.fetch = fence.fetch as typeof c.fetch;
      c.on('consumer:group:join', (payload) => {
        if (!current()) return;
        fence.joined();
        const assigned: TopicPartition[] = [];
        for (const a of payload.assignments ?? []) for (const p of a.partitions) assigned.push({ topic: a.topic, partition: p });
        assigned.sort((x, y) => (x.topic === y.topic ? x.partition - y.partition : x.topic < y.topic ? -1 : 1));
        // A join that does not continue the last one (membershipContinues): under another member
        // id, the client rejoined by itself after its session timed out (a process stalled past
        // it); under the same id, a generation it did not see (its SyncGroup cut short by another
        // rebalance, which happens when several processes start together). Either way another
        // member may have held its partitions and committed on them meanwhile. Replaced, not only
        // reassigned: records fetched before may still be in this stream, or in a fetch answered
        // after the join (which would put back the position it fetched from); a new consumer's
        // stream starts at the commits, and the handlers, told the empty assignment, rebuild
        // from them. The replacement rejoins under this member id, so without waiting out a
        // session; it costs one more join round.
        const prev = lastJoin;
        const now: GroupMembership = { memberId: payload.memberId, generationId: payload.generationId ?? null };
        lastJoin = now;
        if (prev && !membershipContinues(prev, now)) {
          const reason = prev.memberId !== now.memberId ? `the client rejoined its group as member ${now.memberId} after ${prev.memberId}` : `the client joined generation ${now.generationId} after ${prev.generationId}`;
          if (recover(reason, undefined)) return;
          assign([], false);
        }
        confirmed(performance.now());
        const newly = assigned.map((tp) => `${tp.topic}:${tp.partition}`).filter((key) => !mine.has(key));
        if (stream && newly.length > 0) {
          // After each join the stream asks for the commits of the partitions assigned and starts
          // them there; but a partition without a commit (a fresh group) it starts where it last
          // fetched it, if it held it before (@platformatic/kafka 1.35 fills only positions it
          // has none of from the earliest offset), so the records between were never delivered.
          // Forgetting the position makes it start such a partition at its earliest record. (A
          // fetch sent before this join and answered after it would set the position again, and
          // one built before the refresh would ask for no position: bus/fetches-across-joins.ts.)
          for (const key of newly) stream.offsetsToFetch.delete(key);
          beforeJoin.joined(stream.readableLength, newly);
        }
        assign(assigned, false);
      });
      // @platformatic/kafka 1.35 stops heartbeating after a heartbeat error that does not ask
      // for a rejoin (its timer is cleared before the refresh meant to re-arm it), and emits
      // 'error' (which, unheard, throws out of a timer and ends the process) when a rejoin
      // fails, e.g. findGroupCoordinator while the broker is down. Either way the member is
      // lost: a new consumer takes over.
      c.on('consumer:heartbeat:start', () => {
        if (current()) beatSentAt = performance.now();
      });
      c.on('consumer:heartbeat:end', () => {
        if (current() && beatSentAt > 0) confirmed(beatSentAt);
      });
      c.on('consumer:heartbeat:error', (p: { error?: unknown }) => {
        if (current()) recover('a heartbeat failed', p?.error);
      });
      c.on('error', (err: unknown) => {
        if (current()) recover('the consumer could not rejoin its group', err);
        else log.debug({ err }, 'kafka consumer error (a replaced consumer)');
      });
      let s: MessagesStream<Buffer, Buffer, Buffer, Buffer>;
      try {
        s = await c.consume({
          topics: opts.topics,
          mode: 'committed',
          fallbackMode: opts.fromBeginning === false ? 'latest' : 'earliest',
          autocommit: false,
          maxWaitTime: 200,
        });
      } catch (err) {
        if (gen === generation) generation++;
        void discard(c, null);
        throw err;
      }
      if (!current()) {
        void discard(c, s);
        return;
      }
      stream = s;
      s.on('readable', drain);
      // A fetch that fails past the client's retries (broker down) destroys the stream.
      s.on('error', (err: Error) => {
        if (current()) recover('the fetch loop failed', err);
      });
      s.on('close', () => {
        if (current()) recover('the consumer stream closed', undefined);
      });
      drain();
    };

    // Closes a consumer, and its connections even when the broker cannot be reached. A replaced
    // one (leave false) must not leave the group: its member id is its successor's. Without a
    // member id, leaveGroup sends nothing and only ends the membership, so no heartbeat of it
    // (which would rejoin as a new member) goes out any more.
    const discard = async (c: Consumer<Buffer, Buffer, Buffer, Buffer>, s: MessagesStream<Buffer, Buffer, Buffer, Buffer> | null, leave = false): Promise<void> => {
      if (!leave) {
        c.memberId = null;
        c.leaveGroup(true, () => undefined);
      }
      if (s) await s.close().catch((err: unknown) => log.debug({ err }, 'closing a consumer stream failed'));
      try {
        await closeConsumer(c);
      } catch (err) {
        log.debug({ err }, 'closing a kafka consumer failed; dropping its connections');
        await new Promise<void>((resolve) => (Base.prototype.close as (this: unknown, cb: () => void) => void).call(c, () => resolve()));
      }
    };

    /** Replaces a lost consumer; false when it cannot now (stopping, already replacing, not yet live). */
    const recover = (reason: string, err: unknown): boolean => {
      if (stopping || recovering || !live) return false;
      const old = consumer;
      const oldStream = stream;
      const memberId = old.memberId;
      generation++;
      stream = null;
      log.warn({ err, reason }, 'kafka consumer lost; replacing it (its partitions are delivered again from the committed offsets)');
      // Everything queued is dropped and fetched again from the commits by the new consumer;
      // handlers running now finish first (retiring).
      for (const st of [...parts.values()]) drop(st);
      assign([]);
      // Reported empty already: the new consumer's first join starts afresh, from a new stream.
      lastJoin = null;
      beforeJoin.clear();
      beatSentAt = 0;
      void discard(old, oldStream);
      recovering = (async () => {
        let backoff = retryBackoffMs;
        let attempt = 0;
        while (!stopping) {
          try {
            await open(memberId);
            if (!stopping) log.info({ attempts: attempt + 1 }, 'kafka consumer replaced');
            return;
          } catch (e) {
            attempt++;
            log.warn({ err: e, retry_in_ms: backoff }, 'kafka consumer could not join its group; trying again');
            await pause(backoff);
            backoff = Math.min(backoff * 2, retryBackoffMaxMs);
          }
        }
      })().finally(() => {
        recovering = null;
      });
      return true;
    };

    // A broker that cannot be reached yet (an outage while the workers start) is waited for.
    const deadline = Date.now() + (this.opts.subscribeTimeoutMs ?? 60_000);
    for (let backoff = retryBackoffMs; ; backoff = Math.min(backoff * 2, retryBackoffMaxMs)) {
      try {
        await open(null);
        break;
      } catch (err) {
        if (!transient(err) || Date.now() + backoff > deadline || this.closed) throw err;
        log.warn({ err, retry_in_ms: backoff }, 'kafka consumer could not join its group; trying again');
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    live = true;

    let stopped: Promise<void> | undefined;
    const sub: Subscription = {
      commit: async (topic, partition, offset) => {
        checkCommitOffset(offset);
        await consumer.commit({ offsets: [{ topic, partition, offset: BigInt(offset), leaderEpoch: -1 }] });
      },
      stop: () => {
        stopped ??= (async () => {
          stopping = true;
          wakeAll();
          for (const wake of confirmWaiters.splice(0)) wake();
          await recovering;
          await Promise.all([...parts.values()].map((st) => st.running));
          await Promise.all([...retiring.values()]);
          // Leaves the group (LeaveGroup), so the partitions move to the other members at once.
          await discard(consumer, stream, true);
          this.subs.delete(sub);
        })();
        return stopped;
      },
    };
    this.subs.add(sub);
    return sub;
  }

  async partitionCount(topic: string): Promise<number> {
    this.checkOpen();
    const meta = await this.admin.metadata({ topics: [topic], forceUpdate: true });
    const t = meta.topics.get(topic);
    if (!t || t.partitions.length === 0) throw new Error(`topic ${topic}: no partitions in the broker's metadata`);
    return t.partitions.length;
  }

  async committed(groupId: string, topic: string): Promise<Map<number, string>> {
    this.checkOpen();
    const out = new Map<number, string>();
    let res: Awaited<ReturnType<Admin['listConsumerGroupOffsets']>> = [];
    for (let attempt = 0, delay = 100; ; attempt++, delay = Math.min(delay * 2, 2000)) {
      try {
        res = await this.admin.listConsumerGroupOffsets({ groups: [groupId] });
        break;
      } catch (err) {
        if (attempt >= 10 || !/COORDINATOR_LOAD_IN_PROGRESS|NOT_COORDINATOR|COORDINATOR_NOT_AVAILABLE/.test(errorText(err))) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    for (const g of res) {
      for (const t of g.topics) {
        if (t.name !== topic) continue;
        for (const p of t.partitions) if (p.committedOffset >= 0n) out.set(p.partitionIndex, p.committedOffset.toString());
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await Promise.all([...this.subs].map((s) => s.stop().catch((err) => this.opts.log.warn({ err }, 'consumer stop failed'))));
      await Promise.all([this.producer.close(), this.admin.close()]);
    })();
    return this.closing;
  }
}

export async function createPlatformaticKafkaBus(opts: PlatformaticKafkaBusOptions): Promise<PlatformaticKafkaBus> {
  const bus = new PlatformaticKafkaBus(opts);
  try {
    await bus.connect();
  } catch (err) {
    // Close what a failed open made: its clients would otherwise go on trying the brokers in the
    // background, one more set for every try of a starting process that waits for Kafka, and
    // would keep a process that gives up from exiting.
    await bus.close().catch((closeErr: unknown) => opts.log.debug({ err: closeErr }, 'closing a Kafka bus that failed to open failed'));
    throw err;
  }
  return bus;
}
