// The speech worker's series behind GET /metrics (issue 9): one real clip uploaded through a
// whole Attune, then the metrics port shows the stream finalised, its seconds of audio (the
// clip's length), its processing time and real-time factor, and empty queues once it is done.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REAL_SPEECH } from '../pipelines/speech/fillers/filler-clips.test-util.js';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { getTestServices } from '../test/services.js';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';
import { createSpeechSession, uploadWav } from '../test/speech-client.js';

const CLIP = 'librispeech_251-118436-0001_M.wav';
let app: TestAttune;

before(async () => {
  const services = await getTestServices({ needKafka: false });
  app = await startTestAttune({ clickhouseUrl: services.clickhouseUrl, env: { ATTUNE_METRICS_PORT: '0' } });
});
after(async () => {
  await app?.cleanup();
});

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('an upload analysed: streams, audio seconds, processing seconds, real-time factor and queues on /metrics', async () => {
  const bytes = readFileSync(join(REAL_SPEECH, CLIP));
  const wav = readWavFile(join(REAL_SPEECH, CLIP));
  const clipS = wav.samples.length / wav.sampleRate;
  const token = app.token('metrics-speech', 'metrics-org');
  const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'metrics' });
  const startedAt = Date.now();
  const up = await uploadWav(app.baseUrl, token, session.id, bytes, { fileName: CLIP });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  // In-process, so no status polling over HTTP.
  // Analysed (the worker published the results), then stored and completed (the speech results sink).
  await waitFor('the upload to be analysed', () => app.speechWorker!.stats.finalized >= 1 || app.speechWorker!.stats.failed > 0, 180_000, 100);
  await waitFor('the results to be stored', () => app.speechResultsSink!.stats.completed >= 1, 60_000, 50);
  const wallS = (Date.now() - startedAt) / 1000;
  assert.equal(app.speechWorker!.stats.failed, 0);

  const text = await (await fetch(`${app.metricsUrl}/metrics`)).text();
  assert.equal(value(text, 'attune_speech_streams_total{outcome="finalized"}'), 1);
  assert.equal(value(text, 'attune_speech_streams_total{outcome="failed"}'), 0);
  assert.ok((value(text, 'attune_speech_frames_total') ?? 0) > 0);
  const audioS = value(text, 'attune_speech_audio_seconds_total{source="upload"}')!;
  assert.ok(Math.abs(audioS - clipS) < 0.05, `audio ${audioS} s, the clip is ${clipS} s`);
  assert.equal(value(text, 'attune_speech_audio_seconds_total{source="live"}'), 0);
  assert.equal(value(text, 'attune_speech_results_sink_completed_total'), 1);
  assert.ok((value(text, 'attune_speech_results_sink_rows_total') ?? 0) > 10);
  // Processing: from the first frame to the published results, within the test's own wall time.
  const processingS = value(text, 'attune_speech_processing_seconds_total{source="upload"}')!;
  assert.ok(processingS > 0 && processingS <= wallS, `processing ${processingS} s of ${wallS} s`);
  const rtf = value(text, 'attune_speech_real_time_factor{source="upload"}')!;
  assert.ok(Math.abs(rtf - processingS / audioS) < 1e-3 * Math.max(1, rtf), `rtf ${rtf} vs ${processingS / audioS}`);
  // Done: nothing waits.
  assert.equal(value(text, 'attune_speech_queue{queue="open_streams"}'), 0);
  assert.equal(value(text, 'attune_speech_queue{queue="finalizing"}'), 0);
  assert.equal(value(text, 'attune_speech_recognition_backlog_seconds'), 0);
  // The speech tables' inserts are counted with the other sinks.
  assert.ok((value(text, `attune_sink_rows_total{table="${app.database}.speech_summaries"}`) ?? 0) >= 1, 'speech_summaries rows');
  process.stdout.write(`# clip ${clipS.toFixed(2)} s, processing ${processingS.toFixed(2)} s, real-time factor ${rtf.toFixed(3)}\n`);
});
