// The Bus over Apache Kafka. createKafkaBus picks the client: @platformatic/kafka by default
// (bus/kafka-platformatic.ts: maintained, pure JavaScript, static membership; the default
// since it passed the whole fault suite, README's Known limitations), or kafkajs (this file;
// no release since 2023) with client: 'kafkajs' / ATTUNE_KAFKA_CLIENT=kafkajs.
// The kafkajs adapter:
//  - publish: acks=-1 (all in-sync replicas), NOT kafkajs's idempotent producer (see
//    KafkaBusOptions.idempotent: it lost acknowledged records across a broker restart), so a
//    send retried after a lost response may write a record twice: at-least-once, which every
//    consumer already tolerates (redeliveries); keys are partitioned as kafkajs's
//    DefaultPartitioner does (the Java client's murmur2), computed by bus/partitioner.ts as on
//    the embedded bus (kafkajsPartitioner).
//  - subscribe: one kafkajs consumer per subscription, eachBatch with autoCommit off;
//    offsets are committed only by Subscription.commit. A rejected handler is retried
//    here, on the same records, with a doubling back-off (heartbeating meanwhile), until it
//    succeeds, the subscription stops, or a rebalance takes the partition away (then the
//    new owner starts again from the committed offset). kafkajs's own crash-and-restart
//    path is never used for handler errors.
//  - onAssignment: from the consumer's GROUP_JOIN event; empty first when the member id changed.
import { Kafka, logLevel, type Admin, type Consumer, type EachBatchHandler, type ICustomPartitioner, type KafkaMessage, type LogEntry, type Producer } from 'kafkajs';
import { randomBytes } from 'node:crypto';
import { partitionForKey } from './partitioner.js';
import type { Logger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import type { Bus, BusRecord, OutgoingRecord, SubscribeOptions, Subscription, TopicPartition, TopicSpec } from './types.js';
import { checkCommitOffset, logAssignment, interruptiblePauses, isUnreachable, membershipContinues, topicConfigs, waitForLeaders, type GroupMembership } from './kafka-common.js';

/**
 * kafkajs's DefaultPartitioner, decision for decision: a message's own partition, else its
 * key's murmur2 partition (bus/partitioner.ts, the Java client's), else round-robin over the
 * partitions with a leader from a random start per topic. Why not kafkajs's own: it hashes
 * with a 64-bit Long emulation and filters the partition list for every message, ~4.4 µs a
 * keyed record against ~0.2 µs here (bench:kafka's profile: the coherence worker's ~40,000
 * window records of a 300,000-reading run). bus/partitioner.test.ts checks that both put
 * 10,000 random keys on the same partitions for 1..12 partitions.
 */
export const kafkajsPartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    const numPartitions = partitionMetadata.length;
    const key = message.key;
    if (key !== null && key !== undefined) {
      // kafkajs hashes a Buffer's bytes, anything else as the UTF-8 of String(key).
      return partitionForKey(Buffer.isBuffer(key) ? key : String(key), numPartitions);
    }
    let counter = counters.get(topic);
    if (counter === undefined) counter = randomBytes(4).readUInt32BE(0);
    counters.set(topic, ++counter);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    if (available.length > 0) return available[(counter & 0x7fffffff) % available.length].partitionId;
    return (counter & 0x7fffffff) % numPartitions;
  };
};

export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const DEFAULT_HEARTBEAT_MS = 1_000;

