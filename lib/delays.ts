// Back-off waits that a stop can cut short: a consumer retrying a refused write waits between
// tries, and its stop() must not wait out the back-off (the speech worker's publishes, the speech
// results sink's PostgreSQL completions). Timers, not synchronisation.
export class Delays {
  private readonly pending = new Set<() => void>();

  /** Resolves after `ms`, or at once when wakeAll() is called meanwhile. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.pending.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.pending.add(wake);
    });
  }

  /** Ends every wait in progress now. */
  wakeAll(): void {
    for (const wake of [...this.pending]) wake();
  }

  get size(): number {
    return this.pending.size;
  }
}
