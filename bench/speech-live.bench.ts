// Live-stream part of bench/speech.bench.ts: N concurrent live streams through a whole Attune in
// one process (startTestAttune: ingest WebSocket, embedded bus, speech worker, chDB, API, live
// hub: the embedded default's deployment shape), not pinned. The client (N ingest sockets
// sending 20 ms PCM16 messages at real-time pace, N event sockets) runs in the same process.
//
//   node --max-semi-space-size=64 --import tsx bench/speech-live.bench.ts <streams> [seconds=30] [no-partials]
//
// One run: the entry (speech.bench.ts) runs it in ≥ 3 fresh processes per stream count and
// takes the medians. Each run also writes its own bench/results/speech-live-<time>-<tag>.json.
//
// Per stream: every metrics:update's latency = arrival − (startedAt + payload.atMs), i.e. from
// the moment the last sample of that second was sent to the event's arrival. A stream keeps up
// when each whole second of its audio got a metrics:update and its p99 latency is ≤ 1000 ms.
// Streams start spread evenly over one second (live users do not start in step).
//
// To see where time goes it also records: the event loop's delay (perf_hooks), the process's CPU
// use, the recognition backlog of the worker's queue, the client's pacing (actual send time −
// due time), and wall time inside the pipeline's stages where they run: the analyzer's push on
// the main thread (its prototype method wrapped from here), and recognition, alignment, whole
// finals and partials in the recognition thread (its own StageClock, read with
// RecognitionThread.stageTimes(); wrapping those methods here, as this benchmark once did, timed
// nothing, because the thread has its own copies of the classes).
// Prints progress lines and, last, one line `RESULT {json}`.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { startTestAttune } from '../test/attune.js';
import { SpeechEventListener, createSpeechSession, streamLiveAudio, type LiveStreamResult } from '../test/speech-client.js';
import { SpeechStreamAnalyzer } from '../pipelines/speech/stream/analyzer.js';
import { RecognitionThread } from '../pipelines/speech/stream/recognition-thread.js';
import type { StageTimes } from '../pipelines/speech/stream/stage-clock.js';
import { SAMPLE_RATE, loadSpeechClips, speechAudio } from './speech-audio.bench.js';
import { BenchRun, relativeResultPath } from './lib/results.js';

const streams = Number(process.argv[2] ?? 1);
const minSeconds = Number(process.argv[3] ?? 30);
/**
 * Diagnosis only: `no-partials` drops every partial-result request before it reaches the
 * recognition thread (the worker gets null, as when a newer request replaced it).
 */
const noPartials = process.argv[4] === 'no-partials';
const COMPLETE_TIMEOUT_MS = 180_000;
const bench = new BenchRun('speech-live', {
  description: `${streams} concurrent live streams through one whole Attune process at real-time pace (one run; bench:speech takes medians over runs)`,
  options: { streams, seconds: minSeconds, partials: !noPartials },
});

// ---- the analyzer's stage clock (main thread; wall ms inside push, including awaits) ----
const analyzerPush = { ms: 0, calls: 0, maxMs: 0 };
let clocking = false;
{
  const push = SpeechStreamAnalyzer.prototype.push;
  SpeechStreamAnalyzer.prototype.push = async function (this: SpeechStreamAnalyzer, ...args: Parameters<typeof push>) {
    const t = performance.now();
    try {
      return await push.apply(this, args);
    } finally {
      if (clocking) {
        const ms = performance.now() - t;
        analyzerPush.ms += ms;
        analyzerPush.calls++;
        analyzerPush.maxMs = Math.max(analyzerPush.maxMs, ms);
      }
    }
  };
}

// Patched on the main thread's side of the thread, where the worker asks for partials.
if (noPartials) RecognitionThread.prototype.partial = () => Promise.resolve(null);

const pct = (sorted: number[], q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]);
const r0 = (x: number) => Math.round(x);
const r1 = (x: number) => Math.round(x * 10) / 10;
function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r0(pct(s, 0.5)), p95: r0(pct(s, 0.95)), p99: r0(pct(s, 0.99)), max: r0(s[s.length - 1] ?? NaN) };
}

