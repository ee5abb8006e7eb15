import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulatedDevices } from './profiles.js';
import { RrGenerator } from './rr-generator.js';
import { Mulberry32 } from '../lib/prng.js';

test('simulated people span the population: breathing 5.5–15/min, coherence low to high, HR 55–85', () => {
  const devices = simulatedDevices(20, 1);
  assert.deepEqual(devices.map((d) => d.deviceId).slice(0, 3), ['sim-device-1', 'sim-device-2', 'sim-device-3']);
  assert.deepEqual(devices.map((d) => d.userId).slice(-1), ['sim-user-20']);
  assert.ok(devices.every((d) => d.orgId === 'sim-org'));
  const coherence = devices.map((d) => d.profile.coherence);
  assert.ok(coherence[0] <= 0.1 && coherence[19] >= 0.9, `coherence ${coherence}`);
  for (let i = 1; i < coherence.length; i++) assert.ok(coherence[i] > coherence[i - 1]);
  const breathing = devices.map((d) => d.profile.breathingRatePerMin);
  assert.ok(breathing.every((b) => b >= 5.5 && b <= 15), `breathing ${breathing}`);
  assert.ok(Math.max(...breathing) - Math.min(...breathing) > 6, `breathing ${breathing}`);
  const hr = devices.map((d) => d.profile.baseHrBpm);
  assert.ok(hr.every((h) => h >= 55 && h <= 85), `hr ${hr}`);
  assert.ok(Math.max(...hr) - Math.min(...hr) > 15, `hr ${hr}`);
  assert.equal(new Set(devices.map((d) => d.seed)).size, 20);
  // every profile is one the generator accepts
  for (const d of devices) assert.ok(new RrGenerator(d.profile, new Mulberry32(d.seed)).next().rrMs > 0);
});

test('profiles depend on the seed and on nothing else', () => {
  assert.deepEqual(simulatedDevices(5, 42), simulatedDevices(5, 42));
  assert.notDeepEqual(simulatedDevices(5, 42).map((d) => d.profile), simulatedDevices(5, 43).map((d) => d.profile));
  // device 2's stream does not depend on how many devices run (only its coherence spread does)
  assert.equal(simulatedDevices(3, 42)[1].seed, simulatedDevices(7, 42)[1].seed);
});
