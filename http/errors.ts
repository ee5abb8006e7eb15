// One error format for every route:
//   {"error":{"code","message","details","request_id"}}
// Fastify's own errors (schema validation, body too large, bad JSON, unsupported media type,
// a too-long path segment, a malformed URL), Node's parser errors (headers too large) and
// refusals while shutting down are mapped to the same codes so clients handle one shape.
// Every detail's `reason` comes from lib/error-catalogue.ts.
// With ATTUNE_ERROR_DOCS_URL (where the deployment publishes Attune's README), every body also
// carries `documentation_url`, that URL at the README's error catalogue (`#error-catalogue`),
// as the coherence platform document's error format does (../shared/seeds 000, "Error
// Handling"); the field is optional there, and absent without the setting: Attune does not
// know where its README is published.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AttuneError, isAttuneError, type ErrorCode, type ErrorDetail, type ReasonFor } from '../lib/errors.js';
import { MAX_BODY_JSON_DEPTH, bodyTooDeep, jsonBytesDepth } from '../lib/json-limits.js';
import { invalidText, jsonBytesHaveNul, nulPointer } from '../lib/text-limits.js';
import { iso } from '../lib/time.js';
import { discardRestOfBody } from './refused-body.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetail[]; request_id: string; field?: string; retry_after?: number; documentation_url?: string };
}

/**
 * A coded error as a WebSocket message: the session-sync document's envelope (`{id, type:
 * "error", timestamp, payload: {code, message, …}}`, its client reads `payload.code`) with the
 * HTTP body's fields in `payload`, and the same object as `error` beside it, the shape these
 * messages had before (its clients read `error.code`). `id`: the message answered, when there
 * is one (the readings socket's; null there for an error about the socket itself), else a fresh one.
 */
export function socketErrorMessage<I = string>(e: Pick<AttuneError, 'code' | 'message' | 'details'>, requestId: string | null, now: number, id?: I) {
  const body = { code: e.code, message: e.message, details: e.details, ...(requestId === null ? {} : { request_id: requestId }) };
  // A null id (the readings socket: an error about the socket, not one message) stays null.
  return { id: id === undefined ? randomUUID() : id, type: 'error' as const, timestamp: iso(now), payload: body, error: body };
}

/** The README's heading of the error catalogue, as an anchor. */
export const ERROR_CATALOGUE_ANCHOR = 'error-catalogue';

/** documentation_url for a docs base URL: the base at the error catalogue (a base with its own #fragment is used as given). */
export function documentationUrl(base: string): string {
  return base.includes('#') ? base : `${base}#${ERROR_CATALOGUE_ANCHOR}`;
}

