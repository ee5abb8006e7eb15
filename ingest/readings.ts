// Heart readings as devices send them: the JSON Schema (shared by the HTTP sync route, the
// live WebSocket and the OpenAPI document), the plausibility checks that JSON Schema cannot
// express, and the conversion to the HeartReading bus record.
import { Ajv, type ValidateFunction } from 'ajv';
import { AttuneError, type ErrorDetail, type ReasonFor } from '../lib/errors.js';
import { parseTimestamp } from '../lib/time.js';
import { ReadingLimits } from '../schemas/reading-limits.js';
import type { HeartReading } from '../schemas/registry/schemas.js';
import { detailsFromValidation } from '../http/errors.js';

export const Limits = {
  ...ReadingLimits,
  maxReadingsPerBatch: 10_000,
  maxRrPerReading: 600,
  maxBodyBytes: 1024 * 1024,
  maxWsMessageBytes: 64 * 1024,
} as const;

const ID = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$' } as const;

export const readingSchema = {
  type: 'object',
  description: 'One reading: a heart rate and/or the RR intervals since the previous reading. The last RR interval ends at `timestamp`.',
  properties: {
    timestamp: {
      description: 'When the reading was taken: ISO-8601 with a zone (e.g. 2026-11-22T10:00:00.250Z) or epoch milliseconds.',
      anyOf: [{ type: 'number' }, { type: 'string', maxLength: 40 }],
    },
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
} as const;

export const syncBodySchema = {
  type: 'object',
  properties: {
    session_id: { ...ID, description: 'Session for every reading that does not name its own.' },
    readings: { type: 'array', minItems: 1, maxItems: Limits.maxReadingsPerBatch, items: readingSchema },
  },
  required: ['readings'],
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

const ajv = new Ajv({ allErrors: false, strict: false });
const validateReadingFn: ValidateFunction = ajv.compile(readingSchema);

/** Validates one reading with the same schema the HTTP route uses (for the WebSocket path). */
export function validateReading(value: unknown, index: number, prefix = ''): ReadingInput {
  if (!validateReadingFn(value)) {
    const details = detailsFromValidation(validateReadingFn.errors ?? [], `${prefix}/${index}`);
    throw new AttuneError('validation_error', `invalid reading at index ${index}: ${details[0]?.field} ${details[0]?.message ?? details[0]?.reason}`, details);
  }
  return value as ReadingInput;
}

/**
 * Checks what JSON Schema cannot: the timestamp parses and is not too far in the future.
 * Returns the parsed times, or throws a coded error naming the first bad field and index.
 */
export function checkTimestamps(readings: ReadingInput[], now: number, prefix = '/readings'): Float64Array {
  const times = new Float64Array(readings.length);
  const details: ErrorDetail<ReasonFor<'validation_error'>>[] = [];
  for (let i = 0; i < readings.length; i++) {
    const t = parseTimestamp(readings[i].timestamp);
    if (Number.isNaN(t)) {
      details.push({ field: `${prefix}/${i}/timestamp`, index: i, reason: 'invalid_timestamp', message: 'must be ISO-8601 with a zone, or epoch milliseconds' });
    } else if (t > now + Limits.maxFutureMs) {
      details.push({ field: `${prefix}/${i}/timestamp`, index: i, reason: 'out_of_range', message: `is more than ${Limits.maxFutureMs / 60_000} minutes in the future` });
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
