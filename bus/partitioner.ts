// Key → partition, identical to the Java client's (and kafkajs's DefaultPartitioner):
// positive(murmur2(utf8(key))) % numPartitions. The embedded bus uses it too, so a key
// lands on the same partition number whichever bus carries it.

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** MurmurHash2 (32-bit) over `data` with Kafka's seed; returns a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The 1-3 tail bytes fold in from the highest down, as in the Java switch's fall-through.
  const tail = length & 3;
  if (tail >= 3) h ^= data[blocks + 2] << 16;
  if (tail >= 2) h ^= data[blocks + 1] << 8;
  if (tail >= 1) {
    h ^= data[blocks];
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition of `key` in a topic of `numPartitions` partitions. */
export function partitionForKey(key: string | Uint8Array, numPartitions: number): number {
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new RangeError(`numPartitions must be a positive integer, got ${numPartitions}`);
  }
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return (murmur2(bytes) & 0x7fffffff) % numPartitions;
}

const coveringKeyCache = new Map<string, string[]>();

/**
 * One key per partition of an n-partition topic: the i-th lands in partition i (murmur2, as
 * the bus partitions). For records every partition must see once (a read barrier, a marker
 * for a session whose readings may be in any partition).
 */
export function keysCoveringPartitions(partitions: number, prefix: string): string[] {
  const cacheKey = `${partitions}\u0000${prefix}`;
  let keys = coveringKeyCache.get(cacheKey);
  if (keys) return keys;
  const found: Array<string | undefined> = new Array(partitions);
  let left = partitions;
  for (let j = 0; left > 0; j++) {
    const key = `${prefix}${j}`;
    const p = partitionForKey(key, partitions);
    if (found[p] === undefined) {
      found[p] = key;
      left--;
    }
  }
  keys = found as string[];
  if (coveringKeyCache.size > 64) coveringKeyCache.clear();
  coveringKeyCache.set(cacheKey, keys);
  return keys;
}
