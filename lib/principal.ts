// Who is asking, and the tenant rule every read applies: a user sees their own data, an
// organisation admin the organisation's. Below every layer that needs it (store/ filters by
// it, http/ authenticates it, api/ and ingest/ check scopes with it).
import type { Tier } from './tiers.js';

export const Scopes = {
  readSessions: 'read:sessions',
  writeSessions: 'write:sessions',
  readCoherence: 'read:coherence',
  writeDevices: 'write:devices',
  writeReadings: 'write:readings',
  /** Speech sessions and their results, and the live speech stream. */
  readSpeech: 'read:speech',
  /** Creating speech sessions and sending them audio (upload or live ingest). */
  writeSpeech: 'write:speech',
  /** Creating (and, as host, ending) group (mesh) sessions. */
  meshCreate: 'mesh:create',
  /** Seeing, joining and leaving group (mesh) sessions, and their live stream. */
  meshJoin: 'mesh:join',
  /** Reading one's own profile, statistics, devices and baseline (GET /v1/users/me). */
  readUser: 'read:user',
  /** Changing one's own display name and preferences (PATCH /v1/users/me). */
  writeUser: 'write:user',
  adminOrg: 'admin:org',
} as const;
export type Scope = (typeof Scopes)[keyof typeof Scopes];

export interface Principal {
  userId: string;
  orgId: string;
  scopes: ReadonlySet<string>;
  /** The token's rate-limit tier (its `tier` claim, lib/tiers.ts); absent: the configured default tier. */
  tier?: Tier;
}

/** Whether `p` may see data owned by (orgId, userId): its own, or its org's as an org admin. */
export function canAccess(p: Principal, owner: { orgId: string; userId: string }): boolean {
  if (p.orgId !== owner.orgId) return false;
  return p.userId === owner.userId || p.scopes.has(Scopes.adminOrg);
}
