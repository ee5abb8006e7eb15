// Avro values in the Confluent wire format: 0x00, the writer schema id as a 4-byte
// big-endian integer, then the Avro binary body. Encoding writes with the topic's current
// schema; decoding reads the writer id, fetches that schema once, and resolves it to the
// current schema of the same record name, so records written by older (or newer,
// compatible) producers come out in today's shape with defaults filled in.
import { AttuneError, type ErrorDetail } from '../../lib/errors.js';
import type { SchemaRegistry } from './registry.js';
import {
  extraRecordSchemas,
  loadSchemaFile,
  recordSubject,
  parseSchema,
  topicSchemaFiles,
  valueSubject,
  type AttuneRecord,
  type AvroSchema,
  type AvroType,
  type ExtraRecordName,
  type ExtraRecords,
  type TopicName,
  type TopicRecords,
} from './schemas.js';

export const MAGIC_BYTE = 0;
export const WIRE_HEADER_BYTES = 5;

export function writeWireHeader(schemaId: number, target: Buffer = Buffer.alloc(WIRE_HEADER_BYTES)): Buffer {
  target[0] = MAGIC_BYTE;
  target.writeUInt32BE(schemaId, 1);
  return target;
}

/** The writer schema id of a wire-format buffer; validation_error when it is not one. */
export function readSchemaId(buf: Buffer): number {
  if (buf.length < WIRE_HEADER_BYTES) {
    throw new AttuneError('validation_error', `Avro value too short for the wire header (${buf.length} bytes)`, [
      { reason: 'truncated_header' },
    ]);
  }
  if (buf[0] !== MAGIC_BYTE) {
    throw new AttuneError('validation_error', `unknown magic byte 0x${buf[0].toString(16)} in Avro value`, [
      { reason: 'bad_magic_byte' },
    ]);
  }
  return buf.readUInt32BE(1);
}

export interface Codec {
  /** The schema id `encode` writes for a topic. */
  schemaIdOf(topic: TopicName): number;
  /** Encodes with the topic's current schema; validation_error naming the field when invalid. */
  encode<T extends TopicName>(topic: T, record: TopicRecords[T]): Buffer;
  /** The schema id `encodeRecord` writes for a further record type of a topic (ExtraRecords). */
  schemaIdOfRecord(name: ExtraRecordName): number;
  /** Encodes a further record type of a topic (a HeartReadingBatch on the readings topic). */
  encodeRecord<N extends ExtraRecordName>(name: N, record: ExtraRecords[N]): Buffer;
  /**
   * The full name of the record type a writer schema id decodes to (the reader's: a later
   * version of a schema gives the same name), once the id is loaded (every current schema is,
   * and any id `decode` has read); undefined otherwise. What a reader dispatches on when a
   * topic carries more than one record type.
   */
  recordNameOf(schemaId: number): string | undefined;
  /** Decodes any value, fetching an unseen writer schema from the registry first. */
  decode<R = AttuneRecord>(buf: Buffer): Promise<R>;
  /**
   * Decodes without waiting: for hot loops once the writer schema is known (all current
   * schemas are known from the start). not_found when the id has not been loaded yet.
   */
  decodeSync<R = AttuneRecord>(buf: Buffer): R;
}

interface WriterEntry {
  reader: AvroType;
  /** Present when writer and reader schemas differ. */
  resolver: ReturnType<AvroType['createResolver']> | undefined;
}

interface TopicWriter {
  id: number;
  type: AvroType;
}

export interface CreateCodecOptions {
  /** Override the schemas per topic (tests); default: the .avsc files of topicSchemaFiles. */
  schemas?: Partial<Record<TopicName, AvroSchema>>;
  /**
   * The registry subject of a topic's values; default TopicNameStrategy, `<topic>-value`.
   * Tests against a shared real registry use subjects of their own.
   */
  subjectOf?: (topic: TopicName) => string;
  /**
   * The subject of a further record type on a topic (TopicRecordNameStrategy); default
   * `<topic>-<full name>`, or with `subjectOf` given, its subject without `-value` in place of
   * the topic.
   */
  recordSubjectOf?: (topic: TopicName, fullName: string) => string;
  /** Override the further record types' schemas (tests: an older or newer version). */
  recordSchemas?: Partial<Record<ExtraRecordName, AvroSchema>>;
}

