// Who the simulated devices belong to and how each person's heart behaves. Profiles
// are spread over the population on purpose (slow coherent breathers to fast irregular
// ones) so that one simulator run exercises the whole range of the coherence pipeline.
import { Mulberry32, deriveSeed } from '../lib/prng.js';
import type { RrProfile } from './rr-generator.js';

export const simulatedOrgId = 'sim-org';

export interface SimulatedDevice {
  /** 1-based. */
  index: number;
  userId: string;
  orgId: string;
  deviceId: string;
  profile: RrProfile;
  /** Seed of this device's RR stream. */
  seed: number;
  /** Battery at the start, percent. */
  batteryStartPct: number;
}

/**
 * Device `index` (1-based) of `count`. Coherence rises evenly from 0.05 (first) to
 * 0.95 (last); breathing slows as coherence rises (resonance breathing near 6/min is
 * what makes a coherent rhythm), jittered, within 5.5–15/min; base heart rate 55–85.
 */
export function simulatedDevice(index: number, count: number, seed: number): SimulatedDevice {
  const rng = new Mulberry32(deriveSeed(seed, 1_000_000 + index));
  const position = count > 1 ? (index - 1) / (count - 1) : 0.5;
  const coherence = 0.05 + 0.9 * position;
  const slowness = Math.min(1, Math.max(0, position + (rng.next() - 0.5) * 0.4));
  const breathingRatePerMin = round1(15 - 9.5 * slowness);
  const baseHrBpm = round1(55 + 30 * rng.next());
  // Slow breathing gives a larger RSA swing.
  const rsaAmplitudeMs = Math.round(40 + 40 * slowness);
  return {
    index,
    userId: `sim-user-${index}`,
    orgId: simulatedOrgId,
    deviceId: `sim-device-${index}`,
    profile: { baseHrBpm, breathingRatePerMin, coherence: round2(coherence), rsaAmplitudeMs },
    seed: deriveSeed(seed, index),
    batteryStartPct: round1(80 + 20 * rng.next()),
  };
}

export function simulatedDevices(count: number, seed: number): SimulatedDevice[] {
  return Array.from({ length: count }, (_, i) => simulatedDevice(i + 1, count, seed));
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
