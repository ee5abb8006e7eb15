// Coded errors, in the style of fastify's: every error a user can see carries a stable
// machine-readable `code`, an HTTP status, a message for people and optional details
// (which field, which index). The API turns them into
//   {"error":{"code","message","details","request_id"}}
import { ErrorCodes, type ErrorCode, type Reason, type ReasonFor } from './error-catalogue.js';

export type { ErrorCode, Reason, ReasonFor } from './error-catalogue.js';

export interface ErrorDetail<R extends Reason = Reason> {
  /** JSON pointer-like path of the offending field, e.g. `/readings/3/rr_intervals_ms/0`. */
  field?: string;
  /** Index of the offending item in a batch, when there is one. */
  index?: number;
  /** Why it was refused: a catalogued reason (lib/error-catalogue.ts). */
  reason: R;
  /** Free text for people, e.g. Ajv's "must be >= 250" or a parser's message. */
  message?: string;
  [key: string]: unknown;
}

export class AttuneError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly statusCode: number;
  readonly details: ErrorDetail[];
  /** Each detail's reason must be catalogued under `code` (checked by the compiler). */
  constructor(code: C, message: string, details: ErrorDetail<ReasonFor<C>>[] = []) {
    super(message);
    this.name = 'AttuneError';
    this.code = code;
    this.statusCode = ErrorCodes[code].status;
    this.details = details;
  }
}

export const isAttuneError = (e: unknown): e is AttuneError => e instanceof AttuneError;
