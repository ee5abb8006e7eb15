// A deployment's topics already exist with another partition count than ATTUNE_TOPIC_PARTITIONS
// (an operator raised it to run more workers): Attune keeps them as they are and says so once
// at start, naming the topics and their counts. Until 12-06 it said nothing (an operator
// walkthrough: topics of 6 partitions, the setting 3, not a word).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/config.js';
import { createLogger, silentLogger } from '../lib/log.js';
import { prefixedTopics } from '../schemas/topics.js';
import { openBus } from './roles.js';

test('opening the bus over topics of another partition count warns once, naming them and the counts', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-topic-partitions-'));
  try {
    const topics = prefixedTopics('tp.');
    const first = await openBus(loadConfig({ ATTUNE_DATA_DIR: dataDir, ATTUNE_TOPIC_PARTITIONS: '2' }), silentLogger, topics);
    await first.close();
    const lines: Array<Record<string, any>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    const log = createLogger({ level: 'info', destination: sink });
    const again = await openBus(loadConfig({ ATTUNE_DATA_DIR: dataDir, ATTUNE_TOPIC_PARTITIONS: '4' }), log, topics);
    assert.equal(await again.partitionCount(topics.heartReadings), 2, 'the existing topic keeps its count');
    await again.close();
    const warned = lines.filter((l) => l.level === 40 && /ATTUNE_TOPIC_PARTITIONS is 4/.test(l.msg));
    assert.equal(warned.length, 1, JSON.stringify(lines));
    assert.equal(warned[0].expected, 4);
    assert.equal(warned[0].topics[topics.heartReadings], 2);
    assert.equal(Object.keys(warned[0].topics).length, Object.keys(topics).length, 'every topic named');

    const quiet: unknown[] = [];
    const same = await openBus(loadConfig({ ATTUNE_DATA_DIR: dataDir, ATTUNE_TOPIC_PARTITIONS: '2' }), createLogger({ level: 'info', destination: new Writable({ write: (c, _e, d) => (quiet.push(String(c)), d()) }) }), topics);
    await same.close();
    assert.deepEqual(quiet.filter((l) => String(l).includes('ATTUNE_TOPIC_PARTITIONS')), [], 'no warning when the counts agree');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
