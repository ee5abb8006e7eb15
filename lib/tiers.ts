// Rate-limit tiers, as in the coherence platform's API document (its "Rate Limits" table):
// requests a minute, the burst (here: requests in any one second), and WebSocket connections
// per user. Tiers exist only as rate-limit classes (no billing). Devices per user are not in
// that table: Attune's own choice, same shape (free 2, plus 5, pro 20, enterprise unlimited).
// A token names its tier in the `tier` claim (http/auth.ts); tokens without one (or with a
// name not listed here) get ATTUNE_DEFAULT_TIER.

export const TIER_NAMES = ['free', 'plus', 'pro', 'enterprise'] as const;
export type Tier = (typeof TIER_NAMES)[number];

export interface TierLimits {
  /** Requests a minute (a fixed 60 s window per key). */
  perMinute: number;
  /** Requests in any one second (a fixed 1 s window per key). */
  burst: number;
  /** Open WebSockets per user, all kinds together; Infinity = unlimited. */
  sockets: number;
  /** Registered devices per user; Infinity = unlimited. */
  devices: number;
}

export const Tiers: Record<Tier, TierLimits> = {
  free: { perMinute: 60, burst: 10, sockets: 1, devices: 2 },
  plus: { perMinute: 300, burst: 50, sockets: 2, devices: 5 },
  pro: { perMinute: 1_000, burst: 100, sockets: 5, devices: 20 },
  enterprise: { perMinute: 10_000, burst: 500, sockets: Infinity, devices: Infinity },
};

export const isTier = (v: unknown): v is Tier => typeof v === 'string' && (TIER_NAMES as readonly string[]).includes(v);

/** A claim value as a tier: case-insensitive; anything else is null (the default tier applies). */
export function tierOfClaim(v: unknown): Tier | null {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : null;
  return isTier(s) ? s : null;
}
