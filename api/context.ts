// What the HTTP/WebSocket routes need from the rest of Attune, passed in explicitly so each
// role (ingest, api, all) wires only what it runs and tests can hand in their own parts.
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../lib/log.js';
import type { Bus, TopicNames } from '../bus/types.js';
import type { Authenticator } from './auth.js';
import type { DevicesRepository, SessionsRepository } from './sessions-repo.js';
import type { LiveHub } from './live.js';
import type { SpeechSessionsRepository, SpeechUploadsRepository } from './speech-sessions-repo.js';
import type { SpeechLiveHub } from './speech-live.js';

/** Encodes and decodes bus record values (Avro, Confluent wire format). */
export interface RecordCodec {
  encode(topic: string, record: unknown): Buffer | Promise<Buffer>;
  decode<T = unknown>(buf: Buffer): T | Promise<T>;
  /** Decodes without waiting once the writer schema is known; throws otherwise. */
  decodeSync?<T = unknown>(buf: Buffer): T;
}

/**
 * Decodes a record, synchronously when the codec already knows the writer schema (the hot
 * path: no promise per record), else through the registry.
 */
export function decodeRecord<T>(codec: RecordCodec, buf: Buffer): T | Promise<T> {
  if (codec.decodeSync) {
    try {
      return codec.decodeSync<T>(buf);
    } catch {
      // Unknown schema id (fetched by decode) or a bad record (decode reports it).
    }
  }
  return codec.decode<T>(buf);
}

export interface HealthCheck {
  name: string;
  check(): Promise<boolean>;
}

export interface AppContext {
  log: Logger;
  auth: Authenticator;
  clickhouse: ClickHouseClient;
  database: string;
  bus: Bus;
  /** Topic names on the bus (possibly prefixed). */
  topics: TopicNames;
  codec: RecordCodec;
  sessions: SessionsRepository;
  devices: DevicesRepository;
  /** Present where the API role runs (live fan-out). */
  live?: LiveHub;
  /** Speech sessions; the speech routes are registered only where this is present. */
  speechSessions?: SpeechSessionsRepository;
  /** Speech uploads and their processing progress. */
  speechUploads?: SpeechUploadsRepository;
  /** Live speech events fan-out; present where the API role runs the speech stream. */
  speechLive?: SpeechLiveHub;
  /** Speech file upload limits (config.speechUpload); 200 MB and 4 h when absent. */
  speechUploadLimits?: { maxBytes: number; maxDurationS: number };
  health: HealthCheck[];
  clock: () => number;
  /** Which roles this server carries; decides which routes it registers. */
  roles: { ingest: boolean; api: boolean; worker: boolean };
  liveOptions: { maxBufferedMessages: number; heartbeatMs: number };
  /** Per-device ingest limit; readingsPerS 0 turns it off. */
  ingestLimit: { readingsPerS: number; burst: number };
}
