// End-of-session markers: how a session's end reaches the coherence worker in event order.
//
// The end call (POST /v1/sessions/:id/end) changes the session in PostgreSQL; the session
// changes relay publishes its new state to attune.session.changes.v1 (pipelines/session-changes.ts).
// The worker cannot act on that record directly: it is on another topic, so where it falls
// among the session's readings depends on timing (a worker catching up after a restart would
// see the end before readings that came before it, and close windows early).
//
// So SessionEndMarkers reads the session changes and, for each ended session, appends a marker
// to the READINGS topic with the key the session's readings have (the device id): it lands in
// the same partition, after every reading the gateway acknowledged before the end call. The
// worker closes the session's last windows when it reaches the marker, at the same place in
// every run and every replay. A marker written twice (a redelivered change, a later change of
// an ended session) finds nothing open and closes nothing. A session started without a device
// takes readings from any of its user's devices, so from any partition: its end marker is
// written to every partition of the readings topic, and the one holding its state acts on it;
// so is a change of its settings (a partition without its state keeps the settings under a key
// of its own in the checkpoint table, for when the session's readings come to it).
//
// A marker is a SessionEvent record (type `session_end_marker`) on the readings topic: no new
// schema, and consumers that do not know it dead-letter it as "not a HeartReading" rather than
// mistaking it for one. Attune's own readers (the coherence worker, the readings sink) skip it.
import { keysCoveringPartitions } from '../../bus/partitioner.js';
import type { Bus, OutgoingRecord, Subscription } from '../../bus/types.js';
import type { Logger } from '../../lib/log.js';
import { decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import type { SessionChange } from '../../schemas/registry/schemas.js';
import type { SessionEventRecord } from '../../schemas/records.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';
import { groupIdFor } from '../group-id.js';

export const END_MARKER_TYPE = 'session_end_marker';
/**
 * A change of a session's threshold settings (PATCH coherence_threshold / threshold_duration_s),
 * put into the readings partition like an end marker, so the worker applies it at the same
 * place in every run and replay: the windows it closes after the marker are judged with the new
 * settings, those before with the old. (Read from PostgreSQL once per session, the settings a
 * running worker used were those of when it first saw the session, and a restart switched
 * them, restoring the old streak under the new threshold: the stored events depended on when
 * the worker restarted; a walkthrough.)
 */
export const SETTINGS_MARKER_TYPE = 'session_settings_marker';
export const END_MARKERS_GROUP = 'attune-coherence-end-markers';

export interface EndMarker {
  sessionId: string;
  deviceId: string;
  endedAtMs: number;
}

/** Keys of a device-less session's end markers, one per partition of the readings topic (keysCoveringPartitions). */
const DEVICELESS_MARKER_KEY_PREFIX = '\u0000session-end:';
/** Keys of a device-less session's settings markers, one per partition. */
const DEVICELESS_SETTINGS_KEY_PREFIX = '\u0000session-settings:';

/**
 * The marker record for a session's end, keyed like its readings (by device), or by `key` (a
 * session without a device: one marker per partition).
 */
export async function endMarkerRecord(codec: Codec, m: EndMarker & { userId: string; orgId: string; key?: string }): Promise<OutgoingRecord> {
  const rec: SessionEventRecord = {
    event_id: `${m.sessionId}:${END_MARKER_TYPE}`,
    session_id: m.sessionId,
    user_id: m.userId,
    org_id: m.orgId,
    type: END_MARKER_TYPE,
    occurred_at: m.endedAtMs,
    payload_json: JSON.stringify({ device_id: m.deviceId }),
  };
  return { key: m.key ?? m.deviceId, value: await codec.encode(Topics.sessionEvents, rec), timestamp: m.endedAtMs };
}

export interface SettingsMarker {
  sessionId: string;
  coherenceThreshold: number;
  thresholdDurationS: number;
  /** The session's version the settings are from: a marker read again, or older than what the worker has, changes nothing. */
  version: number;
  /** The session has no device: the marker is in every partition of the readings topic (its readings may be in any). */
  everyPartition?: boolean;
}

/** The settings marker for a session's change, keyed like its readings (by device), or by `key` (a session without a device: one per partition). */
export async function settingsMarkerRecord(codec: Codec, m: SettingsMarker & { deviceId: string; userId: string; orgId: string; changedAtMs: number; key?: string }): Promise<OutgoingRecord> {
  const rec: SessionEventRecord = {
    event_id: `${m.sessionId}:${SETTINGS_MARKER_TYPE}:${m.version}`,
    session_id: m.sessionId,
    user_id: m.userId,
    org_id: m.orgId,
    type: SETTINGS_MARKER_TYPE,
    occurred_at: m.changedAtMs,
    payload_json: JSON.stringify({ device_id: m.deviceId, coherence_threshold: m.coherenceThreshold, threshold_duration_s: m.thresholdDurationS, version: m.version }),
  };
  return { key: m.key ?? m.deviceId, value: await codec.encode(Topics.sessionEvents, rec), timestamp: m.changedAtMs };
}

/** The settings marker a decoded readings-topic value is, or null when it is something else (or malformed). */
export function asSettingsMarker(v: unknown): SettingsMarker | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (r.type !== SETTINGS_MARKER_TYPE || typeof r.session_id !== 'string') return null;
  try {
    const p = JSON.parse(String(r.payload_json ?? '{}')) as Record<string, unknown>;
    const { coherence_threshold: t, threshold_duration_s: d, version, device_id: deviceId } = p;
    if (typeof t !== 'number' || !Number.isFinite(t) || typeof d !== 'number' || !(d > 0) || typeof version !== 'number' || !Number.isInteger(version)) return null;
    return { sessionId: r.session_id, coherenceThreshold: t, thresholdDurationS: d, version, ...(deviceId === '' ? { everyPartition: true } : {}) };
  } catch {
    return null;
  }
}

