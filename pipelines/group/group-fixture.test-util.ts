// A synthetic group's participant windows with known answers, for the group worker's tests:
// 5 participants breathing in phase at 0.1 Hz (the pacer), windows 5 s apart. p5 joins late
// (its first 8 windows are partial, so invalid); p4 sends nothing for windows 15–20 (a 30 s
// drop-out) and comes back; every participant's coherence is 0.8 in windows 10–25 and 0.4
// otherwise, so group coherence stays at or above a 0.7 threshold from window 10 on.
import { Mulberry32, deriveSeed } from '../../lib/prng.js';
import type { GroupParticipantWindowRecord } from '../../schemas/records.js';
import { participantSeries, syntheticGroup } from './synthetic-group.js';
import { participantWindowOf } from './worker.js';

export const FIXTURE_T0 = Date.UTC(2026, 10, 2, 10, 0, 0);
export const FIXTURE_WINDOWS = 30;
export const FIXTURE_PARTICIPANTS = ['p1', 'p2', 'p3', 'p4', 'p5'];
export const FIXTURE_THRESHOLD = { threshold: 0.7, durationS: 20 };

export const fixtureEnd = (k: number) => FIXTURE_T0 + 5000 * k;
export const fixtureCoherence = (k: number) => (k >= 10 && k <= 25 ? 0.8 : 0.4);
export const fixtureHas = (j: number, k: number) => !(j === 3 && k >= 15 && k <= 20);
export const fixtureValid = (j: number, k: number) => !(j === 4 && k < 8);

/** windows[j][k]: participant j's window k (absent where fixtureHas is false). */
export function fixtureWindows(meshId: string, orgId: string, seed = 5): (GroupParticipantWindowRecord | null)[][] {
  const { participants } = syntheticGroup({ n: FIXTURE_PARTICIPANTS.length, lockedShare: 1, seed, lockedPhaseSdRad: 0.2 });
  return participants.map((part, j) => {
    const out: (GroupParticipantWindowRecord | null)[] = [];
    for (let k = 0; k < FIXTURE_WINDOWS; k++) {
      if (!fixtureHas(j, k)) {
        out.push(null);
        continue;
      }
      const end = fixtureEnd(k);
      const valid = fixtureValid(j, k);
      const series = valid ? Array.from(participantSeries(part, end - 64_000, 64_000, new Mulberry32(deriveSeed(seed, 1000 * j + k)))) : [];
      out.push({
        mesh_id: meshId,
        org_id: orgId,
        participant_id: FIXTURE_PARTICIPANTS[j],
        user_id: `user-${j + 1}`,
        session_id: `session-${j + 1}`,
        device_id: `device-${j + 1}`,
        window_start: end - 64_000,
        window_end: end,
        valid,
        coherence: valid ? fixtureCoherence(k) : null,
        coverage: valid ? 0.97 - 0.01 * j : 0.4,
        artifact_ratio: valid ? 0.01 * j : 0,
        breathing_rate_bpm: valid ? part.breathingHz * 60 : null,
        last_beat_at: end - 400,
        sample_rate_hz: 4,
        series,
        pacer_rate_bpm: 6,
        coherence_threshold: FIXTURE_THRESHOLD.threshold,
        threshold_duration_s: FIXTURE_THRESHOLD.durationS,
        protocol: 'coherence_building',
      });
    }
    return out;
  });
}

/** Window-major order: every participant's window k (in participant order), then k + 1. */
export function windowMajor<T>(w: (T | null)[][]): T[] {
  const out: T[] = [];
  for (let k = 0; k < FIXTURE_WINDOWS; k++) for (const row of w) if (row[k]) out.push(row[k]!);
  return out;
}

/**
 * Another arrival order with each participant's windows still in order (as the repartition
 * topic keeps them): rounds of 2 windows per participant, participants shuffled each round, so
 * no window comes after another participant's ending 10 s (the group lateness) or more later.
 */
export function shuffledRounds<T>(w: (T | null)[][], seed: number): T[] {
  const rng = new Mulberry32(seed);
  const out: T[] = [];
  for (let k0 = 0; k0 < FIXTURE_WINDOWS; k0 += 2) {
    const order = w.map((_, j) => j);
    for (let i = order.length - 1; i > 0; i--) {
      const r = Math.floor(rng.next() * (i + 1));
      [order[i], order[r]] = [order[r], order[i]];
    }
    for (const j of order) for (let k = k0; k < Math.min(k0 + 2, FIXTURE_WINDOWS); k++) if (w[j][k]) out.push(w[j][k]!);
  }
  return out;
}

/**
 * Window-major order up to window `from`; from there participant j's window k reaches the
 * worker after everyone else's window k + rounds (a phone uploading in batches, an upload
 * paused): the group has had a window of theirs before the delay starts.
 */
export function delayedFrom<T>(w: (T | null)[][], j: number, from: number, rounds: number): T[] {
  const out: T[] = [];
  for (let k = 0; k < FIXTURE_WINDOWS + rounds; k++) {
    w.forEach((row, i) => {
      if (i !== j) {
        if (row[k]) out.push(row[k]!);
        return;
      }
      if (k < from && row[k]) out.push(row[k]!);
      const d = k - rounds;
      if (d >= from && d < FIXTURE_WINDOWS && row[d]) out.push(row[d]!);
    });
  }
  return out;
}

/**
 * Window-major order, but the windows [from, to) (the backlog after a server outage) reach the
 * worker participant by participant, in `order`: one participant's whole backlog first, then the
 * next one's; then window-major again.
 */
export function outage<T>(w: (T | null)[][], from: number, to: number, order: number[]): T[] {
  const out: T[] = [];
  for (let k = 0; k < from; k++) for (const row of w) if (row[k]) out.push(row[k]!);
  for (const j of order) for (let k = from; k < to; k++) if (w[j][k]) out.push(w[j][k]!);
  for (let k = to; k < FIXTURE_WINDOWS; k++) for (const row of w) if (row[k]) out.push(row[k]!);
  return out;
}

/** A record as GroupWindows / ProvisionalGroupWindows take it, without its bus position (the worker's own mapping). */
export const participantInput = participantWindowOf;
