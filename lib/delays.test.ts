import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Delays } from './delays.js';

test('a wait ends after its time, or at once on wakeAll; nothing is left pending', async () => {
  const d = new Delays();
  const started = performance.now();
  await d.wait(20);
  assert.ok(performance.now() - started >= 15);
  const long = [d.wait(60_000), d.wait(60_000)];
  assert.equal(d.size, 2);
  d.wakeAll();
  await Promise.all(long); // would hold the test for a minute without the wake
  assert.equal(d.size, 0);
});
