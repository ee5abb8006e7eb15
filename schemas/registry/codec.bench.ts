// Encode+decode throughput of HeartReading through the wire-format codec, one thread.
//
//   node --import tsx schemas/registry/codec.bench.ts [runs=5]     (npm run bench:codec)
//
// Each run encodes then decodes 200,000 records after one warm-up; figures are medians over
// runs. Writes bench/results/codec-<time>-<tag>.json.
import { Topics } from '../topics.js';
import { BenchRun, describeMetric, relativeResultPath, runsArg } from '../../bench/lib/results.js';
import { createCodec } from './codec.js';
import { LocalSchemaRegistry } from './registry.js';
import type { HeartReading } from './schemas.js';

const codec = await createCodec(LocalSchemaRegistry.fromManifest());
const n = 200_000;
const runs = runsArg(process.argv[2], 5);
const bench = new BenchRun('codec', {
  description: 'HeartReading through the wire-format codec (Avro with the schema-registry header): encode then decodeSync, 1,000 distinct records cycled, one thread',
  options: { records_per_run: n, runs },
});
const readings: HeartReading[] = Array.from({ length: 1000 }, (_, i) => ({
  reading_id: (i * 2654435761).toString(16).padStart(32, '0'),
  device_id: `device-${i % 50}`,
  user_id: `user-${i % 50}`,
  org_id: 'org-1',
  session_id: `session-${i % 50}`,
  recorded_at: 1_700_000_000_000 + i * 1000,
  received_at: 1_700_000_000_500 + i * 1000,
  hr_bpm: 60 + (i % 30),
  rr_intervals_ms: [812.5, 830, 845.25],
  device_hrv_ms: null,
  device_coherence: null,
  battery_level_pct: 80,
  source: 'live',
}));

function run(count: number): { encodeNs: number; decodeNs: number; bytes: number } {
  const bufs: Buffer[] = new Array(count);
  let t = process.hrtime.bigint();
  for (let i = 0; i < count; i++) bufs[i] = codec.encode(Topics.heartReadings, readings[i % readings.length]);
  const encodeNs = Number(process.hrtime.bigint() - t);
  t = process.hrtime.bigint();
  let check = 0;
  for (let i = 0; i < count; i++) check += codec.decodeSync<HeartReading>(bufs[i]).recorded_at > 0 ? 1 : 0;
  const decodeNs = Number(process.hrtime.bigint() - t);
  if (check !== count) throw new Error('decode mismatch');
  return { encodeNs, decodeNs, bytes: bufs[0].length };
}

run(20_000); // warm-up
const rate = (ns: number) => n / (ns / 1e9);
const encode: number[] = [];
const decode: number[] = [];
const both: number[] = [];
let bytes = 0;
for (let r = 0; r < runs; r++) {
  const out = run(n);
  bytes = out.bytes;
  encode.push(rate(out.encodeNs));
  decode.push(rate(out.decodeNs));
  both.push(rate(out.encodeNs + out.decodeNs));
}
for (const [name, values] of [['encode_per_s', encode], ['decode_per_s', decode], ['encode_plus_decode_per_s', both]] as const)
  console.log(`${name}: ${describeMetric(bench.metric(name, values, 'records/s', 'higher'), 0)}`);
const file = bench.write({ bytes_per_record: bytes });
console.log(`wrote ${relativeResultPath(file)}`);
