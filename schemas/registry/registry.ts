// Where schema ids come from. Both implementations give the same contract:
// register(subject, schema) → id (idempotent), getSchema(id) → the writer schema.
//  - LocalSchemaRegistry: fixed ids from the committed manifest registry.json, for the
//    embedded bus and for Kafka without a registry; nothing to run, ids never change.
//  - ConfluentSchemaRegistry: a real Confluent-compatible registry over HTTP.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
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
  /** Base URL of the registry, e.g. http://localhost:8081. */
  url: string;
  auth?: { username: string; password: string };
  clientId?: string;
}

/** A Confluent-compatible registry; subjects follow TopicNameStrategy (`<topic>-value`). */
export class ConfluentSchemaRegistry implements SchemaRegistry {
  private readonly client: ConfluentClient;

  constructor(opts: ConfluentSchemaRegistryOptions) {
    this.client = new ConfluentClient({ host: opts.url, auth: opts.auth, clientId: opts.clientId ?? 'attune' });
  }

  async register(subject: string, schema: AvroSchema): Promise<number> {
    try {
      const { id } = await this.client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject });
      return id;
    } catch (err) {
      throw new AttuneError('unavailable', `schema registry refused ${subject}: ${(err as Error).message}`, [
        { reason: 'registry_error', subject },
      ]);
    }
  }

  async getSchema(id: number): Promise<AvroSchema> {
    let type: unknown;
    try {
      type = await this.client.getSchema(id);
    } catch (err) {
      if ((err as { status?: number }).status === 404) throw unknownSchemaId(id);
      throw new AttuneError('unavailable', `schema registry lookup of id ${id} failed: ${(err as Error).message}`, [
        { reason: 'registry_error', schema_id: id },
      ]);
    }
    // The client hands back its parsed avsc Type; its JSON form is the writer schema.
    return (type as { schema(opts?: object): AvroSchema }).schema({ exportAttrs: true });
  }
}
