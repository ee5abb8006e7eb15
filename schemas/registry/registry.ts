// Where schema ids come from. Both implementations give the same contract:
// register(subject, schema) → id (idempotent), getSchema(id) → the writer schema.
//  - LocalSchemaRegistry: fixed ids from the committed manifest registry.json, for the
//    embedded bus and for Kafka without a registry; nothing to run, ids never change.
//  - ConfluentSchemaRegistry: a real Confluent-compatible registry over HTTP.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AttuneError } from '../../lib/errors.js';
import { avroSchemaDir, loadSchemaFile, schemaFingerprint, type AvroSchema } from './schemas.js';

export interface SchemaRegistry {
  /** The id of `schema` under `subject`, registering it when the registry allows that. */
  register(subject: string, schema: AvroSchema): Promise<number>;
  /** The schema with this id; rejects with AttuneError `not_found` when there is none. */
  getSchema(id: number): Promise<AvroSchema>;
}

export const unknownSchemaId = (id: number): AttuneError =>
  new AttuneError('not_found', `unknown Avro schema id ${id}`, [{ reason: 'unknown_schema_id', schema_id: id }]);

export interface LocalSchemaEntry {
  id: number;
  subject: string;
  schema: AvroSchema;
}

interface ManifestEntry {
  id: number;
  subject: string;
  file: string;
  fingerprint: string;
}

export const defaultManifestPath = fileURLToPath(new URL('./registry.json', import.meta.url));

export class LocalSchemaRegistry implements SchemaRegistry {
  private readonly byId = new Map<number, LocalSchemaEntry & { fingerprint: string }>();

  constructor(entries: LocalSchemaEntry[]) {
    for (const entry of entries) {
      if (!Number.isInteger(entry.id) || entry.id < 0 || entry.id > 0x7fffffff) {
        throw new AttuneError('internal_error', `schema id ${entry.id} is not a non-negative 32-bit integer`);
      }
      if (this.byId.has(entry.id)) throw new AttuneError('conflict', `schema id ${entry.id} is listed twice`);
      this.byId.set(entry.id, { ...entry, fingerprint: schemaFingerprint(entry.schema) });
    }
  }

  /**
   * Loads the manifest and its .avsc files. Refuses to start when a file no longer matches
   * its recorded fingerprint: records already on the bus were written with the old layout.
   */
  static fromManifest(manifestPath: string = defaultManifestPath, schemaDir: string = avroSchemaDir): LocalSchemaRegistry {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { schemas: ManifestEntry[] };
    const entries = manifest.schemas.map((m) => {
      const schema = loadSchemaFile(m.file, schemaDir);
      const actual = schemaFingerprint(schema);
      if (actual !== m.fingerprint) {
        throw new AttuneError(
          'conflict',
          `${m.file} changed since it was given schema id ${m.id}; add the new version as a new manifest entry instead`,
          [{ reason: 'fingerprint_mismatch', file: m.file, expected: m.fingerprint, actual }],
        );
      }
      return { id: m.id, subject: m.subject, schema };
    });
    return new LocalSchemaRegistry(entries);
  }

  async register(subject: string, schema: AvroSchema): Promise<number> {
    const fingerprint = schemaFingerprint(schema);
    for (const entry of this.byId.values()) {
      if (entry.subject === subject && entry.fingerprint === fingerprint) return entry.id;
    }
    throw new AttuneError('not_found', `schema for subject ${subject} is not in the local registry manifest`, [
      { reason: 'unregistered_schema', subject, fingerprint },
    ]);
  }

  async getSchema(id: number): Promise<AvroSchema> {
    const entry = this.byId.get(id);
    if (!entry) throw unknownSchemaId(id);
    return entry.schema;
  }
}

export interface ConfluentSchemaRegistryOptions {
  /**
   * Base URL of the registry's Confluent API, e.g. http://localhost:8081, or with a path
   * for registries that serve it under one (Apicurio: http://host:8080/apis/ccompat/v7).
   */
  url: string;
  auth?: { username: string; password: string };
  clientId?: string;
  /** Per request (default 10 s); past it the call fails with `unavailable`. */
  timeoutMs?: number;
}

