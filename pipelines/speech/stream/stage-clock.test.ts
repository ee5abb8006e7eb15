import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readWavFile } from '../wav.test-util.js';
import { RecognitionThread } from './recognition-thread.js';
import { StageClock } from './stage-clock.js';

const speechDir = new URL('../../../../shared/data/speech/', import.meta.url).pathname;

test('stage clock adds each call, resolved or rejected, with its longest, and reads then resets', async () => {
  let t = 0;
  const clock = new StageClock(() => t);
  await clock.time('a', async () => {
    t += 5;
  });
  await assert.rejects(
    clock.time('a', async () => {
      t += 2;
      throw new Error('failed stage');
    }),
  );
  clock.add('b', 7);
  const first = clock.read(true);
  assert.deepEqual(first, { a: { ms: 7, calls: 2, maxMs: 5 }, b: { ms: 7, calls: 1, maxMs: 7 } });
  assert.deepEqual(clock.read(), {});
  first.a.calls = 99; // a copy: the reader cannot change the clock
  clock.add('a', 1);
  assert.deepEqual(clock.read(), { a: { ms: 1, calls: 1, maxMs: 1 } });
});

test('the recognition thread reports its stages where they run: a final recognised, aligned, and one partial', async () => {
  const { samples } = readWavFile(speechDir + 'librispeech_251-137823-0002_M.wav');
  const thread = new RecognitionThread({ defaultModel: 'moonshine-tiny', alignment: true });
  try {
    await thread.start();
    assert.deepEqual(await thread.stageTimes(), {}, 'opening the models is no stage');
    const endSample = samples.length;
    const endMs = (endSample * 1000) / 16_000;
    const transcript = await thread.final(
      { index: 0, startSample: 0, endSample, startMs: 0, endMs, speechStartSample: 0, speechEndSample: endSample, parts: 1, samples: samples.slice() },
      'moonshine-tiny',
    );
    assert.ok(transcript.words.length > 0, 'the clip was recognised');
    await thread.partial('stream-1', samples.slice(), 'moonshine-tiny');

    const stages = await thread.stageTimes(true);
    assert.equal(stages.final_recognition?.calls, 1);
    assert.equal(stages.final_alignment?.calls, 1);
    assert.equal(stages.final_total?.calls, 1);
    assert.equal(stages.partial_recognition?.calls, 1);
    for (const s of Object.values(stages)) assert.ok(s.ms > 0 && s.maxMs <= s.ms, JSON.stringify(s));
    // A final's whole run contains its recognition and alignment (filled pauses are the rest).
    assert.ok(stages.final_total.ms >= stages.final_recognition.ms + stages.final_alignment.ms);
    assert.deepEqual(await thread.stageTimes(), {}, 'reset');
  } finally {
    await thread.close();
  }
});
