// One simulated strap's upload loop, shared by the device simulator (driver.ts) and the group
// simulator (group.ts): the generator's beats for [startMs, endMs) as readings, batch by batch,
// through POST /v1/devices/{id}/sync, either on the wall clock (a batch once its last second
// has passed) or as fast as the server accepts.
import type { PostOutcome } from './http-client.js';
import { sleep } from './http-client.js';
import { readingsFor, type Battery, type SyncReading } from './readings.js';
import type { RrGenerator } from './rr-generator.js';

export interface UploadBeatsOptions {
  generator: RrGenerator;
  battery: Battery;
  deviceId: string;
  sessionId: string;
  startMs: number;
  /** Infinity: until `signal` aborts (realtime). */
  endMs: number;
  batchIntervalMs: number;
  realtime: boolean;
  /** Offset of this device's uploads within the batch interval (real straps are not synchronised). */
  staggerMs: number;
  maxReadingsPerRequest: number;
  signal?: AbortSignal;
  post: (path: string, body: unknown) => Promise<PostOutcome>;
  /** Called with every chunk the server accepted, in order. */
  onAccepted: (chunk: SyncReading[]) => void;
}

export type UploadEnd = { kind: 'done' } | { kind: 'stopped' } | { kind: 'failed'; outcome: PostOutcome };

export async function uploadBeats(o: UploadBeatsOptions): Promise<UploadEnd> {
  const syncPath = `/v1/devices/${encodeURIComponent(o.deviceId)}/sync`;
  let covered = o.startMs;
  while (covered < o.endMs) {
    if (o.signal?.aborted) return { kind: 'stopped' };
    let until = Math.min(o.endMs, covered + o.batchIntervalMs);
    if (o.realtime) {
      if (!(await sleep(until + o.staggerMs - Date.now(), o.signal))) return { kind: 'stopped' };
      // After slow uploads, catch up in one go (on the batch grid) rather than batch by batch.
      const behind = Date.now() - o.staggerMs - covered;
      until = Math.min(o.endMs, Math.max(until, covered + Math.floor(behind / o.batchIntervalMs) * o.batchIntervalMs));
    }
    const readings = readingsFor(o.generator.beatsUntil(until), covered, until, o.battery);
    covered = until;
    for (let i = 0; i < readings.length; i += o.maxReadingsPerRequest) {
      const chunk: SyncReading[] = readings.slice(i, i + o.maxReadingsPerRequest);
      const sent = await o.post(syncPath, { session_id: o.sessionId, readings: chunk });
      if (sent.kind === 'aborted') return { kind: 'stopped' };
      if (sent.kind !== 'ok') return { kind: 'failed', outcome: sent };
      o.onAccepted(chunk);
    }
  }
  return { kind: 'done' };
}
