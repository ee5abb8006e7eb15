// Bus records as the workers and the API see them after decoding: every field present (an
// absent optional takes its Avro default), so readers never test for undefined. The Avro
// shapes themselves are in registry/schemas.ts, generated from avro/*.avsc.
import { hash } from 'node:crypto';
import type { CoherenceWindow, GroupParticipantWindow, GroupWindow, GroupWindowParticipant, HeartReading, MeshEvent, SessionEvent, SpeechEvent } from './registry/schemas.js';

export type HeartReadingRecord = Required<HeartReading>;
export type CoherenceWindowRecord = Required<CoherenceWindow>;
export type SessionEventRecord = Required<SessionEvent>;
export type SpeechEventRecord = Required<SpeechEvent>;
export type MeshEventRecord = Required<MeshEvent>;
export type GroupParticipantWindowRecord = Required<GroupParticipantWindow>;
export type GroupWindowRecord = Required<Omit<GroupWindow, 'participants'>> & { participants: Required<GroupWindowParticipant>[] };

/**
 * Stable id of a reading: the same device and time always give the same id, so replays and
 * re-uploads are recognised (the readings table deduplicates on it). Device ids are unique
 * per organisation only, so the organisation is part of it.
 */
export function readingId(orgId: string, deviceId: string, recordedAt: number): string {
  return hash('sha256', `${orgId}\u0000${deviceId}\u0000${recordedAt}`, 'hex').slice(0, 32);
}
