// Group synchrony maths (issue 11): pure, no I/O. See README.md.
export * from './butterworth.js';
export * from './phase.js';
export * from './synchrony.js';
export * from './group-coherence.js';
export * from './membership.js';
export * from './window.js';
