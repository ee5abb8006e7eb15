// Reads ModelProto.metadata_props (field 14: key/value strings) from ONNX model bytes.
// onnxruntime-node exposes input/output metadata but not the model's metadata_props, and
// the scoring rubric carries its feature names and weights there; walking the top-level
// protobuf fields is enough (the graph, field 7, is skipped by its length, not parsed).

const METADATA_PROPS_FIELD = 14;
const ENTRY_KEY_FIELD = 1;
const ENTRY_VALUE_FIELD = 2;

const decoder = new TextDecoder('utf-8', { fatal: true });

interface Field {
  field: number;
  wireType: number;
  /** Payload of a length-delimited field (wire type 2), else null. */
  bytes: Uint8Array | null;
}

/** Iterates the fields of one protobuf message; throws RangeError on malformed input. */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new RangeError('truncated varint');
      const byte = buf[pos++];
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new RangeError('varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new RangeError('field number 0');
    switch (wireType) {
      case 0:
        varint();
        yield { field, wireType, bytes: null };
        break;
      case 1:
      case 5: {
        const size = wireType === 1 ? 8 : 4;
        if (pos + size > buf.length) throw new RangeError('truncated fixed-width field');
        pos += size;
        yield { field, wireType, bytes: null };
        break;
      }
      case 2: {
        const length = varint();
        if (pos + length > buf.length) throw new RangeError(`field ${field} runs past the end`);
        const bytes = buf.subarray(pos, pos + length);
        pos += length;
        yield { field, wireType, bytes };
        break;
      }
      default:
        throw new RangeError(`unsupported wire type ${wireType} (field ${field})`);
    }
  }
}

/** metadata_props of an ONNX model as a plain object (a later duplicate key wins). */
export function readOnnxMetadata(model: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields(model)) {
    if (f.field !== METADATA_PROPS_FIELD || f.bytes === null) continue;
    let key = '';
    let value = '';
    for (const e of fields(f.bytes)) {
      if (e.bytes === null) continue;
      if (e.field === ENTRY_KEY_FIELD) key = decoder.decode(e.bytes);
      else if (e.field === ENTRY_VALUE_FIELD) value = decoder.decode(e.bytes);
    }
    out[key] = value;
  }
  return out;
}
