// summariseDeviceSteps' time in high coherence: each device reading stands for the time since
// the one before it (at least its 5 s step, at most DEVICE_READING_HOLD_MS), so a device that
// reports once a minute counts minutes, not 5 s a reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICE_READING_HOLD_MS, DEVICE_STEP_MS, summariseDeviceSteps, type DeviceStep } from './device-figures.js';

const START = Date.UTC(2026, 11, 6, 9);
const step = (endMs: number, coherence: number | null): DeviceStep => ({ endMs, readings: 1, hrBpm: 70, hrvMs: 40, coherence });

test('a reading a minute, all high, over 10 minutes: 600 s high (it was 50 s)', () => {
  const steps = Array.from({ length: 10 }, (_, i) => step(START + (i + 1) * 60_000, 0.8));
  assert.equal(summariseDeviceSteps(steps, 0.5, START).highCoherenceS, 600);
});

test('a reading every 5 s counts 5 s each; a step without a coherence moves the clock but counts nothing', () => {
  const steps = [step(START + 5000, 0.7), step(START + 10_000, 0.3), step(START + 15_000, null), step(START + 20_000, 0.9)];
  assert.equal(summariseDeviceSteps(steps, 0.5, START).highCoherenceS, 10);
});

test('after a pause in readings, one reading counts at most DEVICE_READING_HOLD_MS; before the start, its own step', () => {
  const steps = [step(START, 0.9), step(START + 5000, 0.9), step(START + 5000 + 5 * 60_000, 0.9)];
  assert.equal(summariseDeviceSteps(steps, 0.5, START).highCoherenceS, (DEVICE_STEP_MS + DEVICE_STEP_MS + DEVICE_READING_HOLD_MS) / 1000);
});
