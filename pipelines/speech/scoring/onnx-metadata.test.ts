import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel } from '../../../models/rubric/onnx-writer.mjs';
import { readOnnxMetadata } from './onnx-metadata.js';

const identity = (metadata: Record<string, string>) =>
  encodeModel({
    irVersion: 8,
    opset: 13,
    graph: {
      name: 'identity',
      nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
      initializers: [{ name: 'unused', dims: [300], values: Array.from({ length: 300 }, (_, i) => i) }],
      inputs: [{ name: 'x', shape: ['N', 3] }],
      outputs: [{ name: 'y', shape: ['N', 3] }],
    },
    metadata,
  });

test('reads metadata_props around a graph with initializers (UTF-8, empty values, long values)', () => {
  const long = 'x'.repeat(70_000); // a length varint of three bytes
  const metadata = { 'attune.model': 'rubric-v1', 'note': 'tempo ♩ = 120 – ünïcode', 'empty': '', 'long': long };
  assert.deepEqual(readOnnxMetadata(identity(metadata)), metadata);
});

test('a model without metadata_props gives an empty object', () => {
  assert.deepEqual(readOnnxMetadata(identity({})), {});
});

test('truncated or malformed bytes are a RangeError, not a wrong answer', () => {
  const bytes = identity({ key: 'value' });
  assert.throws(() => readOnnxMetadata(bytes.subarray(0, bytes.length - 3)), RangeError);
  assert.throws(() => readOnnxMetadata(Uint8Array.of(0x0b, 0x01)), /wire type 3/); // field 1, group start
  assert.throws(() => readOnnxMetadata(Uint8Array.of(0x08, 0xff, 0xff)), /truncated varint/);
  assert.throws(() => readOnnxMetadata(Uint8Array.of(0x72, 0x05, 0x0a)), /runs past the end/); // field 14, 5 bytes promised
});
