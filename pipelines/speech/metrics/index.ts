// Transcript-derived speech metrics: filler words, repetitions, words per minute, filler report.
// Pure: plain data in, plain data out.
export * from './types.js';
export { isWordText } from './tokens.js';
export * from './fillers.js';
export * from './repetitions.js';
export * from './rates.js';
export * from './report.js';
