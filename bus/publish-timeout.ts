// A bound on how long a publish may take (issue 10, producer behaviour). With the broker
// down, a Kafka client retries a send for tens of seconds (kafkajs: 16-24 s) before it
// gives up, and the gateway's request hangs that long. Wrapped, every publish settles
// within `timeoutMs`: with the client's own result, or with AttuneError('unavailable',
// bus_publish_failed) carrying retry_after_s, which the HTTP layer turns into a 503 with
// Retry-After. A timed-out publish is never reported as accepted; the client may still
// deliver it later (at-least-once: the client retries, the workers are idempotent).
import { AttuneError, isAttuneError } from '../lib/errors.js';
import type { Bus, OutgoingRecord } from './types.js';

/** Default bound of one publish (ATTUNE_PUBLISH_TIMEOUT_MS). */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;
/** What a 503 from a bus that cannot take data tells the client to wait, in seconds. */
export const BUS_RETRY_AFTER_S = 5;

/** The publish error the gateway answers 503 for: `unavailable` / bus_publish_failed, with retry_after_s. */
export function busUnavailable(message: string, cause?: string): AttuneError<'unavailable'> {
  return new AttuneError('unavailable', message, [{ reason: 'bus_publish_failed', retry_after_s: BUS_RETRY_AFTER_S, ...(cause ? { cause } : {}) }]);
}

/**
 * `bus` with every publish bounded by `timeoutMs`; other methods pass through. A publish
 * that rejects is turned into `unavailable` (an AttuneError already coded stays as it is).
 */
export function withPublishTimeout<B extends Bus>(bus: B, timeoutMs: number = DEFAULT_PUBLISH_TIMEOUT_MS): B {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`publish timeout must be > 0 ms, got ${timeoutMs}`);
  const publish = (topic: string, records: OutgoingRecord[]): Promise<void> => {
    if (records.length === 0) return bus.publish(topic, records);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(busUnavailable(`the bus did not take ${records.length} record(s) for ${topic} within ${timeoutMs} ms; nothing is acknowledged, retry later`, 'publish_timeout'));
      }, timeoutMs);
      bus.publish(topic, records).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(isAttuneError(err) ? err : busUnavailable(`the bus did not accept ${records.length} record(s) for ${topic}; retry later`, (err as Error)?.message ?? String(err)));
        },
      );
    });
  };
  return new Proxy(bus, {
    get(target, prop, receiver) {
      if (prop === 'publish') return publish;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
