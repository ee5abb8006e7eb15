// One partition's append-only log on disk: a directory of segment files named by the
// offset of their first record. Writes are grouped: while one write+fdatasync is in
// flight, later appends queue up and go out together in one writev and one fdatasync
// (group commit), so `append` resolves once its records are on disk and a busy
// partition pays one sync per round trip, not per publish.
// On open every segment is scanned; a torn last record (crash mid-write) is cut off.
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { DIR_MODE, FILE_MODE } from '../lib/data-dir.js';
import { join } from 'node:path';
import type { Logger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import { readRecord, type StoredRecord } from './record-format.js';

/** A sparse offset → file position entry every this many bytes bounds the scan of a read. */
const INDEX_INTERVAL_BYTES = 64 * 1024;
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;
const MIN_READ_BYTES = 64 * 1024;

export interface Segment {
  baseOffset: number;
  path: string;
  /** Bytes known to be on disk. */
  size: number;
  /** One past the last record on disk (baseOffset when empty). */
  nextOffset: number;
  /** Append time of the newest record, 0 when empty. */
  lastAppendTime: number;
  createdAt: number;
  indexOffsets: number[];
  indexPositions: number[];
  lastIndexedPos: number;
}

export interface SegmentLogOptions {
  dir: string;
  /** Roll to a new segment once the active one has this many bytes. */
  segmentBytes: number;
  /** ...or once it is this old (so retention can delete whole segments of a slow stream). */
  segmentMs: number;
  log: Logger;
  now?: () => number;
}

interface PendingAppend {
  buf: Buffer;
  firstOffset: number;
  endOffset: number;
  lastAppendTime: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

const segmentName = (baseOffset: number) => `${String(baseOffset).padStart(20, '0')}.log`;

function addIndex(seg: Segment, offset: number, pos: number): void {
  if (seg.indexOffsets.length === 0 || pos - seg.lastIndexedPos >= INDEX_INTERVAL_BYTES) {
    seg.indexOffsets.push(offset);
    seg.indexPositions.push(pos);
    seg.lastIndexedPos = pos;
  }
}

export class SegmentLog {
  private readonly segments: Segment[] = [];
  private active!: FileHandle;
  private pending: PendingAppend[] = [];
  /** The running group-commit loop, if any. */
  private flushing: Promise<void> | undefined;
  private failure: Error | undefined;
  private closed = false;
  private readonly now: () => number;

  private constructor(private readonly opts: SegmentLogOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Opens (creating if needed) the log in `opts.dir`, truncating a torn tail. */
  static async open(opts: SegmentLogOptions): Promise<SegmentLog> {
    const log = new SegmentLog(opts);
    await mkdir(opts.dir, { recursive: true, mode: DIR_MODE });
    const names = (await readdir(opts.dir)).filter((n) => /^\d{20}\.log$/.test(n)).sort();
    for (let i = 0; i < names.length; i++) {
      log.segments.push(await log.scan(join(opts.dir, names[i]), Number(names[i].slice(0, 20)), i === names.length - 1));
    }
    if (log.segments.length === 0) log.segments.push(log.emptySegment(0));
    log.active = await open(log.last.path, 'a', FILE_MODE);
    return log;
  }

  private get last(): Segment {
    return this.segments[this.segments.length - 1];
  }

  /** Earliest offset still stored. */
  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  /** One past the last record on disk. */
  get nextOffset(): number {
    return this.last.nextOffset;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  private emptySegment(baseOffset: number): Segment {
    return {
      baseOffset,
      path: join(this.opts.dir, segmentName(baseOffset)),
      size: 0,
      nextOffset: baseOffset,
      lastAppendTime: 0,
      createdAt: this.now(),
      indexOffsets: [],
      indexPositions: [],
      lastIndexedPos: 0,
    };
  }

  private async scan(path: string, baseOffset: number, isLast: boolean): Promise<Segment> {
    const seg = this.emptySegment(baseOffset);
    seg.path = path;
    const fh = await open(path, isLast ? 'r+' : 'r');
    try {
      const fileSize = (await fh.stat()).size;
      let chunk = Buffer.alloc(0);
      let chunkStart = 0; // file position of chunk[0]
      let pos = 0; // file position of the next record
      let problem: string | undefined;
      while (pos < fileSize) {
        const at = pos - chunkStart;
        const res = readRecord(chunk, at);
        if (res.kind === 'record') {
          if (res.record.offset !== seg.nextOffset) {
            problem = `offset ${res.record.offset} where ${seg.nextOffset} was expected`;
            break;
          }
          addIndex(seg, res.record.offset, pos);
          seg.nextOffset = res.record.offset + 1;
          seg.lastAppendTime = res.record.appendTime;
          pos += res.end - at;
          continue;
        }
        if (res.kind === 'corrupt') {
          problem = res.reason;
          break;
        }
        // Incomplete: read more from `pos`, or stop at the end of the file.
        const want = Math.max(SCAN_CHUNK_BYTES, res.needed);
        if (pos + res.needed > fileSize) {
          problem = `record of ${res.needed} bytes runs past the end of the file`;
          break;
        }
        chunk = Buffer.allocUnsafe(Math.min(want, fileSize - pos));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
        chunk = chunk.subarray(0, bytesRead);
        chunkStart = pos;
      }
      if (problem !== undefined) {
        if (!isLast) {
          throw new AttuneError('internal_error', `segment ${path} is corrupt at byte ${pos}: ${problem}`, [
            { reason: 'corrupt_segment', path, position: pos },
          ]);
        }
        this.opts.log.warn({ path, position: pos, dropped_bytes: fileSize - pos, problem }, 'truncating torn tail of bus segment');
        await fh.truncate(pos);
        await fh.datasync();
      }
      seg.size = pos;
      return seg;
    } finally {
      await fh.close();
    }
  }

  /**
   * Appends an encoded batch (records firstOffset..endOffset-1, contiguous with what came
   * before); resolves once it is on disk.
   */
  append(buf: Buffer, firstOffset: number, endOffset: number, lastAppendTime: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new AttuneError('unavailable', 'bus log is closed'));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ buf, firstOffset, endOffset, lastAppendTime, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const items = this.pending;
        this.pending = [];
        try {
          await this.maybeRoll(items[0].firstOffset);
          const seg = this.last;
          let total = 0;
          for (const it of items) total += it.buf.length;
          const { bytesWritten } = await this.active.writev(items.map((it) => it.buf));
          if (bytesWritten !== total) throw new Error(`short write: ${bytesWritten} of ${total} bytes`);
          await this.active.datasync();
          let pos = seg.size;
          for (const it of items) {
            addIndex(seg, it.firstOffset, pos);
            pos += it.buf.length;
          }
          seg.size = pos;
          seg.nextOffset = items[items.length - 1].endOffset;
          seg.lastAppendTime = items[items.length - 1].lastAppendTime;
          for (const it of items) it.resolve();
        } catch (err) {
          // The file may now hold part of a batch: refuse further appends rather than
          // write after it; reopening truncates the torn part.
          this.failure = new AttuneError('unavailable', `bus log write failed: ${(err as Error).message}`, [
            { reason: 'log_write_failed', dir: this.opts.dir },
          ]);
          this.opts.log.error({ err, dir: this.opts.dir }, 'bus segment write failed');
          for (const it of items) it.reject(this.failure);
          for (const it of this.pending) it.reject(this.failure);
          this.pending = [];
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async maybeRoll(nextBase: number): Promise<void> {
    const seg = this.last;
    if (seg.size === 0) return;
    if (seg.size < this.opts.segmentBytes && this.now() - seg.createdAt < this.opts.segmentMs) return;
    const next = this.emptySegment(nextBase);
    const fh = await open(next.path, 'a', FILE_MODE);
    await this.active.close();
    this.active = fh;
    this.segments.push(next);
  }

  /**
   * Records from offset `from` on (at least one when there are any), up to `maxRecords`
   * or about `maxBytes`. Offsets below startOffset are not there any more: the caller
   * checks startOffset first.
   */
  async read(from: number, maxRecords: number, maxBytes: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    let i = this.findSegment(from);
    let bytes = 0;
    while (i < this.segments.length && out.length === 0) {
      const seg = this.segments[i];
      if (from < seg.nextOffset) {
        let fh: FileHandle;
        try {
          fh = await open(seg.path, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out; // deleted by retention meanwhile
          throw err;
        }
        try {
          let pos = this.indexPosition(seg, from);
          const end = seg.size;
          while (pos < end && out.length < maxRecords && bytes < maxBytes) {
            let chunk = Buffer.allocUnsafe(Math.min(Math.max(MIN_READ_BYTES, maxBytes - bytes), end - pos));
            const n = (await fh.read(chunk, 0, chunk.length, pos)).bytesRead;
            chunk = chunk.subarray(0, n);
            let at = 0;
            for (;;) {
              const res = readRecord(chunk, at);
              if (res.kind === 'incomplete') {
                if (at === 0) {
                  // One record bigger than the chunk: read exactly it next round.
                  const big = Buffer.allocUnsafe(res.needed);
                  const m = (await fh.read(big, 0, big.length, pos)).bytesRead;
                  const r2 = readRecord(big.subarray(0, m), 0);
                  if (r2.kind !== 'record') throw new AttuneError('internal_error', `unreadable record at ${seg.path}:${pos}`);
                  if (r2.record.offset >= from) {
                    out.push(r2.record);
                    bytes += r2.end;
                  }
                  pos += r2.end;
                }
                break;
              }
              if (res.kind === 'corrupt') throw new AttuneError('internal_error', `corrupt record at ${seg.path}:${pos + at}: ${res.reason}`);
              if (res.record.offset >= from) {
                out.push(res.record);
                bytes += res.end - at;
              }
              at = res.end;
              if (out.length >= maxRecords || bytes >= maxBytes) break;
            }
            pos += at;
          }
        } finally {
          await fh.close();
        }
      }
      i++;
    }
    return out;
  }

  private findSegment(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid].baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private indexPosition(seg: Segment, offset: number): number {
    const offs = seg.indexOffsets;
    let lo = 0;
    let hi = offs.length - 1;
    if (hi < 0 || offs[0] > offset) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offs[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return seg.indexPositions[lo];
  }

  /**
   * Deletes whole segments from the oldest on while `deletable` says so; never the active
   * one. Returns how many were deleted.
   */
  async deleteSegments(deletable: (seg: Readonly<Segment>) => boolean): Promise<number> {
    let n = 0;
    while (this.segments.length > 1 && deletable(this.segments[0])) {
      const seg = this.segments.shift()!;
      await unlink(seg.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      n++;
    }
    return n;
  }

  /** Waits for queued appends, then closes the active file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.active.close();
  }
}
