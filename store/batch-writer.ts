// Buffers rows for one table and inserts them in large JSONEachRow batches: ClickHouse wants
// few big inserts (every insert makes a part), while stream consumers hand over small
// batches and must know when their rows are durable before they commit their offsets.
//
//  - add(rows, onDurable) buffers; a batch goes out when maxRows rows are buffered or
//    maxDelayMs after the oldest buffered row arrived, whichever comes first;
//  - one insert at a time per writer, batches in arrival order, so onDurable callbacks fire
//    in the order of the add() calls, each once the insert holding its last row succeeded;
//  - a failed insert is retried with exponential back-off, forever, with the same rows
//    (rows are never dropped: the consumer then stops committing and the bus redelivers
//    nothing new, which is the back-pressure we want); every `errorAfterAttempts` failures
//    the error goes to onError and pending flush() calls reject;
//  - add() resolves at once unless more than maxBufferedRows are waiting, then when the
//    buffer has drained below it (back-pressure for the consumer).
//
// Timestamps: pass DateTime64 values as integer epoch milliseconds (JS numbers; a fraction
// makes the whole insert fail, so round derived times). ClickHouse reads a
// JSON integer for DateTime64(3) as ticks of the column's precision, i.e. epoch ms, under
// every date_time_input_format (chDB keeps settings across queries, so the encoding must
// not depend on one), and it is the cheapest to produce: see bench/store-insert.bench.ts.
import type { Logger } from '../lib/log.js';
import { AttuneError } from '../lib/errors.js';
import { assertIdentifier, type StoreClient } from './clickhouse.js';

export interface RetryOptions {
  /** First back-off, ms (default 100). */
  initialDelayMs?: number;
  /** Back-off ceiling, ms (default 10_000). */
  maxDelayMs?: number;
  /** Report to onError (and reject waiting flushes) after this many consecutive failures (default 5). */
  errorAfterAttempts?: number;
}

export interface InsertFailure {
  table: string;
  /** Consecutive failed attempts for the batch so far. */
  attempts: number;
  /** Rows in the failing batch (still buffered, still being retried). */
  rows: number;
}

export interface BatchWriterOptions {
  store: StoreClient;
  /** Table name in the store's database (or `db.table`). */
  table: string;
  /** Insert only these columns (the others take their defaults). */
  columns?: string[];
  /**
   * With `columns`: insert as JSONCompactEachRow (each row sent as an array in column order),
   * about a fifth cheaper than JSONEachRow for wide tables on hot paths.
   */
  compact?: boolean;
  maxRows?: number;
  maxDelayMs?: number;
  maxBufferedRows?: number;
  retry?: RetryOptions;
  onError?: (err: unknown, failure: InsertFailure) => void;
  log: Logger;
}

interface DurableCallback {
  /** The callback fires once this many rows (counted since the writer started) are durable. */
  untilRow: number;
  fn: () => void;
}

