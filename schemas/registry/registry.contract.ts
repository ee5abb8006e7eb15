// What Attune expects of a Confluent-compatible Schema Registry, as one node:test suite that
// registry.contract.test.ts runs against each implementation: the in-process double
// (confluent-double.test-util.ts) and a real registry (Apicurio, infra/schema-registry/).
// Attune talks to both through ConfluentSchemaRegistry; the registry itself is checked
// through its raw REST API, so the suite does not only agree with itself.
//
// Every subject is new (a random run id), so the suite can run against a registry that
// other runs or other subjects share. Levels are set per subject (PUT /config/{subject}):
// the global default differs between registries (Confluent BACKWARD, Apicurio NONE).
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import { AttuneError } from '../../lib/errors.js';
import { Topics } from '../topics.js';
import { createCodec, readSchemaId, writeWireHeader, MAGIC_BYTE, type Codec } from './codec.js';
import { ConfluentSchemaRegistry } from './registry.js';
import { loadSchemaFile, schemaFingerprint, type AvroSchema, type HeartReading, type TopicName } from './schemas.js';

export interface RegistryUnderTest {
  /** Base URL of the Confluent API (with its path, e.g. …/apis/ccompat/v6). */
  url: string;
  close?(): Promise<void>;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** A raw REST call, for looking at the registry without going through Attune's client. */
async function rest(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(base.replace(/\/+$/, '') + path, {
    method,
    headers: body === undefined ? { accept: CONTENT_TYPE } : { accept: CONTENT_TYPE, 'content-type': CONTENT_TYPE },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const reading: HeartReading = {
  reading_id: 'r-contract',
  device_id: 'd1',
  user_id: 'u1',
  org_id: 'o1',
  session_id: 's1',
  recorded_at: 1_764_000_000_000,
  received_at: 1_764_000_000_250,
  hr_bpm: 61.5,
  rr_intervals_ms: [975.5, 1002],
  device_hrv_ms: null,
  device_coherence: 0.25,
  battery_level_pct: 80,
  source: 'live',
};

// The evolving record of the evolution tests: v2 adds a field with a default.
const v1: AvroSchema = {
  type: 'record',
  name: 'Measurement',
  namespace: 'io.attune.contract',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'value', type: 'double' },
  ],
};
const v2: AvroSchema = {
  ...(v1 as object),
  fields: [...(v1 as { fields: object[] }).fields, { name: 'unit', type: 'string', default: 'ms' }],
} as AvroSchema;
/** v1 plus a field without a default: v2 readers cannot read v1 data (not BACKWARD). */
const addedWithoutDefault: AvroSchema = {
  ...(v1 as object),
  fields: [...(v1 as { fields: object[] }).fields, { name: 'unit', type: 'string' }],
} as AvroSchema;
/** v1 with `value` as a string: no resolution either way. */
const typeChanged: AvroSchema = {
  ...(v1 as object),
  fields: [{ name: 'id', type: 'string' }, { name: 'value', type: 'string' }],
} as AvroSchema;
/** v1 without `value` (no default): BACKWARD, but v1 readers cannot read it (not FORWARD). */
const fieldDropped: AvroSchema = { ...(v1 as object), fields: [{ name: 'id', type: 'string' }] } as AvroSchema;

const isCoded = (code: string, reason: string) => (e: unknown) =>
  e instanceof AttuneError && e.code === code && e.details.some((d) => d.reason === reason);

/**
 * `open` gives the registry, or null after calling `skip` with the reason (outside CI).
 */
export function runRegistryContract(name: string, open: (skip: (why: string) => void) => Promise<RegistryUnderTest | null>): void {
  describe(`schema registry contract: ${name}`, () => {
    let target: RegistryUnderTest | null = null;
    let skipWhy = '';
    const run = randomUUID().slice(0, 8);
    const subject = (s: string) => `attune-contract-${run}.${s}-value`;
    /** Subjects of their own for every topic, with `topic`'s schema overridden. */
    const codecFor = (registry: ConfluentSchemaRegistry, prefix: string, schemas: Partial<Record<TopicName, AvroSchema>> = {}) =>
      createCodec(registry, { schemas, subjectOf: (topic) => subject(`${prefix}.${topic}`) });

    before(async () => {
      target = await open((why) => {
        skipWhy = why;
      });
      if (!target && !skipWhy) skipWhy = 'no registry';
    });
    after(async () => {
      await target?.close?.();
    });

    /** The registry under test, or null after skipping this test. */
    const reg = (t: TestContext) => {
      if (!target) t.skip(skipWhy);
      return target;
    };

    test('registration is idempotent, ids are per schema, and getSchema gives the schema back', async (t) => {
      const r = reg(t);
      if (!r) return;
      const registry = new ConfluentSchemaRegistry({ url: r.url });
      const schema = loadSchemaFile('HeartReading.avsc');
      const id = await registry.register(subject('idem'), schema);
      assert.ok(Number.isInteger(id) && id >= 0);
      assert.equal(await registry.register(subject('idem'), schema), id, 'the same schema again: the same id');
      assert.equal(await new ConfluentSchemaRegistry({ url: r.url }).register(subject('idem'), schema), id, 'from another client too');
      const versions = await rest(r.url, 'GET', `/subjects/${encodeURIComponent(subject('idem'))}/versions`);
      assert.deepEqual(versions.json, [1], 'registering twice made one version');
      assert.equal(await registry.register(subject('idem-other'), schema), id, 'one id per schema, whatever the subject');
      const back = await registry.getSchema(id);
      assert.equal(schemaFingerprint(back), schemaFingerprint(schema));
      await assert.rejects(registry.getSchema(2_000_000_000), isCoded('not_found', 'unknown_schema_id'));
    });

    test('a schema that is not Avro is refused: validation_error invalid_schema', async (t) => {
      const r = reg(t);
      if (!r) return;
      const registry = new ConfluentSchemaRegistry({ url: r.url });
      await assert.rejects(
        registry.register(subject('invalid'), { type: 'recrod', name: 'X', fields: [] } as unknown as AvroSchema),
        isCoded('validation_error', 'invalid_schema'),
      );
    });

    test('wire format: what the codec writes, the registry-known schema reads, and vice versa', async (t) => {
      const r = reg(t);
      if (!r) return;
      const codec = await codecFor(new ConfluentSchemaRegistry({ url: r.url }), 'wire');
      const bytes = codec.encode(Topics.heartReadings, reading);

      // The header: magic byte 0, then the id the registry holds as the subject's latest.
      const latest = await rest(r.url, 'GET', `/subjects/${encodeURIComponent(subject(`wire.${Topics.heartReadings}`))}/versions/latest`);
      assert.equal(latest.status, 200);
      assert.equal(bytes[0], MAGIC_BYTE);
      assert.equal(bytes.readUInt32BE(1), latest.json.id);
      assert.equal(readSchemaId(bytes), codec.schemaIdOf(Topics.heartReadings));

      // The body, read with the schema the registry hands out for that id (not ours).
      const fetched = await rest(r.url, 'GET', `/schemas/ids/${latest.json.id}`);
      const registryType = avro.Type.forSchema(JSON.parse(fetched.json.schema));
      assert.deepEqual({ ...(registryType.fromBuffer(bytes.subarray(5)) as object) }, reading);

      // Vice versa: a record framed by hand with the registry's id and schema.
      const other = { ...reading, reading_id: 'r-by-hand', hr_bpm: null, rr_intervals_ms: [] };
      const framed = Buffer.concat([writeWireHeader(latest.json.id), registryType.toBuffer(other)]);
      const fresh = await codecFor(new ConfluentSchemaRegistry({ url: r.url }), 'wire');
      assert.deepEqual({ ...(await fresh.decode<HeartReading>(framed)) }, other);
    });

    /** Registers v1 through a codec for a subject of its own, then sets that subject's level. */
    async function evolving(r: RegistryUnderTest, prefix: string, level: string): Promise<{ registry: ConfluentSchemaRegistry; v1Codec: Codec; s: string }> {
      const s = subject(`${prefix}.${Topics.heartReadings}`);
      const registry = new ConfluentSchemaRegistry({ url: r.url });
      const v1Codec = await codecFor(registry, prefix, { [Topics.heartReadings]: v1 });
      // After the first version: Apicurio keeps no level for a subject it does not have.
      const put = await rest(r.url, 'PUT', `/config/${encodeURIComponent(s)}`, { compatibility: level });
      assert.equal(put.status, 200, `PUT /config/${s} ${level}: ${JSON.stringify(put.json)}`);
      return { registry, v1Codec, s };
    }

    for (const level of ['BACKWARD', 'FULL']) {
      test(`evolution under ${level}: a v2 reader (added field with a default) reads v1 records, v1 readers read v2 records`, async (t) => {
        const r = reg(t);
        if (!r) return;
        const prefix = `evo-${level.toLowerCase()}`;
        const { registry, v1Codec, s } = await evolving(r, prefix, level);
        const v2Codec = await codecFor(registry, prefix, { [Topics.heartReadings]: v2 });
        const v1Id = v1Codec.schemaIdOf(Topics.heartReadings);
        const v2Id = v2Codec.schemaIdOf(Topics.heartReadings);
        assert.notEqual(v2Id, v1Id);
        assert.deepEqual((await rest(r.url, 'GET', `/subjects/${encodeURIComponent(s)}/versions`)).json, [1, 2]);

        const oldBytes = v1Codec.encode(Topics.heartReadings, { id: 'm1', value: 1.5 } as never);
        assert.equal(readSchemaId(oldBytes), v1Id);
        assert.deepEqual({ ...(await v2Codec.decode<object>(oldBytes)) }, { id: 'm1', value: 1.5, unit: 'ms' }, 'v2 reads v1, the default filled in');

        const newBytes = v2Codec.encode(Topics.heartReadings, { id: 'm2', value: 2.5, unit: 's' } as never);
        assert.equal(readSchemaId(newBytes), v2Id);
        // A v1 consumer that has never seen id v2Id fetches it from the registry and resolves.
        const v1Consumer = await codecFor(new ConfluentSchemaRegistry({ url: r.url }), prefix, { [Topics.heartReadings]: v1 });
        assert.deepEqual({ ...(await v1Consumer.decode<object>(newBytes)) }, { id: 'm2', value: 2.5 }, 'v1 reads v2, the new field dropped');
      });
    }

    test('an incompatible change is refused by the registry: conflict incompatible_schema, and nothing is registered', async (t) => {
      const r = reg(t);
      if (!r) return;
      const { registry, v1Codec, s } = await evolving(r, 'incompatible', 'BACKWARD');
      for (const bad of [addedWithoutDefault, typeChanged]) {
        await assert.rejects(registry.register(s, bad), isCoded('conflict', 'incompatible_schema'));
        // Through the codec the same refusal stops it from starting with that schema.
        await assert.rejects(codecFor(registry, 'incompatible', { [Topics.heartReadings]: bad }), isCoded('conflict', 'incompatible_schema'));
      }
      assert.deepEqual((await rest(r.url, 'GET', `/subjects/${encodeURIComponent(s)}/versions`)).json, [1], 'only v1 is registered');
      // v1 is untouched: its records still round-trip.
      assert.deepEqual({ ...(await v1Codec.decode<object>(v1Codec.encode(Topics.heartReadings, { id: 'm', value: 3 } as never))) }, { id: 'm', value: 3 });
    });

    test('FULL refuses what only BACKWARD allows (a field dropped without a default)', async (t) => {
      const r = reg(t);
      if (!r) return;
      const backward = await evolving(r, 'drop-backward', 'BACKWARD');
      const id = await backward.registry.register(backward.s, fieldDropped);
      assert.notEqual(id, backward.v1Codec.schemaIdOf(Topics.heartReadings));
      const full = await evolving(r, 'drop-full', 'FULL');
      await assert.rejects(full.registry.register(full.s, fieldDropped), isCoded('conflict', 'incompatible_schema'));
    });

    test("the codec registers every topic's schema under its subject and writes that subject's latest id", async (t) => {
      const r = reg(t);
      if (!r) return;
      const codec = await codecFor(new ConfluentSchemaRegistry({ url: r.url }), 'tns');
      const subjects = (await rest(r.url, 'GET', '/subjects')).json as string[];
      for (const topic of Object.values(Topics)) {
        assert.ok(subjects.includes(subject(`tns.${topic}`)), `${topic} registered`);
        const latest = await rest(r.url, 'GET', `/subjects/${encodeURIComponent(subject(`tns.${topic}`))}/versions/latest`);
        assert.equal(latest.json.id, codec.schemaIdOf(topic));
      }
    });
  });
}
