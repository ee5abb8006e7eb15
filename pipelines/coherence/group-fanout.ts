// Which coherence windows belong to a group (mesh) session, and the records the coherence
// worker publishes for them on the repartition topic (issue 11 item 2; pipelines/group/README.md,
// "The worker").
//
// The mapping comes from PostgreSQL (mesh_participants joined with mesh_sessions), where the
// join, leave and end routes write it, through one indexed query per user
// (MeshRepository.participationsOf). No ClickHouse: the coherence worker stays Kafka in, Kafka
// out. A window of session S (user U, device D) ending at E belongs to every participation of U
// with device D or no device, joined at or before E and not left before E, in a mesh session
// started at or before E and not ended before E. All of these are event-time comparisons against
// timestamps the API stored, so a replay decides the same.
//
// Caching: the answer for a user is kept and reused for windows ending at or before the time
// it was fetched (less skewMs for clocks of other processes): a join or leave committed after
// the fetch carries a joined_at / left_at at or after it, so it cannot change the answer for
// those windows. A window ending later than that refetches. The wall clock is used only to
// know how fresh a cached answer is, never to decide what a window holds; live, windows close
// about 15 s (the allowed lateness and the 5 s lookahead span) after their end, so a user costs
// about one query per 15-20 s
// while streaming, and a replay of old data one query per user.
import type { MeshParticipation } from '../../store/postgres/mesh-repo.js';
import type { GroupParticipantWindowRecord } from '../../schemas/records.js';
import type { WindowMetrics } from '../hrv/index.js';
import { computeWindowMetrics, createWindowPlan, type WindowPlan } from '../hrv/index.js';
import type { ClosedWindow } from './session-windows.js';

/**
 * Header of a participant window record that is its session's last (the session ended: its end
 * call's marker, or its idle end). The group worker reads it (GroupWindows.add's `ends`).
 */
export const PARTICIPANT_ENDED_HEADER = 'attune-participant-ended';

/**
 * Header of a participant window record (or end marker) closed by its session's end (the end
 * call's marker, or its idle end) rather than by its watermark: published at once, up to the
 * allowed lateness ahead of where the participant's windows would otherwise be. The group worker
 * takes it as data but not as event time (GroupWindows: it does not move the group's watermark),
 * so one participant's end does not close group windows that the others' windows, held by their
 * own lateness, have yet to reach.
 */
export const PARTICIPANT_FLUSHED_HEADER = 'attune-participant-flushed';

/**
 * Header of a marker record (not a window): the participant's input to the group ended, value
 * `left:<ms>` (they left the group at that time) or `ended:<ms>` (the group session ended then).
 * Published with the participant's first window past the end (window_end is that window's,
 * aligned), so it comes after every window of theirs the group gets; the group worker's
 * GroupWindows.endInput().
 */
export const PARTICIPATION_END_HEADER = 'attune-participation-end';

/** A participation whose end a window of the participant's session is the first past. */
export interface ParticipationEnd {
  participation: MeshParticipation;
  atMs: number;
  left: boolean;
}

export interface ParticipationSource {
  participationsOf(orgId: string, userId: string, sinceMs: number): Promise<MeshParticipation[]>;
}

export interface GroupFanoutOptions {
  source: ParticipationSource;
  /** Wall clock: only to tell how fresh a cached answer is. */
  clock?: () => number;
  /** Clock difference allowed between the API processes and this one, ms. Default 2,000. */
  skewMs?: number;
  /** How far before a window's end the query looks for participations, ms. Default 1 h. */
  lookbackMs?: number;
  /** Users kept in the cache before it is cleared. Default 100,000. */
  maxUsers?: number;
}

interface Entry {
  /** Answers windows ending in [sinceMs, validThroughMs]. */
  sinceMs: number;
  validThroughMs: number;
  list: MeshParticipation[];
}

/** A window of the user's session on `deviceId` ending at `windowEndMs` belongs to this participation. */
function belongsAt(p: MeshParticipation, deviceId: string, windowEndMs: number): boolean {
  return (
    (p.deviceId === null || p.deviceId === '' || p.deviceId === deviceId) &&
    p.joinedAt <= windowEndMs &&
    (p.leftAt === null || windowEndMs <= p.leftAt) &&
    p.startedAt <= windowEndMs &&
    (p.endedAt === null || windowEndMs <= p.endedAt)
  );
}

export class GroupFanout {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly clock: () => number;
  private plan: WindowPlan | null = null;
  readonly stats = { queries: 0, records: 0, provisionalRecords: 0 };

