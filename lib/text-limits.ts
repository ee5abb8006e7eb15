// Text Attune cannot store. PostgreSQL refuses a NUL character (U+0000) in text and in jsonb
// (`\u0000 cannot be converted to text`), and jsonb refuses an unpaired UTF-16 surrogate
// escape (which JSON.stringify writes for a lone surrogate). Either reached the database as a
// 500 before (found by schemathesis); now it is refused up front as a 400 `invalid_text`.
import { AttuneError } from './errors.js';

/** A JSON `\u0000` or lone-surrogate escape that is not itself escaped (an even run of backslashes before it). */
const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Whether JSON text (a request body's bytes) has a `\u0000` escape: one indexOf over the bytes when it has none. */
export function jsonBytesHaveNul(bytes: Buffer): boolean {
  if (bytes.indexOf('\\u0000') === -1) return false;
  // latin1 keeps every byte one character: the escape is ASCII, the rest does not matter.
  return NUL_ESCAPE.test(bytes.toString('latin1'));
}

/**
 * What makes JSON text as JSON.stringify writes it unstorable as jsonb: a NUL or an unpaired
 * surrogate (written as a `\udXXX` escape; paired ones are written as themselves), else null.
 */
export function unstorableJsonText(text: string): 'nul' | 'surrogate' | null {
  const m = UNSTORABLE_ESCAPE.exec(text);
  if (!m) return null;
  return m[0].toLowerCase().endsWith('u0000') ? 'nul' : 'surrogate';
}

/**
 * The JSON pointer of the first string (a value or a key) with a NUL in a parsed body, else
 * null: what a refusal names, so `{"title":"a\u0000b"}` is refused as `/title`, not `/`. Run
 * only once a NUL is known to be there (jsonBytesHaveNul), so it costs nothing otherwise.
 */
export function nulPointer(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\0') ? path || '/' : null;
  if (value === null || typeof value !== 'object') return null;
  for (const [key, v] of Object.entries(value)) {
    const here = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1').replace(/\0/g, '\\u0000')}`;
    if (key.includes('\0')) return here;
    const found = nulPointer(v, here);
    if (found) return found;
  }
  return null;
}

/** The refusal of text with a NUL (or, in stored JSON, a lone surrogate), naming the field. */
export function invalidText(field: string, what: 'nul' | 'surrogate' = 'nul'): AttuneError {
  const message = what === 'nul' ? 'contains a NUL character (U+0000), which cannot be stored' : 'contains an unpaired UTF-16 surrogate, which cannot be stored';
  return new AttuneError('validation_error', `${field === '/' ? 'the request body' : field.replace(/^[/?]/, '')} ${message}`, [{ field, reason: 'invalid_text', message }]);
}