/** The documentation base an app was built with (registerErrorHandling), or null. */
export function errorDocsUrlOf(app: FastifyInstance | undefined | null): string | null {
  const v = (app as unknown as { attuneErrorDocsUrl?: unknown } | undefined)?.attuneErrorDocsUrl;
  return typeof v === 'string' && v !== '' ? v : null;
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
        field: { type: 'string', description: "The field a 4xx is about, as a name (the communication platform document's `field`): the first detail's field without its leading /, ? or :." },
        retry_after: { type: 'integer', description: "Seconds to wait, as Retry-After says (429, and 503 where it is sent): the communication platform document's `retry_after`." },
        documentation_url: { type: 'string', format: 'uri', description: "The README's error catalogue (only where ATTUNE_ERROR_DOCS_URL is set)." },
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

type ValidationReason = ReasonFor<'validation_error'>;

/** Ajv keyword → catalogued reason; Ajv's own text stays in the detail's `message`. */
export const reasonByAjvKeyword: Readonly<Record<string, ValidationReason>> = {
  required: 'required',
  dependentRequired: 'required',
  dependencies: 'required',
  type: 'invalid_type',
  minimum: 'out_of_range',
  maximum: 'out_of_range',
  exclusiveMinimum: 'out_of_range',
  exclusiveMaximum: 'out_of_range',
  multipleOf: 'out_of_range',
  minLength: 'invalid_length',
  maxLength: 'invalid_length',
  minItems: 'invalid_length',
  maxItems: 'invalid_length',
  minProperties: 'invalid_length',
  maxProperties: 'invalid_length',
  additionalItems: 'invalid_length',
  pattern: 'invalid_format',
  format: 'invalid_format',
  additionalProperties: 'unknown_field',
  unevaluatedProperties: 'unknown_field',
  enum: 'invalid_value',
  const: 'invalid_value',
};

/** The reason for an Ajv keyword; keywords not in the table (anyOf, oneOf, not, if, uniqueItems, …) are `invalid_value`. */
export const reasonForAjvKeyword = (keyword: string): ValidationReason => reasonByAjvKeyword[keyword] ?? 'invalid_value';

function detail(field: string, reason: ValidationReason, message: string): ErrorDetail<ValidationReason> {
  const index = indexFromPath(field);
  return index === undefined ? { field, reason, message } : { field, index, reason, message };
}

/** Turns ajv issues into details naming the field (and its index in a batch). */
export function detailsFromValidation(issues: AjvIssue[], prefix = ''): ErrorDetail<ValidationReason>[] {
  // An anyOf of `required` branches ("hr or rr_intervals_ms") fails with one issue per branch
  // and then the anyOf itself: report it once, on the object, naming the alternatives.
  const anyOf = issues.find((v) => v.keyword === 'anyOf');
  if (anyOf) {
    const path = anyOf.instancePath ?? '';
    const branches = issues.filter((v) => v !== anyOf && (v.instancePath ?? '') === path);
    if (branches.length > 0 && branches.every((v) => v.keyword === 'required')) {
      const names = branches.map((v) => String(v.params?.missingProperty));
      return [detail(`${prefix}${path}` || '/', 'required', `must have ${names.join(' or ')}`)];
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
    // A value outside a fixed list says which values the list has (Ajv's text does not).
    const allowed = v.keyword === 'enum' ? v.params?.allowedValues : v.keyword === 'const' ? [v.params?.allowedValue] : undefined;
    if (Array.isArray(allowed) && allowed.length <= 50) {
      const shown = allowed.map((a) => JSON.stringify(a)).join(', ');
      return { ...detail(field || '/', reasonForAjvKeyword(v.keyword), `${v.message ?? v.keyword}: ${shown}`), allowed };
    }
    return detail(field || '/', reasonForAjvKeyword(v.keyword), v.message ?? v.keyword);
  });
}

/**
 * Fields of `value` (an object) that `schema` does not list, as `unknown_field` details. For a
 * validator that stops at its first error: an object missing a required field because its name
 * is misspelled fails on `required` (or an anyOf of them) before `additionalProperties` is
 * reached, and the misspelled name is the more useful thing to report.
 */
export function unknownFieldDetails(value: Record<string, unknown>, schema: { properties: Record<string, unknown> }, field: string): ErrorDetail<ValidationReason>[] {
  const out: ErrorDetail<ValidationReason>[] = [];
  // At most 10, names cut to 64 characters: a 1 MB body of unknown keys must not make a
  // 12 MB answer.
  for (const key of Object.keys(value)) {
    if (out.length >= 10) break;
    if (!Object.prototype.hasOwnProperty.call(schema.properties, key)) out.push(detail(`${field}/${key.slice(0, 64)}`, 'unknown_field', 'must NOT have additional properties'));
  }
  return out;
}

/**
 * detailsFromValidation for a validator that stopped at its first error, with the fields of
 * `value` that `schema` does not list named first when everything else is a missing field (a
 * misspelling: `heart_rate` for `hr`).
 */
export function detailsNamingUnknownFields(issues: AjvIssue[], value: Record<string, unknown>, schema: { properties: Record<string, unknown> }, field: string): ErrorDetail<ValidationReason>[] {
  const details = detailsFromValidation(issues, field);
  const onlyMissing = details.length > 0 && details.every((d) => d.reason === 'required');
  return onlyMissing ? [...unknownFieldDetails(value, schema, field), ...details] : details;
}

/** What a route accepts as a body, for a 415 (its schema's `consumes`, else JSON). */
export function acceptedContentTypes(req?: FastifyRequest): string[] {
  const consumes = (req?.routeOptions?.schema as { consumes?: unknown } | undefined)?.consumes;
  return Array.isArray(consumes) && consumes.every((c) => typeof c === 'string') ? consumes : ['application/json'];
}

export function toAttuneError(err: FastifyError | Error, req?: FastifyRequest): AttuneError {
  if (isAttuneError(err)) return err;
  const fe = err as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
  if (fe.validation) {
    const prefix = fe.validationContext === 'querystring' ? '?' : fe.validationContext === 'params' ? ':' : '';
    // A query or path parameter is named as the routes name theirs (`?limit`, `:org_id`), not
    // with the JSON pointer's slash Ajv gives it (`?/limit`); a body field stays a pointer.
    const details = detailsFromValidation(fe.validation, prefix).map((d) =>
      prefix !== '' && typeof d.field === 'string' && d.field.startsWith(`${prefix}/`) ? { ...d, field: prefix + d.field.slice(prefix.length + 1) } : d,
    );
    const first = details[0];
    return new AttuneError('validation_error', `invalid ${fe.validationContext ?? 'request'}: ${first?.field ?? ''} ${first?.message ?? ''}`.trim(), details);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AttuneError('payload_too_large', 'request body is too large', [{ reason: 'body_too_large', message: fe.message }]);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const accepted = acceptedContentTypes(req);
      const given = req?.headers['content-type'] ?? null;
      return new AttuneError('unsupported_media_type', `unsupported content type ${given === null ? '(none)' : JSON.stringify(given)}; send ${accepted.join(' or ')}`, [
        { field: 'content-type', reason: 'unsupported_content_type', content_type: given, accepted },
      ]);
    }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AttuneError('validation_error', 'request body is not valid JSON', [{ field: '/', reason: 'invalid_json', message: fe.message }]);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AttuneError('validation_error', fe.message, [{ reason: 'invalid_content_length' }]);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AttuneError('uri_too_long', 'a path segment is longer than any path parameter may be', [{ reason: 'uri_too_long', message: fe.message }]);
    case 'FST_ERR_BAD_URL':
      return new AttuneError('validation_error', 'the URL is malformed', [{ reason: 'malformed_request', message: fe.message }]);
  }
  if (err instanceof SyntaxError) {
    return new AttuneError('validation_error', 'request body is not valid JSON', [{ field: '/', reason: 'invalid_json', message: err.message }]);
  }
  if (fe.statusCode === 429) return new AttuneError('rate_limited', fe.message, [{ reason: 'rate_limited' }]);
  if (fe.statusCode === 404) return new AttuneError('not_found', fe.message, [{ reason: 'not_found' }]);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AttuneError('validation_error', fe.message, [{ reason: 'malformed_request', message: fe.code }]);
  }
  return new AttuneError('internal_error', 'internal error');
}