export interface KafkaBusOptions {
  /** The client: @platformatic/kafka (bus/kafka-platformatic.ts, the default) or kafkajs (this file). */
  client?: 'kafkajs' | 'platformatic';
  /** Static membership (platformatic only; kafkajs has none). */
  groupInstanceId?: string;
  brokers: string[];
  clientId: string;
  log: Logger;
  /**
   * kafkajs's idempotent producer (default false). It loses acknowledged records: when a
   * produce request fails without an answer (a broker stopping), kafkajs rolls its sequence
   * numbers back although the broker may have appended the batch, so a later batch can be sent
   * with a sequence range the broker already holds and is answered as a duplicate, "written",
   * without being written. Seen in CI's 20 s broker stop (bus/kafka-outage.kafka.test.ts): 7
   * accepted records on no partition, the broker logging OutOfOrderSequenceException for the
   * same producer on the partitions around them. Without it a retried send may duplicate a
   * record, which the workers and the ReplacingMergeTree tables absorb as they absorb
   * redeliveries.
   */
  idempotent?: boolean;
  /** Replication factor of topics created by ensureTopics (default: the broker's default). */
  replicationFactor?: number;
  /** How long ensureTopics waits for partition leaders (default 30 s). */
  topicReadyTimeoutMs?: number;
  /**
   * Consumer group session timeout and heartbeat (defaults 10 s / 1 s). kafkajs has no
   * static membership, so after a crash the replacement's partitions wait for the dead
   * member's session to expire: the timeout is how long a takeover takes. A running handler
   * keeps the member alive (heartbeats continue while it is blocked).
   */
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Longest wait of a fetch for records, which also bounds how long a stop waits to leave (default 1 s). */
  fetchMaxWaitMs?: number;
  /** Partitions of one subscription handled at the same time (default 6). */
  partitionsConsumedConcurrently?: number;
  /** Back-off after a rejected handler: first delay and cap (defaults 200 ms, 5 s). */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /**
   * A consumer kafkajs will not restart (it crashed on an error kafkajs does not retry, such
   * as no group coordinator during a broker outage) is replaced after this back-off: first
   * delay and cap (defaults 1 s, 10 s).
   */
  restartBackoffMs?: number;
  restartBackoffMaxMs?: number;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** kafkajs's levels to pino's; kafkajs only formats what the pino level lets through. */
function kafkajsLevelFor(log: Logger): logLevel {
  const lv = log.levelVal;
  if (lv <= 20) return logLevel.DEBUG;
  if (lv <= 30) return logLevel.INFO;
  if (lv <= 40) return logLevel.WARN;
  if (lv <= 50) return logLevel.ERROR;
  return logLevel.NOTHING;
}

function pinoLogCreator(log: Logger) {
  const child = log.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }: LogEntry) => {
      const { message, timestamp: _ts, logger: _logger, ...fields } = entry as LogEntry['log'] & { logger?: string };
      const obj = { namespace, ...fields };
      if (level === logLevel.ERROR) child.error(obj, message);
      else if (level === logLevel.WARN) child.warn(obj, message);
      else if (level === logLevel.INFO) child.info(obj, message);
      else child.debug(obj, message);
    };
}

function headerString(v: Buffer | string | (Buffer | string)[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : first.toString();
}

function toBusRecord(topic: string, partition: number, m: KafkaMessage): BusRecord {
  const headers: Record<string, string> = {};
  if (m.headers) {
    for (const name of Object.keys(m.headers)) {
      const s = headerString(m.headers[name]);
      if (s !== undefined) headers[name] = s;
    }
  }
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString() : '',
    value: m.value ?? Buffer.alloc(0),
    headers,
    timestamp: Number(m.timestamp),
  };
}

/** Group errors after which a member must rejoin (kafkajs's isRebalancing, plus an unknown member). */
const REJOIN = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'NOT_COORDINATOR', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/** Whether a kafkajs error (anywhere in its cause chain) means this member must rejoin its group. */
export function mustRejoin(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown } | undefined, depth = 0; e && depth < 10; e = e.cause as typeof e, depth++) {
    if (e.type !== undefined && REJOIN.has(e.type)) return true;
  }
  return false;
}

export interface KafkaBus extends Bus {
  readonly kind: 'kafka';
}

class KafkaBusImpl implements KafkaBus {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly consumers = new Set<Subscription>();
  private closing: Promise<void> | undefined;
  private closed = false;
  /** Wakes subscriptions waiting for an unreachable broker when the bus closes. */
  private readonly closeWaits = interruptiblePauses();

