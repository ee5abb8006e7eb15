// Types for onnx-writer.mjs, for tests.
export declare const DataType: { FLOAT: 1; INT64: 7 };
export interface OnnxNodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, number | string>;
  doc?: string;
}
export interface OnnxValueSpec {
  name: string;
  shape: (number | string)[];
  elemType?: number;
  doc?: string;
}
export interface OnnxModelSpec {
  irVersion: number;
  opset: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  doc?: string;
  graph: {
    name: string;
    doc?: string;
    nodes: OnnxNodeSpec[];
    initializers: { name: string; dims: number[]; values: number[] }[];
    inputs: OnnxValueSpec[];
    outputs: OnnxValueSpec[];
  };
  metadata?: Record<string, string>;
}
export declare function encodeModel(spec: OnnxModelSpec): Uint8Array;