export function errorBody(err: AttuneError, requestId: string, docsUrl: string | null = null): ErrorBody {
  const body: ErrorBody = { error: { code: err.code, message: err.message, details: err.details, request_id: requestId } };
  // The communication platform document's error fields (../shared/seeds 003, "Error
  // Responses"), beside the details they repeat: `field`, the field a 4xx names, as a name
  // ("email"; Attune's pointer without its leading "/", "?" or ":"), and `retry_after`, the
  // seconds of its 429 (and of a 503 with Retry-After).
  const field = err.statusCode < 500 ? err.details.find((d) => typeof d.field === 'string' && d.field.replace(/^[/?:]/, '') !== '')?.field : undefined;
  if (field !== undefined) body.error.field = field.replace(/^[/?:]/, '');
  const retry = err.details.find((d) => typeof d.retry_after_s === 'number' && d.retry_after_s > 0)?.retry_after_s as number | undefined;
  if (retry !== undefined) body.error.retry_after = Math.ceil(retry);
  if (docsUrl) body.error.documentation_url = documentationUrl(docsUrl);
  return body;
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a path segment longer than
 * maxParamLength → 414, a malformed URL → 400), in the coded body.
 */
export function frameworkErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const coded = toAttuneError(err, req);
  req.log.info({ code: coded.code, error_message: coded.message }, 'request refused');
  void reply.status(coded.statusCode).send(errorBody(coded, String(req.id), errorDocsUrlOf(req.server)));
}

/**
 * Fastify's `clientErrorHandler`: errors from Node's HTTP parser, before there is a request
 * (headers too large → 431, request timeout → 408, unparseable request → 400), written to the
 * socket in the coded body. Mirrors Fastify's default handler otherwise.
 */
