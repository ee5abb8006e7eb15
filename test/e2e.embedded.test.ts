// End to end on the embedded default: in-process bus, chDB (or CLICKHOUSE_URL when set).
import { getTestServices } from './services.js';
import { endToEndSuite } from './e2e-scenario.js';
import { startTestAttune } from './attune.js';

endToEndSuite('end to end on the embedded bus', async () => {
  const services = await getTestServices({ needKafka: false });
  // The metrics listener on a free port of 127.0.0.1: the last test scrapes it.
  return startTestAttune({ clickhouseUrl: services.clickhouseUrl, env: { ATTUNE_METRICS_PORT: '0' } });
});