  constructor(private readonly opts: KafkaBusOptions) {
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      logLevel: kafkajsLevelFor(opts.log),
      logCreator: pinoLogCreator(opts.log),
      connectionTimeout: opts.connectionTimeoutMs ?? 10_000,
      requestTimeout: opts.requestTimeoutMs ?? 30_000,
    });
    this.producer = this.kafka.producer({
      createPartitioner: kafkajsPartitioner,
      idempotent: opts.idempotent ?? false,
      allowAutoTopicCreation: false,
    });
    this.admin = this.kafka.admin();
  }

  async connect(): Promise<void> {
    await Promise.all([this.producer.connect(), this.admin.connect()]);
  }

  private checkOpen(): void {
    if (this.closed) throw new AttuneError('unavailable', 'the Kafka bus is closed');
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.checkOpen();
    if (specs.length === 0) return;
    const deadline = Date.now() + (this.opts.topicReadyTimeoutMs ?? 30_000);
    // kafkajs's wait for leaders reads metadata right after the creation, and a broker that
    // has not caught up yet answers UNKNOWN_TOPIC_OR_PARTITION, which kafkajs throws (seen in
    // CI when two suites create topics at once): a retriable error retries the (idempotent)
    // creation until the deadline instead of failing the start.
    for (let backoff = 50; ; backoff = Math.min(backoff * 2, 1000)) {
      try {
        await this.admin.createTopics({
          waitForLeaders: true,
          topics: specs.map((s) => ({
            topic: s.topic,
            numPartitions: s.partitions,
            replicationFactor: this.opts.replicationFactor ?? -1,
            configEntries: topicConfigs(s),
          })),
        });
        break;
      } catch (err) {
        if ((err as { retriable?: boolean }).retriable !== true || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    // Topics that already existed (perhaps created a moment ago by another process) may
    // still lack leaders: wait for them too.
    const names = specs.map((s) => s.topic);
    await waitForLeaders(names, deadline, async () => {
      const meta = await this.admin.fetchTopicMetadata({ topics: names });
      return meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
    });
  }

  async publish(topic: string, records: OutgoingRecord[]): Promise<void> {
    this.checkOpen();
    if (records.length === 0) return;
    await this.producer.send({
      topic,
      acks: -1,
      messages: records.map((r) => ({
        key: r.key,
        value: r.value,
        headers: r.headers,
        timestamp: r.timestamp === undefined ? undefined : String(r.timestamp),
      })),
    });
  }

  async subscribe(opts: SubscribeOptions): Promise<Subscription> {
    this.checkOpen();
    const log = this.opts.log.child({ group: opts.groupId });
    const heartbeatMs = this.opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
    const retryBackoffMs = this.opts.retryBackoffMs ?? 200;
    const retryBackoffMaxMs = this.opts.retryBackoffMaxMs ?? 5000;
    const restartBackoffMs = this.opts.restartBackoffMs ?? 1000;
    const restartBackoffMaxMs = this.opts.restartBackoffMaxMs ?? 10_000;
    let stopping = false;
    const { pause, wakeAll } = interruptiblePauses();

    // When the group last told this member it is one: the send time of the latest heartbeat
    // answered, or a join. kafkajs hands a fetched batch to eachBatch before it heartbeats, so a
    // process that stalled past its session timeout (expelled meanwhile) would hand records
    // another member has since handled and committed to handlers with stale state. So, as in
    // bus/kafka-platformatic.ts, a batch waits while the group has not answered for half the
    // session timeout, and a heartbeat sent now answers: it confirms the member, or fails and
    // the member rejoins (the batch is delivered again from the commit). The send time, not the
    // answer's, because an answer on its way when the process stalled says nothing about since.
    // A heartbeat that keeps failing for another reason (its coordinator gone) is thrown once the
    // whole session timeout has passed, so that kafkajs's own recovery (find the coordinator,
    // rejoin, or crash and be replaced) runs instead of the batch waiting for ever. A batch that
    // waited across a join is not handed over: it was fetched for the generation before, and is
    // fetched again from the commit.
    const sessionTimeoutMs = this.opts.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    const unconfirmedAfterMs = sessionTimeoutMs / 2;
    let confirmedAt = Date.now();
    let heartbeatSentAt = 0;
    let joins = 0;

    const eachBatch: EachBatchHandler = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      if (batch.messages.length === 0) return;
      const joinsBefore = joins;
      while (Date.now() - confirmedAt > unconfirmedAfterMs) {
        if (stopping || !isRunning() || isStale()) return;
        try {
          await heartbeat();
        } catch (err) {
          if (mustRejoin(err) || Date.now() - confirmedAt > sessionTimeoutMs) throw err;
          log.warn({ err }, 'heartbeat before a batch failed; trying again');
        }
        // kafkajs sends at most one heartbeat an interval: the one answered may be older.
        if (Date.now() - confirmedAt > unconfirmedAfterMs) await pause(heartbeatMs);
      }
      if (joins !== joinsBefore) return;
      const records = batch.messages.map((m) => toBusRecord(batch.topic, batch.partition, m));
      let backoff = retryBackoffMs;
      // A heartbeat (or the handler's own commit) refused because the group moved on: this
      // member must rejoin, which kafkajs does only when the error reaches its runner. Retrying
      // the batch in here instead would never end (CI: after a broker SIGKILL the test's
      // consumer retried a commit refused for its old generation and consumed nothing more for
      // 90 s). The batch is not resolved, so it is delivered again after the rejoin.
      let rejoin: unknown = null;
      const beat = () => heartbeat().catch((err) => void (mustRejoin(err) && (rejoin ??= err)));
      for (;;) {
        if (stopping || !isRunning() || isStale()) return;
        // kafkajs heartbeats only between batches: a handler blocked longer than the
        // session timeout (a sink waiting on ClickHouse) would get the member thrown out
        // and its work replayed. Heartbeat while it runs; kafkajs fetches nothing more
        // for this partition meanwhile, so the partition is in effect paused.
        const beating = setInterval(() => void beat(), heartbeatMs);
        try {
          await opts.eachBatch({ topic: batch.topic, partition: batch.partition, records });
          break;
        } catch (err) {
          if (mustRejoin(err)) rejoin ??= err;
          log.warn(
            { err, topic: batch.topic, partition: batch.partition, first_offset: records[0].offset, records: records.length, retry_in_ms: rejoin ? 0 : backoff },
            rejoin ? 'bus handler rejected a batch and the group has moved on; rejoining' : 'bus handler rejected a batch; delivering it again',
          );
          if (!rejoin) {
            await pause(backoff);
            backoff = Math.min(backoff * 2, retryBackoffMaxMs);
            await beat();
          }
        } finally {
          clearInterval(beating);
        }
        if (rejoin) throw rejoin;
      }
      resolveOffset(records[records.length - 1].offset);
      await heartbeat().catch(() => undefined);
    };

    // The consumer of this subscription. kafkajs restarts a consumer that crashed on a
    // retriable error itself, but gives up for good on the others, and some of those are
    // what a broker outage looks like: "Failed to find group coordinator" after its retries,
    // a connection refused while rejoining. Such a consumer would stay stopped with the
    // process alive (a worker silently doing nothing), so here a consumer that kafkajs will
    // not restart is replaced by a new one, with a back-off (1 s doubling to 10 s), until
    // the subscription stops. The new member starts from the group's committed offsets, as
    // after any rebalance.
    let consumer!: Consumer;
    // The membership of the latest join, over every consumer this subscription has had.
    let lastJoin: GroupMembership | null = null;
    let restartDelay = restartBackoffMs;
    let restartTimer: NodeJS.Timeout | undefined;
    let restarting: Promise<void> | undefined;
    const newConsumer = (): Consumer => {
      const c = this.kafka.consumer({
        groupId: opts.groupId,
        sessionTimeout: this.opts.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
        heartbeatInterval: heartbeatMs,
        // A fetch waits at most this long for records (kafkajs default 5 s). A stop waits for
        // the fetch in flight before the member leaves its group, so this bounds how long a
        // graceful shutdown holds the partitions; idle, each consumer fetches once a second.
        maxWaitTimeInMs: this.opts.fetchMaxWaitMs ?? 1_000,
        allowAutoTopicCreation: false,
      });
      c.on(c.events.REQUEST, (event) => {
        if (c === consumer && event.payload.apiName === 'Heartbeat') heartbeatSentAt = event.payload.sentAt;
      });
      c.on(c.events.HEARTBEAT, () => {
        // One heartbeat in flight at a time (kafkajs shares it): the latest request is this one.
        if (c === consumer) confirmedAt = heartbeatSentAt;
      });
      c.on(c.events.GROUP_JOIN, (event) => {
        restartDelay = restartBackoffMs;
        joins++;
        if (c === consumer) confirmedAt = Date.now();
        const assignment = event.payload.memberAssignment as Record<string, number[]>;
        const assigned: TopicPartition[] = [];
        for (const topic of Object.keys(assignment).sort()) {
          for (const partition of [...assignment[topic]].sort((a, b) => a - b)) assigned.push({ topic, partition });
        }
        // A member expelled by its session timeout (a process stalled past it), or a consumer
        // replaced after a crash, joins under a new member id and may get the same partitions
        // back after another member consumed and committed them: the empty assignment goes
        // first, so handlers drop what they hold for them and rebuild from the commit.
        // kafkajs's join event carries no generation, so a generation this member missed
        // without losing its id (its SyncGroup cut short by another rebalance) is not seen.
        const prev = lastJoin;
        lastJoin = { memberId: event.payload.memberId, generationId: null };
        const fresh = prev !== null && !membershipContinues(prev, lastJoin);
        if (fresh) log.warn({ member_id: lastJoin.memberId, previous_member_id: prev.memberId }, 'kafka consumer joined as another member; its partitions are delivered again from the committed offsets');
        logAssignment(log, assigned, opts.ephemeral === true);
        if (!opts.onAssignment) return;
        Promise.resolve()
          .then(() => (fresh ? opts.onAssignment!([]) : undefined))
          .then(() => opts.onAssignment!(assigned))
          .catch((err) => log.error({ err }, 'onAssignment handler failed'));
      });
      c.on(c.events.CRASH, (event) => {
        if (event.payload.restart || stopping || c !== consumer) return;
        log.warn({ err: event.payload.error, restart_in_ms: restartDelay }, 'bus consumer stopped on an error kafkajs does not retry; replacing it');
        scheduleRestart();
      });
      return c;
    };
    const run = async (c: Consumer): Promise<void> => {
      await c.connect();
      await c.subscribe({ topics: opts.topics, fromBeginning: opts.fromBeginning ?? true });
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 6,
        eachBatch,
      });
    };
    const scheduleRestart = (): void => {
      if (stopping || restartTimer) return;
      const delay = restartDelay;
      restartDelay = Math.min(restartDelay * 2, restartBackoffMaxMs);
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        restarting = (async () => {
          const old = consumer;
          await old.disconnect().catch(() => undefined);
          if (stopping) return;
          const c = (consumer = newConsumer());
          try {
            await run(c);
            // A stop while it was starting: stop() disconnected the consumer before this one.
            if (stopping) await c.disconnect();
          } catch (err) {
            await c.disconnect().catch(() => undefined);
            if (stopping) return;
            log.warn({ err, restart_in_ms: restartDelay }, 'bus consumer could not start again; retrying');
            scheduleRestart();
          }
        })();
      }, delay);
    };

    // The first join. A worker may subscribe long after the process started (the speech
    // worker opens its models first, tens of seconds under load); if the broker is away just
    // then, the subscription waits for it (trying again with the same back-off) instead of
    // failing the start of a process that is already serving ingest. Errors that are not
    // about reaching the broker (a topic or group the broker refuses) still fail at once.
    for (;;) {
      consumer = newConsumer();
      try {
        await run(consumer);
        break;
      } catch (err) {
        await consumer.disconnect().catch(() => undefined);
        if (this.closed || !isUnreachable(err)) {
          stopping = true;
          throw err;
        }
        const delay = restartDelay;
        restartDelay = Math.min(restartDelay * 2, restartBackoffMaxMs);
        log.warn({ err, retry_in_ms: delay }, 'bus consumer could not join: the broker is unreachable; trying again');
        await this.closeWaits.pause(delay);
        if (this.closed) {
          stopping = true;
          throw new AttuneError('unavailable', 'the Kafka bus is closed');
        }
      }
    }

    let stopped: Promise<void> | undefined;
    const sub: Subscription = {
      commit: async (topic, partition, offset) => {
        checkCommitOffset(offset);
        await consumer.commitOffsets([{ topic, partition, offset }]);
      },
      stop: () => {
        stopped ??= (async () => {
          stopping = true;
          clearTimeout(restartTimer);
          wakeAll();
          await consumer.disconnect();
          await restarting;
          this.consumers.delete(sub);
        })();
        return stopped;
      },
    };
    this.consumers.add(sub);
    return sub;
  }

  async partitionCount(topic: string): Promise<number> {
    this.checkOpen();
    const meta = await this.admin.fetchTopicMetadata({ topics: [topic] });
    const t = meta.topics.find((x) => x.name === topic);
    if (!t || t.partitions.length === 0) throw new Error(`topic ${topic}: no partitions in the broker's metadata`);
    return t.partitions.length;
  }

  async committed(groupId: string, topic: string): Promise<Map<number, string>> {
    this.checkOpen();
    // A fresh broker answers "coordinator loading" while it creates __consumer_offsets:
    // retriable, so wait it out (bounded) rather than fail the caller.
    let res: Awaited<ReturnType<Admin['fetchOffsets']>>;
    for (let attempt = 0, delay = 100; ; attempt++, delay = Math.min(delay * 2, 2000)) {
      try {
        res = await this.admin.fetchOffsets({ groupId, topics: [topic] });
        break;
      } catch (err) {
        if (!(err as { retriable?: boolean }).retriable || attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    const out = new Map<number, string>();
    for (const t of res) {
      if (t.topic !== topic) continue;
      for (const p of t.partitions) if (p.offset !== '-1' && p.offset !== '') out.set(p.partition, p.offset);
    }
    return out;
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.closeWaits.wakeAll();
      await Promise.all([...this.consumers].map((s) => s.stop().catch((err) => this.opts.log.warn({ err }, 'consumer stop failed'))));
      await Promise.all([this.producer.disconnect(), this.admin.disconnect()]);
    })();
    return this.closing;
  }
}

/** The kafkajs bus: connects a producer and an admin client; consumers connect per subscription. Opened through createKafkaBus (bus/kafka-open.ts). */
export async function createKafkajsBus(opts: KafkaBusOptions): Promise<KafkaBus> {
  const bus = new KafkaBusImpl(opts);
  await bus.connect();
  return bus;
}
