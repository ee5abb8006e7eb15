// The speech worker: reads audio frames from the bus (uploads and live streams alike, keyed by
// session), runs the speech pipeline on each stream as it arrives, sends live events and
// publishes the results to attune.speech.results.v1 (Kafka in, Kafka out, issue 10): the speech
// results sink (pipelines/sinks/speech-results-sink.ts) writes them to ClickHouse and completes
// the session. The worker reads no ClickHouse and writes none, so it runs in the worker role and
// scales out with its consumer group; its PostgreSQL writes are the upload's progress, a live
// session's `processing` once its audio ends, and a stream's failure.
//
// Per stream: features and voice activity on every frame (fast, in the batch handler);
// closed segments go to the recognition queue (one per worker, see stream/recognition.ts);
// live streams also get partial results of the open segment about once a second and a
// metrics:update for every second of audio; uploads get processing:status with progress and
// an estimate of the time left. When the last frame arrives the stream is finalised: every
// segment recognised, then words, fillers, pauses, frames, summary and scores are published
// (the last record says the stream is complete; the sink completes the session once it has
// stored everything before it).
//
// Delivery: at least once, like every other consumer here. A stream's state lives in memory,
// so the committed offset of a partition never passes the first frame of a stream that is not
// finalised (its results published): after a crash or a rebalance the new owner reads every
// unfinished stream again from its first frame, and recomputes exactly the same results (same
// keys, newer computed_at: ReplacingMergeTree keeps one copy) and the same event ids. Frames of
// a stream whose first frame it did not see (the stream was finalised before the committed
// offset) are skipped.
//
// A stream can be read again after its session was completed: the worker crashed or lost its
// partitions after the sink had completed the session but before the worker committed past the
// stream. A stream whose session is completed when its first frame is read is skipped whole (its
// results are stored: the sink completes a session only once every row before the completion is
// durable), and so is one released before a newer stream of its session was claimed (a failed
// run a retry replaced: its results would come after the retry's completion, which deletes the
// rows of the session's other streams, and stay). One the sink completes while it is being read again (the sink was behind) finishes,
// but every PostgreSQL write of the worker carries `unlessStatus: completed`, so no progress or
// failure moves the upload or the session back, and once a write finds it completed the stream
// sends no more processing:status events.
//
// A stream whose ingest process died has no last frame; another ingest process, finding its
// claim's lease passed, publishes its end marker (sequence STREAM_LOST_SEQUENCE,
// schemas/audio-frames.ts): a live stream is then finalised with the audio that arrived, an
// upload fails. So the stream of a process that died does not stay open, holding back its
// partition's commit.
import type { Bus, BusRecord, Subscription } from '../../bus/types.js';
import type { TopicNames } from '../../schemas/topics.js';
import { Topics } from '../../schemas/topics.js';
import type { Logger } from '../../lib/log.js';
import { AttuneError } from '../../lib/errors.js';
import { Delays } from '../../lib/delays.js';
import type { SpeechAudioFrame, SpeechEvent, SpeechEventType, SpeechResult } from '../../schemas/registry/schemas.js';
import { decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import type { SpeechSessionsRepository, SpeechUploadsRepository } from '../../store/postgres/speech-sessions-repo.js';
import { deadLetter, deadLetterReason } from '../dead-letter.js';
import { groupIdFor } from '../group-id.js';
import { fromPcm16, STREAM_LOST_SEQUENCE } from '../../schemas/audio-frames.js';
import { SileroVad } from './vad/silero.js';
import { findPauses, type PauseOptions } from './vad/segments.js';
import { liveFillerCount } from './fillers/live-count.js';
import { ScoreModel, scoreFeatures, type SpeechScores } from './scoring/index.js';
import { SpeechStreamAnalyzer, type ClosedSegment } from './stream/analyzer.js';
import { splitWords, type SegmentTranscript } from './stream/recognition.js';
import { RecognitionThread } from './stream/recognition-thread.js';
import { assembleSessionResults, scoreInput, type SessionResults } from './stream/results.js';
import type { SecondFeatures } from './stream/seconds.js';
import { DEFAULT_LIVE_MODEL, DEFAULT_UPLOAD_MODEL } from './default-models.js';
import { finalResultRecords, segmentResultRecord, type SpeechResultHead } from './result-records.js';
import { speechStatusEvent } from './status-event.js';
import { publishSpeechResults } from './publish-results.js';

const RATE = 16_000;

export interface SpeechWorkerOptions {
  bus: Bus;
  topics?: TopicNames;
  codec: Codec;
  sessions: SpeechSessionsRepository;
  uploads: SpeechUploadsRepository;
  log: Logger;
  clock?: () => number;
  groupId?: string;
  /** Recognition model of a live stream whose session's settings name none (default moonshine-tiny). */
  defaultModel?: string;
  /**
   * Recognition model of an upload whose session's settings name none (default moonshine-base,
   * default-models.ts): an upload is not held to real time.
   */
  uploadModel?: string;
  /** Scoring model file; default the shipped rubric. */
  scoreModelPath?: string;
  /** Forced alignment on (default) or off (syllable estimates only). */
  alignment?: boolean;
  /** Audio of a live stream between two partial results (default 1000 ms). */
  partialIntervalMs?: number;
  /** Seconds of final-segment audio waiting for recognition before the handler stops reading (default 120). */
  maxRecognitionBacklogS?: number;
  /** Minimum wall time between two processing:status events of one upload (default 1000 ms). */
  statusIntervalMs?: number;
  /** Longest wait between two tries of publishing a stream's results while the bus refuses them (default 5000 ms). */
  maxPublishBackoffMs?: number;
}

interface StreamSettings {
  model: string;
  minPauseMs?: number;
  longPauseMs?: number;
  /**
   * The speech-coaching document's switches (settings.enable*, each on unless false). realTime
   * off: no partial results, metrics:update or per-segment asr:token while a live stream runs;
   * prosody off: pitch and volume are not stored; fluency off: fillers and repetitions are not
   * looked for; scoring off: the scorer does not run.
   */
  realTime: boolean;
  prosody: boolean;
  fluency: boolean;
  scoring: boolean;
}

interface StreamState {
  id: string;
  sessionId: string;
  orgId: string;
  userId: string;
  source: 'upload' | 'live';
  audioStartedAt: number;
  expectedSamples: number | null;
  settings: StreamSettings;
  partitionKey: string;
  firstOffset: bigint;
  nextSequence: number;
  analyzer: SpeechStreamAnalyzer;
  vad: SileroVad;
  transcripts: Array<Promise<SegmentTranscript>>;
  recognisedSamples: number;
  finalWordStarts: number[];
  partial: { segmentIndex: number; words: number; fromMs: number; toMs: number } | null;
  lastPartialSample: number;
  lastFinalIndex: number;
  /** Final transcripts so far, in arrival (= segment) order: the live filler count is computed from them. */
  finals: SegmentTranscript[];
  fillersSoFar: number;
  /** Pauses already sent in a metrics:update (newPauses). */
  pausesSent: number;
  startedWall: number;
  lastStatusWall: number;
  lastProgressStored: number;
  /**
   * The upload row's writes, chained: each is a read-modify-write, so a progress write still in
   * flight when the stream completes could otherwise land after "completed" and undo it.
   */
  uploadWrites: Promise<void>;
  failed: boolean;
  /** A write found the upload or session completed already (the stream is being read again): no more status events. */
  completedBefore: boolean;
  /** Its last frame (or an end marker) was read: the stream is being finalised or has failed. */
  ended: boolean;
}

/**
 * The worker's PostgreSQL writes never change a completed upload or session (see the header);
 * progress and `processing` never undo a failure either (an upload whose ingest was lost, failed
 * by the lease sweep while the worker is behind).
 */
const guardFor = (status: string | undefined) => ({ unlessStatus: status === 'processing' ? ['completed', 'failed'] : ['completed'] });

interface PartitionState {
  topic: string;
  partition: number;
  /** Next offset after the last record handled. */
  next: bigint;
  committed: bigint;
}

export class SpeechWorker {
  readonly groupId: string;
  readonly stats = { frames: 0, streams: 0, finalized: 0, failed: 0, segments: 0, skipped: 0, deadLettered: 0 };
  /**
   * Finalised streams by source: seconds of audio and of wall-clock time from the first frame to
   * the stored results; processing / audio is the real-time factor (the last stream's kept too).
   */
  readonly timing = {
    live: { audioS: 0, processingS: 0, lastRealTimeFactor: 0 },
    upload: { audioS: 0, processingS: 0, lastRealTimeFactor: 0 },
  };
  private readonly topics: TopicNames;
  private readonly clock: () => number;
  private readonly log: Logger;
  private subscription: Subscription | null = null;
  private readonly streams = new Map<string, StreamState>();
  private readonly partitions = new Map<string, PartitionState>();
  private readonly vadPool: SileroVad[] = [];
  private readonly finalizing = new Set<Promise<void>>();
  private recognition!: RecognitionThread;
  private scorer: ScoreModel | null = null;
  /** Set by stop(): a stream whose results the bus is refusing stops retrying and stays uncommitted. */
  private stopping = false;
  private readonly delays = new Delays();

  constructor(private readonly opts: SpeechWorkerOptions) {
    this.topics = opts.topics ?? Topics;
    // With the topic prefix, so deployments (and test suites) sharing a cluster never share a group.
    this.groupId = opts.groupId ?? groupIdFor('attune-speech-worker', this.topics);
    this.clock = opts.clock ?? Date.now;
    this.log = opts.log;
  }

  async start(): Promise<void> {
    this.stopping = false;
    // Models a worker cannot run without are opened up front, so a missing file fails the
    // start with the command that fetches it rather than the first stream. Recognition,
    // alignment and filled pauses run in their own thread (stream/recognition-thread.ts).
    this.recognition = new RecognitionThread({ defaultModel: this.opts.defaultModel ?? DEFAULT_LIVE_MODEL, alignment: this.opts.alignment !== false });
    await this.recognition.start();
    this.scorer = await ScoreModel.load(this.opts.scoreModelPath ? { path: this.opts.scoreModelPath } : {});
    this.vadPool.push(await SileroVad.load());
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [this.topics.speechAudio],
      fromBeginning: true,
      eachBatch: async (batch) => {
        for (const record of batch.records) await this.handle(record);
      },
      onAssignment: () => {
        // Partitions moved: streams of partitions this member lost will be re-read by their new
        // owner from their first frame; drop ours so no half-state lingers.
        this.partitions.clear();
        for (const s of this.streams.values()) this.dropStream(s);
      },
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = null;
    // Streams still open stay uncommitted: they are re-read from their first frame next time.
    this.stopping = true;
    this.delays.wakeAll();
    await Promise.allSettled([...this.finalizing]);
    for (const s of this.streams.values()) this.dropStream(s);
    for (const vad of this.vadPool.splice(0)) await vad.release();
    await this.recognition?.close();
    await this.scorer?.release();
  }

  /** What waits: seconds of audio queued for recognition, streams open, streams being finalised. */
  get queue(): { recognitionBacklogS: number; openStreams: number; finalizing: number } {
    return { recognitionBacklogS: this.recognition ? this.recognition.backlogSeconds : 0, openStreams: this.streams.size, finalizing: this.finalizing.size };
  }

  /** Resolves when every stream seen so far is finalised (tests, benchmarks). */
  async drain(): Promise<void> {
    while (this.finalizing.size > 0) await Promise.allSettled([...this.finalizing]);
  }

  private async takeVad(): Promise<SileroVad> {
    const vad = this.vadPool.pop() ?? (await SileroVad.load());
    vad.reset();
    return vad;
  }

  private dropStream(s: StreamState): void {
    this.streams.delete(s.id);
    this.vadPool.push(s.vad);
  }

  // ---- records ----

  private async handle(record: BusRecord): Promise<void> {
    const key = `${record.topic}:${record.partition}`;
    let part = this.partitions.get(key);
    if (!part) {
      part = { topic: record.topic, partition: record.partition, next: BigInt(record.offset), committed: -1n };
      this.partitions.set(key, part);
    }
    const offset = BigInt(record.offset);
    let frame: SpeechAudioFrame;
    try {
      const decoded = decodeRecord<SpeechAudioFrame>(this.opts.codec, record.value);
      frame = decoded instanceof Promise ? await decoded : decoded;
      if (frame.pcm16.length % 2 !== 0) throw new AttuneError('validation_error', 'pcm16 has an odd byte count', [{ field: 'pcm16', reason: 'invalid_record', message: 'odd length' }]);
    } catch (err) {
      await this.deadLetterRecord(record, err);
      part.next = offset + 1n;
      await this.maybeCommit(part);
      return;
    }
    this.stats.frames++;
    await this.onFrame(frame, part, offset);
    if (part.next < offset + 1n) part.next = offset + 1n;
    await this.maybeCommit(part);
    // Backpressure: an upload faster than recognition waits here, so its audio does not pile
    // up in memory (the bus keeps it).
    await this.recognition.backlogBelow(this.opts.maxRecognitionBacklogS ?? 120);
  }

  private async deadLetterRecord(record: BusRecord, err: unknown): Promise<void> {
    const e = err as Error & { code?: string };
    this.log.warn({ err, topic: record.topic, partition: record.partition, offset: record.offset }, 'speech frame dead-lettered');
    this.stats.deadLettered++;
    await deadLetter(this.opts.bus, this.topics, this.opts.codec, this.groupId, [{ record, reasonCode: deadLetterReason(err), reason: e.message }], this.clock());
  }

  private parseSettings(json: string | undefined, source: 'live' | 'upload'): StreamSettings {
    let raw: Record<string, unknown> = {};
    try {
      raw = JSON.parse(json || '{}') as Record<string, unknown>;
    } catch {
      raw = {};
    }
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
    return {
      model:
        typeof raw.model === 'string' && raw.model.length > 0
          ? raw.model
          : source === 'upload'
            ? (this.opts.uploadModel ?? DEFAULT_UPLOAD_MODEL)
            : (this.opts.defaultModel ?? DEFAULT_LIVE_MODEL),
      minPauseMs: num(raw.min_pause_ms),
      longPauseMs: num(raw.long_pause_ms),
      realTime: raw.enableRealTimeProcessing !== false,
      prosody: raw.enableProsodyAnalysis !== false,
      fluency: raw.enableFluencyAnalysis !== false,
      scoring: raw.enableScoring !== false,
    };
  }

  private async onFrame(frame: SpeechAudioFrame, part: PartitionState, offset: bigint): Promise<void> {
    let s = this.streams.get(frame.stream_id);
    if (frame.sequence === STREAM_LOST_SEQUENCE) {
      // The stream's ingest process was lost and another ended it (schemas/audio-frames.ts).
      if (!s || s.ended || s.failed) {
        this.stats.skipped++;
        if (!s && frame.source === 'live' && !frame.aborted_reason) await this.failLiveSessionWithoutAudio(frame);
        return;
      }
      s.ended = true;
      this.log.info({ session: s.sessionId, stream: s.id, reason: frame.aborted_reason, frames: s.nextSequence }, 'speech stream ended by its end marker (its ingest was lost)');
      if (frame.aborted_reason) await this.failStream(s, 'aborted', frame.aborted_reason, { recordFailure: false });
      else this.beginFinalize(s);
      return;
    }
    if (!s) {
      if (frame.sequence !== 0) {
        // Its first frame is before our starting offset: that stream was finalised already.
        this.stats.skipped++;
        return;
      }
      const stale = await this.staleStream(frame);
      if (stale) {
        // Read again after its session was completed (its results are stored: see the header),
        // or after a newer stream of the session was claimed (a retry after this one failed:
        // results of this one would land after the retry's and stay). Its later frames find no
        // open stream and are skipped like any finalised stream's.
        this.stats.skipped++;
        this.log.info({ session: frame.session_id, stream: frame.stream_id, why: stale }, 'speech stream skipped');
        return;
      }
      s = await this.openStream(frame, part, offset);
    }
    if (s.failed) return;
    if (s.ended) {
      // After its last frame or its end marker (a holder still sending after another process
      // ended its stream): the stream's audio is what came before.
      this.stats.skipped++;
      return;
    }
    if (frame.sequence < s.nextSequence) return; // redelivered
    if (frame.sequence > s.nextSequence) {
      await this.failStream(s, 'internal_error', `audio frames missing: expected frame ${s.nextSequence}, got ${frame.sequence}`);
      return;
    }
    s.nextSequence++;
    if (frame.aborted_reason) {
      // The ingest that aborted the stream has marked the upload and session failed with the
      // precise error (e.g. payload_too_large); only the stream's state and listeners are ours.
      await this.failStream(s, 'aborted', frame.aborted_reason, { recordFailure: false });
      return;
    }
    const samples = fromPcm16(frame.pcm16);
    if (samples.length > 0) {
      const step = await s.analyzer.push(samples);
      const events: SpeechEvent[] = [];
      for (const seg of step.segments) this.queueSegment(s, seg);
      if (s.source === 'live') {
        if (s.settings.realTime) {
          for (const second of step.seconds) events.push(this.metricsEvent(s, second));
          this.maybePartial(s);
        }
      } else {
        this.maybeUploadStatus(s, events);
      }
      await this.publishEvents(events);
    }
    if (frame.is_last) {
      s.ended = true;
      this.beginFinalize(s);
    }
  }

  /**
   * An end marker of a live stream this worker never opened: no frame of it came before the
   * marker (its first frame would have opened it), so the connection was lost before any audio.
   * A session still `recording` (its stream did not end normally: that sets `processing`)
   * fails, so a new stream may be claimed; any other status is left alone (a replay).
   */
  private async failLiveSessionWithoutAudio(frame: SpeechAudioFrame): Promise<void> {
    try {
      const session = await this.opts.sessions.get(frame.session_id);
      // The marker carries the lost stream's start (the sweep read it while that stream held the
      // session); a session started again since is another stream's.
      if (session?.status !== 'recording' || session.startedAt !== frame.audio_started_at) return;
      await this.opts.sessions.update(frame.session_id, { status: 'failed', endedAt: frame.audio_started_at }, { unlessStatus: ['completed', 'failed', 'processing'] });
      this.log.info({ session: frame.session_id, stream: frame.stream_id }, 'live session failed: its ingest was lost before any audio');
    } catch (err) {
      this.log.warn({ err, session: frame.session_id }, 'failing a live session without audio failed');
    }
  }

  /** Whether the frame's session is completed; a PostgreSQL that cannot answer says no (the stream is read, the writes stay guarded). */
  /** Why a stream whose first frame is read should not be analysed: its session completed, or a newer stream claimed. */
  private async staleStream(frame: SpeechAudioFrame): Promise<'session_completed' | 'superseded' | null> {
    try {
      if ((await this.opts.sessions.get(frame.session_id))?.status === 'completed') return 'session_completed';
      return (await this.opts.sessions.streamSuperseded(frame.session_id, frame.stream_id)) ? 'superseded' : null;
    } catch (err) {
      this.log.warn({ err, session: frame.session_id }, 'reading the session failed; reading its stream');
      return null;
    }
  }

  private async openStream(frame: SpeechAudioFrame, part: PartitionState, offset: bigint): Promise<StreamState> {
    const settings = this.parseSettings(frame.settings_json, frame.source);
    const vad = await this.takeVad();
    const s: StreamState = {
      id: frame.stream_id,
      sessionId: frame.session_id,
      orgId: frame.org_id,
      userId: frame.user_id,
      source: frame.source,
      audioStartedAt: frame.audio_started_at,
      expectedSamples: frame.expected_samples ?? null,
      settings,
      partitionKey: `${part.topic}:${part.partition}`,
      firstOffset: offset,
      nextSequence: 0,
      analyzer: new SpeechStreamAnalyzer(vad),
      vad,
      transcripts: [],
      recognisedSamples: 0,
      finalWordStarts: [],
      partial: null,
      lastPartialSample: 0,
      lastFinalIndex: -1,
      finals: [],
      fillersSoFar: 0,
      pausesSent: 0,
      startedWall: this.clock(),
      lastStatusWall: 0,
      lastProgressStored: -1,
      uploadWrites: Promise.resolve(),
      failed: false,
      completedBefore: false,
      ended: false,
    };
    this.streams.set(s.id, s);
    this.stats.streams++;
    const events: SpeechEvent[] = [];
    this.statusEvent(s, events, s.source === 'live' ? 'recording' : 'analysis', 0, null, 'processing');
    await this.publishEvents(events);
    if (s.source === 'upload') await this.storeUploadProgress(s, 'analysis', 0, null);
    return s;
  }

  // ---- recognition ----

  private queueSegment(s: StreamState, seg: ClosedSegment): void {
    this.stats.segments++;
    const p = this.recognition.final(seg, s.settings.model).then(async (t) => {
      s.recognisedSamples += seg.endSample - seg.startSample;
      if (s.failed) return t;
      s.lastFinalIndex = Math.max(s.lastFinalIndex, t.index);
      for (const w of t.words) s.finalWordStarts.push(w.startMs);
      s.finals.push(t);
      if (s.settings.fluency) s.fillersSoFar = liveFillerCount(s.finals);
      if (s.partial && s.partial.segmentIndex <= t.index) s.partial = null;
      const events: SpeechEvent[] =
        s.source === 'live' && !s.settings.realTime
          ? []
          : [
              this.tokenEvent(s, t.index, t.text, true, t.startMs, t.endMs, t.words.map((w) => ({ text: w.norm, startMs: w.startMs, endMs: w.endMs, timingMethod: w.method, confidence: roundOrNull(w.confidence, 4) })), t.confidence),
            ];
      if (s.source === 'upload') this.maybeUploadStatus(s, events);
      await this.publishEvents(events);
      // The transcript so far, stored while the stream runs. Best effort like the live events:
      // the final results carry every segment again.
      await publishSpeechResults([segmentResultRecord(resultHead(s), t, this.clock())], { bus: this.opts.bus, topics: this.topics, codec: this.opts.codec, retry: (err) => Promise.reject(err) }).catch((err) =>
        this.log.warn({ err, session: s.sessionId }, 'speech segment result not published'),
      );
      return t;
    });
    // A failed segment fails the stream at finalisation; do not leave the rejection unhandled.
    p.catch(() => undefined);
    s.transcripts.push(p);
  }

  private maybePartial(s: StreamState): void {
    const open = s.analyzer.openSegmentStart;
    if (open === null) return;
    // Each partial re-reads the utterance from its start, so a long one is re-read less often:
    // the cost of partials stays near 1/8 of the audio's length however long the utterance.
    const base = ((this.opts.partialIntervalMs ?? 1000) * RATE) / 1000;
    const interval = Math.max(base, (s.analyzer.sampleCount - open) / 8);
    if (s.analyzer.sampleCount - s.lastPartialSample < interval) return;
    const end = s.analyzer.sampleCount;
    s.lastPartialSample = end;
    const segmentIndex = s.analyzer.nextSegmentIndex;
    const samples = s.analyzer.audioRange(open, end);
    void this.recognition.partial(s.id, samples, s.settings.model).then(async (result) => {
      // Stale once the segment's final result is out (or the stream is gone).
      if (result === null || s.failed || segmentIndex <= s.lastFinalIndex || !this.streams.has(s.id)) return;
      const text = result.text;
      const fromMs = Math.round((open * 1000) / RATE);
      const toMs = Math.round((end * 1000) / RATE);
      s.partial = { segmentIndex, words: splitWords(text).length, fromMs, toMs };
      await this.publishEvents([this.tokenEvent(s, segmentIndex, text, false, fromMs, toMs, undefined, result.confidence)]);
    });
  }

  // ---- finalisation ----

  private beginFinalize(s: StreamState): void {
    const p = this.finalize(s)
      .catch(async (err) => {
        // Stopped while the bus refused the results: the stream is left uncommitted and read again.
        if (err instanceof StreamLeftUncommitted) return;
        this.log.error({ err, session: s.sessionId, stream: s.id }, 'speech stream failed');
        await this.failStream(s, 'internal_error', (err as Error).message).catch(() => undefined);
      })
      .finally(() => {
        this.finalizing.delete(p);
      });
    this.finalizing.add(p);
  }

  private async finalize(s: StreamState): Promise<void> {
    const step = s.analyzer.finish();
    for (const seg of step.segments) this.queueSegment(s, seg);
    const durationMs = Math.round((s.analyzer.sampleCount * 1000) / RATE);
    const now = this.clock();
    if (s.source === 'live') {
      const events: SpeechEvent[] = s.settings.realTime ? step.seconds.map((second) => this.metricsEvent(s, second)) : [];
      this.statusEvent(s, events, 'transcription', 0.9, null, 'processing');
      await this.publishEvents(events);
      await this.updateSession(s, { status: 'processing', endedAt: s.audioStartedAt + durationMs, audioDurationS: durationMs / 1000 });
    }
    const transcripts = await Promise.all(s.transcripts);
    if (s.failed) return;
    const seconds: SecondFeatures[] = [];
    for (let i = 0; i < s.analyzer.features.completeSeconds(true); i++) seconds.push(s.analyzer.features.features(i));
    const results = assembleSessionResults({
      durationMs,
      transcripts,
      speechSegments: s.analyzer.allSegments,
      seconds,
      voicedF0: s.analyzer.features.voicedF0.view(),
      frameDbfs: s.analyzer.features.frameDbfs.view(),
      pauses: this.pauseOptions(s),
      fluency: s.settings.fluency,
    });
    const scores = s.settings.scoring ? await this.score(results, s.analyzer.features.voicedF0.view()) : null;
    // Newer than every segment record the stream published (ReplacingMergeTree keeps the
    // latest computed_at: the final rows, with their word counts, must win).
    const computedAt = Math.max(now, this.clock());
    const records = finalResultRecords(resultHead(s), { transcripts, results, scores, prosody: s.settings.prosody, computedAt });
    // Progress rows still in flight land before the sink marks the upload completed.
    await s.uploadWrites;
    await this.publishResults(s, records);
    const done = this.clock();
    this.stats.finalized++;
    const timing = this.timing[s.source];
    timing.audioS += durationMs / 1000;
    timing.processingS += (done - s.startedWall) / 1000;
    if (durationMs > 0) timing.lastRealTimeFactor = (done - s.startedWall) / durationMs;
    this.completeStream(s);
  }

  private pauseOptions(s: StreamState): PauseOptions {
    return definedOnly({ minPauseMs: s.settings.minPauseMs, longPauseMs: s.settings.longPauseMs });
  }

  private async score(results: SessionResults, voicedF0: Float32Array): Promise<SpeechScores | null> {
    // Nothing said, nothing to score (the scores endpoint answers 404 for such a session).
    const input = scoreInput(results, voicedF0);
    return this.scorer && input ? this.scorer.score(scoreFeatures(input)) : null;
  }

  /**
   * Publishes a stream's final results (publish-results.ts), retrying while the bus refuses
   * them: a broker outage must not fail a stream whose analysis is done; the stream stays
   * uncommitted meanwhile. On stop() it gives up, and the stream is read again from its first
   * frame next time.
   */
  private async publishResults(s: StreamState, records: SpeechResult[]): Promise<void> {
    let backoff = 200;
    await publishSpeechResults(records, {
      bus: this.opts.bus,
      topics: this.topics,
      codec: this.opts.codec,
      retry: async (err) => {
        if (this.stopping) throw new StreamLeftUncommitted();
        this.log.warn({ err, session: s.sessionId, stream: s.id, retryInMs: backoff }, 'speech results not published; retrying');
        await this.delays.wait(backoff); // stop() ends it at once
        backoff = Math.min(backoff * 2, this.opts.maxPublishBackoffMs ?? 5000);
        if (this.stopping) throw new StreamLeftUncommitted();
      },
    });
  }

  private async failStream(s: StreamState, code: string, message: string, opts: { recordFailure?: boolean } = {}): Promise<void> {
    if (s.failed) return;
    s.failed = true;
    this.stats.failed++;
    this.log.warn({ session: s.sessionId, stream: s.id, code, message }, 'speech stream failed');
    const now = this.clock();
    if (opts.recordFailure !== false) await this.recordFailure(s, code, message, now);
    const events: SpeechEvent[] = [];
    this.statusEvent(s, events, 'failed', 0, null, 'failed', { error: { code, message } });
    await this.publishEvents(events);
    // Recognition already queued for the stream finishes and is discarded; the stream counts as
    // done for the committed offset once nothing of it is pending.
    void Promise.allSettled(s.transcripts).then(() => this.completeStream(s));
  }

  private async recordFailure(s: StreamState, code: string, message: string, now: number): Promise<void> {
    if (s.source === 'upload') {
      await this.chainUploadWrite(s, { status: 'failed', errorCode: code, errorMessage: message, completedAt: now, etaS: null }, 'upload update failed');
    }
    await this.updateSession(s, { status: 'failed' });
  }

  /** Writes the session unless it is completed already (then the stream is being read again); a failure is logged, never thrown. */
  private async updateSession(s: StreamState, patch: Parameters<SpeechWorkerOptions['sessions']['update']>[1]): Promise<void> {
    try {
      const session = await this.opts.sessions.update(s.sessionId, patch, guardFor(patch.status));
      if (session.status === 'completed') s.completedBefore = true;
    } catch (err) {
      this.log.warn({ err }, 'session update failed');
    }
  }

  private completeStream(s: StreamState): void {
    if (this.streams.get(s.id) !== s) return;
    this.dropStream(s);
    const part = this.partitions.get(s.partitionKey);
    if (part) void this.maybeCommit(part).catch((err) => this.log.warn({ err }, 'speech commit failed'));
  }

  /** Commits the partition up to the first frame of its oldest open stream (or all it has read). */
  private async maybeCommit(part: PartitionState): Promise<void> {
    let upTo = part.next;
    const key = `${part.topic}:${part.partition}`;
    for (const s of this.streams.values()) if (s.partitionKey === key && s.firstOffset < upTo) upTo = s.firstOffset;
    if (upTo <= part.committed || !this.subscription) return;
    part.committed = upTo;
    await this.subscription.commit(part.topic, part.partition, upTo.toString());
  }

  // ---- events ----

  private event(s: StreamState, type: SpeechEventType, id: string, payload: Record<string, unknown>): SpeechEvent {
    return {
      event_id: id,
      session_id: s.sessionId,
      org_id: s.orgId,
      user_id: s.userId,
      type,
      occurred_at: this.clock(),
      payload_json: JSON.stringify({ sessionId: s.sessionId, ...payload }),
    };
  }

  private tokenEvent(s: StreamState, segmentIndex: number, text: string, isFinal: boolean, startMs: number, endMs: number, words?: unknown[], confidence?: number | null): SpeechEvent {
    const id = `${s.sessionId}:asr:${segmentIndex}:${isFinal ? 'final' : endMs}`;
    return this.event(s, 'asr:token', id, { segmentIndex, text, isFinal, startMs, endMs, confidence: roundOrNull(confidence, 4), ...(words ? { words } : {}) });
  }

  private metricsEvent(s: StreamState, second: SecondFeatures): SpeechEvent {
    const atMs = (second.index + 1) * 1000;
    return this.event(s, 'metrics:update', `${s.sessionId}:metrics:${second.index}`, {
      second: second.index,
      atMs,
      volumeDbfs: round(second.volumeDbfs, 2),
      pitchHz: second.pitchMeanHz === null ? null : round(second.pitchMeanHz, 1),
      voicedRatio: round(second.voicedRatio, 3),
      speechRatio: round(second.speechRatio, 3),
      rollingWpm: round(this.liveRollingWpm(s, atMs), 1),
      wordCount: s.finalWordStarts.length + (s.partial?.words ?? 0),
      fillerCount: s.fillersSoFar,
      ...this.pausesOfUpdate(s),
    });
  }

  /** The pause count so far, and the pauses found since the previous metrics:update (each sent once). */
  private pausesOfUpdate(s: StreamState): { pauseCount: number; newPauses: Array<{ startMs: number; endMs: number; durationMs: number; kind: string }> } {
    const pauses = findPauses(s.analyzer.allSegments, this.pauseOptions(s));
    const fresh = pauses.slice(s.pausesSent);
    s.pausesSent = pauses.length;
    return {
      pauseCount: pauses.length,
      newPauses: fresh.map((p) => ({ startMs: Math.round(p.startMs), endMs: Math.round(p.endMs), durationMs: Math.round(p.endMs) - Math.round(p.startMs), kind: p.kind })),
    };
  }

  /** Words per minute over the last 30 s of audio: final words, plus the open segment's partial words spread over it. */
  private liveRollingWpm(s: StreamState, atMs: number): number {
    const windowMs = 30_000;
    const from = atMs - windowMs;
    let count = 0;
    for (let i = s.finalWordStarts.length - 1; i >= 0; i--) {
      const t = s.finalWordStarts[i];
      if (t >= from && t < atMs) count++;
    }
    if (s.partial && s.partial.toMs > s.partial.fromMs) {
      const overlap = Math.max(0, Math.min(atMs, s.partial.toMs) - Math.max(from, s.partial.fromMs));
      count += (s.partial.words * overlap) / (s.partial.toMs - s.partial.fromMs);
    }
    const span = Math.min(windowMs, atMs);
    return span > 0 ? (count * 60_000) / span : 0;
  }

  private statusEvent(
    s: StreamState,
    events: SpeechEvent[],
    stage: string,
    progress: number,
    etaS: number | null,
    status: string,
    extra: Record<string, unknown> = {},
  ): void {
    if (s.completedBefore) return; // its `done` was sent when the sink completed it
    events.push(speechStatusEvent({ sessionId: s.sessionId, orgId: s.orgId, userId: s.userId, streamId: s.id, source: s.source }, this.clock(), stage, progress, etaS, status, extra));
  }

  /** Upload progress: analysis counts half, recognition the other half (storing is quick). */
  private maybeUploadStatus(s: StreamState, events: SpeechEvent[]): void {
    const now = this.clock();
    if (now - s.lastStatusWall < (this.opts.statusIntervalMs ?? 1000)) return;
    s.lastStatusWall = now;
    const expected = s.expectedSamples && s.expectedSamples > 0 ? s.expectedSamples : null;
    const analysed = expected ? Math.min(1, s.analyzer.sampleCount / expected) : 0;
    const recognised = expected ? Math.min(1, s.recognisedSamples / expected) : 0;
    const progress = Math.min(0.99, 0.5 * analysed + 0.49 * recognised);
    const elapsed = (now - s.startedWall) / 1000;
    const etaS = progress > 0.02 ? (elapsed * (1 - progress)) / progress : null;
    const stage = analysed < 1 ? 'analysis' : 'transcription';
    this.statusEvent(s, events, stage, progress, etaS, 'processing');
    // The stored row follows every 10 %.
    if (Math.floor(progress * 10) > s.lastProgressStored) {
      s.lastProgressStored = Math.floor(progress * 10);
      void this.storeUploadProgress(s, stage, progress, etaS);
    }
  }

  private async storeUploadProgress(s: StreamState, stage: string, progress: number, etaS: number | null): Promise<void> {
    await this.chainUploadWrite(s, { status: 'processing', stage, progress, etaS }, 'upload progress update failed');
  }

  /** Writes the upload row after every earlier write of this stream; a failure is logged, never thrown. */
  private chainUploadWrite(s: StreamState, change: Parameters<SpeechWorkerOptions['uploads']['update']>[1], failure: string): Promise<void> {
    s.uploadWrites = s.uploadWrites.then(() =>
      this.opts.uploads.update(s.id, change, guardFor(change.status)).then(
        (upload) => {
          if (upload.status === 'completed') s.completedBefore = true;
        },
        (err) => this.log.warn({ err, upload: s.id }, failure),
      ),
    );
    return s.uploadWrites;
  }

  private async publishEvents(events: SpeechEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      const records = await Promise.all(
        events.map(async (e) => ({ key: e.session_id, value: await this.opts.codec.encode(Topics.speechEvents, e), timestamp: e.occurred_at })),
      );
      await this.opts.bus.publish(this.topics.speechEvents, records);
    } catch (err) {
      // Live events are best effort: the results are in ClickHouse either way.
      this.log.warn({ err }, 'speech events not published');
    }
  }
}

/** What every result record of the stream carries. */
function resultHead(s: StreamState): SpeechResultHead {
  return { session_id: s.sessionId, org_id: s.orgId, user_id: s.userId, stream_id: s.id, source: s.source, audio_started_at: s.audioStartedAt, model: s.settings.model };
}

/** finalize() gave up because the worker stops: not a failure of the stream. */
class StreamLeftUncommitted extends Error {
  constructor() {
    super('the worker stopped before the results were published; the stream will be read again');
  }
}

/** The object without its undefined fields (so option spreads keep their defaults). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function roundOrNull(v: number | null | undefined, digits: number): number | null {
  return v === null || v === undefined || !Number.isFinite(v) ? null : round(v, digits);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
