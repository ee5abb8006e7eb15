// Filler detection from the audio (held, level vowels) and its merge with the transcript's fillers.
export * from './filled-pauses.js';
export * from './merge.js';
export * from './spectral-change.js';
export * from './evidence.js';
export * from './filler-score.js';
