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

/**
 * Attune's scopes the coherence platform document's own scopes cover: its list has no device or
 * readings scope, so a client holding every scope it names could not register a device or sync
 * (403; a walkthrough). Registering and removing one's devices is managing one's profile
 * (write:user); sending readings into one's sessions is managing them (write:sessions). The
 * finer scopes still work alone.
 */
export const IMPLIED_BY: Partial<Record<Scope, readonly Scope[]>> = {
  [Scopes.writeDevices]: [Scopes.writeUser],
  [Scopes.writeReadings]: [Scopes.writeSessions],
};

/** Whether `p` holds `scope`, itself or through a scope that covers it (IMPLIED_BY). */
export function hasScope(p: Pick<Principal, 'scopes'>, scope: Scope): boolean {
  return p.scopes.has(scope) || (IMPLIED_BY[scope]?.some((s) => p.scopes.has(s)) ?? false);
}

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