/** The end marker a decoded readings-topic value is, or null when it is something else. */
export function asEndMarker(v: unknown): EndMarker | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (r.type !== END_MARKER_TYPE || typeof r.session_id !== 'string' || typeof r.occurred_at !== 'number') return null;
  let deviceId = '';
  try {
    const p = JSON.parse(String(r.payload_json ?? '{}')) as { device_id?: unknown };
    if (typeof p.device_id === 'string') deviceId = p.device_id;
  } catch {
    /* a marker without a readable payload still names its session */
  }
  return { sessionId: r.session_id, deviceId, endedAtMs: r.occurred_at };
}

export interface SessionEndMarkersOptions {
  bus: Bus;
  codec: Codec;
  topics?: TopicNames;
  log: Logger;
  groupId?: string;
}

/** Session changes in, end markers on the readings topic out (see the top of this file). */
export class SessionEndMarkers {
  private subscription: Subscription | null = null;
  readonly groupId: string;
  readonly stats = { markers: 0, settingsMarkers: 0, endedWithoutDevice: 0, undecodable: 0 };

  constructor(private readonly opts: SessionEndMarkersOptions) {
    this.groupId = opts.groupId ?? groupIdFor(END_MARKERS_GROUP, opts.topics);
  }

  async start(): Promise<void> {
    const topics = this.opts.topics ?? Topics;
    this.subscription = await this.opts.bus.subscribe({
      groupId: this.groupId,
      topics: [topics.sessionChanges],
      fromBeginning: true,
      eachBatch: async (batch) => {
        const out: OutgoingRecord[] = [];
        // Read once per batch that ends or changes a session without a device (a topic's count only grows).
        let readingsPartitions: number | undefined;
        for (const rec of batch.records) {
          let change: SessionChange;
          try {
            const d = decodeRecord<SessionChange>(this.opts.codec, rec.value);
            change = d instanceof Promise ? await d : d;
          } catch {
            // The session dimension sink dead-letters it; here it simply ends nothing.
            this.stats.undecodable++;
            continue;
          }
          const ended = change.status === 'ended' && change.ended_at !== null && change.ended_at !== undefined;
          // A change after the session's creation (version 1) may be of its threshold settings:
          // the marker carries them, and the worker applies only a newer version. An ended
          // session's state carries them too when a change came before or after the end (its
          // version is then above 2: creation, end), whether the relay published the changes
          // apart or as one state: before the end marker, so its last windows are judged by them.
          if (change.version > (ended ? 2 : 1)) {
            const settings = {
              sessionId: change.session_id,
              deviceId: change.device_id,
              userId: change.user_id,
              orgId: change.org_id,
              coherenceThreshold: change.coherence_threshold,
              thresholdDurationS: change.threshold_duration_s,
              version: change.version,
              changedAtMs: change.updated_at,
            };
            if (change.device_id) out.push(await settingsMarkerRecord(this.opts.codec, settings));
            else {
              // Without a device, in every partition, as its end marker (below).
              readingsPartitions ??= await this.opts.bus.partitionCount(topics.heartReadings);
              for (const key of keysCoveringPartitions(readingsPartitions, DEVICELESS_SETTINGS_KEY_PREFIX)) out.push(await settingsMarkerRecord(this.opts.codec, { ...settings, key }));
            }
            this.stats.settingsMarkers++;
          }
          if (!ended) continue;
          const marker = { sessionId: change.session_id, deviceId: change.device_id, userId: change.user_id, orgId: change.org_id, endedAtMs: change.ended_at! };
          if (!change.device_id) {
            // Its readings may come from any of the user's devices, so from any partition: a
            // marker in every partition, after every reading acknowledged before the end call;
            // the partition that holds the session's state closes its last windows, the others
            // hold none and pass. (Without it such a session, as the platform document creates
            // them, closed only on the idle end, and in a partition where nothing else moved its
            // last windows were never stored: a walkthrough, 56 windows of 62.)
            readingsPartitions ??= await this.opts.bus.partitionCount(topics.heartReadings);
            for (const key of keysCoveringPartitions(readingsPartitions, DEVICELESS_MARKER_KEY_PREFIX)) out.push(await endMarkerRecord(this.opts.codec, { ...marker, key }));
            this.stats.endedWithoutDevice++;
            continue;
          }
          out.push(await endMarkerRecord(this.opts.codec, marker));
          this.stats.markers++;
        }
        if (out.length > 0) {
          await this.opts.bus.publish(topics.heartReadings, out);
        }
        const last = batch.records[batch.records.length - 1];
        if (last) {
          await this.subscription?.commit(batch.topic, batch.partition, (BigInt(last.offset) + 1n).toString()).catch((err) => {
            this.opts.log.warn({ err }, 'end markers: commit failed; the changes will be read again (a repeated marker closes nothing)');
          });
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}
