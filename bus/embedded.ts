// The embedded bus: Kafka's model (topics of partitions, keyed partitioning, consumer
// groups with explicit commits) inside one process, for `attune all` and for tests.
//
// Storage. Without `dir` the log lives in memory only. With `dir` every record is
// appended to segment files (bus/segment-log.ts) and `publish` resolves after fdatasync;
// committed offsets live in one file per group (bus/offset-store.ts). Records become
// visible to consumers only once durable, so nothing a consumer saw can vanish in a crash.
//
// Memory and back-pressure (what happens when consumers stall):
//  - with `dir`, the disk is the buffer: memory keeps only the newest
//    `memoryBytesPerPartition` of each partition; a consumer that falls behind that tail
//    reads from the segment files. Publishing never waits for consumers; disk use grows
//    while a group stalls, since retention deletes only what every group has committed.
//  - without `dir`, a partition holds at most `memoryBytesPerPartition`. When full,
//    records every group has committed are dropped at once (ignoring their age); if that
//    is not enough, `publish` waits for consumers to commit, and after `publishTimeoutMs`
//    rejects with `unavailable` (reason `bus_full`).
//
// Retention: a record may be deleted once it is below every group's committed offset
// (or the start position of a live member that has not committed yet) and older than
// `retentionMs`. On disk, whole closed segments are deleted; segments roll by size or age.
// A group with no member whose last commit is older than `groupRetentionMs` (7 days, as
// Kafka's offsets.retention.minutes) no longer holds records: a consumer that was removed or
// renamed (a role turned off, another topic prefix) would otherwise keep every record from
// its last commit on, for ever. If it comes back, it starts from the earliest record kept.
//
// Consumption follows the Bus contract: members of a group split the partitions (assigned
// round-robin per topic in join order; a join or leave moves only the partitions that
// change owner, after their old owner's running handler has finished), each partition
// delivers one batch at a time in offset order, and a rejected handler gets the same
// records again after a back-off that doubles up to `retryBackoffMaxMs`. A member that is
// given a partition starts at the group's committed offset, or, without one, at the
// earliest record (fromBeginning, the default) or at the end.
// Handlers must not await `stop()` of their own subscription (it waits for them).
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { DIR_MODE, FILE_MODE } from '../lib/data-dir.js';
import { join } from 'node:path';
import type { Logger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import { partitionForKey } from './partitioner.js';
import { encodedSize, writeRecord, type StoredRecord } from './record-format.js';
import { SegmentLog } from './segment-log.js';
import { OffsetStore } from './offset-store.js';
import type {
  Bus,
  BusRecord,
  OutgoingRecord,
  RecordBatch,
  SubscribeOptions,
  Subscription,
  TopicPartition,
  TopicSpec,
} from './types.js';

export interface EmbeddedBusOptions {
  /** Directory for segment files and group offsets; memory-only when absent. */
  dir?: string;
  /** Partitions of topics created implicitly by publish/subscribe (default 6). */
  defaultPartitions?: number;
  log: Logger;
  /** How long consumed records are kept (default 1 h). */
  retentionMs?: number;
  /** How often retention runs (default 10 s). */
  retentionCheckMs?: number;
  /** How long a group with no member keeps holding records after its last commit (default 7 days). */
  groupRetentionMs?: number;
  /** Segment roll size (default 64 MiB) and age (default retentionMs / 6). */
  segmentBytes?: number;
  segmentMs?: number;
  /** In-memory tail per partition (with dir) or cap per partition (without); default 16 MiB. */
  memoryBytesPerPartition?: number;
  /** Memory-only: how long publish waits for room before rejecting (default 30 s). */
  publishTimeoutMs?: number;
  /** Largest batch handed to eachBatch (defaults 5000 records, 4 MiB). */
  maxBatchRecords?: number;
  maxBatchBytes?: number;
  /** Back-off after a rejected handler: first delay and cap (defaults 200 ms, 5 s). */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Clock, for retention tests. */
  now?: () => number;
}

export interface PartitionStats {
  topic: string;
  partition: number;
  startOffset: number;
  nextOffset: number;
  memoryRecords: number;
  memoryBytes: number;
  segments: number;
  diskBytes: number;
}

export interface EmbeddedBus extends Bus {
  readonly kind: 'embedded';
  /** Runs retention now (it also runs every retentionCheckMs). */
  enforceRetention(): Promise<void>;
  stats(): PartitionStats[];
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
/** Fixed per-record overhead counted against the memory budget (object, strings, arrays). */
const RECORD_OVERHEAD_BYTES = 160;
/** Placeholder for an evicted record's slot until the array is compacted (never read: reads start at head). */
const EVICTED = Object.freeze({ topic: '', partition: -1, offset: '-1', key: '', value: Buffer.alloc(0), headers: {}, timestamp: 0 }) as BusRecord;

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

class Partition {
  /** In-memory tail: records[head + i] has offset memStart + i. */
  private records: BusRecord[] = [];
  private appendTimes: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  memStart: number;
  nextOffset: number;
  /** Consumers see offsets below this: on disk (or appended, when memory-only). */
  durableEnd: number;
  memBytes = 0;
  private dataSignal: Deferred | undefined;

  constructor(
    readonly topic: string,
    readonly index: number,
    readonly log: SegmentLog | undefined,
  ) {
    this.nextOffset = log ? log.nextOffset : 0;
    this.memStart = this.nextOffset;
    this.durableEnd = this.nextOffset;
  }

  get startOffset(): number {
    return this.log ? this.log.startOffset : this.memStart;
  }

  get memRecords(): number {
    return this.records.length - this.head;
  }

  /** Appends records (assigning offsets now, so order is publish order); resolves when durable. */
  append(list: OutgoingRecord[], now: number): Promise<void> | undefined {
    const first = this.nextOffset;
    const stored: StoredRecord[] | undefined = this.log ? new Array(list.length) : undefined;
    let diskBytes = 0;
    for (let i = 0; i < list.length; i++) {
      const r = list[i];
      const headers = r.headers ?? {};
      const rec: BusRecord = {
        topic: this.topic,
        partition: this.index,
        offset: String(this.nextOffset),
        key: r.key,
        value: r.value,
        headers,
        timestamp: r.timestamp ?? now,
      };
      const size = encodedSize(r.key, r.value, headers);
      this.records.push(rec);
      this.appendTimes.push(now);
      this.sizes.push(size + RECORD_OVERHEAD_BYTES);
      this.memBytes += size + RECORD_OVERHEAD_BYTES;
      if (stored) {
        stored[i] = { offset: this.nextOffset, key: r.key, value: r.value, headers, timestamp: rec.timestamp, appendTime: now };
        diskBytes += size;
      }
      this.nextOffset++;
    }
    const end = this.nextOffset;
    if (!this.log || !stored) {
      this.advanceDurable(end);
      return undefined;
    }
    const buf = Buffer.allocUnsafe(diskBytes);
    let pos = 0;
    for (const s of stored) pos = writeRecord(buf, pos, s);
    return this.log.append(buf, first, end, now).then(() => this.advanceDurable(end));
  }

  private advanceDurable(end: number): void {
    if (end <= this.durableEnd) return;
    this.durableEnd = end;
    const signal = this.dataSignal;
    this.dataSignal = undefined;
    signal?.resolve();
  }

  /** Resolves once offsets at or above `offset` are readable. */
  waitForData(offset: number): Promise<void> {
    if (offset < this.durableEnd) return Promise.resolve();
    this.dataSignal ??= deferred();
    return this.dataSignal.promise;
  }

  /** Drops the oldest in-memory records while `drop(offset, appendTime)` says so. */
  evictWhile(drop: (offset: number, appendTime: number) => boolean): void {
    while (this.head < this.records.length && drop(this.memStart, this.appendTimes[this.head])) {
      this.memBytes -= this.sizes[this.head];
      // Let go of the record now, not at the next compaction: with 64 KB audio frames, 1024
      // evicted records would otherwise keep 64 MB alive per partition.
      this.records[this.head] = EVICTED;
      this.head++;
      this.memStart++;
    }
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.appendTimes = this.appendTimes.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  /** Keeps the on-disk partition's memory tail within `cap`, dropping only durable records. */
  trimCache(cap: number): void {
    const start = this.startOffset;
    this.evictWhile((offset) => offset < start || (this.memBytes > cap && offset < this.durableEnd));
  }

  async read(from: number, maxRecords: number, maxBytes: number): Promise<BusRecord[]> {
    const end = this.durableEnd;
    if (from >= end) return [];
    if (from >= this.memStart) {
      const first = this.head + (from - this.memStart);
      const last = Math.min(this.head + (end - this.memStart), first + maxRecords);
      let i = first;
      let bytes = 0;
      while (i < last && (i === first || bytes < maxBytes)) bytes += this.sizes[i++];
      return this.records.slice(first, i);
    }
    if (!this.log) return [];
    const stored = await this.log.read(from, Math.min(maxRecords, end - from), maxBytes);
    return stored.map((s) => ({
      topic: this.topic,
      partition: this.index,
      offset: String(s.offset),
      key: s.key,
      value: s.value,
      headers: s.headers,
      timestamp: s.timestamp,
    }));
  }
}

interface Topic {
  name: string;
  partitions: Partition[];
}

/** One member's delivery loop over one partition. */
class PartitionConsumer {
  private stopping = false;
  private readonly stopSignal = deferred();
  private done: Promise<void> | undefined;
  position: number;

  constructor(
    private readonly bus: EmbeddedBusImpl,
    readonly member: Member,
    readonly partition: Partition,
    readonly startPosition: number,
  ) {
    this.position = startPosition;
  }

  start(): void {
    this.done = this.run().catch((err) => {
      this.bus.log.error({ err, topic: this.partition.topic, partition: this.partition.index }, 'bus delivery loop failed');
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopSignal.resolve();
    await this.done;
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      void this.stopSignal.promise.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async run(): Promise<void> {
    const { partition, member } = this;
    const { maxBatchRecords, maxBatchBytes, retryBackoffMs, retryBackoffMaxMs } = this.bus.limits;
    let retry: BusRecord[] | undefined;
    let backoff = retryBackoffMs;
    // Deliver nothing before subscribe() has resolved, so a handler can already use the
    // Subscription (to commit) in its first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (!this.stopping) {
      let records: BusRecord[];
      if (retry) {
        records = retry;
      } else {
        const start = partition.startOffset;
        if (this.position < start) {
          this.bus.log.warn(
            { topic: partition.topic, partition: partition.index, group: member.group.id, from: this.position, to: start },
            'records were deleted by retention before this group read them; skipping ahead',
          );
          this.position = start;
        }
        if (this.position >= partition.durableEnd) {
          await Promise.race([partition.waitForData(this.position), this.stopSignal.promise]);
          continue;
        }
        records = await partition.read(this.position, maxBatchRecords, maxBatchBytes);
        if (records.length === 0) {
          // Only when retention deleted the segment under a read: re-check the start.
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
      }
      if (this.stopping) break;
      const batch: RecordBatch = { topic: partition.topic, partition: partition.index, records };
      try {
        await member.opts.eachBatch(batch);
        this.position = Number(records[records.length - 1].offset) + 1;
        retry = undefined;
        backoff = retryBackoffMs;
      } catch (err) {
        this.bus.log.warn(
          {
            err,
            topic: partition.topic,
            partition: partition.index,
            group: member.group.id,
            first_offset: records[0].offset,
            records: records.length,
            retry_in_ms: backoff,
          },
          'bus handler rejected a batch; delivering it again',
        );
        retry = records;
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, retryBackoffMaxMs);
      }
    }
  }
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class Member {
  stopped = false;
  stopping: Promise<void> | undefined;
  readonly consumers = new Map<string, PartitionConsumer>();
  announced: string | undefined;
  constructor(
    readonly seq: number,
    readonly group: Group,
    readonly opts: SubscribeOptions,
  ) {}
}

class Group {
  readonly members: Member[] = [];
  private chain: Promise<void> = Promise.resolve();
  constructor(readonly id: string) {}

  /** Runs membership changes one at a time. */
  serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

interface Limits {
  maxBatchRecords: number;
  maxBatchBytes: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
}

class EmbeddedBusImpl implements EmbeddedBus {
  readonly kind = 'embedded' as const;
  readonly log: Logger;
  readonly limits: Limits;
  private readonly topics = new Map<string, Promise<Topic>>();
  private readonly openTopics = new Map<string, Topic>();
  private readonly groups = new Map<string, Group>();
  private offsets!: OffsetStore;
  private memberSeq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRunning: Promise<void> | undefined;
  private spaceSignal: Deferred | undefined;
  private readonly now: () => number;
  private readonly defaultPartitions: number;
  private readonly retentionMs: number;
  private readonly groupRetentionMs: number;
  private readonly memoryCap: number;
  private readonly publishTimeoutMs: number;
  private readonly segmentBytes: number;
  private readonly segmentMs: number;

  constructor(private readonly opts: EmbeddedBusOptions) {
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.defaultPartitions = opts.defaultPartitions ?? 6;
    this.retentionMs = opts.retentionMs ?? 60 * 60 * 1000;
    this.groupRetentionMs = opts.groupRetentionMs ?? 7 * 24 * 3600 * 1000;
    this.memoryCap = opts.memoryBytesPerPartition ?? 16 * 1024 * 1024;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 30_000;
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.segmentMs = opts.segmentMs ?? Math.max(1000, Math.floor(this.retentionMs / 6));
    this.limits = {
      maxBatchRecords: opts.maxBatchRecords ?? 5000,
      maxBatchBytes: opts.maxBatchBytes ?? 4 * 1024 * 1024,
      retryBackoffMs: opts.retryBackoffMs ?? 200,
      retryBackoffMaxMs: opts.retryBackoffMaxMs ?? 5000,
    };
  }

  async open(): Promise<void> {
    const dir = this.opts.dir;
    this.offsets = await OffsetStore.open(dir ? join(dir, 'groups') : undefined);
    if (dir) {
      const topicsDir = join(dir, 'topics');
      await mkdir(topicsDir, { recursive: true, mode: DIR_MODE });
      for (const name of await readdir(topicsDir)) {
        let meta: { partitions: number };
        try {
          meta = JSON.parse(await readFile(join(topicsDir, name, 'topic.json'), 'utf8')) as { partitions: number };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // creation never finished
          throw err;
        }
        this.topics.set(name, this.openTopic(name, meta.partitions));
      }
      await Promise.all(this.topics.values());
    }
    const every = this.opts.retentionCheckMs ?? 10_000;
    this.retentionTimer = setInterval(() => void this.enforceRetention(), every);
    this.retentionTimer.unref();
  }

  private async openTopic(name: string, partitions: number): Promise<Topic> {
    const parts: Partition[] = [];
    for (let p = 0; p < partitions; p++) {
      const log = this.opts.dir
        ? await SegmentLog.open({
            dir: join(this.opts.dir, 'topics', name, String(p)),
            segmentBytes: this.segmentBytes,
            segmentMs: this.segmentMs,
            log: this.log,
            now: this.now,
          })
        : undefined;
      parts.push(new Partition(name, p, log));
    }
    const topic = { name, partitions: parts };
    this.openTopics.set(name, topic);
    return topic;
  }

  private async createTopic(name: string, partitions: number): Promise<Topic> {
    if (this.opts.dir) {
      const topicDir = join(this.opts.dir, 'topics', name);
      await mkdir(topicDir, { recursive: true, mode: DIR_MODE });
      const tmp = join(topicDir, 'topic.json.tmp');
      const fh = await open(tmp, 'w', FILE_MODE);
      try {
        await fh.writeFile(JSON.stringify({ topic: name, partitions }));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(topicDir, 'topic.json'));
    }
    this.log.debug({ topic: name, partitions }, 'bus topic created');
    return this.openTopic(name, partitions);
  }

  private checkOpen(): void {
    if (this.closed) throw new AttuneError('unavailable', 'the embedded bus is closed');
  }

  private topic(name: string, partitions = this.defaultPartitions): Promise<Topic> {
    let t = this.topics.get(name);
    if (!t) {
      if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
        return Promise.reject(
          new AttuneError('validation_error', `invalid topic name ${JSON.stringify(name)}`, [{ field: 'topic', reason: 'invalid_topic_name' }]),
        );
      }
      if (!Number.isInteger(partitions) || partitions < 1) {
        return Promise.reject(new AttuneError('validation_error', `topic ${name} needs at least one partition`, [{ field: 'partitions', reason: 'invalid_argument' }]));
      }
      t = this.createTopic(name, partitions);
      this.topics.set(name, t);
      t.catch(() => this.topics.delete(name));
    }
    return t;
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.checkOpen();
    await Promise.all(
      specs.map(async (spec) => {
        const t = await this.topic(spec.topic, spec.partitions);
        if (t.partitions.length !== spec.partitions) {
          this.log.warn({ topic: spec.topic, existing: t.partitions.length, requested: spec.partitions }, 'topic exists with another partition count; keeping it');
        }
      }),
    );
  }

  async publish(topicName: string, records: OutgoingRecord[]): Promise<void> {
    this.checkOpen();
    const t = await this.topic(topicName);
    if (records.length === 0) return;
    const n = t.partitions.length;
    const byPartition: OutgoingRecord[][] = new Array(n);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (typeof r.key !== 'string' || !Buffer.isBuffer(r.value)) {
        throw new AttuneError('validation_error', `record ${i} needs a string key and a Buffer value`, [{ index: i, reason: 'invalid_record' }]);
      }
      const p = n === 1 ? 0 : partitionForKey(r.key, n);
      (byPartition[p] ??= []).push(r);
    }
    if (!this.opts.dir) await this.admit(t, byPartition);
    const now = this.now();
    const pending: Promise<void>[] = [];
    for (let p = 0; p < n; p++) {
      const list = byPartition[p];
      if (!list) continue;
      const partition = t.partitions[p];
      const written = partition.append(list, now);
      if (written) pending.push(written.then(() => partition.trimCache(this.memoryCap)));
    }
    if (pending.length > 0) await Promise.all(pending);
  }

  /** Memory-only back-pressure: waits until every target partition has room. */
  private async admit(t: Topic, byPartition: OutgoingRecord[][]): Promise<void> {
    const deadline = this.now() + this.publishTimeoutMs;
    for (;;) {
      let blocked: Partition | undefined;
      for (let p = 0; p < byPartition.length && !blocked; p++) {
        const list = byPartition[p];
        if (!list) continue;
        const partition = t.partitions[p];
        let incoming = 0;
        for (const r of list) incoming += encodedSize(r.key, r.value, r.headers ?? {}) + RECORD_OVERHEAD_BYTES;
        if (partition.memBytes + incoming <= this.memoryCap) continue;
        const floor = this.retentionFloor(partition);
        partition.evictWhile((offset) => partition.memBytes + incoming > this.memoryCap && offset < floor);
        if (partition.memBytes > 0 && partition.memBytes + incoming > this.memoryCap) blocked = partition;
      }
      if (!blocked) return;
      const left = deadline - this.now();
      if (left <= 0 || this.closed) {
        throw new AttuneError('unavailable', `bus partition ${t.name}/${blocked.index} is full: its consumers are not keeping up`, [
          { reason: 'bus_full', topic: t.name, partition: blocked.index },
        ]);
      }
      this.spaceSignal ??= deferred();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.spaceSignal.promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
  }

  private signalSpace(): void {
    const s = this.spaceSignal;
    this.spaceSignal = undefined;
    s?.resolve();
  }

  /**
   * Lowest offset some group still needs: committed (unless the group is expired: no member,
   * last commit over groupRetentionMs ago), or where a live member of an uncommitted group is.
   */
  private retentionFloor(partition: Partition): number {
    let floor = Infinity;
    const groupsSeen = new Set<string>();
    const expiredBefore = this.now() - this.groupRetentionMs;
    for (const [groupId, parts] of this.offsets.groupsOf(partition.topic)) {
      const c = parts.get(partition.index);
      if (c !== undefined) {
        if (!this.groups.get(groupId)?.members.length && (this.offsets.lastCommitAt(groupId) ?? 0) < expiredBefore) continue;
        floor = Math.min(floor, c);
        groupsSeen.add(groupId);
      }
    }
    const key = tpKey(partition.topic, partition.index);
    for (const group of this.groups.values()) {
      if (groupsSeen.has(group.id)) continue;
      for (const m of group.members) {
        const c = m.consumers.get(key);
        // A member that never commits (an ephemeral subscription, such as live fan-out) holds
        // only what it has not handled yet; any other holds from where it started.
        if (c) floor = Math.min(floor, m.opts.ephemeral ? c.position : c.startPosition);
      }
    }
    return floor;
  }

  async enforceRetention(): Promise<void> {
    if (this.closed) return;
    this.retentionRunning ??= this.runRetention().finally(() => (this.retentionRunning = undefined));
    return this.retentionRunning;
  }

  private async runRetention(): Promise<void> {
    const cutoff = this.now() - this.retentionMs;
    for (const tp of this.topics.values()) {
      const t = await tp;
      for (const partition of t.partitions) {
        const floor = this.retentionFloor(partition);
        if (partition.log) {
          const deleted = await partition.log.deleteSegments((seg) => seg.nextOffset <= floor && seg.lastAppendTime < cutoff);
          if (deleted > 0) {
            this.log.debug({ topic: t.name, partition: partition.index, segments: deleted, start: partition.startOffset }, 'bus retention deleted segments');
          }
          partition.trimCache(this.memoryCap);
        } else {
          partition.evictWhile((offset, appendTime) => offset < floor && appendTime < cutoff);
        }
      }
    }
    this.signalSpace();
  }

  async subscribe(opts: SubscribeOptions): Promise<Subscription> {
    this.checkOpen();
    if (!opts.groupId) throw new AttuneError('validation_error', 'groupId is required', [{ field: 'groupId', reason: 'required' }]);
    if (opts.topics.length === 0) throw new AttuneError('validation_error', 'subscribe needs at least one topic', [{ field: 'topics', reason: 'required' }]);
    await Promise.all(opts.topics.map((name) => this.topic(name)));
    let group = this.groups.get(opts.groupId);
    if (!group) this.groups.set(opts.groupId, (group = new Group(opts.groupId)));
    const member = new Member(++this.memberSeq, group, { ...opts, topics: [...new Set(opts.topics)] });
    const g = group;
    await g.serial(async () => {
      g.members.push(member);
      await this.rebalance(g);
    });
    return {
      commit: (topic, partition, offset) => this.commit(member, topic, partition, offset),
      stop: () => this.leave(member),
    };
  }

  private async rebalance(group: Group): Promise<void> {
    const members = group.members;
    const wanted = new Map<Member, TopicPartition[]>(members.map((m) => [m, []]));
    const topicNames = [...new Set(members.flatMap((m) => m.opts.topics))].sort();
    for (const name of topicNames) {
      const t = await this.topic(name);
      const eligible = members.filter((m) => m.opts.topics.includes(name));
      for (let p = 0; p < t.partitions.length; p++) wanted.get(eligible[p % eligible.length])!.push({ topic: name, partition: p });
    }
    // Revoke first, so no partition ever has two running handlers.
    await Promise.all(
      members.map(async (m) => {
        const keep = new Set(wanted.get(m)!.map((tp) => tpKey(tp.topic, tp.partition)));
        const revoked = [...m.consumers].filter(([key]) => !keep.has(key));
        await Promise.all(revoked.map(([, c]) => c.stop()));
        for (const [key] of revoked) m.consumers.delete(key);
      }),
    );
    for (const m of members) {
      const assigned = wanted.get(m)!;
      const signature = assigned.map((tp) => tpKey(tp.topic, tp.partition)).join('\u0001');
      if (signature !== m.announced) {
        m.announced = signature;
        try {
          await m.opts.onAssignment?.(assigned.map((tp) => ({ ...tp })));
        } catch (err) {
          this.log.error({ err, group: group.id }, 'onAssignment handler failed');
        }
      }
      for (const tp of assigned) {
        const key = tpKey(tp.topic, tp.partition);
        if (m.consumers.has(key)) continue;
        const partition = (await this.topic(tp.topic)).partitions[tp.partition];
        const committed = this.offsets.get(group.id, tp.topic, tp.partition);
        const start = committed ?? (m.opts.fromBeginning === false ? partition.durableEnd : partition.startOffset);
        const c = new PartitionConsumer(this, m, partition, start);
        m.consumers.set(key, c);
        c.start();
      }
    }
  }

  private leave(member: Member): Promise<void> {
    member.stopping ??= member.group.serial(async () => {
      member.stopped = true;
      await Promise.all([...member.consumers.values()].map((c) => c.stop()));
      member.consumers.clear();
      const i = member.group.members.indexOf(member);
      if (i >= 0) member.group.members.splice(i, 1);
      if (!this.closed && member.group.members.length > 0) await this.rebalance(member.group);
      this.signalSpace();
    });
    return member.stopping;
  }

  private async commit(member: Member, topic: string, partition: number, offset: string): Promise<void> {
    if (!/^\d{1,15}$/.test(offset)) {
      throw new AttuneError('validation_error', `offset must be a non-negative integer string, got ${JSON.stringify(offset)}`, [{ field: 'offset', reason: 'invalid_offset' }]);
    }
    if (member.stopped || !member.consumers.has(tpKey(topic, partition))) {
      throw new AttuneError('conflict', `${topic}/${partition} is not assigned to this member of group ${member.group.id}`, [
        { reason: 'not_assigned', topic, partition },
      ]);
    }
    await this.offsets.commit(member.group.id, topic, partition, Number(offset), this.now());
    this.signalSpace();
  }

  async committed(groupId: string, topic: string): Promise<Map<number, string>> {
    return new Map([...this.offsets.topicOffsets(groupId, topic)].map(([p, o]) => [p, String(o)]));
  }

  async partitionCount(topic: string): Promise<number> {
    this.checkOpen();
    return (await this.topic(topic)).partitions.length;
  }

  stats(): PartitionStats[] {
    const out: PartitionStats[] = [];
    for (const t of this.openTopics.values()) {
      for (const p of t.partitions) {
        out.push({
          topic: t.name,
          partition: p.index,
          startOffset: p.startOffset,
          nextOffset: p.nextOffset,
          memoryRecords: p.memRecords,
          memoryBytes: p.memBytes,
          segments: p.log?.segmentCount ?? 0,
          diskBytes: p.log?.sizeBytes ?? 0,
        });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearInterval(this.retentionTimer);
      const members = [...this.groups.values()].flatMap((g) => g.members);
      await Promise.all(members.map((m) => this.leave(m)));
      await this.retentionRunning;
      this.signalSpace();
      for (const tp of this.topics.values()) {
        const t = await tp.catch(() => undefined);
        if (t) await Promise.all(t.partitions.map((p) => p.log?.close()));
      }
    })();
    return this.closing;
  }
}

/** Opens the embedded bus (reading back topics, records and offsets from `dir`). */
export async function createEmbeddedBus(opts: EmbeddedBusOptions): Promise<EmbeddedBus> {
  const bus = new EmbeddedBusImpl(opts);
  await bus.open();
  return bus;
}
