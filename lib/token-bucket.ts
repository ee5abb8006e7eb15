// Token buckets for rate limits: `ratePerS` tokens a second, at most `burst` saved up.
// Pure: the time is passed in.
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) / 1000) * this.ratePerS);
    this.at = Math.max(this.at, now);
  }

  /** Seconds until `n` tokens will be there (0: now; Infinity: never, n is over the burst). Takes nothing. */
  wait(n: number, now: number): number {
    this.refill(now);
    if (n <= this.tokens) return 0;
    if (n > this.burst) return Infinity;
    return (n - this.tokens) / this.ratePerS;
  }

  /**
   * Takes `n` tokens if there are enough and returns 0, or takes none and returns the
   * seconds until there will be (what Retry-After should say).
   */
  take(n: number, now: number): number {
    const wait = this.wait(n, now);
    if (wait === 0) this.tokens -= n;
    return wait;
  }

  /** Gives back `n` tokens taken for work that was then refused (never above the burst). */
  refund(n: number, now: number): void {
    this.refill(now);
    this.tokens = Math.min(this.burst, this.tokens + n);
  }
}

/** Which budget refused: the device's or its user's (over all their devices). */
export type BudgetScope = 'device' | 'user';

/**
 * Two token buckets per reading: one for the device, one for its user, both charged or
 * neither. Taken before the readings are checked and published, and refunded when they are
 * refused, so only accepted readings count. Bounded: past `maxKeys` buckets all are forgotten
 * (which only ever grants fresh bursts).
 */
export class ReadingBudget {
  private readonly devices = new Map<string, TokenBucket>();
  private readonly users = new Map<string, TokenBucket>();

  constructor(
    private readonly device: { ratePerS: number; burst: number },
    private readonly user: { ratePerS: number; burst: number },
    private readonly maxKeys = 100_000,
  ) {}

  private bucket(map: Map<string, TokenBucket>, key: string, limits: { ratePerS: number; burst: number }, now: number): TokenBucket | null {
    if (limits.ratePerS <= 0) return null;
    let b = map.get(key);
    if (!b) {
      if (map.size >= this.maxKeys) map.clear();
      map.set(key, (b = new TokenBucket(limits.ratePerS, limits.burst, now)));
    }
    return b;
  }

  /** Takes `n` from both budgets, or from neither: null, or which one refused and the seconds to wait. */
  take(userKey: string, deviceKey: string, n: number, now: number): { scope: BudgetScope; waitS: number; limit: { ratePerS: number; burst: number } } | null {
    const d = this.bucket(this.devices, deviceKey, this.device, now);
    const u = this.bucket(this.users, userKey, this.user, now);
    const dWait = d ? d.wait(n, now) : 0;
    const uWait = u ? u.wait(n, now) : 0;
    if (dWait > 0 || uWait > 0) {
      return dWait >= uWait ? { scope: 'device', waitS: dWait, limit: this.device } : { scope: 'user', waitS: uWait, limit: this.user };
    }
    d?.take(n, now);
    u?.take(n, now);
    return null;
  }

  /** Gives `n` back to both (readings taken and then refused). */
  refund(userKey: string, deviceKey: string, n: number, now: number): void {
    this.devices.get(deviceKey)?.refund(n, now);
    this.users.get(userKey)?.refund(n, now);
  }
}