/** Wall ms per stage (total, calls, longest, ms per second of audio streamed). */
function stageSummary(stages: StageTimes, audioSeconds: number) {
  return Object.fromEntries(
    Object.entries(stages).map(([k, v]) => [k, { total: r0(v.ms), calls: v.calls, max: r0(v.maxMs), per_audio_s: r1(v.ms / audioSeconds) }]),
  );
}

const app = await startTestAttune({ env: { LOG_LEVEL: 'silent' } });
const worker = app.speechWorker;
if (!worker) throw new Error('the speech worker is not running');
const token = app.token('bench-user', 'bench-org');
const clips = loadSpeechClips();

try {
  // Warm-up stream, unmeasured: one clip sent at once, through to completion (JIT, first runs).
  {
    const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: 'warm-up' });
    const events = await SpeechEventListener.open(app.baseUrl, token, session.id);
    await streamLiveAudio(app.baseUrl, token, session.id, clips[0].samples, SAMPLE_RATE, { realtime: false });
    await events.waitFor((e) => e.msg.type === 'processing:status' && e.msg.payload.status === 'completed', 60_000, 'warm-up completed');
    events.close();
  }

  const audio = Array.from({ length: streams }, (_, i) => speechAudio(clips, minSeconds, i).samples);
  const sessions = await Promise.all(audio.map((_, i) => createSpeechSession(app.baseUrl, token, { type: 'speech', title: `bench live ${i}` })));
  const listeners = await Promise.all(sessions.map((s) => SpeechEventListener.open(app.baseUrl, token, s.id)));

  const loop = monitorEventLoopDelay({ resolution: 10 });
  const backlog: number[] = [];
  const recognition = (worker as unknown as { recognition: RecognitionThread }).recognition;
  const sampler = setInterval(() => backlog.push(recognition.backlogSeconds), 250);
  await recognition.stageTimes(true); // from zero: the warm-up's stages are not counted
  const load0 = loadavg();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  clocking = true;
  loop.enable();

  const sends: Array<Array<{ at: number; audioMs: number }>> = audio.map(() => []);
  const lives: LiveStreamResult[] = await Promise.all(
    audio.map(async (samples, i) => {
      await new Promise((r) => setTimeout(r, (i * 1000) / streams));
      return streamLiveAudio(app.baseUrl, token, sessions[i].id, samples, SAMPLE_RATE, {
        chunkMs: 20,
        onSent: (audioMs) => sends[i].push({ at: performance.now(), audioMs }),
      });
    }),
  );
  const playedWall = performance.now() - wall0;
  const cpuPlaying = process.cpuUsage(cpu0);
  loop.disable();
  clocking = false;
  const threadWhilePlaying = await recognition.stageTimes(true);
  const eventLoop = { p50: r1(loop.percentile(50) / 1e6), p99: r1(loop.percentile(99) / 1e6), max: r1(loop.max / 1e6) };

  // Then every stream to completion (its last seconds and final transcripts).
  const completed = await Promise.all(
    listeners.map((l) =>
      l
        .waitFor((e) => e.msg.type === 'processing:status' && ['completed', 'failed'].includes(e.msg.payload.status), COMPLETE_TIMEOUT_MS, 'completion')
        .then((e) => ({ at: e.at, status: e.msg.payload.status as string }))
        .catch(() => ({ at: NaN, status: 'timeout' })),
    ),
  );
  clearInterval(sampler);
  const threadAfterStop = await recognition.stageTimes(true);

  const finalLags: number[][] = [];
  const perStream = listeners.map((l, i) => {
    const live = lives[i];
    const wholeSeconds = Math.floor(audio[i].length / SAMPLE_RATE);
    const metrics = l.of('metrics:update').filter((e) => e.msg.payload.second < wholeSeconds);
    const latencies = metrics.map((e) => e.at - (live.startedAt + e.msg.payload.atMs));
    const seen = new Set(metrics.map((e) => e.msg.payload.second as number));
    const tokens = l.of('asr:token');
    const during = tokens.filter((e) => e.at <= live.stoppedAt);
    // A final's lag: arrival − when its utterance's last sample was sent.
    const finalLag = tokens.filter((e) => e.msg.payload.isFinal).map((e) => e.at - (live.startedAt + e.msg.payload.endMs));
    const pacing = sends[i].map((s) => s.at - (live.startedAt + s.audioMs));
    finalLags[i] = finalLag;
    const lat = summary(latencies);
    const missing = wholeSeconds - seen.size;
    return {
      stream: i,
      audio_s: r1(audio[i].length / SAMPLE_RATE),
      seconds_expected: wholeSeconds,
      seconds_missing: missing,
      latency_ms: lat,
      keeps_up: missing === 0 && lat.p99 <= 1000,
      partials_while_playing: during.filter((e) => !e.msg.payload.isFinal).length,
      finals_while_playing: during.filter((e) => e.msg.payload.isFinal).length,
      finals_total: tokens.filter((e) => e.msg.payload.isFinal).length,
      final_lag_ms: summary(finalLag),
      pacing_lag_ms: summary(pacing),
      completed: completed[i].status,
      completed_after_stop_ms: r0(completed[i].at - live.stoppedAt),
      latencies,
    };
  });
  for (const l of listeners) l.close();

  const all = summary(perStream.flatMap((s) => s.latencies));
  const audioSeconds = audio.reduce((n, a) => n + a.length / SAMPLE_RATE, 0);
  const result = {
    part: 'live',
    streams,
    ...(noPartials ? { diagnosis: 'partial results switched off (RecognitionQueue.partial patched to drop every request)' } : {}),
    audio_seconds_per_stream: r1(audioSeconds / streams),
    all_keep_up: perStream.every((s) => s.keeps_up),
    streams_keeping_up: perStream.filter((s) => s.keeps_up).length,
    metrics_latency_ms: all,
    worst_stream_p99_ms: Math.max(...perStream.map((s) => s.latency_ms.p99)),
    seconds_missing: perStream.reduce((n, s) => n + s.seconds_missing, 0),
    partials_while_playing: perStream.reduce((n, s) => n + s.partials_while_playing, 0),
    finals_while_playing: perStream.reduce((n, s) => n + s.finals_while_playing, 0),
    final_token_lag_ms: summary(perStream.flatMap((s) => finalLags[s.stream])),
    completed: perStream.filter((s) => s.completed === 'completed').length,
    completed_after_stop_ms_max: Math.max(...perStream.map((s) => s.completed_after_stop_ms)),
    client_pacing_lag_ms: summary(sends.flatMap((list, i) => list.map((s) => s.at - (lives[i].startedAt + s.audioMs)))),
    event_loop_delay_ms: eventLoop,
    cpu_cores_used_while_playing: Math.round(((cpuPlaying.user + cpuPlaying.system) / 1000 / playedWall) * 100) / 100,
    recognition_backlog_s: { mean: r1(backlog.reduce((a, b) => a + b, 0) / Math.max(1, backlog.length)), max: r1(Math.max(0, ...backlog)) },
    // Wall ms per stage. While playing: from the first stream's start to the last one's stop;
    // after stop: from then until every stream completed (the backlog drained).
    stage_wall_ms_while_playing: stageSummary({ analyzer_push: analyzerPush, ...threadWhilePlaying }, audioSeconds),
    stage_wall_ms_after_stop: stageSummary(threadAfterStop, audioSeconds),
    load_average_before: load0.map(r1),
    load_average_after: loadavg().map(r1),
    per_stream: perStream.map(({ latencies: _l, ...s }) => s),
  };
  console.log(
    `live ${streams} stream(s): ${result.streams_keeping_up}/${streams} keep up; metrics:update latency p50 ${all.p50} p95 ${all.p95} p99 ${all.p99} max ${all.max} ms; ` +
      `${result.seconds_missing} seconds missing; ${result.partials_while_playing} partials, ${result.finals_while_playing} finals while playing; ` +
      `event loop delay p99 ${eventLoop.p99} max ${eventLoop.max} ms; ${result.cpu_cores_used_while_playing} cores; backlog max ${result.recognition_backlog_s.max} s`,
  );
  // One run: each metric has one value here; bench:speech takes the medians over runs.
  bench.metric('metrics_latency_p99_ms', [all.p99], 'ms', 'lower');
  bench.metric('streams_keeping_up', [result.streams_keeping_up], 'streams', 'higher');
  const file = bench.write(result);
  console.log(`wrote ${relativeResultPath(file)}`);
  console.log('RESULT ' + JSON.stringify({ ...result, result_file: relativeResultPath(file) }));
} finally {
  await app.cleanup();
}
process.exit(process.exitCode ?? 0);
