// The speech pipeline end to end on the embedded default: in-process bus, chDB (or
// CLICKHOUSE_URL when set), every role in one process.
import { after, before, describe, test } from 'node:test';
import { getTestServices } from './services.js';
import { startTestAttune, type TestAttune } from './attune.js';
import { speechScenario } from './speech-e2e.scenario.js';

describe('speech end to end on the embedded bus', () => {
  let app: TestAttune;
  before(async () => {
    const services = await getTestServices({ needKafka: false });
    app = await startTestAttune({ clickhouseUrl: services.clickhouseUrl });
  });
  after(async () => {
    await app?.cleanup();
  });
  speechScenario(test, () => app);
});
