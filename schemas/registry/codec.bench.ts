// Encode+decode throughput of HeartReading through the wire-format codec.
// Run: node --import tsx schemas/registry/codec.bench.ts
import { Topics } from '../../bus/types.js';
import { createCodec } from './codec.js';
import { LocalSchemaRegistry } from './registry.js';
import type { HeartReading } from './schemas.js';

const codec = await createCodec(LocalSchemaRegistry.fromManifest());
const n = 200_000;
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
const { encodeNs, decodeNs, bytes } = run(n);
const rate = (ns: number) => Math.round(n / (ns / 1e9));
console.log(
  JSON.stringify({
    records: n,
    bytes_per_record: bytes,
    encode_per_s: rate(encodeNs),
    decode_per_s: rate(decodeNs),
    encode_plus_decode_per_s: rate(encodeNs + decodeNs),
  }),
);
