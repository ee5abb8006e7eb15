// Route schemas compiled when first used, not while the server starts.
//
// Fastify compiles every route's validators (ajv) and response serializers
// (fast-json-stringify) before it listens: measured on this machine, ~330 ms of the main
// thread's ~1.7 s from process start to listening for `attune all`, for ~50 routes of which a
// restarted ingest process needs one or two at first. After a crash every second before the
// first 202 counts (issue 10's "202s resume within 10 s of the restart", on a machine whose two
// cores other processes are using), so the compilers here hand Fastify functions that compile
// their schema on their first call. `warmUp` then compiles the rest in the background, one
// schema per turn of the event loop, so the first request of a rarely used route does not pay
// for it either, and a schema that does not compile is logged soon after the start rather than
// at its first request. The compilers are Fastify's own (@fastify/ajv-compiler,
// @fastify/fast-json-stringify-compiler) with the options Fastify gives them: validation and
// serialisation are unchanged, only when they are built.
import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type AnyFn = (...args: any[]) => any;
/** What Fastify calls a validator with, and the ajv fields it reads from one. */
interface Validator {
  (data: unknown, ctx?: unknown): unknown;
  errors?: unknown;
  schemaEnv?: unknown;
}

export interface LazySchemaCompilers {
  /** For Fastify's `schemaController` option. */
  schemaController: NonNullable<FastifyServerOptions['schemaController']>;
  /** Wraps a route's own validator compiler (a route's `validatorCompiler` option) the same way. */
  lazyValidatorCompiler<C extends AnyFn>(compiler: C): C;
  /** Schemas not compiled yet. */
  readonly pending: number;
  /**
   * Compiles every schema not compiled yet, one per turn of the event loop (setImmediate, so
   * requests and I/O go between them). A schema that fails is reported through `onError`, and
   * its requests answer 500 with that error (Fastify's eager compile would have failed the
   * start: the OpenAPI test checks every route's schema compiles).
   */
  warmUp(onError: (err: unknown, what: string) => void, stopped?: () => boolean): Promise<void>;
}

/**
 * The parts whose strings ajv coerces to numbers. A digit string too long for a double
 * ("1e400", or 400 nines) coerces to Infinity, and ajv (strictNumbers) applies `maximum` and
 * `minimum` only to finite numbers, so `?limit=1e400` passed `maximum: 200` and reached
 * PostgreSQL as a 500 (`invalid input syntax for type bigint: "Infinity"`). A JSON body cannot
 * carry one past its schema (JSON.parse gives Infinity, which the type check refuses).
 */
const COERCED_PARTS = new Set(['querystring', 'params', 'headers']);

/** An ajv-shaped issue for the first non-finite number in a coerced object (top level or an array in it), else null. */
function nonFiniteIssue(data: unknown): { instancePath: string; keyword: string; params: Record<string, unknown>; message: string } | null {
  if (data === null || typeof data !== 'object') return null;
  for (const [key, value] of Object.entries(data)) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'number' && !Number.isFinite(v))) {
      return { instancePath: `/${key}`, keyword: 'maximum', params: {}, message: 'must be a finite number' };
    }
  }
  return null;
}

export function createLazySchemaCompilers(): LazySchemaCompilers {
  /** Compiles of schemas not used yet, by a description for the logs. */
  const pending = new Map<() => void, string>();

  /** A memo of `compile` (or of its error: a schema that does not compile is not tried again), listed in `pending` until its first call. */
  const once = <T>(compile: () => T, what: string): (() => T) => {
    let compiled: { fn: T } | { error: unknown } | undefined;
    const get = (): T => {
      if (compiled === undefined) {
        try {
          compiled = { fn: compile() };
        } catch (error) {
          compiled = { error };
        }
        pending.delete(warm);
      }
      if ('error' in compiled) throw compiled.error;
      return compiled.fn;
    };
    const warm = (): void => void get();
    pending.set(warm, what);
    return get;
  };

  const lazyValidator = (compile: () => Validator, what: string, coercedPart: boolean): Validator => {
    const get = once(compile, what);
    const validate: Validator = function (data: unknown, ctx?: unknown) {
      const fn = get();
      const out = ctx === undefined ? fn(data) : fn(data, ctx);
      // Fastify reads the errors from the function it was given (ajv sets them on its own).
      validate.errors = fn.errors;
      if (out === true && coercedPart) {
        const bad = nonFiniteIssue(data);
        if (bad) {
          validate.errors = [bad];
          return false;
        }
      }
      return out;
    };
    // Fastify passes ajv functions their parent (so that coercion may replace a root value)
    // when this is set: asked per request, so compiling here is compiling at first use.
    Object.defineProperty(validate, 'schemaEnv', { get: () => get().schemaEnv });
    return validate;
  };

  const lazySerializer = (compile: () => AnyFn, what: string): AnyFn => {
    const get = once(compile, what);
    return (data: unknown) => get()(data);
  };

  const describe = (o: { method?: string; url?: string; httpPart?: string; httpStatus?: string }): string =>
    `${o.method ?? ''} ${o.url ?? ''} ${o.httpPart ?? (o.httpStatus ? `response ${o.httpStatus}` : '')}`.trim();

  const validatorFactory = AjvCompiler();
  const serializerFactory = SerializerSelector();

  const lazyValidatorCompiler = <C extends AnyFn>(compiler: C): C =>
    ((route: Parameters<C>[0]) =>
      lazyValidator(() => compiler(route), describe(route), COERCED_PARTS.has((route as { httpPart?: string }).httpPart ?? ''))) as C;

  return {
    schemaController: {
      compilersFactory: {
        buildValidator: (externalSchemas: unknown, options: unknown) => {
          // Bodies are JSON, typed by the client: no coercion there ({"coherence_threshold": true}
          // was stored as 1, "12" as 12; a walkthrough of the wellness document's schema
          // validation). Query strings, path parameters and headers are text: coerced, as before.
          const o = options as { customOptions?: Record<string, unknown> };
          const coercing = lazyValidatorCompiler((validatorFactory as AnyFn)(externalSchemas, options));
          const strict = lazyValidatorCompiler((validatorFactory as AnyFn)(externalSchemas, { ...o, customOptions: { ...o.customOptions, coerceTypes: false } }));
          return (route: { httpPart?: string }) => (route.httpPart === 'body' ? strict(route) : coercing(route));
        },
        buildSerializer: (externalSchemas: unknown, options: unknown) => {
          const compiler = (serializerFactory as AnyFn)(externalSchemas, options);
          return (route: any) => lazySerializer(() => compiler(route), describe(route));
        },
      },
    } as NonNullable<FastifyServerOptions['schemaController']>,
    lazyValidatorCompiler,
    get pending() {
      return pending.size;
    },
    async warmUp(onError, stopped = () => false) {
      while (!stopped()) {
        const next = pending.entries().next();
        if (next.done) return;
        const [warm, what] = next.value;
        pending.delete(warm);
        try {
          warm();
        } catch (err) {
          onError(err, what);
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    },
  };
}
