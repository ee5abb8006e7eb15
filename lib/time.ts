// Timestamps move through Attune as epoch milliseconds (numbers): ClickHouse DateTime64(3)
// columns take them as integers (see store/README.md) and give them back through
// toUnixTimestamp64Milli.

/** A 64-bit integer from ClickHouse: a string from a server, a number from chDB. */
export function int64(v: string | number | bigint | null | undefined): number {
  if (v === null || v === undefined) return NaN;
  return typeof v === 'number' ? v : Number(v);
}

/** Parses an ISO-8601 timestamp or epoch milliseconds; NaN when neither. */
export function parseTimestamp(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : NaN;
  if (typeof v !== 'string') return NaN;
  if (/^\d{10,16}$/.test(v)) return Number(v);
  // Require a date and a time with an explicit zone, so device clocks are never read as local time.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.test(v)) return NaN;
  return Date.parse(v);
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The times a date filter of a query may name: 1970-01-01 to the end of 2299 (ClickHouse's
 * DateTime64 ends there; nothing Attune stores lies outside). Beyond them a filter reached
 * PostgreSQL or ClickHouse as a year 0 or +010000 and came back as a 500 (a security review).
 */
export const QUERY_TIME_MIN_MS = 0;
export const QUERY_TIME_MAX_MS = Date.UTC(2300, 0, 1);

/** Whether `ms` lies within QUERY_TIME_MIN_MS..QUERY_TIME_MAX_MS. */
export const withinQueryTimes = (ms: number): boolean => ms >= QUERY_TIME_MIN_MS && ms <= QUERY_TIME_MAX_MS;