  constructor(private readonly opts: GroupFanoutOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /** The participations a window of this user's session (on `deviceId`) ending at `windowEndMs` belongs to. */
  async participationsAt(orgId: string, userId: string, deviceId: string, windowEndMs: number): Promise<MeshParticipation[]> {
    return (await this.lookup(orgId, userId, deviceId, windowEndMs)).current;
  }

  /**
   * The participations of this window and those whose end (leave, or the group session's end)
   * it is the first window past: end in [windowEndMs - 5 s, windowEndMs). One window per 5 s,
   * aligned, so a participant streaming through the end has exactly one; an end during a gap
   * in their data gets no marker (the group then closes on its lateness).
   */
  async lookup(orgId: string, userId: string, deviceId: string, windowEndMs: number): Promise<{ current: MeshParticipation[]; ends: ParticipationEnd[] }> {
    const key = `${orgId}\u0000${userId}`;
    let e = this.cache.get(key);
    if (!e || windowEndMs > e.validThroughMs || windowEndMs < e.sinceMs) e = await this.fetch(key, orgId, userId, windowEndMs);
    const ends: ParticipationEnd[] = [];
    for (const p of e.list) {
      if (!(p.deviceId === null || p.deviceId === '' || p.deviceId === deviceId)) continue;
      const left = p.leftAt !== null && (p.endedAt === null || p.leftAt < p.endedAt);
      const atMs = left ? p.leftAt! : p.endedAt;
      if (atMs === null || !(atMs < windowEndMs && atMs >= windowEndMs - 5000)) continue;
      if (p.joinedAt > atMs || p.startedAt > atMs) continue;
      ends.push({ participation: p, atMs, left });
    }
    const current = e.list.filter((p) => belongsAt(p, deviceId, windowEndMs));
    return { current, ends };
  }

  /**
   * lookup() for a provisional window (live display only): the cached answer whatever its age,
   * fetched only when there is none. A provisional window ends after any answer was fetched, so
   * lookup() would query PostgreSQL for every one (one query per user per 5 s); this way the
   * final windows' lookups (one per user per 15-20 s) keep it fresh, and a join or leave shows
   * in provisional windows once a final window's lookup has seen it.
   */
  async lookupForDisplay(orgId: string, userId: string, deviceId: string, windowEndMs: number): Promise<MeshParticipation[]> {
    const e = this.cache.get(`${orgId}\u0000${userId}`);
    if (!e || windowEndMs < e.sinceMs) return (await this.lookup(orgId, userId, deviceId, windowEndMs)).current;
    return e.list.filter((p) => belongsAt(p, deviceId, windowEndMs));
  }

  private fetch(key: string, orgId: string, userId: string, windowEndMs: number): Promise<Entry> {
    const running = this.inflight.get(key);
    if (running) return running.then((e) => (windowEndMs <= e.validThroughMs && windowEndMs >= e.sinceMs ? e : this.fetch(key, orgId, userId, windowEndMs)));
    const sinceMs = windowEndMs - (this.opts.lookbackMs ?? 3_600_000);
    const fetchedAt = this.clock();
    const p = this.opts.source.participationsOf(orgId, userId, sinceMs).then(
      (list) => {
        this.inflight.delete(key);
        const e: Entry = { sinceMs, validThroughMs: fetchedAt - (this.opts.skewMs ?? 2_000), list };
        if (this.cache.size >= (this.opts.maxUsers ?? 100_000)) this.cache.clear();
        this.cache.set(key, e);
        return e;
      },
      (err) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.stats.queries++;
    this.inflight.set(key, p);
    return p;
  }

  /**
   * The window's evenly sampled RR series: the 4 Hz spline tachogram computeWindowMetrics builds
   * for the window's spectrum (the same pure function and input as the metrics the window was
   * published with, run again here on the event loop for the windows of group participants
   * only, ~30 µs each, rather than shipping 256 samples back from the compute thread for
   * every window). Empty for an invalid window (no tachogram is computed for it).
   */
  seriesOf(w: ClosedWindow, m: WindowMetrics): number[] {
    if (!m.valid) return [];
    this.plan ??= createWindowPlan();
    const again = computeWindowMetrics(w.beatTimesMs, w.rrMs, w.count, w.windowStartMs, w.windowEndMs, this.plan);
    if (!again.valid) return [];
    return Array.from(this.plan.tachogram);
  }

  /** Marker records (PARTICIPATION_END_HEADER) for the participations whose end this window is the first past. */
  endMarkers(s: { sessionId: string; userId: string; orgId: string; deviceId: string }, w: ClosedWindow, ends: ParticipationEnd[]): Array<{ rec: GroupParticipantWindowRecord; header: string }> {
    return ends.map(({ participation: p, atMs, left }) => ({
      header: `${left ? 'left' : 'ended'}:${atMs}`,
      rec: {
        ...participationFields(s, w, p),
        valid: false,
        coherence: null,
        coverage: 0,
        artifact_ratio: 0,
        breathing_rate_bpm: null,
        last_beat_at: null,
        sample_rate_hz: 4,
        series: [],
      },
    }));
  }

  /** The repartition records of one window for the participations it belongs to. */
  records(
    s: { sessionId: string; userId: string; orgId: string; deviceId: string },
    w: ClosedWindow,
    m: WindowMetrics,
    participations: MeshParticipation[],
    provisional = false,
  ): GroupParticipantWindowRecord[] {
    if (participations.length === 0) return [];
    const series = this.seriesOf(w, m);
    // The window's own beats come after its context beats and before its lookahead.
    const own = w.count - w.lookaheadCount;
    const lastBeatAt = own > w.contextCount ? w.beatTimesMs[own - 1] : null;
    if (provisional) this.stats.provisionalRecords += participations.length;
    else this.stats.records += participations.length;
    return participations.map((p) => ({
      ...participationFields(s, w, p),
      valid: m.valid,
      coherence: m.coherence,
      coverage: m.coverage,
      artifact_ratio: m.artifactRatio,
      breathing_rate_bpm: m.breathingRateBpm,
      last_beat_at: lastBeatAt,
      sample_rate_hz: this.plan?.resampleHz ?? 4,
      series,
    }));
  }
}

/** The fields of a repartition record that name the participation and the window, shared by windows and end markers. */
function participationFields(s: { sessionId: string; userId: string; orgId: string; deviceId: string }, w: ClosedWindow, p: MeshParticipation) {
  return {
    mesh_id: p.meshId,
    org_id: s.orgId,
    participant_id: p.participantId,
    user_id: s.userId,
    session_id: s.sessionId,
    device_id: s.deviceId,
    window_start: w.windowStartMs,
    window_end: w.windowEndMs,
    pacer_rate_bpm: p.breathingRateBpm,
    coherence_threshold: p.coherenceThreshold,
    threshold_duration_s: p.thresholdDurationS,
    protocol: p.protocol,
  };
}
