// What the HTTP/WebSocket routes need from the rest of Attune, passed in explicitly so each
// role (ingest, api, all) wires only what it runs and tests can hand in their own parts.
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../lib/log.js';
import type { Bus } from '../bus/types.js';
import type { TopicNames } from '../schemas/topics.js';
import type { Codec } from '../schemas/registry/codec.js';
import type { Authenticator } from './auth.js';
import type { DevicesRepository, SessionsRepository } from '../store/postgres/sessions-repo.js';
import type { LiveHub } from './live-hub.js';
import type { HttpTimeouts } from './timeouts.js';
import type { RateLimitConfig } from './rate-limit.js';
import type { SpeechSessionsRepository, SpeechUploadsRepository } from '../store/postgres/speech-sessions-repo.js';
import type { UsersRepository } from '../store/postgres/users-repo.js';
import type { MeshRepository } from '../store/postgres/mesh-repo.js';
import type { OrgAnalyticsRepository } from '../store/postgres/org-analytics-repo.js';
import type { ApiKeysRepository } from '../store/postgres/api-keys-repo.js';
import type { WebhooksRepository } from '../store/postgres/webhooks-repo.js';
import type { ApiKeyAuthenticator } from './api-key-auth.js';
import type { NetGuardOptions } from '../lib/net-guard.js';

export interface HealthCheck {
  name: string;
  check(): Promise<boolean>;
}

/** What POST /v1/speech/stt needs from the recogniser (pipelines/speech/stt.ts has this shape). */
export interface SpeechToTextService {
  /** Recognises mono 16 kHz samples: text, word times in seconds, confidence (null when the recogniser reports none). */
  transcribe(samples16k: Float32Array): Promise<{
    text: string;
    language: string;
    confidence: number | null;
    duration_seconds: number;
    words: Array<{ word: string; start: number; end: number; timing_method: string }>;
    model: string;
    segments: Array<{ start: number; end: number; text: string }>;
  }>;
  close(): Promise<void>;
}

export interface AppContext {
  log: Logger;
  auth: Authenticator;
  /** ClickHouse (facts); absent in the ingest-only role. */
  clickhouse?: ClickHouseClient;
  database: string;
  bus: Bus;
  /** Topic names on the bus (possibly prefixed). */
  topics: TopicNames;
  /** Avro codec of bus record values (Confluent wire format). */
  codec: Codec;
  sessions: SessionsRepository;
  devices: DevicesRepository;
  /** Users, document-form devices, session practice fields (api/users.ts); the routes that need it are left out when absent. */
  users?: UsersRepository;
  /** Present where the API role runs (live fan-out). */
  live?: LiveHub<unknown>;
  /** Speech sessions; the speech routes are registered only where this is present. */
  speechSessions?: SpeechSessionsRepository;
  /** Speech uploads and their processing progress. */
  speechUploads?: SpeechUploadsRepository;
  /** Live speech events fan-out; present where the API role runs the speech stream. */
  speechLive?: LiveHub<unknown>;
  /** Synchronous speech-to-text (POST /v1/speech/stt, ingest/audio/stt.ts): pipelines/speech/stt.ts, wired by cli/roles.ts; the route is left out when absent. */
  speechToText?: SpeechToTextService;
  /**
   * Leases of the audio streams this process holds (ingest/audio/stream-leases.ts): a claim is
   * renewed while held; `onLost` runs if another process ended it. Absent: claims get the
   * default lease and are not renewed (tests that need no renewal).
   */
  audioLeases?: { readonly leaseMs: number; hold(streamId: string, onLost: () => void): void; drop(streamId: string): void };
  /** Speech file upload limits (config.speechUpload); 200 MB and 4 h when absent. */
  speechUploadLimits?: { maxBytes: number; maxDurationS: number };
  /** Group (mesh) sessions; the mesh routes are registered only where this is present (api/mesh-sessions.ts). */
  mesh?: MeshRepository;
  /** PostgreSQL's part of organisation analytics; the analytics route is registered only where this is present (api/org-analytics.ts). */
  orgAnalytics?: OrgAnalyticsRepository;
  /** Largest stored JSON field (session metadata, speech-session settings, upload metadata), bytes (config.maxStoredJsonBytes); 16 KB when absent. */
  maxStoredJsonBytes?: number;
  /** Connection, request and body timeouts (config.httpTimeouts); http/timeouts.ts defaults when absent. */
  httpTimeouts?: HttpTimeouts;
  /** Origins whose pages may read answers (config.corsOrigins, http/response-headers.ts); none when absent. */
  corsOrigins?: string[];
  /** Where the README is published (config.errorDocsUrl, ATTUNE_ERROR_DOCS_URL): error bodies carry documentation_url at its error catalogue; none when absent. */
  errorDocsUrl?: string | null;
  health: HealthCheck[];
  clock: () => number;
  /** Which roles this server carries; decides which routes it registers. */
  roles: { ingest: boolean; api: boolean; worker: boolean };
  liveOptions: { maxBufferedMessages: number; heartbeatMs: number };
  /** Request rate limits and quotas (config.rateLimit, http/rate-limit.ts); none when absent. */
  rateLimit?: RateLimitConfig;
  /** API keys (/v1/api-keys) and the client_credentials token route; left out when absent (api/api-keys.ts). */
  apiKeys?: { repo: ApiKeysRepository; auth: ApiKeyAuthenticator };
  /** Webhooks (/v1/webhooks) and the SSRF guard their URLs pass; left out when absent (api/webhooks.ts). */
  webhooks?: { repo: WebhooksRepository; guard: NetGuardOptions };
  /**
   * Per-device ingest limit; readingsPerS 0 turns it off. readingsPerRecord: readings per
   * bus record (ATTUNE_READINGS_PER_RECORD; default 1,000, 1 = one HeartReading record each).
   */
  ingestLimit: { readingsPerS: number; burst: number; readingsPerRecord?: number };
}

/** ClickHouse of a context that serves facts (the API and worker roles open it; ingest does not). */
export function clickhouseOf(ctx: Pick<AppContext, 'clickhouse'>): ClickHouseClient {
  if (!ctx.clickhouse) throw new Error('this role has no ClickHouse: facts are served where the API role runs');
  return ctx.clickhouse;
}
