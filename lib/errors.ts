// Coded errors, in the style of fastify's: every error a user can see carries a stable
// machine-readable `code`, an HTTP status, a message for people and optional details
// (which field, which index). The API turns them into
//   {"error":{"code","message","details","request_id"}}
export type ErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'validation_error'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'unavailable'
  | 'internal_error';

const statusByCode: Record<ErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  validation_error: 400,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  internal_error: 500,
};

export interface ErrorDetail {
  /** JSON pointer-like path of the offending field, e.g. `/readings/3/rr_intervals_ms/0`. */
  field?: string;
  /** Index of the offending item in a batch, when there is one. */
  index?: number;
  /** Why it was refused. */
  reason: string;
  [key: string]: unknown;
}

export class AttuneError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: ErrorDetail[];
  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = 'AttuneError';
    this.code = code;
    this.statusCode = statusByCode[code];
    this.details = details;
  }
}

export const isAttuneError = (e: unknown): e is AttuneError => e instanceof AttuneError;
