// Delivery scores: the feature vector (features.ts) and the ONNX scoring model (model.ts).
export * from './features.js';
export * from './model.js';
export { readOnnxMetadata } from './onnx-metadata.js';
