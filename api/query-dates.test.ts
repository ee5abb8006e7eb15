// Date filters of queries outside 1970-01-01..2299-12-31 are a 400 naming the parameter: they
// reached PostgreSQL as the year 0 ("date/time field value out of range") or ClickHouse as
// +010000-01-01, and came back as 500s (a security review).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAttune, type TestAttune } from '../test/attune.js';

let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

test('out-of-range dates on the speech list, reports, search and coherence history are 400 out_of_range naming the parameter; in-range ones answer', async () => {
  const token = app.token('u-dates', 'o-dates');
  const refused: Array<[string, string]> = [
    ['/v1/speech-sessions?to=9999-12-31', '?to'],
    ['/v1/speech-sessions?from=0000-01-01', '?from'],
    ['/v1/speech-sessions?startDate=0000-01-01', '?startDate'],
    ['/v1/speech-sessions?from=1969-12-31T23:59:59Z', '?from'],
    ['/v1/reports/sessions?startDate=2026-01-01&endDate=9999-12-31', '?endDate'],
    ['/v1/search/sessions?q=hello&filters=' + encodeURIComponent(JSON.stringify({ endDate: '9999-12-31' })), '?endDate'],
    ['/v1/users/me/coherence?start_date=2026-01-01&end_date=9999-12-31', '?end_date'],
    ['/v1/users/me/coherence?start_date=1960-01-01&end_date=2026-01-01', '?start_date'],
  ];
  for (const [path, field] of refused) {
    const res = await app.request('GET', path, { token });
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
    assert.deepEqual([res.body.error.details[0].field, res.body.error.details[0].reason], [field, 'out_of_range'], path);
  }
  for (const path of ['/v1/speech-sessions?from=1970-01-01&to=2299-12-31', '/v1/reports/sessions?startDate=2026-01-01&endDate=2026-02-01', '/v1/users/me/coherence?start_date=2026-01-01&end_date=2026-01-31', '/v1/users/me/coherence?start_date=2299-12-01&end_date=2299-12-31', '/v1/reports/sessions?startDate=2299-12-01&endDate=2299-12-31']) {
    const res = await app.request('GET', path, { token });
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
  }
});
