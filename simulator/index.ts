// The device simulator: realistic RR-interval streams and a driver that uploads them
// through Attune's public ingest API.
export { runSimulator, type SimulatorOptions, type SimulatorStats, type DeviceStats, type DeviceOutcome, type Step } from './driver.js';
export { RrGenerator, type RrProfile, type Beat, type BeatKind } from './rr-generator.js';
export { simulatedDevice, simulatedDevices, simulatedOrgId, type SimulatedDevice } from './profiles.js';
export { readingsFor, readingSpanMs, Battery, type SyncReading } from './readings.js';
export { Mulberry32, gaussian, exponential, deriveSeed, type Prng } from '../lib/prng.js';
export { defaultRetryPolicy, type RetryPolicy } from './http-client.js';
export { runGroupSimulator, GROUP_SIMULATOR_SCOPES, SIMULATED_GROUP_NAME, type GroupSimulatorOptions, type GroupSimulatorStats, type ParticipantStats } from './group.js';
export { groupParticipants, groupParticipant, pacerPhaseRad, lockedCount, type GroupPlan, type GroupParticipant } from './group-profiles.js';
