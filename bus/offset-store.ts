// Committed offsets of the embedded bus's consumer groups: one small JSON file per group,
// replaced atomically (write temp file, fsync, rename) so a crash leaves either the old or
// the new offsets. Commits that arrive while a write is in flight are coalesced into the
// next write; each commit resolves once a write containing it is on disk. Each group also
// keeps the time of its last commit (the bus's retention lets a group that has been gone
// longer than its group retention stop holding records, as Kafka's offsets.retention.minutes).
import { mkdir, open, readdir, readFile, rename, stat } from 'node:fs/promises';
import { DIR_MODE, FILE_MODE } from '../lib/data-dir.js';
import { join } from 'node:path';

/** topic → partition → next offset to read. */
export type GroupOffsets = Map<string, Map<number, number>>;

interface GroupFile {
  groupId: string;
  offsets: Record<string, Record<string, string>>;
  /** Epoch ms of the last commit (the bus's clock); files written before it had none: their mtime. */
  lastCommitAt?: number;
}

const fileName = (groupId: string) => `${encodeURIComponent(groupId)}.json`;

export class OffsetStore {
  private readonly groups = new Map<string, GroupOffsets>();
  private readonly lastCommit = new Map<string, number>();
  private readonly writes = new Map<string, { version: number; written: number; running?: Promise<void> }>();

  private constructor(private readonly dir: string | undefined) {}

  /** Loads every group's offsets from `dir`; memory-only without one. */
  static async open(dir: string | undefined): Promise<OffsetStore> {
    const store = new OffsetStore(dir);
    if (!dir) return store;
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const data = JSON.parse(await readFile(join(dir, name), 'utf8')) as GroupFile;
      store.lastCommit.set(data.groupId, data.lastCommitAt ?? (await stat(join(dir, name))).mtimeMs);
      const offsets: GroupOffsets = new Map();
      for (const [topic, parts] of Object.entries(data.offsets)) {
        offsets.set(topic, new Map(Object.entries(parts).map(([p, o]) => [Number(p), Number(o)])));
      }
      store.groups.set(data.groupId, offsets);
    }
    return store;
  }

  get(groupId: string, topic: string, partition: number): number | undefined {
    return this.groups.get(groupId)?.get(topic)?.get(partition);
  }

  topicOffsets(groupId: string, topic: string): Map<number, number> {
    return new Map(this.groups.get(groupId)?.get(topic) ?? []);
  }

  /** When `groupId` last committed (epoch ms), or undefined if it never did. */
  lastCommitAt(groupId: string): number | undefined {
    return this.lastCommit.get(groupId);
  }

  /** Every group that has committed something for `topic`. */
  *groupsOf(topic: string): Iterable<[string, Map<number, number>]> {
    for (const [groupId, offsets] of this.groups) {
      const parts = offsets.get(topic);
      if (parts) yield [groupId, parts];
    }
  }

  async commit(groupId: string, topic: string, partition: number, offset: number, at: number = Date.now()): Promise<void> {
    this.lastCommit.set(groupId, at);
    let offsets = this.groups.get(groupId);
    if (!offsets) this.groups.set(groupId, (offsets = new Map()));
    let parts = offsets.get(topic);
    if (!parts) offsets.set(topic, (parts = new Map()));
    parts.set(partition, offset);
    if (!this.dir) return;
    let w = this.writes.get(groupId);
    if (!w) this.writes.set(groupId, (w = { version: 0, written: 0 }));
    const mine = ++w.version;
    while (w.written < mine) {
      w.running ??= this.write(groupId, w);
      await w.running;
    }
  }

  private async write(groupId: string, w: { version: number; written: number; running?: Promise<void> }): Promise<void> {
    try {
      const version = w.version;
      const data: GroupFile = { groupId, offsets: {}, lastCommitAt: this.lastCommit.get(groupId) };
      for (const [topic, parts] of this.groups.get(groupId) ?? []) {
        data.offsets[topic] = Object.fromEntries([...parts].map(([p, o]) => [String(p), String(o)]));
      }
      const target = join(this.dir!, fileName(groupId));
      const tmp = `${target}.tmp`;
      const fh = await open(tmp, 'w', FILE_MODE);
      try {
        await fh.writeFile(JSON.stringify(data));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, target);
      w.written = version;
    } finally {
      w.running = undefined;
    }
  }
}
