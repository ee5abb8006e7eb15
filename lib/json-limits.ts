// Limits on JSON that clients send and Attune stores (issue 9): a request body nested deeper
// than any route needs is refused before JSON.parse builds it (a body nested 10,000 deep once
// turned into a JSON.stringify RangeError, a 500), and the free-form objects a client stores
// (session metadata, speech-session settings, upload metadata) are capped in bytes and depth,
// so that no tenant can make lists, caches and bus records large for everyone.
import { invalidText, unstorableJsonText } from './text-limits.js';
import { AttuneError } from './errors.js';

/** Stored JSON (metadata, settings): at most this many bytes by default (ATTUNE_MAX_STORED_JSON_BYTES). */
export const DEFAULT_MAX_STORED_JSON_BYTES = 16_384;
/** Stored JSON: at most this deep (the object itself is depth 1). */
export const MAX_STORED_JSON_DEPTH = 32;
/**
 * A request body: at most this deep. Above the stored depth (a stored object sits one or two
 * levels down in a body), so an over-deep `metadata` is refused naming the field, while a body
 * nested thousands deep never reaches JSON.parse.
 */
export const MAX_BODY_JSON_DEPTH = 64;

export interface StoredJsonLimits {
  maxBytes: number;
  maxDepth: number;
}

export const defaultStoredJsonLimits = (maxBytes: number = DEFAULT_MAX_STORED_JSON_BYTES): StoredJsonLimits => ({ maxBytes, maxDepth: MAX_STORED_JSON_DEPTH });

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** jsonBytesDepth of a string (encoded to UTF-8 first): for short texts such as a form field. */
export function jsonTextDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  return jsonBytesDepth(Buffer.from(text, 'utf8'), limit);
}

/**
 * The nesting depth of JSON text given as UTF-8 bytes, scanning no further than needed:
 * returns a number above `limit` as soon as the text goes deeper than `limit` (so the cost of
 * a hostile body is its first few bytes). Brackets inside strings do not count; multi-byte
 * characters never contain the ASCII bytes it looks for. The text need not be valid JSON:
 * JSON.parse judges that afterwards. Over bytes rather than a string's charCodeAt: about
 * twice as fast (bench/json-depth.bench.ts).
 */
export function jsonBytesDepth(bytes: Uint8Array, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const d = bytes[i];
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return max;
}

/**
 * The nesting depth of a parsed value (an object or array is one level more than its deepest
 * member; a scalar is 0), without recursion, stopping once it exceeds `limit`.
 */
export function jsonValueDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  if (value === null || typeof value !== 'object') return 0;
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (d > max) {
      max = d;
      if (max > limit) return max;
    }
    const members = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const m of members) if (m !== null && typeof m === 'object') stack.push([m, d + 1]);
  }
  return max;
}

/** The refusal of a body nested deeper than MAX_BODY_JSON_DEPTH (field '/'). */
export function bodyTooDeep(limit: number = MAX_BODY_JSON_DEPTH): AttuneError {
  return new AttuneError('validation_error', `request body is nested deeper than ${limit} levels`, [
    { field: '/', reason: 'json_too_deep', max_depth: limit, message: `nested deeper than ${limit} levels` },
  ]);
}

/** The refusal of a stored JSON field nested deeper than `maxDepth`, naming the field. */
export function storedJsonTooDeep(field: string, maxDepth: number): AttuneError {
  return new AttuneError('validation_error', `${field.replace(/^\//, '')} is nested deeper than ${maxDepth} levels`, [
    { field, reason: 'json_too_deep', max_depth: maxDepth, message: `nested deeper than ${maxDepth} levels` },
  ]);
}

/**
 * Checks a JSON object a client asks Attune to store: at most `limits.maxDepth` deep and
 * `limits.maxBytes` bytes of JSON (UTF-8), else a 400 validation_error naming `field`
 * (`json_too_deep` / `json_too_large`). Returns its size in bytes. Depth is checked first, so
 * the size is measured only on a value JSON.stringify can handle.
 */
export function checkStoredJson(value: unknown, field: string, limits: StoredJsonLimits): number {
  if (jsonValueDepth(value, limits.maxDepth) > limits.maxDepth) throw storedJsonTooDeep(field, limits.maxDepth);
  const text = JSON.stringify(value) ?? '';
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) {
    throw new AttuneError('validation_error', `${field.replace(/^\//, '')} is larger than ${limits.maxBytes} bytes of JSON`, [
      { field, reason: 'json_too_large', max_bytes: limits.maxBytes, bytes, message: `${bytes} bytes of JSON; at most ${limits.maxBytes}` },
    ]);
  }
  // NUL and lone surrogates: jsonb refuses them (a 500 before).
  const unstorable = unstorableJsonText(text);
  if (unstorable) throw invalidText(field, unstorable);
  return bytes;
}
