// The on-disk form of one embedded-bus record, length-prefixed and checksummed so that a
// record torn by a crash mid-write is recognised on open:
//
//   u32 LE  length of everything after this field
//   u32 LE  crc32 of everything after this field
//   f64 LE  offset          (integers below 2^53 are exact in a double)
//   f64 LE  timestamp       (event time, ms)
//   f64 LE  append time     (ms; drives retention)
//   u32 LE  key length, key bytes (UTF-8)
//   u16 LE  header count, then per header: u16 name length, name, u32 value length, value
//   u32 LE  value length, value bytes
//
// A batch of records is encoded into one buffer so that it costs one write.
import { crc32 } from 'node:zlib';

export interface StoredRecord {
  offset: number;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  timestamp: number;
  appendTime: number;
}

const PREFIX = 8; // length + crc
const FIXED = 8 + 8 + 8 + 4 + 2 + 4;
export const MIN_RECORD_BYTES = PREFIX + FIXED;

function headerBytes(headers: Record<string, string>): number {
  let n = 0;
  for (const name in headers) n += 2 + Buffer.byteLength(name) + 4 + Buffer.byteLength(headers[name]);
  return n;
}

/** Bytes `record` takes on disk. */
export function encodedSize(key: string, value: Buffer, headers: Record<string, string>): number {
  return PREFIX + FIXED + Buffer.byteLength(key) + headerBytes(headers) + value.length;
}

/** Writes one record at `pos` of `buf` (which has room for encodedSize bytes); returns the end. */
export function writeRecord(buf: Buffer, pos: number, r: StoredRecord): number {
  const start = pos;
  pos += PREFIX;
  buf.writeDoubleLE(r.offset, pos);
  buf.writeDoubleLE(r.timestamp, pos + 8);
  buf.writeDoubleLE(r.appendTime, pos + 16);
  pos += 24;
  const keyLen = buf.write(r.key, pos + 4, 'utf8');
  buf.writeUInt32LE(keyLen, pos);
  pos += 4 + keyLen;
  const names = Object.keys(r.headers);
  buf.writeUInt16LE(names.length, pos);
  pos += 2;
  for (const name of names) {
    const nameLen = buf.write(name, pos + 2, 'utf8');
    buf.writeUInt16LE(nameLen, pos);
    pos += 2 + nameLen;
    const valLen = buf.write(r.headers[name], pos + 4, 'utf8');
    buf.writeUInt32LE(valLen, pos);
    pos += 4 + valLen;
  }
  buf.writeUInt32LE(r.value.length, pos);
  pos += 4;
  r.value.copy(buf, pos);
  pos += r.value.length;
  buf.writeUInt32LE(pos - start - 4, start);
  buf.writeUInt32LE(crc32(buf.subarray(start + PREFIX, pos)), start + 4);
  return pos;
}

export type ReadResult =
  | { kind: 'record'; record: StoredRecord; end: number }
  /** The buffer ends inside the record: read more, or, at the end of the file, a torn tail. */
  | { kind: 'incomplete'; needed: number }
  /** Checksum or structure mismatch: garbage or a torn write. */
  | { kind: 'corrupt'; reason: string };

/**
 * Reads the record at `pos`. The returned value Buffer is a view into `buf`
 * (no copy); keep `buf` alive as long as the record is.
 */
export function readRecord(buf: Buffer, pos: number): ReadResult {
  if (buf.length - pos < PREFIX) return { kind: 'incomplete', needed: PREFIX };
  const length = buf.readUInt32LE(pos);
  if (length < FIXED + 4) return { kind: 'corrupt', reason: `record length ${length} too small` };
  const end = pos + 4 + length;
  if (end > buf.length) return { kind: 'incomplete', needed: 4 + length };
  const crc = buf.readUInt32LE(pos + 4);
  if (crc32(buf.subarray(pos + PREFIX, end)) !== crc) return { kind: 'corrupt', reason: 'checksum mismatch' };
  let p = pos + PREFIX;
  const offset = buf.readDoubleLE(p);
  const timestamp = buf.readDoubleLE(p + 8);
  const appendTime = buf.readDoubleLE(p + 16);
  p += 24;
  const keyLen = buf.readUInt32LE(p);
  const key = buf.toString('utf8', p + 4, p + 4 + keyLen);
  p += 4 + keyLen;
  const count = buf.readUInt16LE(p);
  p += 2;
  const headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const nameLen = buf.readUInt16LE(p);
    const name = buf.toString('utf8', p + 2, p + 2 + nameLen);
    p += 2 + nameLen;
    const valLen = buf.readUInt32LE(p);
    headers[name] = buf.toString('utf8', p + 4, p + 4 + valLen);
    p += 4 + valLen;
  }
  const valueLen = buf.readUInt32LE(p);
  p += 4;
  if (p + valueLen !== end) return { kind: 'corrupt', reason: 'field lengths do not add up' };
  return { kind: 'record', record: { offset, key, value: buf.subarray(p, end), headers, timestamp, appendTime }, end };
}
