// A Confluent Schema Registry double: an in-process HTTP server with the part of the
// Confluent REST API that Attune and its tests use, and the registry's rules as documented
// by Confluent, so that the one contract suite (registry.contract.ts) can run against it
// where no real registry runs (no Docker, and no Confluent-compatible registry installable
// from the registries this machine reaches: see registry.contract.test.ts).
//
//   POST /subjects/{s}/versions        register; the same schema again → its existing id;
//                                      a new one must pass the subject's compatibility
//                                      level against the latest version (or all, *_TRANSITIVE)
//                                      → 409 error_code 409; not Avro → 422 error_code 42201
//   POST /subjects/{s}                 look a schema up under a subject (40401, 40403)
//   GET  /subjects, /subjects/{s}/versions, /subjects/{s}/versions/{n|latest}
//   GET  /schemas/ids/{id}             → { schema } (40403 when unknown)
//   GET|PUT /config, /config/{s}       compatibility level (global default BACKWARD;
//                                      GET /config/{s} without a subject level → 40408)
//
// Ids are global: one id per distinct schema (avsc's canonical form), whatever the subject.
// Compatibility is Avro schema resolution as avsc implements it: BACKWARD = the new schema
// can read data written with the old; FORWARD = the old can read the new; FULL = both.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseSchema, type AvroType } from './schemas.js';

export type CompatibilityLevel = 'NONE' | 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE';
const LEVELS = new Set<string>(['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE']);

export interface ConfluentDouble {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Every request, as `METHOD /path`. */
  calls: string[];
  close(): Promise<void>;
}

interface Stored {
  id: number;
  text: string;
  canonical: string;
  type: AvroType;
}

