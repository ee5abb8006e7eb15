// One error format for every route:
//   {"error":{"code","message","details","request_id"}}
// Fastify's own errors (schema validation, body too large, bad JSON, unsupported media type)
// are mapped to the same codes so clients handle one shape.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AttuneError, isAttuneError, type ErrorCode, type ErrorDetail } from '../lib/errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetail[]; request_id: string };
}

export const errorBodySchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'array', items: { type: 'object', additionalProperties: true } },
        request_id: { type: 'string' },
      },
      required: ['code', 'message', 'details', 'request_id'],
    },
  },
  required: ['error'],
} as const;

/** Index of the first array element in a JSON pointer, e.g. `/readings/3/hr` → 3. */
export function indexFromPath(path: string): number | undefined {
  const m = /\/(\d+)(?:\/|$)/.exec(path);
  return m ? Number(m[1]) : undefined;
}

interface AjvIssue {
  instancePath?: string;
  keyword: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Turns ajv issues into details naming the field (and its index in a batch). */
export function detailsFromValidation(issues: AjvIssue[], prefix = ''): ErrorDetail[] {
  // An anyOf of `required` branches ("hr or rr_intervals_ms") fails with one issue per branch
  // and then the anyOf itself: report it once, on the object, naming the alternatives.
  const anyOf = issues.find((v) => v.keyword === 'anyOf');
  if (anyOf) {
    const path = anyOf.instancePath ?? '';
    const branches = issues.filter((v) => v !== anyOf && (v.instancePath ?? '') === path);
    if (branches.length > 0 && branches.every((v) => v.keyword === 'required')) {
      const names = branches.map((v) => String(v.params?.missingProperty));
      const field = `${prefix}${path}` || '/';
      const detail: ErrorDetail = { field, reason: `must have ${names.join(' or ')}` };
      const index = indexFromPath(field);
      if (index !== undefined) detail.index = index;
      return [detail];
    }
  }
  return issues.map((v) => {
    let field = `${prefix}${v.instancePath ?? ''}`;
    if (v.keyword === 'required' && typeof v.params?.missingProperty === 'string') {
      field = `${field}/${v.params.missingProperty}`;
    }
    if (v.keyword === 'additionalProperties' && typeof v.params?.additionalProperty === 'string') {
      field = `${field}/${v.params.additionalProperty}`;
    }
    const detail: ErrorDetail = { field: field || '/', reason: v.message ?? v.keyword };
    const index = indexFromPath(field);
    if (index !== undefined) detail.index = index;
    return detail;
  });
}

export function toAttuneError(err: FastifyError | Error): AttuneError {
  if (isAttuneError(err)) return err;
  const fe = err as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
  if (fe.validation) {
    const prefix = fe.validationContext === 'querystring' ? '?' : fe.validationContext === 'params' ? ':' : '';
    const details = detailsFromValidation(fe.validation, prefix);
    const first = details[0];
    return new AttuneError('validation_error', `invalid ${fe.validationContext ?? 'request'}: ${first?.field ?? ''} ${first?.reason ?? ''}`.trim(), details);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AttuneError('payload_too_large', 'request body is too large', [{ reason: fe.message }]);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AttuneError('unsupported_media_type', fe.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AttuneError('validation_error', 'request body is not valid JSON', [{ field: '/', reason: fe.message }]);
  }
  if (err instanceof SyntaxError) {
    return new AttuneError('validation_error', 'request body is not valid JSON', [{ field: '/', reason: err.message }]);
  }
  if (fe.statusCode === 429) return new AttuneError('rate_limited', fe.message);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AttuneError(fe.statusCode === 404 ? 'not_found' : 'validation_error', fe.message);
  }
  return new AttuneError('internal_error', 'internal error');
}

export function errorBody(err: AttuneError, requestId: string): ErrorBody {
  return { error: { code: err.code, message: err.message, details: err.details, request_id: requestId } };
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const coded = toAttuneError(err);
    if (coded.statusCode >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: coded.code, msg: coded.message }, 'request refused');
    void reply.status(coded.statusCode).send(errorBody(coded, String(req.id)));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new AttuneError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`);
    void reply.status(404).send(errorBody(e, String(req.id)));
  });
}