interface Waiter {
  untilRow: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class BatchWriter<Row extends object> {
  readonly table: string;
  private readonly store: StoreClient;
  private readonly columns?: string[];
  private readonly toArray?: (row: Row) => unknown[];
  private readonly maxRows: number;
  private readonly maxDelayMs: number;
  private readonly maxBufferedRows: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly errorAfterAttempts: number;
  private readonly onError?: BatchWriterOptions['onError'];
  private readonly log: Logger;

  /** Rows not yet taken into an insert. */
  private pending: Row[] = [];
  /** The batch being inserted (or retried), if any. */
  private inflight: Row[] | null = null;
  private addedRows = 0;
  private durableRows = 0;
  /** Rows up to this count must go out now, without waiting for maxRows (timer, flush, close). */
  private flushUntilRow = 0;
  private oldestPendingAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private closing = false;
  private closed: Promise<void> | null = null;
  private stopped = false;
  private attempts = 0;
  private readonly callbacks: DurableCallback[] = [];
  private flushWaiters: Waiter[] = [];
  private spaceWaiters: Array<() => void> = [];
  private backoff: { timer: NodeJS.Timeout; wake: () => void } | null = null;

  constructor(opts: BatchWriterOptions) {
    this.store = opts.store;
    this.table = opts.table.includes('.') ? opts.table : opts.store.table(opts.table);
    this.columns = opts.columns;
    if (opts.compact) {
      if (!opts.columns || opts.columns.length === 0) throw new AttuneError('internal_error', 'compact inserts need columns');
      const cols = opts.columns.map((c) => assertIdentifier(c, 'column'));
      // One generated accessor per writer: a literal array is much cheaper than cols.map per row.
      this.toArray = new Function('r', `return [${cols.map((c) => `r.${c}`).join(', ')}];`) as (row: Row) => unknown[];
    }
    this.maxRows = positive(opts.maxRows ?? 10_000, 'maxRows');
    this.maxDelayMs = Math.max(0, opts.maxDelayMs ?? 1000);
    this.maxBufferedRows = positive(opts.maxBufferedRows ?? 100_000, 'maxBufferedRows');
    this.initialBackoffMs = Math.max(1, opts.retry?.initialDelayMs ?? 100);
    this.maxBackoffMs = Math.max(this.initialBackoffMs, opts.retry?.maxDelayMs ?? 10_000);
    this.errorAfterAttempts = positive(opts.retry?.errorAfterAttempts ?? 5, 'errorAfterAttempts');
    this.onError = opts.onError;
    this.log = opts.log.child({ component: 'batch-writer', table: this.table });
  }

  /** Rows added but not yet durable (buffered or being inserted). */
  get bufferedRows(): number {
    return this.addedRows - this.durableRows;
  }

  /**
   * Buffers `rows`; `onDurable` fires once they are all inserted. Resolves at once, or —
   * when more than maxBufferedRows are waiting — once the buffer has drained below that.
   */
  async add(rows: Row[], onDurable?: () => void): Promise<void> {
    if (this.closing) throw new AttuneError('unavailable', `batch writer for ${this.table} is closed`);
    if (rows.length > 0) {
      if (this.pending.length === 0) this.oldestPendingAt = Date.now();
      for (const row of rows) this.pending.push(row);
      this.addedRows += rows.length;
    }
    if (onDurable) {
      if (rows.length === 0 && this.bufferedRows === 0) onDurable();
      else this.callbacks.push({ untilRow: this.addedRows, fn: onDurable });
    }
    this.schedule();
    if (this.bufferedRows > this.maxBufferedRows) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
  }

  /** Resolves once every row added before the call is durable; rejects when the insert keeps failing (see retry.errorAfterAttempts). */
  flush(): Promise<void> {
    const untilRow = this.addedRows;
    if (this.durableRows >= untilRow) return Promise.resolve();
    if (this.stopped) {
      return Promise.reject(new AttuneError('unavailable', `batch writer for ${this.table} was closed with rows it could not insert`));
    }
    this.flushUntilRow = Math.max(this.flushUntilRow, untilRow);
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ untilRow, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Flushes and stops. Rejects when the remaining rows cannot be inserted (after
   * retry.errorAfterAttempts tries); those rows are then dropped from this writer and their
   * onDurable callbacks never fire — their source must be replayed.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      try {
        await this.flush();
      } finally {
        this.stopped = true;
        this.clearTimer();
        this.backoff?.wake();
        for (const wake of this.spaceWaiters.splice(0)) wake();
      }
    })();
    return this.closed;
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.mustInsertNow()) {
      this.clearTimer();
      if (!this.running) void this.run();
      return;
    }
    if (this.pending.length > 0 && this.timer === null && !this.running) {
      const delay = Math.max(0, this.oldestPendingAt + this.maxDelayMs - Date.now());
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flushUntilRow = Math.max(this.flushUntilRow, this.addedRows);
        this.schedule();
      }, delay);
    }
  }

  private mustInsertNow(): boolean {
    if (this.inflight) return true;
    if (this.pending.length === 0) return false;
    if (this.pending.length >= this.maxRows) return true;
    const firstPendingRow = this.durableRows + 1; // nothing is in flight here
    return this.flushUntilRow >= firstPendingRow;
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** The single insert loop: runs while there is something that must go out now. */
  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.stopped && this.mustInsertNow()) {
        if (!this.inflight) {
          this.inflight = this.pending.length <= this.maxRows ? this.pending : this.pending.slice(0, this.maxRows);
          // Rows left over keep their oldestPendingAt: they are older than the batch's timer says.
          this.pending = this.pending.length <= this.maxRows ? [] : this.pending.slice(this.maxRows);
        }
        const batch = this.inflight;
        try {
          if (this.toArray) {
            // JSONCompactEachRow: no key per value, so less to encode here and to parse there.
            const values = new Array(batch.length);
            for (let i = 0; i < batch.length; i++) values[i] = this.toArray(batch[i]);
            await this.store.client.insert({
              table: this.table,
              values,
              format: 'JSONCompactEachRow',
              columns: this.columns as [string, ...string[]],
            });
          } else {
            await this.store.client.insert({
              table: this.table,
              values: batch,
              format: 'JSONEachRow',
              ...(this.columns ? { columns: this.columns as [string, ...string[]] } : {}),
            });
          }
        } catch (err) {
          await this.failed(err, batch.length);
          continue;
        }
        this.inflight = null;
        this.attempts = 0;
        this.durableRows += batch.length;
        this.settle();
      }
    } finally {
      this.running = false;
    }
    // Rows that arrived during the last insert but are not due yet need their timer.
    this.schedule();
  }

  private async failed(err: unknown, rows: number): Promise<void> {
    this.attempts += 1;
    const failure: InsertFailure = { table: this.table, attempts: this.attempts, rows };
    this.log.warn({ err, attempts: this.attempts, rows }, 'insert failed; will retry');
    if (this.attempts % this.errorAfterAttempts === 0) {
      try {
        this.onError?.(err, failure);
      } catch (hookErr) {
        this.log.error({ err: hookErr }, 'onError hook threw');
      }
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      const error = new AttuneError('unavailable', `insert into ${this.table} failed ${this.attempts} times`, [
        { reason: 'write_failed', message: err instanceof Error ? err.message : String(err), attempts: this.attempts },
      ]);
      (error as Error).cause = err;
      for (const w of waiters) w.reject(error);
      if (this.closing) {
        this.stopped = true;
        return;
      }
    }
    const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (this.attempts - 1));
    const jittered = delay / 2 + Math.random() * (delay / 2);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, jittered);
      this.backoff = { timer, wake: resolve };
    });
    if (this.backoff) clearTimeout(this.backoff.timer);
    this.backoff = null;
  }

  /** Fires due callbacks and wakes waiters after rows became durable. */
  private settle(): void {
    while (this.callbacks.length > 0 && this.callbacks[0].untilRow <= this.durableRows) {
      const cb = this.callbacks.shift()!;
      try {
        cb.fn();
      } catch (err) {
        this.log.error({ err }, 'onDurable callback threw');
      }
    }
    if (this.flushWaiters.length > 0) {
      const due = this.flushWaiters.filter((w) => w.untilRow <= this.durableRows);
      this.flushWaiters = this.flushWaiters.filter((w) => w.untilRow > this.durableRows);
      for (const w of due) w.resolve();
    }
    if (this.bufferedRows <= this.maxBufferedRows && this.spaceWaiters.length > 0) {
      for (const wake of this.spaceWaiters.splice(0)) wake();
    }
  }
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`${name} must be a positive integer, got ${n}`);
  return n;
}
