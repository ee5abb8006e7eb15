// Heart readings as devices send them: the JSON Schema (shared by the HTTP sync route, the
// live WebSocket and the OpenAPI document), the plausibility checks that JSON Schema cannot
// express, and the conversion to the HeartReading bus record.
import { Ajv, type ValidateFunction } from 'ajv';
import { AttuneError, type ErrorDetail, type ReasonFor } from '../lib/errors.js';
import { parseTimestamp } from '../lib/time.js';
import { ReadingLimits } from '../schemas/reading-limits.js';
import type { HeartReading } from '../schemas/registry/schemas.js';
import { detailsNamingUnknownFields, indexFromPath } from '../http/errors.js';

export const Limits = {
  ...ReadingLimits,
  /** Default future tolerance: the coherence windows' allowed lateness (ATTUNE_READING_MAX_FUTURE_MS). */
  maxFutureMs: 10_000,
  maxReadingsPerBatch: 10_000,
  maxRrPerReading: 600,
  maxBodyBytes: 1024 * 1024,
  maxWsMessageBytes: 64 * 1024,
} as const;

/**
 * When a reading may be dated (lib/config.ts: ATTUNE_READING_MAX_FUTURE_MS,
 * ATTUNE_READING_MAX_AGE_DAYS, ATTUNE_ALLOWED_LATENESS_MS, ATTUNE_SESSION_GRACE_MS).
 */
export interface ReadingRules {
  /** At most this far past the gateway's clock. Never more than the allowed lateness: a beat further ahead would move its session's event-time clock and make every later beat late. */
  maxFutureMs: number;
  /** A reading that names no session is at most this old. */
  maxAgeMs: number;
  /** A reading naming a session may be dated this long before the session's started_at. */
  sessionLeadMs: number;
  /** … and this long after its ended_at. */
  sessionGraceMs: number;
}

export const defaultReadingRules: ReadingRules = {
  maxFutureMs: Limits.maxFutureMs,
  maxAgeMs: 30 * 86_400_000,
  sessionLeadMs: 10_000,
  sessionGraceMs: 10_000,
};

const ID = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$' } as const;

const TIMESTAMP = {
  description: 'ISO-8601 with a zone (e.g. 2026-11-22T10:00:00.250Z) or epoch milliseconds.',
  anyOf: [{ type: 'number' }, { type: 'string', maxLength: 40 }],
} as const;

export const readingSchema = {
  type: 'object',
  description:
    'One reading: a heart rate and/or the RR intervals since the previous reading. The last RR interval ends at `timestamp`. Types are strict (no conversion: `"60"` is not a number); a field given as `null` counts as absent; fields not listed here are refused (`unknown_field`); a reading needs `hr` or at least one RR interval.',
  properties: {
    timestamp: { ...TIMESTAMP, description: `When the reading was taken: ${TIMESTAMP.description}` },
    hr: { type: 'number', minimum: Limits.hrMin, maximum: Limits.hrMax, description: 'Heart rate, beats per minute.' },
    rr_intervals_ms: {
      type: 'array',
      maxItems: Limits.maxRrPerReading,
      items: { type: 'number', minimum: Limits.rrMinMs, maximum: Limits.rrMaxMs },
      description: 'RR intervals in milliseconds, oldest first.',
    },
    hrv: { type: 'number', minimum: 0, maximum: 2000, description: "The device's own HRV (RMSSD, ms), if it computes one." },
    coherence: { type: 'number', minimum: 0, maximum: 100, description: "The device's own coherence value, if it computes one." },
    battery_level: { type: 'number', minimum: 0, maximum: 100, description: 'Battery, percent.' },
    session_id: { ...ID, description: 'The session this reading belongs to; defaults to the batch session_id, then to the user session active at `timestamp`.' },
  },
  required: ['timestamp'],
  anyOf: [{ required: ['hr'] }, { required: ['rr_intervals_ms'] }],
  additionalProperties: false,
} as const;

