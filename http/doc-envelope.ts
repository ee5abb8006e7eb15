// The speech-coaching document's success envelope, `{success: true, data, meta: {timestamp,
// requestId}}`, added beside Attune's own fields on the routes under /v1/speech-sessions: a
// client written against the document reads `data`, Attune's clients keep reading the fields
// they always had (the two only meet on the list's `data`, where the document wins; Attune's
// array is `items` there). Shared by api/ (sessions, results) and ingest/ (uploads).

export interface DocMeta {
  timestamp: string;
  requestId: string;
}

/** `body` plus the envelope's three fields (body's own `success`, `data`, `meta` are replaced). */
export function withDocEnvelope<B extends object, D>(body: B, data: D, req: { id: unknown }, now: number = Date.now()): B & { success: true; data: D; meta: DocMeta } {
  return { ...body, success: true as const, data, meta: { timestamp: new Date(now).toISOString(), requestId: String(req.id) } };
}

/** JSON Schema of the envelope's fields, for a route's response schema (`data` as given). */
export function docEnvelopeSchema(data: object) {
  return {
    success: { type: 'boolean', enum: [true], description: "The speech-coaching document's envelope: always true on a 2xx." },
    data: { ...data, description: "The speech-coaching document's shape of this answer (names and units as the document has them; times in seconds)." },
    meta: {
      type: 'object',
      properties: { timestamp: { type: 'string', format: 'date-time' }, requestId: { type: 'string', description: 'Also in X-Request-Id and in error bodies.' } },
    },
  } as const;
}

/** A loose object schema (the document's shapes are described in the README; properties may be added). */
export const openObject = { type: 'object', additionalProperties: true } as const;