/** Registers the current schema of every topic and returns a codec bound to `registry`. */
export async function createCodec(registry: SchemaRegistry, opts: CreateCodecOptions = {}): Promise<Codec> {
  const writers = new Map<string, TopicWriter>();
  const readersByName = new Map<string, AvroType>();
  const byWriterId = new Map<number, WriterEntry>();
  const pending = new Map<number, Promise<WriterEntry>>();

  for (const topic of Object.keys(topicSchemaFiles) as TopicName[]) {
    const schema = opts.schemas?.[topic] ?? loadSchemaFile(topicSchemaFiles[topic]);
    const type = parseSchema(schema);
    const id = await registry.register((opts.subjectOf ?? valueSubject)(topic), schema);
    writers.set(topic, { id, type });
    if (type.name) readersByName.set(type.name, type);
    byWriterId.set(id, { reader: type, resolver: undefined });
  }
  const recordWriters = new Map<ExtraRecordName, TopicWriter>();
  const recordSubjectOf =
    opts.recordSubjectOf ??
    (opts.subjectOf ? (topic: TopicName, fullName: string) => recordSubject(opts.subjectOf!(topic).replace(/-value$/, ''), fullName) : recordSubject);
  for (const name of Object.keys(extraRecordSchemas) as ExtraRecordName[]) {
    const { topic, file, fullName } = extraRecordSchemas[name];
    const schema = opts.recordSchemas?.[name] ?? loadSchemaFile(file);
    const type = parseSchema(schema);
    const id = await registry.register(recordSubjectOf(topic, fullName), schema);
    recordWriters.set(name, { id, type });
    readersByName.set(fullName, type);
    byWriterId.set(id, { reader: type, resolver: undefined });
  }

  function entryFor(writerSchema: AvroSchema): WriterEntry {
    const writer = parseSchema(writerSchema);
    const reader = (writer.name && readersByName.get(writer.name)) || writer;
    if (reader === writer || reader.equals(writer)) return { reader, resolver: undefined };
    return { reader, resolver: reader.createResolver(writer) };
  }

  async function load(id: number): Promise<WriterEntry> {
    let p = pending.get(id);
    if (!p) {
      p = registry.getSchema(id).then((schema) => {
        const entry = entryFor(schema);
        byWriterId.set(id, entry);
        return entry;
      });
      pending.set(id, p);
      // A failed lookup (registry down, unknown id) may succeed later: do not cache it.
      p.catch(() => pending.delete(id));
    }
    return p;
  }

  function read<R>(buf: Buffer, id: number, entry: WriterEntry): R {
    try {
      const { value, offset } = entry.reader.decode(buf, WIRE_HEADER_BYTES, entry.resolver);
      if (offset !== buf.length) {
        throw new Error(offset < 0 ? 'body truncated' : `${buf.length - offset} trailing bytes`);
      }
      return value as R;
    } catch (err) {
      throw new AttuneError('validation_error', `cannot decode Avro value with schema id ${id}: ${(err as Error).message}`, [
        { reason: 'malformed_body', schema_id: id },
      ]);
    }
  }

  // Encoding goes through one growing scratch buffer so each record costs one allocation.
  let scratch = Buffer.allocUnsafe(64 * 1024);

  function invalidFields(type: AvroType, record: unknown): ErrorDetail<'invalid_type'>[] {
    const details: ErrorDetail<'invalid_type'>[] = [];
    type.isValid(record, {
      errorHook: (path: string[], value: unknown, fieldType: AvroType) => {
        details.push({
          field: '/' + path.join('/'),
          reason: 'invalid_type',
          message: `expected ${describe(fieldType)}, got ${JSON.stringify(value) ?? String(value)}`,
        });
      },
    });
    return details;
  }

  function encodeWith(w: TopicWriter, record: unknown, topic: string): Buffer {
    let end: number;
    try {
      for (;;) {
        end = w.type.encode(record, scratch, WIRE_HEADER_BYTES);
        if (end >= 0) break;
        scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + WIRE_HEADER_BYTES));
      }
    } catch (err) {
      const details = invalidFields(w.type, record);
      const where = details.map((d) => d.field).join(', ');
      throw new AttuneError(
        'validation_error',
        `invalid ${w.type.name ?? 'record'} for ${topic}${where ? ` at ${where}` : ''}: ${details[0]?.message ?? (err as Error).message}`,
        details.length > 0 ? details : [{ reason: 'invalid_record', message: (err as Error).message }],
      );
    }
    const out = Buffer.allocUnsafe(end);
    scratch.copy(out, 0, 0, end);
    writeWireHeader(w.id, out);
    return out;
  }

  return {
    schemaIdOf(topic) {
      const w = writers.get(topic);
      if (!w) throw new AttuneError('not_found', `no schema for topic ${topic}`);
      return w.id;
    },

    encode(topic, record) {
      const w = writers.get(topic);
      if (!w) throw new AttuneError('not_found', `no schema for topic ${topic}`);
      return encodeWith(w, record, topic);
    },

    schemaIdOfRecord(name) {
      const w = recordWriters.get(name);
      if (!w) throw new AttuneError('not_found', `no schema for record ${name}`);
      return w.id;
    },

    encodeRecord(name, record) {
      const w = recordWriters.get(name);
      if (!w) throw new AttuneError('not_found', `no schema for record ${name}`);
      return encodeWith(w, record, extraRecordSchemas[name].topic);
    },

    recordNameOf(schemaId) {
      return byWriterId.get(schemaId)?.reader.name;
    },

    async decode<R>(buf: Buffer): Promise<R> {
      const id = readSchemaId(buf);
      const entry = byWriterId.get(id) ?? (await load(id));
      return read<R>(buf, id, entry);
    },

    decodeSync<R>(buf: Buffer): R {
      const id = readSchemaId(buf);
      const entry = byWriterId.get(id);
      if (!entry) {
        throw new AttuneError('not_found', `Avro schema id ${id} is not loaded yet; use decode()`, [
          { reason: 'schema_not_loaded', schema_id: id },
        ]);
      }
      return read<R>(buf, id, entry);
    },
  };
}

function describe(type: AvroType): string {
  const t = type as AvroType & { typeName: string; types?: AvroType[] };
  if (t.types) return t.types.map(describe).join(' | ');
  return t.name ?? t.typeName;
}

/**
 * Decodes a record, synchronously when the codec already knows the writer schema (the hot
 * path: no promise per record), else through the registry (an unseen writer id is fetched; a
 * bad record is reported by `decode`).
 */
export function decodeRecord<T>(codec: Codec, buf: Buffer): T | Promise<T> {
  try {
    return codec.decodeSync<T>(buf);
  } catch {
    return codec.decode<T>(buf);
  }
}