export const syncBodySchema = {
  type: 'object',
  properties: {
    session_id: { ...ID, description: 'Session for every reading that does not name its own.' },
    readings: { type: 'array', minItems: 1, maxItems: Limits.maxReadingsPerBatch, items: readingSchema },
    battery_level: { type: 'number', minimum: 0, maximum: 100, description: 'Battery at sync time, percent (coherence platform document): the device\'s level, and the newest reading\'s battery_level when that reading has none (so it can send device.low_battery).' },
    last_worn: { ...TIMESTAMP, description: `When the device was last worn (coherence platform document): ${TIMESTAMP.description} Kept on the device (the latest seen; GET /v1/users/me); at most as far in the future as a reading's timestamp, not before 2000.` },
  },
  required: ['readings'],
  additionalProperties: false,
} as const;

export interface ReadingInput {
  timestamp: string | number;
  hr?: number;
  rr_intervals_ms?: number[];
  hrv?: number;
  coherence?: number;
  battery_level?: number;
  session_id?: string;
}

export interface SyncBody {
  session_id?: string;
  readings: ReadingInput[];
  battery_level?: number;
  last_worn?: string | number;
}

// Strict on purpose, unlike the server's default compiler (which coerces query strings):
// no type conversion, no defaults, nothing removed. HTTP and WebSocket readings both pass
// through parseReadings below, so they are accepted and refused alike, with the same details.
const strictAjv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false, removeAdditional: false });
const validateReadingFn: ValidateFunction = strictAjv.compile(readingSchema);
// The envelope alone: its readings are checked one by one (nulls dropped first) by parseReadings.
const validateEnvelopeFn: ValidateFunction = strictAjv.compile({
  ...syncBodySchema,
  properties: { ...syncBodySchema.properties, readings: { type: 'array', minItems: 1, maxItems: Limits.maxReadingsPerBatch } },
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `null` means absent: a shallow copy without the null-valued fields (nulls inside arrays stay,
 * and are refused). A plain object (JSON.parse's) with no null field and no own `__proto__`
 * key is returned as it is: the copy would have the same own fields in the same order and the
 * same prototype, so validation and everything after it see the same thing. Once per reading
 * on the sync route: the copy (and Object.entries' pairs) was the gateway's largest
 * allocation per reading in bench:kafka's profile.
 */
function withoutNulls(o: Record<string, unknown>): Record<string, unknown> {
  if (Object.getPrototypeOf(o) === Object.prototype) {
    let copy = false;
    for (const k in o) {
      if (o[k] === null || k === '__proto__') {
        copy = true;
        break;
      }
    }
    if (!copy) return o;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null) out[k] = v;
  return out;
}

function invalid(details: ErrorDetail<ReasonFor<'validation_error'>>[], what: string): AttuneError {
  const first = details[0];
  return new AttuneError('validation_error', `invalid ${what}: ${first?.field ?? ''} ${first?.message ?? first?.reason ?? ''}`.trim(), details);
}

/**
 * Validates one reading strictly: `null` fields dropped, no type conversion, no unknown
 * fields, and hr or at least one RR interval. `field` is the reading's JSON pointer
 * (`/readings/3` on HTTP). Returns the reading without its null fields.
 */
export function parseReading(value: unknown, field: string): ReadingInput {
  return parseReadingAt(value, field, null);
}

/**
 * parseReading of the reading at pointerOf(prefix, index), a pointer built only for an error:
 * the sync route checks up to 10,000 readings a request and nearly all pass.
 */
function parseReadingAt(value: unknown, prefix: string, index: number | null): ReadingInput {
  if (!isObject(value)) {
    const field = pointerOf(prefix, index);
    throw invalid([{ field, index: indexFromPath(field), reason: 'invalid_type', message: 'must be object' }], 'reading');
  }
  const r = withoutNulls(value);
  // `{"timestamp":…, "heart_rate":60}` fails on "hr or rr_intervals_ms" first: the misspelled
  // field is named too, first.
  if (!validateReadingFn(r)) throw invalid(detailsNamingUnknownFields(validateReadingFn.errors ?? [], r, readingSchema, pointerOf(prefix, index)), 'reading');
  const reading = r as unknown as ReadingInput;
  if (reading.hr === undefined && (reading.rr_intervals_ms?.length ?? 0) === 0) {
    const field = pointerOf(prefix, index);
    throw invalid([{ field, index: indexFromPath(field), reason: 'required', message: 'must have hr or at least one RR interval' }], 'reading');
  }
  return reading;
}

/** A reading's JSON pointer: `prefix` itself (index null), or `prefix`/`index`. */
const pointerOf = (prefix: string, index: number | null): string => (index === null ? prefix : `${prefix}/${index}`);

/** Validates a list of readings (`prefix` is the list's pointer: `/readings`, or '' for a bare array); the first bad one throws. */
export function parseReadings(list: unknown[], prefix: string): ReadingInput[] {
  return list.map((r, i) => parseReadingAt(r, prefix, i));
}

/**
 * Validates a sync body (`POST /v1/devices/{id}/sync`, and the live socket's
 * `{"type":"readings",…}` message without its type and id): the envelope, then every reading.
 */
export function parseSyncBody(value: unknown): SyncBody {
  if (!isObject(value)) throw invalid([{ field: '/', reason: 'invalid_type', message: 'must be object' }], 'body');
  const body = withoutNulls(value);
  if (!validateEnvelopeFn(body)) throw invalid(detailsNamingUnknownFields(validateEnvelopeFn.errors ?? [], body, syncBodySchema, ''), 'body');
  const b = body as unknown as SyncBody;
  if (b.last_worn !== undefined && Number.isNaN(parseTimestamp(b.last_worn))) {
    throw invalid([{ field: '/last_worn', reason: 'invalid_timestamp', message: 'must be ISO-8601 with a zone, or epoch milliseconds' }], 'body');
  }
  return { ...b, readings: parseReadings(b.readings, '/readings') };
}

/** Validates one reading (kept for callers of the old name; same rules as parseReading). */
export function validateReading(value: unknown, index: number, prefix = ''): ReadingInput {
  return parseReading(value, `${prefix}/${index}`);
}

/**
 * A sync body's last_worn (the coherence platform document's) is kept per device as the latest
 * one seen, so it takes the readings' bounds: at most `maxFutureMs` ahead of `now` and not
 * before 2000. Before, any date passed, and one from a device with a wrong clock (2030) stayed
 * the device's last_worn for good, every later, true one being older.
 */
export function checkLastWorn(lastWorn: string | number | undefined, now: number, maxFutureMs: number = Limits.maxFutureMs): void {
  if (lastWorn === undefined) return;
  const t = parseTimestamp(lastWorn);
  if (t > now + maxFutureMs) {
    throw invalid([{ field: '/last_worn', reason: 'out_of_range', message: `is more than ${maxFutureMs / 1000} s in the future` }], 'body');
  }
  if (t < Date.UTC(2000, 0, 1)) throw invalid([{ field: '/last_worn', reason: 'out_of_range', message: 'is before the year 2000' }], 'body');
}

/**
 * Checks what JSON Schema cannot: the timestamp parses and is at most `maxFutureMs` ahead of
 * `now`. Returns the parsed times, or throws a coded error naming the bad fields and indexes.
 */
export function checkTimestamps(readings: ReadingInput[], now: number, prefix = '/readings', maxFutureMs: number = Limits.maxFutureMs): Float64Array {
  const times = new Float64Array(readings.length);
  const details: ErrorDetail<ReasonFor<'validation_error'>>[] = [];
  for (let i = 0; i < readings.length; i++) {
    const t = parseTimestamp(readings[i].timestamp);
    if (Number.isNaN(t)) {
      details.push({ field: `${prefix}/${i}/timestamp`, index: i, reason: 'invalid_timestamp', message: 'must be ISO-8601 with a zone, or epoch milliseconds' });
    } else if (t > now + maxFutureMs) {
      details.push({ field: `${prefix}/${i}/timestamp`, index: i, reason: 'out_of_range', message: `is more than ${maxFutureMs / 1000} s in the future` });
    } else if (t < Date.UTC(2000, 0, 1)) {
      details.push({ field: `${prefix}/${i}/timestamp`, index: i, reason: 'out_of_range', message: 'is before the year 2000' });
    }
    if (details.length >= 10) break;
    // Whole milliseconds: the bus (Avro long) and ClickHouse (DateTime64(3)) take no fractions.
    times[i] = Math.round(t);
  }
  if (details.length > 0) {
    throw new AttuneError('validation_error', `invalid timestamp at index ${details[0].index}: ${details[0].message ?? details[0].reason}`, details);
  }
  return times;
}