export function clientErrorHandler(this: FastifyInstance | undefined, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let coded: AttuneError;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    coded = new AttuneError('header_too_large', 'the request line and headers are too large', [{ reason: 'header_too_large' }]);
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    coded = new AttuneError('request_timeout', 'the request was not received in time', [{ reason: 'request_timeout' }]);
  } else {
    coded = new AttuneError('validation_error', 'the HTTP request cannot be parsed', [{ reason: 'malformed_request', message: err.code ?? err.message }]);
  }
  this?.log?.debug({ err }, 'client error');
  if (socket.writable) {
    const body = JSON.stringify(errorBody(coded, randomUUID(), errorDocsUrlOf(this)));
    const status = `${coded.statusCode} ${STATUS_CODES[coded.statusCode] ?? ''}`.trimEnd();
    socket.write(`HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/**
 * Fastify's JSON body parser behind a depth scan: a body nested deeper than `maxDepth` is a
 * 400 validation_error (`json_too_deep`, field '/') before JSON.parse builds it. A body nested
 * 10,000 deep parsed fine but made a later JSON.stringify (of the stored metadata) throw a
 * RangeError, a 500; no route takes anything close to 64 levels. The scan is one pass over the
 * body's bytes before they are decoded (bench/json-depth.bench.ts measures it on a 1 MB sync
 * body: about half of what JSON.parse of it costs).
 */
export function registerJsonBodyParser(app: FastifyInstance, maxDepth = MAX_BODY_JSON_DEPTH): void {
  const { onProtoPoisoning, onConstructorPoisoning } = app.initialConfig;
  const parse = app.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer;
    // An empty body (or only whitespace) is no body, as without a content type: clients that
    // set `Content-Type: application/json` on every request send it with the calls that take
    // none (leave, end), which Fastify's parser refused as invalid JSON (a walkthrough). A
    // route that needs a body still says which field is missing.
    if (isBlank(bytes)) {
      done(null, undefined);
      return;
    }
    if (jsonBytesDepth(bytes, maxDepth) > maxDepth) {
      done(bodyTooDeep(maxDepth), undefined);
      return;
    }
    // A \u0000 in any string: PostgreSQL stores no NUL (lib/text-limits.ts).
    // Named by its pointer (the body parsed only on this refusal's path), '/' when the body is not JSON either.
    if (jsonBytesHaveNul(bytes)) {
      let field = '/';
      try {
        field = nulPointer(JSON.parse(bytes.toString('utf8'))) ?? '/';
      } catch {
        // not JSON: the NUL is still the first thing wrong with it that can be named
      }
      done(invalidText(field), undefined);
      return;
    }
    parse(req, bytes.toString('utf8'), done);
  });
}

/** Nothing but JSON whitespace (RFC 8259: space, tab, line feed, carriage return). */
function isBlank(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  }
  return true;
}

/** Seconds a 503 tells the client to wait: a detail's retry_after_s (e.g. a bus that cannot take data), else 5. */
export function retryAfterS(err: AttuneError): number {
  for (const d of err.details) if (typeof d.retry_after_s === 'number' && d.retry_after_s > 0) return Math.ceil(d.retry_after_s);
  return 5;
}

export function registerErrorHandling(app: FastifyInstance, opts: { docsUrl?: string | null } = {}): void {
  const docsUrl = opts.docsUrl ?? null;
  app.decorate('attuneErrorDocsUrl', docsUrl);
  // No route takes text/plain: without Fastify's default parser a text body on a JSON route
  // is 415 unsupported_content_type, not a 400 from the schema ("body must be object").
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app);
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const coded = toAttuneError(err, req);
    if (coded.statusCode >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: coded.code, error_message: coded.message }, 'request refused');
    if (coded.statusCode === 503 && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(retryAfterS(coded)));
    // Fastify answers a body refused while it is still coming (over the body limit, a parser's
    // error) with Connection: close: the kernel then resets the connection with the client's
    // bytes unread, and a client still sending (Node's fetch) fails with EPIPE instead of
    // reading the 413 (an STT walkthrough: a 20 MB JSON body to the sync route, 1 try in 3).
    // The rest is read and dropped, bounded, and the connection stays (http/refused-body.ts).
    if (!req.raw.complete && String(reply.getHeader('connection') ?? '').toLowerCase() === 'close') {
      reply.removeHeader('connection');
      discardRestOfBody(req, reply);
    }
    void reply.status(coded.statusCode).send(errorBody(coded, String(req.id), docsUrl));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new AttuneError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`, [{ reason: 'no_route' }]);
    void reply.status(404).send(errorBody(e, String(req.id), docsUrl));
  });
  // Requests that arrive while the server closes (on a kept-alive connection) are refused in
  // the coded body; Fastify's own return503OnClosing is off (http/server.ts).
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', async (req, reply) => {
    if (!closing) return;
    const e = new AttuneError('unavailable', 'the server is shutting down; retry on another connection', [{ reason: 'shutting_down' }]);
    return reply.status(503).header('connection', 'close').send(errorBody(e, String(req.id), docsUrl));
  });
}
