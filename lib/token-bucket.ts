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

  /**
   * Takes `n` tokens if there are enough and returns 0, or takes none and returns the
   * seconds until there will be (what Retry-After should say).
   */
  take(n: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerS);
    this.at = now;
    if (n <= this.tokens) {
      this.tokens -= n;
      return 0;
    }
    if (n > this.burst) return Infinity;
    return (n - this.tokens) / this.ratePerS;
  }
}
