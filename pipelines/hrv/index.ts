// Public API of the HRV/coherence maths. Pure: typed arrays in, numbers out; reusable plans and
// scratch objects are created by the caller and passed in.
export {
  RR_MIN_MS,
  RR_MAX_MS,
  cleanRr,
  cleanRrInto,
  createArtifactScratch,
  createCleanedRr,
  type ArtifactScratch,
  type CleanedRr,
} from './artifacts.js';
export {
  createSplineScratch,
  resampleCubic,
  resampleLinear,
  sampleCountFor,
  type SplineScratch,
} from './resample.js';
export {
  createSpectrumPlan,
  detrendLinear,
  powerSpectralDensity,
  type SpectrumPlan,
  type SpectrumPlanOptions,
} from './spectrum.js';
export {
  PEAK_SEARCH_LOW_HZ,
  PEAK_SEARCH_HIGH_HZ,
  PEAK_HALF_WIDTH_HZ,
  TOTAL_LOW_HZ,
  TOTAL_HIGH_HZ,
  computeCoherence,
  createCoherenceResult,
  type CoherenceResult,
} from './coherence.js';
export {
  SUCCESSIVE_TOLERANCE_MS,
  computeTimeDomain,
  createTimeDomainMetrics,
  type TimeDomainMetrics,
} from './time-domain.js';
export {
  DEFAULT_MAX_EDGE_GAP_MS,
  DEFAULT_MAX_GAP_BREATHS,
  DEFAULT_MAX_GAP_MS,
  DEFAULT_MIN_COVERAGE,
  DEFAULT_IRREGULAR_DEVIATION,
  DEFAULT_MAX_IRREGULAR_SHARE,
  INVALID_REASONS,
  computeWindowMetrics,
  measureIrregularity,
  createWindowPlan,
  windowCoverage,
  type CoverageResult,
  type InvalidReason,
  type WindowMetrics,
  type WindowPlan,
  type WindowPlanOptions,
} from './window-metrics.js';
