// The bus: keyed publish and consume, the one interface both the Kafka adapter and the
// embedded in-process log implement. Semantics follow Kafka's so that code written
// against the embedded bus behaves the same when scaled out:
//  - a record's partition is chosen from its key (same partitioner as kafkajs), so records
//    with one key keep their order;
//  - consumers join a group; a group's members share the partitions; each group has its
//    own committed offsets;
//  - offsets are committed explicitly (at-least-once): a consumer commits the offset of the
//    next record it wants after a restart, which may lag what it has processed.

export interface OutgoingRecord {
  key: string;
  value: Buffer;
  headers?: Record<string, string>;
  /** Event time in ms since the epoch; the bus's append time when absent. */
  timestamp?: number;
}

export interface BusRecord {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit; kept as decimal strings as kafkajs does. */
  offset: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  timestamp: number;
}

export interface RecordBatch {
  topic: string;
  partition: number;
  records: BusRecord[];
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  /**
   * Kafka keeps the latest record of each key (cleanup.policy=compact): for topics of
   * entity states. The embedded log keeps every record, which reads the same.
   */
  compacted?: boolean;
  /**
   * How long Kafka keeps records, ms (retention.ms), for topics only live readers need.
   * Default: the broker's. The embedded log already drops what no committing group needs.
   */
  retentionMs?: number;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface SubscribeOptions {
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts: the earliest record (default) or only new ones. */
  fromBeginning?: boolean;
  /**
   * Called with the records of one partition, in offset order. The next batch of that
   * partition is not delivered until the promise settles. A rejection is logged and the
   * same records are delivered again (after a back-off), so handlers must be idempotent.
   */
  eachBatch: (batch: RecordBatch) => Promise<void>;
  /**
   * The group never commits and nothing replays it (live fan-out): the embedded log may
   * drop what it has handled. Kafka keeps records by time anyway.
   */
  ephemeral?: boolean;
  /**
   * Called when this member's partitions change (before any batch of the new set). A partition
   * in two calls in a row was this member's in between, as far as the client can tell: when the
   * membership was interrupted (the member expelled and rejoined, its consumer replaced), an
   * empty assignment is reported first, so state kept for a partition is dropped and rebuilt
   * from the commit.
   */
  onAssignment?: (assigned: TopicPartition[]) => void | Promise<void>;
}

export interface Subscription {
  /** Commits `offset` (the next offset to read) for a partition of this group. */
  commit(topic: string, partition: number, offset: string): Promise<void>;
  /** Leaves the group and stops delivery; resolves once no handler is running. */
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'kafka' | 'embedded';
  /** Creates the topics if they do not exist (idempotent). */
  ensureTopics(specs: TopicSpec[]): Promise<void>;
  /** Appends records; resolves once the bus has them durably (acks=all on Kafka). */
  publish(topic: string, records: OutgoingRecord[]): Promise<void>;
  subscribe(opts: SubscribeOptions): Promise<Subscription>;
  /** Committed offsets of a group (for lag metrics and tests). */
  committed(groupId: string, topic: string): Promise<Map<number, string>>;
  /**
   * How many partitions an existing topic has now (the broker's metadata; a topic's count only
   * grows): for records every partition must see (a marker for a session whose readings may be
   * in any partition).
   */
  partitionCount(topic: string): Promise<number>;
  close(): Promise<void>;
}
