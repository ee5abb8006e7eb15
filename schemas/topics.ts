// The topic catalogue: every record stream Attune reads or writes, and the Avro record on it
// (registry/schemas.ts maps each topic to its schema). The bus carries them; the names are
// part of the data contract (other consumers of the Kafka cluster read them too).

/** Topic names. Versioned so that an incompatible schema change gets a new topic. */
export const Topics = {
  heartReadings: 'attune.heart.readings.v1',
  coherenceWindows: 'attune.coherence.windows.v1',
  /**
   * Provisional windows for live display (CoherenceWindow.avsc, keyed by session id): a
   * window the session's beats have passed but that is not final yet (the allowed lateness
   * has not run out), read from the beats at hand. Only the live fan-out reads them; the
   * final window of the same end follows on coherenceWindows. Kept an hour.
   */
  coherenceWindowsProvisional: 'attune.coherence.windows.provisional.v1',
  sessionEvents: 'attune.session.events.v1',
  deadLetter: 'attune.deadletter.v1',
  /** Speech audio, mono 16 kHz PCM16 frames keyed by speech session (SpeechAudioFrame.avsc). */
  speechAudio: 'attune.speech.audio.v1',
  /**
   * Session states after each change, compacted by session id (SessionChange.avsc): what the
   * ClickHouse sessions dimension is built from.
   */
  sessionChanges: 'attune.session.changes.v1',
  /** Live speech events: asr:token, metrics:update, processing:status (SpeechEvent.avsc). */
  speechEvents: 'attune.speech.events.v1',
  /**
   * A speech stream's results, keyed by session id (SpeechResult.avsc): the speech worker
   * publishes them, the speech results sink writes the speech_* tables and completes the session.
   */
  speechResults: 'attune.speech.results.v1',
  /** Live group (mesh) session events, keyed by mesh session id (MeshEvent.avsc). */
  meshEvents: 'attune.mesh.events.v1',
  /**
   * The repartition topic of group sessions: each mesh participant's coherence windows with
   * their 4 Hz RR series, keyed by mesh session id, so one group's state lives on one
   * partition of the group worker (GroupParticipantWindow.avsc; pipelines/group/worker.ts).
   */
  groupParticipantWindows: 'attune.group.participant-windows.v1',
  /**
   * The participants' provisional windows (the coherenceWindowsProvisional ones of sessions in
   * a group), keyed by mesh session id like groupParticipantWindows: the group worker's
   * provisional group_coherence events are computed from them, for live display only. Kept an hour.
   */
  groupParticipantWindowsProvisional: 'attune.group.participant-windows.provisional.v1',
  /** Group windows (coherence, synchrony) of mesh sessions, keyed by mesh session id (GroupWindow.avsc). */
  groupWindows: 'attune.group.windows.v1',
} as const;

export type TopicNames = { readonly [K in keyof typeof Topics]: string };

/**
 * The topic names with a prefix, so several Attune deployments (or test runs) can share one
 * Kafka cluster. Schemas are looked up by the unprefixed name (`Topics`), the bus uses these.
 */
export function prefixedTopics(prefix: string): TopicNames {
  if (prefix !== '' && !/^[A-Za-z0-9._-]{1,100}$/.test(prefix)) throw new Error(`invalid topic prefix "${prefix}"`);
  return Object.fromEntries(Object.entries(Topics).map(([k, v]) => [k, `${prefix}${v}`])) as unknown as TopicNames;
}

/**
 * Attune's internal topics: state, not data (no Avro schema, no other consumer). Prefixed like
 * the others (internalTopic); created by their owner, not by openBus.
 *  - coherenceCheckpoints: the coherence worker's restart state, compacted by session id
 *    (pipelines/coherence/checkpoints.ts): per session the last window end it published and
 *    its threshold tracker's state there.
 */
export const InternalTopics = {
  coherenceCheckpoints: 'attune.coherence.checkpoints.v1',
  /** The group worker's restart state per mesh session (same format, pipelines/group/worker.ts). */
  groupCheckpoints: 'attune.group.checkpoints.v1',
} as const;

/** An internal topic's name with the prefix `topics` were made with. */
export function internalTopic(name: keyof typeof InternalTopics, topics: TopicNames = Topics): string {
  const plain = Topics.heartReadings;
  const prefix = topics.heartReadings.endsWith(plain) ? topics.heartReadings.slice(0, topics.heartReadings.length - plain.length) : '';
  return `${prefix}${InternalTopics[name]}`;
}