export async function startConfluentDouble(): Promise<ConfluentDouble> {
  const byId: Stored[] = [];
  const byCanonical = new Map<string, Stored>();
  const subjects = new Map<string, number[]>(); // subject → schema ids, version n at index n-1
  const subjectLevels = new Map<string, CompatibilityLevel>();
  let globalLevel: CompatibilityLevel = 'BACKWARD';
  const calls: string[] = [];

  const send = (res: ServerResponse, status: number, json: unknown) => {
    res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
    res.end(JSON.stringify(json));
  };
  const fail = (res: ServerResponse, status: number, errorCode: number, message: string) =>
    send(res, status, { error_code: errorCode, message });

  /** The schema of a request body, or the reason it is not one. */
  function parseBody(body: string): { stored: Omit<Stored, 'id'> } | { error: string } {
    let text: unknown;
    try {
      text = (JSON.parse(body) as { schema?: unknown; schemaType?: unknown }).schema;
    } catch (err) {
      return { error: `request body is not JSON: ${(err as Error).message}` };
    }
    if (typeof text !== 'string') return { error: 'request body has no schema string' };
    try {
      const type = parseSchema(JSON.parse(text));
      return { stored: { text, canonical: JSON.stringify(type.schema()), type } };
    } catch (err) {
      return { error: `Invalid schema: ${(err as Error).message}` };
    }
  }

  /** Whether `reader` can read data written with `writer` (Avro schema resolution). */
  function canRead(reader: AvroType, writer: AvroType): string | null {
    try {
      reader.createResolver(writer);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  function incompatibility(level: CompatibilityLevel, candidate: AvroType, versions: number[]): string | null {
    if (level === 'NONE' || versions.length === 0) return null;
    const against = level.endsWith('_TRANSITIVE') ? versions : versions.slice(-1);
    for (const id of against) {
      const old = byId[id - 1].type;
      if (level.startsWith('BACKWARD') || level.startsWith('FULL')) {
        const why = canRead(candidate, old);
        if (why) return `the new schema cannot read data written with schema id ${id} (${level}): ${why}`;
      }
      if (level.startsWith('FORWARD') || level.startsWith('FULL')) {
        const why = canRead(old, candidate);
        if (why) return `schema id ${id} cannot read data written with the new schema (${level}): ${why}`;
      }
    }
    return null;
  }

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const url = (req.url ?? '').split('?')[0];
    calls.push(`${req.method} ${url}`);
    let m: RegExpMatchArray | null;

    if ((m = url.match(/^\/subjects\/([^/]+)\/versions$/))) {
      const subject = decodeURIComponent(m[1]);
      const versions = subjects.get(subject) ?? [];
      if (req.method === 'GET') {
        if (!subjects.has(subject)) return fail(res, 404, 40401, `Subject '${subject}' not found.`);
        return send(res, 200, versions.map((_, i) => i + 1));
      }
      if (req.method !== 'POST') return fail(res, 405, 405, 'method not allowed');
      const parsed = parseBody(body);
      if ('error' in parsed) return fail(res, 422, 42201, parsed.error);
      const existing = byCanonical.get(parsed.stored.canonical);
      if (existing && versions.includes(existing.id)) return send(res, 200, { id: existing.id });
      const why = incompatibility(subjectLevels.get(subject) ?? globalLevel, parsed.stored.type, versions);
      if (why) return fail(res, 409, 409, `Schema being registered is incompatible with an earlier schema for subject "${subject}": ${why}`);
      let stored = existing;
      if (!stored) {
        stored = { id: byId.length + 1, ...parsed.stored };
        byId.push(stored);
        byCanonical.set(stored.canonical, stored);
      }
      subjects.set(subject, [...versions, stored.id]);
      return send(res, 200, { id: stored.id });
    }

    if ((m = url.match(/^\/subjects\/([^/]+)\/versions\/([^/]+)$/)) && req.method === 'GET') {
      const subject = decodeURIComponent(m[1]);
      const versions = subjects.get(subject);
      if (!versions) return fail(res, 404, 40401, `Subject '${subject}' not found.`);
      const n = m[2] === 'latest' || m[2] === '-1' ? versions.length : Number(m[2]);
      const id = versions[n - 1];
      if (!Number.isInteger(n) || id === undefined) return fail(res, 404, 40402, `Version ${m[2]} not found.`);
      return send(res, 200, { subject, version: n, id, schema: byId[id - 1].text });
    }

    if ((m = url.match(/^\/subjects\/([^/]+)$/)) && req.method === 'POST') {
      const subject = decodeURIComponent(m[1]);
      const versions = subjects.get(subject);
      if (!versions) return fail(res, 404, 40401, `Subject '${subject}' not found.`);
      const parsed = parseBody(body);
      if ('error' in parsed) return fail(res, 422, 42201, parsed.error);
      const existing = byCanonical.get(parsed.stored.canonical);
      const version = existing ? versions.indexOf(existing.id) + 1 : 0;
      if (!existing || version === 0) return fail(res, 404, 40403, 'Schema not found');
      return send(res, 200, { subject, version, id: existing.id, schema: existing.text });
    }

    if (url === '/subjects' && req.method === 'GET') return send(res, 200, [...subjects.keys()]);

    if ((m = url.match(/^\/schemas\/ids\/(\d+)$/)) && req.method === 'GET') {
      const stored = byId[Number(m[1]) - 1];
      return stored ? send(res, 200, { schema: stored.text }) : fail(res, 404, 40403, 'Schema not found');
    }

    if ((m = url.match(/^\/config(?:\/([^/]+))?$/))) {
      const subject = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
      if (req.method === 'GET') {
        if (subject === undefined) return send(res, 200, { compatibilityLevel: globalLevel });
        const level = subjectLevels.get(subject);
        return level
          ? send(res, 200, { compatibilityLevel: level })
          : fail(res, 404, 40408, `Subject '${subject}' does not have subject-level compatibility configured`);
      }
      if (req.method === 'PUT') {
        let level: unknown;
        try {
          level = (JSON.parse(body) as { compatibility?: unknown }).compatibility;
        } catch {
          level = undefined;
        }
        if (typeof level !== 'string' || !LEVELS.has(level)) return fail(res, 422, 42203, 'Invalid compatibility level');
        if (subject === undefined) globalLevel = level as CompatibilityLevel;
        else subjectLevels.set(subject, level as CompatibilityLevel);
        return send(res, 200, { compatibility: level });
      }
    }

    fail(res, 404, 404, `HTTP 404 Not Found: no route ${req.method} ${url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
