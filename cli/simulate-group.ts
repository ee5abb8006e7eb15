// The simulated group (issue 11 item 5) as `attune simulate --group N` and `attune all
// --simulate` (npm start) run it: participants' tokens minted with the server's own key, in
// real time, with two minutes of history first so the group has data (and its first 64 s
// windows) at once.
import type { Logger } from '../lib/log.js';
import type { Authenticator } from '../http/auth.js';
import { GROUP_SIMULATOR_SCOPES, runGroupSimulator, type GroupSimulatorStats } from '../simulator/index.js';

export interface GroupSimulatorFlags {
  participants: number;
  lockedShare: number;
  breathingRateBpm: number;
  seed?: number;
  /** Simulated event time, ms: sent as fast as accepted, then the group is ended. None: real time until stopped. */
  durationMs?: number;
}

/** Tokens for the simulated participants, re-minted a while before they expire rather than per request. */
export function participantTokens(auth: Authenticator): (userId: string, orgId: string) => string {
  const tokens = new Map<string, { token: string; until: number }>();
  return (userId, orgId) => {
    const now = Date.now();
    const hit = tokens.get(userId);
    if (hit && hit.until > now) return hit.token;
    // A batch a second per participant: the enterprise tier keeps them clear of the request limits.
    const token = auth.sign({ userId, orgId, scopes: [...GROUP_SIMULATOR_SCOPES], ttlSeconds: 3600, tier: 'enterprise' });
    tokens.set(userId, { token, until: now + 3000_000 });
    return token;
  };
}

export function startGroupSimulator(baseUrl: string, auth: Authenticator, log: Logger, signal: AbortSignal, flags: GroupSimulatorFlags): Promise<GroupSimulatorStats> {
  const common = {
    baseUrl,
    participants: flags.participants,
    lockedShare: flags.lockedShare,
    breathingRateBpm: flags.breathingRateBpm,
    tokenFor: participantTokens(auth),
    signal,
    log: log.child({ role: 'simulator' }),
  };
  if (flags.durationMs !== undefined) return runGroupSimulator({ ...common, durationMs: flags.durationMs, seed: flags.seed ?? 1 });
  return runGroupSimulator({
    ...common,
    realtime: true,
    // Two minutes of history, as the device simulator sends: the first group windows need 64 s of beats.
    startTimeMs: Date.now() - 120_000,
    seed: flags.seed ?? Date.now() % 1_000_000,
  });
}
