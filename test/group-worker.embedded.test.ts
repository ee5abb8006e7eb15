// The group worker end to end on the embedded bus (test/group-e2e-scenario.ts).
import { mkdtempSync } from 'node:fs';
import { getTestServices } from './services.js';
import { groupEndToEnd } from './group-e2e-scenario.js';
import { startTestAttune } from './attune.js';

const services = await getTestServices({ needKafka: false });
const dataDir = mkdtempSync('/tmp/hA1-group-e2e-');

groupEndToEnd('group worker end to end on the embedded bus', async () => startTestAttune({ clickhouseUrl: services.clickhouseUrl, dataDir, env: { ATTUNE_SPEECH: '0' } }), { dataDir });
