// A minimal ONNX writer: encodes a ModelProto (onnx/onnx.proto, proto3 wire format) from a
// plain description of nodes, float tensors and inputs/outputs. Enough for small hand-built
// graphs such as the scoring rubric; no dependency on protobuf libraries, so the build runs
// on a bare Node before anything is installed.
//
// Determinism: fields are written in one fixed order, floats as little-endian float32, and
// nothing time- or machine-dependent goes in, so the same description gives the same bytes.

// Field numbers from onnx.proto.
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, domain: 4, modelVersion: 5, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14 };
const GRAPH = { node: 1, name: 2, initializer: 5, docString: 10, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, docString: 6 };
const ATTRIBUTE = { name: 1, f: 2, i: 3, s: 4, type: 20 };
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 };
const VALUE_INFO = { name: 1, type: 2, docString: 3 };
const TYPE = { tensorType: 1 };
const TENSOR_TYPE = { elemType: 1, shape: 2 };
const SHAPE = { dim: 1 };
const DIM = { value: 1, param: 2 };
const OPSET = { domain: 1, version: 2 };
const ENTRY = { key: 1, value: 2 };

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 };

const encoder = new TextEncoder();

/** Appends protobuf fields to a growing list of byte chunks. */
class Writer {
  constructor() {
    this.chunks = [];
  }
  varint(value) {
    // Non-negative integers only (all ONNX fields written here are); BigInt keeps int64 exact.
    let v = BigInt(value);
    if (v < 0n) throw new RangeError(`negative varint ${value}`);
    const bytes = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.chunks.push(Uint8Array.from(bytes));
    return this;
  }
  tag(field, wireType) {
    return this.varint((field << 3) | wireType);
  }
  int(field, value) {
    return this.tag(field, 0).varint(value);
  }
  float(field, value) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.tag(field, 5);
    this.chunks.push(b);
    return this;
  }
  bytes(field, data) {
    this.tag(field, 2).varint(data.length);
    this.chunks.push(data);
    return this;
  }
  string(field, text) {
    return this.bytes(field, encoder.encode(text));
  }
  message(field, build) {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }
  finish() {
    let length = 0;
    for (const c of this.chunks) length += c.length;
    const out = new Uint8Array(length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

/** Row-major float32 bytes, little-endian whatever the machine. */
function float32Bytes(values) {
  const b = new Uint8Array(values.length * 4);
  const view = new DataView(b.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return b;
}

function writeTensor(w, tensor) {
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  if (count !== tensor.values.length) {
    throw new RangeError(`tensor ${tensor.name}: dims ${JSON.stringify(tensor.dims)} hold ${count} values, got ${tensor.values.length}`);
  }
  for (const d of tensor.dims) w.int(TENSOR.dims, d);
  w.int(TENSOR.dataType, DataType.FLOAT);
  w.string(TENSOR.name, tensor.name);
  w.bytes(TENSOR.rawData, float32Bytes(tensor.values));
}

function writeValueInfo(w, info) {
  w.string(VALUE_INFO.name, info.name);
  w.message(VALUE_INFO.type, (t) =>
    t.message(TYPE.tensorType, (tt) => {
      tt.int(TENSOR_TYPE.elemType, info.elemType ?? DataType.FLOAT);
      tt.message(TENSOR_TYPE.shape, (s) => {
        for (const d of info.shape) {
          s.message(SHAPE.dim, (dim) => (typeof d === 'string' ? dim.string(DIM.param, d) : dim.int(DIM.value, d)));
        }
      });
    }),
  );
  if (info.doc) w.string(VALUE_INFO.docString, info.doc);
}

function writeAttribute(w, name, value) {
  w.string(ATTRIBUTE.name, name);
  if (typeof value === 'string') w.string(ATTRIBUTE.s, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.STRING);
  else if (Number.isInteger(value)) w.int(ATTRIBUTE.i, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.INT);
  else w.float(ATTRIBUTE.f, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.FLOAT);
}

function writeNode(w, node) {
  for (const name of node.inputs) w.string(NODE.input, name);
  for (const name of node.outputs) w.string(NODE.output, name);
  w.string(NODE.name, node.name ?? node.outputs[0]);
  w.string(NODE.opType, node.op);
  // Sorted so that attribute order never depends on how the caller built the object.
  for (const key of Object.keys(node.attributes ?? {}).sort()) w.message(NODE.attribute, (a) => writeAttribute(a, key, node.attributes[key]));
  if (node.doc) w.string(NODE.docString, node.doc);
}

/**
 * Encodes a model. `spec`:
 *   { irVersion, opset, producerName, producerVersion, modelVersion, doc,
 *     graph: { name, doc, nodes: [{ op, inputs, outputs, name?, attributes?, doc? }],
 *              initializers: [{ name, dims, values }],   // float32
 *              inputs / outputs: [{ name, shape: (number | string)[], doc? }] },
 *     metadata: { key: string value } }   // written in key order
 * Returns the ModelProto bytes.
 */
export function encodeModel(spec) {
  const w = new Writer();
  w.int(MODEL.irVersion, spec.irVersion);
  w.string(MODEL.producerName, spec.producerName ?? 'attune');
  if (spec.producerVersion) w.string(MODEL.producerVersion, spec.producerVersion);
  w.string(MODEL.domain, spec.domain ?? 'attune');
  w.int(MODEL.modelVersion, spec.modelVersion ?? 1);
  if (spec.doc) w.string(MODEL.docString, spec.doc);
  w.message(MODEL.graph, (g) => {
    for (const node of spec.graph.nodes) g.message(GRAPH.node, (n) => writeNode(n, node));
    g.string(GRAPH.name, spec.graph.name);
    for (const tensor of spec.graph.initializers) g.message(GRAPH.initializer, (t) => writeTensor(t, tensor));
    if (spec.graph.doc) g.string(GRAPH.docString, spec.graph.doc);
    for (const info of spec.graph.inputs) g.message(GRAPH.input, (v) => writeValueInfo(v, info));
    for (const info of spec.graph.outputs) g.message(GRAPH.output, (v) => writeValueInfo(v, info));
  });
  w.message(MODEL.opsetImport, (o) => o.string(OPSET.domain, '').int(OPSET.version, spec.opset));
  const metadata = spec.metadata ?? {};
  for (const key of Object.keys(metadata).sort()) {
    w.message(MODEL.metadataProps, (e) => e.string(ENTRY.key, key).string(ENTRY.value, metadata[key]));
  }
  return w.finish();
}
