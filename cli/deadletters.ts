// `attune deadletters`: prints the dead letters of a deployment (its ATTUNE_TOPIC_PREFIX) on
// Kafka, one JSON object a line, oldest first in each partition: where the record came from
// (topic, partition, offset, and its index in a batch record), the catalogued reason, the free
// text, the consumer group that gave up on it, when, the key, and the original value (base64,
// and decoded when it is an Avro record Attune knows). Dead letters are Avro on the topic, so
// kcat shows their headers but not their body; this reads both, with no tool beyond Attune.
//
// It reads under a group of its own that never commits (nothing is consumed for anyone else)
// and stops once no record has come for --idle-ms (default 3000) after the last one (or after
// its group's assignment, when there is none), or after --limit lines. --reason filters on the reason code.
import { randomUUID } from 'node:crypto';
import type { AttuneConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { Bus, BusRecord } from '../bus/types.js';
import { decodeRecord, type Codec } from '../schemas/registry/codec.js';
import { prefixedTopics } from '../schemas/topics.js';
import type { DeadLetter } from '../schemas/registry/schemas.js';

export interface DeadLetterLine {
  topic: string;
  partition: number;
  offset: string;
  reason_code: string;
  reason: string;
  consumer_group: string;
  failed_at: string;
  source_topic: string;
  source_partition: number;
  source_offset: string;
  /** The reading's index in a batch record (header attune-source-index), else null. */
  source_index: number | null;
  key: string;
  /** The original value, base64. */
  value_base64: string;
  /** The original value decoded, when it is an Avro record of Attune's; else null (undecodable). */
  value: unknown;
}

/** A decoded dead letter (the schema's, its timestamp as the decoder may give it). */
type DeadLetterValue = Omit<DeadLetter, 'failed_at'> & { failed_at: number | Date };

/** A dead letter record as one line (headers when its body cannot be read). */
export async function deadLetterLine(codec: Codec, rec: BusRecord): Promise<DeadLetterLine> {
  const h = rec.headers;
  let v: DeadLetterValue | null = null;
  try {
    v = await decodeRecord<DeadLetterValue>(codec, rec.value);
  } catch {
    v = null;
  }
  const original = v ? Buffer.from(v.value) : null;
  let decoded: unknown = null;
  if (original) {
    try {
      decoded = await decodeRecord(codec, original);
    } catch {
      decoded = null;
    }
  }
  const failedAt = v ? new Date(v.failed_at).toISOString() : (h['attune-failed-at'] ?? '');
  const index = h['attune-source-index'];
  return {
    topic: rec.topic,
    partition: rec.partition,
    offset: rec.offset,
    reason_code: v?.reason_code ?? h['attune-reason'] ?? 'unknown',
    reason: v?.reason ?? '',
    consumer_group: v?.consumer_group ?? h['attune-consumer-group'] ?? '',
    failed_at: failedAt,
    source_topic: v?.source_topic ?? h['attune-source-topic'] ?? '',
    source_partition: v ? v.source_partition : Number(h['attune-source-partition'] ?? -1),
    source_offset: v?.source_offset ?? h['attune-source-offset'] ?? '',
    source_index: index === undefined ? null : Number(index),
    key: v?.key ?? rec.key,
    value_base64: original ? original.toString('base64') : '',
    value: decoded,
  };
}

/** JSON with Buffers as base64 and bigints as strings (decoded Avro values may hold both). */
function toJson(line: DeadLetterLine): string {
  return JSON.stringify(line, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) return Buffer.from((v as { data: number[] }).data).toString('base64');
    return v;
  });
}

/** How long the reader waits for its group's assignment before it gives up (the --idle-ms span counts from there). */
export const DEFAULT_JOIN_WAIT_MS = 60_000;

export interface DeadLettersOptions {
  reason?: string;
  limit?: number;
  /** Stop after this long without a record, counted from the group's assignment. */
  idleMs: number;
  /** At most this long for the assignment (default DEFAULT_JOIN_WAIT_MS). */
  joinWaitMs?: number;
  write: (line: string) => void;
}

/** Prints the deployment's dead letters; resolves with how many were printed. */
export async function printDeadLetters(config: AttuneConfig, log: Logger, opts: DeadLettersOptions, open: { bus: Bus; codec: Codec }): Promise<number> {
  const { bus, codec } = open;
  const topic = prefixedTopics(config.topicPrefix).deadLetter;
  let printed = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  // The idle span counts from the group's assignment, not from the subscribe: joining a new
  // group takes a while on Kafka (a broker's group.initial.rebalance.delay.ms is 3 s by
  // default), and until 12-06 the default --idle-ms of 3 s ran out during the join, printing
  // nothing where dead letters were. The join itself is bounded apart (joinWaitMs).
  let assigned = false;
  let idle: NodeJS.Timeout = setTimeout(() => {
    log.warn({ topic, waited_ms: opts.joinWaitMs ?? DEFAULT_JOIN_WAIT_MS }, 'dead letters: no partition of the topic was assigned in time; nothing read');
    done();
  }, Math.max(opts.idleMs, opts.joinWaitMs ?? DEFAULT_JOIN_WAIT_MS));
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(done, opts.idleMs);
  };
  const sub = await bus.subscribe({
    groupId: `${config.topicPrefix}attune-deadletters-reader-${randomUUID().slice(0, 8)}`,
    topics: [topic],
    fromBeginning: true,
    ephemeral: true,
    onAssignment: (parts) => {
      if (assigned || !parts.some((x) => x.topic === topic)) return;
      assigned = true;
      touch();
    },
    eachBatch: async (batch) => {
      assigned = true;
      touch();
      for (const rec of batch.records) {
        if (opts.limit !== undefined && printed >= opts.limit) return done();
        const line = await deadLetterLine(codec, rec);
        if (opts.reason && line.reason_code !== opts.reason) continue;
        opts.write(toJson(line) + '\n');
        printed++;
      }
      if (opts.limit !== undefined && printed >= opts.limit) done();
    },
  });
  try {
    await finished;
  } finally {
    clearTimeout(idle);
    await sub.stop();
  }
  log.debug({ topic, printed }, 'dead letters printed');
  return printed;
}
