// Small helpers the Postgres repositories share: value conversion, the version conflict error,
// and the UPDATE built from a patch (only whitelisted columns, every value a parameter).
import { AttuneError } from '../../lib/errors.js';
import type { SqlQueryable } from './client.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `s` can be a uuid column's value (ids from URLs are checked before a query: a malformed one is simply not found). */
export const isUuid = (s: string): boolean => uuidPattern.test(s);

/** epoch ms of a timestamptz value. */
export const ms = (v: Date | string | number): number => (v instanceof Date ? v.getTime() : typeof v === 'number' ? v : new Date(v).getTime());
export const msOrNull = (v: Date | string | number | null): number | null => (v === null ? null : ms(v));
export const toDate = (v: number): Date => new Date(Math.round(v));
export const toDateOrNull = (v: number | null | undefined): Date | null => (v === null || v === undefined ? null : toDate(v));
export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** '' in the API is NULL in the database (not known yet / none). */
export const emptyToNull = (v: string | null | undefined): string | null => (v === '' || v === undefined ? null : v);
export const jsonObject = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/**
 * A write based on a version that is no longer the stored one: another writer (in this
 * process or another) changed the record first. HTTP 409 with reason `version_conflict`; the
 * caller re-reads and decides again.
 */
export class VersionConflictError extends AttuneError {
  readonly expectedVersion: number;
  readonly currentVersion: number;
  constructor(entity: string, id: string, expectedVersion: number, currentVersion: number) {
    super('conflict', `${entity} ${id} was changed by someone else (version ${currentVersion}, expected ${expectedVersion})`, [
      { reason: 'version_conflict', expected_version: expectedVersion, current_version: currentVersion },
    ]);
    this.name = 'VersionConflictError';
    this.expectedVersion = expectedVersion;
    this.currentVersion = currentVersion;
  }
}

export const isVersionConflict = (e: unknown): e is VersionConflictError => e instanceof VersionConflictError;

export interface UpdateOptions {
  /** The version the caller read: the write happens only if it is still the stored one, else VersionConflictError. */
  expectedVersion?: number;
  /**
   * Statuses the write must not change (the table has a `status` column): when the stored row
   * has one of them, nothing is written and the row is returned as stored, without an error.
   * A writer that may be late or repeated (a stream read again after a crash) passes the final
   * statuses, so it never moves a finished record back.
   */
  unlessStatus?: readonly string[];
}

/** How a patch field maps to a column. */
export interface ColumnSpec {
  column: string;
  /** The parameter value; the field's value by default. */
  toDb?: (v: never) => unknown;
  /** A cast for the parameter, e.g. 'jsonb'. */
  cast?: string;
}

/**
 * UPDATE <table> SET <patched columns>, version = version + 1, updated_at = a strictly later
 * instant WHERE <key> = $1 [AND version = expected] [AND status not in unlessStatus] RETURNING
 * <returning>. Fields whose value is undefined are left alone. Returns the row, or null when no
 * row matched (absent, another version, or a status it must not change): the caller tells which
 * with `keptRowOrMiss` (or `explainMiss`).
 */
export async function updateFromPatch<R>(
  q: SqlQueryable,
  spec: { table: string; key: string; returning: string; columns: Record<string, ColumnSpec> },
  id: string,
  patch: Record<string, unknown>,
  now: number,
  opts: UpdateOptions = {},
): Promise<R | null> {
  const params: unknown[] = [id, toDate(now)];
  const sets: string[] = [];
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const col = spec.columns[field];
    if (!col) throw new AttuneError('internal_error', `${spec.table}: field ${field} cannot be updated`);
    params.push(col.toDb ? col.toDb(value as never) : value);
    sets.push(`${col.column} = $${params.length}${col.cast ? `::${col.cast}` : ''}`);
  }
  sets.push('version = version + 1', "updated_at = GREATEST($2, updated_at + interval '1 millisecond')");
  let where = `${spec.key} = $1`;
  if (opts.expectedVersion !== undefined) {
    params.push(opts.expectedVersion);
    where += ` AND version = $${params.length}`;
  }
  if (opts.unlessStatus?.length) {
    params.push([...opts.unlessStatus]);
    where += ` AND status <> ALL($${params.length}::text[])`;
  }
  const { rows } = await q.query<R>(`UPDATE ${spec.table} SET ${sets.join(', ')} WHERE ${where} RETURNING ${spec.returning}`, params);
  return rows[0] ?? null;
}

/**
 * After an updateFromPatch that matched no row: the stored row when its status is one of
 * `opts.unlessStatus` (the write was skipped on purpose); otherwise explainMiss's error.
 */
export async function keptRowOrMiss<R>(q: SqlQueryable, spec: { table: string; key: string; returning: string }, entity: string, id: string, opts: UpdateOptions): Promise<R> {
  if (opts.unlessStatus?.length) {
    const { rows } = await q.query<R>(`SELECT ${spec.returning} FROM ${spec.table} WHERE ${spec.key} = $1 AND status = ANY($2::text[])`, [id, [...opts.unlessStatus]]);
    if (rows[0]) return rows[0];
  }
  return explainMiss(q, { table: spec.table, key: spec.key, entity }, id, opts.expectedVersion);
}

/** After a write matched no row: not_found when the record is absent, else the version conflict. */
export async function explainMiss(q: SqlQueryable, spec: { table: string; key: string; entity: string }, id: string, expectedVersion: number | undefined): Promise<never> {
  const { rows } = await q.query<{ version: number }>(`SELECT version FROM ${spec.table} WHERE ${spec.key} = $1`, [id]);
  if (rows.length === 0 || expectedVersion === undefined) {
    throw new AttuneError('not_found', `${spec.entity} ${id} not found`, [{ field: 'id', reason: 'not_found' }]);
  }
  throw new VersionConflictError(spec.entity, id, expectedVersion, Number(rows[0].version));
}