const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** A Confluent REST error body: `{ error_code, message }`. */
interface RegistryErrorBody {
  error_code?: number;
  message?: string;
}

/**
 * A Confluent-compatible registry over its REST API; subjects follow TopicNameStrategy
 * (`<topic>-value`). Registration is a plain `POST /subjects/{subject}/versions`: the
 * subject's compatibility level is the registry's (or its operator's) to set, never ours,
 * so a FULL subject stays FULL. What the registry says maps onto coded errors:
 *   409 (incompatible with earlier versions)  → conflict `incompatible_schema`
 *   422 (not a valid schema)                  → validation_error `invalid_schema`
 *   404 on a schema id                        → not_found `unknown_schema_id`
 *   anything else, or no answer               → unavailable `registry_error`
 */
export class ConfluentSchemaRegistry implements SchemaRegistry {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(opts: ConfluentSchemaRegistryOptions) {
    this.base = opts.url.replace(/\/+$/, '');
    this.headers = { accept: `${REGISTRY_CONTENT_TYPE}, application/json`, 'user-agent': opts.clientId ?? 'attune' };
    if (opts.auth) {
      this.headers.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
    }
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async register(subject: string, schema: AvroSchema): Promise<number> {
    const path = `/subjects/${encodeURIComponent(subject)}/versions`;
    const res = await this.call('POST', path, { schema: JSON.stringify(schema) }, { subject });
    if (res.status === 200) {
      const id = (res.body as { id?: unknown }).id;
      if (Number.isInteger(id)) return id as number;
      throw registryError(`schema registry answered ${path} without an id`, { subject });
    }
    const why = errorText(res);
    if (res.status === 409) {
      throw new AttuneError('conflict', `schema registry refused ${subject} as incompatible: ${why}`, [
        { reason: 'incompatible_schema', subject, message: why },
      ]);
    }
    if (res.status === 422) {
      throw new AttuneError('validation_error', `schema registry refused ${subject} as invalid: ${why}`, [
        { reason: 'invalid_schema', subject, message: why },
      ]);
    }
    throw registryError(`schema registry refused ${subject}: ${why}`, { subject });
  }

  async getSchema(id: number): Promise<AvroSchema> {
    const res = await this.call('GET', `/schemas/ids/${id}`, undefined, { schema_id: id });
    if (res.status === 404) throw unknownSchemaId(id);
    if (res.status !== 200) throw registryError(`schema registry lookup of id ${id} failed: ${errorText(res)}`, { schema_id: id });
    const { schema, schemaType } = res.body as { schema?: unknown; schemaType?: unknown };
    if (schemaType !== undefined && schemaType !== 'AVRO') {
      throw new AttuneError('validation_error', `schema id ${id} is a ${String(schemaType)} schema, not Avro`, [
        { reason: 'invalid_schema', schema_id: id },
      ]);
    }
    try {
      return JSON.parse(String(schema)) as AvroSchema;
    } catch {
      throw registryError(`schema registry returned schema id ${id} that is not JSON`, { schema_id: id });
    }
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    detail: { subject?: string; schema_id?: number },
  ): Promise<{ status: number; body: unknown }> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: body === undefined ? this.headers : { ...this.headers, 'content-type': REGISTRY_CONTENT_TYPE },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw registryError(`schema registry ${method} ${path} failed: ${(err as Error).message}${cause ? ` (${cause})` : ''}`, detail);
    }
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // A proxy's HTML error page, say: kept as text for the message.
    }
    return { status: res.status, body: parsed };
  }
}

const registryError = (message: string, detail: { subject?: string; schema_id?: number }): AttuneError =>
  new AttuneError('unavailable', message, [{ reason: 'registry_error', ...detail }]);

function errorText(res: { status: number; body: unknown }): string {
  const b = res.body as RegistryErrorBody | string;
  if (typeof b === 'string') return `HTTP ${res.status}${b ? ` ${b.slice(0, 200)}` : ''}`;
  return `HTTP ${res.status}${b.error_code !== undefined ? ` (error ${b.error_code})` : ''}${b.message ? `: ${b.message}` : ''}`;
}
