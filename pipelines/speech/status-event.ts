// The processing:status event of a speech stream (the speech-coaching document's live status):
// built by the speech worker while it processes, and by the speech results sink for `done`,
// which it sends only once the results are stored. One function, so both give the same ids
// and payloads.
import type { SpeechEvent } from '../../schemas/registry/schemas.js';

export interface StatusEventStream {
  sessionId: string;
  orgId: string;
  userId: string;
  /** The upload id or the live stream's id. */
  streamId: string;
  source: 'upload' | 'live';
}

export function speechStatusEvent(
  s: StatusEventStream,
  occurredAt: number,
  stage: string,
  progress: number,
  etaS: number | null,
  status: string,
  extra: Record<string, unknown> = {},
): SpeechEvent {
  const pct = Math.round(progress * 100);
  return {
    // Deterministic: a stream processed again after a restart sends the same ids.
    event_id: `${s.sessionId}:status:${s.streamId}:${stage}:${pct}`,
    session_id: s.sessionId,
    org_id: s.orgId,
    user_id: s.userId,
    type: 'processing:status',
    occurred_at: occurredAt,
    payload_json: JSON.stringify({
      sessionId: s.sessionId,
      ...(s.source === 'upload' ? { uploadId: s.streamId } : { streamId: s.streamId }),
      status,
      stage,
      progress: Math.round(progress * 1000) / 1000,
      etaS: etaS === null ? null : Math.round(etaS * 10) / 10,
      ...extra,
    }),
  };
}
