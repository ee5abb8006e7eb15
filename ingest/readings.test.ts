// Unit tests of the reading parser's hot-path shortcuts (ingest/readings.ts) and the sync
// route's session list (ingest/gateway.ts); the HTTP behaviour is in strict-readings.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAttuneError } from '../lib/errors.js';
import { parseReadings, parseSyncBody } from './readings.js';
import { sessionIdsOf } from './gateway.js';
import type { HeartReadingRecord } from '../schemas/records.js';

test('a reading without null fields is taken as parsed; one with nulls loses exactly those fields', () => {
  const body = JSON.parse('{"readings":[{"timestamp":1763700000000,"hr":61,"rr_intervals_ms":[812]},{"timestamp":1763700001000,"hr":62,"hrv":null,"battery_level":null,"rr_intervals_ms":[790]}]}');
  const parsed = parseSyncBody(body);
  assert.deepEqual(parsed.readings, [
    { timestamp: 1763700000000, hr: 61, rr_intervals_ms: [812] },
    { timestamp: 1763700001000, hr: 62, rr_intervals_ms: [790] },
  ]);
  assert.deepEqual(Object.keys(parsed.readings[1]), ['timestamp', 'hr', 'rr_intervals_ms'], 'null fields are absent, not undefined-valued');
  assert.equal(body.readings[1].hrv, null, "the client's object is not changed");
});

test('a bad reading deep in a list is refused naming its pointer and index, as before the lazy pointer', () => {
  const list: unknown[] = Array.from({ length: 500 }, (_, i) => ({ timestamp: 1763700000000 + i * 1000, hr: 60 }));
  list[417] = { timestamp: 1763700000000, hr: '60' };
  list[418] = 'not a reading';
  for (const [prefix, at, reason] of [['/readings', 417, 'invalid_type'], ['', 417, 'invalid_type']] as const) {
    assert.throws(
      () => parseReadings(list, prefix),
      (e) => isAttuneError(e) && e.details[0].field === `${prefix}/${at}/hr` && e.details[0].index === at && e.details[0].reason === reason,
    );
  }
  assert.throws(
    () => parseReadings(list.slice(418), '/readings'),
    (e) => isAttuneError(e) && e.details[0].field === '/readings/0' && e.details[0].index === 0 && e.details[0].message === 'must be object',
  );
  assert.throws(
    () => parseReadings([{ timestamp: 1, hr: 60 }, { timestamp: 2 }], '/readings'),
    (e) => isAttuneError(e) && e.details[0].field === '/readings/1' && e.details[0].index === 1,
  );
});

test('sessionIdsOf lists each session once, in order of first appearance, without null', () => {
  const rec = (session_id: string | null) => ({ session_id }) as HeartReadingRecord;
  assert.deepEqual(sessionIdsOf(['a', 'a', null, 'b', 'a', 'c', 'c', null, 'b'].map(rec)), ['a', 'b', 'c']);
  assert.deepEqual(sessionIdsOf([null, null].map(rec)), []);
  assert.deepEqual(sessionIdsOf([]), []);
});
