// Leases of audio stream claims (schemas/postgres/0008_audio_stream_leases.sql). A claim lasts
// ATTUNE_AUDIO_LEASE_S (60 s) unless renewed. Every ingest process runs one AudioStreamLeases:
//  - it renews, in one statement, the claims of the streams it holds (live sockets, uploads)
//    every third of the lease; a held stream the renewal no longer finds open was ended by
//    another process (this one stopped renewing for a whole lease: PostgreSQL unreachable,
//    the event loop stalled) and its holder is told, so it stops sending audio nobody reads;
//  - it sweeps claims whose lease has passed (their process died): for each it publishes the
//    stream's end marker (schemas/audio-frames.ts STREAM_LOST_SEQUENCE) to the audio topic,
//    then, in the same transaction, fails an upload cut short (upload and session,
//    `ingest_lost`, never over a completed or failed one) and releases the claim as `lost` (a
//    marker the bus refused changes nothing and the next sweep tries again; a marker
//    published twice is harmless). A live stream is finalised by the speech worker with the
//    audio that arrived, as when a client goes away.
//  - after a round that failed (PostgreSQL unreachable: nobody could renew), it does not sweep
//    for one lease of rounds that work, so the processes still alive renew their claims
//    before anyone takes them for dead.
// Renewal and sweeps run on the wall clock: they decide only when a dead process's stream is
// ended, not what the results are (those follow from the frames before the marker). Leases
// are written and compared on each process's clock: hosts must agree within a fraction of the
// lease (NTP does; 60 s by default).
import type { Bus } from '../../bus/types.js';
import type { TopicNames } from '../../schemas/topics.js';
import type { Codec } from '../../schemas/registry/codec.js';
import type { SpeechAudioFrame } from '../../schemas/registry/schemas.js';
import { Topics } from '../../schemas/topics.js';
import { STREAM_LOST_SEQUENCE } from '../../schemas/audio-frames.js';
import type { Logger } from '../../lib/log.js';
import type { LostAudioStream, SpeechSessionsRepository } from '../../store/postgres/speech-sessions-repo.js';

export interface AudioStreamLeasesOptions {
  sessions: SpeechSessionsRepository;
  bus: Bus;
  topics: TopicNames;
  codec: Codec;
  log: Logger;
  /** How long a claim lasts unless renewed (ATTUNE_AUDIO_LEASE_S). */
  leaseMs: number;
  clock?: () => number;
}

/** Why an upload whose ingest process was lost failed (the catalogue's reason; the upload's error code is `unavailable`). */
export const INGEST_LOST = 'ingest_lost';

export class AudioStreamLeases {
  private readonly held = new Map<string, () => void>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** No sweep before this (clock ms): set a lease ahead by a failed round. */
  private sweepFrom = -Infinity;
  readonly stats = { renewals: 0, lostHeld: 0, swept: 0, failures: 0 };

  constructor(private readonly opts: AudioStreamLeasesOptions) {}

  /** The lease a claim should be made with (claimAudioStream's leaseMs). */
  get leaseMs(): number {
    return this.opts.leaseMs;
  }

  /** Starts renewing `streamId`'s claim; `onLost` runs once if another process ended it. */
  hold(streamId: string, onLost: () => void): void {
    this.held.set(streamId, onLost);
  }

  /** Stops renewing (the stream was released, or failed). */
  drop(streamId: string): void {
    this.held.delete(streamId);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.opts.leaseMs / 3)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One renewal and one sweep; a round still running is not started twice. */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    try {
      await this.renew();
      if (this.now() >= this.sweepFrom) await this.sweep();
    } catch (err) {
      this.stats.failures++;
      this.sweepFrom = this.now() + this.opts.leaseMs;
      this.opts.log.warn({ err }, 'audio stream leases: renewal or sweep failed; next round in a third of the lease, no sweep for a lease');
    }
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
  }

  private async renew(): Promise<void> {
    const ids = [...this.held.keys()];
    if (ids.length === 0) return;
    const open = await this.opts.sessions.renewAudioLeases(ids, this.opts.leaseMs);
    this.stats.renewals++;
    for (const id of ids) {
      if (open.has(id)) continue;
      const onLost = this.held.get(id);
      // Released meanwhile by its holder (drop() comes after the release): not lost.
      if (!onLost) continue;
      this.held.delete(id);
      this.stats.lostHeld++;
      this.opts.log.warn({ stream_id: id }, 'audio stream ended by another process (its lease passed before it was renewed)');
      onLost();
    }
  }

  private async sweep(): Promise<void> {
    const lost = await this.opts.sessions.sweepLostAudioStreams((streams) => this.publishMarkers(streams), {
      code: 'unavailable',
      message: `${INGEST_LOST}: the process receiving the upload stopped before its end; upload the file again`,
    });
    this.stats.swept += lost.length;
    for (const l of lost) {
      this.opts.log.warn({ stream_id: l.streamId, session_id: l.sessionId, source: l.source, holder: l.holder }, 'audio stream of a lost ingest process ended');
    }
  }

  private async publishMarkers(lost: LostAudioStream[]): Promise<void> {
    const sentAt = this.now();
    const records = await Promise.all(
      lost.map(async (l) => {
        const marker: SpeechAudioFrame = {
          session_id: l.sessionId,
          org_id: l.orgId,
          user_id: l.userId,
          stream_id: l.streamId,
          source: l.source,
          sequence: STREAM_LOST_SEQUENCE,
          sample_offset: 0,
          pcm16: Buffer.alloc(0),
          is_last: true,
          aborted_reason: l.source === 'upload' ? `${INGEST_LOST}: the process receiving the upload stopped before its end` : null,
          audio_started_at: l.startedAt,
          source_sample_rate_hz: l.sampleRateHz,
          expected_samples: null,
          sent_at: sentAt,
          settings_json: JSON.stringify(l.settings),
        };
        const value = this.opts.codec.encode(Topics.speechAudio, marker);
        return { key: l.sessionId, value: value instanceof Promise ? await value : value };
      }),
    );
    await this.opts.bus.publish(this.opts.topics.speechAudio, records);
  }
}
